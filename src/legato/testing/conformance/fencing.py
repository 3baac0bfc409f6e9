"""Fencing: every write made for a worker on a run takes effect only while that worker holds
the run. A worker whose lease expired and was taken over, or whose run was cancelled, writes
nothing; the store answers False (None) and changes nothing."""

from __future__ import annotations

import asyncio

from legato.store.base import AuditEvent, Entry, Store, Wait, Window
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    approval_record,
    ask,
    claim_one,
    decided,
    entry,
    requested,
    run_record,
    waiting_entry,
)

LATER = NOW + LEASE + 1


async def _taken_over(store: Store) -> None:
    """Run "r" was leased to "old"; the lease expired and "new" holds it now."""
    await store.create_run(run_record("r"))
    await claim_one(store, "old", "r")
    await claim_one(store, "new", "r", now=LATER)


async def _still_held_by_new(store: Store) -> None:
    run = await store.get_run("r")
    assert run is not None and (run.status, run.owner) == ("running", "new")


async def check_journal_and_run_writes_of_a_lost_run_are_refused(store: Store) -> None:
    await _taken_over(store)
    assert not await store.record("old", entry("r", 0))
    assert not await store.park("old", "r", Wait(None, "sleep"), LATER)
    assert not await store.release("old", "r", LATER)
    assert not await store.finish_run("old", "r", "completed", '"x"', LATER)
    assert not await store.finish_run("old", "r", "failed", '{"type":"X"}', LATER)
    assert await store.load_entries("r") == []
    await _still_held_by_new(store)
    assert not await store.record("nobody", entry("r", 0))
    assert await store.record("new", entry("r", 0))


async def check_a_refused_write_among_others_fails_alone(store: Store) -> None:
    """Journal writes issued together (a store may batch them) are fenced one by one."""
    await _taken_over(store)
    await store.create_run(run_record("mine", wake_at=LATER))
    await claim_one(store, "old", "mine", now=LATER)
    issued = [
        store.record("old", entry("r", 0)),
        store.record("old", entry("mine", 0)),
        store.record("new", entry("r", 1)),
        store.record("old", entry("mine", 1)),
    ]
    assert await asyncio.gather(*issued) == [False, True, True, True]
    assert [e.seq for e in await store.load_entries("r")] == [1]
    assert [e.seq for e in await store.load_entries("mine")] == [0, 1]


async def check_a_lost_run_takes_no_event(store: Store) -> None:
    await _taken_over(store)
    await store.send_event("r", "e", '"payload"', NOW)
    taken = Entry("r", 0, "event", "e", "completed")
    assert await store.consume_event("old", taken) is None
    assert await store.load_entries("r") == []
    assert await store.consume_event("new", Entry("r", 0, "event", "e", "completed")) == (
        '"payload"'
    )


async def check_a_lost_run_starts_no_child(store: Store) -> None:
    await _taken_over(store)
    child = run_record("r~0", parent_run_id="r", parent_seq=0)
    assert not await store.start_child("old", entry("r", 0, "waiting", kind="child"), child)
    assert await store.get_run("r~0") is None
    assert await store.load_entries("r") == []


async def check_a_lost_run_neither_asks_nor_takes_approvals(store: Store) -> None:
    await _taken_over(store)
    approval = approval_record("r")
    wait = waiting_entry(approval)
    assert not await store.request_approval("old", wait, approval, requested(approval))
    assert await store.get_approval(approval.approval_id) is None
    assert await store.load_entries("r") == [] and await store.list_audit() == []

    await ask(store, "r", worker="new")
    await store.decide_approval(
        approval.approval_id, status="approved", by="alice", data=None, comment=None,
        now=LATER, audit=decided(approval, "alice"),
    )  # fmt: skip
    done = Entry("r", 0, "approval", "pay", "completed", input=wait.input, output='{"ok":1}')
    assert not await store.consume_approval("old", done, approval.approval_id, LATER)
    stored = await store.get_approval(approval.approval_id)
    assert stored is not None and stored.consumed_at is None
    assert [e.status for e in await store.load_entries("r")] == ["waiting"]


async def check_a_lost_run_records_no_gate_decision(store: Store) -> None:
    await _taken_over(store)

    def decide(times: list[list[float]]) -> tuple[Entry, AuditEvent]:
        return (
            Entry("r", 0, "gate", "send", "completed", output='{"action":"allow"}'),
            AuditEvent("gate.allow", "{}", "agent", "r", "send"),
        )

    assert await store.record_gate("old", "r", [Window(None, None, 0.0)], decide, LATER) is None
    assert await store.load_entries("r") == [] and await store.list_audit() == []


async def check_a_cancelled_run_fences_its_worker(store: Store) -> None:
    await store.create_run(run_record("r"))
    await claim_one(store, "w", "r")
    await store.cancel_run("r", NOW + 1)
    assert not await store.record("w", entry("r", 0))
    assert not await store.park("w", "r", Wait(NOW + 60, "sleep"), NOW + 2)
    assert not await store.release("w", "r", NOW + 2)
    assert not await store.finish_run("w", "r", "completed", '"x"', NOW + 2)
    run = await store.get_run("r")
    assert run is not None and (run.status, run.owner, run.wake_at) == ("cancelled", None, None)
    assert await store.load_entries("r") == []
