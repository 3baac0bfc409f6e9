"""The durable primitives a workflow may use, through the ``ctx`` it receives."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from legato.ai.calls import CallSpec
from legato.ai.messages import Message, ToolSpec, as_messages
from legato.ai.reasoning import Reasoning, checked
from legato.ai.results import EmbedResult, LLMResult
from legato.approvals import Decision
from legato.durations import to_seconds
from legato.engine.definitions import ToolDef
from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato.engine.runtime import Durable

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def tool_spec(tool: Callable[..., Any] | ToolSpec) -> ToolSpec:
    """What a model is told about a tool: a ToolSpec, or one made from an @app.tool."""
    if isinstance(tool, ToolSpec):
        return tool
    definition = getattr(tool, "definition", None)
    if not isinstance(definition, ToolDef):
        raise ConfigurationError(
            f"tools must be functions decorated with @app.tool or ToolSpecs, got {tool!r}"
        )
    return ToolSpec(
        name=definition.name, description=definition.description, parameters=definition.schema
    )


class Context:
    """Handed to every workflow as its first argument.

    Workflow code must be deterministic: everything that differs between executions (time,
    randomness, I/O) goes through a step or through this object, so replay sees the same values.
    """

    __slots__ = ("_execution",)
    #: tells governance (which does not import this module) to leave a ``ctx`` parameter out
    #: of a tool's argument schema
    __legato_context__ = True

    def __init__(self, execution: Durable) -> None:
        self._execution = execution

    @property
    def run_id(self) -> str:
        return self._execution.run_id

    @property
    def workflow(self) -> str:
        return self._execution.workflow.name

    @property
    def is_replaying(self) -> bool:
        """True while the code re-executes entries the journal already holds."""
        return self._execution.is_replaying

    # Sleeps, event waits, approvals and child runs are plain methods that return the awaitable:
    # the operation takes its place in the journal where it is called, like a step.
    def sleep(self, duration: timedelta | float) -> Awaitable[None]:
        """Wait durably; a long sleep unloads the run and costs nothing while it lasts."""
        return self._execution.sleep(to_seconds(duration, "sleep duration"))

    @overload
    def wait_for_event(
        self, name: str, *, timeout: timedelta | float | None = None, type: None = None
    ) -> Awaitable[Any]: ...

    @overload
    def wait_for_event(
        self, name: str, *, timeout: timedelta | float | None = None, type: type[T]
    ) -> Awaitable[T]: ...

    def wait_for_event(
        self,
        name: str,
        *,
        timeout: timedelta | float | None = None,
        type: type[Any] | None = None,
    ) -> Awaitable[Any]:
        """Wait for an event sent with ``app.send_event(run_id, name, payload)``.

        An event sent before the wait is buffered and returned at once. With ``timeout``,
        :class:`legato.EventTimeout` is raised when it passes. With ``type``, the payload is
        validated into that type.
        """
        if not name:
            raise ConfigurationError("an event name must be a non-empty string")
        seconds = None if timeout is None else to_seconds(timeout, "event timeout")
        return self._execution.wait_for_event(name, seconds, type)

    def approval(
        self,
        name: str,
        data: T = None,  # type: ignore[assignment]
        *,
        prompt: str | None = None,
        assignees: Sequence[str] | None = None,
        timeout: timedelta | float | None = None,
        on_timeout: Literal["reject", "approve", "fail"] = "reject",
    ) -> Awaitable[Decision[T]]:
        """Ask a person to approve ``data``; the run parks until someone decides.

        The approver may edit the data (validated against its type); ``decision.data`` is what
        was approved. With ``timeout``, the approval is rejected, approved, or fails the run
        (``legato.ApprovalTimeout``) when no one decides in time, per ``on_timeout``.
        """
        if not name:
            raise ConfigurationError("an approval name must be a non-empty string")
        if on_timeout not in ("reject", "approve", "fail"):
            raise ConfigurationError(
                f"on_timeout must be 'reject', 'approve' or 'fail', got {on_timeout!r}"
            )
        seconds = None if timeout is None else to_seconds(timeout, "approval timeout")
        return self._execution.approval(
            name, data, prompt=prompt, assignees=list(assignees or ()), timeout=seconds,
            on_timeout=on_timeout,
        )  # fmt: skip

    async def tool(
        self, tool: Callable[..., Any], /, *, actor: str | None = None, **args: Any
    ) -> Any:
        """Propose calling ``tool`` with ``args`` as ``actor`` (default: the workflow).

        The policy gate answers: allow (it runs, journaled like a step), throttle (the run
        waits on a durable timer), require approval (the run parks; the approver may edit the
        arguments), or deny (``legato.ActionDenied``; a rejection raises it too).
        """
        definition = getattr(tool, "definition", None)
        if not isinstance(definition, ToolDef):
            raise ConfigurationError(
                f"ctx.tool() needs a function decorated with @app.tool, got {tool!r}"
            )
        return await self._execution.tool(definition, args, actor)

    def child(
        self,
        workflow: Callable[Concatenate[Context, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Awaitable[R]:
        """Start a child workflow run and wait for its result (it may run on any worker)."""
        result: Awaitable[R] = self._execution.child(workflow, args, kwargs)
        return result

    @overload
    async def llm(
        self,
        prompt: str | Sequence[Message | Mapping[str, Any]],
        *,
        model: str = "fast",
        output: None = None,
        tools: Sequence[Callable[..., Any] | ToolSpec] | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stream: bool = False,
        cache: bool | None = None,
        timeout: timedelta | float | None = None,
        evaluator: Callable[[LLMResult[Any]], bool | Awaitable[bool]] | None = None,
        reasoning: Reasoning | None = None,
    ) -> LLMResult[Any]: ...

    @overload
    async def llm(
        self,
        prompt: str | Sequence[Message | Mapping[str, Any]],
        *,
        model: str = "fast",
        output: type[T],
        tools: Sequence[Callable[..., Any] | ToolSpec] | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stream: bool = False,
        cache: bool | None = None,
        timeout: timedelta | float | None = None,
        evaluator: Callable[[LLMResult[Any]], bool | Awaitable[bool]] | None = None,
        reasoning: Reasoning | None = None,
    ) -> LLMResult[T]: ...

    async def llm(
        self,
        prompt: str | Sequence[Message | Mapping[str, Any]],
        *,
        model: str = "fast",
        output: Any = None,
        tools: Sequence[Callable[..., Any] | ToolSpec] | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stream: bool = False,
        cache: bool | None = None,
        timeout: timedelta | float | None = None,
        evaluator: Callable[[LLMResult[Any]], bool | Awaitable[bool]] | None = None,
        reasoning: Reasoning | None = None,
    ) -> LLMResult[Any]:
        """Call a model: ``model`` is an alias (``fast``, ``strong``, ...) or
        ``provider:model``. Journaled: replay returns the recorded result and pays nothing.

        With ``output`` (a pydantic model or any type pydantic validates) the answer is
        validated into ``result.output``; invalid answers are sent back for repair a bounded
        number of times, then :class:`legato.OutputValidationError`. ``tools`` are offered to
        the model; the calls it asks for come back in ``result.tool_calls`` (not run: an
        :class:`legato.Agent` runs them through the policy gate). Budgets are checked before
        every request; a breach fails (:class:`legato.BudgetExceeded`), downgrades, or parks
        the run on an approval to raise the limit, as configured. ``evaluator`` (cascade
        strategy) rejects an answer to escalate to the next candidate. ``reasoning``
        (``"none"``, ``"low"``, ``"medium"``, ``"high"`` or a number of thinking tokens) sets
        how hard the model may think, over the alias's own depth; a deployment without a
        reasoning control is sent none, and ``result.notes`` says so.
        """
        if max_tokens is not None and max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be at least 1, got {max_tokens}")
        spec = CallSpec(
            model=model,
            messages=as_messages(prompt),
            system=system,
            tools=tuple(tool_spec(t) for t in tools or ()),
            output=output,
            temperature=temperature,
            max_tokens=max_tokens,
            stream=stream,
            timeout=None if timeout is None else to_seconds(timeout, "timeout"),
            evaluator=evaluator,
            reasoning=None if reasoning is None else checked(reasoning),
        )
        return await self._execution.llm(spec, cache)

    async def embed(self, texts: str | Sequence[str], *, model: str = "embed") -> EmbedResult:
        """Embedding vectors for ``texts`` (journaled like ``llm``)."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or not all(isinstance(t, str) for t in items):
            raise ConfigurationError("ctx.embed() needs a string or a non-empty list of strings")
        return await self._execution.embed(items, model)

    def set_status(self, status: Any) -> None:
        """Say how far the run is, for people and programs watching it: ``legato runs``,
        ``legato show``, their JSON, ``RunHandle.custom_status()``.

        ``status`` is any small JSON value (at most 4 KiB), e.g.
        ``{"phase": "scoring", "done": 14, "of": 40}``; each call replaces the last. It is
        journaled like other operations: a replay does not write it again, and a retry or a
        fork shows the last status recorded before the entry it resumes from.
        """
        self._execution.set_status(status)

    def now(self) -> datetime:
        """The current time, recorded on first execution and replayed after."""
        return self._execution.now()

    def random(self) -> float:
        """A random float in [0, 1), recorded on first execution and replayed after."""
        return self._execution.random()

    def uuid(self) -> uuid.UUID:
        """A random UUID, recorded on first execution and replayed after."""
        return self._execution.uuid()

    def patched(self, change_id: str) -> bool:
        """True where new code may run; False in runs that passed here on the old code.

        Wrap a change to a workflow that has runs in flight::

            if ctx.patched("send-sms"):
                await send_sms(...)
        """
        if not change_id:
            raise ConfigurationError("a patch id must be a non-empty string")
        return self._execution.patched(change_id)

    def __repr__(self) -> str:
        return f"<legato.Context run={self.run_id!r} workflow={self.workflow!r}>"
