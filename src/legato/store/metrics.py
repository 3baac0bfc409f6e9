"""Metrics as runs happen: one row per run end, hourly rollups, and evaluations.

A run's figures are computed from its journal when it ends and written in the transaction that
ends it (``finish_run``), so they are counted exactly once: a worker that loses the run writes
neither. The rollup (``metric_rollup``) sums them per hour, workflow, tenant, kind (``run``,
``step``, ``tool``, ``llm``, ``eval``), name and outcome: ``legato stats`` reads a few rows per
hour whatever the number of runs. A run retried after it failed counts once per end. Written
once for both dialects (see ``dialect.py``).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from legato.store.dialect import Dialect, Tx, marks, where

StatsBy = Literal["workflow", "model", "step", "tool", "tenant", "day"]
HOUR = 3600.0


@dataclass(slots=True)
class Tally:
    """Sums that add up: a run's figures, one operation's, or a rollup row's."""

    n: int = 0
    duration: float = 0.0
    cost_nanousd: int = 0
    unknown_cost: int = 0
    tokens: int = 0
    #: model calls (of a run, or of a deployment)
    calls: int = 0
    retries: int = 0
    approvals: int = 0
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    timed_out: int = 0
    #: seconds spent waiting for approvals
    wait: float = 0.0
    #: the gate's answers (tools)
    allowed: int = 0
    denied: int = 0
    throttled: int = 0
    #: model calls: repairs of invalid output, fallbacks to another deployment, invalid answers
    repairs: int = 0
    fallbacks: int = 0
    invalid: int = 0
    #: evaluations: how many passed, and the sum of their scores
    passed: int = 0
    score: float = 0.0

    def add(self, other: Tally) -> None:
        for f in _FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def values(self) -> tuple[Any, ...]:
        return _VALUES(self)


_FIELDS = tuple(f.name for f in dataclasses.fields(Tally))
_VALUES = operator.attrgetter(*_FIELDS)
_FLOATS: dict[str, type[float]] = {"duration": float, "wait": float, "score": float}
TALLY_COLUMNS = ", ".join(_FIELDS)
_ROLLUP_KEY = ("hour", "workflow", "tenant", "kind", "name", "outcome")
_ROLLUP_COLUMNS = f"{', '.join(_ROLLUP_KEY)}, shard, {TALLY_COLUMNS}"
_ON_ROLLUP = (
    " ON CONFLICT (kind, workflow, hour, tenant, name, outcome, shard) DO UPDATE SET "
    + ", ".join(f"{f} = metric_rollup.{f} + excluded.{f}" for f in _FIELDS)
)


def upsert_rollup(shard: str) -> str:
    """Add one row of sums to the rollup, in ``shard`` (an SQL expression)."""
    return (
        f"INSERT INTO metric_rollup ({_ROLLUP_COLUMNS}) VALUES ({marks(len(_ROLLUP_KEY))},"
        f" {shard}, {marks(len(_FIELDS))}){_ON_ROLLUP}"
    )


_RUN_FIELDS = (
    "duration", "cost_nanousd", "unknown_cost", "tokens", "calls", "retries", "approvals",
    "approved", "edited", "rejected", "timed_out",
)  # fmt: skip
_RUN_METRICS_COLUMNS = (
    f"run_id, workflow, tenant, outcome, created_at, finished_at, {', '.join(_RUN_FIELDS)}"
)
_ON_RUN_METRICS = (
    " ON CONFLICT (run_id) DO UPDATE SET outcome = excluded.outcome,"
    " finished_at = excluded.finished_at, " + ", ".join(f"{f} = excluded.{f}" for f in _RUN_FIELDS)
)
_INSERT_RUN_METRICS = (
    f"INSERT INTO run_metrics ({_RUN_METRICS_COLUMNS})"
    f" VALUES ({marks(6 + len(_RUN_FIELDS))}){_ON_RUN_METRICS}"
)


