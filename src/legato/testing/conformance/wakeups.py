"""When runs become claimable: the earliest wake-up time of some workflows, and the
registration of a wake-up callback (see ``notifications`` for when it is called)."""

from __future__ import annotations

from legato.store.base import Store, Wait
from legato.testing.conformance.records import LEASE, NOW, WF, run_record


async def check_next_wake_at_is_the_earliest_claimable_time(store: Store) -> None:
    assert await store.next_wake_at([WF]) is None
    await store.create_run(run_record("a", wake_at=NOW + 10))
    await store.create_run(run_record("b", wake_at=NOW + 5))
    await store.create_run(run_record("c", "other", wake_at=NOW + 1))
    await store.create_run(run_record("d", status="waiting", wake_at=None))
    assert await store.next_wake_at([WF]) == NOW + 5
    assert await store.next_wake_at([WF, "other"]) == NOW + 1
    assert await store.next_wake_at(["nobody"]) is None
    assert await store.next_wake_at([]) is None
    # a claimed run becomes claimable again when its lease expires
    [b] = await store.claim("w", [WF], NOW + 5, LEASE, 1)
    assert b.run_id == "b" and await store.next_wake_at([WF]) == NOW + 10
    await store.heartbeat("w", ["b"], NOW + 6, 1.0)  # a short lease: b is first again
    assert await store.next_wake_at([WF]) == NOW + 7
    # a run parked without a timer, or finished, never is
    assert await store.park("w", "b", Wait(None, "event 'x'", events=["x"]), NOW + 6)
    await store.cancel_run("a", NOW + 6)
    assert await store.next_wake_at([WF]) is None


async def check_on_wake_returns_a_function_that_stops_it(store: Store) -> None:
    """Stores without notifications never call the callback; all return a stop function that
    may be called more than once."""
    calls: list[int] = []
    stop = store.on_wake(lambda: calls.append(1))
    assert callable(stop)
    stop()
    stop()
