"""Model usage and the response cache: every paid call is a row (never merged), sums are exact
integers of nano-dollars, an unknown cost is counted apart, and cached responses expire."""

from __future__ import annotations

from decimal import Decimal

from legato.store.base import Store
from legato.store.usage import UsageTotals
from legato.testing.conformance.records import NOW, usage_row

#: beyond a double's 53 bits: a store that sums costs as floating point gets it wrong
BIG = 12_345_678_901_234_567

ROWS = [
    usage_row(run_id="r1", workflow="a", tenant="acme", deployment="m1", day="2027-01-14",
              input_tokens=100, cached_input_tokens=20, output_tokens=10,
              cost_nanousd=100_000_000, cost_usd="0.1"),
    usage_row(run_id="r1", workflow="a", tenant="acme", deployment="m2", seq=1,
              input_tokens=200, output_tokens=20, cost_nanousd=200_000_000, cost_usd="0.2"),
    usage_row(run_id="r2", workflow="b", tenant=None, deployment="m1", input_tokens=50,
              output_tokens=5, cost_nanousd=None, cost_usd=None, price_version=None),
    usage_row(run_id="r3", workflow="a", tenant="beta", deployment="m1", cache_hit=True),
    usage_row(run_id="r4", workflow="big", tenant="acme", deployment="m3", input_tokens=7,
              cost_nanousd=BIG, cost_usd="12345678.901234567"),
]  # fmt: skip


async def check_usage_totals_sum_exactly_over_the_matching_rows(store: Store) -> None:
    assert await store.usage_totals() == UsageTotals()
    await store.record_usage(ROWS[:2])
    await store.record_usage(ROWS[2:])
    assert await store.usage_totals() == UsageTotals(
        calls=5, input_tokens=357, cached_input_tokens=20, output_tokens=35,
        cost_nanousd=300_000_000 + BIG, unknown_cost_calls=1, cache_hits=1,
        cost_usd=Decimal("12345679.201234567"),
    )  # fmt: skip
    # 0.1 + 0.2 dollars is exactly 0.3
    assert await store.usage_totals(run_id="r1") == UsageTotals(
        calls=2, input_tokens=300, cached_input_tokens=20, output_tokens=30,
        cost_nanousd=300_000_000, cost_usd=Decimal("0.3"),
    )  # fmt: skip
    assert await store.usage_totals(workflow="a", day="2027-01-15") == UsageTotals(
        calls=2,
        input_tokens=200,
        output_tokens=20,
        cost_nanousd=200_000_000,
        cache_hits=1,
        cost_usd=Decimal("0.2"),
    )
    acme = await store.usage_totals(tenant="acme")
    assert (acme.calls, acme.cost_nanousd) == (3, 300_000_000 + BIG)
    unknown = await store.usage_totals(run_id="r2")
    assert (unknown.calls, unknown.cost_nanousd, unknown.unknown_cost_calls) == (1, 0, 1)
    assert await store.usage_totals(run_id="r1", tenant="beta") == UsageTotals()


async def check_costs_below_a_nano_dollar_sum_exactly(store: Store) -> None:
    """Whole nano-dollars round a tiny call (a small local model costs $1.73e-8): the
    decimal sum does not."""
    tiny = usage_row(cost_nanousd=17, cost_usd="0.0000000173")
    await store.record_usage([tiny, tiny, tiny, usage_row(cost_nanousd=None, cost_usd=None)])
    totals = await store.usage_totals(run_id="r")
    assert (totals.cost_nanousd, totals.cost_usd) == (51, Decimal("0.0000000519"))
    ((_, grouped),) = await store.usage_rollup("run")
    assert grouped.cost_usd == Decimal("0.0000000519") and grouped.unknown_cost_calls == 1


async def check_a_repeated_call_is_counted_again(store: Store) -> None:
    """A call made again after a crash was paid again: the same row twice is two calls."""
    row = usage_row(input_tokens=10, cost_nanousd=5)
    await store.record_usage([row])
    await store.record_usage([row])
    totals = await store.usage_totals(run_id="r")
    assert (totals.calls, totals.input_tokens, totals.cost_nanousd) == (2, 20, 10)


async def check_usage_rollups_group_and_filter(store: Store) -> None:
    await store.record_usage(ROWS)

    async def calls(by: str, **filters: str) -> list[tuple[str, int]]:
        return [(k, t.calls) for k, t in await store.usage_rollup(by, **filters)]  # type: ignore[arg-type]

    assert await calls("workflow") == [("a", 3), ("b", 1), ("big", 1)]
    assert await calls("model") == [("m1", 3), ("m2", 1), ("m3", 1)]
    assert await calls("day") == [("2027-01-14", 1), ("2027-01-15", 4)]
    assert await calls("tenant") == [("", 1), ("acme", 3), ("beta", 1)]  # "": no tenant
    assert await calls("run") == [("r1", 2), ("r2", 1), ("r3", 1), ("r4", 1)]
    assert await calls("workflow", since_day="2027-01-15") == [("a", 2), ("b", 1), ("big", 1)]
    assert await calls("model", workflow="a") == [("m1", 2), ("m2", 1)]
    assert await calls("day", since_day="2027-01-16") == []
    by_tenant = dict(await store.usage_rollup("tenant"))
    assert by_tenant["acme"] == UsageTotals(
        calls=3, input_tokens=307, cached_input_tokens=20, output_tokens=30,
        cost_nanousd=300_000_000 + BIG, cost_usd=Decimal("12345679.201234567"),
    )  # fmt: skip
    assert by_tenant[""].unknown_cost_calls == 1 and by_tenant["beta"].cache_hits == 1


async def check_cached_responses_expire(store: Store) -> None:
    assert await store.cache_get("k", NOW) is None
    await store.cache_put("k", '{"text":"hi ✓"}', NOW, NOW + 60)
    assert await store.cache_get("k", NOW) == '{"text":"hi ✓"}'
    assert await store.cache_get("k", NOW + 59.5) == '{"text":"hi ✓"}'
    assert await store.cache_get("k", NOW + 60) is None  # expired at expires_at
    assert await store.cache_get("other", NOW) is None
    await store.cache_put("k", '"v2"', NOW + 10, NOW + 100)  # a newer response replaces it
    assert await store.cache_get("k", NOW + 70) == '"v2"'


async def check_cache_put_drops_expired_responses(store: Store) -> None:
    await store.cache_put("old", '"x"', NOW, NOW + 5)
    await store.cache_put("new", '"y"', NOW + 10, NOW + 100)
    assert await store.cache_get("old", NOW) is None  # gone, not merely hidden
    assert await store.cache_get("new", NOW + 10) == '"y"'


async def check_prompt_cache_figures_are_summed(store: Store) -> None:
    """Cache writes, reasoning tokens and what cache reads saved (possibly negative) add up;
    an unknown saving counts as none."""
    await store.record_usage([
        usage_row(input_tokens=1000, cached_input_tokens=800, cache_saved_nanousd=720),
        usage_row(input_tokens=1000, cache_write_tokens=1000, cache_saved_nanousd=-250),
        usage_row(input_tokens=10, output_tokens=50, reasoning_tokens=40),
        usage_row(input_tokens=10, cached_input_tokens=10, cost_nanousd=None),
    ])  # fmt: skip
    totals = await store.usage_totals(run_id="r")
    assert (totals.cached_input_tokens, totals.cache_write_tokens) == (810, 1000)
    assert (totals.reasoning_tokens, totals.cache_saved_nanousd) == (40, 470)
    assert totals.cache_hit_rate == 810 / 2020
    ((_, rolled),) = await store.usage_rollup("run")
    assert rolled == totals
