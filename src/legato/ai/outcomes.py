"""What became of one candidate of a model call: a value, never an exception.

The pipeline (pipeline.py) takes a candidate through its stages and returns one of these; the
routing strategies (routing.py) decide from them alone what happens next. :class:`Tally` keeps
them in order: they are the call's journaled ``attempts``, and what it used and cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from legato.ai.messages import EmbeddingResponse, ModelRequest, ModelResponse
from legato.ai.model import ModelError
from legato.ai.reasoning import Reasoning
from legato.ai.results import Attempt
from legato.ai.usage import Cost, Usage

if TYPE_CHECKING:
    from legato.ai.budgets import Overrun
    from legato.ai.model import Model

R = TypeVar("R", bound=ModelResponse | EmbeddingResponse)


@dataclass(frozen=True, slots=True)
class Skipped:
    """Not sent: an open breaker, a deployment that cannot serve the call, data the rules
    forbid sending there (``blocked``), or a budget downgrade away from it."""

    deployment: str
    reason: str
    blocked: frozenset[str] = frozenset()

    def attempt(self) -> Attempt:
        return Attempt(deployment=self.deployment, outcome="skipped", reason=self.reason)


@dataclass(frozen=True, slots=True)
class Failed:
    """Sent, and the provider failed."""

    deployment: str
    error: ModelError

    @property
    def transient(self) -> bool:
        """A later try may work: the engine retries a call whose candidates all failed so."""
        return self.error.transient

    @property
    def fatal(self) -> bool:
        """The request itself is wrong: another deployment would refuse it too."""
        return self.error.kind == "bad_request"

    def attempt(self) -> Attempt:
        if self.error.kind == "unsupported":
            reason = f"{self.error.feature} unsupported, asking another way: {self.error}"
        else:
            reason = f"{'transient' if self.transient else 'final'} {self.error}"
        return Attempt(deployment=self.deployment, outcome="error", reason=reason)


@dataclass(frozen=True, slots=True)
class OverBudget:
    """Not sent: it would pass a budget. Not an attempt: it ends the call, or a downgrade
    records it as a skip."""

    deployment: str
    overrun: Overrun


@dataclass(frozen=True, slots=True)
class Answered(Generic[R]):
    """An answer that passed validation (from the provider, or the response cache)."""

    model: Model
    request: ModelRequest
    response: R
    cost: Cost
    latency_ms: int
    cached: bool = False
    cache_key: str | None = None  # where a fresh answer goes once it is accepted
    output: Any = None
    trimmed: int = 0  # turns dropped to fit the context window
    estimated: int = 0  # prompt tokens estimated before sending (the template's included)

    @property
    def deployment(self) -> str:
        return self.model.id

    @property
    def usage(self) -> Usage:
        return self.response.usage

    def attempt(self) -> Attempt:
        return Attempt(
            deployment=self.deployment, outcome="cached" if self.cached else "ok",
            reason="from the response cache" if self.cached else "",
            usage=self.usage, cost=self.cost, latency_ms=self.latency_ms,
            reasoning=self.request.reasoning,
        )  # fmt: skip

    def rejected(self, reason: str, wanted: str = "output") -> Rejected:
        return Rejected(
            deployment=self.deployment, reason=reason, wanted=wanted, usage=self.usage,
            cost=self.cost, latency_ms=self.latency_ms, reasoning=self.request.reasoning,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answered, but not acceptable: the output did not validate (``reason`` says why), or
    the cascade's evaluator said no. ``escalated``: a cascade moved on from it."""

    deployment: str
    reason: str
    wanted: str  # the output type's name, for the error
    usage: Usage
    cost: Cost
    latency_ms: int
    escalated: bool = False
    reasoning: Reasoning | None = None

    def attempt(self) -> Attempt:
        return Attempt(
            deployment=self.deployment, outcome="escalated" if self.escalated else "invalid",
            reason=self.reason, usage=self.usage, cost=self.cost, latency_ms=self.latency_ms,
            reasoning=self.reasoning,
        )  # fmt: skip


#: what a candidate comes back as
Outcome = Answered[Any] | Rejected | Failed | Skipped | OverBudget
#: what lands in the journal's ``attempts``
Record = Answered[Any] | Rejected | Failed | Skipped


@dataclass
class Tally:
    """Every attempt of one call, in order, and the data classes redacted on the way."""

    records: list[Record] = field(default_factory=list)
    redacted: dict[str, int] = field(default_factory=dict)
    #: what was changed or left out on the way (journaled with the result), once each
    notes: list[str] = field(default_factory=list)

    def add(self, record: Record) -> None:
        self.records.append(record)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def escalate(self, rejected: Rejected) -> None:
        """A cascade moved on from ``rejected``: the candidate's last attempt (its answer)
        is recorded as escalated."""
        assert self.records and self.records[-1].deployment == rejected.deployment
        self.records[-1] = replace(rejected, escalated=True)

    def redact(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.redacted[name] = max(self.redacted.get(name, 0), n)

    @property
    def attempts(self) -> list[Attempt]:
        return [r.attempt() for r in self.records]

    @property
    def usage(self) -> Usage:
        """What the requests used: answers, rejected answers and repairs alike."""
        return sum((r.usage for r in self._paid()), Usage())

    @property
    def cost(self) -> Cost:
        return sum((r.cost for r in self._paid()), Cost())

    def _paid(self) -> list[Answered[Any] | Rejected]:
        return [r for r in self.records if isinstance(r, Answered | Rejected)]

    @property
    def blocked(self) -> set[str]:
        """The data classes that kept candidates from being asked."""
        return {c for r in self.records if isinstance(r, Skipped) for c in r.blocked}

    def details(self) -> dict[str, Any]:
        return {"attempts": [a.model_dump(mode="json") for a in self.attempts]}

    def summary(self) -> str:
        return "; ".join(f"{a.deployment}: {a.outcome} {a.reason}" for a in self.attempts)

    def reason(self) -> str:
        """Why the answer came from where it did: the journaled ``routing.reason``."""
        return "; ".join(
            f"{a.deployment}: {a.outcome}{' (' + a.reason + ')' if a.reason else ''}"
            for a in self.attempts
        )
