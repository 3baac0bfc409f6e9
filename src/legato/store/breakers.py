"""Circuit breakers in the database, so every worker sees the same state (the AI layer's).

One row per deployment that failed lately. Each transition is one statement, safe to race:
a failure counts and, at the limit, opens the breaker; after the cooldown exactly one caller
wins the half-open probe (an ``UPDATE`` guarded by the probe's lease); a success deletes the
row. Written once for both dialects.
"""

from __future__ import annotations

from dataclasses import dataclass

from legato.store.dialect import Dialect, Tx


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A deployment's breaker: ``failures`` in a row; open until ``open_until`` (None:
    closed); a probe in flight until ``probe_until``."""

    deployment: str
    failures: int
    open_until: float | None = None
    probe_until: float | None = None


_COLUMNS = "deployment, failures, open_until, probe_until"


def _state(row: tuple[object, ...]) -> BreakerState:
    deployment, failures, open_until, probe_until = row
    return BreakerState(
        str(deployment), int(str(failures)),
        None if open_until is None else float(str(open_until)),
        None if probe_until is None else float(str(probe_until)),
    )  # fmt: skip


class SQLBreakers(Dialect):
    """The :class:`~legato.store.base.BreakerStore` role."""

    async def breaker(self, deployment: str) -> BreakerState | None:
        rows = await self._select(
            f"SELECT {_COLUMNS} FROM breakers WHERE deployment = ?", (deployment,)
        )
        return _state(tuple(rows[0])) if rows else None

    async def breaker_failure(
        self, deployment: str, now: float, limit: int, cooldown: float
    ) -> BreakerState:
        until = now + cooldown

        async def work(tx: Tx) -> BreakerState:
            # at the limit (a failed probe is past it already) the breaker opens, or opens again
            await tx.execute(
                "INSERT INTO breakers (deployment, failures, open_until, probe_until)"
                " VALUES (?, 1, CASE WHEN 1 >= ? THEN ? ELSE NULL END, NULL)"
                " ON CONFLICT (deployment) DO UPDATE SET failures = breakers.failures + 1,"
                " open_until = CASE WHEN breakers.failures + 1 >= ? THEN ?"
                " ELSE breakers.open_until END,"
                " probe_until = CASE WHEN breakers.failures + 1 >= ? THEN NULL"
                " ELSE breakers.probe_until END",
                (deployment, limit, until, limit, until, limit),
            )
            row = await tx.one(f"SELECT {_COLUMNS} FROM breakers WHERE deployment = ?",
                               (deployment,))  # fmt: skip
            return _state(tuple(row))

        return await self._transact(work)

    async def breaker_probe(self, deployment: str, now: float, lease: float) -> bool:
        async def work(tx: Tx) -> bool:
            won = await tx.execute(
                "UPDATE breakers SET probe_until = ? WHERE deployment = ?"
                " AND open_until IS NOT NULL AND open_until <= ?"
                " AND (probe_until IS NULL OR probe_until <= ?)",
                (now + lease, deployment, now, now),
            )
            return won == 1

        return await self._transact(work)

    async def breaker_success(self, deployment: str) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute("DELETE FROM breakers WHERE deployment = ?", (deployment,))

        await self._transact(work)
