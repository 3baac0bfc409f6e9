"""Prices: genai-prices' bundled snapshot, legato.toml overrides, unknown never zero."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import genai_prices
import pytest

from legato.ai.prices import LOCAL_VERSION, Price, PriceTable
from legato.ai.usage import Cost, Usage
from legato.errors import ConfigurationError

GENAI = f"genai-prices {genai_prices.__version__}"
M = 1_000_000


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a connection fails the test: prices never come from the web."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(genai_prices.UpdatePrices, "start", refuse)
    yield


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable()


def rates(provider: str, model: str) -> Any:
    """The bundled genai-prices rates of a model, as the oracle to compare with."""
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    _, info = snapshot.find_provider_model(model, None, provider, None)
    return info.get_prices(datetime.now(tz=UTC))


# ------------------------------------------------------------------------------- genai-prices


def test_a_known_model_is_priced_from_the_bundled_snapshot(table: PriceTable) -> None:
    gpt4o = rates("openai", "gpt-4o")
    cost = table.price("openai:gpt-4o", Usage(input_tokens=M, output_tokens=M, requests=1))
    assert cost.usd == gpt4o.input_mtok + gpt4o.output_mtok
    assert cost.usd == Decimal("12.5")  # $2.50 + $10 per million (snapshot of genai-prices)
    assert isinstance(cost.usd, Decimal)
    assert cost.price_version == GENAI
    small = table.price("openai:gpt-4o", Usage(input_tokens=1234, output_tokens=56, requests=1))
    expected = (1234 * gpt4o.input_mtok + 56 * gpt4o.output_mtok) / M
    assert small.usd == expected


def test_cached_input_is_priced_at_the_cached_rate_exactly_once(table: PriceTable) -> None:
    """legato's input_tokens counts cached tokens too: they must not be priced twice."""
    mini = rates("openai", "gpt-4o-mini")
    assert mini.cache_read_mtok < mini.input_mtok
    usage = Usage(input_tokens=M, cached_input_tokens=400_000, output_tokens=0, requests=1)
    cost = table.price("openai:gpt-4o-mini", usage)
    exactly_once = (600_000 * mini.input_mtok + 400_000 * mini.cache_read_mtok) / M
    assert cost.usd == exactly_once == Decimal("0.12")  # 0.6 x $0.15 + 0.4 x $0.075
    twice = (M * mini.input_mtok + 400_000 * mini.cache_read_mtok) / M
    no_discount = M * mini.input_mtok / M
    assert cost.usd not in (twice, no_discount)


def test_cache_writes_are_priced_at_the_write_rate(table: PriceTable) -> None:
    haiku = rates("anthropic", "claude-3-5-haiku-latest")
    usage = Usage(
        input_tokens=100_000, cached_input_tokens=20_000, cache_write_tokens=30_000, requests=1
    )
    cost = table.price("anthropic:claude-3-5-haiku-latest", usage)
    expected = (
        50_000 * haiku.input_mtok + 20_000 * haiku.cache_read_mtok + 30_000 * haiku.cache_write_mtok
    ) / M
    assert cost.usd == expected == Decimal("0.0716")


def test_reasoning_tokens_are_part_of_output_not_extra(table: PriceTable) -> None:
    plain = table.price("openai:o3-mini", Usage(input_tokens=1000, output_tokens=5000))
    thinking = table.price(
        "openai:o3-mini", Usage(input_tokens=1000, output_tokens=5000, reasoning_tokens=4000)
    )
    assert plain.usd == thinking.usd is not None


def test_prompt_size_tiers_come_from_genai_prices(table: PriceTable) -> None:
    sonnet = rates("anthropic", "claude-sonnet-4-5")
    small = table.price("anthropic:claude-sonnet-4-5", Usage(input_tokens=100_000))
    large = table.price("anthropic:claude-sonnet-4-5", Usage(input_tokens=300_000))
    assert small.usd is not None and large.usd is not None
    assert large.usd > 3 * small.usd  # above 200k tokens every input token costs more
    assert sonnet.input_mtok.base * 100_000 / M == small.usd


