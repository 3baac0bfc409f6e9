"""The audit log: an append-only, hash-chained record of every supervision decision.

Each row's hash covers its content and the previous row's hash, so editing, removing or
reordering a row breaks the chain from there on; ``legato audit verify`` names the first row
where it breaks. (Deleting the newest rows leaves a shorter chain that still verifies: keep an
external note of the last row, or ship the log elsewhere, when that matters.)
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass

from legato.errors import ConfigurationError
from legato.ops.names import require_name
from legato.store.base import GENESIS_HASH, AuditRecord, AuditStore, audit_hash


@dataclass(frozen=True)
class AuditCheck:
    """The result of ``legato audit verify``."""

    rows: int
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


@dataclass(eq=False)
class AuditOps:
    """``ops.audit``: read and verify the audit log."""

    store: AuditStore

    async def list(
        self, *, run_id: str | None = None, limit: int = 1000
    ) -> builtins.list[AuditRecord]:
        """Rows, oldest first (of one run with ``run_id``)."""
        return await self.store.list_audit(run_id=run_id, limit=limit)

    async def require_actor(
        self, actor: str, *, also: Collection[str] = (), hint: str = ""
    ) -> None:
        """Raise :class:`ConfigurationError` unless the gate has decided a tool call of
        ``actor``, or it is one of ``also`` (actors with a level, or in the app's policy)."""
        missing = f"no actor {actor!r} has proposed a tool call here or has a level"
        await require_name(
            actor, also, self.store.gate_actors, lambda m: ConfigurationError(m + hint), missing
        )

    async def verify(self) -> AuditCheck:
        """Recompute the chain: an edited, removed or reordered row breaks it."""
        expected_prev, expected_seq, rows = GENESIS_HASH, 1, 0
        while True:
            page = await self.store.list_audit(after=expected_seq - 1, limit=1000)
            if not page:
                return AuditCheck(rows)
            for r in page:
                rows += 1
                if r.seq != expected_seq:
                    return AuditCheck(rows, expected_seq, f"row {expected_seq} is missing")
                if r.prev_hash != expected_prev:
                    return AuditCheck(rows, r.seq, "it does not follow the row before it")
                digest = audit_hash(
                    r.prev_hash, r.seq, r.at, r.kind, r.actor, r.run_id, r.subject, r.detail
                )
                if digest != r.hash:
                    return AuditCheck(rows, r.seq, "its content does not match its hash")
                expected_prev, expected_seq = r.hash, r.seq + 1
