"""ctx.llm end to end through the official SDKs, against llm-katan on 127.0.0.1.

The server was written by others and speaks the OpenAI and Anthropic protocols: these tests
check routing, fallback, circuit breakers, structured output, redaction and streaming as a
user would meet them, with real HTTP, real SDKs and both databases.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

import legato
from legato.ai.config import parse_config
from tests.ai.conftest import KEY, MODEL, Katan


class Contact(BaseModel):
    name: str
    email: str


def _provider(server: Katan, kind: str) -> dict[str, object]:
    base = f"{server.url}/v1" if kind == "openai" else server.url
    return {"kind": kind, "base_url": base, "api_key": KEY, "timeout": 10}


def test_fallback_and_circuit_breaker_over_http(
    make_app: Callable[..., legato.App], katan: Katan, katan_500: Katan
) -> None:
    config = {
        "providers": {"broken": _provider(katan_500, "openai"), "good": _provider(katan, "openai")},
        "models": {"fast": {"candidates": [f"broken:{MODEL}", f"good:{MODEL}"]}},
        "circuit_breaker": {"failures": 2, "cooldown": "1h"},
    }
    app = make_app(config=parse_config(config))
    before = katan_500.requests_served()

    @app.workflow
    async def ask(ctx: legato.Context) -> list[list[str]]:
        out = []
        for i in range(4):
            result = await ctx.llm(f"question {i}", model="fast")
            out.append([result.model, result.text, result.routing.reason])
        return out

    answers = app.run(ask)
    assert [a[0] for a in answers] == [f"good:{MODEL}"] * 4
    assert "question 3" in answers[3][1]  # the echo server repeats the prompt
    assert "server" in answers[0][2] and "circuit open" in answers[3][2]
    # the broken deployment was asked twice (SDK retries off), then skipped by the breaker
    assert katan_500.requests_served() - before == 2


def test_structured_output_through_anthropic_tool_call(
    make_app: Callable[..., legato.App], katan: Katan
) -> None:
    config = {"providers": {"anthropic": _provider(katan, "anthropic")}}
    app = make_app(config=parse_config(config))

    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, object]:
        result = await ctx.llm("Who wrote?", model=f"anthropic:{MODEL}", output=Contact)
        assert isinstance(result.output, Contact)
        return {"out": result.output.model_dump(), "tokens": result.usage.total_tokens,
                "cost_known": result.cost.known}  # fmt: skip

    out = app.run(extract)
    # the server fills the forced output tool's arguments from its JSON Schema
    assert out["out"] == {"name": "test_name", "email": "test_email"}
    assert int(str(out["tokens"])) > 0 and out["cost_known"] is False  # a custom endpoint


def test_garbage_instead_of_json_is_repaired_then_fails_clearly(
    make_app: Callable[..., legato.App], katan: Katan
) -> None:
    config = {
        "providers": {"openai": _provider(katan, "openai")},
        "models": {"fast": {"candidates": [f"openai:{MODEL}"], "repairs": 2}},
    }
    app = make_app(config=parse_config(config))

    @app.workflow
    async def extract(ctx: legato.Context) -> list[object]:
        try:
            await ctx.llm("Who wrote?", model="fast", output=Contact)
        except legato.OutputValidationError as exc:
            return [[a.outcome for a in exc.attempts], sum(a.usage.requests for a in exc.attempts)]
        return []

    # the echo server ignores the JSON Schema and answers prose: 1 try + 2 repairs, all paid
    assert app.run(extract) == [["invalid", "invalid", "invalid"], 3]


def test_data_rules_redact_before_text_leaves(
    make_app: Callable[..., legato.App], katan: Katan
) -> None:
    policy = legato.Policy.from_yaml("data:\n  redact: [email, phone]\n  forbid: [us_ssn]\n")
    config = {"providers": {"openai": _provider(katan, "openai")}}
    app = make_app(config=parse_config(config), policy=policy)

    @app.workflow
    async def ask(ctx: legato.Context, text: str) -> list[object]:
        try:
            result = await ctx.llm(text, model=f"openai:{MODEL}")
        except legato.DataBlocked as exc:
            return ["blocked", str(exc)]
        return [result.text, result.redacted]

    text, redacted = app.run(ask, "Mail ada@example.org or call +44 20 7946 0958 today")
    # the server echoes what it received: the address and number never left
    assert "ada@example.org" not in str(text) and "[EMAIL]" in str(text)
    assert "7946" not in str(text) and redacted == {"email": 1, "phone": 1}
    blocked = app.run(ask, "my ssn is 078-05-1120")
    assert blocked[0] == "blocked" and "us_ssn" in str(blocked[1])


def test_streaming_call_is_aggregated_and_journaled(
    make_app: Callable[..., legato.App], katan: Katan
) -> None:
    config = {"providers": {"openai": _provider(katan, "openai")}}
    app = make_app(config=parse_config(config))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[object]:
        result = await ctx.llm("stream me", model=f"openai:{MODEL}", stream=True)
        return [result.text, result.usage.requests]

    text, requests = app.run(ask)
    assert "stream me" in str(text) and requests == 1
