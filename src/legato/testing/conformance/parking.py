"""Parking: a run that waits is unloaded (no owner, no lease) until its timer, an event, a
child's end or a decision makes it runnable; a wake-up that came first is never lost."""

from __future__ import annotations

import asyncio

from legato.store.base import Store, Wait
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    ask,
    claim_one,
    decided,
    entry,
    run_record,
)


async def check_park_unloads_the_run_until_its_timer(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    assert await store.park("w", "r", Wait(NOW + 60, "sleep until later"), NOW + 1)
    run = await store.get_run("r")
    assert run is not None
    assert (run.status, run.owner, run.wake_at, run.waiting_on) == (
        "waiting",
        None,
        NOW + 60,
        "sleep until later",
    )
    assert await store.claim("w", [WF], NOW + 59, LEASE, 10) == []
    [again] = await store.claim("w2", [WF], NOW + 60, LEASE, 10)
    assert (again.run_id, again.status, again.owner, again.waiting_on) == (
        "r",
        "running",
        "w2",
        None,
    )


async def check_park_without_a_timer_waits_until_woken(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    assert await store.park("w", "r", Wait(None, "event 'go'", events=["go"]), NOW)
    assert await store.claim("w", [WF], NOW + 10**7, LEASE, 10) == []
    await store.send_event("r", "go", "1", NOW + 7)
    assert [r.run_id for r in await store.claim("w", [WF], NOW + 7, LEASE, 10)] == ["r"]


async def check_park_keeps_an_event_that_already_arrived(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    await store.send_event("r", "reply", "1", NOW)  # arrives while the run is loaded
    assert await store.park("w", "r", Wait(None, "event 'reply'", events=["reply"]), NOW + 1)
    parked = await store.get_run("r")
    assert parked is not None and parked.status == "waiting" and parked.wake_at == NOW + 1

    await store.create_run(run_record("s"))
    await claim_one(store, "w", "s")
    assert await store.park("w", "s", Wait(NOW + 3600, "sleep", events=["never"]), NOW)
    slept = await store.get_run("s")
    assert slept is not None and slept.wake_at == NOW + 3600 and slept.owner is None
    await store.send_event("s", "never", "1", NOW + 1)
    woke = await store.get_run("s")
    assert woke is not None and woke.wake_at == NOW + 1


async def check_park_keeps_a_decision_that_already_came(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    approval_id = await ask(store, "r")
    approval = await store.get_approval(approval_id)
    assert approval is not None
    await store.decide_approval(
        approval_id, status="approved", by="alice", data=None, comment=None, now=NOW + 1,
        audit=decided(approval, "alice"),
    )  # fmt: skip
    wait = Wait(None, f"approval 'pay' ({approval_id})", approvals=[approval_id])
    assert await store.park("w", "r", wait, NOW + 2)
    parked = await store.get_run("r")
    assert parked is not None and parked.wake_at == NOW + 2


async def check_park_keeps_a_child_that_already_ended(store: Store) -> None:
    await store.create_run(run_record("p"))
    await claim_one(store, "w", "p")
    child = run_record("p~0", parent_run_id="p", parent_seq=0, wake_at=NOW + 1)
    assert await store.start_child("w", entry("p", 0, "waiting", kind="child"), child)
    await claim_one(store, "w2", "p~0", now=NOW + 1)
    assert await store.finish_run("w2", "p~0", "completed", '"42"', NOW + 2)  # p still loaded
    assert await store.park("w", "p", Wait(None, "child p~0", children=["p~0"]), NOW + 3)
    parked = await store.get_run("p")
    assert parked is not None and parked.wake_at == NOW + 3


async def check_a_wake_up_racing_a_park_is_never_lost(store: Store) -> None:
    """An event, a decision or a child's end that comes while the run parks: in whichever
    order the store applies them, the run ends up claimable."""
    await store.create_run(run_record("e"))
    await store.create_run(run_record("a"))
    await store.create_run(run_record("p"))
    await store.claim("w", [WF], NOW, LEASE, 10)
    approval_id = await ask(store, "a")
    approval = await store.get_approval(approval_id)
    assert approval is not None
    child = run_record("p~0", "sub", parent_run_id="p", parent_seq=0)
    assert await store.start_child("w", entry("p", 0, "waiting", kind="child"), child)
    await claim_one(store, "w2", "p~0", workflow="sub")
    await asyncio.gather(
        store.park("w", "e", Wait(None, "event 'go'", events=["go"]), NOW + 1),
        store.send_event("e", "go", "1", NOW + 1),
        store.park("w", "a", Wait(None, "approval", approvals=[approval_id]), NOW + 1),
        store.decide_approval(
            approval_id, status="approved", by="alice", data=None, comment=None, now=NOW + 1,
            audit=decided(approval, "alice"),
        ),
        store.park("w", "p", Wait(None, "child p~0", children=["p~0"]), NOW + 1),
        store.finish_run("w2", "p~0", "completed", "1", NOW + 1),
    )  # fmt: skip
    claimed = await store.claim("w3", [WF], NOW + 1, LEASE, 10)
    assert sorted(r.run_id for r in claimed) == ["a", "e", "p"]
