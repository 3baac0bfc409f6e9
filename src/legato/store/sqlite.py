"""The embedded SQLite store: one file, WAL, zero setup.

All SQL runs on the event loop's own thread: a commit in WAL mode costs tens of microseconds,
less than handing work to another thread would. Writes go through :class:`GroupCommit`; the
roles' shared logic (``SQLStore``) runs inside it as coroutines that never suspend (this
dialect's transaction awaits nothing), so each is one synchronous function of the connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from legato.errors import ConfigurationError, StoreError
from legato.store.dialect import Work
from legato.store.group_commit import GroupCommit
from legato.store.journal import ENTRY_UPSERT
from legato.store.migrations import (
    LEGATO_APPLICATION_ID,
    apply_sqlite_migrations,
    check_legato_file,
)
from legato.store.records import (
    ENTRY_COLUMNS,
    RUN_COLUMNS,
    Claim,
    Entry,
    RunRecord,
    WorkerRecord,
    entry_values,
    run_values,
)
from legato.store.run_ends import LocalEnds
from legato.store.runs import INSERT_RUN
from legato.store.sqlstore import SQLStore

T = TypeVar("T")
Durability = Literal["normal", "full"]
_RUN_COLS = RUN_COLUMNS
# A journal write fenced in one statement: nothing is written unless the owner holds the run.
_UPSERT_ENTRY = f"""
INSERT INTO entries ({ENTRY_COLUMNS})
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running')
{ENTRY_UPSERT}
"""


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(*row)


def _in(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def path_from_url(url: str) -> str:
    """``sqlite:///./x.db`` -> ``./x.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``;
    ``sqlite:///~/x.db`` -> the file in the home folder."""
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path, _, query = rest[1:].partition("?")
    if query:
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: it takes no options after '?' (durability is an App argument)"
        )
    path = os.path.expanduser(path)
    if path in ("", ":memory:"):
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: legato needs a database file that several connections"
            " share; in-memory databases are not supported"
        )
    return path


