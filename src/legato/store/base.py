"""The store seam: what the engine needs from a database, in domain words, one protocol a role.

Every backend implements :class:`Store`, the union of the roles; the conformance suite in
``legato.testing`` checks that each one behaves the same. A layer that needs one part asks for
that part (``RunStore``, ``JournalStore``, ``WorkerStore``, ``SupervisionStore``,
``AuditStore``, ``UsageStore``, ``BreakerStore``, ``ControlStore``, ``ScheduleStore``,
``MetricsStore``, ``MonitorStore``). Writes that act for a worker on a run it holds are
*fenced*: they take effect only while that worker still owns the run, and report ``False``
otherwise (the run was cancelled or another worker took it over).

The records live in ``records``; the logic both SQL backends share in the role modules
(``runs``, ``journal``, ``approvals``, ``audit``, ``usage``, ``breakers``, ``control``,
``schedules``) over ``dialect``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol

from legato.store.audit import GENESIS_HASH, audit_hash
from legato.store.breakers import BreakerState
from legato.store.dialect import redact_url
from legato.store.metrics import EvaluationRecord, RunMetrics, StatRow, StatsBy, Tally
from legato.store.monitors import AlertRecord, MonitorChanges, MonitorState
from legato.store.records import (
    APPROVAL_COLUMNS,
    APPROVAL_STATUSES,
    AUDIT_COLUMNS,
    ENTRY_COLUMNS,
    RUN_COLUMNS,
    RUN_STATUSES,
    TERMINAL,
    ApprovalRecord,
    AuditEvent,
    AuditRecord,
    Claim,
    Entry,
    EntryStatus,
    RunEnd,
    RunRecord,
    RunStatus,
    ScheduleRecord,
    Wait,
    Window,
    WorkerRecord,
    entry_key,
    entry_values,
    run_values,
)
from legato.store.usage import GroupBy, UsageRecord, UsageTotals


class RunStore(Protocol):
    """Runs as people and front ends see them: start, read, cancel, retry, signal, clean up."""

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

    async def workflow_names(self) -> list[str]:
        """The workflows that have runs, sorted (to tell a typo from a name: slow, scans runs)."""

    async def load_entries(self, run_id: str) -> list[Entry]: ...

    async def load_journals(self, run_ids: Sequence[str]) -> dict[str, list[Entry]]:
        """The journals of several runs in one query (what a worker just claimed)."""

    async def cancel_run(self, run_id: str, now: float) -> RunRecord:
        """Cancel a run that has not finished, and its unfinished children. The store's own
        retry after a lost reply finds the run cancelled and returns it."""

    async def cancelled_since(self, since: float) -> list[str]:
        """Runs cancelled at ``since`` or later (a worker stops those it executes)."""

    async def retry_run(self, run_id: str, now: float) -> RunRecord:
        """Make a failed run runnable again from its first failed journal entry, or a
        cancelled one where it was cancelled (with the approvals that were pending and the
        child runs it was waiting for)."""

    async def fork_run(
        self, run: RunRecord, entries: Sequence[Entry], audit: AuditEvent
    ) -> tuple[RunRecord, bool]:
        """Create ``run`` (a fork: ``forked_from`` set) with copies of ``entries`` as its
        journal, and append ``audit``, in one transaction. The same fork again (same id,
        source and entry) returns the stored one and False; another run with that id is a
        RunConflict; a source that does not exist is UnknownRun."""

    async def custom_statuses(self, run_ids: Sequence[str]) -> dict[str, str]:
        """run id -> the JSON its workflow last gave ``ctx.set_status`` (the newest ``status``
        entry of its journal), for the runs that have one."""

    async def send_event(
        self, run_id: str, name: str, payload: str, now: float, event_id: str | None = None
    ) -> bool:
        """Buffer an event for a run that has not finished; wake it if it waits. An event with
        the ``event_id`` of one sent before is not applied again (False), even after the run
        ended; with another name or payload it is a ``RunConflict``."""

    async def wait_for_end(self, run_id: str, timeout: float | None) -> RunRecord | None:
        """The run once it has ended (completed, failed, cancelled), or as it is when
        ``timeout`` seconds have passed; None when there is no such run. Returns as soon as the
        run ends where the backend can be told (PostgreSQL: a NOTIFY sent only when someone
        waits; SQLite: an end in this process), and by polling otherwise."""

    async def delete_finished(self, before: float, *, dry_run: bool = False) -> int:
        """Remove runs that finished before ``before`` with their journals and events.

        A child run goes only with (or after) its parent, never while the parent is waiting
        on it. Returns how many runs were (or, with ``dry_run``, would be) removed.
        """


class JournalStore(Protocol):
    """Fenced writes for the worker that owns a run: its journal, and how the run ends."""

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
        status: RunEnd,
        result: str | None,
        now: float,
        *,
        metrics: RunMetrics | None = None,
        start: Sequence[RunRecord] = (),
    ) -> bool:
        """End a run (``result`` is the output or the error JSON) and wake its parent.

        In the same transaction: record what the run measured (``metrics``, its
        ``finished_at`` set to ``now``) and create the runs in ``start`` (its shadow
        evaluations) unless they exist."""


class WorkerStore(Protocol):
    """What workers coordinate through: claims with leases, heartbeats, wake-ups, liveness."""

    #: How often a worker should look for work when nothing tells it (seconds).
    poll_interval: float

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

    async def register_worker(self, worker: WorkerRecord) -> None: ...

    async def deregister_worker(self, worker_id: str, now: float) -> None:
        """Remove the worker and release every run it held (``pending``, no owner), claimable
        at once in its place in the queue (``wake_at`` its creation time): a run taken over
        from a dead worker does not wait behind runs started after it."""

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


class SupervisionStore(Protocol):
    """Approvals bound to journal entries, and the policy gate's decisions."""

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


