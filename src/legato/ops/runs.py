"""Run operations: start, inspect, list, signal, cancel, retry and remove runs."""

from __future__ import annotations

import builtins
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from legato import serde
from legato.clock import Clock
from legato.engine.definitions import WorkflowDef
from legato.errors import ConfigurationError, RunConflict, UnknownRun
from legato.store.base import RUN_STATUSES, Entry, RunRecord, Store, redact_url
from legato.timestamps import format_timestamp

_RUN_ID = re.compile(r"^[\w.:@/+=-]{1,200}$")


@dataclass(frozen=True)
class TimelineEntry:
    """One line of ``legato show``."""

    seq: int
    kind: str
    name: str
    status: str
    attempts: int
    duration: float | None
    summary: str
    #: the entry's identity: branch and position ("3", "0.1"); see Entry.key
    entry: str = ""


@dataclass(frozen=True)
class Timeline:
    """A run and its journal, entry by entry (``RunHandle.timeline``, ``legato show``)."""

    run: RunRecord
    entries: builtins.list[TimelineEntry]


@dataclass(eq=False)
class RunOps:
    """``ops.runs``: what front ends may do to runs."""

    store: Store
    clock: Clock
    payload_limit: int | None

    async def start(
        self,
        workflow: WorkflowDef,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None = None,
        *,
        tenant: str | None = None,
    ) -> tuple[RunRecord, bool]:
        """Create a run (or return the existing one with that id); True when created."""
        if run_id is None:
            run_id = uuid.uuid4().hex
        elif not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ConfigurationError(
                f"bad run id {run_id!r}: use 1-200 letters, digits or . : @ / + = - _"
            )
        text = workflow.encode_input(args, kwargs, self.payload_limit)
        now = self.clock.now()
        run, created = await self.store.create_run(workflow.new_run(run_id, text, now, tenant))
        if not created and run.workflow != workflow.name:
            raise RunConflict(
                f"run id {run_id!r} already belongs to workflow {run.workflow!r}, not"
                f" {workflow.name!r}; choose another run id"
            )
        return run, created

    async def get(self, run_id: str) -> RunRecord:
        run = await self.store.get_run(run_id)
        if run is None:
            raise UnknownRun(f"no run {run_id!r} in {redact_url(self.store.url)}")
        return run

    async def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> builtins.list[RunRecord]:
        """Runs, newest first."""
        if status is not None and status not in RUN_STATUSES:
            raise ConfigurationError(
                f"unknown status {status!r}; expected one of {', '.join(RUN_STATUSES)}"
            )
        if limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {limit}")
        return await self.store.list_runs(status=status, workflow=workflow, limit=limit)

    async def timeline(self, run_id: str) -> Timeline:
        run = await self.get(run_id)
        entries = await self.store.load_entries(run_id)
        return Timeline(run, [_line(e) for e in entries])

    async def send_event(
        self, run_id: str, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Deliver an event; False when an event with ``event_id`` was delivered before.

        Without an id the call gets one of its own, so the store's retry of a send whose commit
        landed but whose reply was lost does not deliver it twice; give one to make your own
        retries (a webhook delivered again, a client that timed out) safe too."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError("an event name must be a non-empty string")
        if event_id is not None and (not isinstance(event_id, str) or not event_id):
            raise ConfigurationError("an event id must be a non-empty string")
        text = serde.dumps(payload, what=f"the payload of event {name!r}", limit=self.payload_limit)
        if event_id is not None:
            return await self.store.send_event(run_id, name, text, self.clock.now(), event_id)
        # our own id: a repeat can only be the store's retry of this very call
        await self.store.send_event(run_id, name, text, self.clock.now(), uuid.uuid4().hex)
        return True

    async def send_event_json(
        self, run_id: str, name: str, data: str, *, event_id: str | None = None
    ) -> bool:
        """Send an event whose payload is JSON text (from the CLI or a webhook)."""
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"event data is not valid JSON: {exc}") from None
        return await self.send_event(run_id, name, payload, event_id=event_id)

    async def cancel(self, run_id: str) -> RunRecord:
        return await self.store.cancel_run(run_id, self.clock.now())

    async def retry(self, run_id: str) -> RunRecord:
        return await self.store.retry_run(run_id, self.clock.now())

    async def gc(self, older_than: timedelta, *, dry_run: bool = False) -> int:
        """Remove runs that finished more than ``older_than`` ago (retention)."""
        if older_than < timedelta(0):
            raise ConfigurationError("the age of runs to remove must not be negative")
        before = self.clock.now() - older_than.total_seconds()
        return await self.store.delete_finished(before, dry_run=dry_run)


def _line(e: Entry) -> TimelineEntry:
    duration = None
    if e.started_at is not None and e.finished_at is not None:
        duration = max(0.0, e.finished_at - e.started_at)
    return TimelineEntry(
        e.seq, e.kind, e.name, e.status, e.attempts, duration, summarize(e), entry=e.key
    )


def summarize(e: Entry, width: int = 80) -> str:
    """A short human description of what an entry holds."""
    if e.error:
        err = serde.loads(e.error) or {}
        text = f"{err.get('type', 'Error')}: {err.get('message', '')}"
    elif e.kind == "sleep" and e.wake_at is not None and e.status == "waiting":
        text = f"until {format_timestamp(e.wake_at)}"
    elif e.kind == "event" and e.status == "waiting":
        text = "waiting" + (f" until {format_timestamp(e.wake_at)}" if e.wake_at else "")
    elif e.kind == "child":
        text = f"run {e.input}" + (f" -> {e.output}" if e.output else "")
    elif e.kind == "now" and e.output:
        text = format_timestamp(float(e.output))
    elif e.status == "retrying" and e.wake_at is not None:
        text = f"retry at {format_timestamp(e.wake_at)}"
    else:
        text = e.output if e.output is not None else ""
    return text if len(text) <= width else text[: width - 3] + "..."