def test_provider_names_are_mapped_to_genai_prices_ids(table: PriceTable) -> None:
    usage = Usage(input_tokens=M, output_tokens=M)
    assert table.price("gemini:gemini-2.5-flash", usage) == table.price(
        "google:gemini-2.5-flash", usage
    )
    assert table.price("gemini:gemini-2.5-flash", usage).known
    assert table.price("OpenAI:GPT-4o", usage) == table.price("openai:gpt-4o", usage)


def test_an_official_endpoint_under_another_name_is_found_by_model(table: PriceTable) -> None:
    usage = Usage(input_tokens=M, output_tokens=M)
    assert table.price("work-openai:gpt-4o", usage) == table.price("openai:gpt-4o", usage)


def test_dated_model_names_are_matched(table: PriceTable) -> None:
    usage = Usage(input_tokens=M)
    assert table.price("openai:gpt-4o-2024-08-06", usage).known


def test_price_at_a_given_time(table: PriceTable) -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    cost = table.price("openai:gpt-4o-mini", Usage(input_tokens=M), at=at)
    assert cost.usd == Decimal("0.15")


# ------------------------------------------------------------------------------- unknown


def test_unknown_model_is_unknown_not_zero(table: PriceTable) -> None:
    cost = table.price("openai:gpt-nonexistent-9", Usage(input_tokens=10, output_tokens=10))
    assert cost.usd is None
    assert not cost.known
    assert cost.price_version == GENAI
    assert table.price("nosuchprovider:whatever", Usage(input_tokens=10)).usd is None


def test_unofficial_endpoint_ignores_public_prices(table: PriceTable) -> None:
    """gpt-4o's price at OpenAI says nothing about a model served by your own vLLM."""
    cost = table.price("openai:gpt-4o", Usage(input_tokens=M), official=False)
    assert cost.usd is None
    assert cost.price_version == table.overrides_version
    assert table.estimate("openai:gpt-4o", 1000, 1000, official=False).usd is None


def test_unknown_plus_known_stays_unknown(table: PriceTable) -> None:
    known = table.price("openai:gpt-4o", Usage(input_tokens=M))
    unknown = table.price("openai:gpt-nonexistent-9", Usage(input_tokens=M))
    assert (known + unknown).usd is None
    assert (unknown + known).usd is None
    assert (known + known).usd == 2 * known.usd  # type: ignore[operator]
    assert sum((known for _ in range(3)), Cost()).usd == 3 * known.usd  # type: ignore[operator]


def test_local_models_are_free(table: PriceTable) -> None:
    cost = table.price("local:e5-small", Usage(input_tokens=5000, requests=1), official=False)
    assert cost.usd == Decimal(0)
    assert cost.known
    assert cost.price_version == LOCAL_VERSION


# ------------------------------------------------------------------------------- overrides


def test_overrides_use_decimal_arithmetic() -> None:
    price = Price(
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("2"),
        cached_input_per_mtok=Decimal("0.5"),
        cache_write_per_mtok=None,  # cache writes at the input price
        per_request=Decimal("0.001"),
    )
    table = PriceTable(overrides={"vllm:llama-3.1-8b": price})
    usage = Usage(
        input_tokens=M,
        cached_input_tokens=200_000,
        cache_write_tokens=100_000,
        output_tokens=500_000,
        requests=2,
    )
    cost = table.price("vllm:llama-3.1-8b", usage, official=False)
    # 700k fresh x $1 + 200k cached x $0.50 + 100k written x $1 + 500k out x $2 + 2 x $0.001
    assert cost.usd == Decimal("1.902")
    assert cost.price_version == table.overrides_version
    tiny = table.price("vllm:llama-3.1-8b", Usage(input_tokens=1, output_tokens=1, requests=1))
    assert tiny.usd == Decimal("0.000003") + Decimal("0.001")  # exact, no float rounding


