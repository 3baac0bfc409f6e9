"""Runs for the concurrent-workers test: each step logs (run, step, pid)."""

from __future__ import annotations

import legato
from tests.apps.counters import record

app = legato.App("many")


@app.step()
def touch(run_id: str, i: int) -> int:
    record(run_id, i)
    return i


@app.workflow()
async def three(ctx: legato.Context) -> int:
    total = 0
    for i in range(3):
        total += await touch(ctx.run_id, i)
    return total
