"""Schedules: stored, changed, paused, fired once per tick under their policies, audited."""

from __future__ import annotations

from dataclasses import replace

from legato.store.base import AuditEvent, Store
from legato.store.records import ScheduleRecord
from legato.testing.conformance.records import NOW, WF, audit_chain, claim_one

HOUR = 3600.0
# NOW is 2027-01-15T08:00:00Z: on the hour, so hourly ticks fall on NOW + k hours
ON_THE_HOUR = NOW - NOW % HOUR


def schedule(schedule_id: str = "s", **fields: object) -> ScheduleRecord:
    values: dict[str, object] = {
        "workflow": WF, "cron": "0 * * * *", "tz": "UTC", "input": '{"args":[],"kwargs":{}}',
        "catchup": "one", "overlap": "allow", "source": "api", "paused": False,
        "next_at": ON_THE_HOUR + HOUR, "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    values.update(fields)
    return ScheduleRecord(schedule_id, **values)  # type: ignore[arg-type]


def _event(kind: str, schedule_id: str = "s") -> AuditEvent:
    return AuditEvent(kind, "{}", "ops", None, schedule_id)


async def check_put_adds_updates_and_keeps_the_next_tick(store: Store) -> None:
    assert await store.list_schedules() == []
    assert await store.put_schedule(schedule(), _event("schedule.put")) is True
    assert await store.put_schedule(schedule(), None) is False  # the same again: no change
    stored = await store.get_schedule("s")
    assert stored == schedule()
    # a new input keeps the next tick; a new cron takes the one given
    moved = schedule(input='{"args":[1],"kwargs":{}}', next_at=NOW + 99)
    assert await store.put_schedule(moved, None) is True
    assert (await store.get_schedule("s")) == replace(moved, next_at=ON_THE_HOUR + HOUR)
    assert await store.put_schedule(schedule(cron="30 * * * *", next_at=NOW + 1800), None)
    assert (await store.get_schedule("s")).next_at == NOW + 1800  # type: ignore[union-attr]
    await store.put_schedule(schedule("a"), None)
    assert [s.schedule_id for s in await store.list_schedules()] == ["a", "s"]
    assert await store.get_schedule("nope") is None
    assert [r.kind for r in await audit_chain(store)] == ["schedule.put"]


async def check_due_ticks_start_runs_named_by_tick_once(store: Store) -> None:
    await store.put_schedule(schedule(catchup="all"), None)
    assert await store.schedule_wake([WF]) == (ON_THE_HOUR + HOUR, set())
    assert await store.schedule_wake(["other"]) == (None, set())
    assert await store.fire_schedules([WF], ON_THE_HOUR + HOUR - 1) == []  # not yet
    later = ON_THE_HOUR + 3 * HOUR + 5
    started = await store.fire_schedules([WF], later)
    assert started == ["s@2027-01-15T09:00:00Z", "s@2027-01-15T10:00:00Z",
                       "s@2027-01-15T11:00:00Z"]  # fmt: skip
    assert await store.fire_schedules([WF], later) == []  # those ticks are taken
    runs = [await store.get_run(r) for r in started]
    assert all(r is not None and r.status == "pending" and r.wake_at == later for r in runs)
    stored = await store.get_schedule("s")
    assert stored is not None
    assert (stored.next_at, stored.last_tick_at, stored.last_run_id, stored.fired) == (
        ON_THE_HOUR + 4 * HOUR, ON_THE_HOUR + 3 * HOUR, started[-1], 3)  # fmt: skip


async def check_overlap_skip_and_buffer_wait_for_the_previous_run(store: Store) -> None:
    await store.put_schedule(schedule("k", overlap="skip"), None)
    await store.put_schedule(schedule("b", overlap="buffer"), None)
    first = ON_THE_HOUR + HOUR
    assert sorted(await store.fire_schedules([WF], first)) == [
        "b@2027-01-15T09:00:00Z", "k@2027-01-15T09:00:00Z"]  # fmt: skip
    assert await store.fire_schedules([WF], first + HOUR) == []  # both still pending
    skipping, buffering = await store.get_schedule("k"), await store.get_schedule("b")
    assert skipping is not None and buffering is not None
    assert (skipping.skipped, skipping.buffered_at) == (1, None)
    assert (buffering.skipped, buffering.buffered_at) == (0, first + HOUR)
    wake = await store.schedule_wake([WF])
    assert wake == (first + 2 * HOUR, {"b@2027-01-15T09:00:00Z"})
    await claim_one(store, "w", "b@2027-01-15T09:00:00Z", first + HOUR)
    assert await store.finish_run("w", "b@2027-01-15T09:00:00Z", "completed", "1", first + HOUR)
    assert await store.schedule_wake([WF]) == (first + HOUR, set())  # the buffered tick is due
    assert await store.fire_schedules([WF], first + HOUR + 1) == ["b@2027-01-15T10:00:00Z"]


async def check_overlap_cancel_cancels_the_previous_run(store: Store) -> None:
    await store.put_schedule(schedule(overlap="cancel"), None)
    first = ON_THE_HOUR + HOUR
    [previous] = await store.fire_schedules([WF], first)
    assert await store.fire_schedules([WF], first + HOUR) == ["s@2027-01-15T10:00:00Z"]
    cancelled = await store.get_run(previous)
    assert cancelled is not None and cancelled.status == "cancelled"


async def check_pause_resume_delete_and_trigger(store: Store) -> None:
    await store.put_schedule(schedule(), None)
    resume_at = ON_THE_HOUR + 5 * HOUR
    assert await store.set_schedule_paused("s", True, 0.0, NOW, _event("schedule.paused"))
    assert not await store.set_schedule_paused("s", True, 0.0, NOW, _event("schedule.paused"))
    assert await store.schedule_wake([WF]) == (None, set())
    assert await store.fire_schedules([WF], resume_at) == []  # paused: nothing fires
    assert await store.set_schedule_paused("s", False, resume_at, NOW, _event("schedule.resumed"))
    paused = await store.get_schedule("s")
    assert paused is not None and (paused.paused, paused.next_at) == (False, resume_at)
    run = await store.trigger_schedule("s", "s@manual", NOW, _event("schedule.triggered"))
    assert run is not None and run.run_id == "s@manual" and run.workflow == WF
    assert await store.get_run("s@manual") is not None
    assert (await store.get_schedule("s")).last_run_id == "s@manual"  # type: ignore[union-attr]
    assert await store.trigger_schedule("x", "x@manual", NOW, _event("t", "x")) is None
    assert await store.delete_schedule("s", NOW, _event("schedule.deleted"))
    assert not await store.delete_schedule("s", NOW, _event("schedule.deleted"))
    assert await store.get_schedule("s") is None
    kinds = [r.kind for r in await audit_chain(store)]
    assert kinds == ["schedule.paused", "schedule.resumed", "schedule.triggered",
                     "schedule.deleted"]  # fmt: skip
