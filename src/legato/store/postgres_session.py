"""PostgreSQL: the one session a process keeps open for as long as it uses the store.

It does what no pooled connection can, because each needs a session that lives exactly as long
as the process:

- **Wake-ups.** It LISTENs on the store's channel: a NOTIFY from any process (a run started, an
  event sent, a run released) wakes this process's workers at once.
- **Worker liveness.** For every worker registered through the store it holds a session-level
  advisory lock keyed on the worker's id. When a process dies (SIGKILL, OOM kill, crash), its
  kernel closes its connections and PostgreSQL drops their locks with them, so a registered
  worker whose lock nobody holds is gone, and any worker on any machine can see it without
  waiting for leases (:meth:`Session.disconnected`). A machine that vanishes without closing
  its connections (power loss, a network partition) keeps its session until TCP gives up; its
  runs come back when their leases expire.
- **Waiting for a run's end.** A process waiting for a result holds a shared lock on the run's
  key and listens on the end channel. The transaction that ends a run tries that key
  exclusively (``END_NOTICE``) and, only when it cannot get it because someone waits, NOTIFYs
  the end. It holds the try-lock until it commits, so a waiter arriving meanwhile gets its lock
  after the commit and then reads the ended run: no end is missed, and ending a run nobody
  waits for costs no NOTIFY (a NOTIFY serializes commits across the server).

When the session drops it reconnects at once, then with backoff up to a second, takes its locks
again and wakes its workers and waiters (they may have missed notifications). A store judges
other workers by their locks only when its session has been up for ``GRACE`` seconds after a
reconnect and the server for as long, so that workers that are merely reconnecting after an
outage are not taken for dead; and only a lock seen free twice, ``CONFIRM`` seconds apart.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

from legato.store.base import WorkerRecord

log = logging.getLogger("legato.store")
Conn = AsyncConnection[Any]

GRACE = 5.0  # seconds after a reconnect (or a server start) before judging others by locks
CONFIRM = 0.15  # a worker's lock must be seen free twice, at least this far apart
_MAX_DELAY = 1.0  # reconnect backoff cap: well under GRACE, so the living are back in time
_RETRY_LOCK = 0.01  # a lock we could not take (someone probing it that instant): try again
WORKER_SEED = 7_263_189_101  # hashtextextended seeds: worker keys and run keys never mix
RUN_SEED = 7_263_189_102

_HOLD_WORKERS = """
WITH w AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS w(worker_id text, hostname text, pid int,
                                                   started_at float8, heartbeat_at float8)
), ins AS (
    INSERT INTO workers (worker_id, hostname, pid, started_at, heartbeat_at)
    SELECT worker_id, hostname, pid, started_at, heartbeat_at FROM w
    ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
)
SELECT worker_id FROM w WHERE pg_try_advisory_lock(hashtextextended(worker_id, %s))
"""
# A worker of this process stops: its row goes, the runs it still holds are freed in their
# place in the queue (and the workers are told), and its lock is given back. (A probe that
# finds the lock free before this commits still sees the row; it takes two sightings, and by
# then the row is gone.)
_DEREGISTER = """
WITH gone AS (DELETE FROM workers WHERE worker_id = %(worker)s),
freed AS (
    UPDATE runs SET status = 'pending', owner = NULL, wake_at = LEAST(created_at, %(now)s),
        updated_at = %(now)s
    WHERE owner = %(worker)s AND status = 'running' RETURNING 1
), told AS (
    SELECT pg_notify(%(channel)s, '') WHERE EXISTS (SELECT 1 FROM freed)
)
SELECT (SELECT count(*) FROM told),
       %(held)s AND pg_advisory_unlock(hashtextextended(%(worker)s, %(seed)s))
