"""Metrics and evaluations: ``legato stats``, ``legato evals``, and shadow evaluations' work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from legato import serde
from legato.clock import Clock
from legato.engine.evaluations import record
from legato.errors import ConfigurationError, UnknownRun
from legato.evals.evaluators import HUMAN_EVALUATOR, EvaluatorDef, Target, human_label
from legato.store.base import (
    ApprovalRecord,
    EvaluationRecord,
    RunRecord,
    StatRow,
    StatsBy,
    Store,
    Tally,
)
from legato.timestamps import format_timestamp

BY: tuple[str, ...] = ("workflow", "model", "step", "tool", "tenant", "day")


@dataclass(frozen=True)
class EvaluatorStats:
    """``legato evals``: how one evaluator judged, in sum."""

    evaluator: str
    evaluations: int
    passed: int
    mean_score: float

    @property
    def pass_rate(self) -> float:
        return self.passed / self.evaluations if self.evaluations else 0.0


@dataclass(eq=False)
class EvalOps:
    """``ops.evals``: what runs measured, and what evaluators judged."""

    store: Store
    clock: Clock

    async def stats(
        self,
        *,
        by: str = "workflow",
        workflow: str | None = None,
        since: timedelta | None = None,
    ) -> list[StatRow]:
        """Sums per workflow, tenant, day (runs), model (calls), step or tool, over the runs
        that ended since ``since`` ago (counted by the hour). ``by="day"`` groups are ISO
        dates."""
        if by not in BY:
            raise ConfigurationError(f"stats can be grouped by {', '.join(BY)}; got {by!r}")
        start = None if since is None else self.clock.now() - since.total_seconds()
        group: StatsBy = by  # type: ignore[assignment]
        rows = await self.store.stats(group, workflow=workflow, since=start)
        if by == "day":
            rows = [
                StatRow(format_timestamp(int(r.group) * 86400.0, "day"), r.outcomes, r.tally)
                for r in rows
            ]
        return rows

    async def evaluators(
        self, *, workflow: str | None = None, since: timedelta | None = None
    ) -> list[EvaluatorStats]:
        """Per evaluator: evaluations, passes and the mean score."""
        start = None if since is None else self.clock.now() - since.total_seconds()
        rows = await self.store.stats("step", workflow=workflow, since=start, kind="eval")
        return [_evaluator_stats(r.group, r.tally) for r in rows]

    async def recent(
        self, *, evaluator: str | None = None, run_id: str | None = None, limit: int = 20
    ) -> list[EvaluationRecord]:
        return await self.store.list_evaluations(evaluator=evaluator, run_id=run_id, limit=limit)

    async def shadow(
        self, evaluator: EvaluatorDef, run_id: str, kind: str, name: str, entry: str | None
    ) -> dict[str, Any]:
        """Judge one target of a finished run and record the evaluation (once, by its key):
        the work of a shadow evaluation run."""
        target = await self._target(run_id, kind, name, entry)
        verdict = await evaluator.judge(target)
        await self.store.record_evaluation(record(evaluator, target, verdict, self.clock.now()))
        return verdict.to_json()

    async def _target(self, run_id: str, kind: str, name: str, entry: str | None) -> Target:
        run = await self.store.get_run(run_id)
        if run is None:
            raise UnknownRun(f"no run {run_id!r} to evaluate (deleted since it ended?)")
        if entry is None:
            output, the_input = serde.loads(run.output), serde.loads(run.input)
        else:
            found = [e for e in await self.store.load_entries(run_id) if e.key == entry]
            if not found:
                raise UnknownRun(f"run {run_id!r} has no entry {entry!r} to evaluate")
            output, the_input = serde.loads(found[0].output), serde.loads(found[0].input)
        return Target(run_id, run.workflow, kind, name, entry, the_input, output, run.tenant)


async def label_decision(store: Store, decided: ApprovalRecord, run: RunRecord, now: float) -> None:
    """A person's decision as a label for the proposal it judged (evaluator ``human``)."""
    if decided.status not in ("approved", "rejected"):
        return
    verdict = human_label(decided.status, decided.decided_data is not None)
    await store.record_evaluation(
        EvaluationRecord(
            key=f"{HUMAN_EVALUATOR}|{decided.approval_id}",
            run_id=decided.run_id,
            workflow=run.workflow,
            tenant=run.tenant,
            evaluator=HUMAN_EVALUATOR,
            target=f"approval:{decided.name}",
            entry=None,
            mode="human",
            score=verdict.score,
            passed=verdict.passed,
            reason=verdict.reason,
            at=now,
        )
    )


def _evaluator_stats(name: str, t: Tally) -> EvaluatorStats:
    return EvaluatorStats(name, t.n, t.passed, t.score / t.n if t.n else 0.0)
