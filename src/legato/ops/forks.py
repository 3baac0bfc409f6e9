"""Which entries a fork keeps: the journal of a run as it was when one of its entries started.

A fork (``legato fork RUN --from ENTRY``) is a new run whose journal is a copy of the entries
the source recorded before ENTRY, so on its first execution it replays them as recorded and
runs ENTRY and everything after it afresh (DBOS ``fork_workflow``, Temporal's reset, LangGraph's
time travel). "Before" is the order in which operations took their place in the journal (its
storage numbers), across branches: an entry of a concurrent branch that started before ENTRY
is kept, one that started after it runs again.

Only entries that had ended are kept (completed, or failed as the workflow saw them): a wait
still open (a sleep, an event, an approval, a child run, a step between retries) runs again in
the fork, which asks its own approvals and starts its own child runs. A branch keeps a prefix:
once one of its entries runs again, so do the later ones of that branch.
"""

from __future__ import annotations

from legato.errors import ConfigurationError
from legato.store.base import Entry

#: how ended entries look; the others run again in a fork
ENDED = ("completed", "failed")


def find_entry(entries: list[Entry], key: str, run_id: str) -> Entry:
    """The entry of ``run_id`` users know as ``key`` ("3", "0.1")."""
    for e in entries:
        if e.key == key:
            return e
    keys = ", ".join(e.key for e in entries[:30]) + (" ..." if len(entries) > 30 else "")
    raise ConfigurationError(
        f"run {run_id!r} has no entry {key!r}"
        + (f"; its entries are {keys} (see `legato show {run_id}`)" if entries else "; it has"
           " no journal entries yet")
    )  # fmt: skip


def kept_before(entries: list[Entry], cut: Entry) -> list[Entry]:
    """The entries a fork from ``cut`` copies, in storage order."""
    branches: dict[str, list[Entry]] = {}
    for e in entries:
        branches.setdefault(e.branch, []).append(e)
    kept: list[Entry] = []
    for branch in branches.values():
        branch.sort(key=lambda e: (e.position if e.position is not None else e.seq, e.seq))
        for e in branch:
            if e.seq >= cut.seq or e.status not in ENDED:
                break
            kept.append(e)
    return sorted(kept, key=lambda e: e.seq)


__all__ = ["ENDED", "find_entry", "kept_before"]