@dataclass(slots=True)
class RunMetrics:
    """What one run measured, computed from its journal as it ends."""

    run_id: str
    workflow: str
    tenant: str | None
    outcome: str
    created_at: float
    finished_at: float = 0.0
    run: Tally = field(default_factory=Tally)
    #: (kind, name, outcome) -> the sums of its steps, tools or model calls (name: deployment)
    ops: dict[tuple[str, str, str], Tally] = field(default_factory=dict)

    def op(self, kind: str, name: str, outcome: str) -> Tally:
        return self.ops.setdefault((kind, name, outcome), Tally())


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One evaluation of one output; ``key`` makes recording it idempotent."""

    key: str
    run_id: str
    workflow: str
    tenant: str | None
    evaluator: str
    #: what was judged: ``workflow``, ``step:NAME``, ``tool:NAME`` or ``llm:ALIAS``
    target: str
    entry: str | None
    mode: str  # "inline" or "shadow"
    score: float
    passed: bool
    reason: str
    at: float


EVALUATION_COLUMNS = ", ".join(f.name for f in dataclasses.fields(EvaluationRecord))


@dataclass(frozen=True, slots=True)
class StatRow:
    """``legato stats``: the sums of one group (a workflow, a model, a step, a day ...)."""

    group: str
    outcomes: dict[str, int]
    tally: Tally


def run_end_rows(m: RunMetrics) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The ``run_metrics`` row of a run's end and its rollup rows (without the shard)."""
    tenant = m.tenant or ""
    m.run.n, m.run.duration = 1, max(0.0, m.finished_at - m.created_at)
    row = (m.run_id, m.workflow, tenant, m.outcome, m.created_at, m.finished_at,
           *(getattr(m.run, f) for f in _RUN_FIELDS))  # fmt: skip
    hour = int(m.finished_at // HOUR)
    rollup = [(hour, m.workflow, tenant, "run", "", m.outcome, *m.run.values())]
    rollup += [
        (hour, m.workflow, tenant, kind, name, outcome, *t.values())
        for (kind, name, outcome), t in m.ops.items()
    ]
    return row, rollup


async def write_run_metrics(tx: Tx, m: RunMetrics) -> None:
    """Record a run's end and add it to the rollup, inside the transaction that ends it."""
    row, rollup = run_end_rows(m)
    await tx.execute(_INSERT_RUN_METRICS, row)
    await tx.execute_many(upsert_rollup(tx.rollup_shard), rollup)


def ended_with_metrics(ends: str, m: RunMetrics, shard: str) -> tuple[str, list[Any]]:
    """One statement (PostgreSQL's data-modifying CTEs) that runs ``ends`` (an UPDATE of the
    run ``RETURNING run_id``) and, when it ended the run, records ``m``: a row if it ended it."""
    row, rollup = run_end_rows(m)
    width = len(_ROLLUP_KEY) + len(_FIELDS)
    parts = [
        f"WITH ended AS ({ends}),"
        f" m AS (INSERT INTO run_metrics ({_RUN_METRICS_COLUMNS})"
        f" SELECT {marks(len(row))} FROM ended{_ON_RUN_METRICS})"
    ]
    for i in range(len(rollup)):
        parts.append(
            f", r{i} AS (INSERT INTO metric_rollup ({_ROLLUP_COLUMNS})"
            f" SELECT {marks(len(_ROLLUP_KEY))}, {shard}, {marks(len(_FIELDS))}"
            f" FROM ended{_ON_ROLLUP})"
        )
    assert all(len(r) == width for r in rollup)
    return "".join(parts) + " SELECT 1 FROM ended", [*row, *(v for r in rollup for v in r)]


async def insert_evaluation(tx: Tx, e: EvaluationRecord) -> bool:
    """Record an evaluation once (by its key) and add it to the rollup; False if known."""
    row = await tx.one(
        f"INSERT INTO evaluations ({EVALUATION_COLUMNS}) VALUES ({marks(12)})"
        " ON CONFLICT (key) DO NOTHING RETURNING 1",
        (e.key, e.run_id, e.workflow, e.tenant or "", e.evaluator, e.target, e.entry, e.mode,
         e.score, e.passed, e.reason, e.at),
    )  # fmt: skip
    if row is None:
        return False
    tally = Tally(n=1, passed=int(e.passed), score=e.score)
    outcome = "passed" if e.passed else "failed"
    await tx.execute(
        upsert_rollup(tx.rollup_shard),
        (int(e.at // HOUR), e.workflow, e.tenant or "", "eval", e.evaluator, outcome,
         *tally.values()),
    )  # fmt: skip
    return True


_GROUPS: dict[str, tuple[str, str]] = {  # by -> (kind, the column that groups)
    "workflow": ("run", "workflow"),
    "tenant": ("run", "tenant"),
    "day": ("run", "CAST(hour / 24 AS BIGINT)"),
    "model": ("llm", "name"),
    "step": ("step", "name"),
    "tool": ("tool", "name"),
}
_SUMS = ", ".join(f"SUM({f})" for f in _FIELDS)


class SQLMetrics(Dialect):
    """The :class:`~legato.store.base.MetricsStore` role."""

    async def stats(
        self,
        by: StatsBy = "workflow",
        *,
        workflow: str | None = None,
        since: float | None = None,
        kind: str | None = None,
    ) -> list[StatRow]:
        the_kind, column = _GROUPS[by]
        since_hour = None if since is None else int(since // HOUR)
        clause, params = where(
            ("kind = ?", kind or the_kind), ("workflow = ?", workflow), ("hour >= ?", since_hour)
        )
        rows = await self._select(
            f"SELECT {column}, outcome, {_SUMS} FROM metric_rollup {clause}"
            f" GROUP BY {column}, outcome ORDER BY {column}, outcome",
            params,
        )
        out: dict[str, StatRow] = {}
        for group, outcome, *sums in rows:
            key = str(group)
            stat = out.setdefault(key, StatRow(key, {}, Tally()))
            tally = _tally(sums)
            stat.outcomes[str(outcome)] = tally.n
            stat.tally.add(tally)
        return list(out.values())

    async def record_evaluation(self, evaluation: EvaluationRecord) -> bool:
        async def work(tx: Tx) -> bool:
            return await insert_evaluation(tx, evaluation)

        return await self._transact(work)

    async def list_evaluations(
        self,
        *,
        evaluator: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[EvaluationRecord]:
        clause, params = where(("evaluator = ?", evaluator), ("run_id = ?", run_id))
        rows = await self._select(
            f"SELECT {EVALUATION_COLUMNS} FROM evaluations {clause} ORDER BY at DESC, id DESC"
            " LIMIT ?",
            [*params, limit],
        )
        return [_evaluation(r) for r in rows]

    async def get_run_metrics(self, run_id: str) -> RunMetrics | None:
        rows = await self._select(
            "SELECT run_id, workflow, tenant, outcome, created_at, finished_at,"
            f" {', '.join(_RUN_FIELDS)} FROM run_metrics WHERE run_id = ?",
            (run_id,),
        )
        if not rows:
            return None
        r = rows[0]
        tally = Tally(n=1, **dict(zip(_RUN_FIELDS, r[6:], strict=True)))
        return RunMetrics(r[0], r[1], r[2] or None, r[3], r[4], r[5], tally)

    async def samples(
        self,
        source: Literal["runs", "evaluations"],
        column: str,
        *,
        filters: Sequence[tuple[str, Any]] = (),
        after: tuple[float, str] | None = None,
        before: tuple[float, str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[tuple[float, str, float]]:
        """``(at, key, value)`` of runs or evaluations in time order (``newest``: the last
        ``limit`` before ``before``), filtered by ``filters`` (column, value). Monitors read
        their windows with it."""
        for name in (column, *(c for c, _ in filters)):
            if name not in SAMPLE_COLUMNS[source]:
                raise ValueError(f"no column {name!r} in {source} samples")
        value = _EXPRESSIONS.get(column, column)
        at, key, table = (
            ("finished_at", "run_id", "run_metrics")
            if source == "runs"
            else ("at", "CAST(id AS TEXT)", "evaluations")
        )
        order_key = key if source == "runs" else "id"
        clauses = [f"{c} = ?" for c, _ in filters]
        params: list[Any] = [v for _, v in filters]
        for op, bound in ((">", after), ("<", before)):
            if bound is not None:
                clauses.append(f"({at} {op} ? OR ({at} = ? AND {order_key} {op} ?))")
                params += [bound[0], bound[0], _key_param(source, bound[1])]
        for op, limit_at in ((">=", since), ("<", until)):
            if limit_at is not None:
                clauses.append(f"{at} {op} ?")
                params.append(limit_at)
        clause = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        direction = "DESC" if newest else ""
        query = (
            f"SELECT {at}, {key}, {value} FROM {table} {clause}"
            f" ORDER BY {at} {direction}, {order_key} {direction}"
        )
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = await self._select(query, params)
        got = [(float(a), str(k), float(v)) for a, k, v in rows]
        return got[::-1] if newest else got


SAMPLE_COLUMNS: dict[str, frozenset[str]] = {
    "runs": frozenset({"workflow", "tenant", "outcome", "failed", *_RUN_FIELDS}),
    "evaluations": frozenset({"workflow", "tenant", "evaluator", "target", "mode", "score",
                              "passed"}),
}  # fmt: skip
#: sample columns computed from others: a run that did not complete failed
_EXPRESSIONS = {"failed": "CASE WHEN outcome = 'completed' THEN 0 ELSE 1 END"}


def _tally(sums: Sequence[Any]) -> Tally:
    tally = Tally()
    for f, v in zip(_FIELDS, sums, strict=True):
        setattr(tally, f, _FLOATS.get(f, int)(v or 0))
    return tally


def _key_param(source: str, key: str) -> Any:
    return key if source == "runs" else int(key)


def _evaluation(r: Sequence[Any]) -> EvaluationRecord:
    return EvaluationRecord(
        r[0], r[1], r[2], r[3] or None, r[4], r[5], r[6], r[7], float(r[8]), bool(r[9]), r[10],
        float(r[11]),
    )  # fmt: skip
