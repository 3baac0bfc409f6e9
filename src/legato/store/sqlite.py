"""The embedded SQLite store: one file, WAL, zero setup.

All SQL runs on the event loop's own thread: a commit in WAL mode costs tens of microseconds,
less than handing work to another thread would. Writes go through :class:`GroupCommit`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from legato.errors import ConfigurationError, RunConflict, StoreError
from legato.store.base import (
    TERMINAL,
    Claim,
    Entry,
    RunRecord,
    Wait,
    WorkerRecord,
    entry_values,
    equal_filters,
    failed_seq,
    run_values,
    where_clause,
)
from legato.store.group_commit import GroupCommit
from legato.store.migrations import (
    LEGATO_APPLICATION_ID,
    apply_sqlite_migrations,
    check_legato_file,
)
from legato.store.run_ends import LocalEnds
from legato.store.sqlite_common import (
    _ENTRY_COLS,
    _OWNS,
    _RUN_COLS,
    _UPSERT_ENTRY,
    _in,
    _require_run,
    _run,
    _wake_parent,
)
from legato.store.sqlite_supervision import SQLiteSupervision
from legato.store.sqlite_usage import SQLiteUsage

T = TypeVar("T")
Durability = Literal["normal", "full"]


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


class SQLiteStore(SQLiteSupervision, SQLiteUsage):
    """A :class:`legato.store.base.Store` on one SQLite file."""

    poll_interval = 0.2  # no notifications: other processes' changes are found by polling

    def __init__(self, url: str, conn: sqlite3.Connection, path: str) -> None:
        self.url = url
        self._conn = conn
        self._path = path
        self._writes = GroupCommit(conn, f"database {url}")
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

    async def schema_version(self) -> int:
        rows = self._query("SELECT MAX(version) FROM legato_migrations")
        return int(rows[0][0])

    async def delete_finished(self, before: float, *, dry_run: bool = False) -> int:
        def op(conn: sqlite3.Connection) -> int:
            conn.execute("DROP TABLE IF EXISTS temp.legato_gc")
            conn.execute(
                "CREATE TEMP TABLE legato_gc AS SELECT r.run_id FROM runs r"
                " LEFT JOIN runs p ON p.run_id = r.parent_run_id"
                " WHERE r.status IN ('completed', 'failed', 'cancelled') AND r.finished_at < ?"
                " AND (p.run_id IS NULL OR p.status IN ('completed', 'failed', 'cancelled'))",
                (before,),
            )
            count = int(conn.execute("SELECT count(*) FROM temp.legato_gc").fetchone()[0])
            if not dry_run:
                for table in ("entries", "events", "approvals", "runs"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM temp.legato_gc)"
                    )
            conn.execute("DROP TABLE temp.legato_gc")
            return count

        result: int = await self._write(op)
        return result

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

    # runs -------------------------------------------------------------------------------
    async def create_run(self, run: RunRecord) -> tuple[RunRecord, bool]:
        def op(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            cur = conn.execute(
                f"INSERT INTO runs ({_RUN_COLS}) VALUES ({_in(range(17))})"
                " ON CONFLICT (run_id) DO NOTHING",
                (*run_values(run),),
            )
            if cur.rowcount == 1:
                return run, True
            row = conn.execute(
                f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", (run.run_id,)
            ).fetchone()
            return _run(row), False

        result: tuple[RunRecord, bool] = await self._write(op)
        return result

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._query(f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    async def list_runs(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        where, params = equal_filters((("status", status), ("workflow", workflow)), "?")
        clause = where_clause(where)
        rows = self._query(
            f"SELECT {_RUN_COLS} FROM runs {clause} ORDER BY created_at DESC, run_id LIMIT ?",
            [*params, limit],
        )
        return [_run(r) for r in rows]

    async def load_entries(self, run_id: str) -> list[Entry]:
        rows = self._query(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [Entry(*r) for r in rows]

    async def load_journals(self, run_ids: Sequence[str]) -> dict[str, list[Entry]]:
        out: dict[str, list[Entry]] = {r: [] for r in run_ids}
        ids = list(run_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._query(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE run_id IN ({_in(chunk)})"
                " ORDER BY run_id, seq",
                chunk,
            )
            for r in rows:
                out[r[0]].append(Entry(*r))
        return out

    async def cancel_run(self, run_id: str, now: float) -> RunRecord:
        ended: list[str] = []

        def op(conn: sqlite3.Connection) -> RunRecord:
            run = _require_run(conn, run_id, self.url)
            if run.status in TERMINAL:
                raise RunConflict(f"run {run_id!r} is already {run.status}; nothing to cancel")
            cancelled = conn.execute(
                """
                WITH RECURSIVE tree(id) AS (
                    SELECT ?
                    UNION ALL
                    SELECT r.run_id FROM runs r JOIN tree ON r.parent_run_id = tree.id
                )
                UPDATE runs SET status = 'cancelled', owner = NULL, wake_at = NULL,
                    waiting_on = NULL, finished_at = ?, updated_at = ?
                WHERE run_id IN tree AND status NOT IN ('completed', 'failed', 'cancelled')
                RETURNING run_id
                """,
                (run_id, now, now),
            ).fetchall()
            ended.extend(r[0] for r in cancelled)
            conn.execute(
                """
                WITH RECURSIVE tree(id) AS (
                    SELECT ?
                    UNION ALL
                    SELECT r.run_id FROM runs r JOIN tree ON r.parent_run_id = tree.id
                )
                UPDATE approvals SET status = 'cancelled', decided_at = ?
                WHERE status = 'pending' AND run_id IN tree
                """,
                (run_id, now),
            )
            _wake_parent(conn, run.parent_run_id, now)
            return _require_run(conn, run_id)

        result: RunRecord = await self._write(op)
        self._ends.announce(ended)
        return result

    async def retry_run(self, run_id: str, now: float) -> RunRecord:
        def op(conn: sqlite3.Connection) -> RunRecord:
            run = _require_run(conn, run_id, self.url)
            if run.status != "failed":
                raise RunConflict(
                    f"run {run_id!r} is {run.status}; only failed runs can be retried"
                )
            _reopen(conn, run_id, now)
            return _require_run(conn, run_id)

        result: RunRecord = await self._write(op)
        return result

    async def send_event(self, run_id: str, name: str, payload: str, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            run = _require_run(conn, run_id, self.url)
            if run.status in TERMINAL:
                raise RunConflict(
                    f"run {run_id!r} is {run.status}; event {name!r} would never be received"
                )
            conn.execute(
                "INSERT INTO events (run_id, name, payload, created_at) VALUES (?, ?, ?, ?)",
                (run_id, name, payload, now),
            )
            conn.execute(
                "UPDATE runs SET wake_at = ?, updated_at = ?"
                " WHERE run_id = ? AND status = 'waiting'",
                (now, now, run_id),
            )

        await self._write(op)

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
                    f"SELECT {_ENTRY_COLS} FROM entries WHERE run_id IN ({_in(runs)})"
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

    async def consume_event(self, owner: str, entry: Entry) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            if conn.execute(_OWNS, (entry.run_id, owner)).fetchone() is None:
                return None
            done = conn.execute(
                "SELECT output FROM entries WHERE run_id = ? AND seq = ? AND status = 'completed'",
                (entry.run_id, entry.seq),
            ).fetchone()
            if done is not None:
                return str(done[0])
            row = conn.execute(
                "SELECT id, payload FROM events WHERE run_id = ? AND name = ?"
                " AND consumed_seq IS NULL ORDER BY id LIMIT 1",
                (entry.run_id, entry.name),
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE events SET consumed_seq = ? WHERE id = ?", (entry.seq, row[0]))
            entry.output = row[1]
            conn.execute(_UPSERT_ENTRY, (*entry_values(entry), entry.run_id, owner))
            return str(row[1])

        result: str | None = await self._write(op)
        return result

    async def start_child(self, owner: str, entry: Entry, child: RunRecord) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if (
                conn.execute(_UPSERT_ENTRY, (*entry_values(entry), entry.run_id, owner)).rowcount
                != 1
            ):
                return False
            conn.execute(
                f"INSERT INTO runs ({_RUN_COLS}) VALUES ({_in(range(17))})"
                " ON CONFLICT (run_id) DO NOTHING",
                run_values(child),
            )
            return True

        result: bool = await self._write(op)
        return result

    async def park(self, owner: str, run_id: str, wait: Wait, now: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(_OWNS, (run_id, owner)).fetchone() is None:
                return False
            wake_at = wait.wake_at
            # A wake-up that arrived while the run was still loaded must not be lost.
            if (
                wait.events
                and conn.execute(
                    f"SELECT 1 FROM events WHERE run_id = ? AND consumed_seq IS NULL"
                    f" AND name IN ({_in(wait.events)}) LIMIT 1",
                    (run_id, *wait.events),
                ).fetchone()
            ):
                wake_at = now
            if (
                wait.approvals
                and conn.execute(
                    f"SELECT 1 FROM approvals WHERE approval_id IN ({_in(wait.approvals)})"
                    " AND status != 'pending' LIMIT 1",
                    tuple(wait.approvals),
                ).fetchone()
            ):
                wake_at = now
            if (
                wait.children
                and conn.execute(
                    f"SELECT 1 FROM runs WHERE run_id IN ({_in(wait.children)})"
                    " AND status IN ('completed', 'failed', 'cancelled') LIMIT 1",
                    tuple(wait.children),
                ).fetchone()
            ):
                wake_at = now
            conn.execute(
                "UPDATE runs SET status = 'waiting', owner = NULL, wake_at = ?, waiting_on = ?,"
                " updated_at = ? WHERE run_id = ?",
                (wake_at, wait.waiting_on, now, run_id),
            )
            return True

        result: bool = await self._write(op)
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

    async def finish_run(
        self,
        owner: str,
        run_id: str,
        status: Literal["completed", "failed"],
        result: str | None,
        now: float,
    ) -> bool:
        column = "output" if status == "completed" else "error"

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                f"UPDATE runs SET status = ?, {column} = ?, owner = NULL, wake_at = NULL,"
                " waiting_on = NULL, finished_at = ?, updated_at = ?"
                " WHERE run_id = ? AND owner = ? AND status = 'running' RETURNING parent_run_id",
                (status, result, now, now, run_id, owner),
            ).fetchone()
            if row is None:
                return False
            _wake_parent(conn, row[0], now)
            return True

        done: bool = await self._write(op)
        if done:
            self._ends.announce([run_id])
        return done

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
                "UPDATE runs SET wake_at = MIN(created_at, ?), updated_at = ?"
                " WHERE owner = ? AND status = 'running'",
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


def _reopen(conn: sqlite3.Connection, run_id: str, now: float) -> None:
    """Reset a run to resume from the entry that failed it (and children that failed or were
    cancelled). Events taken by the removed entries go back to the buffer, except those that
    were rejected (their entry failed): a retry waits for a new one."""
    row = conn.execute("SELECT error FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    first_failed = failed_seq(row[0] if row else None)
    if first_failed is not None:
        children = conn.execute(
            "SELECT r.run_id FROM entries e JOIN runs r ON r.parent_run_id = e.run_id"
            " AND r.parent_seq = e.seq WHERE e.run_id = ? AND e.seq >= ? AND e.kind = 'child'"
            " AND r.status IN ('failed', 'cancelled')",
            (run_id, first_failed),
        ).fetchall()
        for (child_id,) in children:
            _reopen(conn, child_id, now)
        conn.execute(
            "UPDATE events SET consumed_seq = NULL WHERE run_id = ? AND consumed_seq >= ?"
            " AND consumed_seq NOT IN (SELECT seq FROM entries WHERE run_id = ?"
            " AND kind = 'event' AND status = 'failed')",
            (run_id, first_failed, run_id),
        )
        conn.execute("DELETE FROM entries WHERE run_id = ? AND seq >= ?", (run_id, first_failed))
        # approvals of removed entries are asked again (their audit rows stay)
        conn.execute("DELETE FROM approvals WHERE run_id = ? AND seq >= ?", (run_id, first_failed))
    conn.execute(
        "UPDATE runs SET status = 'pending', error = NULL, owner = NULL, wake_at = ?,"
        " waiting_on = NULL, finished_at = NULL, updated_at = ? WHERE run_id = ?",
        (now, now, run_id),
    )


__all__ = ["LEGATO_APPLICATION_ID", "SQLiteStore", "path_from_url"]
