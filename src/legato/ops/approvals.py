"""Approval operations: list, inspect and decide what runs asked people."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from typing import Any, Literal

from legato import serde
from legato.approvals import audit_event
from legato.clock import Clock
from legato.errors import ConfigurationError, UnknownApproval
from legato.ops.evals import label_decision
from legato.store.base import APPROVAL_STATUSES, ApprovalRecord, Store, redact_url


@dataclass(eq=False)
class ApprovalOps:
    """``ops.approvals``: decisions are validated, audited and applied atomically by the store."""

    store: Store
    clock: Clock
    payload_limit: int | None

    async def list(
        self, status: str | None = "pending", run_id: str | None = None, limit: int = 100
    ) -> builtins.list[ApprovalRecord]:
        """Approvals in ``status`` (None for all), oldest first."""
        if status is not None and status not in APPROVAL_STATUSES:
            raise ConfigurationError(
                f"unknown approval status {status!r};"
                f" expected one of {', '.join(APPROVAL_STATUSES)}"
            )
        return await self.store.list_approvals(status=status, run_id=run_id, limit=limit)

    async def get(self, approval_id: str) -> ApprovalRecord:
        record = await self.store.get_approval(approval_id)
        if record is None:
            raise UnknownApproval(f"no approval {approval_id!r} in {redact_url(self.store.url)}")
        return record

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
        record = await self.get(approval_id)
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
        decided = await self.store.decide_approval(
            approval_id, status=status, by=by, data=text, comment=comment,
            now=self.clock.now(), audit=audit,
        )  # fmt: skip
        run = await self.store.get_run(decided.run_id)
        if run is not None:  # the decision labels what it judged (idempotent: by its id)
            await label_decision(self.store, decided, run, self.clock.now())
        return decided

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
    import jsonschema  # ~100 ms to import, and only a decision with edited data needs it

    try:
        jsonschema.validate(data, json.loads(record.data_schema))
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "the data"
        raise ConfigurationError(
            f"edited data does not fit approval {record.approval_id!r}: {where}: {exc.message}"
        ) from None
