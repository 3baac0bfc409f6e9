"""What the checks build on: records with plain defaults, fixed times, and small assertions.

Every time is explicit (``NOW`` and offsets from it): the store API takes ``now``, so no check
sleeps or reads a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from legato.store.base import (
    GENESIS_HASH,
    ApprovalRecord,
    AuditEvent,
    AuditRecord,
    Entry,
    RunRecord,
    Store,
    audit_hash,
)
from legato.store.usage import UsageRecord

NOW = 1_800_000_000.0
LEASE = 30.0
WF = "wf"
#: How long a check waits for something the store does in the background (a notification):
#: a bound on a hang, not a timing assertion.
WAKE_TIMEOUT = 10.0
NO_INPUT = '{"args":[],"kwargs":{}}'


def run_record(run_id: str, workflow: str = WF, **fields: Any) -> RunRecord:
    """A new run of ``workflow``, runnable at ``NOW`` unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "run_id": run_id,
        "workflow": workflow,
        "status": "pending",
        "input": NO_INPUT,
        "wake_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return RunRecord(**values)


def entry(run_id: str, seq: int, status: str = "completed", **fields: Any) -> Entry:
    """A journal entry of a step named ``s<seq>``."""
    values: dict[str, Any] = {"kind": "step", "name": f"s{seq}"}
    values.update(fields)
    return Entry(run_id=run_id, seq=seq, status=status, **values)  # type: ignore[arg-type]


async def claim_one(
    store: Store, worker: str, run_id: str, now: float = NOW, workflow: str = WF
) -> RunRecord:
    """Claim the due runs of ``workflow`` for ``worker``; ``run_id`` must be among them."""
    claimed = await store.claim(worker, [workflow], now, LEASE, 100)
    found = [r for r in claimed if r.run_id == run_id]
    assert found, f"{worker} could not claim {run_id} at {now}"
    return found[0]


async def started(
    store: Store, run_id: str, worker: str = "w", now: float = NOW, **fields: Any
) -> RunRecord:
    """Create a run due at ``now`` and claim it for ``worker`` (with every other due run of
    its workflow)."""
    run, created = await store.create_run(run_record(run_id, wake_at=now, **fields))
    assert created, f"run {run_id} existed already"
    return await claim_one(store, worker, run_id, now, run.workflow)


async def finished(
    store: Store, run_id: str, at: float, status: str = "completed", **fields: Any
) -> None:
    """A run that ended at ``at`` (completed, failed or cancelled), through the store's API.

    Of a workflow of its own unless ``fields`` name one, so that claiming it takes no other run.
    """
    fields.setdefault("workflow", f"done-{run_id}")
    if status == "cancelled":
        await store.create_run(run_record(run_id, **fields))
        await store.cancel_run(run_id, at)
        return
    await started(store, run_id, "gc-worker", **fields)
    result = '"done"' if status == "completed" else '{"type":"X"}'
    assert await store.finish_run("gc-worker", run_id, status, result, at)  # type: ignore[arg-type]


@contextlib.contextmanager
def raises(kind: type[BaseException], doing: str) -> Iterator[None]:
    """Assert that the block raises ``kind`` (the suite must not need pytest)."""
    try:
        yield
    except kind:
        return
    raise AssertionError(f"{doing}: expected {kind.__name__}, nothing was raised")


async def woken(event: asyncio.Event, after: str) -> None:
    try:
        await asyncio.wait_for(event.wait(), WAKE_TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"on_wake was not called within {WAKE_TIMEOUT}s of {after}") from None


def approval_record(run_id: str, seq: int = 0, **fields: Any) -> ApprovalRecord:
    """A pending approval of the journal entry ``seq`` of ``run_id``."""
    data = fields.pop("data", '{"amount":120}')
    values: dict[str, Any] = {
        "approval_id": f"ap-{run_id}-{seq}",
        "run_id": run_id,
        "seq": seq,
        "name": "pay",
        "kind": "approval",
        "status": "pending",
        "prompt": "Pay the invoice?",
        "data": data,
        "data_hash": hashlib.sha256(data.encode()).hexdigest(),
        "data_schema": '{"type":"object"}',
        "assignees": '["alice","bob"]',
        "risk": "high",
        "reason": "over the limit",
        "expires_at": None,
        "on_timeout": "reject",
        "decided_data": None,
        "decided_by": None,
        "comment": None,
        "decided_at": None,
        "consumed_at": None,
        "created_at": NOW,
    }
    values.update(fields)
    return ApprovalRecord(**values)


def waiting_entry(approval: ApprovalRecord) -> Entry:
    """The journal entry that waits for ``approval``."""
    return Entry(
        approval.run_id,
        approval.seq,
        "approval",
        approval.name,
        "waiting",
        input=f'{{"approval_id":"{approval.approval_id}","data_hash":"{approval.data_hash}"}}',
        started_at=approval.created_at,
        wake_at=approval.expires_at,
    )


def requested(approval: ApprovalRecord) -> AuditEvent:
    return AuditEvent(
        "approval.requested", '{"name":"pay"}', WF, approval.run_id, approval.approval_id
    )


def decided(approval: ApprovalRecord, by: str) -> AuditEvent:
    return AuditEvent(
        "approval.decided", '{"name":"pay"}', by, approval.run_id, approval.approval_id
    )


async def ask(store: Store, run_id: str, seq: int = 0, worker: str = "w", **fields: Any) -> str:
    """Record a waiting entry and its approval for a run ``worker`` holds; the approval id."""
    approval = approval_record(run_id, seq, **fields)
    written = await store.request_approval(
        worker, waiting_entry(approval), approval, requested(approval)
    )
    assert written, f"{worker} could not request an approval for {run_id}"
    return approval.approval_id


async def audit_chain(store: Store) -> list[AuditRecord]:
    """Every audit row, after checking that they form one unbroken hash chain from seq 1."""
    rows = await store.list_audit(limit=100_000)
    prev = GENESIS_HASH
    for expected_seq, r in enumerate(rows, start=1):
        assert r.seq == expected_seq, f"audit row {expected_seq} is missing (found {r.seq})"
        assert r.prev_hash == prev, f"audit row {r.seq} does not follow the row before it"
        digest = audit_hash(
            r.prev_hash, r.seq, r.at, r.kind, r.actor, r.run_id, r.subject, r.detail
        )
        assert r.hash == digest, f"audit row {r.seq}: its content does not match its hash"
        prev = r.hash
    return rows


def usage_row(**fields: Any) -> UsageRecord:
    """One model call's usage (a priced chat call of run ``r`` unless ``fields`` say otherwise)."""
    values: dict[str, Any] = {
        "run_id": "r",
        "workflow": WF,
        "tenant": None,
        "seq": 0,
        "deployment": "m1",
        "alias": "fast",
        "kind": "chat",
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "requests": 1,
        "cost_nanousd": 0,
        "cost_usd": "0",
        "price_version": "v1",
        "cache_hit": False,
        "at": NOW,
        "day": "2027-01-15",
    }
    values.update(fields)
    return UsageRecord(**values)
