"""The PostgreSQL store: many workers on many machines, coordinated only through the database.

- Claims use ``FOR UPDATE SKIP LOCKED``, so workers never wait on each other's rows.
- Journal writes from all runs of a process are grouped: every upsert queued while the previous
  batch was committing goes out as *one* statement (a JSON array, fenced by a join on the
  run's owner), so a thousand concurrent runs cost a handful of round trips; a write alone (a
  run stepping by itself) is a plain single-row upsert with the same fence.
- ``LISTEN``/``NOTIFY`` wakes workers when a run becomes claimable; polling stays as a fallback.
  One long-lived session per process listens, and holds an advisory lock per registered worker
  so that a dead worker's runs are taken over at once on any machine (``postgres_session``).
- When the database goes away (restart, failover), operations retry with backoff for
  ``reconnect_timeout`` seconds; the journal's writes are idempotent, so a retried batch whose
  first commit did land changes nothing.

Tables live in the connection's current schema: ``?options=-csearch_path%3Dmyschema`` in the
URL gives each application (or test) its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from legato.errors import DatabaseUnavailable, LegatoError, StoreError
from legato.store.dialect import Tx, Work, redact_url
from legato.store.journal import ENTRY_UPSERT
from legato.store.migrations import check_version, migrations
from legato.store.postgres_session import (
    DISCONNECTED,
    END_NOTICE,
    GRACE,
    RUN_SEED,
    WORKER_SEED,
    Session,
)
from legato.store.records import (
    ENTRY_COLUMNS,
    RUN_COLUMNS,
    TERMINAL,
    Claim,
    Entry,
    RunRecord,
    WorkerRecord,
    entry_values,
    run_values,
)
from legato.store.runs import require_run
from legato.store.sqlstore import SQLStore

log = logging.getLogger("legato.store")
T = TypeVar("T")
Conn = AsyncConnection[Any]
_ADVISORY_MIGRATE = 7_263_189_041  # pg_advisory_xact_lock key serializing migrations
_AUDIT_LOCK = 7_263_189_042  # pg_advisory_xact_lock key serializing the audit chain

_RUN_COLS = RUN_COLUMNS
_ENTRY_COLS = ENTRY_COLUMNS
# Journal writes are fenced on the run's owner: a row of a run this worker no longer owns is
# not written. The fence takes a share lock on the run's row, not a snapshot read: a claim
# that moves the run to another worker either waits for this write or is seen by it (and then
# the row is not written).
#
# A batch travels as one JSON array (one parameter, serialized by the C json module).
_UPSERT_MANY = f"""
INSERT INTO entries ({_ENTRY_COLS})
SELECT v.run_id, v.seq, v.kind, v.name, v.status, v.input, v.output, v.error, v.attempts,
       v.started_at, v.finished_at, v.wake_at, COALESCE(v.branch, ''), v.position
FROM jsonb_to_recordset(%s::jsonb)
     AS v(run_id text, seq int, kind text, name text, status text, input text, output text,
          error text, attempts int, started_at float8, finished_at float8, wake_at float8,
          owner text, branch text, position int)
JOIN (
    SELECT r.run_id, r.owner FROM runs r
    WHERE r.status = 'running'
      AND (r.run_id, r.owner) IN (
          SELECT x->>'run_id', x->>'owner' FROM jsonb_array_elements(%s::jsonb) x
      )
    FOR SHARE
) owned ON owned.run_id = v.run_id AND owned.owner = v.owner
{ENTRY_UPSERT}
RETURNING run_id, seq
"""
# The same write for a batch of one entry (a run stepping alone, the common case): plain
# parameters, nothing to parse, and the row count tells whether it was written.
_UPSERT_ONE = f"""
INSERT INTO entries ({_ENTRY_COLS})
SELECT %s::text, %s::int, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text,
       %s::int, %s::float8, %s::float8, %s::float8, COALESCE(%s::text, ''), %s::int
