"""Workers racing for the same runs and timers: each is won by exactly one of them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from legato.store import open_store
from legato.store.base import RunRecord, Wait
from tests.conftest import ROOT

NOW = time.time()


async def _prepare(url: str, pending: int, timers: int) -> None:
    store = await open_store(url)
    for i in range(pending):
        await store.create_run(_run(f"p{i}", NOW - 1))
    # timers: runs parked on a wake-up that is already due
    for i in range(timers):
        await store.create_run(_run(f"t{i}", NOW - 1))
    claimed = await store.claim("setup", ["wf"], NOW - 1, 300.0, 100_000)
    for run in claimed:
        if run.run_id.startswith("t"):
            assert await store.park("setup", run.run_id, Wait(NOW - 0.5, "sleep"), NOW - 1)
        else:
            assert await store.release("setup", run.run_id, NOW - 1)
    await store.close()


def _run(run_id: str, at: float) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow="wf",
        status="pending",
        input='{"args":[],"kwargs":{}}',
        wake_at=at,
        created_at=at,
        updated_at=at,
    )


def test_racing_claimers_each_win_distinct_runs_and_timers(db_url: str) -> None:
    asyncio.run(_prepare(db_url, pending=300, timers=300))
    start_at = time.time() + 1.5  # after every process has imported and connected
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.apps.claimer", db_url, str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    claimed = [run_id for got in results for run_id in got]
    assert len(claimed) == len(set(claimed)) == 600  # nothing twice, nothing missed
    assert sum(1 for got in results if got) >= 2  # they really raced
