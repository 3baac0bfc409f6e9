"""The store seam: what the engine needs from a database, in domain words.

Every backend implements :class:`Store`; the conformance suite in ``legato.testing`` checks that
each one behaves the same. Writes that act for a worker on a run it holds are *fenced*: they
take effect only while that worker still owns the run, and report ``False`` otherwise (the run
was cancelled or another worker took it over).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from legato.store.usage import GroupBy, UsageRecord, UsageTotals

RunStatus = Literal["pending", "running", "waiting", "completed", "failed", "cancelled"]
EntryStatus = Literal["completed", "failed", "waiting", "retrying"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
RUN_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "waiting",
    "completed",
    "failed",
    "cancelled",
)


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
    #: 2: entries are matched by branch and position on replay; 1: by global sequence
    journal_format: int = 2
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


def redact_url(url: str) -> str:
    """The URL as it may be shown: without a password in the authority or the query."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if "@" in rest.split("/", 1)[0]:
            auth, host = rest.split("@", 1)
            rest = f"{auth.split(':', 1)[0]}@{host}"
        url = f"{scheme}://{rest}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


def failed_seq(error: str | None) -> int | None:
    """The journal entry that failed a run, from its stored error (None: the workflow's own
    code failed, or the code no longer matched its journal: a retry just replays)."""
    if not error:
        return None
    try:
        seq = json.loads(error).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def equal_filters(filters: Sequence[tuple[str, Any]], mark: str) -> tuple[list[str], list[Any]]:
    """``column = <mark>`` for each (column, value) whose value is not None, and the values;
    ``mark`` is the dialect's placeholder ("?" or "%s")."""
    parts, params = [], []
    for column, value in filters:
        if value is not None:
            parts.append(f"{column} = {mark}")
            params.append(value)
    return parts, params


def where_clause(parts: list[str]) -> str:
    return f"WHERE {' AND '.join(parts)}" if parts else ""


