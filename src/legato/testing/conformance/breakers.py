"""Circuit breakers shared through the store: failures count across workers, the breaker opens
at the limit, exactly one caller wins the half-open probe, and a success closes it."""

from __future__ import annotations

import asyncio

from legato.store.base import Store
from legato.store.breakers import BreakerState
from legato.testing.conformance.records import NOW


async def check_failures_open_the_breaker_at_the_limit(store: Store) -> None:
    assert await store.breaker("p:m") is None
    first = await store.breaker_failure("p:m", NOW, 3, 30.0)
    assert first == BreakerState("p:m", 1, None, None)
    await store.breaker_failure("p:m", NOW + 1, 3, 30.0)
    opened = await store.breaker_failure("p:m", NOW + 2, 3, 30.0)
    assert opened == BreakerState("p:m", 3, NOW + 32, None)
    assert await store.breaker("p:m") == opened
    assert await store.breaker("p:other") is None  # per deployment


async def check_racing_failures_are_all_counted(store: Store) -> None:
    await asyncio.gather(*(store.breaker_failure("p:m", NOW, 100, 30.0) for _ in range(10)))
    state = await store.breaker("p:m")
    assert state is not None and state.failures == 10 and state.open_until is None


async def check_exactly_one_caller_wins_the_half_open_probe(store: Store) -> None:
    await store.breaker_failure("p:m", NOW, 1, 30.0)
    assert not await store.breaker_probe("p:m", NOW + 10, 60.0)  # still cooling down
    won = await asyncio.gather(*(store.breaker_probe("p:m", NOW + 30, 60.0) for _ in range(8)))
    assert sorted(won) == [False] * 7 + [True]
    assert not await store.breaker_probe("p:m", NOW + 80, 60.0)  # the probe is in flight
    # a probe whose worker died: its lease ends and another caller may probe
    assert await store.breaker_probe("p:m", NOW + 91, 60.0)


async def check_a_failed_probe_opens_the_breaker_again(store: Store) -> None:
    await store.breaker_failure("p:m", NOW, 2, 30.0)
    await store.breaker_failure("p:m", NOW, 2, 30.0)
    assert await store.breaker_probe("p:m", NOW + 30, 60.0)
    again = await store.breaker_failure("p:m", NOW + 35, 2, 30.0)
    assert again == BreakerState("p:m", 3, NOW + 65, None)
    assert not await store.breaker_probe("p:m", NOW + 40, 60.0)
    assert await store.breaker_probe("p:m", NOW + 65, 60.0)


async def check_a_success_closes_the_breaker(store: Store) -> None:
    await store.breaker_failure("p:m", NOW, 1, 30.0)
    await store.breaker_failure("p:n", NOW, 1, 30.0)
    await store.breaker_success("p:m")
    assert await store.breaker("p:m") is None
    assert not await store.breaker_probe("p:m", NOW + 60, 60.0)  # closed: nothing to probe
    assert (await store.breaker("p:n")) is not None  # others keep theirs
    await store.breaker_success("p:never-failed")  # nothing to forget: no error
