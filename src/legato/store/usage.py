"""Model usage rows and the response cache, as both dialects store them.

A usage row is written right after each model call returns, before its journal entry: the
money is spent whether or not the entry lands, so a call repeated after a crash is counted
twice because it was paid twice. Replay writes nothing. Cost is kept exact (decimal text) and
in integer nano-dollars for sums; a NULL cost means unknown, counted apart, never as zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

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


USAGE_COLUMNS = ", ".join(f.name for f in dataclasses.fields(UsageRecord))


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over usage rows. ``unknown_cost_calls`` counts calls whose cost is not known."""

    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_nanousd: int = 0
    unknown_cost_calls: int = 0
    cache_hits: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_SUMS = (
    "COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cached_input_tokens), 0),"
    " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_nanousd), 0),"
    " COALESCE(SUM(CASE WHEN cost_nanousd IS NULL THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0)"
)


def totals(row: Sequence[Any]) -> UsageTotals:
    return UsageTotals(*(int(v) for v in row))


def insert_sql(mark: str) -> str:
    marks = ", ".join([mark] * len(dataclasses.fields(UsageRecord)))
    return f"INSERT INTO model_usage ({USAGE_COLUMNS}) VALUES ({marks})"


def totals_sql(
    mark: str,
    *,
    run_id: str | None = None,
    workflow: str | None = None,
    tenant: str | None = None,
    day: str | None = None,
) -> tuple[str, list[Any]]:
    from legato.store.base import equal_filters, where_clause

    parts, params = equal_filters(
        (("run_id", run_id), ("workflow", workflow), ("tenant", tenant), ("day", day)), mark
    )
    return f"SELECT {_SUMS} FROM model_usage {where_clause(parts)}", params


def rollup_sql(
    mark: str, by: GroupBy, *, since_day: str | None = None, workflow: str | None = None
) -> tuple[str, list[Any]]:
    from legato.store.base import equal_filters, where_clause

    column = GROUP_COLUMNS[by]
    parts, params = equal_filters((("workflow", workflow),), mark)
    if since_day is not None:
        parts.append(f"day >= {mark}")
        params.append(since_day)
    return (
        f"SELECT {column}, {_SUMS} FROM model_usage {where_clause(parts)}"
        f" GROUP BY {column} ORDER BY {column}",
        params,
    )
