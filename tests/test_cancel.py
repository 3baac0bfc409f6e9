"""Cancelling a run stops the step in flight at once, not at the run's next journal write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.apps import cancel_app
from tests.apps.counters import executions
from tests.conftest import WorkerProcess, sql, wait_until


def _log(tmp_path: Path) -> list[tuple[str, ...]]:
    return [tuple(parts[:-1]) for parts in executions(tmp_path / "executions.log")]


@pytest.mark.parametrize(
    ("workflow", "kind", "how"),
    [("waits_async", "async", "cancelled"), ("waits_sync", "sync", "saw-cancel")],
)
def test_a_cancel_reaches_the_step_in_flight(
    db_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
    workflow: str,
    kind: str,
    how: str,
) -> None:
    worker = spawn_worker("tests.apps.cancel_app:app")
    app = cancel_app.app
    app.database_url = db_url
    try:
        app.start(getattr(cancel_app, workflow), run_id="r")
        wait_until(lambda: (kind, "started") in _log(tmp_path), 60, "the step to start")
        app.cancel("r")
        # the step would run two minutes; it ends within the worker's check interval
        wait_until(lambda: (kind, how) in _log(tmp_path), 20, f"the {kind} step to stop")
        assert app.handle("r").status() == "cancelled"
        # nothing was recorded for the step, and the worker goes on with its other work
        assert sql(db_url, "SELECT status FROM entries WHERE run_id = 'r'") in ([], [("running",)])
        app.start(cancel_app.waits_async, run_id="next")
        wait_until(lambda: _log(tmp_path).count(("async", "started")) == 1 + (kind == "async"),
                   60, "the next run to start")  # fmt: skip
        assert worker.proc.poll() is None
    finally:
        app.close()
