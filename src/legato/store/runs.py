"""Runs, as people and front ends act on them: read, list, cancel, retry, send events, clean up.

Written once for both dialects (see ``dialect.py``); each dialect inserts new runs itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from legato.errors import RunConflict, UnknownRun
from legato.store.dialect import Dialect, Tx, chunks, marks, page
from legato.store.metrics import RunMetrics, write_run_metrics
from legato.store.records import ENTRY_COLUMNS, RUN_COLUMNS, TERMINAL, Entry, RunRecord

#: a new run, unless one with its id exists (idempotent start)
INSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({marks(19)}) ON CONFLICT (run_id) DO NOTHING"
)
FINISHED = "('completed', 'failed', 'cancelled')"
_TREE = """WITH RECURSIVE tree(id) AS (
    SELECT CAST(? AS TEXT)
    UNION ALL
    SELECT r.run_id FROM runs r JOIN tree ON r.parent_run_id = tree.id
)"""


def failed_seq(error: str | None) -> int | None:
    """The journal entry that failed a run, from its stored error (None: the workflow's own
    code failed, or the code no longer matched its journal: a retry just replays)."""
    if not error:
        return None
    try:
        seq = json.loads(error).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


async def require_run(
    tx: Tx, run_id: str, shown: str = "this database", *, lock: bool = False
) -> RunRecord:
    query = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"
    row = await tx.one(query + tx.for_update if lock else query, (run_id,))
    if row is None:
        raise UnknownRun(f"no run {run_id!r} in {shown}")
    return RunRecord(*row)


async def wake_parent(tx: Tx, parent_run_id: str | None, now: float) -> None:
    """Wake a parent that waits. The caller holds the parent's row (``tx.lock_run``): under
    READ COMMITTED a conditional UPDATE filters on its snapshot, so without the lock a parent
    parking at this very moment would be missed and sleep forever."""
    if parent_run_id is None:
        return
    woke = await tx.execute(
        "UPDATE runs SET wake_at = ?, updated_at = ? WHERE run_id = ? AND status = 'waiting'",
        (now, now, parent_run_id),
    )
    if woke:
        await tx.notify()


async def cancel_tree(tx: Tx, run: RunRecord, now: float) -> None:
    """Cancel a run that has not ended, its children's runs and their pending approvals; its
    parent (waiting for it as a child) wakes. The caller holds the run's row."""
    cancelled = await tx.all(
        f"{_TREE} UPDATE runs SET status = 'cancelled', owner = NULL, wake_at = NULL,"
        " waiting_on = NULL, finished_at = ?, updated_at = ?"
        f" WHERE run_id IN (SELECT id FROM tree) AND status NOT IN {FINISHED}"
        " RETURNING run_id, workflow, tenant, created_at",
        (run.run_id, now, now),
    )
    for the_id, workflow, tenant, created_at in cancelled:  # counted in the metrics
        await write_run_metrics(
            tx, RunMetrics(the_id, workflow, tenant, "cancelled", created_at, now)
        )
    await tx.runs_ended([r[0] for r in cancelled])
    await tx.execute(
        f"{_TREE} UPDATE approvals SET status = 'cancelled', decided_at = ?"
        " WHERE status = 'pending' AND run_id IN (SELECT id FROM tree)",
        (run.run_id, now),
    )
    await wake_parent(tx, run.parent_run_id, now)


