"""Claiming runnable runs with a lease, keeping the lease alive, and giving a run back."""

from __future__ import annotations

import asyncio

from legato.store.base import AuditEvent, Store, Wait
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    claim_one,
    entry,
    finished,
    run_record,
)


async def check_claim_takes_due_runs_of_known_workflows_once(store: Store) -> None:
    await store.create_run(run_record("due"))
    await store.create_run(run_record("later", wake_at=NOW + 10))
    await store.create_run(run_record("other", "not-mine"))
    claimed = await store.claim("w1", [WF], NOW, LEASE, 10)
    assert [r.run_id for r in claimed] == ["due"]
    assert (claimed[0].status, claimed[0].owner, claimed[0].wake_at) == (
        "running",
        "w1",
        NOW + LEASE,
    )
    assert await store.get_run("due") == claimed[0]
    assert await store.claim("w2", [WF], NOW + 1, LEASE, 10) == []  # leased to w1
    assert [r.run_id for r in await store.claim("w2", [WF], NOW + 11, LEASE, 10)] == ["later"]
    assert await store.claim("w3", [WF], NOW + 11, LEASE, 0) == []
    assert await store.claim("w3", [], NOW + 11, LEASE, 10) == []
    assert [r.run_id for r in await store.claim("w3", [WF, "not-mine"], NOW, LEASE, 10)] == [
        "other"
    ]


async def check_claim_takes_the_longest_due_first_up_to_the_limit(store: Store) -> None:
    for run_id, due in (("b", NOW - 2), ("c", NOW - 1), ("a", NOW - 3), ("d", NOW)):
        await store.create_run(run_record(run_id, wake_at=due))
    first = await store.claim("w", [WF], NOW, LEASE, 2)
    assert sorted(r.run_id for r in first) == ["a", "b"]
    rest = await store.claim("w", [WF], NOW, LEASE, 10)
    assert sorted(r.run_id for r in rest) == ["c", "d"]


async def check_claim_never_takes_finished_or_timerless_waiting_runs(store: Store) -> None:
    await store.create_run(run_record("waits", status="waiting", wake_at=None))
    for status in ("completed", "failed", "cancelled"):
        await finished(store, status, NOW, status, workflow=WF)
    assert await store.claim("w", [WF], NOW + 86_400, LEASE, 10) == []


async def check_concurrent_claims_take_each_run_once(store: Store) -> None:
    for i in range(12):
        await store.create_run(run_record(f"r{i:02}"))
    batches = await asyncio.gather(*(store.claim(f"w{i}", [WF], NOW, LEASE, 5) for i in range(4)))
    taken = [r.run_id for batch in batches for r in batch]
    assert sorted(taken) == [f"r{i:02}" for i in range(12)], "each run exactly once"
    for i, batch in enumerate(batches):
        assert len(batch) <= 5
        assert all(r.owner == f"w{i}" for r in batch)


async def check_expired_lease_moves_the_run_and_fences_the_old_owner(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "old", "r")
    assert await store.record("old", entry("r", 0))
    stolen = await claim_one(store, "new", "r", now=NOW + LEASE + 1)
    assert stolen.owner == "new" and stolen.wake_at == NOW + LEASE + 1 + LEASE
    assert not await store.record("old", entry("r", 1))  # fenced
    assert not await store.finish_run("old", "r", "completed", "1", NOW + 40)
    assert [e.seq for e in await store.load_entries("r")] == [0]
    assert await store.record("new", entry("r", 1))


async def check_heartbeat_extends_only_the_named_leases(store: Store) -> None:
    await store.create_run(run_record("r"))
    await store.create_run(run_record("forgotten"))
    await store.claim("w1", [WF], NOW, LEASE, 10)
    await store.heartbeat("w1", ["r"], NOW + 20, LEASE)  # "forgotten" is not held any more
    await store.heartbeat("w2", ["r"], NOW + 25, LEASE)  # not w2's: changes nothing
    r = await store.get_run("r")
    assert r is not None and (r.owner, r.wake_at) == ("w1", NOW + 20 + LEASE)
    moved = await store.claim("w2", [WF], NOW + LEASE + 1, LEASE, 10)
    assert [r.run_id for r in moved] == ["forgotten"]
    assert [r.run_id for r in await store.claim("w2", [WF], NOW + 20 + LEASE, LEASE, 10)] == ["r"]


async def check_release_makes_the_run_claimable_at_once(store: Store) -> None:
    await store.create_run(run_record("a"))
    await store.create_run(run_record("b"))
    await store.claim("w1", [WF], NOW, LEASE, 10)
    assert await store.release("w1", "a", NOW + 1)
    released = await store.get_run("a")
    assert released is not None
    assert (released.status, released.owner, released.wake_at) == ("pending", None, NOW + 1)
    assert not await store.release("w1", "a", NOW + 1)  # not held any more
    assert not await store.release("w2", "b", NOW + 1)  # not w2's run
    assert [r.run_id for r in await store.claim("w2", [WF], NOW + 1, LEASE, 10)] == ["a"]
    # a released run keeps its journal, and a parked one cannot be released
    assert await store.record("w2", entry("a", 0))
    assert await store.park("w2", "a", Wait(None, "event 'x'", events=["x"]), NOW + 2)
    assert not await store.release("w2", "a", NOW + 3)
    assert [e.seq for e in await store.load_entries("a")] == [0]


async def check_claim_next_takes_runs_with_their_journals_and_the_next_wake_up(
    store: Store,
) -> None:
    await store.create_run(run_record("held"))
    await claim_one(store, "w0", "held")
    await store.record("w0", entry("held", 0))  # journaled by its owner
    await store.create_run(run_record("due"))
    await store.create_run(run_record("later", wake_at=NOW + 10))
    await store.create_run(run_record("soon-paused", "paused-wf", wake_at=NOW + 1))
    paused = AuditEvent("workflow.paused", "{}", "ops", None, "paused-wf")
    assert await store.set_paused("paused-wf", True, "ops", "test", NOW, paused)

    none = await store.claim_next("w1", [], NOW, LEASE, 10)
    assert (none.runs, none.journals, none.next_wake_at) == ([], {}, None)
    claim = await store.claim_next("w1", [WF, "paused-wf"], NOW, LEASE, 10)
    assert [(r.run_id, r.status, r.owner) for r in claim.runs] == [("due", "running", "w1")]
    assert claim.journals == {"due": []}
    # the rest of these workflows: "later" at NOW + 10, "held" when its lease ends; a paused
    # workflow's runs count for nothing
    assert claim.next_wake_at == NOW + 10
    # the lease of "held" ends at NOW + LEASE: taken over with its journal
    takeover = await store.claim_next("w2", [WF], NOW + LEASE + 11, LEASE, 10)
    got = {r.run_id: r for r in takeover.runs}
    assert set(got) == {"held", "later", "due"}
    assert [(e.seq, e.status) for e in takeover.journals["held"]] == [(0, "completed")]
    assert takeover.next_wake_at is None
