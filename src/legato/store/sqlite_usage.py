"""Model usage and the response cache on SQLite (SQL shared with PostgreSQL in usage.py)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from legato.store import usage
from legato.store.usage import GroupBy, UsageRecord, UsageTotals


class SQLiteUsage:
    """Mixed into SQLiteStore, which provides ``_write`` and ``_query``."""

    _write: Callable[..., Any]
    _query: Callable[..., list[Any]]

    async def record_usage(self, rows: Sequence[UsageRecord]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(usage.insert_sql("?"), [dataclasses.astuple(r) for r in rows])

        await self._write(op)

    async def usage_totals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        tenant: str | None = None,
        day: str | None = None,
    ) -> UsageTotals:
        sql, params = usage.totals_sql(
            "?", run_id=run_id, workflow=workflow, tenant=tenant, day=day
        )
        return usage.totals(self._query(sql, params)[0])

    async def usage_rollup(
        self, by: GroupBy, *, since_day: str | None = None, workflow: str | None = None
    ) -> list[tuple[str, UsageTotals]]:
        sql, params = usage.rollup_sql("?", by, since_day=since_day, workflow=workflow)
        return [(str(r[0]), usage.totals(r[1:])) for r in self._query(sql, params)]

    async def cache_get(self, key: str, now: float) -> str | None:
        rows = self._query(
            "SELECT value FROM response_cache WHERE key = ? AND expires_at > ?", (key, now)
        )
        return str(rows[0][0]) if rows else None

    async def cache_put(self, key: str, value: str, now: float, expires_at: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO response_cache (key, value, created_at, expires_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " created_at = excluded.created_at, expires_at = excluded.expires_at",
                (key, value, now, expires_at),
            )
            conn.execute("DELETE FROM response_cache WHERE expires_at <= ?", (now,))

        await self._write(op)
