"""The store seam: what the engine needs from a database, in domain words.

Every backend implements :class:`Store`; the conformance suite in ``legato.testing`` checks that
each one behaves the same. Writes that act for a worker on a run it holds are *fenced*: they
take effect only while that worker still owns the run, and report ``False`` otherwise (the run
was cancelled or another worker took it over).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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


def redact_url(url: str) -> str:
    """The URL as it may be shown: without a password in the authority or the query."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if "@" in rest.split("/", 1)[0]:
            auth, host = rest.split("@", 1)
            rest = f"{auth.split(':', 1)[0]}@{host}"
        url = f"{scheme}://{rest}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


RUN_COLUMNS = (
    "run_id, workflow, status, input, output, error, parent_run_id, parent_seq, code_version,"
    " owner, wake_at, waiting_on, created_at, updated_at, finished_at"
)
ENTRY_COLUMNS = (
    "run_id, seq, kind, name, status, input, output, error, attempts, started_at, finished_at,"
    " wake_at"
)


def run_values(run: RunRecord) -> tuple[Any, ...]:
    """The run's fields in RUN_COLUMNS order (both dialects insert runs this way)."""
    return (
        run.run_id, run.workflow, run.status, run.input, run.output, run.error,
        run.parent_run_id, run.parent_seq, run.code_version, run.owner, run.wake_at,
        run.waiting_on, run.created_at, run.updated_at, run.finished_at,
    )  # fmt: skip


def entry_values(e: Entry) -> tuple[Any, ...]:
    """The entry's fields in ENTRY_COLUMNS order."""
    return (
        e.run_id, e.seq, e.kind, e.name, e.status, e.input, e.output, e.error, e.attempts,
        e.started_at, e.finished_at, e.wake_at,
    )  # fmt: skip


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


class Store(Protocol):
    """Persistence for runs, journals, events and workers."""

    url: str
    #: How often a worker should look for work when nothing tells it (seconds).
    poll_interval: float

    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        """The newest migration applied to the database."""

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

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], now: float, lease: float
    ) -> None:
        """Extend the worker's liveness and its leases on ``run_ids`` (the runs it executes).

        Only named runs: a run leased by a claim whose answer never arrived (the connection
        dropped) must expire and be claimed again, not be kept forever by heartbeats.
        """

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on this loop) whenever the database says a run may be claimable.

        Backends without notifications never call it; workers poll as well.
        """

    async def next_wake_at(self, workflows: Sequence[str]) -> float | None:
        """The earliest time at which some run of ``workflows`` becomes claimable."""

    # fenced writes for the owning worker -------------------------------------------------
    async def record(self, owner: str, entry: Entry) -> bool:
        """Insert or replace a journal entry."""

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
        """Remove the worker and make every run it held claimable at once."""

    async def list_workers(self) -> list[WorkerRecord]: ...