class SQLiteStore(SQLStore):
    """A :class:`legato.store.base.Store` on one SQLite file."""

    poll_interval = 0.2  # no notifications: other processes' changes are found by polling
    _LIST_LIMIT = 500  # values per statement: SQLite caps a statement's parameters
    _DECIMAL_SUM = "legato_decimal_sum({})"

    def __init__(self, url: str, conn: sqlite3.Connection, path: str) -> None:
        self.url = url
        self._conn = conn
        self._path = path
        self._writes = GroupCommit(conn, f"database {url}")
        self._tx = _SQLiteTx(conn)
        self._checkpointer: _Checkpointer | None = None
        self._ends = LocalEnds()

    @classmethod
    def open(
        cls, url: str, durability: Durability = "normal", *, create: bool = True
    ) -> SQLiteStore:
        path = path_from_url(url)
        if durability not in ("normal", "full"):
            raise ConfigurationError(f"durability must be 'normal' or 'full', got {durability!r}")
        parent = Path(path).resolve().parent
        if not parent.is_dir():
            raise ConfigurationError(
                f"cannot open database {path!r}: folder {str(parent)!r} does not exist"
            )
        if not create and not Path(path).exists():
            raise StoreError(
                f"no legato database at {path!r}: check --database-url or LEGATO_DATABASE_URL"
            )
        try:
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path!r}: {exc}") from None
        try:
            _prepare(conn, path, durability)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"cannot use {path!r} as a legato database: {exc} (is it corrupted, or not a"
                " SQLite file?)"
            ) from None
        except BaseException:
            conn.close()
            raise
        return cls(url, conn, path)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._conn.close()

    def _write(self, op: Callable[[sqlite3.Connection], T], *, one_statement: bool = False) -> Any:
        return self._writes.submit(op, one_statement=one_statement)

    def checkpoint_in_background(self, every: float = 0.5, min_wal_bytes: int = 4 << 20) -> None:
        """Move WAL checkpoints (which fsync) off this connection onto a helper thread.

        A worker commits on its event loop; an automatic checkpoint landing there costs
        milliseconds on a slow disk. The helper checkpoints passively whenever the WAL has
        grown past ``min_wal_bytes``; readers and writers are never blocked by it.
        """
        if self._checkpointer is not None:
            return
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = _Checkpointer(self._path, every, min_wal_bytes)
        self._checkpointer.start()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"database {self.url}: {exc}") from None

    # the dialect seam (dialect.py) --------------------------------------------------------
    @staticmethod
    def _any_of(values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        return f"IN ({_in(values)})", tuple(values)

    async def _transact(
        self, work: Work[T], *, after: str | None = None, one_statement: bool = False
    ) -> T:
        # ``after`` needs nothing here: one group commit applies every write in queue order
        tx = self._tx

        def op(conn: sqlite3.Connection) -> tuple[T, list[str]]:
            tx.ended.clear()  # (a batch that failed is applied again, one write at a time)
            return _run_to_end(work(tx)), list(tx.ended)

        result: tuple[T, list[str]] = await self._write(op, one_statement=one_statement)
        value, ended = result
        if ended:  # committed: wake whoever waits for these results in this process
            self._ends.announce(ended)
        return value

    async def _select(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._query(query, params)

    # runs -------------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        def op(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            cur = conn.execute(INSERT_RUN, run_values(run))
            if cur.rowcount == 1:
                return run, True
            row = conn.execute(
                f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", (run.run_id,)
            ).fetchone()
            return _run(row), False

        result: tuple[RunRecord, bool] = await self._write(op)
        return result

    # claiming and leases ----------------------------------------------------------------
    async def claim(
        self, worker_id: str, workflows: Sequence[str], now: float, lease: float, limit: int
    ) -> list[RunRecord]:
        if limit <= 0 or not workflows:
            return []

        def op(conn: sqlite3.Connection) -> list[RunRecord]:
            rows = conn.execute(
                f"""
                UPDATE runs SET status = 'running', owner = ?, wake_at = ?, waiting_on = NULL,
                    updated_at = ?
                WHERE run_id IN (
                    SELECT run_id FROM runs
                    WHERE wake_at <= ? AND workflow IN ({_in(workflows)})
                    ORDER BY wake_at LIMIT ?
                )
                RETURNING {_RUN_COLS}
                """,
                (worker_id, now + lease, now, now, *workflows, limit),
            ).fetchall()
            return [_run(r) for r in rows]

        result: list[RunRecord] = await self._write(op)
        return result

    async def claim_next(
        self, worker_id: str, workflows: Sequence[str], now: float, lease: float, limit: int
    ) -> Claim:
        if not workflows:
            return Claim([], {}, None)
        active = f"workflow IN ({_in(workflows)}) AND workflow NOT IN (SELECT workflow FROM paused)"

        def op(conn: sqlite3.Connection) -> Claim:
            runs = [
                _run(r)
                for r in conn.execute(
                    f"""
                    UPDATE runs SET status = 'running', owner = ?, wake_at = ?,
                        waiting_on = NULL, updated_at = ?
                    WHERE run_id IN (
                        SELECT run_id FROM runs WHERE wake_at <= ? AND {active}
                        ORDER BY wake_at LIMIT ?
                    )
                    RETURNING {_RUN_COLS}
                    """,
                    (worker_id, now + lease, now, now, *workflows, max(limit, 0)),
                ).fetchall()
            ]
            journals: dict[str, list[Entry]] = {r.run_id: [] for r in runs}
            if runs:
                for e in conn.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM entries WHERE run_id IN ({_in(runs)})"
                    " ORDER BY run_id, seq",
                    [r.run_id for r in runs],
                ):
                    journals[e[0]].append(Entry(*e))
            claimed = [r.run_id for r in runs]
            (next_wake,) = conn.execute(
                f"SELECT MIN(wake_at) FROM runs WHERE wake_at IS NOT NULL AND {active}"
                f" AND run_id NOT IN ({_in(claimed)})",
                (*workflows, *claimed),
            ).fetchone()
            return Claim(runs, journals, None if next_wake is None else float(next_wake))

        result: Claim = await self._write(op)
        return result

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], now: float, lease: float
    ) -> None:
        held = list(run_ids)

        def op(conn: sqlite3.Connection) -> None:
            for start in range(0, len(held), 500):
                chunk = held[start : start + 500]
                conn.execute(
                    f"UPDATE runs SET wake_at = ? WHERE owner = ? AND status = 'running'"
                    f" AND run_id IN ({_in(chunk)})",
                    (now + lease, worker_id, *chunk),
                )
            conn.execute(
                "UPDATE workers SET heartbeat_at = ? WHERE worker_id = ?", (now, worker_id)
            )

        await self._write(op)

    def on_wake(self, callback: Callable[[], None]) -> Callable[[], None]:
        """SQLite has no notifications: workers find new work by polling."""
        return lambda: None

    async def next_wake_at(self, workflows: Sequence[str]) -> float | None:
        if not workflows:
            return None
        rows = self._query(
            f"SELECT MIN(wake_at) FROM runs WHERE wake_at IS NOT NULL"
            f" AND workflow IN ({_in(workflows)})",
            list(workflows),
        )
        value = rows[0][0]
        return float(value) if value is not None else None

    # fenced writes ----------------------------------------------------------------------
    def record(self, owner: str, entry: Entry) -> Awaitable[bool]:
        params = (*entry_values(entry), entry.run_id, owner)

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(_UPSERT_ENTRY, params).rowcount == 1

        result: Awaitable[bool] = self._write(op, one_statement=True)
        return result

    async def release(self, owner: str, run_id: str, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE runs SET status = 'pending', owner = NULL, wake_at = ?, updated_at = ?"
                " WHERE run_id = ? AND owner = ? AND status = 'running'",
                (now, now, run_id, owner),
            )
            return cur.rowcount == 1

        result: bool = await self._write(op)
        return result

    # workers ----------------------------------------------------------------------------
    async def register_worker(self, worker: WorkerRecord) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO workers (worker_id, hostname, pid, started_at,"
                " heartbeat_at) VALUES (?, ?, ?, ?, ?)",
                (
                    worker.worker_id,
                    worker.hostname,
                    worker.pid,
                    worker.started_at,
                    worker.heartbeat_at,
                ),
            )

        await self._write(op)

    async def deregister_worker(self, worker_id: str, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET status = 'pending', owner = NULL, wake_at = MIN(created_at, ?),"
                " updated_at = ? WHERE owner = ? AND status = 'running'",
                (now, now, worker_id),
            )
            conn.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))

        await self._write(op)

    async def list_workers(self) -> list[WorkerRecord]:
        rows = self._query(
            "SELECT worker_id, hostname, pid, started_at, heartbeat_at FROM workers"
            " ORDER BY started_at"
        )
        return [WorkerRecord(*r) for r in rows]

    async def disconnected_workers(self) -> list[str] | None:
        """SQLite cannot tell: its workers share one host and judge each other by pid."""
        return None

    async def wait_for_end(self, run_id: str, timeout: float | None) -> RunRecord | None:
        return await self._ends.wait(run_id, self.get_run, timeout)


