"""Chaos on PostgreSQL with real processes: SIGKILLed workers, a database restart."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.apps import chaos_app
from tests.apps.counters import executions
from tests.conftest import WorkerProcess, postgres_schema, sql, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def db_url() -> Iterator[str]:
    """These tests are about PostgreSQL (workers spawned by spawn_worker use it too)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def pg_db(db_url: str) -> Iterator[str]:
    chaos_app.app.database_url = db_url
    try:
        yield db_url
    finally:
        chaos_app.app.close()


def _start_runs(count: int) -> None:
    import asyncio

    async def main() -> None:
        await asyncio.gather(
            *(
                chaos_app.app.start_async(chaos_app.three, i, run_id=f"c{i:05d}")
                for i in range(count)
            )
        )
        await chaos_app.app.close_async()

    asyncio.run(main())


def _completed(url: str) -> int:
    return int(sql(url, "SELECT count(*) FROM runs WHERE status = 'completed'")[0][0])


def _check_journals(url: str, runs: int) -> None:
    rows = sql(url, "SELECT run_id, count(*), min(seq), max(seq) FROM entries GROUP BY run_id")
    assert len(rows) == runs
    assert all(n == 3 and lo == 0 and hi == 2 for _, n, lo, hi in rows)  # each entry once
    results = sql(url, "SELECT run_id, output FROM runs")
    assert all(int(out) == int(run_id[1:]) + 3 for run_id, out in results)


def test_four_workers_two_sigkilled_at_random_moments(
    pg_db: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    runs = 2000
    _start_runs(runs)
    workers = [spawn_worker("tests.apps.chaos_app:app", "-c", "50") for _ in range(4)]
    rng = random.Random()
    victims = rng.sample(workers, 2)
    for victim in victims:  # kill each somewhere in the first two thirds of the work
        target = rng.randint(100, (runs * 2) // 3)
        wait_until(lambda t=target: _completed(pg_db) >= t, timeout=120, what=f"{target} runs")
        victim.kill()
    wait_until(lambda: _completed(pg_db) == runs, timeout=240, what="all runs to complete")
    for w in workers:
        if w not in victims:
            assert w.stop() == 0

    _check_journals(pg_db, runs)
    killed = {str(v.pid) for v in victims}
    seen: dict[tuple[str, str], list[str]] = {}
    for run_id, step, pid in executions(tmp_path / "executions.log"):
        seen.setdefault((run_id, step), []).append(pid)
    assert len(seen) == runs * 3  # every step ran
    twice = {key: pids for key, pids in seen.items() if len(pids) > 1}
    # a step ran again only where a killed worker had been running it
    assert all(len(p) == 2 and p[0] in killed for p in twice.values()), twice
    assert len(twice) <= 2 * 50  # at most what the two victims held at once


def _pg_ctl(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs the local cluster")
def test_postgres_restart_while_runs_are_in_flight(
    pg_db: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    runs = 600
    _start_runs(runs)
    workers = [spawn_worker("tests.apps.chaos_app:app", "-c", "50") for _ in range(2)]
    wait_until(lambda: _completed(pg_db) >= 100, timeout=120, what="100 runs")
    _pg_ctl("restart")
    restarted = time.monotonic()
    wait_until(lambda: _completed(pg_db) == runs, timeout=240, what="all runs after the restart")
    for w in workers:
        assert w.stop() == 0, w.output()[-2000:]
    assert any(
        "database unavailable" in w.output() or "LISTEN connection lost" in w.output()
        for w in workers
    ), "the restart went unnoticed"
    _check_journals(pg_db, runs)
    seen = {(r, s) for r, s, _ in executions(tmp_path / "executions.log")}
    assert len(seen) == runs * 3
    assert time.monotonic() - restarted < 240
