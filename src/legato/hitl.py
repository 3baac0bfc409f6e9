"""People in the loop: approvals a run waits for, and what a decision carries back.

A run asks with ``await ctx.approval(...)`` and parks; a person answers through
``app.approvals.decide`` (or ``legato approve`` / ``legato reject``). The request is bound to its
run, its journal entry, its name and the hash of its data, so a replay that would ask for
something else fails closed instead of reusing a decision made about different data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from legato import serde
from legato.clock import Clock
from legato.errors import ConfigurationError, UnknownApproval
from legato.store.base import APPROVAL_STATUSES, ApprovalRecord, AuditEvent, Store, redact_url

if TYPE_CHECKING:
    from legato.app import App
    from legato.ops import Operations

T = TypeVar("T")
OnTimeout = Literal["reject", "approve", "fail"]
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
            created_at=_dt(r.created_at),
            expires_at=_dt(r.expires_at) if r.expires_at is not None else None,
            decided_by=r.decided_by,
            decided_data=serde.loads(r.decided_data),
            comment=r.comment,
            decided_at=_dt(r.decided_at) if r.decided_at is not None else None,
        )


def approval_id(run_id: str, entry: str) -> str:
    """Derived from the entry, so a replay finds the same approval without storing randomness."""
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
        decided_at=_dt(decided_at) if decided_at is not None else None,
        approval_id=str(raw.get("approval_id")),
        edited=bool(raw.get("edited")),
    )


class Approvals:
    """``app.approvals``: list, inspect and decide approvals (sync and ``*_async``)."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def _ops(self) -> Operations:
        return await self._app.ops_async()

    async def list_async(
        self, status: str | None = "pending", *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        ops = await self._ops()
        return [Approval.from_record(r) for r in await ops.list_approvals(status, run_id, limit)]

    def list(
        self, status: str | None = "pending", *, run_id: str | None = None, limit: int = 100
    ) -> list[Approval]:
        """Approvals in ``status`` ("pending" by default; None for all), oldest first."""
        return self._app._sync(self.list_async(status, run_id=run_id, limit=limit))

    async def get_async(self, approval_id: str) -> Approval:
        return Approval.from_record(await (await self._ops()).get_approval(approval_id))

    def get(self, approval_id: str) -> Approval:
        return self._app._sync(self.get_async(approval_id))

    async def decide_async(
        self,
        approval_id: str,
        approved: bool,
        by: str,
        data: Any = None,
        comment: str | None = None,
    ) -> Approval:
        ops = await self._ops()
        record = await ops.decide(approval_id, approved, by, data=data, comment=comment)
        self._app._notify_workers()
        return Approval.from_record(record)

    def decide(
        self,
        approval_id: str,
        approved: bool,
        by: str,
        data: Any = None,
        comment: str | None = None,
    ) -> Approval:
        """Approve or reject (``data`` replaces what is approved, validated against its type).

        Deciding again the same way returns the decision; deciding differently raises
        ApprovalConflict; exactly one of several people deciding at once wins.
        """
        return self._app._sync(self.decide_async(approval_id, approved, by, data, comment))


def validate_status(status: str | None) -> None:
    if status is not None and status not in APPROVAL_STATUSES:
        raise ConfigurationError(
            f"unknown approval status {status!r}; expected one of {', '.join(APPROVAL_STATUSES)}"
        )


def require(record: ApprovalRecord | None, approval_id: str, where: str) -> ApprovalRecord:
    if record is None:
        raise UnknownApproval(f"no approval {approval_id!r} in {where}")
    return record


def audit_event(kind: str, record: ApprovalRecord, actor: str | None, **detail: Any) -> AuditEvent:
    return AuditEvent(
        kind=kind,
        actor=actor,
        run_id=record.run_id,
        subject=record.approval_id,
        detail=json.dumps({"name": record.name, **detail}, default=str),
    )


class ApprovalOps:
    """Approval operations (mixed into legato.ops.Operations)."""

    store: Store
    clock: Clock
    payload_limit: int | None

    async def list_approvals(
        self, status: str | None = "pending", run_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]:
        validate_status(status)
        return await self.store.list_approvals(status=status, run_id=run_id, limit=limit)

    async def get_approval(self, approval_id: str) -> ApprovalRecord:
        where = redact_url(self.store.url)
        return require(await self.store.get_approval(approval_id), approval_id, where)

    async def decide(
        self,
        approval_id: str,
        approved: bool,
        by: str,
        *,
        data: Any = None,
        comment: str | None = None,
    ) -> ApprovalRecord:
        """Decide an approval; edited ``data`` must fit the schema of what was proposed."""
        if not isinstance(by, str) or not by.strip():
            raise ConfigurationError("a decision needs the name of who decides (by=...)")
        record = await self.get_approval(approval_id)
        text = None
        if data is not None:
            if not approved:
                raise ConfigurationError("only an approval can carry edited data, not a rejection")
            _check_schema(record, data)
            text = serde.dumps(
                data, what=f"the edited data of approval {approval_id!r}", limit=self.payload_limit
            )
        status: Literal["approved", "rejected"] = "approved" if approved else "rejected"
        audit = audit_event(
            "approval.decided", record, by, status=status, comment=comment, edited=text is not None
        )
        return await self.store.decide_approval(
            approval_id, status=status, by=by, data=text, comment=comment,
            now=self.clock.now(), audit=audit,
        )  # fmt: skip

    async def decide_json(
        self, approval_id: str, approved: bool, by: str, data: str | None, comment: str | None
    ) -> ApprovalRecord:
        """Decide with edited data given as JSON text (from the CLI or a web form)."""
        value = None
        if data is not None:
            try:
                value = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"--data is not valid JSON: {exc}") from None
        return await self.decide(approval_id, approved, by, data=value, comment=comment)


def _check_schema(record: ApprovalRecord, data: Any) -> None:
    if record.data_schema is None:
        return
    import jsonschema

    try:
        jsonschema.validate(data, json.loads(record.data_schema))
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "the data"
        raise ConfigurationError(
            f"edited data does not fit approval {record.approval_id!r}: {where}: {exc.message}"
        ) from None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
