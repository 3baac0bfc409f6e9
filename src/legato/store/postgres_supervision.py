"""Supervision on PostgreSQL: approvals, the audit chain, autonomy levels and paused workflows.

Locks are taken in one order everywhere: the run's row, then its approval's row. A decision and
a run parking on that approval therefore serialize on the run row, so the decision's wake-up is
never missed (under READ COMMITTED a conditional UPDATE filters on its snapshot). Appends to the
audit chain are serialized by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
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
    equal_filters,
    redact_url,
    where_clause,
)

T = TypeVar("T")
Conn = Any  # psycopg.AsyncConnection; kept loose so this module imports without psycopg types
_AUDIT_LOCK = 7_263_189_042
_OWNS = "SELECT 1 FROM runs WHERE run_id = %s AND owner = %s AND status = 'running' FOR UPDATE"


def _approval(row: Sequence[Any]) -> ApprovalRecord:
    return ApprovalRecord(*row)


async def append_audit(conn: Conn, events: Sequence[AuditEvent], now: float) -> None:
    """Chain ``events`` after the last audit row, inside the caller's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
    cur = await conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    last = await cur.fetchone()
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
    for e in events:
        seq += 1
        digest = audit_hash(prev, seq, now, e.kind, e.actor, e.run_id, e.subject, e.detail)
        await conn.execute(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (seq, now, e.kind, e.actor, e.run_id, e.subject, e.detail, prev, digest),
        )
        prev = digest


async def _allowed_times(conn: Conn, w: Window) -> list[float]:
    # calls the gate allowed, and calls a person approved: both count against a throttle
    query = "SELECT at FROM audit WHERE kind IN ('gate.allow', 'tool.approved') AND at > %s"
    extra, params = equal_filters((("subject", w.tool), ("actor", w.actor)), "%s")
    query += "".join(f" AND {part}" for part in extra)
    params.insert(0, w.since)
    cur = await conn.execute(query, params)
    return [float(r[0]) for r in await cur.fetchall()]