async def reopen(tx: Tx, run_id: str, now: float) -> None:
    """Reset a run to resume from the entry that failed it (and children that failed or were
    cancelled). Events taken by the removed entries go back to the buffer, except those that
    were rejected (their entry failed): a retry waits for a new one."""
    row = await tx.one("SELECT error FROM runs WHERE run_id = ?", (run_id,))
    first_failed = failed_seq(row[0] if row else None)
    if first_failed is not None:
        children = await tx.all(
            "SELECT r.run_id FROM entries e JOIN runs r ON r.parent_run_id = e.run_id"
            " AND r.parent_seq = e.seq WHERE e.run_id = ? AND e.seq >= ? AND e.kind = 'child'"
            " AND r.status IN ('failed', 'cancelled')",
            (run_id, first_failed),
        )
        for (child_id,) in children:
            await reopen(tx, child_id, now)
        await tx.execute(
            "UPDATE events SET consumed_seq = NULL WHERE run_id = ? AND consumed_seq >= ?"
            " AND consumed_seq NOT IN (SELECT seq FROM entries WHERE run_id = ?"
            " AND kind = 'event' AND status = 'failed')",
            (run_id, first_failed, run_id),
        )
        await tx.execute(
            "DELETE FROM entries WHERE run_id = ? AND seq >= ?", (run_id, first_failed)
        )
        # approvals of removed entries are asked again (their audit rows stay)
        await tx.execute(
            "DELETE FROM approvals WHERE run_id = ? AND seq >= ?", (run_id, first_failed)
        )
    await tx.execute(
        "UPDATE runs SET status = 'pending', error = NULL, owner = NULL, wake_at = ?,"
        " waiting_on = NULL, finished_at = NULL, updated_at = ? WHERE run_id = ?",
        (now, now, run_id),
    )


async def resume_cancelled(tx: Tx, run_id: str, now: float) -> None:
    """Make a cancelled run runnable where it stopped: its journal is kept; the approvals that
    were pending when it was cancelled are pending again, and its child runs that it was still
    waiting for (cancelled with it) resume too."""
    children = await tx.all(
        "SELECT r.run_id FROM entries e JOIN runs r ON r.parent_run_id = e.run_id"
        " AND r.parent_seq = e.seq WHERE e.run_id = ? AND e.kind = 'child'"
        " AND e.status = 'waiting' AND r.status = 'cancelled'",
        (run_id,),
    )
    for (child_id,) in children:
        await resume_cancelled(tx, child_id, now)
    await tx.execute(
        "UPDATE approvals SET status = 'pending', decided_at = NULL"
        " WHERE run_id = ? AND status = 'cancelled'",
        (run_id,),
    )
    await tx.execute(
        "UPDATE runs SET status = 'pending', owner = NULL, wake_at = ?, waiting_on = NULL,"
        " finished_at = NULL, updated_at = ? WHERE run_id = ?",
        (now, now, run_id),
    )


