"""Agents: journaled model turns, gated tool calls, approvals mid-loop, limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

import legato
from legato.ai.messages import ModelRequest, ModelResponse, ToolCall
from legato.testing import ScriptedModel
from tests.apps import agent_app
from tests.apps.counters import counts
from tests.conftest import WorkerProcess, wait_until


class Answer(BaseModel):
    city: str
    temperature: int


def _weather_app(make_app: Callable[..., legato.App], **kw: object) -> legato.App:
    app = make_app(**kw)
    app.ran = []  # type: ignore[attr-defined]

    @app.tool(risk="low")
    def weather(city: str) -> int:
        app.ran.append(city)  # type: ignore[attr-defined]
        return 21

    app.weather = weather  # type: ignore[attr-defined]
    return app


def test_agent_calls_tools_then_answers(make_app: Callable[..., legato.App]) -> None:
    app = _weather_app(make_app)
    model = app.models.add(ScriptedModel([
        [ToolCall(id="1", name="weather", arguments={"city": "Paris"})],
        [ToolCall(id="2", name="final_result", arguments={"city": "Paris", "temperature": 21})],
    ]))  # fmt: skip
    agent = legato.Agent(
        "forecaster", model.id, "Answer with the weather.", tools=[app.weather], output=Answer
    )  # type: ignore[attr-defined]

    @app.workflow
    async def forecast(ctx: legato.Context) -> dict[str, object]:
        result = await agent.run(ctx, "Weather in Paris?")
        await ctx.wait_for_event("go")  # park, so the loop replays from the journal
        assert isinstance(result.output, Answer)
        return {"status": result.status, "steps": result.steps, "out": result.output.model_dump(),
                "calls": [(c.tool, c.outcome, c.result) for c in result.tool_calls]}  # fmt: skip

    handle = app.start(forecast, run_id="f1")
    app.run_until_idle()
    app.send_event("f1", "go")
    app.run_until_idle()
    assert handle.result() == {
        "status": "completed", "steps": 2, "out": {"city": "Paris", "temperature": 21},
        "calls": [["weather", "ok", 21]],
    }  # fmt: skip
    assert model.calls == 2 and app.ran == ["Paris"]  # type: ignore[attr-defined]
    # the tool result went back to the model with the call's id
    tool_turn = model.requests[1].messages[-1]
    assert tool_turn.role == "tool" and tool_turn.tool_call_id == "1" and "21" in tool_turn.content


def test_runaway_agent_stops_at_max_steps(make_app: Callable[..., legato.App]) -> None:
    app = _weather_app(make_app)
    model = app.models.add(ScriptedModel(
        lambda request: [ToolCall(id="x", name="weather", arguments={"city": "Oslo"})]
    ))  # fmt: skip
    agent = legato.Agent("loopy", model.id, "...", tools=[app.weather], max_steps=3)  # type: ignore[attr-defined]

    @app.workflow
    async def loop(ctx: legato.Context) -> list[object]:
        result = await agent.run(ctx, "go")
        return [result.status, result.steps, len(result.tool_calls), result.reason]

    status, steps, calls, reason = app.run(loop)
    # the third turn's tool call is not run: no turn is left to read its result
    assert (status, steps, calls, model.calls) == ("max_steps", 3, 2, 3)
    assert "after 3 model turns" in str(reason)


def test_agent_budget_stops_it(make_app: Callable[..., legato.App]) -> None:
    app = _weather_app(make_app)
    model = app.models.add(ScriptedModel(
        lambda request: [ToolCall(id="x", name="weather", arguments={"city": "Oslo"})]
    ))  # fmt: skip
    agent = legato.Agent("spender", model.id, "...", tools=[app.weather],  # type: ignore[attr-defined]
                         budget=legato.Budget(calls=2))  # fmt: skip

    @app.workflow
    async def loop(ctx: legato.Context) -> list[object]:
        result = await agent.run(ctx, "go")
        return [result.status, result.steps, result.reason]

    refused = "2 of 2 model calls used; the call to scripted:scripted was not sent"
    assert app.run(loop) == ["budget", 2, f"agent 'spender' budget: {refused}"]
    assert model.calls == 2


def test_denied_and_invalid_tool_calls_go_back_to_the_model(
    make_app: Callable[..., legato.App],
) -> None:
    policy = legato.Policy.from_yaml(
        "tools:\n  weather:\n    rules:\n      - effect: deny\n        reason: No forecasts.\n"
    )
    app = _weather_app(make_app, policy=policy)
    model = app.models.add(ScriptedModel([
        [ToolCall(id="1", name="weather", arguments={"city": "Rome"}),
         ToolCall(id="2", name="launch_rockets", arguments={})],
        "I could not check the weather.",
    ]))  # fmt: skip
    agent = legato.Agent("careful", model.id, "...", tools=[app.weather])  # type: ignore[attr-defined]

    @app.workflow
    async def ask(ctx: legato.Context) -> list[object]:
        result = await agent.run(ctx, "weather?")
        return [result.status, result.text, [(c.tool, c.outcome) for c in result.tool_calls]]

    assert app.run(ask) == [
        "completed", "I could not check the weather.",
        [["weather", "denied"], ["launch_rockets", "unknown"]],
    ]  # fmt: skip
    assert app.ran == []  # type: ignore[attr-defined]


def test_two_tool_calls_of_one_turn_get_their_own_approvals(
    db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """Park mid-loop on two approvals, SIGKILL the worker, decide each, resume exactly there."""
    agent_app.app.database_url = db_url
    try:
        handle = agent_app.app.start(agent_app.outreach, run_id="a1")
        first = spawn_worker("tests.apps.agent_app:app")
        wait_until(lambda: len(agent_app.app.approvals.list()) == 2, what="two approvals")
        first.kill()
        pending = {a.data["to"]: a for a in agent_app.app.approvals.list()}
        assert set(pending) == {"ada@x.org", "bob@x.org"}
        assert {a.name for a in pending.values()} == {"tool:send_email"}
        agent_app.app.approvals.decide(pending["ada@x.org"].id, approved=True, by="dana")
        agent_app.app.approvals.decide(pending["bob@x.org"].id, approved=False, by="dana",
                                       comment="not bob")  # fmt: skip
        spawn_worker("tests.apps.agent_app:app")
        assert handle.result(timeout=60) == {
            "status": "completed", "output": {"sent": 1, "summary": "done"},
            "calls": [["send_email", "ada@x.org", "ok"], ["send_email", "bob@x.org", "denied"]],
        }  # fmt: skip
        log = counts(tmp_path / "executions.log")
        assert log[("ada@x.org", "send_email")] == 1 and ("bob@x.org", "send_email") not in log
        # one request before the kill, one after: the first turn was replayed, not re-asked
        assert log[("model", "request")] == 2
    finally:
        agent_app.app.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_agent_rejects_bad_settings(bad: int) -> None:
    with pytest.raises(legato.ConfigurationError, match="max_steps"):
        legato.Agent("a", "fast", "...", max_steps=bad)


def _unused(_: ModelRequest) -> ModelResponse:  # keeps the import honest for type checkers
    return ModelResponse()


def test_a_tool_argument_named_actor_is_the_tools(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    seen: list[str] = []

    @app.tool(risk="low")
    def assign(actor: str) -> str:
        seen.append(actor)
        return f"assigned {actor}"

    model = app.models.add(ScriptedModel([
        [ToolCall(id="1", name="assign", arguments={"actor": "grace"})], "done",
    ]))  # fmt: skip
    agent = legato.Agent("dispatcher", model.id, "...", tools=[assign])

    @app.workflow
    async def go(ctx: legato.Context) -> list[object]:
        result = await agent.run(ctx, "assign grace")
        return [result.status, [c.outcome for c in result.tool_calls]]

    assert app.run(go) == ["completed", ["ok"]] and seen == ["grace"]
