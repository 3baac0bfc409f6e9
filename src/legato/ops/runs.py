"""Run operations: start, inspect, list, signal, cancel, retry and remove runs."""

from __future__ import annotations

import builtins
import dataclasses
import json
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from legato import serde
from legato.clock import Clock
from legato.engine.definitions import WorkflowDef
from legato.errors import (
    ConfigurationError,
    RunConflict,
    UnknownRun,
    UnknownWorkflow,
    did_you_mean,
)
from legato.ops.forks import find_entry, kept_before
from legato.ops.names import require_name
from legato.store.base import RUN_STATUSES, AuditEvent, Entry, RunRecord, Store, redact_url
from legato.timestamps import format_timestamp

_RUN_ID = re.compile(r"^[\w.:@/+=-]{1,200}$")
#: what ``legato runs --status`` accepts: the stored statuses, and ``paused`` (pending or
#: waiting runs of a paused workflow, which no worker takes up until it is resumed)
SHOWN_STATUSES = (*RUN_STATUSES, "paused")
#: stored statuses that show as ``paused`` while their workflow is paused
_PAUSABLE = ("pending", "waiting")


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
    #: the recorded output and error, as JSON text (``legato show --json`` embeds them)
    output: str | None = None
    error: str | None = None


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
        run_id = _new_run_id(run_id)
        text = workflow.encode_input(args, kwargs, self.payload_limit)
        now = self.clock.now()
        run, created = await self.store.create_run(workflow.new_run(run_id, text, now, tenant))
        if not created and run.workflow != workflow.name:
            raise RunConflict(
                f"run id {run_id!r} already belongs to workflow {run.workflow!r}, not"
                f" {workflow.name!r}; choose another run id"
            )
        return run, created

    def _pending(
        self, run_id: str, workflow: str, text: str, code_version: str | None,
        tenant: str | None, **more: Any,
    ) -> RunRecord:  # fmt: skip
        """A new run, runnable at once."""
        now = self.clock.now()
        return RunRecord(
            run_id=run_id, workflow=workflow, status="pending", input=text,
            code_version=code_version, wake_at=now, created_at=now, updated_at=now,
            tenant=tenant, **more,
        )  # fmt: skip

    async def get(self, run_id: str) -> RunRecord:
        """The run as people see it: ``paused`` when its workflow is, with its own status."""
        run = await self.store.get_run(run_id)
        if run is None:
            recent = [r.run_id for r in await self.store.list_runs(limit=1000)]
            raise UnknownRun(
                f"no run {run_id!r} in {redact_url(self.store.url)}{did_you_mean(run_id, recent)}"
            )
        return (await self._shown([run]))[0]

    async def status(self, run_id: str) -> str:
        """The run's status as :meth:`get` shows it, in fewer reads."""
        run = await self.store.get_run(run_id)
        if run is None:
            raise UnknownRun(f"no run {run_id!r} in {redact_url(self.store.url)}")
        if run.status in _PAUSABLE and run.workflow in await self.store.paused_workflows():
            return "paused"
        return run.status

    async def require_workflow(
        self, name: str, *, also: Collection[str] = (), hint: str = ""
    ) -> None:
        """Raise :class:`UnknownWorkflow` unless ``name`` has runs or is one of ``also`` (the
        workflows of an app): a typed name that matches nothing is a mistake, not a filter."""
        missing = f"no workflow {name!r} has runs in {redact_url(self.store.url)}"
        await require_name(
            name, also, self.store.workflow_names, lambda m: UnknownWorkflow(m + hint), missing
        )

    async def list(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> builtins.list[RunRecord]:
        """Runs, newest first (shown as :meth:`get` shows them)."""
        if status is not None and status not in SHOWN_STATUSES:
            raise ConfigurationError(
                f"unknown status {status!r}; expected one of {', '.join(SHOWN_STATUSES)}"
            )
        if limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {limit}")
        if status != "paused":
            found = await self._shown(
                await self.store.list_runs(status=status, workflow=workflow, limit=limit)
            )
            return [r for r in found if status is None or r.status == status]
        paused = await self.store.paused_workflows()
        found = [
            r
            for name in sorted(paused)
            if workflow is None or name == workflow
            for stored in _PAUSABLE
            for r in await self.store.list_runs(status=stored, workflow=name, limit=limit)
        ]
        found.sort(key=lambda r: (-r.created_at, r.run_id))
        return await self._shown(found[:limit])

    async def _shown(self, runs: builtins.list[RunRecord]) -> builtins.list[RunRecord]:
        if not runs:
            return runs
        paused = await self.store.paused_workflows()
        statuses = await self.store.custom_statuses([r.run_id for r in runs])
        return [
            dataclasses.replace(
                r,
                status="paused" if r.workflow in paused and r.status in _PAUSABLE else r.status,
                custom_status=statuses.get(r.run_id),
            )
            for r in runs
        ]

    async def custom_status(self, run_id: str) -> Any:
        """What the run's workflow last gave ``ctx.set_status`` (None: nothing yet)."""
        run = await self.get(run_id)
        return None if run.custom_status is None else json.loads(run.custom_status)

    async def timeline(self, run_id: str, *, width: int | None = 80) -> Timeline:
        """The run and its entries, each summarized in at most ``width`` characters (None:
        whole)."""
        run = await self.get(run_id)
        entries = await self.store.load_entries(run_id)
        return Timeline(run, [_line(e, width) for e in entries])

    async def fork(
        self,
        run_id: str,
        entry: str,
        *,
        new_run_id: str | None = None,
        input: str | None = None,
        by: str,
    ) -> tuple[RunRecord, bool]:
        """A new run with ``run_id``'s journal up to ``entry`` (a key: "3", "0.1"), which
        replays what was recorded before it and runs ``entry`` and the rest afresh, on
        ``input`` (the run's input JSON, ``{"args": [...], "kwargs": {...}}``) or the
        original's. The same fork asked again returns the existing run and False."""
        if not by.strip():
            raise ConfigurationError("forking a run needs who (by=...)")
        source = await self.get(run_id)
        entries = await self.store.load_entries(run_id)
        cut = find_entry(entries, str(entry), run_id)
        kept = kept_before(entries, cut)
        text = source.input if input is None else input
        fork = self._pending(
            _new_run_id(new_run_id), source.workflow, text, source.code_version, source.tenant,
            journal_format=source.journal_format, forked_from=source.run_id,
            forked_entry=cut.key,
        )  # fmt: skip
        detail = {
            "from": source.run_id, "entry": cut.key, "kept": len(kept),
            "input_changed": text != source.input,
        }  # fmt: skip
        event = AuditEvent("run.forked", json.dumps(detail), by, fork.run_id, source.run_id)
        return await self.store.fork_run(fork, kept, event)

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


def _new_run_id(run_id: str | None) -> str:
    if run_id is None:
        return uuid.uuid4().hex
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ConfigurationError(
            f"bad run id {run_id!r}: use 1-200 letters, digits or . : @ / + = - _"
        )
    return run_id


def _line(e: Entry, width: int | None) -> TimelineEntry:
    duration = None
    if e.started_at is not None and e.finished_at is not None:
        duration = max(0.0, e.finished_at - e.started_at)
    return TimelineEntry(
        e.seq, e.kind, e.name, e.status, e.attempts, duration, summarize(e, width),
        entry=e.key, output=e.output, error=e.error,
    )  # fmt: skip


def summarize(e: Entry, width: int | None = 80) -> str:
    """A short human description of what an entry holds (whole when ``width`` is None)."""
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
    return text if width is None or len(text) <= width else text[: width - 3] + "..."