FROM runs r WHERE r.run_id = %s AND r.owner = %s AND r.status = 'running'
FOR SHARE
{ENTRY_UPSERT}
"""
_INSERT_RUNS = f"""
WITH ins AS (
    INSERT INTO runs ({RUN_COLUMNS})
    SELECT v.* FROM jsonb_to_recordset(%s::jsonb) AS v(
        run_id text, workflow text, status text, input text, output text, error text,
        parent_run_id text, parent_seq int, code_version text, owner text, wake_at float8,
        waiting_on text, created_at float8, updated_at float8, finished_at float8,
        journal_format int, tenant text, forked_from text, forked_entry text)
    ON CONFLICT (run_id) DO NOTHING
    RETURNING run_id
), woke AS (SELECT pg_notify(%s, '') WHERE EXISTS (SELECT 1 FROM ins))
SELECT run_id FROM ins, (SELECT count(*) FROM woke) AS notified
"""
# Claim due runs, with their journals and the next time another run of these workflows is due,
# in one round trip. Paused workflows are skipped here, so a pause holds from its commit on.
# The MIN sees runs as they were before the claim (one snapshot): the claimed ones are left out.
_CLAIM_NEXT = f"""
WITH due AS (
    SELECT run_id FROM runs
    WHERE wake_at <= %(now)s AND workflow = ANY(%(workflows)s)
      AND workflow NOT IN (SELECT workflow FROM paused)
    ORDER BY wake_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE runs r SET status = 'running', owner = %(owner)s, wake_at = %(until)s,
        waiting_on = NULL, updated_at = %(now)s
    FROM due WHERE r.run_id = due.run_id
    RETURNING {", ".join("r." + c.strip() for c in RUN_COLUMNS.split(","))}
), next AS (
    SELECT MIN(wake_at) AS at FROM runs
    WHERE wake_at IS NOT NULL AND workflow = ANY(%(workflows)s)
      AND workflow NOT IN (SELECT workflow FROM paused)
      AND run_id NOT IN (SELECT run_id FROM claimed)
)
SELECT next.at, c.*, (
    SELECT json_agg(json_build_array(e.seq, e.kind, e.name, e.status, e.input, e.output,
                                     e.error, e.attempts, e.started_at, e.finished_at,
                                     e.wake_at, e.branch, e.position) ORDER BY e.seq)
    FROM entries e WHERE e.run_id = c.run_id
) FROM next LEFT JOIN claimed c ON true
"""


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(*row)


def _transient(exc: BaseException) -> bool:
    """Errors that a reconnect and a retry can cure."""
    return isinstance(exc, psycopg.OperationalError | PoolTimeout)


class _JournalBatch:
    """Groups journal upserts of concurrent runs into one statement per round trip.

    The batches go over a connection of their own, in autocommit: one statement is atomic, so
    a batch costs exactly one round trip (and, with ``durability="full"``, one WAL flush)
    however many runs it carries. With ``durability="normal"`` that connection commits with
    ``synchronous_commit=off`` (see ``PostgresStore.open``).

    A write has two futures. The caller's resolves after the batch's commit, with whether the
    row was written (not if its run is no longer this worker's). The batch's resolves once the
    batch settled, written or failed: ``drain`` waits on those, and batches settle in the order
    they were queued. A caller cancelled mid-wait (a run being parked) cancels only its own
    future, so its write stays queued and in the ordering barrier.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._pending: list[tuple[Entry, str, asyncio.Future[bool]]] = []
        self._pending_settled: asyncio.Future[None] | None = None  # of the batch in _pending
        self._last: dict[str, asyncio.Future[None]] = {}  # run -> last batch with a write of it
        self._flushing: asyncio.Task[None] | None = None
        self._conn: Conn | None = None
        self._cursor: AsyncCursor[Any] | None = None
        self.configure: Callable[[Conn], Awaitable[None]] | None = None

    def submit(self, entry: Entry, owner: str) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        if self._pending_settled is None:
            self._pending_settled = loop.create_future()
        self._pending.append((entry, owner, fut))
        self._last[entry.run_id] = self._pending_settled
        if self._flushing is None:
            # a fresh context: this task belongs to the store, not to the workflow that wrote
            self._flushing = loop.create_task(self._run(), context=contextvars.Context())
        return fut

    async def drain(self, run_id: str | None = None) -> None:
        """Wait until the writes submitted so far (for ``run_id``, or all) have settled."""
        if run_id is None:
            batches = set(self._last.values())
        else:
            last = self._last.get(run_id)
            batches = set() if last is None else {last}
        if batches:
            await asyncio.wait(batches)  # never cancels them: a cancelled drain leaves them be

    async def close(self) -> None:
        await self.drain()
        await self._drop()

    async def _drop(self) -> None:
        self._cursor = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                settled, self._pending_settled = self._pending_settled, None
                try:
                    written = await self._store._retry(
                        functools.partial(self._send, batch), on_lost=self._drop
                    )
                except Exception as exc:
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for entry, _, fut in batch:
                        if not fut.done():
                            fut.set_result((entry.run_id, entry.seq) in written)
                if settled is not None:
                    settled.set_result(None)
                    for entry, _, _ in batch:
                        if self._last.get(entry.run_id) is settled:
                            del self._last[entry.run_id]
        finally:
            self._flushing = None

    async def _send(self, batch: list[tuple[Entry, str, Any]]) -> set[tuple[str, int]]:
        if self._conn is None or self._conn.closed or self._cursor is None:
            self._conn = await psycopg.AsyncConnection.connect(self._store.url, autocommit=True)
            if self.configure is not None:
                await self.configure(self._conn)
            self._cursor = self._conn.cursor()  # one cursor for every batch: less to build
        return await self._write(self._cursor, batch=batch)

    @staticmethod
    async def _write(
        cur: AsyncCursor[Any], *, batch: list[tuple[Entry, str, Any]]
    ) -> set[tuple[str, int]]:
        latest: dict[tuple[str, int], tuple[Entry, str]] = {}
        for e, owner, _ in batch:  # one row per key: a later write replaces an earlier one
            latest[(e.run_id, e.seq)] = (e, owner)
        if len(latest) == 1:
            [(key, (e, owner))] = latest.items()
            await cur.execute(_UPSERT_ONE, (*entry_values(e), e.run_id, owner))
            return {key} if cur.rowcount == 1 else set()
        rows = json.dumps([
            {
                "run_id": e.run_id,
                "seq": e.seq,
                "kind": e.kind,
                "name": e.name,
                "status": e.status,
                "input": e.input,
                "output": e.output,
                "error": e.error,
                "attempts": e.attempts,
                "started_at": e.started_at,
                "finished_at": e.finished_at,
                "wake_at": e.wake_at,
                "owner": owner,
                "branch": e.branch,
                "position": e.position,
            }
            for e, owner in latest.values()
        ])  # fmt: skip
        await cur.execute(_UPSERT_MANY, (rows, rows))
        return {(r[0], r[1]) for r in await cur.fetchall()}


class _StartBatch:
    """Groups new runs into one INSERT per round trip; resolves True for each run created."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._pending: list[tuple[RunRecord, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def submit(self, run: RunRecord) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((run, fut))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._run(), context=contextvars.Context())
        return fut

    async def _run(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other starts of this loop turn join the batch
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    created = await self._store._retrying(
                        functools.partial(self._insert, batch=batch), transaction=False
                    )
                except Exception as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for run, fut in batch:
                    if not fut.done():
                        fut.set_result(run.run_id in created)
                        created.discard(run.run_id)  # a second start with that id is not new
        finally:
            self._flushing = None

    async def _insert(self, conn: Conn, *, batch: list[tuple[RunRecord, Any]]) -> set[str]:
        names = [c.strip() for c in RUN_COLUMNS.split(",")]
        rows = [dict(zip(names, run_values(run), strict=True)) for run, _ in batch]
        cur = await conn.execute(_INSERT_RUNS, (json.dumps(rows), self._store.channel))
        return {r[0] for r in await cur.fetchall()}


class PostgresStore(SQLStore):
    """A :class:`legato.store.base.Store` on PostgreSQL (psycopg 3, async, pooled)."""

    poll_interval = 5.0  # LISTEN/NOTIFY wakes workers; polling is only the fallback
    _LIST_LIMIT = 1 << 62  # one array parameter carries any number of values
    _WRITES_IN_WITH = True  # a run's end and its metrics in one statement

    def __init__(
        self, url: str, pool: AsyncConnectionPool[Conn], schema: str, reconnect_timeout: float
    ) -> None:
        self.url = url
        self._pool = pool
        self.schema = schema
        self.channel = f"legato_{schema}"[:63]
        self.end_channel = f"legato_end_{schema}"[:63]
        self.reconnect_timeout = reconnect_timeout
        self._journal = _JournalBatch(self)
        self._starts = _StartBatch(self)
        self._session = Session(url, self.channel, self.end_channel, None)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        durability: str = "normal",
        max_size: int = 10,
        reconnect_timeout: float = 120.0,
        create: bool = True,
        create_schema: bool = False,
    ) -> PostgresStore:
        """Connect, migrate, and pool.

        ``durability="full"`` forces ``synchronous_commit=on`` on all of legato's connections.
        ``"normal"`` keeps the server's setting (on, by default) everywhere but on the journal's
        own connection, which commits step results with ``synchronous_commit=off``: like
        SQLite's ``synchronous=NORMAL``, a crash of the database server may lose the last
        journal writes (their steps run again), never a commit made after them, because any
        later synchronous commit flushes all the WAL written before it.

        With ``create=False``, a schema without legato's tables is an error (read-only commands
        must not create tables); ``create_schema`` creates the search_path's first schema.
        """
        shown = redact_url(url)
        try:  # one plain connection first: a wrong address fails now, with its real reason
            first = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"cannot connect to {shown}: {_reason(exc)}") from None
        try:
            async with first:
                schema = await _migrate(first, shown, create, create_schema)
        except psycopg.OperationalError as exc:  # the server went away meanwhile
            raise DatabaseUnavailable(f"cannot connect to {shown}: {_reason(exc)}") from None
        configure = _full_durability if durability == "full" else None
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True},
            name="legato",
            timeout=30,
            configure=configure,
        )
        try:
            await pool.open(wait=True, timeout=10)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise DatabaseUnavailable(f"cannot connect to {shown}: {_reason(exc)}") from None
        store = cls(url, pool, schema, reconnect_timeout)
        store._journal.configure = configure or _async_commit
        # The session writes only worker rows: like journal entries, they need no flush.
        store._session.configure = configure or _async_commit
        return store

    async def close(self) -> None:
        await self._session.close()
        await self._journal.close()
        await self._pool.close()

    # -- plumbing -----------------------------------------------------------------------
    async def _retry(
        self,
        attempt: Callable[[], Awaitable[T]],
        on_lost: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """Call ``attempt``; while the database is unreachable, retry it with backoff."""
        deadline = time.monotonic() + self.reconnect_timeout
        delay = 0.05
        while True:
            try:
                return await attempt()
            except LegatoError:
                raise
            except Exception as exc:
                if not _transient(exc):
                    raise StoreError(f"database {redact_url(self.url)}: {_reason(exc)}") from None
                if on_lost is not None:
                    await on_lost()
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(
                        f"database {redact_url(self.url)} unreachable for"
                        f" {self.reconnect_timeout:g}s: {_reason(exc)}"
                    ) from None
                log.warning("database unavailable (%s); retrying in %.2fs", _reason(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _retrying(
        self, work: Callable[[Conn], Awaitable[T]], *, transaction: bool = True
    ) -> T:
        """Run ``work`` on a pooled connection (in a transaction unless it is one statement)."""

        async def attempt() -> T:
            async with self._pool.connection() as conn:
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)

        return await self._retry(attempt)

    async def _fenced(
        self, run_id: str | None, work: Callable[[Conn], Awaitable[T]], *, transaction: bool = True
    ) -> T:
        """A write that must land after the run's journal writes submitted before it."""
        await self._journal.drain(run_id)
        return await self._retrying(work, transaction=transaction)

    async def _rows(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        async def work(conn: Conn) -> list[Any]:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

        return await self._retrying(work, transaction=False)

    # -- the dialect seam (dialect.py) ----------------------------------------------------
    @staticmethod
    def _any_of(values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        return "= ANY(?)", (list(values),)

    async def _transact(
        self, work: Work[T], *, after: str | None = None, one_statement: bool = False
    ) -> T:
        attempts = 0

        async def run(conn: Conn) -> T:
            nonlocal attempts
            attempts += 1
            return await work(_PostgresTx(conn, self.channel, self.end_channel, attempts > 1))

        if after is not None:
            return await self._fenced(after, run, transaction=not one_statement)
        return await self._retrying(run, transaction=not one_statement)

    async def _select(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._rows(_placeholders(query), params)

    # -- runs ---------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        # Starts made at the same moment (a gather of a thousand) share one INSERT.
        created: bool = await asyncio.shield(self._starts.submit(run))
        if created:
            return run, True

        async def existing(tx: Tx) -> RunRecord:
            return await require_run(tx, run.run_id)

        return await self._transact(existing, one_statement=True), False

    # -- claiming and leases ------------------------------------------------------------
    async def claim(
        self, worker_id: str, workflows: Sequence[str], now: float, lease: float, limit: int
    ) -> list[RunRecord]:
        if limit <= 0 or not workflows:
            return []

        async def work(conn: Conn) -> list[RunRecord]:
            cur = await conn.execute(
                f"""
                WITH due AS (
                    SELECT run_id FROM runs
                    WHERE wake_at <= %s AND workflow = ANY(%s)
                    ORDER BY wake_at LIMIT %s
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE runs r SET status = 'running', owner = %s, wake_at = %s,
                    waiting_on = NULL, updated_at = %s
                FROM due WHERE r.run_id = due.run_id
                RETURNING {", ".join("r." + c.strip() for c in _RUN_COLS.split(","))}
                """,
                (now, list(workflows), limit, worker_id, now + lease, now),
            )
            return [_run(r) for r in await cur.fetchall()]

        return await self._retrying(work, transaction=False)

    async def claim_next(
        self, worker_id: str, workflows: Sequence[str], now: float, lease: float, limit: int
    ) -> Claim:
        if not workflows:
            return Claim([], {}, None)

        async def work(conn: Conn) -> Claim:
            cur = await conn.execute(_CLAIM_NEXT, {
                "now": now, "workflows": list(workflows), "limit": max(limit, 0),
                "owner": worker_id, "until": now + lease,
            })  # fmt: skip
            rows = await cur.fetchall()
            runs = [_run(r[1:-1]) for r in rows if r[1] is not None]
            journals = {
                r[1]: [Entry(r[1], *e) for e in (r[-1] or [])] for r in rows if r[1] is not None
            }
            next_wake = rows[0][0] if rows else None
            return Claim(runs, journals, None if next_wake is None else float(next_wake))

        return await self._retrying(work, transaction=False)

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], now: float, lease: float
    ) -> None:
        self._session.beat(worker_id, now)

        async def work(conn: Conn) -> None:
            await conn.execute(
                "WITH leases AS (UPDATE runs SET wake_at = %s WHERE owner = %s"
                " AND status = 'running' AND run_id = ANY(%s))"
                " UPDATE workers SET heartbeat_at = %s WHERE worker_id = %s",
                (now + lease, worker_id, list(run_ids), now, worker_id),
            )

        await self._retrying(work, transaction=False)

    def on_wake(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._session.on_wake(callback)

    async def next_wake_at(self, workflows: Sequence[str]) -> float | None:
        if not workflows:
            return None
        rows = await self._rows(
            "SELECT MIN(wake_at) FROM runs WHERE wake_at IS NOT NULL AND workflow = ANY(%s)",
            (list(workflows),),
        )
        value = rows[0][0]
        return float(value) if value is not None else None

    # -- fenced writes ------------------------------------------------------------------
    def record(self, owner: str, entry: Entry) -> Awaitable[bool]:
        # queued now; a caller cancelled mid-wait (a run being parked) cancels only its own
        # future, not the write on its way nor its place in the ordering barrier
        return self._journal.submit(entry, owner)

    async def release(self, owner: str, run_id: str, now: float) -> bool:
        async def work(conn: Conn) -> bool:
            cur = await conn.execute(
                "WITH released AS (UPDATE runs SET status = 'pending', owner = NULL,"
                " wake_at = %s, updated_at = %s"
                " WHERE run_id = %s AND owner = %s AND status = 'running' RETURNING 1)"
                " SELECT pg_notify(%s, '') FROM released",
                (now, now, run_id, owner, self.channel),
            )
            return await cur.fetchone() is not None

        return await self._fenced(run_id, work, transaction=False)

    # -- workers ------------------------------------------------------------------------
    async def register_worker(self, worker: WorkerRecord) -> None:
        if self._session.holds(worker.worker_id):  # again: its row only (the lock is held)
            self._session.beat(worker.worker_id, worker.heartbeat_at)

            async def again(conn: Conn) -> None:
                await conn.execute(
                    "UPDATE workers SET heartbeat_at = %s WHERE worker_id = %s",
                    (worker.heartbeat_at, worker.worker_id),
                )

            await self._retrying(again, transaction=False)
            return
        # The row and the worker's lock on this process's session, in one statement.
        if not await self._session.hold_worker(worker, self.reconnect_timeout):
            raise DatabaseUnavailable(
                f"database {redact_url(self.url)}: could not register worker"
                f" {worker.worker_id} within {self.reconnect_timeout:g}s"
            )

    async def deregister_worker(self, worker_id: str, now: float) -> None:
        if self._session.holds(worker_id):  # ours: by the session that holds its lock
            await self._journal.drain()  # our runs' journal writes land before they are freed
            if not await self._session.release_worker(worker_id, now, self.reconnect_timeout):
                raise DatabaseUnavailable(
                    f"database {redact_url(self.url)}: could not deregister worker"
                    f" {worker_id} within {self.reconnect_timeout:g}s"
                )
            return

        async def work(conn: Conn) -> None:  # a dead worker's
            await conn.execute(
                "WITH gone AS (DELETE FROM workers WHERE worker_id = %s),"
                " freed AS (UPDATE runs SET status = 'pending', owner = NULL,"
                " wake_at = LEAST(created_at, %s), updated_at = %s"
                " WHERE owner = %s AND status = 'running' RETURNING 1)"
                " SELECT pg_notify(%s, '') WHERE EXISTS (SELECT 1 FROM freed)",
                (worker_id, now, now, worker_id, self.channel),
            )

        await self._retrying(work, transaction=False)

    async def list_workers(self) -> list[WorkerRecord]:
        rows = await self._rows(
            "SELECT worker_id, hostname, pid, started_at, heartbeat_at FROM workers"
            " ORDER BY started_at"
        )
        return [WorkerRecord(*r) for r in rows]

    async def disconnected_workers(self) -> list[str] | None:
        if not self._session.reliable():
            return []
        rows = await self._rows(DISCONNECTED, (GRACE, WORKER_SEED))
        return self._session.confirm([r[0] for r in rows])

    async def wait_for_end(self, run_id: str, timeout: float | None) -> RunRecord | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        run = await self.get_run(run_id)
        if run is None or run.status in TERMINAL or timeout == 0:  # no need to watch
            return run
        ended = await self._session.watch(run_id, min(timeout or 1.0, 1.0))
        delay = 0.005
        try:
            while True:
                run = await self.get_run(run_id)
                left = None if deadline is None else deadline - loop.time()
                if run is None or run.status in TERMINAL or (left is not None and left <= 0):
                    return run
                if ended is None:  # not watched: poll
                    await asyncio.sleep(delay if left is None else min(delay, left))
                    delay = min(delay * 2, 0.25)
                    continue
                # the end is announced; were a notice missed, it would cost a second at most
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(ended), min(1.0, left or 1.0))
                if ended.done():
                    ended = self._session.renew(run_id, ended)
        finally:
            self._session.unwatch(run_id, ended)


#: concurrent run ends of one workflow spread its rollup rows over 8 per key, by connection
ROLLUP_SHARD = "pg_backend_pid() % 8"


class _PostgresTx:
    """The dialect's transaction: a pooled connection, ``?`` placeholders made psycopg's."""

    __slots__ = ("_channel", "_conn", "_end_channel", "retried")
    for_update = " FOR UPDATE"
    rollup_shard = ROLLUP_SHARD

    def __init__(self, conn: Conn, channel: str, end_channel: str, retried: bool) -> None:
        self._conn = conn
        self._channel = channel
        self._end_channel = end_channel
        self.retried = retried

    async def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        cur = await self._conn.execute(_placeholders(query), params)
        return cur.rowcount

    async def execute_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cur:
            await cur.executemany(_placeholders(query), rows)

    async def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        return await (await self._conn.execute(_placeholders(query), params)).fetchone()

    async def all(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return await (await self._conn.execute(_placeholders(query), params)).fetchall()

    async def notify(self) -> None:
        await self._conn.execute("SELECT pg_notify(%s, '')", (self._channel,))

    async def lock_run(self, run_id: str | None) -> None:
        if run_id is not None:
            await self._conn.execute("SELECT 1 FROM runs WHERE run_id = %s FOR UPDATE", (run_id,))

    async def lock_audit(self) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))

    async def runs_ended(self, run_ids: Sequence[str]) -> None:
        if run_ids:  # a NOTIFY only for runs someone waits for (see postgres_session)
            await self._conn.execute(
                END_NOTICE.format(ended="SELECT unnest(%s::text[])"),
                (self._end_channel, list(run_ids), RUN_SEED),
            )