RUN_COLUMNS = (
    "run_id, workflow, status, input, output, error, parent_run_id, parent_seq, code_version,"
    " owner, wake_at, waiting_on, created_at, updated_at, finished_at, journal_format, tenant"
)
ENTRY_COLUMNS = (
    "run_id, seq, kind, name, status, input, output, error, attempts, started_at, finished_at,"
    " wake_at, branch"
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
        e.started_at, e.finished_at, e.wake_at, e.branch,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    worker_id: str
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim took: the runs, their journals, and when the next other run is due."""

    runs: list[RunRecord]
    journals: dict[str, list[Entry]]
    #: the earliest ``wake_at`` of the other runs of the workflows asked for (None: none)
    next_wake_at: float | None


@dataclass(frozen=True, slots=True)
class Wait:
    """What a parked run waits for; any of these (or ``wake_at``) makes it runnable again."""

    wake_at: float | None
    waiting_on: str
    events: Sequence[str] = field(default=())
    children: Sequence[str] = field(default=())
    approvals: Sequence[str] = field(default=())


APPROVAL_STATUSES: tuple[str, ...] = ("pending", "approved", "rejected", "expired", "cancelled")


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


APPROVAL_COLUMNS = (
    "approval_id, run_id, seq, name, kind, status, prompt, data, data_hash, data_schema,"
    " assignees, risk, reason, expires_at, on_timeout, decided_data, decided_by, comment,"
    " decided_at, consumed_at, created_at"
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to add to the audit log; the store gives it its place in the chain."""

    kind: str
    detail: str  # JSON
    actor: str | None = None
    run_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """Allowed calls of a tool (None: any) by an actor (None: any) since a time."""

    tool: str | None
    actor: str | None
    since: float


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


AUDIT_COLUMNS = "seq, at, kind, actor, run_id, subject, detail, prev_hash, hash"
GENESIS_HASH = "0" * 64


def audit_hash(
    prev_hash: str,
    seq: int,
    at: float,
    kind: str,
    actor: str | None,
    run_id: str | None,
    subject: str | None,
    detail: str,
) -> str:
    """The hash that chains an audit row to the one before it (any edit breaks the chain)."""
    body = json.dumps([seq, at, kind, actor, run_id, subject, detail], separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


class Store(Protocol):
    """Persistence for runs, journals, events and workers."""

    url: str
    #: How often a worker should look for work when nothing tells it (seconds).
    poll_interval: float

    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        """The newest migration applied to the database."""

    # model usage and the response cache (the AI layer) -----------------------------------
    async def record_usage(self, rows: Sequence[UsageRecord]) -> None:
        """Append usage rows (not fenced: a call that was made was paid for)."""

    async def usage_totals(
        self,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        tenant: str | None = None,
        day: str | None = None,
    ) -> UsageTotals:
        """Sums over the usage rows matching every filter given."""

    async def usage_rollup(
        self, by: GroupBy, *, since_day: str | None = None, workflow: str | None = None
    ) -> list[tuple[str, UsageTotals]]:
        """Sums grouped by workflow, model (deployment), day, tenant or run."""

    async def cache_get(self, key: str, now: float) -> str | None:
        """A cached response that has not expired, or None."""

    async def cache_put(self, key: str, value: str, now: float, expires_at: float) -> None:
        """Store a response under ``key`` until ``expires_at`` (and drop expired ones)."""

    async def delete_finished(self, before: float, *, dry_run: bool = False) -> int:
        """Remove runs that finished before ``before`` with their journals and events.

        A child run goes only with (or after) its parent, never while the parent is waiting
        on it. Returns how many runs were (or, with ``dry_run``, would be) removed.
        """

    # runs -------------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        """Insert ``run`` unless its id exists; return the stored run and whether it is new."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]: ...

    async def load_entries(self, run_id: str) -> list[Entry]: ...

    async def load_journals(self, run_ids: Sequence[str]) -> dict[str, list[Entry]]:
        """The journals of several runs in one query (what a worker just claimed)."""

    async def cancel_run(self, run_id: str, now: float) -> RunRecord:
        """Cancel a run that has not finished, and its unfinished children."""

    async def retry_run(self, run_id: str, now: float) -> RunRecord:
        """Make a failed run runnable again from its first failed journal entry."""

    async def send_event(self, run_id: str, name: str, payload: str, now: float) -> None:
        """Buffer an event for a run that has not finished; wake it if it waits."""

    # claiming and leases ----------------------------------------------------------------
    async def claim(
        self, worker_id: str, workflows: Sequence[str], now: float, lease: float, limit: int
    ) -> list[RunRecord]:
        """Take up to ``limit`` runnable runs of ``workflows`` and lease them to the worker."""

    async def claim_next(
        self, worker_id: str, workflows: Sequence[str], now: float, lease: float, limit: int
    ) -> Claim:
        """What a worker's claim loop needs, in one round trip: up to ``limit`` runnable runs of
        ``workflows`` leased to the worker, their journals, and ``next_wake_at`` of the rest.
        Runs of paused workflows are neither claimed nor counted for ``next_wake_at``."""

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], now: float, lease: float
    ) -> None:
        """Extend the worker's liveness and its leases on ``run_ids`` (the runs it executes).

        Only named runs: a run leased by a claim whose answer never arrived (the connection
        dropped) must expire and be claimed again, not be kept forever by heartbeats.
        """

    def on_wake(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on this loop) whenever the database says a run may be claimable;
        returns the function that stops it. Backends without notifications never call it;
        workers poll as well."""

    async def next_wake_at(self, workflows: Sequence[str]) -> float | None:
        """The earliest time at which some run of ``workflows`` becomes claimable."""

    # fenced writes for the owning worker -------------------------------------------------
    def record(self, owner: str, entry: Entry) -> Awaitable[bool]:
        """Insert or replace a journal entry. The write is queued when this is called (before
        it is awaited), so writes issued one after the other commit in that order."""

    async def consume_event(self, owner: str, entry: Entry) -> str | None:
        """Take the oldest buffered event named ``entry.name`` and complete ``entry`` with it.

        Returns the payload, or ``None`` (nothing written) when no such event is buffered.
        Idempotent: when ``entry`` is already completed, its recorded payload is returned.
        """

    async def start_child(self, owner: str, entry: Entry, child: RunRecord) -> bool:
        """Record the parent's child entry and create the child run in one transaction."""

    async def park(self, owner: str, run_id: str, wait: Wait, now: float) -> bool:
        """Unload a run until ``wait`` is met; a wake-up that already happened is kept."""

    async def release(self, owner: str, run_id: str, now: float) -> bool:
        """Give a run back unfinished, claimable by any worker at once."""

    async def finish_run(
        self,
        owner: str,
        run_id: str,
        status: Literal["completed", "failed"],
        result: str | None,
        now: float,
    ) -> bool:
        """End a run (``result`` is the output or the error JSON) and wake its parent."""

    # workers ----------------------------------------------------------------------------
    async def register_worker(self, worker: WorkerRecord) -> None: ...

    async def deregister_worker(self, worker_id: str, now: float) -> None:
        """Remove the worker and make every run it held claimable at once, in its place in
        the queue (``wake_at`` its creation time): a run taken over from a dead worker does
        not wait behind runs started after it."""

    async def list_workers(self) -> list[WorkerRecord]: ...

    async def disconnected_workers(self) -> list[str] | None:
        """Registered workers that the database itself knows are gone: their process ended, and
        the database session that stood for them with it, on whatever machine they ran.

        PostgreSQL ties each worker registered through a store to a session advisory lock
        held by that store's process; a lock that nobody holds means its worker is gone.
        ``None`` where the backend cannot tell (SQLite: there, workers judge each other by
        process id on their one host, and by leases). ``[]`` while the answer is not reliable
        (just reconnected after an outage, when others may be reconnecting too).
        """

    # results ----------------------------------------------------------------------------
    async def wait_for_end(self, run_id: str, timeout: float | None) -> RunRecord | None:
        """The run once it has ended (completed, failed, cancelled), or as it is when
        ``timeout`` seconds have passed; None when there is no such run. Returns as soon as the
        run ends where the backend can be told (PostgreSQL: a NOTIFY sent only when someone
        waits; SQLite: an end in this process), and by polling otherwise."""

    # supervision: approvals ---------------------------------------------------------------
    async def request_approval(
        self, owner: str, entry: Entry, approval: ApprovalRecord, audit: AuditEvent
    ) -> bool:
        """Record the waiting entry and create its approval (once; audited), in one transaction."""

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...

    async def list_approvals(
        self, *, status: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[ApprovalRecord]: ...

    async def decide_approval(
        self,
        approval_id: str,
        *,
        status: Literal["approved", "rejected", "expired"],
        by: str,
        data: str | None,
        comment: str | None,
        now: float,
        audit: AuditEvent,
    ) -> ApprovalRecord:
        """Decide a pending approval and wake its run, atomically; exactly one decision wins.

        The same decision again returns the stored one (idempotent); a different one raises
        ApprovalConflict; an approval of a finished run raises RunConflict.
        """

    async def consume_approval(
        self, owner: str, entry: Entry, approval_id: str, now: float
    ) -> bool:
        """Complete the waiting entry with the decision and mark the approval consumed, together."""

    # supervision: audit, autonomy, pause ----------------------------------------------------
    async def append_audit(self, events: Sequence[AuditEvent], now: float) -> None:
        """Append to the hash-chained audit log (serialized: one chain per database)."""

    async def record_audited(self, owner: str, entry: Entry, event: AuditEvent, now: float) -> bool:
        """A fenced journal write and its audit row in one transaction (gate decisions)."""

    async def record_gate(
        self,
        owner: str,
        run_id: str,
        windows: Sequence[Window],
        decide: Callable[[list[list[float]]], tuple[Entry, AuditEvent]],
        now: float,
    ) -> tuple[Entry, AuditEvent] | None:
        """Count allowed calls in each window, decide, then journal and audit the decision.

        All of it is serialized with every other gate decision, so a throttle holds when many
        runs propose at once. ``decide`` gets the times of ``gate.allow`` rows per window.
        None (nothing written) when the owner no longer holds the run.
        """

    async def list_audit(
        self, *, run_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[AuditRecord]: ...

    async def set_autonomy(
        self, actor: str, level: int, by: str, reason: str, now: float, audit: AuditEvent
    ) -> None: ...

    async def get_autonomy(self, actor: str) -> int | None: ...

    async def list_autonomy(self) -> list[tuple[str, int, str, str, float]]:
        """(actor, level, set_by, reason, updated_at) for every actor with a stored level."""

    async def set_paused(
        self, workflow: str, paused: bool, by: str, reason: str, now: float, audit: AuditEvent
    ) -> bool:
        """Pause or resume a workflow; False when it already was in that state."""

    async def paused_workflows(self) -> dict[str, tuple[str, str, float]]:
        """workflow -> (paused_by, reason, paused_at)."""


def check_decision(
    current: ApprovalRecord, status: str, by: str, data: str | None, comment: str | None
) -> ApprovalRecord | None:
    from legato.errors import ApprovalConflict, RunConflict

    """None while the approval is open; the stored decision when this one repeats it.

    Raises when a different decision was already taken (the first one stands) or the approval
    was cancelled with its run.
    """
    if current.status == "pending":
        return None
    if current.status == "cancelled":
        raise RunConflict(
            f"approval {current.approval_id!r} was cancelled with run {current.run_id!r}"
        )
    same = (current.status, current.decided_by, current.decided_data, current.comment) == (
        status,
        by,
        data,
        comment,
    )
    if same:
        return current
    raise ApprovalConflict(
        f"approval {current.approval_id!r} was already {current.status} by"
        f" {current.decided_by}; a different decision is refused"
    )
