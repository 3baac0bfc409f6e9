"""SQL pieces both SQLite store modules use (runs and journals; supervision)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from legato.errors import UnknownRun
from legato.store.base import ENTRY_COLUMNS, RUN_COLUMNS, RunRecord

_RUN_COLS = RUN_COLUMNS
_ENTRY_COLS = ENTRY_COLUMNS
_UPSERT_ENTRY = f"""
INSERT INTO entries ({_ENTRY_COLS})
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running')
ON CONFLICT (run_id, seq) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, status = excluded.status,
    input = excluded.input, output = excluded.output, error = excluded.error,
    attempts = excluded.attempts, started_at = excluded.started_at,
    finished_at = excluded.finished_at, wake_at = excluded.wake_at, branch = excluded.branch,
    position = excluded.position
"""
_OWNS = "SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running'"


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(*row)


def _in(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _require_run(conn: sqlite3.Connection, run_id: str, url: str = "this database") -> RunRecord:
    row = conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise UnknownRun(f"no run {run_id!r} in {url}")
    return _run(row)


def _wake_parent(conn: sqlite3.Connection, parent_run_id: str | None, now: float) -> None:
    if parent_run_id is not None:
        conn.execute(
            "UPDATE runs SET wake_at = ?, updated_at = ? WHERE run_id = ? AND status = 'waiting'",
            (now, now, parent_run_id),
        )
