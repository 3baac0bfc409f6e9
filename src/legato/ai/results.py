"""What ``ctx.llm`` returns (and journals), and the errors it raises."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from legato.ai.messages import ToolCall
from legato.ai.reasoning import Reasoning
from legato.ai.usage import Cost, Usage
from legato.errors import LegatoError

T = TypeVar("T")

Outcome = Literal["ok", "error", "invalid", "escalated", "skipped", "cached"]


class Attempt(BaseModel):
    """One thing the router did for a call: a request sent (or skipped), and how it went."""

    model_config = ConfigDict(frozen=True)

    deployment: str
    outcome: Outcome
    reason: str = ""
    usage: Usage = Field(default_factory=Usage)
    cost: Cost = Field(default_factory=Cost)
    latency_ms: int | None = None
    #: the reasoning depth sent (None: none was)
    reasoning: Reasoning | None = None


class Routing(BaseModel):
    """Which deployment answered and why: the journaled record of every routing choice."""

    model_config = ConfigDict(frozen=True)

    requested: str
    strategy: str
    candidates: list[str]
    chosen: str | None = None
    reason: str = ""


class LLMResult(BaseModel, Generic[T]):
    """The result of ``ctx.llm``: text, the parsed output, and what it took to get them."""

    model_config = ConfigDict(frozen=True)

    text: str = ""
    output: T | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    model: str = ""  # the deployment that answered, "provider:model"
    provider: str = ""
    usage: Usage = Field(default_factory=Usage)
    cost: Cost = Field(default_factory=Cost)
    attempts: list[Attempt] = Field(default_factory=list)
    routing: Routing
    #: data classes redacted before the text left for the provider, with counts (never values)
    redacted: dict[str, int] = Field(default_factory=dict)
    #: the prompt tokens estimated before the call, the chat template's included
    estimated_input_tokens: int = 0
    #: how structured output was asked for: ``native``, ``json_object``, ``tool`` or
    #: ``prompted`` (None without ``output=``); see models.md for the negotiation
    output_mode: str | None = None
    finish_reason: str | None = None
    cached: bool = False
    trimmed_messages: int = 0
    #: what legato changed or left out on the way, e.g. a reasoning depth a deployment ignores
    notes: list[str] = Field(default_factory=list)
    #: the provider's reasoning blocks, to send back with this turn (``Message.thinking``)
    thinking: list[dict[str, Any]] = Field(default_factory=list)


class EmbedResult(BaseModel):
    """The result of ``ctx.embed``."""

    model_config = ConfigDict(frozen=True)

    vectors: list[list[float]]
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost: Cost = Field(default_factory=Cost)


class _Detailed(LegatoError):
    """An error with JSON facts in ``details``: they cross the journal, so the error is rebuilt
    the same on replay."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class BudgetExceeded(_Detailed):
    """A model call would pass a budget; it was not sent."""

    code = "budget_exceeded"

    @property
    def scope(self) -> str | None:
        return self.details.get("scope")


class OutputValidationError(_Detailed):
    """No candidate produced output that validates, within the allowed repairs.

    ``attempts`` holds every try, with its deployment, the reason and what it used.
    """

    code = "output_validation"

    @property
    def attempts(self) -> list[Attempt]:
        return [Attempt.model_validate(a) for a in self.details.get("attempts", [])]


class DataBlocked(_Detailed):
    """The prompt holds a data class the policy forbids sending; nothing was sent."""

    code = "data_blocked"


class ModelUnavailable(_Detailed):
    """Every candidate failed or was skipped (see ``details['attempts']``); retried later."""

    code = "model_unavailable"


class _BudgetApproval(_Detailed):
    """Internal: a breach whose policy is to ask a person; ctx.llm parks on an approval."""

    code = "budget_approval"


#: errors that cross the journal as themselves: rebuilt from (type name, message, details)
TYPED_ERRORS: dict[str, type[_Detailed]] = {
    cls.__name__: cls
    for cls in (
        BudgetExceeded,
        OutputValidationError,
        DataBlocked,
        ModelUnavailable,
        _BudgetApproval,
    )
}


def usd(value: Decimal | None) -> str:
    return "unknown" if value is None else f"${value:.6f}".rstrip("0").rstrip(".")
