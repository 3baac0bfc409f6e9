"""An agent: a model that may call tools, in a loop, inside a durable run.

Every model turn is a journaled ``ctx.llm`` call and every tool call a proposal to the policy
gate with the agent's name as actor, so a crash, a deploy or a week-long approval resumes the
loop exactly where it stopped, and replay pays nothing. Several tool calls from one model turn
are proposed together, each with its own gate decision and approval, bound to its own entry.
The loop stops at ``max_steps`` model turns or when the agent's ``budget`` is spent, with a
result that says so; the final output is validated against ``output``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from legato.ai import structured
from legato.ai.config import Budget
from legato.ai.messages import Message, ToolSpec, as_messages
from legato.ai.results import BudgetExceeded, LLMResult
from legato.ai.usage import Cost, Usage
from legato.engine.definitions import ToolDef
from legato.errors import ActionDenied, ConfigurationError, StepFailed
from legato.governance.arguments import InvalidArguments

if TYPE_CHECKING:
    from legato.context import Context

T = TypeVar("T")
FINAL = "final_result"
Status = Literal["completed", "max_steps", "budget"]


class AgentToolCall(BaseModel):
    """A tool call the agent asked for, and what came of it."""

    model_config = ConfigDict(frozen=True)

    tool: str
    arguments: dict[str, Any]
    outcome: Literal["ok", "denied", "failed", "invalid", "unknown"]
    result: Any = None


class AgentResult(BaseModel, Generic[T]):
    """How an agent run ended: ``status`` is ``completed`` only when it produced its answer."""

    model_config = ConfigDict(frozen=True)

    status: Status
    reason: str = ""
    output: T | None = None
    text: str = ""
    steps: int = 0
    tool_calls: list[AgentToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost: Cost = Field(default_factory=Cost)

    @property
    def completed(self) -> bool:
        return self.status == "completed"


class Agent(Generic[T]):
    """``Agent(name, model, instructions, tools=[...], output=Type, max_steps=, budget=)``.

    ``tools`` are functions decorated with ``@app.tool``; ``name`` is the actor the policy
    gate sees (autonomy levels and throttles apply per agent). ``budget`` limits this agent's
    own calls, tokens and USD within one ``run`` (the run's budgets apply as well).
    """

    def __init__(
        self,
        name: str,
        model: str,
        instructions: str,
        *,
        tools: Sequence[Callable[..., Any]] = (),
        output: type[T] | None = None,
        max_steps: int = 10,
        budget: Budget | None = None,
    ) -> None:
        if not name:
            raise ConfigurationError("an agent needs a name (the gate's actor)")
        if max_steps < 1:
            raise ConfigurationError(f"max_steps must be at least 1, got {max_steps}")
        self.name = name
        self.model = model
        self.instructions = instructions
        self.output = output
        self.max_steps = max_steps
        self.budget = budget
        self.tools: dict[str, tuple[Callable[..., Any], ToolDef]] = {}
        for tool in tools:
            definition = getattr(tool, "definition", None)
            if not isinstance(definition, ToolDef):
                raise ConfigurationError(
                    f"agent {name!r}: tools must be decorated with @app.tool, got {tool!r}"
                )
            if definition.name == FINAL:
                raise ConfigurationError(f"agent {name!r}: the tool name {FINAL!r} is reserved")
            self.tools[definition.name] = (tool, definition)

    def _specs(self) -> tuple[ToolSpec, ...]:
        specs = [
            ToolSpec(name=d.name, description=d.description, parameters=d.schema)
            for _, d in self.tools.values()
        ]
        if self.output is not None:  # answering is a tool call too, offered last
            specs.append(ToolSpec(name=FINAL, description="Give the final answer.",
                                  parameters=structured.schema_of(self.output)))  # fmt: skip
        return tuple(specs)

    async def run(
        self, ctx: Context, task: str | Sequence[Message | dict[str, Any]]
    ) -> AgentResult[T]:
        """Work on ``task`` until the answer, ``max_steps`` model turns, or the budget."""
        messages: list[Message] = list(as_messages(task))
        specs = self._specs()
        calls: list[AgentToolCall] = []
        usage, cost = Usage(), Cost()
        for step in range(1, self.max_steps + 1):
            spent = self._spent(step - 1, usage, cost)
            if spent:
                return self._end("budget", spent, step - 1, calls, usage, cost)
            try:
                result: LLMResult[Any] = await ctx.llm(
                    messages, model=self.model, system=self.instructions, tools=specs
                )
            except BudgetExceeded as exc:
                return self._end("budget", str(exc), step - 1, calls, usage, cost)
            usage, cost = usage + result.usage, cost + result.cost
            messages.append(
                Message(role="assistant", content=result.text, tool_calls=tuple(result.tool_calls))
            )
            final = next((c for c in result.tool_calls if c.name == FINAL), None)
            if final is not None:
                done, answer = self._final(final.arguments)
                if done:
                    return self._end("completed", "", step, calls, usage, cost, answer, result.text)
                messages.extend(self._answer_all(result, {final.id: answer}))
                continue
            if result.tool_calls and step == self.max_steps:
                break  # no turn is left to read their results: do not act on them
            if not result.tool_calls:
                if self.output is None:
                    return self._end("completed", "", step, calls, usage, cost, None, result.text)
                messages.append(Message(role="user", content=(
                    f"Answer by calling the {FINAL} tool with the required fields."
                )))  # fmt: skip
                continue
            outcomes = await asyncio.gather(*(self._call(ctx, c) for c in result.tool_calls))
            calls.extend(outcomes)
            for call, outcome in zip(result.tool_calls, outcomes, strict=True):
                content = json.dumps({"outcome": outcome.outcome, "result": outcome.result},
                                     default=str)  # fmt: skip
                messages.append(
                    Message(role="tool", content=content, tool_call_id=call.id, name=call.name)
                )
        return self._end(
            "max_steps", f"stopped after {self.max_steps} model turns without a final answer",
            self.max_steps, calls, usage, cost,
        )  # fmt: skip

    def _answer_all(self, result: LLMResult[Any], notes: dict[str, str]) -> list[Message]:
        return [
            Message(role="tool", tool_call_id=c.id, name=c.name,
                    content=notes.get(c.id, "Not run: the final answer was not valid."))
            for c in result.tool_calls
        ]  # fmt: skip

    def _final(self, arguments: dict[str, Any]) -> tuple[bool, Any]:
        from pydantic import TypeAdapter, ValidationError

        wanted: Any = self.output
        adapter: TypeAdapter[Any] = TypeAdapter(wanted)
        try:
            return True, adapter.validate_python(arguments)
        except ValidationError as exc:
            return False, f"The final answer did not validate: {exc.errors(include_url=False)}"

    async def _call(self, ctx: Context, call: Any) -> AgentToolCall:
        entry = self.tools.get(call.name)
        if entry is None:
            return AgentToolCall(tool=call.name, arguments=call.arguments, outcome="unknown",
                                 result=f"no tool named {call.name!r}")  # fmt: skip
        _, definition = entry
        try:
            # not ctx.tool(..., **arguments): a model could pass an argument named "actor"
            value = await ctx._execution.tool(definition, dict(call.arguments), self.name)
        except ActionDenied as exc:
            return AgentToolCall(tool=call.name, arguments=call.arguments, outcome="denied",
                                 result=str(exc))  # fmt: skip
        except InvalidArguments as exc:
            return AgentToolCall(tool=call.name, arguments=call.arguments, outcome="invalid",
                                 result=str(exc))  # fmt: skip
        except StepFailed as exc:
            return AgentToolCall(tool=call.name, arguments=call.arguments, outcome="failed",
                                 result=str(exc))  # fmt: skip
        return AgentToolCall(tool=call.name, arguments=call.arguments, outcome="ok",
                             result=_jsonable(value))  # fmt: skip

    def _spent(self, steps: int, usage: Usage, cost: Cost) -> str | None:
        b = self.budget
        if b is None:
            return None
        if b.calls is not None and steps >= b.calls:
            return f"agent {self.name!r} used its {b.calls} model calls"
        if b.tokens is not None and usage.total_tokens >= b.tokens:
            return f"agent {self.name!r} used {usage.total_tokens} of {b.tokens} tokens"
        if b.usd is not None:
            if cost.usd is None and not b.allow_unknown_cost:
                return f"agent {self.name!r} has a USD budget and its cost is unknown"
            if cost.usd is not None and cost.usd >= Decimal(b.usd):
                return f"agent {self.name!r} spent ${cost.usd} of ${b.usd}"
        return None

    def _end(
        self, status: Status, reason: str, steps: int, calls: list[AgentToolCall], usage: Usage,
        cost: Cost, output: Any = None, text: str = "",
    ) -> AgentResult[T]:  # fmt: skip
        return AgentResult[T](status=status, reason=reason, output=output, text=text,
                              steps=steps, tool_calls=calls, usage=usage, cost=cost)  # fmt: skip

    def __repr__(self) -> str:
        return f"<legato.Agent {self.name!r} model={self.model!r} tools={sorted(self.tools)}>"


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
