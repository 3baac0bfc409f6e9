"""Events: buffered per run and name in arrival order, each taken once by the run's journal."""

from __future__ import annotations

import asyncio

from legato.errors import RunConflict, UnknownRun
from legato.store.base import Entry, Store, Wait
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    claim_one,
    raises,
    run_record,
)


def _taken(run_id: str, seq: int, name: str) -> Entry:
    return Entry(run_id, seq, "event", name, "completed", started_at=NOW)


async def check_events_are_buffered_in_order_and_consumed_once(store: Store) -> None:
    await store.create_run(run_record("r"))
    await store.send_event("r", "reply", '{"n":1}', NOW)
    await store.send_event("r", "reply", '{"n":2}', NOW)
    await store.send_event("r", "other", '"x"', NOW)
    await claim_one(store, "w", "r")
    assert await store.consume_event("w", _taken("r", 0, "reply")) == '{"n":1}'
    assert await store.consume_event("w", _taken("r", 1, "reply")) == '{"n":2}'
    # asking again for an entry that is already complete returns its payload (a retried write)
    assert await store.consume_event("w", _taken("r", 1, "reply")) == '{"n":2}'
    assert await store.consume_event("w", _taken("r", 2, "reply")) is None
    assert await store.load_entries("r") == [
        Entry("r", 0, "event", "reply", "completed", output='{"n":1}', started_at=NOW),
        Entry("r", 1, "event", "reply", "completed", output='{"n":2}', started_at=NOW),
    ]
    assert await store.consume_event("w", _taken("r", 2, "other")) == '"x"'


async def check_an_event_goes_only_to_its_run_and_its_owner(store: Store) -> None:
    await store.create_run(run_record("a"))
    await store.create_run(run_record("b"))
    await store.send_event("a", "e", '"for a"', NOW)
    await store.claim("w", [WF], NOW, LEASE, 10)
    assert await store.consume_event("w", _taken("b", 0, "e")) is None
    assert await store.consume_event("intruder", _taken("a", 0, "e")) is None
    assert await store.load_entries("b") == [] and await store.load_entries("a") == []
    assert await store.consume_event("w", _taken("a", 0, "e")) == '"for a"'


async def check_concurrent_takers_get_different_events(store: Store) -> None:
    """Two branches of a run waiting for the same event name each take one of them."""
    await store.create_run(run_record("r"))
    for n in range(3):
        await store.send_event("r", "e", f'"{n}"', NOW)
    await claim_one(store, "w", "r")
    taken = await asyncio.gather(*(store.consume_event("w", _taken("r", s, "e")) for s in range(4)))
    assert sorted(taken, key=str) == ['"0"', '"1"', '"2"', None]
    assert sorted(e.output or "" for e in await store.load_entries("r")) == ['"0"', '"1"', '"2"']


async def check_send_event_refuses_unknown_and_finished_runs(store: Store) -> None:
    with raises(UnknownRun, "an event for an unknown run"):
        await store.send_event("ghost", "e", "1", NOW)
    await store.create_run(run_record("done"))
    await claim_one(store, "w", "done")
    assert await store.finish_run("w", "done", "completed", "1", NOW)
    with raises(RunConflict, "an event for a completed run"):
        await store.send_event("done", "e", "1", NOW)
    await store.create_run(run_record("gone"))
    await store.cancel_run("gone", NOW)
    with raises(RunConflict, "an event for a cancelled run"):
        await store.send_event("gone", "e", "1", NOW)


async def check_an_event_wakes_a_waiting_run_but_not_a_leased_one(store: Store) -> None:
    await store.create_run(run_record("parked"))
    await store.create_run(run_record("busy"))
    await store.claim("w", [WF], NOW, LEASE, 10)
    assert await store.park("w", "parked", Wait(NOW + 3600, "event 'e'", events=["e"]), NOW)
    await store.send_event("parked", "e", "1", NOW + 5)
    await store.send_event("busy", "e", "1", NOW + 5)
    parked, busy = await store.get_run("parked"), await store.get_run("busy")
    assert parked is not None and (parked.status, parked.wake_at) == ("waiting", NOW + 5)
    assert busy is not None and (busy.status, busy.owner, busy.wake_at) == (
        "running",
        "w",
        NOW + LEASE,
    )
    assert [r.run_id for r in await store.claim("w2", [WF], NOW + 5, LEASE, 10)] == ["parked"]


async def check_an_event_sent_again_with_its_id_is_applied_once(store: Store) -> None:
    await store.create_run(run_record("r"))
    assert await store.send_event("r", "reply", '{"n":1}', NOW, "delivery-1") is True
    assert await store.send_event("r", "reply", '{"n":1}', NOW + 1, "delivery-1") is False
    assert await store.send_event("r", "reply", '{"n":1}', NOW + 1, "delivery-2") is True
    await claim_one(store, "w", "r")
    assert await store.consume_event("w", _taken("r", 0, "reply")) == '{"n":1}'
    assert await store.consume_event("w", _taken("r", 1, "reply")) == '{"n":1}'
    assert await store.consume_event("w", _taken("r", 2, "reply")) is None  # no third
    with raises(RunConflict, "sending another payload under a used event id"):
        await store.send_event("r", "reply", '{"n":2}', NOW + 2, "delivery-1")
    assert await store.finish_run("w", "r", "completed", "null", NOW + 3)
    # a repeat after the run ended is still just a repeat, not an error
    assert await store.send_event("r", "reply", '{"n":1}', NOW + 4, "delivery-1") is False
    with raises(RunConflict, "a new event for an ended run"):
        await store.send_event("r", "reply", '{"n":1}', NOW + 4, "delivery-3")