def test_overrides_win_over_genai_prices() -> None:
    table = PriceTable(
        overrides={"openai:gpt-4o-mini": Price(input_per_mtok=Decimal(1), output_per_mtok=0)}
    )
    cost = table.price("openai:gpt-4o-mini", Usage(input_tokens=M, output_tokens=M))
    assert cost.usd == Decimal(1)
    assert cost.price_version == table.overrides_version
    assert table.price("openai:gpt-4o", Usage(input_tokens=M)).price_version == GENAI


def test_override_without_a_price_for_a_used_bucket_is_unknown() -> None:
    table = PriceTable(overrides={"vllm:m": {"input_per_mtok": "0.1"}})
    assert table.price("vllm:m", Usage(input_tokens=M), official=False).usd == Decimal("0.1")
    assert table.price("vllm:m", Usage(input_tokens=M, output_tokens=1), official=False).usd is None


def test_overrides_version_is_a_short_sha_of_the_canonical_overrides() -> None:
    a = PriceTable(
        overrides={"openai:gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.6)}
    )
    same = PriceTable(
        overrides={"OpenAI:gpt-4o-mini": {"input_per_mtok": "0.150", "output_per_mtok": "0.60"}}
    )
    other = PriceTable(
        overrides={"openai:gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.7)}
    )
    assert a.overrides_version.startswith("legato.toml@")
    digest = a.overrides_version.removeprefix("legato.toml@")
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert a.overrides_version == same.overrides_version
    assert a.overrides_version != other.overrides_version
    assert PriceTable().overrides_version != a.overrides_version


def test_version_strings(table: PriceTable) -> None:
    assert table.genai_version == GENAI
    assert table.version == f"{GENAI}; {table.overrides_version}"


def test_bad_overrides_and_ids_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="finite number"):
        PriceTable(overrides={"openai:x": {"input_per_mtok": "-1"}})
    with pytest.raises(ConfigurationError, match="provider:model"):
        PriceTable(overrides={"gpt-4o": Price(input_per_mtok=1)})
    with pytest.raises(ConfigurationError, match="provider:model"):
        PriceTable().price("gpt-4o", Usage(input_tokens=1))
    with pytest.raises(ValueError, match="negative"):
        PriceTable().price("openai:gpt-4o", Usage(input_tokens=-1))


# ------------------------------------------------------------------------------- estimates


def test_estimate_is_the_price_of_one_uncached_call(table: PriceTable) -> None:
    estimate = table.estimate("openai:gpt-4o", 2000, 4096)
    actual = table.price("openai:gpt-4o", Usage(input_tokens=2000, output_tokens=4096, requests=1))
    assert estimate == actual
    assert estimate.usd is not None and estimate.usd > 0
    assert table.estimate("openai:gpt-nonexistent-9", 10, 10).usd is None


def test_lookups_are_cached_and_fast(table: PriceTable) -> None:
    usage = Usage(input_tokens=1500, cached_input_tokens=500, output_tokens=300, requests=1)
    table.price("anthropic:claude-sonnet-4-5", usage)
    started = time.perf_counter()
    for _ in range(1000):
        table.price("anthropic:claude-sonnet-4-5", usage)
        table.price("openai:gpt-nonexistent-9", usage)
    assert time.perf_counter() - started < 2.0  # ~0.1 ms a price on a laptop


def test_prices_come_from_the_bundled_snapshot_even_if_others_updated_theirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from genai_prices import data_snapshot

    fetched = data_snapshot.DataSnapshot(providers=[], from_auto_update=True)
    monkeypatch.setattr(data_snapshot, "_custom_snapshot", fetched)  # as UpdatePrices would
    cost = PriceTable().price("openai:gpt-4o", Usage(input_tokens=M))
    assert cost.usd == Decimal("2.5")
    assert cost.price_version == GENAI