class AuditStore(Protocol):
    """The hash-chained audit log."""

    async def append_audit(self, events: Sequence[AuditEvent], now: float) -> None:
        """Append to the hash-chained audit log (serialized: one chain per database)."""

    async def list_audit(
        self,
        *,
        run_id: str | None = None,
        after: int = 0,
        limit: int = 1000,
        kind_prefix: str | None = None,
    ) -> list[AuditRecord]:
        """Audit rows after ``after`` in order; of one run, or whose kind starts with
        ``kind_prefix`` (``"monitor."``), when given."""

    async def gate_actors(self) -> list[str]:
        """The actors whose tool calls the gate has decided, sorted (to tell a typo from a
        name: slow, scans the log)."""


class DeploymentStore(Protocol):
    """What the AI layer learned about each deployment by talking to it (the structured output
    a server rejects, its chat template's token overhead ...), shared by every worker."""

    async def learn_about_deployment(
        self, deployment: str, fact: str, value: str, now: float
    ) -> None:
        """Set ``fact`` (a JSON text ``value``) of ``deployment``; the last write wins."""

    async def deployment_facts(self, deployment: str) -> dict[str, str]:
        """Every fact learned about ``deployment``: name -> JSON text."""


class UsageStore(Protocol):
    """Model usage and cost rows, and the response cache (the AI layer)."""

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


class BreakerStore(Protocol):
    """Circuit breakers per deployment, shared by every worker of the database (the AI layer).

    Each call is atomic: racing workers count every failure, and exactly one of them wins a
    half-open probe.
    """

    async def breaker(self, deployment: str) -> BreakerState | None:
        """The deployment's breaker, or None when it has not failed since its last success."""

    async def breaker_failure(
        self, deployment: str, now: float, limit: int, cooldown: float
    ) -> BreakerState:
        """Count a failure; at ``limit`` in a row, open the breaker until ``now + cooldown``
        (a failure after that, such as a failed probe, opens it again)."""

    async def breaker_probe(self, deployment: str, now: float, lease: float) -> bool:
        """Take the half-open probe of an open breaker whose cooldown is over: True for one
        caller until ``now + lease`` (or until the probe's failure or success)."""

    async def breaker_success(self, deployment: str) -> None:
        """Close the breaker: forget its failures."""


class ControlStore(Protocol):
    """What people change at run time: autonomy levels and paused workflows (audited)."""

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


