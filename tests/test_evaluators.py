"""Evaluators: inline ones judge in the run (journaled, replayed, can fail it), shadow ones judge
a sample later as durable work done once, even across a SIGKILL of a real worker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

import legato
from legato.evals import Target, Verdict, rules, schema_valid
from legato.store.base import EvaluationRecord
from tests.apps import shadow_app
from tests.apps.counters import counts
from tests.conftest import WorkerProcess, sql, wait_until


class Reply(BaseModel):
    text: str
    confidence: float = Field(ge=0, le=1)


def _evaluations(app: legato.App, evaluator: str | None = None) -> list[EvaluationRecord]:
    ops = app._sync(app.ops_async())
    return app._sync(ops.evals.recent(evaluator=evaluator, limit=1000))


def test_inline_evaluators_are_journaled_and_replay_their_verdicts(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    judged: list[str] = []

    @app.step
    async def draft(topic: str) -> dict[str, object]:
        return {"text": f"about {topic}", "confidence": 0.9}

    @app.workflow
    async def write(ctx: legato.Context, topic: str) -> str:
        reply = await draft(topic)
        await ctx.wait_for_event("go")  # parks: the run replays from the top after it
        return str(reply["text"])

    @app.evaluator("has-text", on="step:draft")
    def has_text(target: Target) -> Verdict:
        judged.append(target.label)
        return Verdict(1.0, bool(target.output["text"]), "has text")

    @app.evaluator("short", on="workflow")
    def short(target: Target) -> float:
        judged.append(target.label)
        return 1.0 if len(target.output) < 10 else 0.0

    handle = app.start(write, "cats", run_id="w1")
    app.run_until_idle()
    assert judged == ["step:draft"]
    app.send_event("w1", "go")
    app.run_until_idle()
    assert handle.result() == "about cats"
    assert judged == ["step:draft", "workflow"]  # replay returned the recorded verdict
    kinds = [(e.kind, e.name) for e in handle.timeline().entries]
    assert kinds == [("step", "draft"), ("eval", "has-text"), ("event", "go"), ("eval", "short")]
    got = {(e.evaluator, e.target, e.passed, e.mode) for e in _evaluations(app)}
    assert got == {
        ("has-text", "step:draft", True, "inline"),
        ("short", "workflow", False, "inline"),
    }


def test_a_required_inline_evaluator_fails_the_run(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow
    async def answer(ctx: legato.Context) -> dict[str, object]:
        return {"text": "I am sure", "confidence": 7}

    app.evaluator("valid", required=True)(schema_valid(Reply))
    app.evaluator("polite", on="workflow")(rules(forbidden=["stupid"], regex=r"sure"))
    handle = app.start(answer, run_id="a1")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="evaluator 'valid' failed workflow"):
        handle.result()
    [failed] = _evaluations(app, "valid")
    assert not failed.passed and failed.score == 0.0 and "less than or equal to 1" in failed.reason
    [polite] = _evaluations(app, "polite")  # a run that fails is judged by every evaluator
    assert polite.passed


def test_rules_and_schema_builtins_score_and_explain() -> None:
    check = rules(
        regex=r"^Dear", required=["to", "body"], ranges={"score": (0, 1)}, forbidden=["guarantee"]
    )
    target = Target("r", "wf", "workflow", "wf", None, None,
                    {"to": "ann", "body": "", "score": 3, "text": "We guarantee it"})  # fmt: skip
    verdict = check(target)
    assert not verdict.passed and verdict.score == pytest.approx(1 / 5)
    assert "body is missing" in verdict.reason and "score=3 is outside [0, 1]" in verdict.reason
    assert "contains 'guarantee'" in verdict.reason
    ok = Target("r", "wf", "llm", "fast", "0", None, {"output": {"text": "hi", "confidence": 1}})
    assert schema_valid(Reply)(ok) == Verdict(1.0, True, "valid")
    assert not schema_valid({"type": "object", "required": ["x"]})(ok).passed


def test_shadow_evaluators_sample_and_never_block_or_fail_runs(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.workflow
    async def answer(ctx: legato.Context, i: int) -> int:
        return i

    @app.evaluator("positive", mode="shadow", sample=0.5)
    def positive(target: Target) -> bool:
        raise RuntimeError("broken evaluator")  # a shadow evaluator cannot fail the run

    for i in range(40):
        app.start(answer, i, run_id=f"s{i}")
    app.run_until_idle()
    assert all(app.handle(f"s{i}").result() == i for i in range(40))
    seen = _evaluations(app, "positive")
    assert 8 <= len(seen) <= 32  # about half of them, chosen by a hash of the target
    assert all(not e.passed and "RuntimeError" in e.reason for e in seen)
    sampled = {e.run_id for e in seen}  # the same choice on every worker and replay
    definition = app.evaluators["positive"]
    assert sampled == {f"s{i}" for i in range(40) if definition.sampled(f"s{i}", None)}


@pytest.fixture
def shadow(db_url: str) -> legato.App:
    shadow_app.app.database_url = db_url
    yield shadow_app.app  # type: ignore[misc]
    shadow_app.app.close()


def test_shadow_evaluations_survive_a_sigkill_and_are_recorded_once(
    shadow: legato.App,
    db_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    log = tmp_path / "executions.log"
    for i in range(8):
        shadow.start(shadow_app.answer, i, run_id=f"r{i}")
    first = spawn_worker("tests.apps.shadow_app:app")
    wait_until(
        lambda: counts(log)[("eval", shadow_app.BLOCKED)] == 1, what="the blocked evaluation"
    )
    first.kill()  # in the middle of the evaluation of r3 (and maybe of others)
    at_kill = counts(log)
    # an evaluation whose step is journaled is never done again
    done = sql(db_url, "SELECT run_id FROM entries WHERE kind = 'step' AND status = 'completed'"
               " AND name = 'legato.evaluate.judge'")  # fmt: skip
    in_flight = {run for (kind, run) in at_kill if kind == "eval"} - {
        r[0].split("~")[0] for r in done
    }
    spawn_worker("tests.apps.shadow_app:app")

    def recorded() -> int:
        rows = sql(db_url, "SELECT count(*) FROM evaluations")
        return int(rows[0][0]) if rows else 0

    wait_until(lambda: recorded() == 8, what="every evaluation")
    rows = sql(db_url, "SELECT run_id, passed, reason FROM evaluations ORDER BY run_id")
    assert [(r[0], bool(r[1])) for r in rows] == [(f"r{i}", i % 2 == 0) for i in range(8)]
    ran = Counter({k[1]: v for k, v in counts(log).items() if k[0] == "eval"})
    assert shadow_app.BLOCKED in in_flight
    # an evaluation interrupted by the kill ran again; every other one ran once
    assert ran == {f"r{i}": 2 if f"r{i}" in in_flight else 1 for i in range(8)}
