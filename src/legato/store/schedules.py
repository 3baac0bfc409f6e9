"""Schedules: workflows started on cron ticks, exactly once per tick whatever the workers.

Written once for both dialects (see ``dialect.py``). A worker fires what is due in one
transaction per call: it holds the due schedules' rows (PostgreSQL: ``FOR UPDATE``, so a second
worker waits, then sees the ticks already taken), starts each chosen tick's run under an id made
of the schedule's and the tick's (``daily@2026-12-07T08:00:00Z``: a second start of it is a
no-op), and moves the schedule to its next tick.
"""

from __future__ import annotations

from dataclasses import replace

from legato.crontab import Catchup, Cron, catch_up
from legato.store.audit import append_chain
from legato.store.dialect import Dialect, Tx, marks
from legato.store.records import (
    SCHEDULE_COLUMNS,
    TERMINAL,
    AuditEvent,
    RunRecord,
    ScheduleRecord,
    run_values,
)
from legato.store.runs import INSERT_RUN, cancel_tree, require_run
from legato.timestamps import format_timestamp

_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"


def schedule_record(row: tuple[object, ...]) -> ScheduleRecord:
    record = ScheduleRecord(*row)  # type: ignore[arg-type]
    return replace(record, paused=bool(record.paused))  # SQLite keeps booleans as 0 and 1


def tick_run_id(schedule_id: str, tick: float) -> str:
    """The id of the run a tick starts: the same for every worker that fires it."""
    return f"{schedule_id}@{format_timestamp(tick, 'stamp')}"


class SQLSchedules(Dialect):
    """The :class:`~legato.store.base.ScheduleStore` role."""

    async def put_schedule(self, schedule: ScheduleRecord, audit: AuditEvent | None) -> bool:
        """Add or update; an unchanged cron and zone keep the next tick and the history.
        True when something changed."""

        schedule_id = schedule.schedule_id

        async def work(tx: Tx) -> bool:
            # Workers that start together all store the code's schedules: the first inserts,
            # the others find its row (no check-then-insert race).
            inserted = await tx.execute(
                f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({marks(17)})"
                " ON CONFLICT (schedule_id) DO NOTHING",
                (schedule.schedule_id, schedule.workflow, schedule.cron, schedule.tz,
                 schedule.input, schedule.catchup, schedule.overlap, schedule.source,
                 schedule.paused, schedule.next_at, None, None, None, 0, 0,
                 schedule.created_at, schedule.updated_at),
            )  # fmt: skip
            if not inserted:
                old = await tx.one(
                    f"{_SELECT} WHERE schedule_id = ?{tx.for_update}", (schedule_id,)
                )
                before = schedule_record(old)
                same = (before.workflow, before.cron, before.tz, before.input, before.catchup,
                        before.overlap, before.source)  # fmt: skip
                if same == (schedule.workflow, schedule.cron, schedule.tz, schedule.input,
                            schedule.catchup, schedule.overlap, schedule.source):  # fmt: skip
                    return False
                keep = before.cron == schedule.cron and before.tz == schedule.tz
                next_at = before.next_at if keep else schedule.next_at
                await tx.execute(
                    "UPDATE schedules SET workflow = ?, cron = ?, tz = ?, input = ?,"
                    " catchup = ?, overlap = ?, source = ?, next_at = ?, updated_at = ?"
                    " WHERE schedule_id = ?",
                    (schedule.workflow, schedule.cron, schedule.tz, schedule.input,
                     schedule.catchup, schedule.overlap, schedule.source, next_at,
                     schedule.updated_at, schedule_id),
                )  # fmt: skip
            if audit is not None:
                await append_chain(tx, [audit], schedule.updated_at)
            await tx.notify()  # workers look at what is due again
            return True

        return await self._transact(work)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        rows = await self._select(f"{_SELECT} WHERE schedule_id = ?", (schedule_id,))
        return schedule_record(rows[0]) if rows else None

    async def list_schedules(self) -> list[ScheduleRecord]:
        return [schedule_record(r) for r in await self._select(f"{_SELECT} ORDER BY schedule_id")]

    async def delete_schedule(self, schedule_id: str, now: float, audit: AuditEvent) -> bool:
        async def work(tx: Tx) -> bool:
            if not await tx.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,)):
                return False
            await append_chain(tx, [audit], now)
            return True

        return await self._transact(work)

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, next_at: float, now: float, audit: AuditEvent
    ) -> bool:
        """Pause, or resume from ``next_at`` (ticks that fell while paused never fire).
        False when it was already so."""

        async def work(tx: Tx) -> bool:
            changed = await tx.execute(
                "UPDATE schedules SET paused = ?, next_at = CASE WHEN ? THEN next_at ELSE ? END,"
                " buffered_at = NULL, updated_at = ? WHERE schedule_id = ? AND paused = ?",
                (paused, paused, next_at, now, schedule_id, not paused),
            )
            if changed != 1:
                return False
            await append_chain(tx, [audit], now)
            await tx.notify()
            return True

        return await self._transact(work)

    async def schedule_wake(self, workflows: list[str]) -> tuple[float | None, set[str]]:
        """When a schedule of these workflows next has work (None: none has), and the runs
        whose end lets a buffered tick start."""
        if not workflows:
            return None, set()
        clause, params = self._any_of(workflows)
        rows = await self._select(
            "SELECT s.next_at, s.buffered_at, s.last_run_id, r.status FROM schedules s"
            " LEFT JOIN runs r ON r.run_id = s.last_run_id"
            f" WHERE NOT s.paused AND s.workflow {clause}",
            params,
        )
        wake: float | None = None
        blocking: set[str] = set()
        for next_at, buffered_at, last_run_id, status in rows:
            at = float(next_at)
            if buffered_at is not None and status is not None and status not in TERMINAL:
                blocking.add(last_run_id)
            elif buffered_at is not None:
                at = float(buffered_at)  # its previous run has ended: start it now
            wake = at if wake is None else min(wake, at)
        return wake, blocking

    async def fire_schedules(self, workflows: list[str], now: float) -> list[str]:
        """Start the runs of every due tick of these workflows' schedules; their ids."""
        if not workflows:
            return []
        clause, params = self._any_of(workflows)

        async def work(tx: Tx) -> list[str]:
            rows = await tx.all(
                f"{_SELECT} WHERE NOT paused AND workflow {clause}"
                f" AND (next_at <= ? OR buffered_at IS NOT NULL)"
                f" ORDER BY schedule_id{tx.for_update}",
                (*params, now),
            )
            started: list[str] = []
            for row in rows:
                started += await _fire(tx, schedule_record(row), now)
            if started:
                await tx.notify()
            return started

        return await self._transact(work)

    async def trigger_schedule(
        self, schedule_id: str, run_id: str, now: float, audit: AuditEvent
    ) -> RunRecord | None:
        """Start one run of the schedule now, outside its ticks (None: no such schedule)."""

        async def work(tx: Tx) -> RunRecord | None:
            row = await tx.one(f"{_SELECT} WHERE schedule_id = ?{tx.for_update}", (schedule_id,))
            if row is None:
                return None
            schedule = schedule_record(row)
            run = _run(schedule, run_id, now)
            await tx.execute(INSERT_RUN, run_values(run))
            await tx.execute(
                "UPDATE schedules SET last_run_id = ?, updated_at = ? WHERE schedule_id = ?",
                (run_id, now, schedule_id),
            )
            await append_chain(tx, [audit], now)
            await tx.notify()
            return run

        return await self._transact(work)


