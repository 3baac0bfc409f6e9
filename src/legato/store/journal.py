"""Fenced writes of the worker that holds a run: take an event, start a child, park, finish.

Each one checks, in its transaction, that the worker still owns the run, and writes nothing
(reporting ``False`` or ``None``) when it does not. Each goes after the run's journal writes
queued before it (``after=run_id``). Written once for both dialects (see ``dialect.py``);
``record`` (the hot path) and ``release`` are each dialect's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from legato.store.dialect import Dialect, Tx, Work, marks
from legato.store.metrics import RunMetrics, ended_with_metrics, write_run_metrics
from legato.store.records import (
    ENTRY_COLUMNS,
    Entry,
    RunEnd,
    RunRecord,
    Wait,
    entry_values,
    run_values,
)
from legato.store.runs import FINISHED, INSERT_RUN, wake_parent

#: How a journal write replaces the entry it repeats (both dialects, every write path).
ENTRY_UPSERT = """ON CONFLICT (run_id, seq) DO UPDATE SET
    kind = excluded.kind, name = excluded.name, status = excluded.status,
    input = excluded.input, output = excluded.output, error = excluded.error,
    attempts = excluded.attempts, started_at = excluded.started_at,
    finished_at = excluded.finished_at, wake_at = excluded.wake_at, branch = excluded.branch,
    position = excluded.position"""
_UPSERT = f"INSERT INTO entries ({ENTRY_COLUMNS}) VALUES ({marks(14)}) {ENTRY_UPSERT}"
_OWNS = "SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running'"


async def owns(tx: Tx, run_id: str, owner: str) -> bool:
    """Whether ``owner`` still holds the run (locked until commit where writers compete)."""
    return await tx.one(_OWNS + tx.for_update, (run_id, owner)) is not None


async def upsert_entry(tx: Tx, entry: Entry) -> None:
    """Write a journal entry inside a transaction that checked the owner (``owns``)."""
    await tx.execute(_UPSERT, entry_values(entry))


def fenced_entry(owner: str, entry: Entry, then: Callable[[Tx], Awaitable[None]]) -> Work[bool]:
    """Work that writes ``entry`` and what ``then`` writes, together, while ``owner`` holds
    the entry's run; nothing (False) when it does not."""

    async def work(tx: Tx) -> bool:
        if not await owns(tx, entry.run_id, owner):
            return False
        await upsert_entry(tx, entry)
        await then(tx)
        return True

    return work


async def record_end(
    tx: Tx, metrics: RunMetrics | None, start: Sequence[RunRecord], now: float
) -> None:
    """What an ending run measured, and the runs it starts, in the transaction that ends it."""
    if metrics is not None:
        metrics.finished_at = now
        await write_run_metrics(tx, metrics)
    for run in start:
        await tx.execute(INSERT_RUN, run_values(run))
    if start:
        await tx.notify()


async def _ended(tx: Tx, row: object, run_id: str) -> bool:
    """Whether the run's end was written (a row came back); then tell its waiters."""
    if row is None:
        return False
    await tx.runs_ended([run_id])  # (after the end: see Store.wait_for_end)
    return True


