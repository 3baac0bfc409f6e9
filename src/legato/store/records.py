"""What the store keeps, as plain records: runs, journal entries, workers, approvals, audit rows.

JSON columns stay text here; the engine decodes them with the right types. The column lists
name each table's columns in the order of its record's fields, so a row read with them builds
the record positionally and ``*_values`` give the parameters of an insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

RunStatus = Literal["pending", "running", "waiting", "completed", "failed", "cancelled"]
EntryStatus = Literal["completed", "failed", "waiting", "retrying"]
RunEnd = Literal["completed", "failed"]  # how a run's own code ends it
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
RUN_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "waiting",
    "completed",
    "failed",
    "cancelled",
)
APPROVAL_STATUSES: tuple[str, ...] = ("pending", "approved", "rejected", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored. JSON columns stay text; the engine decodes them with the right types."""

    run_id: str
    workflow: str
    status: RunStatus
    input: str
    output: str | None = None
    error: str | None = None
    parent_run_id: str | None = None
    parent_seq: int | None = None
    code_version: str | None = None
    owner: str | None = None
    wake_at: float | None = None
    waiting_on: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    #: 3: entries record (branch, position), their identity; 2: matched by branch and the
    #: order of recorded entries; 1: by global sequence (formats 1 and 2: runs started earlier)
    journal_format: int = 3
    #: who the run works for: budgets per tenant per day add up model calls by this
    tenant: str | None = None


@dataclass(slots=True)
class Entry:
    """One journal entry: the durable record of a step, timer, event, child run or value."""

    run_id: str
    seq: int
    kind: str
    name: str
    status: EntryStatus
    input: str | None = None
    output: str | None = None
    error: str | None = None
    attempts: int = 1
    started_at: float | None = None
    finished_at: float | None = None
    wake_at: float | None = None
    branch: str = ""
    #: the position within its branch (journal format 3; None in runs of older formats)
    position: int | None = None

    @property
    def key(self) -> str:
        """The entry's identity as users see it (see :func:`entry_key`)."""
        return entry_key(self.seq, self.branch, self.position)


def entry_key(seq: int, branch: str, position: int | None) -> str:
    """An entry's identity: its branch and its position in the branch (``"3"``: the workflow's
    fourth operation; ``"1.0"``: the first one of the second task it started), the same on every
    attempt, replay and crash. Runs of journal formats 1 and 2 record no position: their entries
    are known by their sequence number."""
    if position is None:
        return str(seq)
    return f"{branch.replace('/', '.')}{position}"


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    worker_id: str
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True, slots=True)
class Wait:
    """What a parked run waits for; any of these (or ``wake_at``) makes it runnable again."""

    wake_at: float | None
    waiting_on: str
    events: Sequence[str] = field(default=())
    children: Sequence[str] = field(default=())
    approvals: Sequence[str] = field(default=())


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A request for a person's decision, bound to one journal entry of one run."""

    approval_id: str
    run_id: str
    seq: int
    name: str
    kind: str
    status: str
    prompt: str | None
    data: str | None
    data_hash: str
    data_schema: str | None
    assignees: str | None
    risk: str | None
    reason: str | None
    expires_at: float | None
    on_timeout: str | None
    decided_data: str | None
    decided_by: str | None
    comment: str | None
    decided_at: float | None
    consumed_at: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to add to the audit log; the store gives it its place in the chain."""

    kind: str
    detail: str  # JSON
    actor: str | None = None
    run_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: float
    kind: str
    actor: str | None
    run_id: str | None
    subject: str | None
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Window:
    """Allowed calls of a tool (None: any) by an actor (None: any) since a time."""

    tool: str | None
    actor: str | None
    since: float


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored: when its workflow starts, and what its ticks have done."""

    schedule_id: str
    workflow: str
    cron: str
    tz: str
    input: str  # JSON: the run's args and kwargs
    catchup: str
    overlap: str
    source: str  # "code" (declared with @app.schedule) or "api" (added at run time)
    paused: bool
    next_at: float
    last_tick_at: float | None = None
    last_run_id: str | None = None
    buffered_at: float | None = None
    fired: int = 0
    skipped: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0


RUN_COLUMNS = (
    "run_id, workflow, status, input, output, error, parent_run_id, parent_seq, code_version,"
    " owner, wake_at, waiting_on, created_at, updated_at, finished_at, journal_format, tenant"
)
ENTRY_COLUMNS = (
    "run_id, seq, kind, name, status, input, output, error, attempts, started_at, finished_at,"
    " wake_at, branch, position"
)
APPROVAL_COLUMNS = (
    "approval_id, run_id, seq, name, kind, status, prompt, data, data_hash, data_schema,"
    " assignees, risk, reason, expires_at, on_timeout, decided_data, decided_by, comment,"
    " decided_at, consumed_at, created_at"
)
AUDIT_COLUMNS = "seq, at, kind, actor, run_id, subject, detail, prev_hash, hash"
SCHEDULE_COLUMNS = (
    "schedule_id, workflow, cron, tz, input, catchup, overlap, source, paused, next_at,"
    " last_tick_at, last_run_id, buffered_at, fired, skipped, created_at, updated_at"
)


def run_values(run: RunRecord) -> tuple[Any, ...]:
    """The run's fields in RUN_COLUMNS order (both dialects insert runs this way)."""
    return (
        run.run_id, run.workflow, run.status, run.input, run.output, run.error,
        run.parent_run_id, run.parent_seq, run.code_version, run.owner, run.wake_at,
        run.waiting_on, run.created_at, run.updated_at, run.finished_at, run.journal_format,
        run.tenant,
    )  # fmt: skip


def entry_values(e: Entry) -> tuple[Any, ...]:
    """The entry's fields in ENTRY_COLUMNS order."""
    return (
        e.run_id, e.seq, e.kind, e.name, e.status, e.input, e.output, e.error, e.attempts,
        e.started_at, e.finished_at, e.wake_at, e.branch, e.position,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim took: the runs, their journals, and when the next other run is due."""

    runs: list[RunRecord]
    journals: dict[str, list[Entry]]
    #: the earliest ``wake_at`` of the other runs of the workflows asked for (None: none)
    next_wake_at: float | None
