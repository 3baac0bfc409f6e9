"""An agent: a model that may call tools, in a loop, inside a durable run.

Every model turn is a journaled ``ctx.llm`` call and every tool call a proposal to the policy
gate with the agent's name as actor, so a crash, a deploy or a week-long approval resumes the
loop exactly where it stopped, and replay pays nothing. Several tool calls from one model turn
are proposed together, each with its own gate decision and approval, bound to its own entry.
The loop stops at ``max_steps`` model turns or when the agent's ``budget`` would be passed, with
a result that says so; the final output is validated against ``output``.

The budget is checked before every model call, like the configured ones: the call's worst case
(its prompt and the most output it may produce) is added to what the agent has spent, so no
turn overshoots it. The agent's prompt keeps the same start from turn to turn (instructions,
tools, then the conversation in order), so providers' prompt caches hit; with ``compact``,
a history that outgrows the window is summarised by a cheap model instead of trimmed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from legato.ai import structured, tokens
from legato.ai.budgets import Allowance
from legato.ai.calls import CallSpec
from legato.ai.config import Budget
from legato.ai.context_window import compactable, transcript
from legato.ai.messages import Message, ModelRequest, ToolSpec, as_messages
from legato.ai.reasoning import Reasoning, checked
from legato.ai.results import BudgetExceeded, LLMResult
from legato.ai.usage import Cost, Usage
from legato.engine.definitions import ToolDef
from legato.errors import ActionDenied, ConfigurationError, StepFailed
from legato.governance.arguments import InvalidArguments
from legato.store.usage import UsageTotals

if TYPE_CHECKING:
    from legato.context import Context

T = TypeVar("T")
FINAL = "final_result"
Status = Literal["completed", "max_steps", "budget"]


class AgentToolCall(BaseModel):
    """A tool call the agent asked for, and what came of it.

    ``arguments`` are the model's; ``edited_arguments`` are what the tool ran with when an
    approver changed them (None: it ran with the model's).
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    arguments: dict[str, Any]
    outcome: Literal["ok", "denied", "failed", "invalid", "unknown"]
    result: Any = None
    edited_arguments: dict[str, Any] | None = None


@dataclass(frozen=True)
class Compaction:
    """How an agent compacts its history instead of trimming it.

    Before a turn whose prompt is estimated above ``at`` of the context window of the
    agent's model (the smallest among its candidates), the turns between the task and the
    latest ``keep`` go to ``model`` (a cheap alias) to be summarised; the summary replaces
    them. The summary is a journaled ``ctx.llm`` call, checked against the budgets (the
    agent's too) like any other.
    """

    model: str
    at: float = 0.75
    keep: int = 4
    instructions: str = (
        "Summarise this part of an agent's work for the agent itself: the facts found, tool"
        " results that matter, decisions taken and what is still open. Be complete but brief;"
        " no preamble."
    )

    def __post_init__(self) -> None:
        if not 0 < self.at <= 1:
            raise ConfigurationError(f"Compaction.at must be in (0, 1], got {self.at}")
        if self.keep < 1:
            raise ConfigurationError(f"Compaction.keep must be at least 1, got {self.keep}")


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
    #: times the history was summarised to fit (see :class:`Compaction`)
    compactions: int = 0

    @property
    def completed(self) -> bool:
        return self.status == "completed"


class Agent(Generic[T]):
    """``Agent(name, model, instructions, tools=[...], output=Type, max_steps=, budget=)``.

    ``tools`` are functions decorated with ``@app.tool``; ``name`` is the actor the policy
    gate sees (autonomy levels and throttles apply per agent). ``budget`` limits this agent's
    own calls, tokens and USD within one ``run`` (the run's budgets apply as well), checked
    before every call. ``reasoning`` is the depth of every turn (see ``ctx.llm``);
    ``compact`` summarises a history that outgrows the window (see :class:`Compaction`).
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
        reasoning: Reasoning | None = None,
        compact: Compaction | None = None,
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
        self.reasoning = None if reasoning is None else checked(reasoning, "agent reasoning")
        self.compact = compact
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
        spend = _Spend()
        for step in range(1, self.max_steps + 1):
            try:
                messages = await self._compacted(ctx, messages, specs, spend)
                result = await self._llm(
                    ctx, spend, messages, model=self.model, system=self.instructions,
                    tools=specs, reasoning=self.reasoning,
                )  # fmt: skip
            except BudgetExceeded as exc:
                return self._end("budget", str(exc), step - 1, calls, spend)
            messages.append(Message(role="assistant", content=result.text,
                                    tool_calls=tuple(result.tool_calls),
                                    thinking=tuple(result.thinking)))  # fmt: skip
            final = next((c for c in result.tool_calls if c.name == FINAL), None)
            if final is not None:
                done, answer = self._final(final.arguments)
                if done:
                    return self._end("completed", "", step, calls, spend, answer, result.text)
                messages.extend(self._answer_all(result, {final.id: answer}))
                continue
            if result.tool_calls and step == self.max_steps:
                break  # no turn is left to read their results: do not act on them
            if not result.tool_calls:
                if self.output is None:
                    return self._end("completed", "", step, calls, spend, None, result.text)
                messages.append(Message(role="user", content=(
                    f"Answer by calling the {FINAL} tool with the required fields."
                )))  # fmt: skip
                continue
            outcomes = await asyncio.gather(*(self._call(ctx, c) for c in result.tool_calls))
            calls.extend(outcomes)
            for call, outcome in zip(result.tool_calls, outcomes, strict=True):
                told: dict[str, Any] = {"outcome": outcome.outcome, "result": outcome.result}
                if outcome.edited_arguments is not None:  # the model should know what ran
                    told["edited_arguments"] = outcome.edited_arguments
                messages.append(Message(role="tool", content=json.dumps(told, default=str),
                                        tool_call_id=call.id, name=call.name))  # fmt: skip
        return self._end(
            "max_steps", f"stopped after {self.max_steps} model turns without a final answer",
            self.max_steps, calls, spend,
        )  # fmt: skip

    async def _llm(
        self, ctx: Context, spend: _Spend, messages: Sequence[Message], *, model: str,
        system: str, tools: tuple[ToolSpec, ...] = (), reasoning: Reasoning | None = None,
    ) -> LLMResult[Any]:  # fmt: skip
        """One journaled model call, checked against the agent's budget before it is sent."""
        allowances = () if self.budget is None else (spend.allowance(self.name, self.budget),)
        spec = CallSpec(model=model, messages=tuple(messages), system=system, tools=tools,
                        reasoning=reasoning, allowances=allowances)  # fmt: skip
        result = await ctx._execution.llm(spec, None)
        spend.add(result)
        return result

    async def _compacted(
        self, ctx: Context, messages: list[Message], specs: tuple[ToolSpec, ...], spend: _Spend
    ) -> list[Message]:
        """The history, with its older turns summarised if it outgrows the window."""
        plan = self.compact
        if plan is None:
            return messages
        prompt = ModelRequest(messages=tuple(messages), system=self.instructions, tools=specs)
        if tokens.estimate_request(prompt, "") <= plan.at * ctx._execution.context_window(
            self.model
        ):
            return messages
        split = compactable(messages, plan.keep)
        if split is None:  # nothing between the task and the latest turns: trimming will do
            return messages
        head, older, latest = split
        summary = await self._llm(
            ctx, spend, [Message(role="user", content=transcript(older))], model=plan.model,
            system=plan.instructions,
        )  # fmt: skip
        spend.compactions += 1
        note = (
            f"[{len(older)} earlier messages were summarised to fit the context window]\n"
            f"{summary.text}"
        )
        return [*head, Message(role="user", content=note), *latest]

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
            value, edited = await ctx._execution.tool_call(
                definition, dict(call.arguments), self.name
            )
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
                             result=_jsonable(value), edited_arguments=edited)  # fmt: skip

    def _end(
        self, status: Status, reason: str, steps: int, calls: list[AgentToolCall],
        spend: _Spend, output: Any = None, text: str = "",
    ) -> AgentResult[T]:  # fmt: skip
        return AgentResult[T](status=status, reason=reason, output=output, text=text,
                              steps=steps, tool_calls=calls, usage=spend.usage, cost=spend.cost,
                              compactions=spend.compactions)  # fmt: skip

    def __repr__(self) -> str:
        return f"<legato.Agent {self.name!r} model={self.model!r} tools={sorted(self.tools)}>"


@dataclass
class _Spend:
    """What an agent's model calls have used so far (its summaries too)."""

    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: Cost = field(default_factory=Cost)
    known_nanousd: int = 0
    unknown_cost_calls: int = 0
    compactions: int = 0

    def add(self, result: LLMResult[Any]) -> None:
        self.calls += 1
        self.usage, self.cost = self.usage + result.usage, self.cost + result.cost
        nano = result.cost.nanousd
        self.known_nanousd += nano or 0
        self.unknown_cost_calls += nano is None

    def allowance(self, name: str, budget: Budget) -> Allowance:
        spent = UsageTotals(
            calls=self.calls, input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens, cost_nanousd=self.known_nanousd,
            unknown_cost_calls=self.unknown_cost_calls,
        )  # fmt: skip
        return Allowance(f"agent {name!r}", budget, spent)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
