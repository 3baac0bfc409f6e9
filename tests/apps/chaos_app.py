"""Runs for chaos tests: three steps that each log (run, step, pid) and take a moment."""

from __future__ import annotations

import asyncio

import legato
from tests.apps.counters import record

app = legato.App("chaos")


@app.step()
async def work(run_id: str, i: int) -> int:
    record(run_id, i)
    await asyncio.sleep(0.005)
    return i


@app.workflow()
async def three(ctx: legato.Context, n: int) -> int:
    total = n
    for i in range(3):
        total += await work(ctx.run_id, i)
    return total
