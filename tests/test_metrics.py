"""Metrics recorded as runs happen: per run, step, tool call and model call, summed by
`legato stats` (ops.evals.stats), on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import legato
from legato.ai.config import parse_config
from legato.retry import RetryPolicy
from legato.testing import ScriptedModel


def _app(make_app: Callable[..., legato.App]) -> tuple[legato.App, list[int]]:
    prices = {"scripted:writer": {"input_per_mtok": "1000000", "output_per_mtok": "1000000"}}
    app = make_app(config=parse_config({"prices": prices}))
    model = app.models.add(ScriptedModel(lambda request: "two words", name="writer"))
    app.models.alias("fast", [model.id])
    failures = [1]  # the first attempt of flaky fails once

    @app.step(retry=RetryPolicy(max_attempts=3, initial=timedelta(seconds=1)))
    async def flaky(x: int) -> int:
        if failures and failures.pop():
            raise RuntimeError("transient")
        return x + 1

    @app.tool(risk="medium", description="Send an email")
    async def send_email(to: str) -> str:
        return f"sent to {to}"

    @app.workflow
    async def support(ctx: legato.Context, to: str) -> str:
        await flaky(1)
        await flaky(2)
        await ctx.llm("say two words", model="fast")
        return str(await ctx.tool(send_email, to=to))

    return app, failures


def test_a_run_is_measured_once_with_steps_tools_approvals_and_model_calls(
    make_app: Callable[..., legato.App],
) -> None:
    app, _ = _app(make_app)
    handle = app.start("support", "ann@example.com", run_id="r1", tenant="acme")
    app.run_until_idle()
    [pending] = app.approvals.list()  # a medium-risk tool at autonomy 1 asks a person
    app.approvals.decide(pending.id, True, by="bob", data={"to": "bob@example.com"})
    app.run_until_idle()
    assert handle.result() == "sent to bob@example.com"
    app.start("support", "cy@example.com", run_id="r2")
    app.run_until_idle()
    [second] = app.approvals.list()
    app.approvals.decide(second.id, False, by="bob")
    app.run_until_idle()
    assert app.handle("r2").status() == "failed"

    ops = app._sync(app.ops_async())
    runs = {r.group: r for r in app._sync(ops.evals.stats())}
    support = runs["support"]
    assert support.outcomes == {"completed": 1, "failed": 1}
    t = support.tally
    assert (t.n, t.calls, t.retries, t.approvals, t.approved, t.edited, t.rejected) == (
        2, 2, 1, 2, 1, 1, 1,
    )  # fmt: skip
    # "say two words" in, "two words" out at $1 a token: $5 per call
    assert t.tokens == 10 and t.cost_nanousd == 10 * 10**9
    steps = {r.group: r.tally for r in app._sync(ops.evals.stats(by="step"))}
    assert steps["flaky"].n == 4 and steps["flaky"].retries == 1
    [tool] = app._sync(ops.evals.stats(by="tool"))
    assert tool.group == "send_email" and tool.outcomes == {"completed": 1, "gate": 2}
    assert (tool.tally.approvals, tool.tally.approved, tool.tally.rejected) == (2, 1, 1)
    [model] = app._sync(ops.evals.stats(by="model"))
    assert model.group == "scripted:writer" and model.tally.calls == 2
    tenants = {r.group: r.tally.n for r in app._sync(ops.evals.stats(by="tenant"))}
    assert tenants == {"": 1, "acme": 1}
    [day] = app._sync(ops.evals.stats(by="day"))
    assert len(day.group) == 10 and day.tally.n == 2  # an ISO date
    # a person's decisions are labels for the proposals they judged
    labels = app._sync(ops.evals.recent(evaluator="human"))
    assert sorted((e.target, e.score, e.passed) for e in labels) == [
        ("approval:tool:send_email", 0.0, False),
        ("approval:tool:send_email", 0.5, True),
    ]


def test_stats_since_and_by_workflow_filter(make_app: Callable[..., legato.App]) -> None:
    app, _ = _app(make_app)

    @app.workflow
    async def quick(ctx: legato.Context) -> int:
        return 1

    app.run("quick", run_id="q1")
    ops = app._sync(app.ops_async())
    assert [r.group for r in app._sync(ops.evals.stats(workflow="quick"))] == ["quick"]
    app.clock.advance_to(app.clock.now() + 3 * 3600)
    assert app._sync(ops.evals.stats(since=timedelta(hours=1))) == []
    assert len(app._sync(ops.evals.stats(since=timedelta(hours=4)))) == 1