@functools.lru_cache(maxsize=512)
def _placeholders(query: str) -> str:
    """The shared logic's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return query.replace("%", "%%").replace("?", "%s")


async def _migrate(conn: Conn, shown: str, create: bool, create_schema: bool) -> str:
    """Apply missing migrations under an advisory lock; return the schema they live in."""
    known = migrations("postgres")
    latest = known[-1][0]
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_MIGRATE,))
        schema_row = await (await conn.execute("SELECT current_schema()")).fetchone()
        if schema_row is None or schema_row[0] is None:
            wanted = await _first_schema(conn)
            if not create:
                raise _no_tables(wanted or "(none)", shown)
            if not create_schema or wanted is None:
                raise StoreError(
                    f"{shown}: schema {wanted or '(none)'!r} does not exist: create it"
                    f" (CREATE SCHEMA {wanted or 'name'}) or run legato db upgrade, which does"
                )
            try:
                await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(wanted)))
            except psycopg.errors.InsufficientPrivilege as exc:
                reason = _reason(exc)
                raise StoreError(f"cannot create schema {wanted!r} in {shown}: {reason}") from None
            schema_row = (wanted,)
        schema = str(schema_row[0])
        regs = await (
            await conn.execute(
                "SELECT to_regclass('legato_migrations') IS NOT NULL,"
                " to_regclass('runs') IS NOT NULL"
            )
        ).fetchone()
        has_migrations, has_runs = regs if regs is not None else (False, False)
        if has_runs and not has_migrations:
            raise StoreError(
                f"schema {schema!r} of {shown} has a 'runs' table that legato did not create;"
                " refusing to change it. Use another database or schema"
                " (?options=-csearch_path%3Dlegato)"
            )
        if not create and not has_migrations:
            raise _no_tables(schema, shown)
        applied: set[int] = set()
        if has_migrations:
            cur = await conn.execute("SELECT version FROM legato_migrations")
            applied = {r[0] for r in await cur.fetchall()}
        check_version(applied, latest, shown)
        for version, name, text in known:
            if version in applied:
                continue
            await conn.execute(text.encode())  # several statements: the simple query protocol
            await conn.execute(
                "INSERT INTO legato_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (version, name, time.time()),
            )
    return schema


def _no_tables(schema: str, shown: str) -> StoreError:
    return StoreError(f"no legato tables in schema {schema!r} of {shown} (run legato db upgrade)")


async def _first_schema(conn: Conn) -> str | None:
    """The first schema the search_path names, ``"$user"`` aside."""
    row = await (await conn.execute("SELECT current_setting('search_path')")).fetchone()
    if row is None:
        return None
    for item in str(row[0]).split(","):
        name = item.strip()
        if name.startswith('"') and name.endswith('"'):
            name = name[1:-1].replace('""', '"')
        if name and name != "$user":  # legato's tables go in a schema named on purpose
            return name
    return None


async def _full_durability(conn: Conn) -> None:
    await conn.execute("SET synchronous_commit = on")


async def _async_commit(conn: Conn) -> None:
    await conn.execute("SET synchronous_commit = off")


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
