"""Outages of the real PostgreSQL server: a worker outlives them, a one-shot command does not
wait for them. The server is stopped inside the test and always started again."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.apps import chaos_app
from tests.conftest import LEGATO, WorkerProcess, postgres_schema, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs the local cluster"),
]


@pytest.fixture
def db_url() -> Iterator[str]:
    """These tests are about PostgreSQL (workers spawned by spawn_worker use it too)."""
    with postgres_schema() as url:
        yield url


def _pg_ctl(action: str) -> subprocess.CompletedProcess[str]:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _accepts_connections(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@contextlib.contextmanager
def server_stopped(url: str) -> Iterator[None]:
    """The server is down inside the block, and running again after it, whatever happened."""
    stopped = _pg_ctl("stop")
    assert stopped.returncode == 0, stopped.stderr
    try:
        yield
    finally:
        if _pg_ctl("status").returncode != 0:
            started = _pg_ctl("start")
            assert started.returncode == 0, started.stderr
        wait_until(lambda: _accepts_connections(url), timeout=120, what="the server to be back")


def test_a_worker_started_while_the_database_is_down_waits_and_then_works(
    db_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    with server_stopped(db_url):
        worker = spawn_worker("tests.apps.chaos_app:app")
        wait_until(
            lambda: "the worker keeps trying" in worker.output(),
            timeout=60,
            what="the worker to say that it waits for the database",
        )
        assert "cannot connect to postgresql://" in worker.output()
        # A one-shot command does not wait: it fails with the reason.
        runs = subprocess.run(
            [LEGATO, "--database-url", db_url, "runs"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,  # a bound on a hang, not a speed check
        )
        assert runs.returncode == 1
        assert runs.stderr.startswith("error: cannot connect to postgresql://"), runs.stderr
        assert worker.proc.poll() is None, worker.output()  # still there, still waiting

    chaos_app.app.database_url = db_url
    try:
        handles = [chaos_app.app.start(chaos_app.three, i, run_id=f"o{i}") for i in range(5)]
        assert [h.result(timeout=120) for h in handles] == [i + 3 for i in range(5)]
    finally:
        chaos_app.app.close()
    assert worker.stop() == 0, worker.output()[-2000:]


def test_a_worker_outlives_a_restart_that_begins_as_it_starts(
    db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """The issue's case: workers started just before the server restarts."""
    workers = [spawn_worker("tests.apps.chaos_app:app") for _ in range(3)]
    restarted = _pg_ctl("restart")
    try:
        assert restarted.returncode == 0, restarted.stderr
    finally:
        if _pg_ctl("status").returncode != 0:
            _pg_ctl("start")
        wait_until(lambda: _accepts_connections(db_url), timeout=120, what="the server")
    chaos_app.app.database_url = db_url
    try:
        handles = [chaos_app.app.start(chaos_app.three, i, run_id=f"r{i}") for i in range(30)]
        assert [h.result(timeout=120) for h in handles] == [i + 3 for i in range(30)]
    finally:
        chaos_app.app.close()
    for w in workers:
        assert w.proc.poll() is None, w.output()[-2000:]
        assert w.stop() == 0, w.output()[-2000:]
