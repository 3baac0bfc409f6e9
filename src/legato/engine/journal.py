"""Matching a workflow's operations with the entries its journal holds, one cursor per format.

Format 3 (runs started by this version): an entry records its branch and its position in the
branch, and that pair *is* the operation's identity. Replay looks the entry up by it, so an
operation whose entry was never written (in flight at a crash) leaves a hole that the operation
fills when it runs again, under the same key, and later entries of the branch keep theirs.

Formats 2 and 1 are kept for runs started by older versions, and only for them: format 2
matched a branch's operations with its recorded entries in order (a hole shifts every later
entry, the crash bug format 3 fixes); format 1 matched one global sequence.

New entries take storage numbers (``seq``) after the last recorded one. ``seq`` orders rows and
binds approvals and retries to an entry inside the store; users see the entry's ``key``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from legato.engine.runtime import Branch
from legato.store.base import Entry


class Cursor(ABC):
    """Where each branch stands in the recorded journal of one run."""

    def __init__(self, entries: list[Entry]) -> None:
        self.last_recorded = max((e.seq for e in entries), default=-1)
        self.next_seq = self.last_recorded + 1
        self.consumed: set[int] = set()

    @abstractmethod
    def take(self, node: Branch) -> tuple[int, Entry | None, int | None]:
        """The next operation of ``node``: its seq, its recorded entry, its position."""

    @abstractmethod
    def peek(self, node: Branch) -> Entry | None:
        """The entry recorded at ``node``'s next position, if any."""

    @abstractmethod
    def passed(self, node: Branch) -> bool:
        """Whether the run went past ``node``'s next position before (on older code)."""

    @abstractmethod
    def unconsumed(self) -> list[Entry]:
        """Recorded entries no operation matched (the code returned before reaching them)."""

    @property
    def branched(self) -> bool:
        """Whether entries record their branch."""
        return True

    @property
    def at_call(self) -> bool:
        """Whether sleeps, event waits, approvals and child runs take their position where
        they are called (format 3), not when their coroutine starts (formats 1 and 2)."""
        return False

    def _new(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq


class PositionCursor(Cursor):
    """Format 3: an entry is found by (branch, position)."""

    def __init__(self, entries: list[Entry]) -> None:
        super().__init__(entries)
        self.recorded = {(e.branch, e.position): e for e in entries}
        self.ends: dict[str, int] = {}  # one past the last recorded position, per branch
        for e in entries:
            assert e.position is not None, f"format 3 entry {e.seq} of {e.run_id} has no position"
            self.ends[e.branch] = max(self.ends.get(e.branch, 0), e.position + 1)

    @property
    def at_call(self) -> bool:
        return True

    def take(self, node: Branch) -> tuple[int, Entry | None, int | None]:
        position = node.count
        node.count += 1
        entry = self.recorded.get((node.path, position))
        if entry is None:
            return self._new(), None, position
        self.consumed.add(entry.seq)
        return entry.seq, entry, position

    def peek(self, node: Branch) -> Entry | None:
        return self.recorded.get((node.path, node.count))

    def passed(self, node: Branch) -> bool:
        return node.count < self.ends.get(node.path, 0)

    def unconsumed(self) -> list[Entry]:
        return [e for e in self.recorded.values() if e.seq not in self.consumed]


class BranchOrderCursor(Cursor):
    """Format 2 (older runs): a branch's operations match its recorded entries in order."""

    def __init__(self, entries: list[Entry]) -> None:
        super().__init__(entries)
        self.by_branch: dict[str, list[Entry]] = {}
        for entry in sorted(entries, key=lambda e: e.seq):
            self.by_branch.setdefault(entry.branch, []).append(entry)

    def take(self, node: Branch) -> tuple[int, Entry | None, int | None]:
        entry = self.peek(node)
        node.count += 1
        if entry is None:
            return self._new(), None, None
        self.consumed.add(entry.seq)
        return entry.seq, entry, None

    def peek(self, node: Branch) -> Entry | None:
        recorded = self.by_branch.get(node.path, ())
        return recorded[node.count] if node.count < len(recorded) else None

    def passed(self, node: Branch) -> bool:
        return self.peek(node) is not None

    def unconsumed(self) -> list[Entry]:
        return [e for ls in self.by_branch.values() for e in ls if e.seq not in self.consumed]


class SequenceCursor(Cursor):
    """Format 1 (the oldest runs): one global sequence, in the order operations started."""

    def __init__(self, entries: list[Entry]) -> None:
        super().__init__(entries)
        self.recorded = {e.seq: e for e in entries}
        self.next_seq = 0

    @property
    def branched(self) -> bool:
        return False

    def take(self, node: Branch) -> tuple[int, Entry | None, int | None]:
        seq = self._new()
        return seq, self.recorded.get(seq), None

    def peek(self, node: Branch) -> Entry | None:
        return self.recorded.get(self.next_seq)

    def passed(self, node: Branch) -> bool:
        return self.next_seq <= self.last_recorded

    def unconsumed(self) -> list[Entry]:
        return [e for s, e in self.recorded.items() if s >= self.next_seq]


def cursor_for(journal_format: int, entries: list[Entry]) -> Cursor:
    if journal_format >= 3:
        return PositionCursor(entries)
    if journal_format == 2:
        return BranchOrderCursor(entries)
    return SequenceCursor(entries)
