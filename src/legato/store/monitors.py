"""Monitors' state, the alerts they send, and the aliases they reroute.

Many workers run the same monitors; each window is evaluated once. A worker *claims* the next
window of a monitor (a lease: a compare-and-set on the monitor's row), computes, then *commits*
the window: the new state, the actions (autonomy, pause, reroute), the audit events and the
alerts to send, all in one transaction that is fenced on its claim. A worker that died under a
claim leaves it to expire; another takes the window over. Alerts wait in an outbox until a
webhook accepts them. Written once for both dialects (see ``dialect.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from legato.store.audit import append_chain
from legato.store.control import change_paused, upsert_autonomy
from legato.store.dialect import Dialect, Tx, marks
from legato.store.records import AuditEvent


@dataclass(frozen=True, slots=True)
class MonitorState:
    """A monitor as stored: ``ok`` or ``firing``, and what its last window showed."""

    name: str
    state: str = "ok"
    #: the last window evaluated (its number; -1: none yet)
    window_done: int = -1
    #: for windows of the last N samples: the last sample taken (time, key)
    cursor_at: float | None = None
    cursor_key: str | None = None
    #: healthy windows in a row since the monitor fired
    healthy: int = 0
    last_value: float | None = None
    last_low: float | None = None
    last_high: float | None = None
    last_n: int | None = None
    last_baseline: float | None = None
    evaluated_at: float | None = None
    fired_at: float | None = None
    restored_at: float | None = None
    #: JSON: what the actions changed, to restore it (previous autonomy levels, routes)
    saved: str = "{}"


STATE_COLUMNS = ", ".join(f.name for f in dataclasses.fields(MonitorState))
_STATE_COUNT = len(dataclasses.fields(MonitorState))


@dataclass(slots=True)
class MonitorChanges:
    """What committing a window (or a person's restore) writes with the monitor's new state."""

    autonomy: list[tuple[str, int]] = field(default_factory=list)  # (actor, level)
    pause: list[tuple[str, bool]] = field(default_factory=list)  # (workflow, paused)
    routes: list[tuple[str, str | None]] = field(default_factory=list)  # alias -> deployment
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (url, JSON body)
    audit: list[AuditEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    monitor: str
    url: str
    body: str
    attempts: int
    next_at: float
    delivered_at: float | None
    last_error: str | None
    created_at: float


ALERT_COLUMNS = ", ".join(f.name for f in dataclasses.fields(AlertRecord))


async def _apply(tx: Tx, name: str, changes: MonitorChanges, now: float) -> None:
    by = f"monitor:{name}"
    for actor, level in changes.autonomy:
        await upsert_autonomy(tx, actor, level, by, f"monitor {name}", now)
    for workflow, paused in changes.pause:
        await change_paused(tx, workflow, paused, by, f"monitor {name}", now)
    for alias, deployment in changes.routes:
        if deployment is None:
            await tx.execute("DELETE FROM route_overrides WHERE alias = ?", (alias,))
        else:
            await tx.execute(
                "INSERT INTO route_overrides (alias, deployment, set_by, reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (alias) DO UPDATE SET"
                " deployment = excluded.deployment, set_by = excluded.set_by,"
                " reason = excluded.reason, updated_at = excluded.updated_at",
                (alias, deployment, by, f"monitor {name}", now),
            )
    for url, body in changes.alerts:
        await tx.execute(
            "INSERT INTO alerts (monitor, url, body, attempts, next_at, created_at)"
            " VALUES (?, ?, ?, 0, ?, ?)",
            (name, url, body, now, now),
        )
    if changes.audit:
        await append_chain(tx, changes.audit, now)


async def _write_state(tx: Tx, state: MonitorState) -> None:
    values = dataclasses.astuple(state)
    await tx.execute(
        f"UPDATE monitors SET ({STATE_COLUMNS}) = ({marks(len(values))}) WHERE name = ?",
        (*values, state.name),
    )


class SQLMonitors(Dialect):
    """The :class:`~legato.store.base.MonitorStore` role."""

    async def monitor_states(self) -> list[MonitorState]:
        rows = await self._select(f"SELECT {STATE_COLUMNS} FROM monitors ORDER BY name")
        return [MonitorState(*r) for r in rows]

    async def claim_monitor(
        self, name: str, window: int, owner: str, now: float, lease: float
    ) -> MonitorState | None:
        async def work(tx: Tx) -> MonitorState | None:
            await tx.execute(
                f"INSERT INTO monitors ({STATE_COLUMNS}) VALUES ({marks(_STATE_COUNT)})"
                " ON CONFLICT (name) DO NOTHING",
                dataclasses.astuple(MonitorState(name)),
            )
            claimed = await tx.execute(
                "UPDATE monitors SET claim_owner = ?, claim_window = ?, claim_until = ?"
                " WHERE name = ? AND window_done < ?"
                " AND (claim_until IS NULL OR claim_until < ? OR claim_window < ?"
                " OR claim_owner = ?)",
                (owner, window, now + lease, name, window, now, window, owner),
            )
            if claimed != 1:
                return None
            row = await tx.one(f"SELECT {STATE_COLUMNS} FROM monitors WHERE name = ?", (name,))
            return MonitorState(*row)

        return await self._transact(work)

    async def commit_monitor(
        self,
        state: MonitorState,
        changes: MonitorChanges,
        now: float,
        *,
        owner: str | None = None,
    ) -> bool:
        async def work(tx: Tx) -> bool:
            if owner is not None:
                held = await tx.one(
                    "SELECT 1 FROM monitors WHERE name = ? AND claim_owner = ?"
                    " AND claim_window = ? AND window_done < ?" + tx.for_update,
                    (state.name, owner, state.window_done, state.window_done),
                )
                if held is None:
                    return False  # another worker took the window over and committed it
            else:
                exists = await tx.one(
                    "SELECT 1 FROM monitors WHERE name = ?" + tx.for_update, (state.name,)
                )
                if exists is None:
                    return False
            await _apply(tx, state.name, changes, now)
            await _write_state(tx, state)
            await tx.execute(
                "UPDATE monitors SET claim_owner = NULL, claim_until = NULL WHERE name = ?",
                (state.name,),
            )
            return True

        return await self._transact(work)

    async def route_overrides(self) -> dict[str, str]:
        rows = await self._select("SELECT alias, deployment FROM route_overrides")
        return {str(a): str(d) for a, d in rows}

    async def claim_alerts(self, now: float, lease: float, limit: int = 10) -> list[AlertRecord]:
        due = await self._select(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE delivered_at IS NULL AND next_at <= ?"
            " ORDER BY id LIMIT ?",
            (now, limit),
        )
        taken: list[AlertRecord] = []
        for row in due:
            alert = AlertRecord(*row)

            async def work(tx: Tx, alert: AlertRecord = alert) -> int:
                return await tx.execute(
                    "UPDATE alerts SET next_at = ?, attempts = attempts + 1"
                    " WHERE id = ? AND next_at = ? AND delivered_at IS NULL",
                    (now + lease, alert.id, alert.next_at),
                )

            if await self._transact(work) == 1:
                taken.append(dataclasses.replace(alert, attempts=alert.attempts + 1))
        return taken

    async def alert_done(
        self, alert_id: int, now: float, *, error: str | None = None, retry_at: float | None = None
    ) -> None:
        async def work(tx: Tx) -> None:
            if error is None:
                await tx.execute(
                    "UPDATE alerts SET delivered_at = ?, last_error = NULL WHERE id = ?",
                    (now, alert_id),
                )
            else:
                await tx.execute(
                    "UPDATE alerts SET last_error = ?, next_at = ? WHERE id = ?",
                    (error, retry_at if retry_at is not None else now, alert_id),
                )

        await self._transact(work)

    async def list_alerts(
        self, *, monitor: str | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        params: Sequence[Any] = (monitor, limit) if monitor else (limit,)
        clause = "WHERE monitor = ?" if monitor else ""
        rows = await self._select(
            f"SELECT {ALERT_COLUMNS} FROM alerts {clause} ORDER BY id DESC LIMIT ?", params
        )
        return [AlertRecord(*r) for r in rows]
