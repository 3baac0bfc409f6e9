"""Schedule operations: add, inspect, pause, resume, trigger and delete schedules.

Workers fire the ticks (``Store.fire_schedules``); this is what people and front ends do.
Changes made by a person are audited; schedules declared in code are kept in step by workers.
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from legato.clock import Clock
from legato.crontab import Cron, check_policies
from legato.engine.definitions import WorkflowDef
from legato.errors import ConfigurationError, UnknownSchedule
from legato.store.base import AuditEvent, RunRecord, ScheduleStore
from legato.store.records import ScheduleRecord
from legato.timestamps import format_timestamp, utc

# A run id is the schedule's id, '@' and the tick: the schedule's own id has no '@'.
_SCHEDULE_ID = re.compile(r"^[\w.:/+=-]{1,150}$")


@dataclass(frozen=True)
class Schedule:
    """A schedule as ``app.schedules`` and ``legato schedules`` show it."""

    id: str
    workflow: str
    cron: str
    tz: str
    #: the runs' input: {"args": [...], "kwargs": {...}}
    input: dict[str, Any]
    catchup: str
    overlap: str
    #: "code" (declared with @app.schedule) or "api" (added at run time)
    source: str
    paused: bool
    next_at: datetime
    last_tick_at: datetime | None
    last_run_id: str | None
    #: overlap="buffer": the tick waiting for the previous run to end
    buffered_at: datetime | None
    fired: int
    skipped: int

    @classmethod
    def from_record(cls, r: ScheduleRecord) -> Schedule:
        def when(ts: float | None) -> datetime | None:
            return None if ts is None else utc(ts)

        return cls(r.schedule_id, r.workflow, r.cron, r.tz, json.loads(r.input), r.catchup,
                   r.overlap, r.source, r.paused, utc(r.next_at), when(r.last_tick_at),
                   r.last_run_id, when(r.buffered_at), r.fired, r.skipped)  # fmt: skip


@dataclass(eq=False)
class ScheduleOps:
    """``ops.schedules``."""

    store: ScheduleStore
    clock: Clock
    payload_limit: int | None

    async def put(
        self,
        workflow: WorkflowDef,
        cron: str,
        *,
        schedule_id: str | None = None,
        tz: str = "UTC",
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        catchup: str = "one",
        overlap: str = "skip",
        source: str = "api",
        by: str | None = None,
    ) -> tuple[Schedule, bool]:
        """Add a schedule, or change the one with that id; True when anything changed."""
        schedule_id = workflow.name if schedule_id is None else schedule_id
        if not isinstance(schedule_id, str) or not _SCHEDULE_ID.match(schedule_id):
            raise ConfigurationError(
                f"bad schedule id {schedule_id!r}: use 1-150 letters, digits or . : / + = - _"
            )
        timing = Cron(cron, tz)
        check_policies(catchup, overlap)
        now = self.clock.now()
        record = ScheduleRecord(
            schedule_id, workflow.name, cron, tz,
            workflow.encode_input(args, kwargs or {}, self.payload_limit),
            catchup, overlap, source, paused=False, next_at=timing.next_after(now),
            created_at=now, updated_at=now,
        )  # fmt: skip
        audit = None
        if by is not None:
            detail = {"workflow": workflow.name, "cron": cron, "tz": tz, "catchup": catchup,
                      "overlap": overlap}  # fmt: skip
            audit = self._event("schedule.put", schedule_id, by, detail)
        changed = await self.store.put_schedule(record, audit)
        return await self.get(schedule_id), changed

    async def get(self, schedule_id: str) -> Schedule:
        record = await self.store.get_schedule(schedule_id)
        if record is None:
            known = [s.schedule_id for s in await self.store.list_schedules()]
            raise UnknownSchedule(
                f"no schedule {schedule_id!r}; schedules: {', '.join(known) or 'none'}"
            )
        return Schedule.from_record(record)

    async def list(self) -> builtins.list[Schedule]:
        return [Schedule.from_record(r) for r in await self.store.list_schedules()]

    async def pause(self, schedule_id: str, *, by: str, reason: str = "paused") -> bool:
        """No tick fires until ``resume``; False when it was paused already."""
        return await self._set_paused(schedule_id, True, by, reason)

    async def resume(self, schedule_id: str, *, by: str, reason: str = "resumed") -> bool:
        """Fire again from the next tick (the ticks that fell while paused never fire)."""
        return await self._set_paused(schedule_id, False, by, reason)

    async def trigger(self, schedule_id: str, *, by: str) -> RunRecord:
        """Start a run of the schedule's workflow now, with its input, besides its ticks."""
        _require_by(by, "triggering a schedule")
        now = self.clock.now()
        run_id = f"{schedule_id}@manual-{format_timestamp(now, 'stamp')}"
        event = self._event("schedule.triggered", schedule_id, by, {"run_id": run_id})
        run = await self.store.trigger_schedule(schedule_id, run_id, now, event)
        if run is None:
            await self.get(schedule_id)  # raises UnknownSchedule with the ids there are
            raise AssertionError("unreachable")
        return run

    async def delete(self, schedule_id: str, *, by: str) -> None:
        _require_by(by, "deleting a schedule")
        event = self._event("schedule.deleted", schedule_id, by, {})
        if not await self.store.delete_schedule(schedule_id, self.clock.now(), event):
            await self.get(schedule_id)
            raise AssertionError("unreachable")

    async def _set_paused(self, schedule_id: str, paused: bool, by: str, reason: str) -> bool:
        _require_by(by, "pausing or resuming a schedule")
        schedule = await self.get(schedule_id)
        now = self.clock.now()
        kind = "schedule.paused" if paused else "schedule.resumed"
        event = self._event(kind, schedule_id, by, {"reason": reason})
        next_at = Cron(schedule.cron, schedule.tz).next_after(now)
        return await self.store.set_schedule_paused(schedule_id, paused, next_at, now, event)

    @staticmethod
    def _event(kind: str, schedule_id: str, by: str, detail: dict[str, Any]) -> AuditEvent:
        return AuditEvent(kind, json.dumps(detail), actor=by, subject=schedule_id)


def _require_by(by: str, doing: str) -> None:
    if not isinstance(by, str) or not by.strip():
        raise ConfigurationError(f"{doing} needs who does it (by=...)")
