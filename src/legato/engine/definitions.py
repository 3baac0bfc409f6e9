"""What ``@app.workflow`` and ``@app.step`` register: a function plus what the engine needs."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from legato import serde
from legato.engine.determinism import check_workflow
from legato.engine.runtime import current_execution, inside_step
from legato.errors import ConfigurationError, SerializationError
from legato.governance import RISKS, json_schema_for
from legato.retry import RetryPolicy
from legato.store.records import RunRecord

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(eq=False)
class WorkflowDef:
    """A registered workflow function ``async def f(ctx, *args, **kwargs)``."""

    name: str
    fn: Callable[..., Awaitable[Any]]
    signature: inspect.Signature = field(init=False)
    hints: dict[str, Any] = field(init=False)
    code_version: str = field(init=False)

    def __post_init__(self) -> None:
        if not inspect.iscoroutinefunction(self.fn):
            raise ConfigurationError(
                f"workflow {self.name!r} must be an 'async def' function taking ctx first"
            )
        self.signature = inspect.signature(self.fn)
        if not self.signature.parameters:
            raise ConfigurationError(
                f"workflow {self.name!r} must take the legato.Context as its first parameter"
            )
        self.hints = serde.type_hints(self.fn)
        self.code_version = _code_version(self.fn)
        check_workflow(self.name, self.fn)

    @property
    def returns(self) -> Any:
        return self.hints.get("return", Any)

    def encode_input(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], limit: int | None = None
    ) -> str:
        try:
            self.signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"bad arguments for workflow {self.name!r}: {exc}") from None
        return serde.dumps(
            {"args": list(args), "kwargs": kwargs},
            what=f"the input of workflow {self.name!r}",
            limit=limit,
        )

    def new_run(
        self, run_id: str, text: str, now: float, tenant: str | None, **fields: Any
    ) -> RunRecord:
        """A pending run of this workflow with input ``text`` (see ``encode_input``), due now."""
        return RunRecord(
            run_id=run_id, workflow=self.name, status="pending", input=text,
            code_version=self.code_version, wake_at=now, created_at=now, updated_at=now,
            tenant=tenant, **fields,
        )  # fmt: skip

    def decode_input(self, text: str) -> tuple[list[Any], dict[str, Any]]:
        raw = serde.loads(text)
        bound = self.signature.bind(None, *raw["args"], **raw["kwargs"])
        what = f"input of workflow {self.name!r}"
        for pname, value in list(bound.arguments.items())[1:]:
            if pname in self.hints and value is not None:
                param = self.signature.parameters[pname]
                annotation: Any = self.hints[pname]
                generic: Any
                if param.kind is inspect.Parameter.VAR_POSITIONAL:
                    generic = tuple
                    annotation = generic[annotation, ...]
                elif param.kind is inspect.Parameter.VAR_KEYWORD:
                    generic = dict
                    annotation = generic[str, annotation]
                bound.arguments[pname] = serde.coerce(value, annotation, what=what)
        return list(bound.args[1:]), dict(bound.kwargs)


@dataclass(eq=False)
class StepDef:
    """A registered step: a sync or async function whose result is journaled."""

    name: str
    fn: Callable[..., Any]
    retry: RetryPolicy
    timeout: float | None
    is_async: bool = field(init=False)
    returns: Any = field(init=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.returns = serde.type_hints(self.fn).get("return", Any)


@dataclass(eq=False)
class ToolDef:
    """A registered tool: an action an agent or workflow may propose, gated by policy."""

    name: str
    fn: Callable[..., Any]
    risk: str
    description: str
    # A tool acts on the world: by default it is not retried (a person may have approved it).
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=1, jitter=False))
    timeout: float | None = None
    step: StepDef = field(init=False)
    schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        if self.risk not in RISKS:
            raise ConfigurationError(
                f"tool {self.name!r}: risk must be one of {', '.join(RISKS)}, got {self.risk!r}"
            )
        self.schema = json_schema_for(self.fn)
        self.step = StepDef(self.name, self.fn, self.retry, self.timeout)


class Tool(Generic[P, R]):
    """The callable that ``@app.tool`` returns.

    Inside a workflow, calling it (with keyword arguments) proposes the call to the gate, as
    ``ctx.tool(tool, **args)`` does; outside any workflow it simply runs the function.
    """

    def __init__(self, definition: ToolDef) -> None:
        self.definition = definition
        _stand_in(self, definition.fn, definition.name)

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the tool's parameters (what an agent is shown)."""
        return self.definition.schema

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        execution = current_execution()
        if execution is None:
            if inside_step():  # the gate cannot see it from there: refuse rather than bypass
                raise ConfigurationError(
                    f"tool {self.definition.name!r} was called inside a step; call it from the"
                    " workflow, where the policy gate checks it"
                )
            result: Awaitable[R] = self.definition.fn(*args, **kwargs)
            return result
        if args:
            raise ConfigurationError(
                f"call tool {self.definition.name!r} with keyword arguments inside a workflow"
                " (they are what the policy checks and the approver sees)"
            )
        return execution.tool(self.definition, dict(kwargs), None)

    def __repr__(self) -> str:
        return f"<legato tool {self.definition.name!r} risk={self.definition.risk}>"


class StepDecorator(Protocol):
    """What ``@app.step(...)`` with options returns."""

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Step[P, R]: ...


class Step(Generic[P, R]):
    """The callable that ``@app.step`` returns.

    Inside a workflow, calling it returns an awaitable whose result is journaled (and replayed).
    Outside any workflow (or inside another step) it simply runs the function: an async step
    returns its coroutine, a sync step its result.
    """

    def __init__(self, definition: StepDef) -> None:
        self.definition = definition
        _stand_in(self, definition.fn, definition.name)

    @property
    def fn(self) -> Callable[P, Any]:
        """The undecorated function."""
        return self.definition.fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        execution = current_execution()
        if execution is None:
            result: Awaitable[R] = self.definition.fn(*args, **kwargs)
            return result
        return execution.step(self.definition, args, kwargs)

    def __repr__(self) -> str:
        return f"<legato step {self.definition.name!r}>"


def _stand_in(wrapper: object, fn: Callable[..., Any], name: str) -> None:
    """Make ``wrapper`` look like the function it decorates (name, doc, ``__wrapped__``)."""
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(fn, "__name__", name)  # type: ignore[attr-defined]
    wrapper.__doc__ = fn.__doc__


def _code_version(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        source = getattr(getattr(fn, "__code__", None), "co_code", b"")
    return hashlib.sha256(source).hexdigest()[:12]


def qualified_name(fn: Callable[..., Any], name: str | None) -> str:
    if name is not None:
        if not name or not isinstance(name, str):
            raise ConfigurationError("a workflow or step name must be a non-empty string")
        return name
    return str(getattr(fn, "__name__", repr(fn)))


__all__ = [
    "SerializationError",
    "Step",
    "StepDecorator",
    "StepDef",
    "WorkflowDef",
    "qualified_name",
]
