"""Bad input gets a clear error, and nothing is lost or half-written."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import legato
from legato.store import Store, open_store


def _open(url: str) -> Store:
    return asyncio.run(open_store(url))


def test_non_serializable_argument_is_refused_before_anything_is_written(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context, lock: object) -> None:
        return None

    with pytest.raises(
        legato.SerializationError, match="input of workflow 'wf' cannot be stored as JSON"
    ):
        app.start(wf, threading.Lock(), run_id="never")
    with pytest.raises(legato.UnknownRun):
        app.handle("never").status()


def test_non_serializable_step_result_fails_the_run_naming_workflow_and_step(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.step()
    async def opens_socket() -> object:
        return threading.Lock()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        await opens_socket()

    handle = app.start(wf, run_id="s")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed) as info:
        handle.result()
    assert "the result of step 'opens_socket' of workflow 'wf' cannot be stored as JSON" in str(
        info.value
    )
    assert "after 1 attempt" in str(info.value)  # not retried: it would fail the same way


def test_non_serializable_workflow_result_fails_the_run(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> object:
        return object()

    with pytest.raises(
        legato.RunFailed, match="the result of workflow 'wf' cannot be stored as JSON"
    ):
        app.run(wf)


def test_wrong_arguments_are_refused_at_start(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context, a: int) -> int:
        return a

    with pytest.raises(legato.ConfigurationError, match="bad arguments for workflow 'wf'"):
        app.start(wf, 1, 2)


def test_unknown_workflow(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    async def not_registered(ctx: legato.Context) -> None:
        return None

    with pytest.raises(legato.UnknownWorkflow, match=r"decorate it with @app\.workflow"):
        app.start(not_registered)
    with pytest.raises(legato.UnknownWorkflow, match="no workflow named 'nope'"):
        app.start("nope")


def test_bad_registrations(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    with pytest.raises(legato.ConfigurationError, match="must be an 'async def'"):

        @app.workflow()
        def sync_wf(ctx: legato.Context) -> None:  # type: ignore[arg-type]
            return None

    with pytest.raises(legato.ConfigurationError, match="step timeout must be positive"):
        app.step(timeout=0)

    @app.step(name="dup")
    async def one() -> None:
        return None

    with pytest.raises(legato.ConfigurationError, match="step 'dup' is registered twice"):

        @app.step(name="dup")
        async def two() -> None:
            return None


def test_bad_run_ids(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        return None

    for bad in ("", "has space", "x" * 201, "semi;colon"):
        with pytest.raises(legato.ConfigurationError, match=r"bad run id"):
            app.start(wf, run_id=bad)


def test_corrupted_database_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    garbage = b"this is not a database at all" * 200
    path.write_bytes(garbage)
    with pytest.raises(legato.StoreError, match="is it corrupted, or not a SQLite file"):
        _open(f"sqlite:///{path}")
    assert path.read_bytes() == garbage


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(legato.StoreError, match=r"legato did not create .*tables: customers"):
        _open(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_database_from_a_newer_legato_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    store = _open(url)
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute("INSERT INTO legato_migrations VALUES (999, 'future', 0)")
    conn.commit()
    conn.close()
    del store
    with pytest.raises(legato.StoreError, match="schema version 999, newer than this legato"):
        _open(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/x", "unsupported database URL"),
        ("sqlite://relative.db", "bad SQLite URL"),
        ("sqlite:///:memory:", "in-memory databases are not supported"),
        ("sqlite:////no/such/folder/x.db", "folder '/no/such/folder' does not exist"),
        ("sqlite:///x.db?mode=ro", "takes no options after '?'"),
    ],
)
def test_bad_database_urls(url: str, message: str) -> None:
    with pytest.raises(legato.LegatoError, match=message):
        _open(url)


def test_bad_durability() -> None:
    with pytest.raises(legato.ConfigurationError, match="durability"):
        legato.App("x", "sqlite:///x.db", durability="sometimes")


def test_database_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGATO_DATABASE_URL", raising=False)
    assert legato.App("a").database_url == "sqlite:///./legato.db"
    monkeypatch.setenv("LEGATO_DATABASE_URL", "sqlite:///from-env.db")
    assert legato.App("a").database_url == "sqlite:///from-env.db"
    assert legato.App("a", "sqlite:///arg.db").database_url == "sqlite:///arg.db"


def test_home_folder_in_sqlite_url_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    asyncio.run(_open("sqlite:///~/home.db").close())
    assert (tmp_path / "home.db").exists()


def test_url_mistakes_are_configuration_errors() -> None:
    with pytest.raises(legato.ConfigurationError):
        _open("sqlite://relative.db")


def test_payload_limits_are_enforced_before_writing(make_app: Callable[..., legato.App]) -> None:
    app = make_app(payload_limit=1000)

    @app.step()
    async def fetch_page() -> str:
        return "x" * 5000

    @app.workflow()
    async def wf(ctx: legato.Context, note: str) -> str:
        got = await ctx.wait_for_event("data")
        await fetch_page()
        return str(got)

    with pytest.raises(legato.PayloadTooLarge, match=r"the input of workflow 'wf' is 4\.9 KiB"):
        app.start(wf, "y" * 5000, run_id="big-input")
    with pytest.raises(legato.UnknownRun):
        app.handle("big-input").status()  # nothing was written

    handle = app.start(wf, "small", run_id="r")
    with pytest.raises(legato.PayloadTooLarge, match="the payload of event 'data'"):
        app.send_event("r", "data", "z" * 5000)
    app.send_event("r", "data", "ok")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed) as info:
        handle.result()
    assert "the result of step 'fetch_page' of workflow 'wf' is 4.9 KiB, over the payload" in str(
        info.value
    )
    assert "after 1 attempt" in str(info.value)  # too large is final: not retried
    [step] = [e for e in handle.timeline().entries if e.kind == "step"]
    assert step.status == "failed"


def test_bad_payload_limit() -> None:
    with pytest.raises(legato.ConfigurationError, match="payload_limit"):
        legato.App("x", "sqlite:///x.db", payload_limit=10)
