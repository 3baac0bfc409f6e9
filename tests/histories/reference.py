"""The workflow whose recorded journals live beside this file. Change it only with a patch:
in-flight runs recorded by earlier versions must keep replaying."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

import legato

executed: list[str] = []


class Candidate(BaseModel):
    name: str
    score: float


def register(app: legato.App) -> None:
    @app.step()
    async def parse(text: str) -> list[str]:
        executed.append("parse")
        return text.split(",")

    @app.step(retry=legato.RetryPolicy(max_attempts=3, initial=timedelta(seconds=1), jitter=False))
    def score(name: str) -> Candidate:
        executed.append(f"score:{name}")
        return Candidate(name=name, score=len(name) / 10)

    @app.workflow()
    async def child_check(ctx: legato.Context, name: str) -> bool:
        return name != "mallory"

    @app.workflow(name="reference")
    async def reference(ctx: legato.Context, text: str) -> dict[str, object]:
        names = await parse(text)
        ranked = await asyncio.gather(*(score(n) for n in names))
        started = ctx.now()
        token = ctx.uuid()
        vetted = await ctx.child(child_check, ranked[0].name)
        await ctx.sleep(timedelta(days=2))
        reply = await ctx.wait_for_event("reply", timeout=timedelta(days=5))
        return {
            "best": max(ranked, key=lambda c: c.score).name,
            "vetted": vetted,
            "reply": reply,
            "days": (ctx.now() - started).days,
            "token_is_uuid": len(str(token)) == 36,
        }


def register_branches(app: legato.App) -> None:
    """Concurrent branches that each wait for their own event (recorded parked, one replied)."""

    @app.step()
    async def split(text: str) -> list[str]:
        executed.append("split")
        return text.split(",")

    @app.step()
    async def rate(name: str) -> int:
        executed.append(f"rate:{name}")
        return len(name)

    @app.workflow(name="branches")
    async def branches(ctx: legato.Context, text: str) -> list[dict[str, object]]:
        names = await split(text)

        async def vet(name: str) -> dict[str, object]:
            rating = await rate(name)
            reply = await ctx.wait_for_event(f"reply:{name}", timeout=timedelta(days=5))
            return {"name": name, "rating": rating, "reply": reply}

        return list(await asyncio.gather(*(vet(n) for n in names)))
