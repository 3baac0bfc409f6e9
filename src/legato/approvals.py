"""People in the loop: what an approval is, and what a decision carries back to the run.

A run asks with ``await ctx.approval(...)`` and parks; a person answers through
``app.approvals.decide`` (or ``legato approve`` / ``legato reject``). The request is bound to its
run, its journal entry, its name and the hash of its data, so a replay that would ask for
something else fails closed instead of reusing a decision made about different data.

This module holds the value types and the pure helpers the engine (which asks) and the
operations layer (which decides) share; it sits below both and imports neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from legato import serde
from legato.store.base import ApprovalRecord, AuditEvent
from legato.timestamps import utc

T = TypeVar("T")
OnTimeout = Literal["reject", "approve", "fail"]
#: who ``Decision.by`` names when a timeout decided
TIMEOUT_DECIDER = "legato:timeout"


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What ``ctx.approval`` returns: the decision and the (possibly edited) data."""

    approved: bool
    data: T
    by: str | None
    comment: str | None
    decided_at: datetime | None
    approval_id: str
    edited: bool = False


@dataclass(frozen=True)
class Approval:
    """An approval as people see it (``app.approvals.list``, ``legato approvals``)."""

    id: str
    run_id: str
    name: str
    kind: str
    status: str
    prompt: str | None
    data: Any
    assignees: list[str]
    risk: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime | None
    decided_by: str | None
    decided_data: Any
    comment: str | None
    decided_at: datetime | None

    @classmethod
    def from_record(cls, r: ApprovalRecord) -> Approval:
        return cls(
            id=r.approval_id,
            run_id=r.run_id,
            name=r.name,
            kind=r.kind,
            status=r.status,
            prompt=r.prompt,
            data=serde.loads(r.data),
            assignees=list(serde.loads(r.assignees) or []),
            risk=r.risk,
            reason=r.reason,
            created_at=utc(r.created_at),
            expires_at=utc(r.expires_at) if r.expires_at is not None else None,
            decided_by=r.decided_by,
            decided_data=serde.loads(r.decided_data),
            comment=r.comment,
            decided_at=utc(r.decided_at) if r.decided_at is not None else None,
        )


def approval_id(run_id: str, entry: str) -> str:
    """Derived from the entry's key, so a replay (even after a crash) finds the same approval
    without storing randomness."""
    return "ap_" + hashlib.sha256(f"{run_id}:{entry}".encode()).hexdigest()[:16]


def data_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def schema_of(value: Any) -> str | None:
    """The JSON Schema that edited data must satisfy: that of the original value's type."""
    if value is None:
        return None
    try:
        kind: Any = type(value)
        return json.dumps(serde.adapter(kind).json_schema())
    except Exception:  # a type pydantic cannot describe: accept JSON of the same shape
        return None


def decision_json(record: ApprovalRecord) -> str:
    """The journaled form of a decision (replayed into a Decision)."""
    edited = record.decided_data is not None
    return json.dumps(
        {
            "approval_id": record.approval_id,
            "status": record.status,
            "approved": record.status == "approved",
            "data": serde.loads(record.decided_data if edited else record.data),
            "edited": edited,
            "by": record.decided_by,
            "comment": record.comment,
            "decided_at": record.decided_at,
        }
    )


def decision_from(text: str | None, kind: Any) -> Decision[Any]:
    raw = serde.loads(text) or {}
    data = raw.get("data")
    if kind is not None and data is not None:
        data = serde.coerce(data, kind, what=f"the data of approval {raw.get('approval_id')}")
    decided_at = raw.get("decided_at")
    return Decision(
        approved=bool(raw.get("approved")),
        data=data,
        by=raw.get("by"),
        comment=raw.get("comment"),
        decided_at=utc(decided_at) if decided_at is not None else None,
        approval_id=str(raw.get("approval_id")),
        edited=bool(raw.get("edited")),
    )


def audit_event(kind: str, record: ApprovalRecord, actor: str | None, **detail: Any) -> AuditEvent:
    """The audit row of something that happened to an approval (asked, decided, timed out)."""
    return AuditEvent(
        kind=kind,
        actor=actor,
        run_id=record.run_id,
        subject=record.approval_id,
        detail=json.dumps({"name": record.name, **detail}, default=str),
    )
