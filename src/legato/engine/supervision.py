"""Supervision inside a run: approvals a person decides, and tool calls the policy gate decides.

A collaborator of :class:`legato.engine.execution.Execution`: it builds on the journal, parking
and steps the execution offers through :class:`legato.engine.host.Host`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from legato import approvals, serde
from legato.engine.definitions import ToolDef
from legato.engine.host import Host, weak
from legato.engine.waits import Parkable, bound, forever, iso
from legato.errors import (
    ActionDenied,
    ApprovalConflict,
    ApprovalTimeout,
    NondeterminismError,
)
from legato.store.base import ApprovalRecord, AuditEvent, Entry, Window


class Supervision:
    """Approvals and gated tool calls of one run, on the journal of ``host``."""

    def __init__(self, host: Host) -> None:
        self.host = weak(host)

    # -- approvals ----------------------------------------------------------------------
    async def approval(
        self,
        name: str,
        data: Any,
        *,
        prompt: str | None,
        assignees: Sequence[str],
        timeout: float | None,
        on_timeout: str,
        kind: str = "approval",
        risk: str | None = None,
        reason: str | None = None,
        schema: dict[str, Any] | None = None,
        taken: tuple[int, Entry | None] | None = None,
    ) -> approvals.Decision[Any]:
        """Park until a person decides; the decision is consumed with this entry, atomically.
        ``taken``: the entry's position, when the caller took it already."""
        seq, entry = taken if taken is not None else self.host.take("approval", name)
        text = serde.dumps(
            data, what=f"the data of approval {name!r}", limit=self.host.payload_limit
        )
        digest = approvals.data_hash(text)
        data_type: Any = type(data) if data is not None else None
        if entry is not None:
            recorded = serde.loads(entry.input) or {}
            if recorded.get("data_hash") != digest:  # fail closed: never reuse a decision
                self.host.fatal(
                    NondeterminismError(
                        f"run {self.host.run_id!r}: approval {name!r} at entry {entry.key} was"
                        " requested for different data than is asked for now; a decision is"
                        " bound to its data"
                    )
                )
            if entry.status in ("completed", "failed"):
                return self._decided(entry, name, data_type)
            the_id = str(recorded["approval_id"])
        else:
            now = self.host.clock.now()
            the_id = approvals.approval_id(self.host.run_id, self.host.key_of(seq))
            entry = self.host.make_entry(
                seq, "approval", name, "waiting",
                input=serde.dumps({"approval_id": the_id, "data_hash": digest}, what="an id"),
                started_at=now, wake_at=None if timeout is None else now + timeout,
            )  # fmt: skip
            record = ApprovalRecord(
                approval_id=the_id, run_id=self.host.run_id, seq=seq, name=name, kind=kind,
                status="pending", prompt=prompt, data=text, data_hash=digest,
                data_schema=json.dumps(schema) if schema is not None else approvals.schema_of(data),
                assignees=serde.dumps(list(assignees), what="x"),
                risk=risk, reason=reason, expires_at=entry.wake_at, on_timeout=on_timeout,
                decided_data=None, decided_by=None, comment=None, decided_at=None,
                consumed_at=None, created_at=now,
            )  # fmt: skip
            event = approvals.audit_event(
                "approval.requested", record, self.host.workflow.name, prompt=prompt, risk=risk,
                reason=reason, assignees=list(assignees), timeout=timeout,
            )  # fmt: skip
            if not await self.host.io(
                self.host.store.request_approval(self.host.owner, entry, record, event)
            ):
                self.host.lost()
            self.host.journal[seq] = entry
        return await self._await_decision(seq, entry, the_id, name, on_timeout, data_type)

    async def _await_decision(
        self, seq: int, entry: Entry, the_id: str, name: str, on_timeout: str, data_type: Any
    ) -> approvals.Decision[Any]:
        while True:
            record = await self.host.io(self.host.store.get_approval(the_id))
            if record is None or record.status == "cancelled":
                self.host.lost()  # the run was cancelled (or its approval removed by a retry)
            assert record is not None
            due = entry.wake_at is not None and self.host.clock.now() >= entry.wake_at
            if record.status == "pending" and due:
                record = await self._time_out(record, on_timeout)
            if record.status != "pending":
                entry.status = "failed" if record.status == "expired" else "completed"
                entry.output, entry.finished_at = (
                    approvals.decision_json(record),
                    self.host.clock.now(),
                )
                if not await self.host.io(
                    self.host.store.consume_approval(
                        self.host.owner, entry, the_id, entry.finished_at
                    )
                ):
                    self.host.lost()
                self.host.journal[seq] = entry
                return self._decided(entry, name, data_type)
            remaining = None if entry.wake_at is None else entry.wake_at - self.host.clock.now()
            await self.host.parkable(
                seq,
                Parkable(entry.wake_at, f"approval {name!r} ({the_id})", approval=the_id),
                self.host.clock.sleep(remaining) if remaining is not None else forever(),
            )

    async def _time_out(self, record: ApprovalRecord, on_timeout: str) -> ApprovalRecord:
        status = {"approve": "approved", "reject": "rejected"}.get(on_timeout, "expired")
        event = approvals.audit_event(
            "approval.timed_out", record, approvals.TIMEOUT_DECIDER, status=status
        )
        try:
            return await self.host.io(
                self.host.store.decide_approval(
                    record.approval_id, status=status, by=approvals.TIMEOUT_DECIDER, data=None,  # type: ignore[arg-type]
                    comment=f"not decided by {iso(record.expires_at or 0)}",
                    now=self.host.clock.now(), audit=event,
                )
            )  # fmt: skip
        except ApprovalConflict:  # a person decided at this very moment: theirs stands
            fresh = await self.host.io(self.host.store.get_approval(record.approval_id))
            assert fresh is not None
            return fresh

    def _decided(self, entry: Entry, name: str, data_type: Any) -> approvals.Decision[Any]:
        if entry.status == "failed":
            approval = str((serde.loads(entry.output) or {}).get("approval_id"))
            raise bound(ApprovalTimeout(name, approval), entry.seq)
        return approvals.decision_from(entry.output, data_type)

    # -- tools and the gate ---------------------------------------------------------------
    async def tool(self, tool: ToolDef, args: dict[str, Any], actor: str | None) -> Any:
        """Propose a tool call: the gate allows, throttles, asks a person, or denies."""
        value, _ = await self.tool_call(tool, args, actor)
        return value

    async def tool_call(
        self, tool: ToolDef, args: dict[str, Any], actor: str | None
    ) -> tuple[Any, dict[str, Any] | None]:
        """:meth:`tool`'s result, and the arguments it ran with if an approver edited them."""
        from legato.governance import RiskDefaults, validate_args

        actor = actor or self.host.workflow.name
        args = validate_args(tool.fn, args, tool=tool.name)
        edited: dict[str, Any] | None = None
        while True:
            gate_seq = self.host.peek_seq()
            decision = await self._gate(tool, args, actor)
            if decision.action == "deny":  # bound to the gate entry: a retry asks the gate again
                raise bound(ActionDenied(tool.name, decision.reason), gate_seq)
            if decision.action == "throttle":
                await self.host.sleep(max(0.0, (decision.retry_at or 0) - self.host.clock.now()))
                continue  # ask the gate again: the window may have filled up meanwhile
            break
        if decision.action == "require_approval":
            defaults = (
                self.host.policy.defaults_for(decision.risk) if self.host.policy else RiskDefaults()
            )
            timeout = defaults.approval_timeout
            asked = await self.approval(
                f"tool:{tool.name}", args,
                prompt=f"{actor} proposes {tool.name}: {tool.description}".rstrip(": "),
                assignees=defaults.assignees,
                timeout=None if timeout is None else timeout.total_seconds(),
                on_timeout=defaults.on_timeout, kind="tool", risk=decision.risk,
                reason=decision.reason, schema=tool.schema,
            )  # fmt: skip
            if not asked.approved:
                why = (
                    "no one decided in time"
                    if asked.by == approvals.TIMEOUT_DECIDER
                    else "a person rejected it"
                )
                denied = ActionDenied(tool.name, why, by=asked.by, comment=asked.comment)
                raise bound(denied, gate_seq)
            if asked.edited:
                args = edited = validate_args(tool.fn, asked.data, tool=tool.name)
            if not self.host.is_replaying:  # counted by throttles, like calls the gate allowed
                detail = serde.dumps({"approval": asked.approval_id, "by": asked.by}, what="x")
                event = AuditEvent("tool.approved", detail, actor, self.host.run_id, tool.name)
                await self.host.io(self.host.store.append_audit([event], self.host.clock.now()))
        seq, entry = self.host.take("tool", tool.name)
        pending = self.host.evaluations.take("tool", tool.name)
        result = await self.host.run_step(seq, entry, tool.step, (), args, kind="tool")
        if pending:
            output = serde.loads(self.host.journal[seq].output)
            await self.host.evaluations.judge(pending, "tool", tool.name, seq, args, output)
        return result, edited

    async def _gate(self, tool: ToolDef, args: dict[str, Any], actor: str) -> Any:
        """The gate's decision for this proposal: journaled (replayed as is) and audited."""
        from legato.governance import GateDecision, Proposal, evaluate, initial_level

        seq, entry = self.host.take("gate", tool.name)
        if entry is not None:
            return GateDecision.from_json(serde.loads(entry.output))
        level = await self.host.io(self.host.store.get_autonomy(actor))
        if level is None:
            level = initial_level(self.host.policy, actor)
        now = self.host.clock.now()
        throttles = [
            t
            for t in (self.host.policy.throttles if self.host.policy else [])
            if t.applies_to(tool.name, actor)
        ]
        windows = [Window(t.tool, t.actor, now - t.per.total_seconds()) for t in throttles]
        proposal = Proposal(actor, tool.name, args, tool.risk)  # type: ignore[arg-type]
        shown = serde.dumps(args, what=f"the arguments of tool {tool.name!r}")[:2000]

        def decide(times: list[list[float]]) -> tuple[Entry, AuditEvent]:
            recent = dict(zip(throttles, times, strict=True))
            decision = evaluate(
                self.host.policy, proposal, level=level, now=now,
                recent_calls=lambda t: recent.get(t, []),
            )  # fmt: skip
            record = self.host.make_entry(
                seq, "gate", tool.name, "completed",
                input=serde.dumps({"actor": actor, "level": level}, what="a proposal"),
                output=serde.dumps(decision.to_json(), what="a decision"),
                started_at=now, finished_at=now,
            )  # fmt: skip
            detail = {**decision.to_json(), "level": level, "arguments": shown}
            event = AuditEvent(
                f"gate.{decision.action}", serde.dumps(detail, what="a decision"), actor,
                self.host.run_id, tool.name,
            )  # fmt: skip
            return record, event

        written = await self.host.io(
            self.host.store.record_gate(self.host.owner, self.host.run_id, windows, decide, now)
        )
        if written is None:
            self.host.lost()
        assert written is not None
        record = written[0]
        decision = GateDecision.from_json(serde.loads(record.output))
        self.host.journal[seq] = record
        return decision
