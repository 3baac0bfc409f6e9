"""Workers: claim runnable runs with a lease, drive them, keep leases alive, recover the dead.

A run is claimable when its ``wake_at`` has passed: new runs at once, parked runs when their
timer fires or an event arrives, and running runs when their owner's lease has expired. A
worker that finds another worker of the same host whose process is gone releases that worker's
runs at once instead of waiting for the lease, so a restart after a crash resumes immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from legato.clock import Clock
from legato.engine.definitions import WorkflowDef
from legato.engine.execution import Execution, Outcome
from legato.errors import ConfigurationError, StoreError

if TYPE_CHECKING:
    from legato.ai.registry import Models
    from legato.governance import Policy
from legato.store.base import Entry, RunRecord, Store, Wait, WorkerRecord

log = logging.getLogger("legato.worker")
_INTERNAL_RETRY = 5.0  # seconds before a run that hit an unexpected error is tried again


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
    (two containers may share a host name but never a namespace)."""
    name = socket.gethostname()
    try:
        return f"{name}#pidns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return name


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
        self.paused: frozenset[str] = frozenset()  # workflows under the kill switch
        self._paused_checked = -1.0
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
        self.completed = 0

    def notify(self) -> None:
        """Look for work now, and at what is paused (called on this worker's loop)."""
        self._paused_checked = -1.0
        self._wake.set()

    async def _refresh_paused(self) -> None:
        """At most once a second (or at once when notified): which workflows are paused."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._paused_checked < 1.0:
            return
        self._paused_checked = loop.time()
        paused = frozenset(await self.store.paused_workflows())
        if paused != self.paused:
            log.info("paused workflows: %s", ", ".join(sorted(paused)) or "none")
            self.paused = paused

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

        With a time-skipping clock, an idle worker moves the clock to the next timer, but not
        past ``skip_until`` when that is given.
        """
        now = self.clock.now()
        await self.store.register_worker(
            WorkerRecord(self.worker_id, self.hostname, os.getpid(), now, now)
        )
        await self.recover()
        keepalive = asyncio.create_task(self._keepalive())
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        if stopper is not None:
            stopper.add_done_callback(lambda _: self._wake.set())
        stop_listening = self.store.on_wake(self.notify)  # also re-reads what is paused
        backoff = 0.0
        try:
            while not (stop is not None and stop.is_set()):
                try:
                    if not await self._cycle(exit_when, exit_when_idle, skip_until):
                        break
                    backoff = 0.0
                except StoreError as exc:  # the database is away: wait, then carry on
                    backoff = min(max(backoff * 2, 0.1), 5.0)
                    log.warning("worker %s: %s; retrying in %.1fs", self.worker_id, exc, backoff)
                    await self._sleep(backoff)
        finally:
            if stopper is not None:
                stopper.cancel()
            try:  # heartbeats go on through the grace period: leases must not expire under it
                await self._shutdown()
            finally:
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
        await self._refresh_paused()
        claimed = await self._claim()
        if exit_when is not None and await exit_when():
            return False
        if claimed:
            await asyncio.sleep(0)
            return True
        if len(self._tasks) >= self.concurrency:  # full: a finishing run wakes us
            await self._sleep(self.poll_interval)
            return True
        next_wake = await self.store.next_wake_at([n for n in self.names if n not in self.paused])
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
        if self._wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _claim(self) -> int:
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        names = [n for n in self.names if n not in self.paused]
        runs = await self.store.claim(self.worker_id, names, self.clock.now(), self.lease, free)
        # one query for all their journals, not one per run
        journals = await self.store.load_journals([r.run_id for r in runs]) if runs else {}
        for run in runs:
            entries = journals.get(run.run_id, [])
            self._tasks[run.run_id] = asyncio.create_task(self._execute(run, entries))
        return len(runs)

    async def _execute(self, run: RunRecord, entries: list[Entry]) -> None:
        outcome: Outcome | None = None
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
            )
            self.executions[run.run_id] = execution
            outcome = await execution.drive()
            if outcome in ("completed", "failed"):
                self.completed += 1
                log.info("run %s (%s) %s", run.run_id, run.workflow, outcome)
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
            self.executions.pop(run.run_id, None)
            self._tasks.pop(run.run_id, None)
            self._wake.set()
        log.debug("run %s: %s", run.run_id, outcome)

    async def _keepalive(self) -> None:
        """Extend our leases every lease/3; look for dead workers every second."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.lease / 3
        while True:
            await asyncio.sleep(min(1.0, self.lease / 3))
            try:
                if loop.time() >= next_beat:
                    await self.store.heartbeat(
                        self.worker_id, list(self._tasks), self.clock.now(), self.lease
                    )
                    next_beat = loop.time() + self.lease / 3
                await self.recover()
            except Exception:  # the database may be briefly unavailable; keep trying
                log.exception("worker %s: heartbeat failed", self.worker_id)

    async def recover(self) -> int:
        """Release the runs of workers that are gone; return how many workers were gone."""
        now = self.clock.now()
        gone = 0
        for worker in await self.store.list_workers():
            if worker.worker_id == self.worker_id:
                continue
            same_host_dead = worker.hostname == self.hostname and not pid_alive(worker.pid)
            silent = now - worker.heartbeat_at > 10 * self.lease
            if same_host_dead or silent:
                log.info("worker %s is gone; its runs are claimable now", worker.worker_id)
                await self.store.deregister_worker(worker.worker_id, now)
                gone += 1
        if gone:
            self._wake.set()
        return gone

    async def _shutdown(self) -> None:
        for execution in list(self.executions.values()):
            execution.stop()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks.values()), timeout=self.grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Runs still leased to us (hard-cancelled ones) become claimable at once.
        try:
            await self.store.deregister_worker(self.worker_id, self.clock.now())
        except StoreError as exc:  # they become claimable when their leases expire
            log.warning("worker %s could not deregister: %s", self.worker_id, exc)
        self.executor.shutdown(wait=False, cancel_futures=True)
