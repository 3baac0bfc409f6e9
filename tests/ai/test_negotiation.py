"""What servers that speak a subset of a protocol get from legato, with fake servers on
127.0.0.1 (``fake_server``) and both databases: structured output asked the next way when a
server rejects one (and remembered for every worker), errors that say what the server said,
no durable retry that pays again for a judged answer, chat-template tokens in budgets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import legato
from legato.ai.config import parse_config
from legato.ai.messages import Message, ModelRequest
from legato.ai.model import Capabilities, ProviderSettings
from legato.ai.providers.openai import OpenAIModel
from tests.ai.conftest import Answer, Stub
from tests.conftest import sql

FakeServer = Callable[[Answer], Stub]


class Person(BaseModel):
    name: str
    age: int


GOOD = {"name": "Alice", "age": 30}


def completion(content: str = "", calls: list[dict[str, Any]] | None = None,
               prompt: int = 10) -> dict[str, Any]:  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5},
    }  # fmt: skip


def picky(rejects: set[str], status: int) -> Answer:
    """An OpenAI-compatible server that rejects some ways of asking for structured output
    (``json_schema``, ``json_object``, ``tools``) and answers the others with GOOD."""

    def answer(body: Any) -> tuple[int, Any]:
        kind = (body.get("response_format") or {}).get("type")
        if kind in rejects:
            # llama-cpp-python's words, in OpenAI's error shape
            said = f"response_format.type: Input should be 'text' (got {kind!r})"
            return status, {"error": {"message": said, "type": "invalid_request_error"}}
        if "tool_choice" in body:
            if "tools" in rejects:
                return status, {"object": "error", "message": "tool_choice is not supported"}
            name = body["tool_choice"]["function"]["name"]
            call = {"id": "t1", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(GOOD)}}  # fmt: skip
            return 200, completion(calls=[call])
        return 200, completion(json.dumps(GOOD))

    return answer


def _config(server: Stub, kind: str = "openai", **extra: Any) -> Any:
    base = f"{server.url}/v1" if kind == "openai" else server.url
    provider = {"kind": kind, "base_url": base, "api_key": "k", "external": False}
    return parse_config({"providers": {"srv": provider}, **extra})


def _extract(app: legato.App, model: str = "srv:m") -> dict[str, Any]:
    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, Any]:
        result = await ctx.llm("Alice is 30.", model=model, output=Person)
        assert result.output == Person(**GOOD)
        return {"mode": result.output_mode, "reasons": [a.reason for a in result.attempts]}

    return app.run(extract)


@pytest.mark.parametrize(
    ("rejects", "status", "mode"),
    [
        (set(), 400, "native"),
        ({"json_schema"}, 500, "json_object"),  # llama-cpp-python answers 500
        ({"json_schema", "json_object"}, 400, "tool"),
        ({"json_schema", "json_object", "tools"}, 422, "prompted"),
    ],
)
def test_structured_output_is_asked_the_next_way_and_remembered(
    make_app: Callable[..., legato.App], fake_server: FakeServer, db_url: str,
    rejects: set[str], status: int, mode: str,
) -> None:  # fmt: skip
    server = fake_server(picky(rejects, status))
    first = _extract(make_app(config=_config(server)))
    assert first["mode"] == mode
    refusals = first["reasons"][:-1]
    assert len(refusals) == len(rejects) and server.requests == len(rejects) + 1
    for reason in refusals:  # journaled with the status and what the server said
        assert "unsupported, asking another way" in reason and f"HTTP {status}" in reason
    learned = {f for (f,) in sql(db_url, "SELECT fact FROM deployment_facts")}
    assert {f for f in learned if f.startswith("rejects:")} == {
        f"rejects:output.{m}" for m in ("native", "json_object", "tool")[: len(rejects)]
    }
    # another worker (a new registry on the same database) asks the right way at once
    second = _extract(make_app(config=_config(server)))
    assert second == {"mode": mode, "reasons": [""]}
    assert server.requests == len(rejects) + 2


def test_claude_native_output_falls_back_to_a_forced_tool(
    make_app: Callable[..., legato.App], fake_server: FakeServer
) -> None:
    def answer(body: Any) -> tuple[int, Any]:
        if "output_config" in body:  # a gateway that predates structured outputs
            error = {"type": "invalid_request_error",
                     "message": "output_config: Extra inputs are not permitted"}  # fmt: skip
            return 400, {"type": "error", "error": error}
        block = {"type": "tool_use", "id": "tu1", "name": body["tool_choice"]["name"],
                 "input": GOOD}  # fmt: skip
        return 200, {
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [block], "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }  # fmt: skip

    server = fake_server(answer)
    out = _extract(make_app(config=_config(server, "anthropic")), "srv:claude-sonnet-4-5")
    assert out["mode"] == "tool" and "output.native unsupported" in out["reasons"][0]
    assert "HTTP 400" in out["reasons"][0] and "Extra inputs" in out["reasons"][0]
    assert server.bodies[0]["output_config"]["format"]["type"] == "json_schema"


def test_a_server_error_says_the_status_and_what_the_server_said(
    make_app: Callable[..., legato.App], fake_server: FakeServer
) -> None:
    loading = fake_server(lambda _: (503, {"detail": "model is still loading"}))
    app = make_app(config=_config(loading))

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        return (await ctx.llm("hi", model="srv:m")).text

    with pytest.raises(legato.RunFailed) as failed:
        app.run(ask)
    assert "ModelUnavailable" in str(failed.value)
    assert "server (HTTP 503): model is still loading" in str(failed.value)
    # transient: retried on the durable timer until the circuit breaker opened (3 in a row);
    # the error says what the server said all the same
    assert loading.requests == 3

    too_long = {"object": "error", "message": "maximum context length is 2048 tokens"}
    refused = fake_server(lambda _: (400, too_long))
    app = make_app(config=_config(refused))

    @app.workflow
    async def ask_again(ctx: legato.Context) -> str:
        # another model: breakers are shared through the database, and srv:m's is open
        return (await ctx.llm("hi", model="srv:m2")).text

    with pytest.raises(legato.RunFailed, match=r"bad_request \(HTTP 400\): maximum context"):
        app.run(ask_again)
    assert refused.requests == 1


def test_a_retry_never_pays_again_for_a_judged_answer(
    make_app: Callable[..., legato.App], fake_server: FakeServer, db_url: str
) -> None:
    def answer(body: Any) -> tuple[int, Any]:
        if len(body["messages"]) == 1:  # the first question: an answer that is not JSON
            return 200, completion("Alice, thirty")
        return 500, {"error": {"message": "the repair went wrong"}}

    server = fake_server(answer)
    app = make_app(config=_config(server))

    @app.workflow
    async def extract(ctx: legato.Context) -> list[str]:
        try:
            await ctx.llm("Alice is 30.", model="srv:m", output=Person)
        except legato.OutputValidationError as invalid:
            return [a.outcome for a in invalid.attempts]
        return []

    # the answer was paid and judged invalid, its repair failed: not retried from the start
    assert app.run(extract) == ["invalid", "error"]
    assert server.requests == 2
    assert sql(db_url, "SELECT COUNT(*) FROM model_usage") == [(1,)]


def test_the_chat_template_learned_from_usage_counts_in_budgets(
    make_app: Callable[..., legato.App], fake_server: FakeServer, db_url: str
) -> None:
    # the server counts 100 prompt tokens for "hi": its template adds a long system prompt
    server = fake_server(lambda _: (200, completion("hello", prompt=100)))

    def ask(budgets: dict[str, Any] | None) -> int:
        app = make_app(config=_config(server, **({"budgets": budgets} if budgets else {})))

        @app.workflow
        async def estimate(ctx: legato.Context) -> int:
            return (await ctx.llm("hi", model="srv:m", max_tokens=10)).estimated_input_tokens

        return app.run(estimate)

    assert ask(None) < 100  # the margin before anything was measured is not enough here
    ((template,),) = sql(db_url, "SELECT value FROM deployment_facts")
    assert int(template) > 0
    with pytest.raises(legato.RunFailed, match="this call may use up to 110"):
        ask({"run": {"tokens": 109}})
    assert server.requests == 1  # refused before sending
    assert ask({"run": {"tokens": 110}}) == 100


@pytest.mark.parametrize(
    ("model", "param", "expected"),
    [
        ("o3-mini", None, "max_completion_tokens"),
        ("openai/gpt-5", None, "max_completion_tokens"),
        ("gpt-4o-mini", None, "max_tokens"),
        ("qwen2.5-7b", None, "max_tokens"),
        ("gpt-4o-mini", "max_completion_tokens", "max_completion_tokens"),
    ],
)
def test_output_is_capped_with_the_parameter_the_model_takes(
    fake_server: FakeServer, model: str, param: str | None, expected: str
) -> None:
    server = fake_server(lambda _: (200, completion("ok")))
    settings = ProviderSettings("srv", "openai", base_url=f"{server.url}/v1", api_key="k")
    deployment = OpenAIModel(settings, model, Capabilities(max_tokens_param=param))
    request = ModelRequest(messages=(Message(role="user", content="hi"),), max_tokens=7)
    asyncio.run(deployment.request(request))
    (body,) = server.bodies
    other = ({"max_tokens", "max_completion_tokens"} - {expected}).pop()
    assert body[expected] == 7 and other not in body


def test_agent_turns_are_sent_as_strict_servers_take_them(
    make_app: Callable[..., legato.App], fake_server: FakeServer
) -> None:
    def strict(body: Any) -> tuple[int, Any]:
        if any(m.get("content") is None for m in body["messages"]):  # as llama-cpp-python
            return 500, {"error": {"message": "messages.1.content: Input should be a string"}}
        answered = any(m["role"] == "tool" for m in body["messages"])
        name, arguments = (
            ("final_result", {"city": "Paris"}) if answered else ("weather", {"city": "Paris"})
        )
        function = {"name": name, "arguments": json.dumps(arguments)}
        call = {"id": f"t{len(body['messages'])}", "type": "function", "function": function}
        return 200, completion(calls=[call])

    class Where(BaseModel):
        city: str

    server = fake_server(strict)
    app = make_app(config=_config(server))

    @app.tool(risk="low")
    def weather(city: str) -> int:
        return 21

    agent = legato.Agent("forecaster", "srv:m", "Answer.", tools=[weather], output=Where)

    @app.workflow
    async def forecast(ctx: legato.Context) -> list[object]:
        result = await agent.run(ctx, "Weather in Paris?")
        return [result.status, result.output.model_dump() if result.output else None]

    assert app.run(forecast) == ["completed", {"city": "Paris"}]
    assistant = server.bodies[1]["messages"][-2]  # the tool-call turn, sent back
    assert assistant["role"] == "assistant" and assistant["content"] == ""
