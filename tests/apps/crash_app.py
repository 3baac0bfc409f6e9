"""A 10-step workflow for crash tests: step BLOCK_AT blocks on its first execution only."""

from __future__ import annotations

import asyncio
import os

import legato
from tests.apps.counters import counter_file, counts, record

app = legato.App("crash")
STEPS = 10


@app.step(retry=legato.NO_RETRY)
async def work(run_id: str, i: int, block_at: int) -> int:
    first_time = counts(counter_file())[(run_id, str(i))] == 0
    record(run_id, i)
    if i == block_at and first_time:
        await asyncio.sleep(3600)  # the test kills the worker here
    return i * i


@app.workflow()
async def ten_steps(ctx: legato.Context, block_at: int) -> int:
    total = 0
    for i in range(1, STEPS + 1):
        total += await work(ctx.run_id, i, block_at)
    return total


__all__ = ["app", "os"]
