"""Workers: claim runnable runs with a lease, drive them, keep leases alive, recover the dead.

A run is claimable when its ``wake_at`` has passed: new runs at once, parked runs when their
timer fires or an event arrives, and running runs when their owner's lease has expired.

Every ``CHECK_INTERVAL`` a worker looks for workers that are gone and frees their runs at once
instead of waiting for their leases: those the database knows are gone (PostgreSQL: the dead
process's session ended, on any machine; see ``Store.disconnected_workers``), those of its own
host whose process no longer exists, and those silent for ten leases. A restart after a crash
therefore resumes at once, and a survivor takes over a dead worker's runs within about a
second. Leases remain the fallback for a machine that vanished with its connections open.

A worker outlives database outages: it waits for the database to come back (and says so in
its log), whether it was started while the database was away (``wait_for_database``) or lost
it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from legato.clock import Clock
from legato.engine.definitions import WorkflowDef
from legato.engine.execution import Execution, Outcome
from legato.errors import ConfigurationError, DatabaseUnavailable, StoreError
from legato.evals.evaluators import EvaluatorDef

if TYPE_CHECKING:
    from legato.ai.registry import Models
    from legato.governance import Policy
from legato.store.base import Entry, RunRecord, Store, Wait, WorkerRecord

log = logging.getLogger("legato.worker")
T = TypeVar("T")
_INTERNAL_RETRY = 5.0  # seconds before a run that hit an unexpected error is tried again
CHECK_INTERVAL = 0.2  # seconds between looks for dead workers and cancelled runs
_CANCEL_LOOKBACK = 60.0
_PID_CHECK = 1.0  # ... by pid and silence, where the database can tell by sessions
_PAUSED_CHECK = 1.0  # seconds between reads of the paused workflows (sooner when notified)
_MAX_BACKOFF = 5.0  # seconds between attempts while the database is away
_DEREGISTER_TIMEOUT = 5.0  # at shutdown; runs not freed by then come back with their leases


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` exists (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def host_identity() -> str:
    """The host name plus the PID namespace: pids are comparable only within one namespace
    (two containers may share a host name but never a namespace). ``LEGATO_HOST_IDENTITY``
    overrides it: workers with different identities never judge each other by pid."""
    override = os.environ.get("LEGATO_HOST_IDENTITY")
    if override:
        return override
    name = socket.gethostname()
    try:
        return f"{name}#pidns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return name


async def wait_for_database(
    connect: Callable[[], Awaitable[T]], stop: asyncio.Event | None = None
) -> T | None:
    """``await connect()`` until the database answers; None if ``stop`` is set first.

    For long-running workers: a database that is down or restarting when the worker starts
    is waited for, with backoff up to 5 s and a warning per attempt. Other errors (a bad URL,
    a schema that is too new) are raised at once.
    """
    delay = 0.1
    while True:
        try:
            return await connect()
        except DatabaseUnavailable as exc:
            log.warning("%s; the worker keeps trying, next in %.1fs", exc, delay)
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return None
        delay = min(delay * 2, _MAX_BACKOFF)


class Worker:
    """Executes runs of the given workflows from one store until stopped."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        workflows: Mapping[str, WorkflowDef],
        concurrency: int = 100,
        lease: float = 30.0,
        poll_interval: float | None = None,
        grace: float = 10.0,
        payload_limit: int | None = None,
        policy: Policy | None = None,
        models: Models | None = None,
        evaluators: Sequence[EvaluatorDef] = (),
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
        if lease < 1:
            raise ConfigurationError(f"lease must be at least 1 second, got {lease}")
        if grace < 0:
            raise ConfigurationError(f"grace must not be negative, got {grace}")
        self.store = store
        self.clock = clock
        self.workflows = workflows
        self.names = sorted(workflows)
        self.concurrency = concurrency
        self.lease = lease
        # Databases that notify (PostgreSQL) need polling only as a fallback.
        self.poll_interval = poll_interval if poll_interval is not None else store.poll_interval
        self.grace = grace
        self.payload_limit = payload_limit
        self.policy = policy
        self.models = models
        self.evaluators = evaluators
        self.paused: frozenset[str] = frozenset()  # workflows under the kill switch
        self._paused_stale = True
        # When a schedule of these workflows next has work (None: none has), the runs whose
        # end lets a buffered tick start, and when the worker last asked (monotonic seconds:
        # schedules changed by other processes are seen within a poll interval).
        self._schedule_at: float | None = None
        self._schedule_blockers: set[str] = set()
        self._schedules_read = -math.inf
        self.hostname = host_identity()
        self.worker_id = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Sync steps run here: as many threads as runs held, so blocking I/O does not queue
        # behind asyncio's small default pool. Threads are created only when needed.
        self.executor = ThreadPoolExecutor(
            max_workers=min(concurrency, 256), thread_name_prefix="legato-step"
        )
        self.executions: dict[str, Execution] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        # Whether exit_when may have changed since it was last asked: after a wait or a run's
        # end, not after each claim, nor before the first (its caller has just asked).
        self._look = False
        self.completed = 0

    def notify(self) -> None:
        """Look for work now, and at what is paused (called on this worker's loop)."""
        self._paused_stale = True
        self._wake.set()

    async def _refresh_paused(self) -> None:
        """Which workflows are paused, for the runs held (claims skip paused ones anyway)."""
        self._paused_stale = False
        paused = frozenset(await self.store.paused_workflows())
        if paused != self.paused:
            log.info("paused workflows: %s", ", ".join(sorted(paused)) or "none")
            self.paused = paused

    def schedules_changed(self) -> None:
        """Read the schedules again (this process changed one; called on the worker's loop)."""
        self._schedules_read = -math.inf
        self._wake.set()

    async def _schedules(self, now: float) -> None:
        """Start the runs of due schedule ticks, and learn when the next one falls."""
        if self._schedule_at is not None and self._schedule_at <= now:
            started = await self.store.fire_schedules(self.names, now)
            if started:
                shown = ", ".join(started[:3]) + (
                    f" and {len(started) - 3} more" if len(started) > 3 else ""
                )
                log.info("schedules started %s", shown)
        elif time.monotonic() - self._schedules_read < self.poll_interval:
            return
        self._schedule_at, self._schedule_blockers = await self.store.schedule_wake(self.names)
        self._schedules_read = time.monotonic()

    @property
    def loaded(self) -> int:
        """Runs held in memory right now."""
        return len(self._tasks)

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        exit_when: Callable[[], Awaitable[bool]] | None = None,
        exit_when_idle: bool = False,
        skip_until: float | None = None,
    ) -> None:
        """Work until ``stop`` is set, ``exit_when()`` is true, or (optionally) idle.

        ``exit_when`` is asked after each wait and each end of a run, so not before the first
        claim: a caller that must not start work when it is already true asks it first.
        With a time-skipping clock, an idle worker moves the clock to the next timer, but not
        past ``skip_until`` when that is given.
        """
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        if stopper is not None:
            stopper.add_done_callback(lambda _: self._wake.set())
        stop_listening = self.store.on_wake(self.notify)  # also re-reads what is paused
        keepalive: asyncio.Task[None] | None = None
        backoff = 0.0
        try:
            while not (stop is not None and stop.is_set()):
                try:
                    if keepalive is None:  # registered before it claims anything
                        now = self.clock.now()
                        await self.store.register_worker(
                            WorkerRecord(self.worker_id, self.hostname, os.getpid(), now, now)
                        )
                        # A worker that runs until told looks for dead workers at once (a
                        # restart after a crash resumes their runs); one that runs a single
                        # run to its end (app.run) has better things to do first.
                        first = CHECK_INTERVAL if exit_when is not None else 0.0
                        keepalive = asyncio.create_task(self._keepalive(first))
                    if not await self._cycle(exit_when, exit_when_idle, skip_until):
                        break
                    backoff = 0.0
                except StoreError as exc:  # the database is away: wait, then carry on
                    backoff = min(max(backoff * 2, 0.1), _MAX_BACKOFF)
                    log.warning("worker %s: %s; retrying in %.1fs", self.worker_id, exc, backoff)
                    await self._sleep(backoff)
        finally:
            if stopper is not None:
                stopper.cancel()
            try:  # heartbeats go on through the grace period: leases must not expire under it
                await self._shutdown(registered=keepalive is not None)
            finally:
                if keepalive is not None:
                    keepalive.cancel()
                stop_listening()

    async def _cycle(
        self,
        exit_when: Callable[[], Awaitable[bool]] | None,
        exit_when_idle: bool,
        skip_until: float | None,
    ) -> bool:
        """Claim what is runnable, then wait for more; False when it is time to stop."""
        self._wake.clear()
        if exit_when is not None and self._look:
            self._look = False
            if await exit_when():
                return False
        if exit_when is None:  # app.run executes its own run; it leaves schedules to workers
            await self._schedules(self.clock.now())
        free = self.concurrency - len(self._tasks)
        if free <= 0:  # full: a finishing run wakes us
            await self._sleep(self.poll_interval)
            return True
        claim = await self.store.claim_next(
            self.worker_id, self.names, self.clock.now(), self.lease, free
        )
        for run in claim.runs:
            entries = claim.journals.get(run.run_id, [])
            stale = self._abandon(run.run_id)
            self._tasks[run.run_id] = asyncio.create_task(self._execute(run, entries, stale))
        if len(claim.runs) == free:  # there may be more: claim again once these started
            await asyncio.sleep(0)
            return True
        next_wake = claim.next_wake_at
        # A schedule's next tick is a timer like the runs' own, but a time-skipping clock
        # jumps to it only within a limit: schedules never run out of ticks.
        tick = self._schedule_at
        if tick is not None and (skip_until is not None or not self.clock.skips_time):
            next_wake = tick if next_wake is None else min(next_wake, tick)
        if not self._tasks:
            if (
                self.clock.skips_time
                and next_wake is not None
                and (skip_until is None or next_wake <= skip_until)
            ):
                self.clock.advance_to(next_wake)
                return True
            if exit_when_idle:
                return False
        # Sleep until the next timer is due, a notification or a local change wakes us, or the
        # poll interval passes (the fallback where the database cannot notify).
        timeout = self.poll_interval
        if next_wake is not None:
            timeout = min(timeout, max(0.001, next_wake - self.clock.now()))
        await self._sleep(timeout)
        return True

    async def _sleep(self, timeout: float) -> None:
        self._look = True
        if self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _abandon(self, run_id: str) -> asyncio.Task[None] | None:
        """Stop an execution of ``run_id`` this worker still holds although the run was just
        claimed again: it was cancelled, then retried, before this worker noticed the cancel
        (it looks every CHECK_INTERVAL), and claimed by this same worker, whose fenced writes
        would pass for both.
        The stale one writes nothing more; its queued writes land before the new one's."""
        stale = self._tasks.get(run_id)
        if stale is None:
            return None
        execution = self.executions.get(run_id)
        if execution is not None:
            execution.cancel()
        stale.cancel()
        return stale

    async def _execute(
        self, run: RunRecord, entries: list[Entry], stale: asyncio.Task[None] | None = None
    ) -> None:
        outcome: Outcome | None = None
        if stale is not None:
            await asyncio.gather(stale, return_exceptions=True)
        try:
            execution = Execution(
                store=self.store,
                clock=self.clock,
                run=run,
                workflow=self.workflows[run.workflow],
                workflows=self.workflows,
                entries=entries,
                owner=self.worker_id,
                executor=self.executor,
                payload_limit=self.payload_limit,
                policy=self.policy,
                paused=lambda: run.workflow in self.paused,
                models=self.models,
                evaluators=self.evaluators,
            )
            self.executions[run.run_id] = execution
            outcome = await execution.drive()
            if outcome in ("completed", "failed"):
                self.completed += 1
                log.info("run %s (%s) %s", run.run_id, run.workflow, outcome)
                if run.run_id in self._schedule_blockers:  # a buffered tick may start now
                    self.schedules_changed()
            elif outcome == "lost":
                # Usually someone else owns the run now and this is a no-op; but a write that
                # failed for another reason must not leave the run leased to us forever.
                await self.store.release(self.worker_id, run.run_id, self.clock.now())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "worker %s could not execute run %s; trying it again in %gs",
                self.worker_id, run.run_id, _INTERNAL_RETRY,
            )  # fmt: skip
            now = self.clock.now()
            wait = Wait(now + _INTERNAL_RETRY, "a retry after an internal error (see the logs)")
            with contextlib.suppress(StoreError):  # else its lease expires and it comes back
                await self.store.park(self.worker_id, run.run_id, wait, now)
        finally:
            if self._tasks.get(run.run_id) is asyncio.current_task():  # not a newer claim's
                self.executions.pop(run.run_id, None)
                self._tasks.pop(run.run_id, None)
            self._look = True
            self._wake.set()
        log.debug("run %s: %s", run.run_id, outcome)

    async def _keepalive(self, first: float) -> None:
        """Extend our leases every lease/3; look for dead workers every CHECK_INTERVAL, the
        first time after ``first`` seconds; keep up with what is paused."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.lease / 3
        next_paused = next_pids = loop.time()
        failing = False
        pause = first
        while True:
            await asyncio.sleep(pause)
            pause = CHECK_INTERVAL
            try:
                if loop.time() >= next_beat:
                    await self.store.heartbeat(
                        self.worker_id, list(self._tasks), self.clock.now(), self.lease
                    )
                    next_beat = loop.time() + self.lease / 3
                if self._paused_stale or loop.time() >= next_paused:
                    await self._refresh_paused()
                    next_paused = loop.time() + _PAUSED_CHECK
                if self.executions:
                    await self._stop_cancelled()
                by_pid = loop.time() >= next_pids
                await self._recover(by_pid)
                if by_pid:
                    next_pids = loop.time() + _PID_CHECK
                failing = False
            except Exception:  # the database may be briefly unavailable; keep trying
                if not failing:  # once per outage, not every CHECK_INTERVAL
                    log.exception("worker %s: heartbeat failed", self.worker_id)
                failing = True

    async def _stop_cancelled(self) -> None:
        """Stop at once the runs held here that were cancelled (not at their next write).

        Looks back a minute, for the clocks of the machines that cancel: a run seen again is
        stopped already."""
        for run_id in await self.store.cancelled_since(self.clock.now() - _CANCEL_LOOKBACK):
            execution = self.executions.get(run_id)
            if execution is not None and not execution.cancelled.is_set():
                log.info("run %s was cancelled; stopping it", run_id)
                execution.cancel()

    async def recover(self) -> int:
        """Release the runs of workers that are gone; return how many workers were gone."""
        return await self._recover(by_pid=True)

    async def _recover(self, by_pid: bool) -> int:
        """Free the runs of workers that are gone: those the database says are disconnected;
        and those of this host whose process is gone, or silent for 10 leases (looked for
        when ``by_pid``, and at every call where the database cannot tell by sessions)."""
        now = self.clock.now()
        disconnected = await self.store.disconnected_workers()
        gone: dict[str, str] = {w: "its database session ended" for w in disconnected or ()}
        if by_pid or disconnected is None:
            for worker in await self.store.list_workers():
                if worker.worker_id == self.worker_id or worker.worker_id in gone:
                    continue
                if worker.hostname == self.hostname and not pid_alive(worker.pid):
                    gone[worker.worker_id] = f"its process {worker.pid} is gone"
                elif now - worker.heartbeat_at > 10 * self.lease:
                    gone[worker.worker_id] = f"silent for {now - worker.heartbeat_at:.0f}s"
        gone.pop(self.worker_id, None)
        for worker_id, why in gone.items():
            log.info("worker %s is gone (%s); its runs are claimable now", worker_id, why)
            await self.store.deregister_worker(worker_id, now)
        if gone:
            self._wake.set()
        return len(gone)

    async def _shutdown(self, registered: bool = True) -> None:
        for execution in list(self.executions.values()):
            execution.stop()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks.values()), timeout=self.grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Runs still leased to us (hard-cancelled ones) become claimable at once.
        try:
            if registered:
                await asyncio.wait_for(
                    self.store.deregister_worker(self.worker_id, self.clock.now()),
                    _DEREGISTER_TIMEOUT,
                )
        except (StoreError, TimeoutError) as exc:  # then they come back when leases expire
            log.warning("worker %s could not deregister: %s", self.worker_id, exc or "timeout")
        self.executor.shutdown(wait=False, cancel_futures=True)
