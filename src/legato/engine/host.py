"""What an execution offers the collaborators that build on its journal (supervision, model calls).

:class:`legato.engine.execution.Execution` implements it; the collaborators depend only on this
interface, so each can be read, typed and tested on its own.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Mapping

    from legato.ai.registry import Models
    from legato.clock import Clock
    from legato.engine.definitions import StepDef, WorkflowDef
    from legato.engine.evaluations import Evaluations
    from legato.engine.waits import Parkable
    from legato.governance import Policy
    from legato.store.base import Entry, EntryStatus, RunRecord, Store

T = TypeVar("T")


class Host(Protocol):
    """One run being executed: its journal, its store, and the primitives built on them."""

    store: Store
    clock: Clock
    run: RunRecord
    run_id: str
    owner: str
    workflow: WorkflowDef
    workflows: Mapping[str, WorkflowDef]
    evaluations: Evaluations
    journal: dict[int, Entry]
    payload_limit: int | None
    policy: Policy | None
    models: Models | None

    @property
    def is_replaying(self) -> bool: ...

    def take(self, kind: str, name: str) -> tuple[int, Entry | None]:
        """The next operation of the calling branch: its seq and its recorded entry."""
        ...

    def key_of(self, seq: int) -> str:
        """The identity users see of entry ``seq``."""
        ...

    def peek_seq(self) -> int:
        """The seq the calling branch's next operation will have."""
        ...

    def make_entry(
        self, seq: int, kind: str, name: str, status: EntryStatus, **fields: Any
    ) -> Entry: ...

    async def io(self, call: Awaitable[T]) -> T:
        """Await a store call made for the workflow (see Execution)."""
        ...

    def lost(self) -> NoReturn:
        """The run's lease is gone: unwind it."""
        ...

    def fatal(self, error: BaseException) -> NoReturn:
        """Fail the run with ``error``, whatever the workflow code catches."""
        ...

    async def parkable(self, seq: int, wait: Parkable, until: Awaitable[T]) -> T: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...

    async def run_step(
        self,
        seq: int,
        entry: Entry | None,
        step: StepDef,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        kind: str = "step",
    ) -> Any: ...


def weak(host: Host) -> Host:
    """A reference to ``host`` for a collaborator it owns: a strong one would make each finished
    execution a reference cycle that only the cycle collector frees, and with many runs in
    flight a worker's memory would grow to the collector's rhythm rather than to its load."""
    return cast(Host, weakref.proxy(host))
