"""Supervision on SQLite: approvals, the audit chain, autonomy levels and paused workflows.

Writes go through the same group commit as journals; SQLite serializes writers, so the audit
chain and "exactly one decision wins" need no extra locking here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from legato.errors import RunConflict, UnknownApproval
from legato.store.base import (
    APPROVAL_COLUMNS,
    AUDIT_COLUMNS,
    GENESIS_HASH,
    TERMINAL,
    ApprovalRecord,
    AuditEvent,
    AuditRecord,
    Entry,
    Window,
    audit_hash,
    check_decision,
    entry_values,
    equal_filters,
    where_clause,
)
from legato.store.sqlite_common import _OWNS, _UPSERT_ENTRY, _in, _require_run

T = TypeVar("T")


def _approval(row: Sequence[Any]) -> ApprovalRecord:
    return ApprovalRecord(*row)


def append_audit(conn: sqlite3.Connection, events: Sequence[AuditEvent], now: float) -> None:
    """Chain ``events`` after the last audit row (inside the caller's transaction)."""
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS_HASH)
    for e in events:
        seq += 1
        digest = audit_hash(prev, seq, now, e.kind, e.actor, e.run_id, e.subject, e.detail)
        conn.execute(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, now, e.kind, e.actor, e.run_id, e.subject, e.detail, prev, digest),
        )
        prev = digest


def _allowed_times(conn: sqlite3.Connection, w: Window) -> list[float]:
    # calls the gate allowed, and calls a person approved: both count against a throttle
    query = "SELECT at FROM audit WHERE kind IN ('gate.allow', 'tool.approved') AND at > ?"
    extra, params = equal_filters((("subject", w.tool), ("actor", w.actor)), "?")
    query += "".join(f" AND {part}" for part in extra)
    params.insert(0, w.since)
    return [float(r[0]) for r in conn.execute(query, params)]


