"""Model usage rows and the response cache (the AI layer's), written once for both dialects.

A usage row is written right after each model call returns, before its journal entry: the
money is spent whether or not the entry lands, so a call repeated after a crash is counted
twice because it was paid twice. Replay writes nothing. Cost is kept exact (decimal text,
summed exactly: ``UsageTotals.cost_usd``) and in integer nano-dollars (budgets sum those); a
NULL cost means unknown, counted apart, never as zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

from legato.store.dialect import Dialect, Tx, marks, where

GroupBy = Literal["workflow", "model", "day", "tenant", "run"]
GROUP_COLUMNS: dict[str, str] = {
    "workflow": "workflow",
    "model": "deployment",
    "day": "day",
    "tenant": "COALESCE(tenant, '')",
    "run": "run_id",
}


@dataclass(frozen=True, slots=True)
class UsageRecord:
    run_id: str
    workflow: str
    tenant: str | None
    seq: int
    deployment: str
    alias: str | None
    kind: str  # "chat" or "embed"
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    requests: int
    cost_nanousd: int | None
    cost_usd: str | None
    price_version: str | None
    cache_hit: bool
    at: float
    day: str
    #: the key of the journal entry that made the call (see Entry.key)
    entry: str | None = None
    #: what prompt-cache reads saved against the full input price (writes cost extra, so
    #: it may be negative); None when the price is unknown
    cache_saved_nanousd: int | None = None


USAGE_COLUMNS = ", ".join(f.name for f in dataclasses.fields(UsageRecord))


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over usage rows. ``unknown_cost_calls`` counts calls whose cost is not known;
    ``cost_usd`` is the exact sum of the known costs (``cost_nanousd`` rounds each row to
    whole nano-dollars: a call that cost $1.73e-8 is 17 of them)."""

    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_nanousd: int = 0
    unknown_cost_calls: int = 0
    cache_hits: int = 0
    cost_usd: Decimal = Decimal(0)
    #: prompt-cache writes, reasoning tokens (part of output) and what cache reads saved
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_saved_nanousd: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(*(getattr(self, f.name) + getattr(other, f.name)
                             for f in dataclasses.fields(self)))  # fmt: skip

    @property
    def cache_hit_rate(self) -> float | None:
        """The share of input tokens read from providers' prompt caches (None: no input)."""
        return self.cached_input_tokens / self.input_tokens if self.input_tokens else None


_SUMS = (
    "COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),"
    " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_nanousd), 0),"
    " COALESCE(SUM(CASE WHEN cost_nanousd IS NULL THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(reasoning_tokens), 0),"
    " COALESCE(SUM(cache_saved_nanousd), 0)"
)


def totals(row: Sequence[Any]) -> UsageTotals:
    (calls, input_tokens, cached, output_tokens, nanousd, unknown, hits, writes, reasoning,
     saved, usd) = row  # fmt: skip
    return UsageTotals(
        calls=int(calls), input_tokens=int(input_tokens), cached_input_tokens=int(cached),
        output_tokens=int(output_tokens), cost_nanousd=int(nanousd),
        unknown_cost_calls=int(unknown), cache_hits=int(hits), cost_usd=Decimal(str(usd or 0)),
        cache_write_tokens=int(writes), reasoning_tokens=int(reasoning),
        cache_saved_nanousd=int(saved),
    )  # fmt: skip


_INSERT = (
    f"INSERT INTO model_usage ({USAGE_COLUMNS})"
    f" VALUES ({marks(len(dataclasses.fields(UsageRecord)))})"
)


class SQLUsage(Dialect):
    """The :class:`~legato.store.base.UsageStore` role."""

    #: the exact sum of a column of decimal text (SQLite has no exact decimal type: its
    #: store registers a function that sums in Python's ``decimal``)
    _DECIMAL_SUM: ClassVar[str] = "SUM(CAST({} AS NUMERIC))"

    @property
    def _sums(self) -> str:
        return f"{_SUMS}, {self._DECIMAL_SUM.format('cost_usd')}"

    async def record_usage(self, rows: Sequence[UsageRecord]) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute_many(_INSERT, [dataclasses.astuple(r) for r in rows])

        await self._transact(work)

    async def usage_totals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        tenant: str | None = None,
        day: str | None = None,
    ) -> UsageTotals:
        clause, params = where(
            ("run_id = ?", run_id),
            ("workflow = ?", workflow),
            ("tenant = ?", tenant),
            ("day = ?", day),
        )
        query = f"SELECT {self._sums} FROM model_usage {clause}"
        return totals((await self._select(query, params))[0])

    async def usage_rollup(
        self, by: GroupBy, *, since_day: str | None = None, workflow: str | None = None
    ) -> list[tuple[str, UsageTotals]]:
        column = GROUP_COLUMNS[by]
        clause, params = where(("workflow = ?", workflow), ("day >= ?", since_day))
        query = f"SELECT {column}, {self._sums} FROM model_usage {clause} GROUP BY {column}"
        rows = await self._select(f"{query} ORDER BY {column}", params)
        return [(str(r[0]), totals(r[1:])) for r in rows]

    async def cache_get(self, key: str, now: float) -> str | None:
        rows = await self._select(
            "SELECT value FROM response_cache WHERE key = ? AND expires_at > ?", (key, now)
        )
        return str(rows[0][0]) if rows else None

    async def cache_put(self, key: str, value: str, now: float, expires_at: float) -> None:
        async def work(tx: Tx) -> None:
            await tx.execute(
                "INSERT INTO response_cache (key, value, created_at, expires_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " created_at = excluded.created_at, expires_at = excluded.expires_at",
                (key, value, now, expires_at),
            )
            await tx.execute("DELETE FROM response_cache WHERE expires_at <= ?", (now,))

        await self._transact(work)
