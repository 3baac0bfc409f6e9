"""Approvals and the gate's decisions: what supervision stores, written once for both dialects.

Locks are taken in one order everywhere: the run's row, then its approval's row. A decision and
a run parking on that approval therefore serialize on the run row, so the decision's wake-up is
never missed (under READ COMMITTED a conditional UPDATE filters on its snapshot). Gate
decisions hold the audit chain while they count past calls, so a throttle holds when many runs
propose at once. On SQLite one writer holds the whole database and these locks are no-ops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Literal

from legato.errors import ApprovalConflict, RunConflict, UnknownApproval
from legato.store.audit import append_chain
from legato.store.dialect import Dialect, Tx, marks, page, where
from legato.store.journal import fenced_entry, owns, upsert_entry
from legato.store.records import (
    APPROVAL_COLUMNS,
    TERMINAL,
    ApprovalRecord,
    AuditEvent,
    Entry,
    Window,
)

_SELECT = f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?"


def check_decision(
    current: ApprovalRecord, status: str, by: str, data: str | None, comment: str | None
) -> ApprovalRecord | None:
    """None while the approval is open; the stored decision when this one repeats it.

    Raises when a different decision was already taken (the first one stands) or the approval
    was cancelled with its run.
    """
    if current.status == "pending":
        return None
    if current.status == "cancelled":
        raise RunConflict(
            f"approval {current.approval_id!r} was cancelled with run {current.run_id!r}"
        )
    same = (current.status, current.decided_by, current.decided_data, current.comment) == (
        status,
        by,
        data,
        comment,
    )
    if same:
        return current
    raise ApprovalConflict(
        f"approval {current.approval_id!r} was already {current.status} by"
        f" {current.decided_by}; a different decision is refused"
    )


async def _allowed_times(tx: Tx, w: Window) -> list[float]:
    # calls the gate allowed, and calls a person approved: both count against a throttle
    clause, params = where(("at > ?", w.since), ("subject = ?", w.tool), ("actor = ?", w.actor))
    query = f"SELECT at FROM audit {clause} AND kind IN ('gate.allow', 'tool.approved')"
    return [float(r[0]) for r in await tx.all(query, params)]


class SQLApprovals(Dialect):
    """The :class:`~legato.store.base.SupervisionStore` role: approvals and gate decisions."""

    async def request_approval(
        self, owner: str, entry: Entry, approval: ApprovalRecord, audit: AuditEvent
    ) -> bool:
        async def create(tx: Tx) -> None:  # once: a replayed request finds it made
            created = await tx.execute(
                f"INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ({marks(21)})"
                " ON CONFLICT (approval_id) DO NOTHING",
                dataclasses.astuple(approval),
            )
            if created == 1:
                await append_chain(tx, [audit], approval.created_at)

        return await self._transact(fenced_entry(owner, entry, create), after=entry.run_id)

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        rows = await self._select(_SELECT, (approval_id,))
        return ApprovalRecord(*rows[0]) if rows else None

    async def list_approvals(
        self, *, status: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        head, order = f"SELECT {APPROVAL_COLUMNS} FROM approvals", "created_at, approval_id"
        query = page(head, order, limit, ("status = ?", status), ("run_id = ?", run_id))
        return [ApprovalRecord(*r) for r in await self._select(*query)]

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
        shown = self._shown()

        async def work(tx: Tx) -> ApprovalRecord:
            row = await tx.one(_SELECT, (approval_id,))
            if row is None:
                raise UnknownApproval(f"no approval {approval_id!r} in {shown}")
            run_id = row[1]
            run = await tx.one(
                f"SELECT status FROM runs WHERE run_id = ?{tx.for_update}", (run_id,)
            )
            current = ApprovalRecord(*await tx.one(_SELECT + tx.for_update, (approval_id,)))
            decided = check_decision(current, status, by, data, comment)
            if decided is not None:
                return decided
            if run is None or run[0] in TERMINAL:
                state = "gone" if run is None else run[0]
                raise RunConflict(
                    f"run {run_id!r} is {state}; approval {approval_id!r} can no longer be decided"
                )
            await tx.execute(
                "UPDATE approvals SET status = ?, decided_data = ?, decided_by = ?, comment = ?,"
                " decided_at = ? WHERE approval_id = ?",
                (status, data, by, comment, now, approval_id),
            )
            if run[0] == "waiting":
                await tx.execute(
                    "UPDATE runs SET wake_at = ?, updated_at = ? WHERE run_id = ?",
                    (now, now, run_id),
                )
                await tx.notify()
            await append_chain(tx, [audit], now)
            return ApprovalRecord(*await tx.one(_SELECT, (approval_id,)))

        return await self._transact(work)

    async def consume_approval(
        self, owner: str, entry: Entry, approval_id: str, now: float
    ) -> bool:
        async def consume(tx: Tx) -> None:
            await tx.execute(
                "UPDATE approvals SET consumed_at = ? WHERE approval_id = ?"
                " AND consumed_at IS NULL",
                (now, approval_id),
            )

        return await self._transact(fenced_entry(owner, entry, consume), after=entry.run_id)

    async def record_gate(
        self,
        owner: str,
        run_id: str,
        windows: Sequence[Window],
        decide: Callable[[list[list[float]]], tuple[Entry, AuditEvent]],
        now: float,
    ) -> tuple[Entry, AuditEvent] | None:
        async def work(tx: Tx) -> tuple[Entry, AuditEvent] | None:
            if not await owns(tx, run_id, owner):
                return None
            await tx.lock_audit()  # gate decisions of every worker on the database, one by one
            times = [await _allowed_times(tx, w) for w in windows]
            entry, event = decide(times)
            await upsert_entry(tx, entry)
            await append_chain(tx, [event], now)
            return entry, event

        return await self._transact(work, after=run_id)
