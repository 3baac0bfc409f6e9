"""Crash recovery with real processes: SIGKILL a `legato worker` mid-run, start another."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import legato
from tests.apps import blocking_app, crash_app, many_app
from tests.apps.counters import counts, executions
from tests.conftest import WorkerProcess, sql, wait_until


@pytest.fixture
def crash(db_url: str) -> Iterator[legato.App]:
    crash_app.app.database_url = db_url
    yield crash_app.app
    crash_app.app.close()


def _workers(db_url: str) -> int:
    rows = sql(db_url, "SELECT count(*) FROM workers")
    return int(rows[0][0]) if rows else 0


def _status(db_url: str, run_id: str) -> str | None:
    rows = sql(db_url, "SELECT status FROM runs WHERE run_id = ?", (run_id,))
    return str(rows[0][0]) if rows else None


@pytest.mark.parametrize("k", [1, 5, 9])
def test_sigkill_after_step_k_resumes_without_redoing_finished_steps(
    k: int,
    crash: legato.App,
    db_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    log = tmp_path / "executions.log"
    handle = crash.start(crash_app.ten_steps, k + 1, run_id="victim")
    first = spawn_worker("tests.apps.crash_app:app")
    # step k+1 starts only after step k's journal entry committed; it then blocks, and we kill
    wait_until(lambda: counts(log)[("victim", str(k + 1))] == 1, what=f"step {k + 1} to start")
    first.kill()
    assert _status(db_url, "victim") == "running"  # the dead worker still holds the lease

    spawn_worker("tests.apps.crash_app:app")
    wait_until(lambda: _status(db_url, "victim") == "completed", what="the run to complete")
    assert handle.result() == sum(i * i for i in range(1, 11))
    ran = counts(log)
    for i in range(1, 11):
        expected = 2 if i == k + 1 else 1  # only the step the kill interrupted ran twice
        assert ran[("victim", str(i))] == expected, f"step {i} ran {ran[('victim', str(i))]} times"


def test_sigterm_stops_a_worker_gracefully_and_another_finishes_the_run(
    crash: legato.App,
    db_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    log = tmp_path / "executions.log"
    crash.start(crash_app.ten_steps, 3, run_id="graceful")
    first = spawn_worker("tests.apps.crash_app:app", "--grace", "0.5")
    wait_until(lambda: counts(log)[("graceful", "3")] == 1, what="step 3 to start")
    # step 3 blocks for an hour; SIGTERM gives it the grace period, then releases the run
    assert first.stop() == 0
    # released as documented: pending, no owner (not "running" under a worker that is gone)
    rows = sql(db_url, "SELECT status, owner FROM runs WHERE run_id = 'graceful'")
    assert rows == [("pending", None)]
    assert legato.App("probe", db_url).handle("graceful").status() == "pending"
    spawn_worker("tests.apps.crash_app:app")
    wait_until(lambda: _status(db_url, "graceful") == "completed", what="the run to complete")
    assert counts(log)[("graceful", "2")] == 1


@pytest.mark.slow
def test_two_worker_processes_share_200_runs_without_overlap(
    db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    many_app.app.database_url = db_url
    try:
        workers = [spawn_worker("tests.apps.many_app:app", "-c", "20") for _ in range(2)]
        wait_until(lambda: _workers(db_url) == 2, what="both workers to register")
        for i in range(200):
            many_app.app.start(many_app.three, run_id=f"m{i:03d}")

        def done() -> bool:
            return sql(db_url, "SELECT count(*) FROM runs WHERE status = 'completed'")[0][0] == 200

        wait_until(done, timeout=120, what="200 runs to complete")
        for w in workers:
            assert w.stop() == 0
    finally:
        many_app.app.close()

    lines = executions(tmp_path / "executions.log")
    by_step = counts(tmp_path / "executions.log")
    assert len(by_step) == 600 and set(by_step.values()) == {1}  # every step ran exactly once
    pids_per_run: dict[str, set[str]] = {}
    for run_id, _step, pid in lines:
        pids_per_run.setdefault(run_id, set()).add(pid)
    assert all(len(p) == 1 for p in pids_per_run.values())  # no run moved between workers
    assert len({pid for _, _, pid in lines}) == 2  # and both workers did some of the work

    rows = sql(db_url, "SELECT run_id, count(*), max(seq) FROM entries GROUP BY run_id")
    assert len(rows) == 200 and all(n == 3 and top == 2 for _, n, top in rows)


def test_grace_bounds_the_exit_even_with_a_blocked_sync_step(
    db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    blocking_app.app.database_url = db_url
    try:
        blocking_app.app.start(blocking_app.blocked, run_id="stuck")
        worker = spawn_worker("tests.apps.blocking_app:app", "--grace", "0.5")
        log = tmp_path / "executions.log"
        wait_until(lambda: counts(log)[("stuck", "block")] == 1, what="the step to start")
        started = time.monotonic()
        assert worker.stop(timeout=30) == 0
        assert time.monotonic() - started < 30  # not the 120 s the step would take
        assert "still running after the grace period" in worker.output()
        assert _status(db_url, "stuck") in ("pending", "running")  # released for another worker
    finally:
        blocking_app.app.close()