class PostgresSupervision:
    """Mixed into PostgresStore, which provides the connection plumbing used here."""

    url: str
    channel: str
    _retrying: Callable[..., Awaitable[Any]]
    _fenced: Callable[..., Awaitable[Any]]
    _rows: Callable[..., Awaitable[list[Any]]]
    _notify: Callable[[Conn], Awaitable[None]]
    _upsert: Callable[[Conn, Entry], Awaitable[None]]

    # approvals --------------------------------------------------------------------------
    async def request_approval(
        self, owner: str, entry: Entry, approval: ApprovalRecord, audit: AuditEvent
    ) -> bool:
        async def work(conn: Conn) -> bool:
            if await (await conn.execute(_OWNS, (entry.run_id, owner))).fetchone() is None:
                return False
            await self._upsert(conn, entry)
            cur = await conn.execute(
                f"INSERT INTO approvals ({APPROVAL_COLUMNS})"
                f" VALUES ({', '.join(['%s'] * 21)})"
                " ON CONFLICT (approval_id) DO NOTHING RETURNING 1",
                dataclasses.astuple(approval),
            )
            if await cur.fetchone() is not None:
                await append_audit(conn, [audit], approval.created_at)
            return True

        result: bool = await self._fenced(entry.run_id, work)
        return result

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        rows = await self._rows(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = %s", (approval_id,)
        )
        return _approval(rows[0]) if rows else None

    async def list_approvals(
        self, *, status: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        where, params = equal_filters((("status", status), ("run_id", run_id)), "%s")
        clause = where_clause(where)
        rows = await self._rows(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals {clause}"
            " ORDER BY created_at, approval_id LIMIT %s",
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
        select = f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = %s"

        async def work(conn: Conn) -> ApprovalRecord:
            row = await (await conn.execute(select, (approval_id,))).fetchone()
            if row is None:
                raise UnknownApproval(f"no approval {approval_id!r} in {redact_url(self.url)}")
            run_id = row[1]
            run = await (
                await conn.execute(
                    "SELECT status FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)
                )
            ).fetchone()
            current = _approval(
                await (await conn.execute(select + " FOR UPDATE", (approval_id,))).fetchone()
            )
            decided = check_decision(current, status, by, data, comment)
            if decided is not None:
                return decided
            if run is None or run[0] in TERMINAL:
                state = "gone" if run is None else run[0]
                raise RunConflict(
                    f"run {run_id!r} is {state}; approval {approval_id!r} can no longer be decided"
                )
            await conn.execute(
                "UPDATE approvals SET status = %s, decided_data = %s, decided_by = %s,"
                " comment = %s, decided_at = %s WHERE approval_id = %s",
                (status, data, by, comment, now, approval_id),
            )
            if run[0] == "waiting":
                await conn.execute(
                    "UPDATE runs SET wake_at = %s, updated_at = %s WHERE run_id = %s",
                    (now, now, run_id),
                )
                await self._notify(conn)
            await append_audit(conn, [audit], now)
            return _approval(await (await conn.execute(select, (approval_id,))).fetchone())

        result: ApprovalRecord = await self._retrying(work)
        return result

    async def consume_approval(
        self, owner: str, entry: Entry, approval_id: str, now: float
    ) -> bool:
        async def work(conn: Conn) -> bool:
            if await (await conn.execute(_OWNS, (entry.run_id, owner))).fetchone() is None:
                return False
            await self._upsert(conn, entry)
            await conn.execute(
                "UPDATE approvals SET consumed_at = %s"
                " WHERE approval_id = %s AND consumed_at IS NULL",
                (now, approval_id),
            )
            return True

        result: bool = await self._fenced(entry.run_id, work)
        return result

    # audit ------------------------------------------------------------------------------
    async def append_audit(self, events: Sequence[AuditEvent], now: float) -> None:
        async def work(conn: Conn) -> None:
            await append_audit(conn, events, now)

        await self._retrying(work)

    async def record_audited(self, owner: str, entry: Entry, event: AuditEvent, now: float) -> bool:
        async def work(conn: Conn) -> bool:
            if await (await conn.execute(_OWNS, (entry.run_id, owner))).fetchone() is None:
                return False
            await self._upsert(conn, entry)
            await append_audit(conn, [event], now)
            return True

        result: bool = await self._fenced(entry.run_id, work)
        return result

    async def record_gate(
        self,
        owner: str,
        run_id: str,
        windows: Sequence[Window],
        decide: Callable[[list[list[float]]], tuple[Entry, AuditEvent]],
        now: float,
    ) -> tuple[Entry, AuditEvent] | None:
        async def work(conn: Conn) -> tuple[Entry, AuditEvent] | None:
            # the audit lock serializes gate decisions across every worker on the database
            if await (await conn.execute(_OWNS, (run_id, owner))).fetchone() is None:
                return None
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
            times = [await _allowed_times(conn, w) for w in windows]
            entry, event = decide(times)
            await self._upsert(conn, entry)
            await append_audit(conn, [event], now)
            return entry, event

        result: tuple[Entry, AuditEvent] | None = await self._fenced(run_id, work)
        return result

    async def list_audit(
        self, *, run_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditRecord]:
        clause, params = ("AND run_id = %s", [run_id]) if run_id is not None else ("", [])
        rows = await self._rows(
            f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > %s {clause} ORDER BY seq LIMIT %s",
            [after, *params, limit],
        )
        return [AuditRecord(*r) for r in rows]

    # autonomy and pause -----------------------------------------------------------------
    async def set_autonomy(
        self, actor: str, level: int, by: str, reason: str, now: float, audit: AuditEvent
    ) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO autonomy (actor, level, set_by, reason, updated_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (actor) DO UPDATE SET"
                " level = EXCLUDED.level, set_by = EXCLUDED.set_by, reason = EXCLUDED.reason,"
                " updated_at = EXCLUDED.updated_at",
                (actor, level, by, reason, now),
            )
            await append_audit(conn, [audit], now)

        await self._retrying(work)

    async def get_autonomy(self, actor: str) -> int | None:
        rows = await self._rows("SELECT level FROM autonomy WHERE actor = %s", (actor,))
        return int(rows[0][0]) if rows else None

    async def list_autonomy(self) -> list[tuple[str, int, str, str, float]]:
        rows = await self._rows(
            "SELECT actor, level, set_by, reason, updated_at FROM autonomy ORDER BY actor"
        )
        return [(str(a), int(b), str(c), str(d), float(e)) for a, b, c, d, e in rows]

    async def set_paused(
        self, workflow: str, paused: bool, by: str, reason: str, now: float, audit: AuditEvent
    ) -> bool:
        async def work(conn: Conn) -> bool:
            if paused:
                cur = await conn.execute(
                    "INSERT INTO paused (workflow, paused_by, reason, paused_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (workflow) DO NOTHING",
                    (workflow, by, reason, now),
                )
            else:
                cur = await conn.execute("DELETE FROM paused WHERE workflow = %s", (workflow,))
            if cur.rowcount != 1:
                return False
            await append_audit(conn, [audit], now)
            await self._notify(conn)  # workers refresh what they may run
            return True

        result: bool = await self._retrying(work)
        return result

    async def paused_workflows(self) -> dict[str, tuple[str, str, float]]:
        rows = await self._rows("SELECT workflow, paused_by, reason, paused_at FROM paused")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


__all__ = ["PostgresSupervision", "append_audit"]