def _run(schedule: ScheduleRecord, run_id: str, now: float) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow=schedule.workflow,
        status="pending",
        input=schedule.input,
        wake_at=now,
        created_at=now,
        updated_at=now,
    )


async def _fire(tx: Tx, schedule: ScheduleRecord, now: float) -> list[str]:
    """One schedule's due ticks under its catch-up and overlap policies; the runs started."""
    cron = Cron(schedule.cron, schedule.tz)
    previous = schedule.last_run_id
    running = False
    if previous is not None:
        row = await tx.one("SELECT status FROM runs WHERE run_id = ?", (previous,))
        running = row is not None and row[0] not in TERMINAL
    ticks: list[float] = []
    buffered = schedule.buffered_at
    if buffered is not None and not running:  # the previous run ended: the buffered tick's turn
        ticks.append(buffered)
        buffered = None
    next_at = schedule.next_at
    last_tick = schedule.last_tick_at
    if next_at <= now:
        due = cron.ticks(next_at, now)
        policy: Catchup = schedule.catchup  # type: ignore[assignment]
        chosen = catch_up(policy, due, now)
        skipped = len(due) - len(chosen)
        ticks += chosen
        last_tick = due[-1] if due else last_tick
        next_at = cron.next_after(now)
    else:
        skipped = 0
    started: list[str] = []
    for tick in ticks:
        if running:
            if schedule.overlap == "skip":
                skipped += 1
                continue
            if schedule.overlap == "buffer":
                skipped += buffered is not None  # a newer tick replaces the one waiting
                buffered = tick
                continue
            if schedule.overlap == "cancel" and previous is not None:
                await cancel_tree(tx, await require_run(tx, previous, lock=True), now)
        run_id = tick_run_id(schedule.schedule_id, tick)
        await tx.execute(INSERT_RUN, run_values(_run(schedule, run_id, now)))
        started.append(run_id)
        previous, running = run_id, True
    await tx.execute(
        "UPDATE schedules SET next_at = ?, last_tick_at = ?, last_run_id = ?, buffered_at = ?,"
        " fired = fired + ?, skipped = skipped + ?, updated_at = ? WHERE schedule_id = ?",
        (next_at, last_tick, previous, buffered, len(started), skipped, now, schedule.schedule_id),
    )
    return started
