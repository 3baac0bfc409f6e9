"""ctx.llm and ctx.embed against llama-cpp-python's server, as a user would point legato at it.

The server speaks a subset of OpenAI's protocol (no JSON-Schema ``response_format``, strict
message shapes, a chat template that adds a system prompt): these tests pin that legato's
defaults work there, on both databases. Run with ``make test-servers``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

import legato
from legato.ai.config import parse_config
from tests.conftest import sql
from tests.servers.conftest import CHAT, EMBED, LlamaServer

pytestmark = pytest.mark.servers


class Person(BaseModel):
    name: str
    age: int


def _config(llama: LlamaServer, **extra: Any) -> legato.ai.config.AIConfig:
    return parse_config({
        "providers": {"llama": {"kind": "openai", "base_url": llama.url, "api_key": "unused",
                                "external": False, "timeout": 120}},
        "deployments": {f"llama:{CHAT}": {"context_window": 2048},
                        f"llama:{EMBED}": {"chat": False, "embeddings": True}},
        **extra,
    })  # fmt: skip


PROMPT = "Alice is 30 years old. Give her name and age."


def _ask_for_person(app: legato.App) -> dict[str, Any]:
    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, Any]:
        try:
            result = await ctx.llm(PROMPT, model=f"llama:{CHAT}", output=Person, max_tokens=48)
        except legato.OutputValidationError as invalid:
            return {"valid": False, "attempts": [a.model_dump() for a in invalid.attempts]}
        assert isinstance(result.output, Person)
        return {"valid": True, "mode": result.output_mode,
                "attempts": [a.model_dump() for a in result.attempts]}  # fmt: skip

    return app.run(extract)


def test_structured_output_with_default_settings_is_negotiated_once_for_every_worker(
    make_app: Callable[..., legato.App], llama: LlamaServer, db_url: str
) -> None:
    before = len(llama.served())
    first = _ask_for_person(make_app(config=_config(llama)))
    # validated, or OutputValidationError: never a transient failure retried into ModelUnavailable
    rejected = first["attempts"][0]
    assert rejected["outcome"] == "error"
    assert "output.native unsupported" in rejected["reason"]
    # the status and what the server said: it takes 'text' or 'json_object' only
    assert "HTTP 500" in rejected["reason"] and "json_object" in rejected["reason"]
    assert all(a["outcome"] in ("ok", "invalid") for a in first["attempts"][1:])
    statuses = llama.served()[before:]
    assert statuses[0] == 500 and set(statuses[1:]) == {200}  # asked the native way once
    facts = dict(sql(db_url, "SELECT fact, value FROM deployment_facts"))
    assert "json_object" in json.loads(facts["rejects:output.native"])

    # another worker (a new registry on the same database) asks in JSON mode at once
    before = len(llama.served())
    second = _ask_for_person(make_app(config=_config(llama)))
    assert set(llama.served()[before:]) == {200}
    assert all(a["outcome"] in ("ok", "invalid") for a in second["attempts"])
    if second["valid"]:
        assert second["mode"] == "json_object"


def test_repairs_go_back_through_the_forced_tool(
    make_app: Callable[..., legato.App], llama: LlamaServer
) -> None:
    checked: list[str] = []

    class Name(BaseModel):
        name: str

        @field_validator("name")
        @classmethod
        def _first_answer_is_refused(cls, value: str) -> str:
            checked.append(value)
            if len(checked) == 1:
                raise ValueError("write the full name")
            return value

    deployments = {f"llama:{CHAT}": {"context_window": 2048, "native_output": False}}
    app = make_app(config=_config(llama, deployments=deployments))

    @app.workflow
    async def extract(ctx: legato.Context) -> dict[str, Any]:
        result = await ctx.llm(PROMPT, model=f"llama:{CHAT}", output=Name, max_tokens=32)
        return {"mode": result.output_mode, "outcomes": [a.outcome for a in result.attempts],
                "usage": result.usage.model_dump(),
                "raw": [a.usage.raw for a in result.attempts]}  # fmt: skip

    before = len(llama.served())
    out = app.run(extract)
    assert out["mode"] == "tool" and out["outcomes"] == ["invalid", "ok"]
    # the repair re-sent the model's tool call turn, and the server took it (no null content)
    assert llama.served()[before:] == [200, 200]
    # usage is what the server reported for both requests
    assert out["usage"]["input_tokens"] == sum(r["prompt_tokens"] for r in out["raw"])
    assert out["usage"]["output_tokens"] == sum(r["completion_tokens"] for r in out["raw"])


def test_usage_is_what_the_server_reported(
    make_app: Callable[..., legato.App], llama: LlamaServer
) -> None:
    app = make_app(config=_config(llama))

    @app.workflow
    async def ask(ctx: legato.Context) -> dict[str, Any]:
        result = await ctx.llm("Say hi", model=f"llama:{CHAT}", max_tokens=8, temperature=0)
        return {"usage": result.usage.model_dump(), "raw": result.attempts[0].usage.raw}

    out = app.run(ask)
    usage, raw = out["usage"], out["raw"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (
        raw["prompt_tokens"], raw["completion_tokens"]
    )  # fmt: skip
    # the same request without legato: the server counts the same prompt
    alone = llama.chat({"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 1})
    assert usage["input_tokens"] == alone["usage"]["prompt_tokens"]  # type: ignore[index]
    ((_, totals),) = app.costs(by="workflow")
    assert (totals.calls, totals.input_tokens, totals.output_tokens) == (
        1, usage["input_tokens"], usage["output_tokens"]
    )  # fmt: skip


def test_budgets_refuse_before_sending_counting_the_chat_template(
    make_app: Callable[..., legato.App], llama: LlamaServer
) -> None:
    messages = [{"role": "user", "content": "Say hi"}]
    counted = llama.chat({"messages": messages, "max_tokens": 1})["usage"]["prompt_tokens"]  # type: ignore[index]
    # the template's system prompt: a count of the text alone would let this call through
    assert counted + 16 > 40

    budgets = {"run": {"tokens": 40}}
    app = make_app(config=_config(llama, budgets=budgets))

    @app.workflow
    async def ask(ctx: legato.Context) -> str:
        return (await ctx.llm("Say hi", model=f"llama:{CHAT}", max_tokens=16)).text

    before = len(llama.served())
    with pytest.raises(legato.RunFailed, match="run budget: 0 of 40 tokens used"):
        app.run(ask)
    assert llama.served()[before:] == []  # refused before sending

    # once a call measured the template, the estimate holds it and bounds what is counted
    measure = make_app(config=_config(llama))

    @measure.workflow
    async def once(ctx: legato.Context) -> int:
        return (await ctx.llm("Say hi", model=f"llama:{CHAT}", max_tokens=1)).usage.input_tokens

    assert measure.run(once) == counted
    roomy = make_app(config=_config(llama, budgets={"run": {"tokens": 80}}))

    @roomy.workflow
    async def bounded(ctx: legato.Context) -> list[int]:
        result = await ctx.llm("Say hi", model=f"llama:{CHAT}", max_tokens=16)
        return [result.estimated_input_tokens, result.usage.input_tokens]

    estimated, reported = roomy.run(bounded)
    assert reported <= estimated


def test_embeddings_through_the_server(
    make_app: Callable[..., legato.App], llama: LlamaServer
) -> None:
    app = make_app(config=_config(llama))
    texts = ["durable workflows", "a week-long wait"]

    @app.workflow
    async def vectors(ctx: legato.Context) -> dict[str, Any]:
        result = await ctx.embed(texts, model=f"llama:{EMBED}")
        return {"vectors": result.vectors, "tokens": result.usage.input_tokens}

    before = len(llama.served("/v1/embeddings"))
    out = app.run(vectors)
    assert llama.served("/v1/embeddings")[before:] == [200]
    assert [len(v) for v in out["vectors"]] == [576, 576]  # one pooled vector per text
    assert out["vectors"][0] != out["vectors"][1]
    assert out["tokens"] > 0