"""
_RELEASE_WORKERS = "SELECT pg_advisory_unlock(hashtextextended(k, %s)) FROM unnest(%s::text[]) AS k"
_WATCH_RUNS = (
    "SELECT k FROM unnest(%s::text[]) AS k"
    " WHERE pg_try_advisory_lock_shared(hashtextextended(k, %s))"
)
_UNWATCH_RUNS = (
    "SELECT pg_advisory_unlock_shared(hashtextextended(k, %s)) FROM unnest(%s::text[]) AS k"
)
# NOTIFY the end of the runs that ``{ended}`` selects to whoever waits for them (holds a shared
# lock on the run's key). Parameters: the end channel, those of ``{ended}``, RUN_SEED.
END_NOTICE = (
    "SELECT pg_notify(%s, k) FROM ({ended}) AS ended(k)"
    " WHERE NOT pg_try_advisory_xact_lock(hashtextextended(k, %s))"
)
# Registered workers whose lock nobody holds, once the server has been up for GRACE. The
# probe takes each free lock for the statement's instant only (a transaction lock).
DISCONNECTED = """
SELECT worker_id FROM workers
WHERE now() - pg_postmaster_start_time() > make_interval(secs => %s)
  AND pg_try_advisory_xact_lock(hashtextextended(worker_id, %s))