class SQLRuns(Dialect):
    """The :class:`~legato.store.base.RunStore` role (but ``create_run``: the dialect's)."""

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._select(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return RunRecord(*rows[0]) if rows else None

    async def list_runs(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        head, order = f"SELECT {RUN_COLUMNS} FROM runs", "created_at DESC, run_id"
        query = page(head, order, limit, ("status = ?", status), ("workflow = ?", workflow))
        return [RunRecord(*r) for r in await self._select(*query)]

    async def workflow_names(self) -> list[str]:
        rows = await self._select("SELECT DISTINCT workflow FROM runs ORDER BY workflow", ())
        return [r[0] for r in rows]

    async def load_entries(self, run_id: str) -> list[Entry]:
        rows = await self._select(
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [Entry(*r) for r in rows]

    async def custom_statuses(self, run_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in chunks(list(run_ids), self._LIST_LIMIT):
            among, params = self._any_of(chunk)
            rows = await self._select(
                "SELECT e.run_id, e.output FROM entries e WHERE e.kind = 'status'"
                f" AND e.run_id {among} AND e.seq = (SELECT MAX(seq) FROM entries"
                " WHERE run_id = e.run_id AND kind = 'status')",
                params,
            )
            out.update((r[0], r[1]) for r in rows if r[1] is not None)
        return out

    async def load_journals(self, run_ids: Sequence[str]) -> dict[str, list[Entry]]:
        out: dict[str, list[Entry]] = {r: [] for r in run_ids}
        for chunk in chunks(list(run_ids), self._LIST_LIMIT):
            among, params = self._any_of(chunk)
            rows = await self._select(
                f"SELECT {ENTRY_COLUMNS} FROM entries WHERE run_id {among} ORDER BY run_id, seq",
                params,
            )
            for r in rows:
                out[r[0]].append(Entry(*r))
        return out

    async def cancel_run(self, run_id: str, now: float) -> RunRecord:
        shown = self._shown()

        async def work(tx: Tx) -> RunRecord:
            run = await require_run(tx, run_id, shown)
            await tx.lock_run(run.parent_run_id)  # parent, then child: one order everywhere
            run = await require_run(tx, run_id, shown, lock=True)
            if run.status == "cancelled" and tx.retried:
                return run  # this very call, retried after its commit's reply was lost
            if run.status in TERMINAL:
                raise RunConflict(f"run {run_id!r} is already {run.status}; nothing to cancel")
            await cancel_tree(tx, run, now)
            return await require_run(tx, run_id)

        return await self._transact(work)

    async def cancelled_since(self, since: float) -> list[str]:
        rows = await self._select(
            "SELECT run_id FROM runs WHERE finished_at >= ? AND status = 'cancelled'", (since,)
        )
        return [r[0] for r in rows]

    async def retry_run(self, run_id: str, now: float) -> RunRecord:
        shown = self._shown()

        async def work(tx: Tx) -> RunRecord:
            run = await require_run(tx, run_id, shown, lock=True)
            if run.status == "failed":
                await reopen(tx, run_id, now)
            elif run.status == "cancelled":
                await resume_cancelled(tx, run_id, now)
            else:
                raise RunConflict(
                    f"run {run_id!r} is {run.status}; only failed or cancelled runs can be retried"
                )
            await tx.notify()
            return await require_run(tx, run_id)

        return await self._transact(work)

    async def send_event(
        self, run_id: str, name: str, payload: str, now: float, event_id: str | None = None
    ) -> bool:
        shown = self._shown()

        async def work(tx: Tx) -> bool:
            run = await require_run(tx, run_id, shown, lock=True)
            if event_id is not None:  # sent before (a retry): applied once, whatever came since
                row = await tx.one(
                    "SELECT name, payload FROM events WHERE run_id = ? AND event_id = ?",
                    (run_id, event_id),
                )
                if row is not None:
                    if (row[0], row[1]) != (name, payload):
                        raise RunConflict(
                            f"event id {event_id!r} of run {run_id!r} was sent with another name"
                            " or payload; give each event its own id"
                        )
                    return False
            if run.status in TERMINAL:
                raise RunConflict(
                    f"run {run_id!r} is {run.status}; event {name!r} would never be received"
                )
            await tx.execute(
                "INSERT INTO events (run_id, name, payload, created_at, event_id)"
                " VALUES (?, ?, ?, ?, ?)",
                (run_id, name, payload, now, event_id),
            )
            if run.status == "waiting":
                await tx.execute(
                    "UPDATE runs SET wake_at = ?, updated_at = ? WHERE run_id = ?",
                    (now, now, run_id),
                )
                await tx.notify()
            return True

        return await self._transact(work)

    async def delete_finished(self, before: float, *, dry_run: bool = False) -> int:
        async def work(tx: Tx) -> int:
            rows = await tx.all(
                "SELECT r.run_id FROM runs r LEFT JOIN runs p ON p.run_id = r.parent_run_id"
                f" WHERE r.status IN {FINISHED} AND r.finished_at < ?"
                f" AND (p.run_id IS NULL OR p.status IN {FINISHED})",
                (before,),
            )
            if dry_run:
                return len(rows)
            gone: list[str] = []
            for chunk in chunks([r[0] for r in rows], self._LIST_LIMIT):
                among, params = self._any_of(chunk)
                # a run retried since the SELECT (PostgreSQL) is not finished any more: kept
                deleted = await tx.all(
                    f"DELETE FROM runs WHERE run_id {among} AND status IN {FINISHED}"
                    " RETURNING run_id",
                    params,
                )
                gone += [r[0] for r in deleted]
            for chunk in chunks(gone, self._LIST_LIMIT):
                among, params = self._any_of(chunk)
                for table in ("entries", "events", "approvals", "run_metrics", "evaluations"):
                    await tx.execute(f"DELETE FROM {table} WHERE run_id {among}", params)
            return len(gone)

        return await self._transact(work)
