"""Workflows for `legato start`, `legato fork` and `legato retry` of cancelled runs, run by real
worker processes: a step that blocks on its first execution (the test kills the worker there),
one that waits for an event, and progress reported with ctx.set_status."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

import legato
from tests.apps.counters import counter_file, counts, record

app = legato.App("lifecycle")


class Job(BaseModel):
    title: str
    candidates: list[str]


@app.step(retry=legato.NO_RETRY)
async def score(run_id: str, name: str, block: str) -> int:
    first_time = counts(counter_file())[(run_id, name)] == 0
    record(run_id, name)
    if name == block and first_time:
        await asyncio.sleep(3600)  # the test kills the worker here
    return len(name)


@app.workflow()
async def hire(ctx: legato.Context, job: Job, block: str = "") -> dict[str, int]:
    scores: dict[str, int] = {}
    for i, name in enumerate(job.candidates):
        ctx.set_status({"scored": i, "of": len(job.candidates)})
        scores[name] = await score(ctx.run_id, name, block)
    ctx.set_status({"scored": len(job.candidates), "of": len(job.candidates)})
    if job.title == "wait":
        await ctx.wait_for_event("go")
    return scores


__all__ = ["Job", "app"]
