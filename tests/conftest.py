from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import legato
from legato.testing import TimeSkippingClock

ROOT = Path(__file__).resolve().parent.parent
LEGATO = str(Path(sys.executable).with_name("legato"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (LEGATO_FAIL_ON_SKIP=1) a skipped test is a failure, never a silent pass."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("LEGATO_FAIL_ON_SKIP") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every test: {report.longrepr}"


POSTGRES_ENV = "LEGATO_TEST_POSTGRES_URL"


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema on the test Postgres; yields a URL whose search_path is that schema."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (CI sets it and fails on skips)")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every behavioural test runs on both backends: a temp SQLite file, a fresh PG schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legato.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For tests of SQLite itself (files, URLs, WAL)."""
    return f"sqlite:///{tmp_path / 'legato.db'}"


def sql(db_url: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the test database, whichever backend (``?`` placeholders)."""
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            rows = conn.execute(query, params).fetchall()
            conn.commit()
            return rows
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as pg:
        try:
            cur = pg.execute(query.replace("?", "%s"), params)  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable:
            return []
        return cur.fetchall() if cur.description else []


@pytest.fixture
def make_app(db_url: str) -> Iterator[Callable[..., legato.App]]:
    """Apps on one temp database with a time-skipping clock; all closed after the test."""
    apps: list[legato.App] = []

    def make(name: str = "test", *, clock: legato.Clock | None = None, **kw: object) -> legato.App:
        app = legato.App(name, db_url, clock=clock or TimeSkippingClock(), **kw)  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


class WorkerProcess:
    """A real `legato worker` process; killed (SIGKILL) or stopped (SIGTERM) by tests."""

    def __init__(
        self,
        target: str,
        db_url: str,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        env = dict(
            os.environ,
            LEGATO_DATABASE_URL=db_url,
            LEGATO_TEST_DIR=str(workdir),
            PYTHONPATH=str(ROOT),
            **(env or {}),
        )
        self.log = open(workdir / f"worker-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [LEGATO, "worker", target, "--poll", "0.05", *args],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,  # its own process group, as on another machine
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def spawn_worker(db_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def spawn(target: str, *args: str, **options: Any) -> WorkerProcess:
        w = WorkerProcess(target, db_url, tmp_path, *args, **options)
        workers.append(w)
        return w

    yield spawn
    for w in workers:
        w.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll until ``predicate()`` holds (not a timing assertion: a bound on a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
