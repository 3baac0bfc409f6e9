"""An operation's identity (entry key, idempotency key, child run id) is where it stands in the
workflow's code, branch and position, the same on every attempt and after a crash: a SIGKILL
while a slow branch's step is in flight and a faster branch's entries are already journaled must
not renumber the slow step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import legato
from tests.apps import identity_app
from tests.apps.counters import executions
from tests.conftest import WorkerProcess, sql, wait_until


@pytest.fixture
def ident(db_url: str) -> Iterator[legato.App]:
    identity_app.app.database_url = db_url
    yield identity_app.app
    identity_app.app.close()


def _keys(log: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for tag, key, _pid in executions(log):
        out.setdefault(tag, []).append(key)
    return out


def _crash_in_window(
    spawn_worker: Callable[..., WorkerProcess], log: Path, db_url: str, run_id: str, done: set[str]
) -> None:
    """Wait until the slow step runs and every tag in ``done`` is journaled, then SIGKILL."""
    first = spawn_worker("tests.apps.identity_app:app")

    def window() -> bool:
        recorded = {
            r[0]
            for r in sql(
                db_url,
                "SELECT output FROM entries WHERE run_id = ? AND status = 'completed'",
                (run_id,),
            )
        }
        return any(t.startswith(("slow", "a-1")) for t in _keys(log)) and all(
            f'"{t}"' in recorded for t in done
        )

    wait_until(window, what="the slow step in flight and its siblings journaled")
    first.kill()


def test_step_in_flight_keeps_its_key_after_sigkill(
    ident: legato.App, db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    log = tmp_path / "executions.log"
    handle = ident.start(identity_app.gather_steps, run_id="r1")
    _crash_in_window(spawn_worker, log, db_url, "r1", {"fast"})
    spawn_worker("tests.apps.identity_app:app")
    assert handle.result(timeout=60) == ["slow", "fast", "after"]

    keys = _keys(log)
    assert keys["slow"] == ["r1:0", "r1:0"]  # the same key on both attempts
    assert keys["fast"] == ["r1:1"]  # ran once: its journaled result was replayed
    assert keys["after"] == ["r1:2"]
    # the timeline lists entries in the order they were first written (fast before slow here)
    timeline = {e.entry: (e.name, e.status) for e in handle.timeline().entries}
    assert timeline == {
        "0": ("slow_step", "completed"), "1": ("fast_step", "completed"),
        "2": ("fast_step", "completed"),
    }  # fmt: skip


def test_branch_in_flight_keeps_its_keys_and_child_id_after_sigkill(
    ident: legato.App, db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    log = tmp_path / "executions.log"
    handle = ident.start(identity_app.gather_branches, run_id="r2")
    _crash_in_window(spawn_worker, log, db_url, "r2", {"b-1", "b-2"})
    spawn_worker("tests.apps.identity_app:app")
    assert handle.result(timeout=60) == [["a-1", "a-2"], ["b-1", "b-2"], ["leaf-x"]]

    keys = _keys(log)
    # branch "0" is the first task the workflow started, "1" the second; then the position
    assert keys["a-1"] == ["r2:0.0", "r2:0.0"]
    assert keys["a-2"] == ["r2:0.1"]
    assert keys["b-1"] == ["r2:1.0"] and keys["b-2"] == ["r2:1.1"]
    assert keys["leaf-x"] == ["r2~0:0"]  # the child's id is the parent's entry key
    entries = [e.entry for e in handle.timeline().entries]
    assert sorted(entries) == ["0", "0.0", "0.1", "1.0", "1.1"]
