"""PostgreSQL specifics: notifications instead of polling, connection errors, foreign schemas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

import legato
from legato.store import open_store
from legato.store.migrations import migrations
from legato.store.postgres import PostgresStore
from tests.apps import notify_app
from tests.conftest import WorkerProcess, postgres_schema, sql, wait_until


@pytest.fixture
def db_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_workers_wake_on_notifications_not_polling(
    db_url: str, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    notify_app.app.database_url = db_url
    try:
        asyncio.run(_upgrade(db_url))
        spawn_worker("tests.apps.notify_app:app", "--poll", "600")  # would poll every 10 min
        wait_until(lambda: bool(sql(db_url, "SELECT 1 FROM workers")), what="the worker")
        time.sleep(0.5)  # it is idle and listening now
        handle = notify_app.app.start(notify_app.waits, run_id="n1")  # NOTIFY: a new run
        wait_until(lambda: handle.status() == "waiting", timeout=30, what="the run to park")
        notify_app.app.send_event("n1", "go", {"ok": 1})  # NOTIFY: an event for a parked run
        assert handle.result(timeout=30) == {"ok": 1}
    finally:
        notify_app.app.close()


async def _upgrade(url: str) -> None:
    await (await open_store(url)).close()


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(
        legato.StoreError, match=r"cannot connect to postgresql://nobody@127\.0\.0\.1:1/x"
    ):
        asyncio.run(open_store("postgresql://nobody:secret@127.0.0.1:1/x"))


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(legato.StoreError) as info:
        asyncio.run(open_store("postgresql://nobody:hunter2@127.0.0.1:1/x"))
    assert "hunter2" not in str(info.value)


def test_foreign_runs_table_is_refused_and_left_alone(db_url: str) -> None:
    sql(db_url, "CREATE TABLE runs (id int primary key, what text)")
    sql(db_url, "INSERT INTO runs VALUES (1, 'someone else''s data')")
    with pytest.raises(legato.StoreError, match="has a 'runs' table that legato did not create"):
        asyncio.run(open_store(db_url))
    assert sql(db_url, "SELECT what FROM runs") == [("someone else's data",)]
    assert not sql(db_url, "SELECT to_regclass('legato_migrations') IS NOT NULL")[0][0]


def test_concurrent_first_opens_migrate_once(db_url: str) -> None:
    async def main() -> None:
        stores = await asyncio.gather(*(open_store(db_url) for _ in range(5)))
        for store in stores:
            await store.close()

    asyncio.run(main())
    versions = sql(db_url, "SELECT version FROM legato_migrations ORDER BY 1")
    assert [v for (v,) in versions] == [v for v, _, _ in migrations("postgres")]


def test_lost_journal_connection_is_retried(db_url: str) -> None:
    """Kill the backend that carries journal batches: the next write reconnects and lands."""
    app = legato.App("retry-conn", db_url)

    @app.step()
    async def step(i: int) -> int:
        if i == 5:
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name = ''"
                )
        return i

    @app.workflow()
    async def wf(ctx: legato.Context) -> int:
        return sum([await step(i) for i in range(10)])

    try:
        assert app.run(wf) == 45
    finally:
        app.close()


def test_full_durability_forces_synchronous_commit(db_url: str) -> None:
    url = db_url + "%20-csynchronous_commit%3Doff"  # a server (or URL) that relaxed it

    async def settings(durability: str) -> set[str]:
        store = await open_store(url, durability=durability)
        assert isinstance(store, PostgresStore)
        seen = set()
        for _ in range(3):
            rows = await store._rows("SHOW synchronous_commit")
            seen.add(rows[0][0])
        await store.close()
        return seen

    assert asyncio.run(settings("full")) == {"on"}
    # normal: pooled connections keep what the server (here the URL) says; the journal's own
    # connection is tests/test_postgres_journal.py's concern
    assert asyncio.run(settings("normal")) == {"off"}


def test_passwords_are_redacted_wherever_a_url_is_shown(db_url: str) -> None:
    from click.testing import CliRunner

    from legato.cli.main import cli
    from legato.store import redact_url

    secret_url = db_url.replace("postgres@", "postgres:s3cret@")  # trust auth ignores it
    out = CliRunner().invoke(cli, ["--database-url", secret_url, "db", "upgrade"]).output
    assert "schema version" in out and "s3cret" not in out
    out = CliRunner().invoke(cli, ["--database-url", secret_url, "show", "nope"]).output
    assert out.startswith("error: no run 'nope' in postgresql://postgres@") and "s3cret" not in out
    assert "s3cret" not in repr(legato.App("x", secret_url))
    assert redact_url("postgresql://u@h/db?sslmode=require&password=pw&x=1") == (
        "postgresql://u@h/db?sslmode=require&password=***&x=1"
    )


def test_missing_postgres_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "legato.store.postgres", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(legato.ConfigurationError, match=r"pip install 'legato\[postgres\]'"):
        asyncio.run(open_store("postgresql://u@127.0.0.1/x"))
