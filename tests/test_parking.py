"""Parking: runs that wait are unloaded; the worker keeps nothing per waiting run."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from datetime import timedelta

import pytest

import legato
from legato.engine.execution import Execution
from legato.worker import Worker
from tests.conftest import sql

RUNS = 10_000


def _waiting(db_url: str) -> int:
    return int(sql(db_url, "SELECT count(*) FROM runs WHERE status = 'waiting'")[0][0])


@pytest.mark.slow
def test_ten_thousand_runs_sleeping_a_week_hold_no_memory_in_the_worker(db_url: str) -> None:
    app = legato.App("parking", db_url)  # the system clock: the week is real

    @app.step()
    async def prepare(i: int) -> int:
        return i

    @app.workflow()
    async def nap(ctx: legato.Context, i: int) -> int:
        await prepare(i)
        await ctx.sleep(timedelta(days=7))
        return i

    async def main() -> tuple[int, int, int]:
        await asyncio.gather(*(app.start_async(nap, i, run_id=f"n{i}") for i in range(RUNS)))
        runtime = await app._rt()
        worker = Worker(
            store=runtime.store,
            clock=app.clock,
            workflows=app.workflows,
            concurrency=1000,
            poll_interval=0.05,
        )
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        task = asyncio.create_task(worker.run())
        while _waiting(db_url) < RUNS:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # the worker is idle now, and still running
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        loaded = worker.loaded
        executions = sum(isinstance(o, Execution) for o in gc.get_objects())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await app.close_async()
        return loaded, executions, grown

    try:
        loaded, executions, grown = asyncio.run(main())
    finally:
        app.close()
    assert loaded == 0 and executions == 0
    # nothing proportional to the 10,000 runs stays behind (100 bytes a run would be 1 MB)
    assert grown < 1_000_000, f"worker memory grew by {grown} bytes"

    [rows] = sql(
        db_url,
        "SELECT count(*), min(wake_at), max(waiting_on) FROM runs WHERE status = 'waiting'",
    )
    assert rows[0] == RUNS
    assert rows[1] > time.time() + 6.9 * 86400
    assert rows[2].startswith("sleep until ")
