"""Prompt caching: stable prefixes marked where the protocol needs marks (Anthropic), kept
the same across an agent's turns (for providers that cache on their own), and cached tokens
read from usage, priced, and reported with what they saved."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from click.testing import CliRunner

import legato
from legato.ai.config import parse_config
from legato.ai.messages import Message, ModelRequest, ToolSpec
from legato.ai.model import Model
from legato.ai.prices import PriceTable
from legato.ai.registry import Pricing
from legato.ai.usage import Cost, Usage
from legato.cli.main import cli
from legato.testing import ScriptedModel
from tests.ai.conftest import KEY, MODEL, Katan, Stub, Wire, canned_completion
from tests.ai.test_providers import connect, on_the_wire, run
from tests.conftest import sql

EPHEMERAL = {"type": "ephemeral"}
LONG = "The contract says the supplier delivers every Monday before noon. " * 200
TOOL = ToolSpec(name="lookup", description="Look a clause up.",
                parameters={"type": "object", "properties": {"q": {"type": "string"}}})  # fmt: skip


def test_anthropic_marks_system_the_latest_turn_and_marked_documents(katan_wire: Katan) -> None:
    request = ModelRequest(
        system=LONG,
        tools=(TOOL,),
        messages=(
            Message(role="user", content=f"Read this: {LONG}", cache=True),
            Message(role="assistant", content="Read."),
            Message(role="user", content="When are deliveries?"),
        ),
    )
    _, seen = on_the_wire("anthropic", katan_wire, request)
    body = seen["request_body"]
    assert body["system"] == [{"type": "text", "text": LONG, "cache_control": EPHEMERAL}]
    assert "cache_control" not in body["tools"][0]  # the mark on the system covers the tools
    document, answer, latest = body["messages"]
    assert document["content"][0]["cache_control"] == EPHEMERAL
    assert answer["content"] == "Read."  # not marked: nothing new ends there
    assert latest["content"] == [
        {"type": "text", "text": "When are deliveries?", "cache_control": EPHEMERAL}
    ]


def test_anthropic_marks_nothing_too_short_to_cache_or_when_told_not_to(
    katan_wire: Katan,
) -> None:
    short = ModelRequest(system="Be brief.", messages=(Message(role="user", content="hi"),))
    _, seen = on_the_wire("anthropic", katan_wire, short)
    assert seen["request_body"]["system"] == "Be brief."  # a cache write would cost extra
    long = short.model_copy(update={"system": LONG})
    _, marked = on_the_wire("anthropic", katan_wire, long)
    assert marked["request_body"]["system"][0]["cache_control"] == EPHEMERAL
    model = connect("anthropic", katan_wire.url)
    model.provider = replace(model.provider, prompt_cache=False)  # [providers.x] prompt_cache

    async def body(model: Model) -> dict[str, Any]:
        async with Wire(katan_wire) as wire:
            await model.request(long)
            return dict((await wire.received("/v1/messages"))["request_body"])

    sent = run(model, body)
    assert sent["system"] == LONG


def test_an_agents_turns_share_their_prefix(
    make_app: Callable[..., legato.App], katan_wire: Katan
) -> None:
    """Providers that cache on their own (OpenAI, vLLM) match a prompt's start: each turn's
    request must begin exactly as the previous one did."""
    config = {"providers": {"p": {"kind": "openai", "base_url": f"{katan_wire.url}/v1",
                                  "api_key": KEY}}}  # fmt: skip
    app = make_app(config=parse_config(config))

    @app.tool(risk="low")
    def lookup(q: str) -> str:
        return "Mondays before noon"

    agent = legato.Agent("reader", f"p:{MODEL}", LONG, tools=[lookup], max_steps=3)

    @app.workflow
    async def read(ctx: legato.Context) -> list[dict[str, Any]]:
        async with Wire(katan_wire) as wire:
            result = await agent.run(ctx, "When are deliveries?")
            bodies = [(await wire.received("/v1/chat/completions"))["request_body"]
                      for _ in range(result.steps)]  # fmt: skip
        return bodies

    bodies = app.run(read)
    assert len(bodies) == 3  # the echo server calls the tool every turn
    for before, after in itertools.pairwise(bodies):
        assert after["tools"] == before["tools"]
        assert after["messages"][: len(before["messages"])] == before["messages"]
        assert len(after["messages"]) > len(before["messages"])


def test_cached_tokens_are_priced_and_the_saving_is_reported(
    make_app: Callable[..., legato.App], db_url: str, stub_server: Callable[[bytes], Stub]
) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010,
             "prompt_tokens_details": {"cached_tokens": 800}}  # fmt: skip
    price = {"input_per_mtok": "1", "cached_input_per_mtok": "0.1", "output_per_mtok": "2"}
    config = canned_completion(stub_server, "m", "Mondays", usage, price)
    app = make_app(config=parse_config(config))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[Any]:
        result = await ctx.llm("When are deliveries?", model="p:m")
        return [result.usage.cached_input_tokens, str(result.cost.usd)]

    cached, usd = app.run(ask)
    # 200 fresh x $1 + 800 cached x $0.10 + 10 out x $2, per million tokens
    assert cached == 800 and Decimal(usd) == Decimal("0.0003")
    # at the full input price the 800 cached tokens would have cost $0.00072 more
    assert sql(db_url, "SELECT cache_saved_nanousd FROM model_usage") == [(720_000,)]
    out = CliRunner().invoke(cli, ["--database-url", db_url, "costs", "--by", "model", "--json"])
    assert out.exit_code == 0, out.output
    (row,) = map(json.loads, out.output.splitlines())
    assert (row["cached_input_tokens"], row["cache_hit_rate"]) == (800, 0.8)
    assert row["cache_saved_usd"] == "0.00072"  # exact: no trailing zeros in JSON
    table = CliRunner().invoke(cli, ["--database-url", db_url, "costs", "--by", "model"])
    assert "SAVED" in table.output
    assert "800 (80%)" in table.output and "0.000720" in table.output


def test_cache_writes_can_cost_more_than_reads_save() -> None:
    price = {"input_per_mtok": "3", "cached_input_per_mtok": "0.3",
             "cache_write_per_mtok": "3.75", "output_per_mtok": "15"}  # fmt: skip
    table = PriceTable({"p:m": price})
    pricing = Pricing(table, ScriptedModel(name="m", provider="p"), overridden=True)
    written = Usage(input_tokens=2000, cache_write_tokens=2000, requests=1)
    assert pricing.cache_saving(written, pricing.price(written)) == Decimal("-0.0015")
    read = Usage(input_tokens=2000, cached_input_tokens=2000, requests=1)
    assert pricing.cache_saving(read, pricing.price(read)) == Decimal("0.0054")
    plain = Usage(input_tokens=2000, requests=1)
    assert pricing.cache_saving(plain, pricing.price(plain)) == 0
    assert pricing.cache_saving(read, Cost.unknown()) is None
