"""Child runs: started with the parent's journal entry, waking the parent when they end,
cancelled with it, and reopened with it on retry."""

from __future__ import annotations

from legato.store.base import Entry, Store, Wait
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    ask,
    claim_one,
    entry,
    run_record,
)


def _child_entry(parent: str, seq: int, status: str = "waiting", **fields: object) -> Entry:
    return entry(parent, seq, status, kind="child", name="wf", input=f'"{parent}~{seq}"', **fields)


async def _parent_waiting_on_child(store: Store, parent: str = "p") -> str:
    """``parent`` parked on its new child ``<parent>~0`` (runnable at NOW + 1)."""
    await store.create_run(run_record(parent))
    await claim_one(store, "w", parent)
    child_id = f"{parent}~0"
    child = run_record(child_id, parent_run_id=parent, parent_seq=0, wake_at=NOW + 1)
    assert await store.start_child("w", _child_entry(parent, 0), child)
    assert await store.park("w", parent, Wait(None, "child", children=[child_id]), NOW)
    return child_id


async def check_start_child_records_the_entry_and_creates_the_child(store: Store) -> None:
    await store.create_run(run_record("p", tenant="acme"))
    await claim_one(store, "w", "p")
    child = run_record(
        "p~0", "sub", parent_run_id="p", parent_seq=0, tenant="acme", code_version="v2",
        input='{"args":["x"],"kwargs":{}}',
    )  # fmt: skip
    assert await store.start_child("w", _child_entry("p", 0), child)
    assert await store.get_run("p~0") == child
    assert await store.load_entries("p") == [_child_entry("p", 0)]
    # the child is runnable at once, by workers of its own workflow
    [running] = await store.claim("w2", ["sub"], NOW, LEASE, 10)
    assert running.run_id == "p~0"
    # starting it again (a replay after a crash) keeps the child as it is
    assert await store.start_child("w", _child_entry("p", 0), child)
    again = await store.get_run("p~0")
    assert again is not None and (again.status, again.owner) == ("running", "w2")


async def check_child_completion_wakes_the_parent(store: Store) -> None:
    child_id = await _parent_waiting_on_child(store)
    parent = await store.get_run("p")
    assert parent is not None and parent.wake_at is None
    await claim_one(store, "w", child_id, now=NOW + 1)
    assert await store.finish_run("w", child_id, "completed", "42", NOW + 2)
    parent = await store.get_run("p")
    assert parent is not None and (parent.status, parent.wake_at) == ("waiting", NOW + 2)
    assert [r.run_id for r in await store.claim("w", [WF], NOW + 2, LEASE, 10)] == ["p"]


async def check_child_failure_wakes_the_parent(store: Store) -> None:
    child_id = await _parent_waiting_on_child(store)
    await claim_one(store, "w", child_id, now=NOW + 1)
    assert await store.finish_run("w", child_id, "failed", '{"type":"X"}', NOW + 2)
    parent = await store.get_run("p")
    assert parent is not None and parent.wake_at == NOW + 2


async def check_cancel_cascades_to_children(store: Store) -> None:
    """Cancelling a run cancels its unfinished descendants and withdraws their approvals."""
    await store.create_run(run_record("p", status="waiting", wake_at=None))
    await store.create_run(run_record("p~0", parent_run_id="p", parent_seq=0))
    await store.create_run(run_record("p~0~0", parent_run_id="p~0", parent_seq=0))
    await store.create_run(run_record("done", parent_run_id="p", parent_seq=1, status="completed",
                                      wake_at=None, finished_at=NOW - 1))  # fmt: skip
    await claim_one(store, "w", "p~0")
    approval_id = await ask(store, "p~0")
    await store.create_run(run_record("other"))
    cancelled = await store.cancel_run("p", NOW)
    assert cancelled.status == "cancelled"
    for run_id in ("p~0", "p~0~0"):
        run = await store.get_run(run_id)
        assert run is not None and (run.status, run.owner, run.wake_at, run.finished_at) == (
            "cancelled",
            None,
            None,
            NOW,
        )
    done, other = await store.get_run("done"), await store.get_run("other")
    assert done is not None and done.status == "completed"  # a finished child stays as it was
    assert other is not None and other.status == "pending"
    withdrawn = await store.get_approval(approval_id)
    assert withdrawn is not None and withdrawn.status == "cancelled"


async def check_cancelling_a_child_wakes_its_waiting_parent(store: Store) -> None:
    child_id = await _parent_waiting_on_child(store)
    await store.cancel_run(child_id, NOW + 5)
    parent = await store.get_run("p")
    assert parent is not None and (parent.status, parent.wake_at) == ("waiting", NOW + 5)


async def check_retry_reopens_the_failed_child_too(store: Store) -> None:
    child_id = await _parent_waiting_on_child(store)
    await claim_one(store, "w", child_id, now=NOW + 1)
    assert await store.record("w", entry(child_id, 0))
    assert await store.record("w", entry(child_id, 1, "failed", error='{"type":"X"}'))
    assert await store.finish_run("w", child_id, "failed", '{"type":"X","seq":1}', NOW + 2)
    await claim_one(store, "w", "p", now=NOW + 2)
    failed = _child_entry("p", 0, "failed", error='{"type":"ChildFailed"}')
    assert await store.record("w", failed)
    assert await store.finish_run("w", "p", "failed", '{"type":"ChildFailed","seq":0}', NOW + 3)

    reopened = await store.retry_run("p", NOW + 4)
    assert (reopened.status, reopened.wake_at) == ("pending", NOW + 4)
    assert await store.load_entries("p") == []
    child = await store.get_run(child_id)
    assert child is not None and (child.status, child.error, child.wake_at) == (
        "pending",
        None,
        NOW + 4,
    )
    assert [e.seq for e in await store.load_entries(child_id)] == [0]
