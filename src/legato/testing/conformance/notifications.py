"""Notifications (for stores that have them, such as PostgreSQL's LISTEN/NOTIFY): after every
write that makes a run claimable, the callbacks given to ``on_wake`` are called, so idle
workers claim it at once instead of at their next poll. A store without notifications leaves
this capability out (``checks(exclude=["notifications"])``); its workers only poll.

Each check first waits for one call after a write, so that the store surely listens. A call
made when it started listening may still arrive after that one: these checks may then overlook
one missing notification, but never fail a store that sends them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from legato.store.base import AuditEvent, Store, Wait
from legato.testing.conformance.records import (
    NOW,
    WF,
    ask,
    claim_one,
    decided,
    entry,
    run_record,
    woken,
)


async def check_on_wake_is_called_after_writes_that_make_runs_claimable(store: Store) -> None:
    wake = asyncio.Event()
    stop = store.on_wake(wake.set)
    try:
        await store.create_run(run_record("first"))
        await woken(wake, "creating a run")  # the store listens from here on

        async def expect(doing: str, write: Awaitable[object]) -> None:
            wake.clear()
            await write
            await woken(wake, doing)

        await expect("creating a run", store.create_run(run_record("a")))
        await claim_one(store, "w", "a")
        await expect("releasing a run", store.release("w", "a", NOW))

        await claim_one(store, "w", "a")
        assert await store.park("w", "a", Wait(None, "event 'e'", events=["e"]), NOW)
        await expect("sending an event to a waiting run", store.send_event("a", "e", "1", NOW))

        await claim_one(store, "w", "a")
        await store.send_event("a", "f", "1", NOW)  # while it runs
        await expect(
            "parking a run whose event already came",
            store.park("w", "a", Wait(None, "event 'f'", events=["f"]), NOW),
        )

        await claim_one(store, "w", "a")
        child = run_record("a~0", "sub", parent_run_id="a", parent_seq=0)
        child_entry = entry("a", 0, "waiting", kind="child")
        await expect("starting a child run", store.start_child("w", child_entry, child))
        assert await store.park("w", "a", Wait(None, "child", children=["a~0"]), NOW)
        await claim_one(store, "w", "a~0", workflow="sub")
        await expect(
            "finishing a child its parent waits on",
            store.finish_run("w", "a~0", "completed", "1", NOW),
        )

        await claim_one(store, "w", "a")
        child = run_record("a~1", "sub", parent_run_id="a", parent_seq=1, wake_at=NOW + 999)
        assert await store.start_child("w", entry("a", 1, "waiting", kind="child"), child)
        assert await store.park("w", "a", Wait(None, "child", children=["a~1"]), NOW)
        await expect("cancelling a child its parent waits on", store.cancel_run("a~1", NOW))

        await claim_one(store, "w", "a")
        approval_id = await ask(store, "a", seq=2)
        assert await store.park("w", "a", Wait(None, "approval", approvals=[approval_id]), NOW)
        approval = await store.get_approval(approval_id)
        assert approval is not None
        decision = store.decide_approval(
            approval_id, status="approved", by="alice", data=None, comment=None, now=NOW,
            audit=decided(approval, "alice"),
        )  # fmt: skip
        await expect("deciding an approval a run waits on", decision)

        await claim_one(store, "w", "a")
        assert await store.finish_run("w", "a", "failed", '{"type":"X"}', NOW)
        await expect("retrying a failed run", store.retry_run("a", NOW))

        await claim_one(store, "w", "a")
        await expect("deregistering the worker that held a run", store.deregister_worker("w", NOW))
    finally:
        stop()


async def check_on_wake_is_called_after_a_workflow_is_resumed(store: Store) -> None:
    """Workers refresh the workflows they may run when one is resumed."""
    await store.set_paused(WF, True, "alice", "incident", NOW, _paused(True))
    wake = asyncio.Event()
    stop = store.on_wake(wake.set)
    try:
        await store.create_run(run_record("first"))
        await woken(wake, "creating a run")
        wake.clear()
        await store.set_paused(WF, False, "alice", "fixed", NOW, _paused(False))
        await woken(wake, "resuming a workflow")
    finally:
        stop()


def _paused(paused: bool) -> AuditEvent:
    kind = "workflow.paused" if paused else "workflow.resumed"
    return AuditEvent(kind, "{}", "alice", None, WF)