class _SQLiteTx:
    """The dialect's transaction: the connection inside a group commit's BEGIN ... COMMIT.

    Nothing here awaits, so work on it runs to its end at once (``_run_to_end``).
    """

    for_update = ""  # one writer holds the whole database: no row locks to take
    rollup_shard = "0"
    retried = False  # a commit's outcome is always known in process

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.ended: list[str] = []  # runs ended by the work running now

    async def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(query, params).rowcount

    async def execute_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(query, rows)

    async def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        cur = self._conn.execute(query, params)
        row = cur.fetchone()
        cur.close()  # ends the statement (an UPDATE ... RETURNING) at once
        return row

    async def all(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(query, params).fetchall()

    async def notify(self) -> None:
        """Workers poll: nothing to tell."""

    async def lock_run(self, run_id: str | None) -> None:
        """The write transaction already holds the database."""

    async def lock_audit(self) -> None:
        """The write transaction already holds the database."""

    async def runs_ended(self, run_ids: Sequence[str]) -> None:
        self.ended.extend(run_ids)


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run work on ``_SQLiteTx`` (a coroutine that never suspends) here and now, so its writes
    stay inside the group commit's transaction."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("store work awaited something other than its SQLite transaction")


class _Checkpointer(threading.Thread):
    """Checkpoints the WAL from its own connection while the WAL keeps growing."""

    def __init__(self, path: str, every: float, min_wal_bytes: int) -> None:
        super().__init__(name="legato-checkpoint", daemon=True)
        self._path = path
        self._every = every
        self._min = min_wal_bytes
        self._stopped = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopped.wait(self._every):
                try:
                    if os.path.getsize(self._path + "-wal") >= self._min:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except (OSError, sqlite3.Error):  # busy or briefly missing: next round
                    continue
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)


class _DecimalSum:
    """An exact sum of decimal text (SQLite's numbers are integers or doubles)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:  # decimal text, or NULL for an unknown cost
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> Any:
        return str(self.total)


def _prepare(conn: sqlite3.Connection, path: str, durability: Durability) -> None:
    """Check, configure and migrate a connection's database.

    Several processes may open a new file at the same moment; SQLite reports some of those
    collisions (changing the journal mode, say) as "locked" without waiting, so retry them.
    """
    deadline = time.monotonic() + 30
    delay = 0.01
    while True:
        try:
            conn.execute("BEGIN")  # one snapshot: another process may be migrating right now
            try:
                check_legato_file(conn, path)
            finally:
                conn.execute("COMMIT")
            conn.create_aggregate("legato_decimal_sum", 1, _DecimalSum)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
            apply_sqlite_migrations(conn, path)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


__all__ = ["LEGATO_APPLICATION_ID", "SQLiteStore", "path_from_url"]