class MetricsStore(Protocol):
    """What runs measured (written as they end), evaluations, and the sums ``legato stats``
    reads."""

    async def stats(
        self,
        by: StatsBy = "workflow",
        *,
        workflow: str | None = None,
        since: float | None = None,
        kind: str | None = None,
    ) -> list[StatRow]:
        """Sums of the runs (``by`` workflow, tenant or day), model calls (``model``), steps or
        tools that ended since ``since`` (counted by the hour); ``kind="eval"`` with
        ``by="step"`` sums evaluations per evaluator. Cancelled runs count as runs."""

    async def record_evaluation(self, evaluation: EvaluationRecord) -> bool:
        """Record an evaluation once (by its key) and count it; False when it was already."""

    async def list_evaluations(
        self, *, evaluator: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[EvaluationRecord]:
        """The newest evaluations first."""

    async def get_run_metrics(self, run_id: str) -> RunMetrics | None:
        """What a run measured at its (last) end; None before it ends. ``ops`` is not kept."""

    async def samples(
        self,
        source: Literal["runs", "evaluations"],
        column: str,
        *,
        filters: Sequence[tuple[str, Any]] = (),
        after: tuple[float, str] | None = None,
        before: tuple[float, str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[tuple[float, str, float]]:
        """``(at, key, value)`` of run ends or evaluations, oldest first: those after ``after``
        (or, with ``newest``, the last ``limit`` before ``before``), ended in [since, until),
        matching ``filters`` (column, value). ``column`` and the filters' columns name columns
        of ``run_metrics`` or ``evaluations``."""


class MonitorStore(Protocol):
    """Monitors' state under a lease per window, their alerts (an outbox), and rerouted
    aliases."""

    async def monitor_states(self) -> list[MonitorState]: ...

    async def claim_monitor(
        self, name: str, window: int, owner: str, now: float, lease: float
    ) -> MonitorState | None:
        """Lease window ``window`` of monitor ``name`` to ``owner`` (creating its state), unless
        that window is done or leased to another; the state, or None."""

    async def commit_monitor(
        self, state: MonitorState, changes: MonitorChanges, now: float, *, owner: str | None = None
    ) -> bool:
        """Write the monitor's new ``state`` and apply ``changes`` (autonomy, pauses, routes,
        alerts, audit events) in one transaction. With ``owner``: only while it holds the
        claim on window ``state.window_done`` (then released); False otherwise. Without: a
        person's change, applied to a monitor that exists."""

    async def route_overrides(self) -> dict[str, str]:
        """alias -> deployment, for aliases a monitor rerouted."""

    async def claim_alerts(self, now: float, lease: float, limit: int = 10) -> list[AlertRecord]:
        """Alerts due for delivery, each leased to the caller for ``lease`` seconds."""

    async def alert_done(
        self, alert_id: int, now: float, *, error: str | None = None, retry_at: float | None = None
    ) -> None:
        """Mark an alert delivered, or (``error``) failed, to be tried again at ``retry_at``."""

    async def list_alerts(
        self, *, monitor: str | None = None, limit: int = 100
    ) -> list[AlertRecord]: ...


class ScheduleStore(Protocol):
    """Schedules: workflows started on cron ticks, each tick's run started once."""

    async def put_schedule(self, schedule: ScheduleRecord, audit: AuditEvent | None) -> bool:
        """Add or update a schedule; an unchanged cron and zone keep its next tick and its
        history. True when anything changed."""

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None: ...

    async def list_schedules(self) -> list[ScheduleRecord]: ...

    async def delete_schedule(self, schedule_id: str, now: float, audit: AuditEvent) -> bool:
        """False when there was no such schedule."""

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, next_at: float, now: float, audit: AuditEvent
    ) -> bool:
        """Pause, or resume with ``next_at`` as the next tick (ticks that fell while paused
        never fire); False when it was already in that state or does not exist."""

    async def schedule_wake(self, workflows: list[str]) -> tuple[float | None, set[str]]:
        """When a schedule of these workflows next has work (None: none has), and the runs
        whose end lets a buffered tick start (overlap "buffer")."""

    async def fire_schedules(self, workflows: list[str], now: float) -> list[str]:
        """Start the runs of the due ticks of these workflows' schedules, under each one's
        catch-up and overlap policies, exactly once across workers; the ids of runs started."""

    async def trigger_schedule(
        self, schedule_id: str, run_id: str, now: float, audit: AuditEvent
    ) -> RunRecord | None:
        """Start a run of the schedule now, besides its ticks (None: no such schedule)."""


class ModelStore(UsageStore, BreakerStore, Protocol):
    """What the AI layer's model calls need: usage rows, the response cache, breakers."""


class Store(
    RunStore,
    JournalStore,
    WorkerStore,
    SupervisionStore,
    AuditStore,
    DeploymentStore,
    UsageStore,
    BreakerStore,
    ControlStore,
    MetricsStore,
    MonitorStore,
    ScheduleStore,
    Protocol,
):
    """Persistence for runs, journals, events, workers, supervision and model usage."""

    url: str

    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        """The newest migration applied to the database."""


__all__ = [
    "APPROVAL_COLUMNS",
    "APPROVAL_STATUSES",
    "AUDIT_COLUMNS",
    "ENTRY_COLUMNS",
    "GENESIS_HASH",
    "RUN_COLUMNS",
    "RUN_STATUSES",
    "TERMINAL",
    "ApprovalRecord",
    "AuditEvent",
    "AuditRecord",
    "Claim",
    "AlertRecord",
    "AuditStore",
    "BreakerState",
    "BreakerStore",
    "ControlStore",
    "DeploymentStore",
    "EvaluationRecord",
    "MetricsStore",
    "MonitorChanges",
    "MonitorState",
    "MonitorStore",
    "RunMetrics",
    "StatRow",
    "StatsBy",
    "Tally",
    "Entry",
    "EntryStatus",
    "JournalStore",
    "ModelStore",
    "RunEnd",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "Store",
    "SupervisionStore",
    "UsageStore",
    "Wait",
    "WorkerRecord",
    "WorkerStore",
    "Window",
    "audit_hash",
    "entry_key",
    "entry_values",
    "redact_url",
    "run_values",
]
