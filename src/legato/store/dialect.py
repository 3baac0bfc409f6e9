"""The seam between the store's domain logic and a SQL dialect.

The logic (park a run, decide an approval, chain the audit log ...) is written once, as
``async`` functions of a :class:`Tx`, in the role modules (``runs``, ``journal``, ``approvals``,
``audit``, ``usage``, ``control``). A dialect supplies three things: the transaction, the
plumbing that runs one (:class:`Dialect`: group commit on SQLite, a pool with retries on
PostgreSQL), and the few words its SQL says differently. Queries are written with ``?``
placeholders; PostgreSQL's dialect translates them once per query text.

Where the SQL truly differs a dialect writes the whole method itself: journal writes and new
runs (each dialect batches them its own way), claims, leases, wake-ups and workers.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

T = TypeVar("T")


class Tx(Protocol):
    """One transaction on the database, as the domain logic uses it."""

    #: appended to a SELECT of rows the transaction goes on to change: a row lock where
    #: writers run concurrently (PostgreSQL), nothing where one writer holds the whole
    #: database (SQLite)
    for_update: str
    #: the SQL expression of the rollup shard a write goes to (see ``metrics``): a constant
    #: where one writer holds the database (SQLite), the connection where writers compete
    rollup_shard: str
    #: this is the store's retry of a transaction whose outcome it could not learn (the
    #: connection dropped): it may have committed, and what it finds may be its own doing
    retried: bool

    async def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; how many rows it changed."""

    async def execute_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The first row, or None."""

    async def all(self, query: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def notify(self) -> None:
        """Tell waiting workers, once this commits, that a run may be claimable now."""

    async def lock_run(self, run_id: str | None) -> None:
        """Hold the run's row until commit (serializes a child's end with its parent's park)."""

    async def lock_audit(self) -> None:
        """Hold the audit chain until commit: one writer appends (and counts throttles)."""

    async def runs_ended(self, run_ids: Sequence[str]) -> None:
        """Tell whoever waits for these runs' results (``Store.wait_for_end``) that they
        ended, once this commits."""


Work = Callable[[Tx], Coroutine[Any, Any, T]]


def redact_url(url: str) -> str:
    """The URL as it may be shown: without a password in the authority or the query."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if "@" in rest.split("/", 1)[0]:
            auth, host = rest.split("@", 1)
            rest = f"{auth.split(':', 1)[0]}@{host}"
        url = f"{scheme}://{rest}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


class Dialect(ABC):
    """The plumbing a store over SQL implements; the role classes build on it."""

    url: str
    #: how many values one ``_any_of`` may carry (SQLite caps a statement's parameters)
    _LIST_LIMIT: ClassVar[int]
    #: whether a WITH may hold INSERTs and UPDATEs (PostgreSQL), so that several writes make
    #: one statement, atomic without a transaction around it
    _WRITES_IN_WITH: ClassVar[bool] = False

    @staticmethod
    @abstractmethod
    def _any_of(values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        """``"IN (?, ?)"`` or ``"= ANY(?)"``, to follow a column, and its parameters."""

    @abstractmethod
    def _transact(
        self, work: Work[T], *, after: str | None = None, one_statement: bool = False
    ) -> Awaitable[T]:
        """Run ``work`` in a write transaction. ``after``: a run whose journal writes queued
        before this must land first (a fenced write of its owner). ``one_statement``: work
        that sends a single statement, atomic without a transaction around it."""

    @abstractmethod
    async def _select(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read, outside any write transaction."""

    def _shown(self) -> str:
        """The database as messages name it (without a password)."""
        return redact_url(self.url)


def marks(count: int) -> str:
    return ", ".join("?" * count)


def chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE`` and each condition (``"column = ?"``) whose value is given (not None), and
    those values; nothing when none is."""
    given = [(condition, value) for condition, value in conditions if value is not None]
    if not given:
        return "", []
    return "WHERE " + " AND ".join(c for c, _ in given), [v for _, v in given]


def page(head: str, order: str, limit: int, *conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``head`` (a SELECT) with the conditions given (see ``where``), in ``order``, at most
    ``limit`` rows; and its parameters."""
    clause, params = where(*conditions)
    return f"{head} {clause} ORDER BY {order} LIMIT ?", [*params, limit]
