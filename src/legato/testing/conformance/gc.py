"""Retention: runs that finished before a cutoff go with their journals, events and approvals;
unfinished runs, runs finished later, children their parent still waits on, the audit log and
model usage stay (budgets per tenant and day count the calls of runs that have finished)."""

from __future__ import annotations

from legato.store.base import Store, Wait
from legato.testing.conformance.records import (
    NOW,
    ask,
    audit_chain,
    claim_one,
    entry,
    finished,
    run_record,
    started,
    usage_row,
)

CUTOFF = NOW + 100


async def check_gc_removes_runs_finished_before_the_cutoff(store: Store) -> None:
    await started(store, "old", workflow="old")
    assert await store.record("w", entry("old", 0))
    await store.send_event("old", "never-taken", '"x"', NOW)
    approval_id = await ask(store, "old", seq=1)
    assert await store.finish_run("w", "old", "completed", '"done"', NOW + 1)
    await finished(store, "old-failed", NOW + 2, "failed")
    await finished(store, "old-cancelled", NOW + 3, "cancelled")
    await finished(store, "at-cutoff", CUTOFF)  # not before it
    await finished(store, "recent", CUTOFF + 50)
    await store.create_run(run_record("pending", created_at=NOW - 10_000))
    await store.create_run(run_record("waiting", status="waiting", wake_at=None))
    await started(store, "running", workflow="busy")
    await store.record_usage([usage_row(run_id="old", workflow="old", cost_nanousd=7)])
    audit_before = await audit_chain(store)

    gone = ["old", "old-failed", "old-cancelled"]
    assert await store.delete_finished(CUTOFF, dry_run=True) == 3
    for run_id in gone:
        assert await store.get_run(run_id) is not None  # a dry run removes nothing
    assert await store.delete_finished(CUTOFF) == 3
    for run_id in gone:
        assert await store.get_run(run_id) is None
        assert await store.load_entries(run_id) == []
    assert await store.get_approval(approval_id) is None
    kept = ["at-cutoff", "recent", "pending", "waiting", "running"]
    assert sorted(r.run_id for r in await store.list_runs()) == sorted(kept)
    assert await audit_chain(store) == audit_before  # the audit log outlives the runs
    spent = await store.usage_totals(workflow="old")
    assert (spent.calls, spent.cost_nanousd) == (1, 7)  # and so do the costs
    assert await store.delete_finished(CUTOFF) == 0

    # the id can be used again: nothing of the removed run (its buffered event) comes back
    await started(store, "old", workflow="old", now=CUTOFF)
    assert await store.load_entries("old") == []
    taken = entry("old", 0, kind="event", name="never-taken")
    assert await store.consume_event("w", taken) is None


async def check_gc_keeps_a_child_while_its_parent_waits(store: Store) -> None:
    await started(store, "p")
    child = run_record("p~0", "sub", parent_run_id="p", parent_seq=0)
    assert await store.start_child("w", entry("p", 0, "waiting", kind="child"), child)
    assert await store.park("w", "p", Wait(None, "child p~0", children=["p~0"]), NOW)
    await claim_one(store, "w", "p~0", workflow="sub")
    assert await store.finish_run("w", "p~0", "completed", '"42"', NOW + 1)
    assert await store.delete_finished(CUTOFF) == 0
    assert await store.get_run("p~0") is not None

    await claim_one(store, "w", "p", now=NOW + 2)
    assert await store.finish_run("w", "p", "completed", '"done"', NOW + 3)
    assert await store.delete_finished(CUTOFF) == 2  # the parent and its child together
    assert await store.get_run("p") is None and await store.get_run("p~0") is None
