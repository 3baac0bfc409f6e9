"""Reasoning depth: mapped to each protocol's control on the wire, ignored (with a note) where
a deployment has none, priced and budgeted as output, escalated by a cascade before the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import legato
from legato.ai.config import parse_config
from legato.ai.messages import ModelRequest
from legato.ai.model import Capabilities
from legato.errors import ConfigurationError
from legato.testing import ScriptedModel
from tests.ai.conftest import KEY, MODEL, Katan, Stub, Wire, canned_completion
from tests.ai.test_providers import forecast, on_the_wire, user
from tests.conftest import sql

THINKER = Capabilities(reasoning=True)


class Verdict(BaseModel):
    verdict: str


@pytest.mark.parametrize(
    ("depth", "effort"), [("high", "high"), ("none", "none"), (3000, "medium"), (512, "low")]
)
def test_openai_sends_reasoning_effort(depth: Any, effort: str, katan_wire: Katan) -> None:
    request = user("think").model_copy(update={"reasoning": depth})
    _, seen = on_the_wire("openai", katan_wire, request)
    assert seen["request_body"]["reasoning_effort"] == effort
    _, plain = on_the_wire("openai", katan_wire, user("think"))
    assert "reasoning_effort" not in plain["request_body"]  # no depth: the server's default


def test_anthropic_turns_on_extended_thinking_on_top_of_the_answer(katan_wire: Katan) -> None:
    request = user("think").model_copy(
        update={"reasoning": "medium", "max_tokens": 300, "temperature": 0.2}
    )
    _, seen = on_the_wire("anthropic", katan_wire, request)
    body = seen["request_body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] == 300 + 4096  # thinking counts against max_tokens
    assert "temperature" not in body  # the API takes none with thinking
    _, small = on_the_wire("anthropic", katan_wire, user("t").model_copy(update={"reasoning": 10}))
    assert small["request_body"]["thinking"]["budget_tokens"] == 1024  # the API's minimum
    _, off = on_the_wire(
        "anthropic", katan_wire, user("t").model_copy(update={"reasoning": "none"})
    )
    assert "thinking" not in off["request_body"]


def test_anthropic_thinking_asks_for_the_output_tool_instead_of_forcing_it(
    katan_wire: Katan,
) -> None:
    request = forecast("tool").model_copy(update={"reasoning": "low"})
    _, seen = on_the_wire("anthropic", katan_wire, request)
    body = seen["request_body"]
    assert body["tool_choice"] == {"type": "auto"}  # a forced tool is refused with thinking
    assert body["tools"][-1]["name"] == "Forecast"
    assert body["system"].endswith("Answer by calling the tool Forecast once.")


def _katan(server: Katan, **deployment: object) -> dict[str, Any]:
    return {
        "providers": {"p": {"kind": "openai", "base_url": f"{server.url}/v1", "api_key": KEY}},
        "deployments": {f"p:{MODEL}": deployment} if deployment else {},
    }


def test_a_depth_reaches_a_reasoning_deployment_and_is_noted_where_there_is_none(
    make_app: Callable[..., legato.App], katan_wire: Katan
) -> None:
    thinking = make_app("thinking", config=parse_config(_katan(katan_wire, reasoning=True)))
    plain = make_app("plain", config=parse_config(_katan(katan_wire)))

    def workflow(app: legato.App) -> Any:
        @app.workflow
        async def ask(ctx: legato.Context) -> list[Any]:
            async with Wire(katan_wire) as wire:
                result = await ctx.llm("think", model=f"p:{MODEL}", reasoning="low")
                body = (await wire.received("/v1/chat/completions"))["request_body"]
            return [body.get("reasoning_effort"), result.notes, result.attempts[0].reasoning]

        return ask

    assert thinking.run(workflow(thinking)) == ["low", [], "low"]
    effort, notes, sent = plain.run(workflow(plain))
    assert effort is None and sent is None  # nothing the server would refuse was sent
    assert notes == [f"p:{MODEL} takes no reasoning depth: reasoning='low' was not sent"]


def test_reasoning_tokens_are_recorded_and_priced_as_output(
    make_app: Callable[..., legato.App], db_url: str, stub_server: Callable[[bytes], Stub]
) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 900, "total_tokens": 1000,
             "completion_tokens_details": {"reasoning_tokens": 880}}  # fmt: skip
    price = {"input_per_mtok": "1", "output_per_mtok": "4"}
    config = canned_completion(stub_server, "o4-mini", "42", usage, price)
    app = make_app(config=parse_config(config))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[Any]:
        result = await ctx.llm("think hard", model="p:o4-mini", reasoning="high")
        return [result.usage.reasoning_tokens, result.usage.output_tokens, str(result.cost.usd)]

    # o4-mini is known to reason; its 880 reasoning tokens are part of the 900 output tokens
    assert app.run(ask) == [880, 900, "0.0037"]  # 100 x $1 + 900 x $4 per million
    assert sql(db_url, "SELECT reasoning_tokens, output_tokens FROM model_usage") == [(880, 900)]


def test_the_budget_counts_the_thinking_allowance_before_sending(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app(config=parse_config({"budgets": {"run": {"tokens": 5000}}}))
    model = app.models.add(ScriptedModel(lambda r: "ok", name="thinker", capabilities=THINKER))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[str]:
        out = [(await ctx.llm("q", model=model.id, max_tokens=100, reasoning="low")).text]
        try:  # 100 + 16384 thinking tokens may pass 5000: not sent
            await ctx.llm("q", model=model.id, max_tokens=100, reasoning="high")
        except legato.BudgetExceeded as exc:
            out.append(str(exc))
        return out

    ok, refused = app.run(ask)
    assert ok == "ok" and "may use up to" in refused and model.calls == 1


def test_a_cascade_thinks_harder_before_it_asks_a_stronger_model(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    def cheap_answer(request: ModelRequest) -> Any:  # right only when it thinks hard
        return {"verdict": "yes"} if request.reasoning == "high" else {"verdict": "?"}

    cheap = app.models.add(ScriptedModel(cheap_answer, name="cheap", capabilities=THINKER))
    strong = app.models.add(ScriptedModel(lambda r: {"verdict": "yes"}, name="strong"))
    app.models.alias("judge", [cheap.id, strong.id], strategy="cascade", repairs=0,
                     reasoning=["low", "high"])  # fmt: skip

    @app.workflow
    async def judge(ctx: legato.Context, question: str) -> list[Any]:
        result = await ctx.llm(
            question, model="judge", output=Verdict,
            evaluator=lambda r: r.output is not None and r.output.verdict != "?",
        )  # fmt: skip
        return [result.model, [(a.deployment, a.outcome, a.reasoning) for a in result.attempts]]

    assert app.run(judge, "q1") == [
        cheap.id, [[cheap.id, "escalated", "low"], [cheap.id, "ok", "high"]]
    ]  # fmt: skip
    assert strong.calls == 0
    # a cheap model without a reasoning control is asked once, then the stronger one
    blunt = app.models.add(ScriptedModel(lambda r: {"verdict": "?"}, name="blunt"))
    app.models.alias("judge2", [blunt.id, strong.id], strategy="cascade", repairs=0,
                     reasoning=["low", "high"])  # fmt: skip

    @app.workflow
    async def judge2(ctx: legato.Context) -> list[Any]:
        result = await ctx.llm(
            "q", model="judge2", output=Verdict,
            evaluator=lambda r: r.output is not None and r.output.verdict != "?",
        )  # fmt: skip
        return [[(a.deployment, a.outcome) for a in result.attempts], result.notes]

    attempts, notes = app.run(judge2)
    assert attempts == [[blunt.id, "escalated"], [strong.id, "ok"]] and blunt.calls == 1
    ignored = "takes no reasoning depth: reasoning='low' was not sent"
    assert notes == [f"{blunt.id} {ignored}", f"{strong.id} {ignored}"]


def test_depths_are_checked_where_they_are_given(make_app: Callable[..., legato.App]) -> None:
    with pytest.raises(ConfigurationError, match="reasoning must be one of none, low"):
        parse_config({"models": {"a": {"candidates": ["p:m"], "reasoning": "extreme"}}})
    app = make_app()
    app.models.add(ScriptedModel(["x"], name="m"))

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        try:
            await ctx.llm("q", model="scripted:m", reasoning=-1)  # type: ignore[arg-type]
        except ConfigurationError as exc:
            return str(exc)
        return ""

    assert app.run(ask) == "reasoning must be at least 0 tokens, got -1"


def test_an_anthropic_agent_sends_its_thinking_back_with_its_tool_calls(
    make_app: Callable[..., legato.App], stub_server: Callable[[bytes], Stub]
) -> None:
    """With thinking on, Anthropic refuses a tool loop whose last assistant turn does not
    begin with the thinking block it sent (signed): the agent keeps it and sends it back."""
    thought = {"type": "thinking", "thinking": "Check the depot first.", "signature": "sig=="}
    answer = {
        "id": "m1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 30},
        "content": [thought, {"type": "tool_use", "id": "t1", "name": "depot",
                              "input": {"city": "Oslo"}}],
    }  # fmt: skip
    stub = stub_server(json.dumps(answer).encode())
    app = make_app(config=parse_config(
        {"providers": {"a": {"kind": "anthropic", "base_url": stub.url, "api_key": KEY}}}
    ))  # fmt: skip

    @app.tool(risk="low")
    def depot(city: str) -> str:
        return "open"

    agent = legato.Agent("planner", "a:claude-sonnet-4-5", "Plan.", tools=[depot],
                         reasoning="low", max_steps=2)  # fmt: skip

    @app.workflow
    async def plan(ctx: legato.Context) -> str:
        return (await agent.run(ctx, "Where?")).status

    assert app.run(plan) == "max_steps"  # the stub asks for the tool every turn
    first, second = stub.bodies
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    _, assistant, results = second["messages"]
    assert assistant["content"][0] == thought  # first, exactly as it came
    assert assistant["content"][1]["type"] == "tool_use"
    assert results["content"][0]["type"] == "tool_result"