"""


class Session:
    """The process's long-lived session (see the module docstring); one per store."""

    def __init__(
        self,
        url: str,
        channel: str,
        end_channel: str,
        configure: Callable[[Conn], Awaitable[None]] | None,
    ) -> None:
        self.url = url
        self.channel = channel
        self.end_channel = end_channel
        #: sets the session up after each connect (durability, like the journal's connection)
        self.configure = configure
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None  # resolved to wake an idle session
        self._dirty = False  # something was wanted since the session last caught up
        self._listeners: list[Callable[[], None]] = []
        self._workers: dict[str, WorkerRecord] = {}  # wanted: registered through this store
        self._held_workers: set[str] = set()  # locked on the current connection
        self._leaving: dict[str, float] = {}  # workers to deregister -> the time they left
        self._runs: Counter[str] = Counter()  # wanted: runs someone here waits for
        self._held_runs: set[str] = set()
        self._unwatchable: set[str] = set()  # runs whose shared lock could not be taken
        self._ended: dict[str, set[asyncio.Future[None]]] = {}
        self._synced: list[asyncio.Future[None]] = []
        self._retry_at: float | None = None
        self._since: float | None = None  # monotonic time the current connection was ready
        self._connections = 0
        self._suspects: dict[str, float] = {}  # worker -> when its lock was first seen free

    # -- what the store asks -------------------------------------------------------------
    def on_wake(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        self._start()

        def stop() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return stop

    async def hold_worker(self, worker: WorkerRecord, timeout: float) -> bool:
        """Register ``worker`` and hold its lock; False when the session could not do it
        within ``timeout``: then the worker is not registered (whatever part of it was done
        is undone once the session is back), and the caller may try again."""
        self._leaving.pop(worker.worker_id, None)  # a new try cancels the undoing
        self._workers[worker.worker_id] = worker
        if await self._sync(timeout):
            return True
        if self._workers.pop(worker.worker_id, None) is not None:
            self._leaving[worker.worker_id] = worker.heartbeat_at
        return False

    def beat(self, worker_id: str, now: float) -> None:
        """Keep the time a re-registration after a reconnect would write."""
        worker = self._workers.get(worker_id)
        if worker is not None:
            self._workers[worker_id] = WorkerRecord(
                worker.worker_id, worker.hostname, worker.pid, worker.started_at, now
            )

    def holds(self, worker_id: str) -> bool:
        return worker_id in self._workers

    async def release_worker(self, worker_id: str, now: float, timeout: float) -> bool:
        """Deregister a worker of this process: delete its row, free the runs it holds, then
        give its lock back. False when the session could not do it within ``timeout`` (it
        does it once it is back)."""
        self._workers.pop(worker_id, None)
        self._leaving[worker_id] = now
        return await self._sync(timeout)

    def reliable(self) -> bool:
        """Whether this session's view of others' locks can be trusted now: connected, and
        not just reconnected (others may be reconnecting too)."""
        if self._since is None:
            return False
        return self._connections == 1 or time.monotonic() - self._since >= GRACE

    def confirm(self, free: list[str]) -> list[str]:
        """The workers seen free now that were seen free at a check CONFIRM or more ago."""
        now = time.monotonic()
        seen = {w: self._suspects.get(w, now) for w in free if w not in self._workers}
        self._suspects = seen
        return [w for w, first in seen.items() if now - first >= CONFIRM]

    async def watch(self, run_id: str, timeout: float) -> asyncio.Future[None] | None:
        """Watch ``run_id``: returns a future that resolves when its end is announced (or the
        session reconnected); None when the run cannot be watched (poll instead). The caller
        must read the run after this returns and call ``unwatch`` when done."""
        self._runs[run_id] += 1
        fut = self.renew(run_id, None)  # before the lock: no notice after it is missed
        if (run_id in self._held_runs or await self._sync(timeout)) and (
            run_id not in self._unwatchable
        ):
            return fut
        self._ended.get(run_id, set()).discard(fut)
        return None

    def unwatch(self, run_id: str, fut: asyncio.Future[None] | None) -> None:
        """The caller no longer waits for ``run_id`` (after ``watch``, whatever it returned)."""
        waiting = self._ended.get(run_id, set())
        if fut is not None:
            waiting.discard(fut)
        if not waiting:
            self._ended.pop(run_id, None)
        self._runs[run_id] -= 1
        if self._runs[run_id] <= 0:
            del self._runs[run_id]
            self._unwatchable.discard(run_id)
            self._nudge()

    def renew(self, run_id: str, old: asyncio.Future[None] | None) -> asyncio.Future[None]:
        """A fresh future for the next end notice of a run still watched."""
        waiting = self._ended.setdefault(run_id, set())
        if old is not None:
            waiting.discard(old)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.add(fut)
        return fut

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- the session ---------------------------------------------------------------------
    def _start(self) -> None:
        if self._task is None:
            # a fresh context: the session belongs to the store, not to whoever started it
            self._task = asyncio.get_running_loop().create_task(
                self._run(), context=contextvars.Context()
            )

    async def _sync(self, timeout: float) -> bool:
        """Wait until the session has caught up with what is wanted now."""
        self._start()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._synced.append(fut)
        self._nudge()
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return False
        finally:
            if fut in self._synced:
                self._synced.remove(fut)
        return True

    async def _run(self) -> None:
        delay, failures = 0.0, 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with conn:
                    await self._open(conn)
                    if failures:
                        log.info("LISTEN connection back after %d attempt(s)", failures)
                    delay, failures = 0.0, 0
                    await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._since = None
                failures += 1
                # the first failure and every 30th after it: an outage must not flood the log
                level = logging.WARNING if failures % 30 == 1 else logging.DEBUG
                log.log(level, "LISTEN connection lost (%s); reconnecting in %.1fs",
                        _reason(exc), delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, 0.1), _MAX_DELAY)

    async def _open(self, conn: Conn) -> None:
        if self.configure is not None:
            await self.configure(conn)
        for channel in (self.channel, self.end_channel):
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self._held_workers.clear()
        self._held_runs.clear()
        self._unwatchable.clear()
        await self._reconcile(conn)
        self._connections += 1
        self._since = time.monotonic()
        # We may have missed notifications while away: everyone looks again.
        self._wake_all()
        for waiting in list(self._ended.values()):
            for fut in list(waiting):
                if not fut.done():
                    fut.set_result(None)

    async def _serve(self, conn: Conn) -> None:
        """Between commands the session only reads: notifications, or the end of the
        connection (a dead server is noticed at once, and the locks are taken again). The
        reading is done here, on the socket, so that a command does not have to interrupt a
        waiting task; notifications that arrive during a command reach the same handler."""
        loop = asyncio.get_running_loop()
        conn.add_notify_handler(self._on_notice)
        fd = conn.pgconn.socket
        while True:
            self._dirty = False
            await self._reconcile(conn)
            if self._dirty:  # wanted more while we were at it
                continue
            wakeup: asyncio.Future[None] = loop.create_future()
            self._wakeup = wakeup
            loop.add_reader(fd, _resolve, wakeup)
            timer = None
            if self._retry_at is not None:
                timer = loop.call_at(
                    loop.time() + max(0.0, self._retry_at - time.monotonic()), _resolve, wakeup
                )
            try:
                await wakeup
            finally:
                self._wakeup = None
                loop.remove_reader(fd)
                if timer is not None:
                    timer.cancel()
            self._read(conn)

    def _read(self, conn: Conn) -> None:
        """Take what the server sent: notifications go to ``_on_notice``; a closed
        connection raises (and the session reconnects)."""
        pgconn = conn.pgconn
        pgconn.consume_input()
        while (notice := pgconn.notifies()) is not None:
            encoding = conn.info.encoding
            self._on_notice(
                psycopg.Notify(
                    notice.relname.decode(encoding), notice.extra.decode(encoding), notice.be_pid
                )
            )
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            raise psycopg.OperationalError("the server closed the connection")

    def _on_notice(self, notice: psycopg.Notify) -> None:
        if notice.channel == self.end_channel:
            for fut in list(self._ended.get(notice.payload, ())):
                if not fut.done():
                    fut.set_result(None)
        else:
            self._wake_all()

    def _nudge(self) -> None:
        """Something is wanted: the session acts on it now, or after what it is doing."""
        self._dirty = True
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _reconcile(self, conn: Conn) -> None:
        """Take the locks that are wanted and not held, give back those held and not wanted."""
        synced, self._synced = self._synced, []  # wants added from here on: the next pass
        self._retry_at = None
        new = [w for k, w in self._workers.items() if k not in self._held_workers]
        if new:
            rows = json.dumps([
                {"worker_id": w.worker_id, "hostname": w.hostname, "pid": w.pid,
                 "started_at": w.started_at, "heartbeat_at": w.heartbeat_at}
                for w in new
            ])  # fmt: skip
            cur = await conn.execute(_HOLD_WORKERS, (rows, WORKER_SEED))
            self._held_workers.update(r[0] for r in await cur.fetchall())
            if len(self._held_workers) < len(self._workers):
                self._retry_at = time.monotonic() + _RETRY_LOCK
        for worker_id, now in list(self._leaving.items()):
            params = {"worker": worker_id, "now": now, "channel": self.channel,
                      "held": worker_id in self._held_workers, "seed": WORKER_SEED}  # fmt: skip
            await conn.execute(_DEREGISTER, params)
            self._held_workers.discard(worker_id)
            del self._leaving[worker_id]
        gone = [k for k in self._held_workers if k not in self._workers]
        if gone:
            await conn.execute(_RELEASE_WORKERS, (WORKER_SEED, gone))
            self._held_workers.difference_update(gone)
        await self._reconcile_runs(conn)
        for fut in synced:
            if not fut.done():
                fut.set_result(None)

    async def _reconcile_runs(self, conn: Conn) -> None:
        wanted = [k for k in self._runs if k not in self._held_runs and k not in self._unwatchable]
        for attempt in range(3):  # an ending transaction holds the key until it commits
            if not wanted:
                break
            cur = await conn.execute(_WATCH_RUNS, (wanted, RUN_SEED))
            got = {r[0] for r in await cur.fetchall()}
            self._held_runs.update(got)
            wanted = [k for k in wanted if k not in got]
            if wanted and attempt < 2:
                await asyncio.sleep(0.001)
        # Still not: an ending transaction that is slow to commit, or a key that collides
        # with a worker's lock. Those waiters poll instead (a collision would block forever).
        self._unwatchable.update(wanted)
        gone = [k for k in self._held_runs if k not in self._runs]
        if gone:
            await conn.execute(_UNWATCH_RUNS, (RUN_SEED, gone))
            self._held_runs.difference_update(gone)

    def _wake_all(self) -> None:
        for callback in list(self._listeners):
            callback()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
