"""The app that benchmark worker processes load: ``legato worker legato_apps:app``.

Its database comes from ``LEGATO_DATABASE_URL`` and its durability from ``BENCH_DURABILITY``
(default ``normal``); the side-effect counters of ``ten_steps`` live in the folder named by
``BENCH_COUNTERS``. bench/legato_workloads.py sets them.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

from measure import Counters

import legato

app = legato.App("bench", durability=os.environ.get("BENCH_DURABILITY", "normal"))


def _counters() -> Counters:
    return Counters(Path(os.environ["BENCH_COUNTERS"]))


@app.step()
async def touch(i: int) -> int:
    return i + 1


@app.workflow()
async def chain(ctx: legato.Context, n: int) -> int:
    """N steps one after another (the scale-out workload)."""
    x = 0
    for _ in range(n):
        x = await touch(x)
    return x


@app.workflow()
async def parked(ctx: legato.Context, i: int) -> int:
    """One step, then a week-long durable sleep: the run is parked in the database."""
    x = await touch(i)
    await ctx.sleep(timedelta(days=7))
    return x


@app.step()
async def counted(i: int) -> int:
    """Counts every real execution; step 6 blocks for a minute the first time it runs."""
    counters = _counters()
    counters.hit(f"step{i}")
    if i == 6 and not counters.exists("blocked"):
        counters.hit("blocked")
        await asyncio.sleep(60)
    return i


@app.workflow()
async def ten_steps(ctx: legato.Context) -> int:
    total = 0
    for i in range(1, 11):
        total += await counted(i)
    return total


@app.step()
async def paced(run_id: str, i: int) -> int:
    """Logs when it starts (run, step, pid, wall time), then takes STORM_STEP_MS: the takeover
    benchmark (bench/takeover.py) reads the log to see when a killed worker's run moved on."""
    line = f"{run_id} {i} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(
        Path(os.environ["BENCH_COUNTERS"]) / "steps.log",
        os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        0o644,
    )
    try:
        os.write(fd, line)  # one short O_APPEND write: atomic across processes
    finally:
        os.close(fd)
    await asyncio.sleep(float(os.environ.get("STORM_STEP_MS", "50")) / 1000)
    return i


@app.workflow()
async def storm(ctx: legato.Context, steps: int) -> int:
    """Steps that take a while, so a run is always in flight when its worker is killed."""
    for i in range(steps):
        await paced(ctx.run_id, i)
    return steps
