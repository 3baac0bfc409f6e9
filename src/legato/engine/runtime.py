"""What workflow code sees of the engine while it runs: the context variables that say which run
and which step is executing, the branch a task belongs to, and the task numbering that gives
concurrent branches their names.

A *branch* is an asyncio task of the workflow. Its path names it by creation order: the root
task is ``""``, the first task it starts ``"0/"``, that task's second child ``"0/1/"``. Creation
order is program order, the same on every replay, unlike the order in which branches' journal
writes complete. Tasks are numbered by a task factory on the event loop, installed only while a
run executes on that loop and removed after the last one, so the host's loop is left as found.
A factory installed by someone else that drops the context legato gives a task would leave the
task unnumbered: the next durable operation in it fails the run with a clear error instead of
guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from legato.errors import ConfigurationError, LegatoError

if TYPE_CHECKING:
    import uuid

    from legato.ai.calls import CallSpec
    from legato.ai.results import EmbedResult, LLMResult
    from legato.approvals import Decision
    from legato.engine.definitions import StepDef, ToolDef, WorkflowDef


class Durable(Protocol):
    """What a :class:`legato.Context` (and a called step or tool) asks of the running engine."""

    run_id: str
    workflow: WorkflowDef

    @property
    def is_replaying(self) -> bool: ...

    def step(
        self, step: StepDef, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...

    def wait_for_event(
        self, name: str, timeout: float | None, kind: Any = None
    ) -> Awaitable[Any]: ...

    def approval(self, name: str, data: Any, **asked: Any) -> Awaitable[Decision[Any]]:
        """``ctx.approval``: its options are typed where users see them, on Context."""
        ...

    async def tool(self, tool: ToolDef, args: dict[str, Any], actor: str | None) -> Any: ...

    def child(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]: ...

    async def llm(self, spec: CallSpec, cache: bool | None) -> LLMResult[Any]: ...

    async def embed(self, texts: list[str], model: str) -> EmbedResult: ...

    def now(self) -> datetime: ...

    def random(self) -> float: ...

    def uuid(self) -> uuid.UUID: ...

    def patched(self, change_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step may know about itself (``legato.current_step()``)."""

    run_id: str
    workflow: str
    step: str
    #: the entry's storage number (internal order; in concurrent branches it may differ between
    #: attempts: identify the step by ``entry`` or ``idempotency_key``)
    seq: int
    attempt: int
    #: the entry's identity: its branch and position, the same on every attempt and replay
    entry: str = ""
    _cancel: threading.Event | None = field(default=None, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled while this step runs: a long sync step should look
        now and then and return (its result is not recorded). An async step is cancelled
        (``asyncio.CancelledError``) instead."""
        return self._cancel is not None and self._cancel.is_set()

    @property
    def idempotency_key(self) -> str:
        """Stable across retries, replays and crashes: hand it to external systems for
        exactly-once effects."""
        return f"{self.run_id}:{self.entry or self.seq}"


@dataclass(slots=True)
class Branch:
    """A task of the workflow: its path, how many operations it has made, how many tasks it
    started, and the task itself (known once it makes an operation).

    The task is held weakly: the task's context holds the branch, and a strong reference back
    would make every finished run garbage that only the cycle collector frees."""

    path: str
    count: int = 0
    children: int = 0
    task: weakref.ref[asyncio.Task[Any]] | None = None


_current: contextvars.ContextVar[Durable | None] = contextvars.ContextVar(
    "legato_execution", default=None
)
_step: contextvars.ContextVar[StepInfo | None] = contextvars.ContextVar("legato_step", default=None)
_branch: contextvars.ContextVar[Branch | None] = contextvars.ContextVar(
    "legato_branch", default=None
)


def current_execution() -> Durable | None:
    """The run whose workflow code is executing now, unless we are inside a step."""
    if _step.get() is not None:
        return None
    return _current.get()


def inside_step() -> bool:
    """Whether a workflow's step is executing in this context."""
    return _step.get() is not None and _current.get() is not None


def current_step() -> StepInfo:
    """The step being executed; raises outside a step."""
    info = _step.get()
    if info is None:
        raise LegatoError("legato.current_step() is only available inside a running step")
    return info


def enter_run(execution: Durable, root: Branch) -> None:
    """Mark the calling task as the root branch of ``execution`` (called inside that task)."""
    _current.set(execution)
    task = asyncio.current_task()
    root.task = None if task is None else weakref.ref(task)
    _branch.set(root)


def step_context(info: StepInfo) -> contextvars.Token[StepInfo | None]:
    return _step.set(info)


def leave_step(token: contextvars.Token[StepInfo | None]) -> None:
    _step.reset(token)


def here(root: Branch) -> Branch:
    """The branch of the calling task; fails when a task escaped numbering (see module doc)."""
    node = _branch.get() or root
    task = asyncio.current_task()
    if node.task is None:  # a numbered task's first operation (or an eager task factory)
        node.task = None if task is None else weakref.ref(task)
    elif node.task() is not task:
        factory = asyncio.get_running_loop().get_task_factory()
        raise ConfigurationError(
            f"a task of this workflow was created without legato's branch numbering (task"
            f" factory on the event loop: {factory!r}). Another library replaced the loop's"
            " task factory, or one it wraps drops the `context` argument, so replay could not"
            " tell concurrent branches apart. Remove that factory, or make it pass `context`"
            " (and other keyword arguments) through to the task it creates"
        )
    return node


@dataclass(slots=True)
class _Numbering:
    factory: Callable[..., asyncio.Future[Any]]
    previous: Callable[..., asyncio.Future[Any]] | None
    users: int = 0


_numbering: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Numbering] = (
    weakref.WeakKeyDictionary()
)


@contextlib.contextmanager
def numbered_tasks(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Number the tasks workflows start on ``loop`` while the block runs; on leaving the last
    such block the loop's previous task factory is put back."""
    state = _numbering.get(loop)
    if state is None or loop.get_task_factory() is not state.factory:
        previous = loop.get_task_factory()
        state = _Numbering(_factory(previous), previous, state.users if state else 0)
        _numbering[loop] = state
        loop.set_task_factory(state.factory)
    state.users += 1
    try:
        yield
    finally:
        state.users -= 1
        if state.users == 0 and _numbering.get(loop) is state:
            del _numbering[loop]
            if loop.get_task_factory() is state.factory:
                loop.set_task_factory(state.previous)


def _factory(previous: Callable[..., asyncio.Future[Any]] | None) -> Callable[..., Any]:
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        # the context the task will run in: legato's own tasks pass a fresh one, and are skipped
        # (an empty Context is falsy: test for None, or legato's fresh contexts get numbered)
        context = kwargs.get("context")
        if context is None:
            context = contextvars.copy_context()
        parent = context.get(_branch)
        if parent is not None and context.get(_step) is None and context.get(_current) is not None:
            child = Branch(f"{parent.path}{parent.children}/")
            parent.children += 1
            context.run(_branch.set, child)
            kwargs["context"] = context
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    return factory


__all__ = [
    "Branch",
    "Durable",
    "StepInfo",
    "current_execution",
    "current_step",
    "enter_run",
    "here",
    "inside_step",
    "numbered_tasks",
]