class SQLiteSupervision:
    """Mixed into SQLiteStore, which provides ``_write``, ``_query`` and ``url``."""

    url: str
    _write: Callable[..., Any]
    _query: Callable[..., list[Any]]

    # approvals --------------------------------------------------------------------------
    async def request_approval(
        self, owner: str, entry: Entry, approval: ApprovalRecord, audit: AuditEvent
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            params = (*entry_values(entry), entry.run_id, owner)
            if conn.execute(_UPSERT_ENTRY, params).rowcount != 1:
                return False
            cur = conn.execute(
                f"INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ({_in(range(21))})"
                " ON CONFLICT (approval_id) DO NOTHING",
                dataclasses.astuple(approval),
            )
            if cur.rowcount == 1:
                append_audit(conn, [audit], approval.created_at)
            return True

        result: bool = await self._write(op)
        return result

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (approval_id,)
        )
        return _approval(rows[0]) if rows else None

    async def list_approvals(
        self, *, status: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        where, params = equal_filters((("status", status), ("run_id", run_id)), "?")
        clause = where_clause(where)
        rows = self._query(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals {clause}"
            " ORDER BY created_at, approval_id LIMIT ?",
            [*params, limit],
        )
        return [_approval(r) for r in rows]

    async def decide_approval(
        self,
        approval_id: str,
        *,
        status: Literal["approved", "rejected", "expired"],
        by: str,
        data: str | None,
        comment: str | None,
        now: float,
        audit: AuditEvent,
    ) -> ApprovalRecord:
        def op(conn: sqlite3.Connection) -> ApprovalRecord:
            row = conn.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (approval_id,)
            ).fetchone()
            if row is None:
                raise UnknownApproval(f"no approval {approval_id!r} in {self.url}")
            current = _approval(row)
            decided = check_decision(current, status, by, data, comment)
            if decided is not None:
                return decided
            run = _require_run(conn, current.run_id, self.url)
            if run.status in TERMINAL:
                raise RunConflict(
                    f"run {run.run_id!r} is {run.status}; approval {approval_id!r} can no longer"
                    " be decided"
                )
            conn.execute(
                "UPDATE approvals SET status = ?, decided_data = ?, decided_by = ?, comment = ?,"
                " decided_at = ? WHERE approval_id = ?",
                (status, data, by, comment, now, approval_id),
            )
            conn.execute(
                "UPDATE runs SET wake_at = ?, updated_at = ?"
                " WHERE run_id = ? AND status = 'waiting'",
                (now, now, current.run_id),
            )
            append_audit(conn, [audit], now)
            fresh = conn.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?", (approval_id,)
            ).fetchone()
            return _approval(fresh)

        result: ApprovalRecord = await self._write(op)
        return result

    async def consume_approval(
        self, owner: str, entry: Entry, approval_id: str, now: float
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(_OWNS, (entry.run_id, owner)).fetchone() is None:
                return False
            conn.execute(_UPSERT_ENTRY, (*entry_values(entry), entry.run_id, owner))
            conn.execute(
                "UPDATE approvals SET consumed_at = ?"
                " WHERE approval_id = ? AND consumed_at IS NULL",
                (now, approval_id),
            )
            return True

        result: bool = await self._write(op)
        return result

    # audit ------------------------------------------------------------------------------
    async def append_audit(self, events: Sequence[AuditEvent], now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            append_audit(conn, events, now)

        await self._write(op)

    async def record_audited(self, owner: str, entry: Entry, event: AuditEvent, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if (
                conn.execute(_UPSERT_ENTRY, (*entry_values(entry), entry.run_id, owner)).rowcount
                != 1
            ):
                return False
            append_audit(conn, [event], now)
            return True

        result: bool = await self._write(op)
        return result

    async def record_gate(
        self,
        owner: str,
        run_id: str,
        windows: Sequence[Window],
        decide: Callable[[list[list[float]]], tuple[Entry, AuditEvent]],
        now: float,
    ) -> tuple[Entry, AuditEvent] | None:
        def op(conn: sqlite3.Connection) -> tuple[Entry, AuditEvent] | None:
            if conn.execute(_OWNS, (run_id, owner)).fetchone() is None:
                return None
            times = [_allowed_times(conn, w) for w in windows]  # inside the write transaction
            entry, event = decide(times)
            conn.execute(_UPSERT_ENTRY, (*entry_values(entry), run_id, owner))
            append_audit(conn, [event], now)
            return entry, event

        result: tuple[Entry, AuditEvent] | None = await self._write(op)
        return result

    async def list_audit(
        self, *, run_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditRecord]:
        clause, params = ("AND run_id = ?", [run_id]) if run_id is not None else ("", [])
        rows = self._query(
            f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ? {clause} ORDER BY seq LIMIT ?",
            [after, *params, limit],
        )
        return [AuditRecord(*r) for r in rows]

    # autonomy and pause -----------------------------------------------------------------
    async def set_autonomy(
        self, actor: str, level: int, by: str, reason: str, now: float, audit: AuditEvent
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO autonomy (actor, level, set_by, reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (actor) DO UPDATE SET level = excluded.level,"
                " set_by = excluded.set_by, reason = excluded.reason,"
                " updated_at = excluded.updated_at",
                (actor, level, by, reason, now),
            )
            append_audit(conn, [audit], now)

        await self._write(op)

    async def get_autonomy(self, actor: str) -> int | None:
        rows = self._query("SELECT level FROM autonomy WHERE actor = ?", (actor,))
        return int(rows[0][0]) if rows else None

    async def list_autonomy(self) -> list[tuple[str, int, str, str, float]]:
        rows = self._query(
            "SELECT actor, level, set_by, reason, updated_at FROM autonomy ORDER BY actor"
        )
        return [(str(a), int(b), str(c), str(d), float(e)) for a, b, c, d, e in rows]

    async def set_paused(
        self, workflow: str, paused: bool, by: str, reason: str, now: float, audit: AuditEvent
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if paused:
                cur = conn.execute(
                    "INSERT INTO paused (workflow, paused_by, reason, paused_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (workflow) DO NOTHING",
                    (workflow, by, reason, now),
                )
            else:
                cur = conn.execute("DELETE FROM paused WHERE workflow = ?", (workflow,))
            if cur.rowcount != 1:
                return False
            append_audit(conn, [audit], now)
            return True

        result: bool = await self._write(op)
        return result

    async def paused_workflows(self) -> dict[str, tuple[str, str, float]]:
        rows = self._query("SELECT workflow, paused_by, reason, paused_at FROM paused")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


__all__ = ["SQLiteSupervision", "append_audit"]
