"""A workflow that asks for an approval, for tests that decide it from another process."""

from __future__ import annotations

from pydantic import BaseModel

import legato
from tests.apps.counters import record

app = legato.App("approvals")


class Outreach(BaseModel):
    to: str
    subject: str
    candidates: list[str]


@app.step()
async def send(run_id: str, message: Outreach) -> str:
    record(run_id, "send")
    return f"sent {message.subject!r} to {message.to}"


@app.workflow()
async def outreach(ctx: legato.Context, to: str) -> str:
    draft = Outreach(to=to, subject="Interview", candidates=["ada", "grace"])
    decision = await ctx.approval("send-outreach", data=draft, prompt="Send this outreach?")
    if not decision.approved:
        return f"rejected by {decision.by}: {decision.comment}"
    return await send(ctx.run_id, decision.data)
