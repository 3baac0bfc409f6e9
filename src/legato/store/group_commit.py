"""Group commit: journal writes from many runs share one SQLite transaction.

Each write is a small function of the connection. Writes submitted during one turn of the event
loop are applied together in a single ``BEGIN IMMEDIATE ... COMMIT`` on the next turn, and each
caller's future resolves only after that commit: every step still waits for its own durability,
but a thousand concurrent runs pay for a handful of commits instead of a thousand.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from legato.errors import LegatoError, StoreError

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]


class GroupCommit:
    """Batches write operations on one connection, bound to the running event loop."""

    def __init__(self, conn: sqlite3.Connection, describe: str) -> None:
        self._conn = conn
        self._describe = describe
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._alone_ok = False

    def submit(
        self, op: Callable[[sqlite3.Connection], T], *, one_statement: bool = False
    ) -> asyncio.Future[T]:
        """Queue ``op``; ``one_statement`` ops alone in a batch skip BEGIN/COMMIT."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((op, fut))
        self._alone_ok = one_statement and len(self._pending) == 1
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._scheduled = False
        conn = self._conn
        if len(batch) == 1 and self._alone_ok:
            # A single statement is atomic on its own: autocommit saves two round trips.
            self._one_by_one(batch, explicit=False)
            return
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, _ in batch:
                try:
                    results.append((True, op(conn)))
                except LegatoError as exc:  # refused before it wrote anything: others go on
                    results.append((False, exc))
            conn.execute("COMMIT")
        except Exception:
            if conn.in_transaction:
                conn.rollback()
            self._one_by_one(batch)
            return
        for (_, fut), (ok, value) in zip(batch, results, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _one_by_one(
        self, batch: list[tuple[Op, asyncio.Future[Any]]], explicit: bool = True
    ) -> None:
        """Apply each write in its own transaction (after a failed batch: so that one bad
        write fails only itself)."""
        for op, fut in batch:
            try:
                value = self._alone(op, explicit)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(value)

    def _alone(self, op: Op, explicit: bool) -> Any:
        conn = self._conn
        try:
            if explicit:
                conn.execute("BEGIN IMMEDIATE")
            value = op(conn)
            if explicit:
                conn.execute("COMMIT")
            return value
        except BaseException as exc:
            if conn.in_transaction:
                conn.rollback()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self._describe}: {exc}") from None
            raise  # a LegatoError refusal, or a bug in an op: its caller sees it unchanged
