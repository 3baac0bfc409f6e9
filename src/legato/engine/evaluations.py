"""Evaluators in a run: inline ones as journaled entries, shadow ones as runs started at its end.

A collaborator of :class:`legato.engine.execution.Execution` (through
:class:`legato.engine.host.Host`). An inline evaluator's entry takes its position right after
the output it judges, when that operation is called (so in program order, the same on every
replay); it runs once the output exists and its verdict is journaled (replay returns it) and
recorded as an evaluation (once, by its key, even when a crash makes it run again). Shadow
evaluators are sampled when the run ends: each target in the sample becomes a run of the
internal workflow ``legato.evaluate``, created in the transaction that ends the run, so no
evaluation is lost or started twice whatever crashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from legato import serde
from legato.engine.definitions import StepDef, WorkflowDef
from legato.engine.host import weak
from legato.engine.waits import bound
from legato.evals.evaluators import (
    EvaluationFailed,
    EvaluatorDef,
    Target,
    Verdict,
    evaluation_key,
)
from legato.retry import NO_RETRY
from legato.store.base import Entry, EvaluationRecord, RunRecord

if TYPE_CHECKING:
    from legato.engine.host import Host

#: the internal workflow that runs shadow evaluations (the App registers it)
EVALUATE_WORKFLOW = "legato.evaluate"
Pending = list[tuple[EvaluatorDef, int, Entry | None]]


class Evaluations:
    """The evaluators of one run."""

    def __init__(self, host: Host, evaluators: Sequence[EvaluatorDef]) -> None:
        self.host = weak(host)
        self.inline = [e for e in evaluators if e.mode == "inline"]
        self.shadow = [e for e in evaluators if e.mode == "shadow"]

    def take(self, kind: str, name: str) -> Pending:
        """Take the entries of the inline evaluators of an output about to be made."""
        if not self.inline:
            return []
        return [
            (ev, *self.host.take("eval", ev.name)) for ev in self.inline if ev.matches(kind, name)
        ]

    async def judge(
        self, pending: Pending, kind: str, name: str, seq: int | None, input: Any, output: Any
    ) -> None:
        """Run (or replay) the inline evaluators in ``pending`` on an output; a required one
        that fails raises :class:`EvaluationFailed` (bound to its entry)."""
        host = self.host
        entry_key = None if seq is None else host.key_of(seq)
        target = Target(
            host.run_id, host.workflow.name, kind, name, entry_key, input, output, host.run.tenant
        )
        failed: list[tuple[int, EvaluationFailed]] = []
        for ev, eval_seq, recorded in pending:  # all judge, then the first required fail fails
            raw = await host.run_step(eval_seq, recorded, self._step(ev, target), (), {}, "eval")
            verdict = Verdict.from_json(raw)
            if ev.required and not verdict.passed:
                failed.append((eval_seq, EvaluationFailed(ev.name, target.label, verdict.reason)))
        if failed:
            raise bound(failed[0][1], failed[0][0])

    def _step(self, ev: EvaluatorDef, target: Target) -> StepDef:
        host = self.host

        async def evaluate() -> dict[str, Any]:
            verdict = await ev.judge(target)
            await host.store.record_evaluation(record(ev, target, verdict, host.clock.now()))
            return verdict.to_json()

        step = StepDef(ev.name, evaluate, NO_RETRY, None)
        step.returns = dict[str, Any]
        return step

    def shadow_runs(self, entries: Iterable[Entry], completed: bool) -> list[RunRecord]:
        """The shadow evaluations to start as the run ends: one run per sampled target."""
        definition = self.host.workflows.get(EVALUATE_WORKFLOW) if self.shadow else None
        if definition is None:
            return []
        targets: list[tuple[str, str, str | None]] = []  # (kind, name, entry key)
        if completed:
            targets.append(("workflow", self.host.workflow.name, None))
        for e in sorted(entries, key=lambda e: e.seq):
            if e.status == "completed" and e.kind in ("step", "tool", "llm"):
                targets.append((e.kind, e.name.removeprefix("llm:"), e.key))
        runs = []
        for ev in self.shadow:
            for kind, name, key in targets:
                if ev.matches(kind, name) and ev.sampled(self.host.run_id, key):
                    runs.append(self._shadow_run(definition, ev, kind, name, key))
        return runs

    def _shadow_run(
        self, definition: WorkflowDef, ev: EvaluatorDef, kind: str, name: str, key: str | None
    ) -> RunRecord:
        host, now = self.host, self.host.clock.now()
        the_input = definition.encode_input(
            (host.run_id, ev.name, kind, name, key), {}, host.payload_limit
        )
        run_id = f"{host.run_id}~eval~{ev.name}~{key or 'result'}"
        return definition.new_run(run_id, the_input, now, host.run.tenant)


def record(ev: EvaluatorDef, target: Target, verdict: Verdict, now: float) -> EvaluationRecord:
    """The evaluation row of ``verdict`` (its key: run, evaluator, entry)."""
    return EvaluationRecord(
        key=evaluation_key(target.run_id, ev.name, target.entry),
        run_id=target.run_id,
        workflow=target.workflow,
        tenant=target.tenant,
        evaluator=ev.name,
        target=target.label,
        entry=target.entry,
        mode=ev.mode,
        score=verdict.score,
        passed=verdict.passed,
        reason=verdict.reason,
        at=now,
    )


def jsonable(value: Any) -> Any:
    """``value`` as JSON gives it back (what evaluators see, inline or shadow)."""
    return serde.loads(serde.dumps(value, what="a value to evaluate"))
