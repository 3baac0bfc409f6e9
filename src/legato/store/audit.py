"""The audit log: one hash chain per database, appended to by one writer at a time.

Each row's hash covers the one before it, so an edited or deleted row breaks the chain
(``legato audit verify`` walks it). Rows are numbered without gaps. Written once for both
dialects (see ``dialect.py``); ``Tx.lock_audit`` serializes the appends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from legato.store.dialect import Dialect, Tx, page
from legato.store.records import AUDIT_COLUMNS, AuditEvent, AuditRecord

GENESIS_HASH = "0" * 64


def audit_hash(
    prev_hash: str,
    seq: int,
    at: float,
    kind: str,
    actor: str | None,
    run_id: str | None,
    subject: str | None,
    detail: str,
) -> str:
    """The hash that chains an audit row to the one before it (any edit breaks the chain).

    ``at`` is hashed as the float the row stores: an int time (a clock moved to a whole second)
    would otherwise hash as ``5`` and read back as ``5.0``, and verify would call it tampered."""
    row = [seq, float(at), kind, actor, run_id, subject, detail]
    body = json.dumps(row, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


async def append_chain(tx: Tx, events: Sequence[AuditEvent], now: float) -> None:
    """Chain ``events`` after the last audit row, inside the caller's transaction."""
    await tx.lock_audit()
    last = await tx.one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
    for e in events:
        seq += 1
        digest = audit_hash(prev, seq, now, e.kind, e.actor, e.run_id, e.subject, e.detail)
        await tx.execute(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, now, e.kind, e.actor, e.run_id, e.subject, e.detail, prev, digest),
        )
        prev = digest


class SQLAudit(Dialect):
    """The :class:`~legato.store.base.AuditStore` role."""

    async def append_audit(self, events: Sequence[AuditEvent], now: float) -> None:
        async def work(tx: Tx) -> None:
            await append_chain(tx, events, now)

        await self._transact(work)

    async def list_audit(
        self,
        *,
        run_id: str | None = None,
        after: int = 0,
        limit: int = 1000,
        kind_prefix: str | None = None,
    ) -> list[AuditRecord]:
        head = f"SELECT {AUDIT_COLUMNS} FROM audit"
        prefix = None if kind_prefix is None else kind_prefix.replace("%", "") + "%"
        query = page(
            head, "seq", limit, ("seq > ?", after), ("run_id = ?", run_id), ("kind LIKE ?", prefix)
        )
        return [AuditRecord(*r) for r in await self._select(*query)]

    async def gate_actors(self) -> list[str]:
        rows = await self._select(
            "SELECT DISTINCT actor FROM audit WHERE kind LIKE 'gate.%' AND actor IS NOT NULL"
            " ORDER BY actor"
        )
        return [r[0] for r in rows]