class SQLJournal(Dialect):
    """The fenced writes of the :class:`~legato.store.base.JournalStore` role."""

    async def consume_event(self, owner: str, entry: Entry) -> str | None:
        async def work(tx: Tx) -> str | None:
            if not await owns(tx, entry.run_id, owner):
                return None
            done = await tx.one(
                "SELECT output FROM entries WHERE run_id = ? AND seq = ? AND status = 'completed'",
                (entry.run_id, entry.seq),
            )
            if done is not None:
                return str(done[0])
            row = await tx.one(
                "SELECT id, payload FROM events WHERE run_id = ? AND name = ?"
                " AND consumed_seq IS NULL ORDER BY id LIMIT 1" + tx.for_update,
                (entry.run_id, entry.name),
            )
            if row is None:
                return None
            await tx.execute("UPDATE events SET consumed_seq = ? WHERE id = ?", (entry.seq, row[0]))
            entry.output = row[1]
            await upsert_entry(tx, entry)
            return str(row[1])

        return await self._transact(work, after=entry.run_id)

    async def start_child(self, owner: str, entry: Entry, child: RunRecord) -> bool:
        async def create(tx: Tx) -> None:
            await tx.execute(INSERT_RUN, run_values(child))
            await tx.notify()

        return await self._transact(fenced_entry(owner, entry, create), after=entry.run_id)

    async def park(self, owner: str, run_id: str, wait: Wait, now: float) -> bool:
        async def work(tx: Tx) -> bool:
            if not await owns(tx, run_id, owner):
                return False
            # A wake-up that arrived while the run was still loaded must not be lost.
            wake_at = now if await self._woken(tx, run_id, wait) else wait.wake_at
            await tx.execute(
                "UPDATE runs SET status = 'waiting', owner = NULL, wake_at = ?, waiting_on = ?,"
                " updated_at = ? WHERE run_id = ?",
                (wake_at, wait.waiting_on, now, run_id),
            )
            if wake_at is not None and wake_at <= now:
                await tx.notify()
            return True

        return await self._transact(work, after=run_id)

    async def _woken(self, tx: Tx, run_id: str, wait: Wait) -> bool:
        """Whether something ``wait`` waits for has already happened."""
        for values, query, before in (
            (wait.events, "events WHERE run_id = ? AND consumed_seq IS NULL AND name", (run_id,)),
            (wait.approvals, "approvals WHERE status != 'pending' AND approval_id", ()),
            (wait.children, f"runs WHERE status IN {FINISHED} AND run_id", ()),
        ):
            if values:
                among, params = self._any_of(values)
                if await tx.one(f"SELECT 1 FROM {query} {among} LIMIT 1", (*before, *params)):
                    return True
        return False

    async def finish_run(
        self,
        owner: str,
        run_id: str,
        status: RunEnd,
        result: str | None,
        now: float,
        *,
        metrics: RunMetrics | None = None,
        start: Sequence[RunRecord] = (),
    ) -> bool:
        column = "output" if status == "completed" else "error"
        ends = (
            f"UPDATE runs SET status = ?, {column} = ?, owner = NULL, wake_at = NULL,"
            " waiting_on = NULL, finished_at = ?, updated_at = ?"
            " WHERE run_id = ? AND owner = ? AND status = 'running'"
        )
        params = (status, result, now, now, run_id, owner)

        async def measured(tx: Tx) -> None:
            await record_end(tx, metrics, start, now)

        async def alone(tx: Tx) -> bool:  # a run without a parent to wake: one statement
            row = await tx.one(f"{ends} AND parent_run_id IS NULL RETURNING 1", params)
            if row is not None:
                await measured(tx)
            return await _ended(tx, row, run_id)

        async def child(tx: Tx) -> bool:
            row = await tx.one(
                "SELECT parent_run_id FROM runs"
                " WHERE run_id = ? AND owner = ? AND status = 'running'",
                (run_id, owner),
            )
            if row is None:
                return False
            await tx.lock_run(row[0])
            if await tx.execute(ends, params) != 1:
                return False
            await wake_parent(tx, row[0], now)
            await measured(tx)
            await tx.runs_ended([run_id])
            return True

        async def alone_measured(tx: Tx) -> bool:  # the same, with its metrics: one statement
            assert metrics is not None
            metrics.finished_at = now
            ended = f"{ends} AND parent_run_id IS NULL RETURNING run_id"
            query, values = ended_with_metrics(ended, metrics, tx.rollup_shard)
            return await _ended(tx, await tx.one(query, (*params, *values)), run_id)

        first, single = alone, metrics is None and not start
        if metrics is not None and not start and self._WRITES_IN_WITH:
            first, single = alone_measured, True
        if await self._transact(first, after=run_id, one_statement=single):
            return True
        return await self._transact(child)
