"""Forks: a new run made of the first part of another run's journal (``legato fork``).

The operations layer chooses the entries to copy; this writes the new run, its copied journal
and the audit row in one transaction. Written once for both dialects (see ``dialect.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from legato.errors import RunConflict
from legato.store.audit import append_chain
from legato.store.dialect import Dialect, Tx
from legato.store.journal import upsert_entry
from legato.store.records import RUN_COLUMNS, AuditEvent, Entry, RunRecord, run_values
from legato.store.runs import INSERT_RUN, require_run


class SQLForks(Dialect):
    """``fork_run`` of the :class:`~legato.store.base.RunStore` role."""

    async def fork_run(
        self, run: RunRecord, entries: Sequence[Entry], audit: AuditEvent
    ) -> tuple[RunRecord, bool]:
        assert run.forked_from is not None, "a fork names the run it was forked from"
        shown = self._shown()

        async def work(tx: Tx) -> tuple[RunRecord, bool]:
            await require_run(tx, run.forked_from or "", shown)
            row = await tx.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run.run_id,))
            if row is not None:
                found = RunRecord(*row)
                if (found.forked_from, found.forked_entry) == (run.forked_from, run.forked_entry):
                    return found, False  # the same fork asked again
                raise RunConflict(
                    f"run id {run.run_id!r} is taken by another run; choose another id, or"
                    " none (a new one is made)"
                )
            await tx.execute(INSERT_RUN, run_values(run))
            for entry in entries:
                await upsert_entry(tx, dataclasses.replace(entry, run_id=run.run_id))
            await append_chain(tx, [audit], run.created_at)
            await tx.notify()
            return run, True

        return await self._transact(work)
