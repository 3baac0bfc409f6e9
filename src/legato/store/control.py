"""What people set at run time: autonomy levels of actors and paused workflows, each audited.

Written once for both dialects (see ``dialect.py``).
"""

from __future__ import annotations

from legato.store.audit import append_chain
from legato.store.dialect import Dialect, Tx
from legato.store.records import AuditEvent


async def upsert_autonomy(tx: Tx, actor: str, level: int, by: str, reason: str, now: float) -> None:
    await tx.execute(
        "INSERT INTO autonomy (actor, level, set_by, reason, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (actor) DO UPDATE SET level = excluded.level,"
        " set_by = excluded.set_by, reason = excluded.reason,"
        " updated_at = excluded.updated_at",
        (actor, level, by, reason, now),
    )


async def change_paused(
    tx: Tx, workflow: str, paused: bool, by: str, reason: str, now: float
) -> bool:
    """Pause or resume ``workflow`` inside ``tx``; False when it already was so."""
    if paused:
        changed = await tx.execute(
            "INSERT INTO paused (workflow, paused_by, reason, paused_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (workflow) DO NOTHING",
            (workflow, by, reason, now),
        )
    else:
        changed = await tx.execute("DELETE FROM paused WHERE workflow = ?", (workflow,))
    if changed != 1:
        return False
    await tx.notify()  # workers refresh what they may run
    return True


class SQLControl(Dialect):
    """The :class:`~legato.store.base.ControlStore` role."""

    async def set_autonomy(
        self, actor: str, level: int, by: str, reason: str, now: float, audit: AuditEvent
    ) -> None:
        async def work(tx: Tx) -> None:
            await upsert_autonomy(tx, actor, level, by, reason, now)
            await append_chain(tx, [audit], now)

        await self._transact(work)

    async def get_autonomy(self, actor: str) -> int | None:
        rows = await self._select("SELECT level FROM autonomy WHERE actor = ?", (actor,))
        return int(rows[0][0]) if rows else None

    async def list_autonomy(self) -> list[tuple[str, int, str, str, float]]:
        rows = await self._select(
            "SELECT actor, level, set_by, reason, updated_at FROM autonomy ORDER BY actor"
        )
        return [(str(a), int(b), str(c), str(d), float(e)) for a, b, c, d, e in rows]

    async def set_paused(
        self, workflow: str, paused: bool, by: str, reason: str, now: float, audit: AuditEvent
    ) -> bool:
        async def work(tx: Tx) -> bool:
            if not await change_paused(tx, workflow, paused, by, reason, now):
                return False
            await append_chain(tx, [audit], now)
            return True

        return await self._transact(work)

    async def paused_workflows(self) -> dict[str, tuple[str, str, float]]:
        rows = await self._select("SELECT workflow, paused_by, reason, paused_at FROM paused")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}
