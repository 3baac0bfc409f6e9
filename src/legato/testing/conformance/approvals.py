"""Approvals: asked once with the waiting entry, decided once (exactly one of several deciders
wins), bound to the data they were asked about, and taken by the run with its entry."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal

from legato.errors import ApprovalConflict, RunConflict, UnknownApproval
from legato.store.base import ApprovalRecord, Store, Wait
from legato.testing.conformance.records import (
    LEASE,
    NOW,
    WF,
    approval_record,
    ask,
    audit_chain,
    claim_one,
    decided,
    entry,
    raises,
    requested,
    run_record,
    started,
    waiting_entry,
)

Status = Literal["approved", "rejected", "expired"]


async def _asked(store: Store, run_id: str = "r", **fields: Any) -> str:
    """Run ``run_id`` (held by "w") asks for approval at its entry 0 and parks on it."""
    await started(store, run_id)
    approval_id = await ask(store, run_id, **fields)
    wait = Wait(None, f"approval 'pay' ({approval_id})", approvals=[approval_id])
    assert await store.park("w", run_id, wait, NOW)
    return approval_id


async def _decide(
    store: Store,
    approval_id: str,
    status: Status = "approved",
    by: str = "alice",
    *,
    data: str | None = None,
    comment: str | None = None,
    now: float = NOW + 10,
) -> ApprovalRecord:
    approval = await store.get_approval(approval_id)
    assert approval is not None
    return await store.decide_approval(
        approval_id, status=status, by=by, data=data, comment=comment, now=now,
        audit=decided(approval, by),
    )  # fmt: skip


async def check_request_approval_records_the_wait_and_the_request_once(store: Store) -> None:
    await started(store, "r")
    approval = approval_record("r", 0, expires_at=NOW + 3600)
    wait = waiting_entry(approval)
    assert await store.request_approval("w", wait, approval, requested(approval))
    assert await store.get_approval(approval.approval_id) == approval
    assert await store.load_entries("r") == [wait]
    [row] = await audit_chain(store)
    assert (row.kind, row.actor, row.run_id, row.subject) == (
        "approval.requested",
        WF,
        "r",
        approval.approval_id,
    )
    # asked again (a replay after a crash): still one approval, one audit row
    assert await store.request_approval("w", wait, approval, requested(approval))
    assert await store.list_approvals(run_id="r") == [approval]
    assert len(await store.list_audit()) == 1
    assert await store.get_approval("ap-missing") is None


async def check_list_approvals_filters_and_orders(store: Store) -> None:
    """Oldest first; filters by status and run combine; ``limit`` caps the answer."""
    for run_id in ("a", "b", "c"):
        await store.create_run(run_record(run_id))
    await store.claim("w", [WF], NOW, LEASE, 10)
    ids = {}
    for run_id, at in (("a", NOW + 2), ("b", NOW + 1), ("c", NOW + 3)):
        ids[run_id] = await ask(store, run_id, created_at=at)
    await _decide(store, ids["c"], "rejected", "bob")

    def names(records: list[ApprovalRecord]) -> list[str]:
        return [r.run_id for r in records]

    assert names(await store.list_approvals()) == ["b", "a", "c"]
    assert names(await store.list_approvals(status="pending")) == ["b", "a"]
    assert names(await store.list_approvals(status="rejected")) == ["c"]
    assert names(await store.list_approvals(status="pending", run_id="a")) == ["a"]
    assert names(await store.list_approvals(status="rejected", run_id="a")) == []
    assert names(await store.list_approvals(limit=2)) == ["b", "a"]


async def check_a_decision_wakes_the_run_and_is_audited(store: Store) -> None:
    approval_id = await _asked(store)
    parked = await store.get_run("r")
    assert parked is not None and (parked.status, parked.wake_at) == ("waiting", None)
    asked = await store.get_approval(approval_id)
    record = await _decide(store, approval_id, comment="fine", now=NOW + 10)
    assert asked is not None and record == dataclasses.replace(
        asked, status="approved", decided_by="alice", comment="fine", decided_at=NOW + 10
    )
    assert await store.get_approval(approval_id) == record
    woken = await store.get_run("r")
    assert woken is not None and (woken.status, woken.wake_at) == ("waiting", NOW + 10)
    assert [r.run_id for r in await store.claim("w", [WF], NOW + 10, LEASE, 10)] == ["r"]
    rows = await audit_chain(store)
    assert [(r.kind, r.actor, r.subject, r.at) for r in rows][1:] == [
        ("approval.decided", "alice", approval_id, NOW + 10)
    ]


async def check_edited_data_is_kept_apart_from_the_data_asked_about(store: Store) -> None:
    """The decision is bound to the hash of the data it was asked about; an edit is stored
    next to that data, never over it."""
    approval_id = await _asked(store, data='{"amount":120}')
    asked = await store.get_approval(approval_id)
    await _decide(store, approval_id, data='{"amount":100}', comment="less")
    got = await store.get_approval(approval_id)
    assert asked is not None and got is not None
    assert (got.data, got.data_hash, got.decided_data) == (
        '{"amount":120}',
        asked.data_hash,
        '{"amount":100}',
    )


async def check_the_same_decision_again_returns_it_and_another_is_refused(store: Store) -> None:
    approval_id = await _asked(store)
    first = await _decide(store, approval_id, comment="ok", now=NOW + 10)
    assert await _decide(store, approval_id, comment="ok", now=NOW + 20) == first  # idempotent
    with raises(ApprovalConflict, "rejecting an approved approval"):
        await _decide(store, approval_id, "rejected", "bob", now=NOW + 30)
    with raises(ApprovalConflict, "approving it again with another comment"):
        await _decide(store, approval_id, comment="changed my mind", now=NOW + 40)
    assert await store.get_approval(approval_id) == first
    kinds = [r.kind for r in await audit_chain(store)]
    assert kinds == ["approval.requested", "approval.decided"]


async def check_exactly_one_of_concurrent_decisions_wins(store: Store) -> None:
    approval_id = await _asked(store)
    deciders: list[tuple[Status, str]] = [
        ("approved", "alice"), ("rejected", "bob"), ("approved", "carol"), ("rejected", "dan"),
        ("expired", "legato:timeout"),
    ]  # fmt: skip
    results = await asyncio.gather(
        *(_decide(store, approval_id, status, by) for status, by in deciders),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(e, ApprovalConflict) for e in lost), lost
    assert await store.get_approval(approval_id) == won[0]
    kinds = [r.kind for r in await audit_chain(store)]
    assert kinds == ["approval.requested", "approval.decided"]


async def check_decide_refuses_unknown_cancelled_and_finished(store: Store) -> None:
    approval = approval_record("r")
    with raises(UnknownApproval, "deciding an unknown approval"):
        await store.decide_approval(
            "ap-ghost", status="approved", by="alice", data=None, comment=None, now=NOW,
            audit=decided(approval, "alice"),
        )  # fmt: skip

    cancelled_id = await _asked(store, "cancelled")
    await store.cancel_run("cancelled", NOW + 1)
    withdrawn = await store.get_approval(cancelled_id)
    assert withdrawn is not None and (withdrawn.status, withdrawn.decided_at) == (
        "cancelled",
        NOW + 1,
    )
    with raises(RunConflict, "deciding the approval of a cancelled run"):
        await _decide(store, cancelled_id)

    await started(store, "ended")
    ended_id = await ask(store, "ended")
    assert await store.finish_run("w", "ended", "completed", '"x"', NOW + 1)
    with raises(RunConflict, "deciding the approval of a completed run"):
        await _decide(store, ended_id)
    still = await store.get_approval(ended_id)
    assert still is not None and still.status == "pending"
    kinds = [r.kind for r in await audit_chain(store)]
    assert kinds == ["approval.requested", "approval.requested"]


async def check_a_timeout_decides_expired(store: Store) -> None:
    approval_id = await _asked(store, expires_at=NOW + 60)
    record = await _decide(store, approval_id, "expired", "legato:timeout", now=NOW + 60)
    assert record.status == "expired"
    run = await store.get_run("r")
    assert run is not None and run.wake_at == NOW + 60


async def check_consume_approval_completes_the_entry_and_marks_it_once(store: Store) -> None:
    approval_id = await _asked(store)
    await _decide(store, approval_id, now=NOW + 10)
    await claim_one(store, "w", "r", now=NOW + 10)
    [wait] = await store.load_entries("r")
    done = dataclasses.replace(wait, status="completed", output='{"approved":true}',
                               finished_at=NOW + 11)  # fmt: skip
    assert await store.consume_approval("w", done, approval_id, NOW + 11)
    assert await store.load_entries("r") == [done]
    taken = await store.get_approval(approval_id)
    assert taken is not None and (taken.status, taken.consumed_at) == ("approved", NOW + 11)
    # taken again (a replay): the entry is written, the first consumption time stays
    assert await store.consume_approval("w", done, approval_id, NOW + 12)
    again = await store.get_approval(approval_id)
    assert again is not None and again.consumed_at == NOW + 11


async def check_retry_asks_removed_approvals_again(store: Store) -> None:
    """A retry from an entry before an approval removes the approval (asked again on the
    way); its audit rows stay."""
    approval_id = await _asked(store)
    await _decide(store, approval_id, "rejected", "bob", now=NOW + 10)
    await claim_one(store, "w", "r", now=NOW + 10)
    [wait] = await store.load_entries("r")
    refused = dataclasses.replace(wait, status="failed", error='{"type":"ActionDenied"}')
    assert await store.consume_approval("w", refused, approval_id, NOW + 11)
    assert await store.finish_run("w", "r", "failed", '{"type":"ActionDenied","seq":0}', NOW + 12)
    await store.retry_run("r", NOW + 13)
    assert await store.get_approval(approval_id) is None
    await claim_one(store, "w", "r", now=NOW + 13)
    assert await ask(store, "r") == approval_id
    again = await store.get_approval(approval_id)
    assert again is not None and again.status == "pending"
    kinds = [r.kind for r in await audit_chain(store)]
    assert kinds == ["approval.requested", "approval.decided", "approval.requested"]


async def check_a_run_that_was_never_parked_is_not_woken_by_a_decision(store: Store) -> None:
    """Deciding while the run is still loaded leaves its lease alone (park finds it)."""
    await started(store, "r")
    approval_id = await ask(store, "r")
    await _decide(store, approval_id, now=NOW + 1)
    run = await store.get_run("r")
    assert run is not None and (run.status, run.owner, run.wake_at) == ("running", "w", NOW + LEASE)
    assert await store.record("w", entry("r", 1))
    assert await store.load_entries("r") == [
        waiting_entry(approval_record("r")),
        entry("r", 1),
    ]
