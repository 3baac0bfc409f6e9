"""Model usage and the response cache on PostgreSQL (SQL shared with SQLite in usage.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from legato.store import usage
from legato.store.usage import GroupBy, UsageRecord, UsageTotals

Conn = Any  # psycopg.AsyncConnection


class PostgresUsage:
    """Mixed into PostgresStore, which provides ``_retrying`` and ``_rows``."""

    _retrying: Callable[..., Awaitable[Any]]
    _rows: Callable[..., Awaitable[list[Any]]]

    async def record_usage(self, rows: Sequence[UsageRecord]) -> None:
        async def work(conn: Conn) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(
                    usage.insert_sql("%s"), [dataclasses.astuple(r) for r in rows]
                )

        await self._retrying(work)

    async def usage_totals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        tenant: str | None = None,
        day: str | None = None,
    ) -> UsageTotals:
        sql, params = usage.totals_sql(
            "%s", run_id=run_id, workflow=workflow, tenant=tenant, day=day
        )
        return usage.totals((await self._rows(sql, params))[0])

    async def usage_rollup(
        self, by: GroupBy, *, since_day: str | None = None, workflow: str | None = None
    ) -> list[tuple[str, UsageTotals]]:
        sql, params = usage.rollup_sql("%s", by, since_day=since_day, workflow=workflow)
        return [(str(r[0]), usage.totals(r[1:])) for r in await self._rows(sql, params)]

    async def cache_get(self, key: str, now: float) -> str | None:
        rows = await self._rows(
            "SELECT value FROM response_cache WHERE key = %s AND expires_at > %s", (key, now)
        )
        return str(rows[0][0]) if rows else None

    async def cache_put(self, key: str, value: str, now: float, expires_at: float) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO response_cache (key, value, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " created_at = excluded.created_at, expires_at = excluded.expires_at",
                (key, value, now, expires_at),
            )
            await conn.execute("DELETE FROM response_cache WHERE expires_at <= %s", (now,))

        await self._retrying(work)
