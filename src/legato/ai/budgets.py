"""The budget stage: would this request pass a limit? Asked before every request is sent.

The worst case of the request (its estimated prompt plus the most output it may produce,
priced) is added to what each scope (run, workflow per UTC day, tenant per UTC day) has spent
according to the usage rows. A breach is a value, :class:`Overrun`, carrying what the policy
says to do (fail, downgrade, ask a person) and the facts a person or an error needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from legato.ai import tokens
from legato.ai.results import usd
from legato.store.usage import UsageTotals
from legato.timestamps import format_timestamp

if TYPE_CHECKING:
    from legato.ai.config import Budget, Budgets
    from legato.ai.messages import ModelRequest
    from legato.ai.model import Model
    from legato.ai.registry import Pricing
    from legato.ai.usage import Cost
    from legato.clock import Clock
    from legato.store.base import UsageStore

_NANO = Decimal(1_000_000_000)


class Spender(Protocol):
    """What a budget check reads of where the call runs (a :class:`~legato.ai.calls.CallEnv`)."""

    run_id: str
    workflow: str
    tenant: str | None

    @property
    def store(self) -> UsageStore: ...

    clock: Clock
    budgets: Budgets


@dataclass(frozen=True, slots=True)
class Overrun:
    """A request that would pass a budget: the scope, what to do, and the facts."""

    scope: str
    message: str
    details: dict[str, Any]
    downgrade_to: str | None = None  # the policy downgrades to this alias
    approve: bool = False  # the policy asks a person to raise the limit


def day(clock: Clock) -> str:
    """The UTC day that day budgets and usage rows count in."""
    return format_timestamp(clock.now(), "day")


@dataclass(frozen=True, slots=True)
class Allowance:
    """A limit of the caller's own, checked like the configured ones before each request: an
    agent's budget, and what the agent has spent of it so far. Its breach fails the call or,
    with ``on_breach = "downgrade"``, downgrades it (no one is asked to raise it)."""

    scope: str  # how messages name it: "agent 'reader'"
    budget: Budget
    spent: UsageTotals


async def check(
    env: Spender,
    model: Model,
    request: ModelRequest,
    pricing: Pricing,
    allowances: Sequence[Allowance] = (),
    *,
    prompt_tokens: int | None = None,
) -> Overrun | None:
    """The first scope ``request`` to ``model`` would pass, or None when it may be sent.

    The bound: what the scope spent (reported usage) plus this request's worst case, its
    prompt (``prompt_tokens``: the estimate with the chat template's tokens, else
    :func:`tokens.estimate_request`) and its output cap (:func:`tokens.max_output`, with any
    reasoning allowance). The request is sent only when that stays within every limit, so
    spending stays within a limit as long as the prompt estimate is not below what the server
    counts: exact for OpenAI's models, an estimate that errs high for the rest (see tokens.py).
    """
    scopes = env.budgets.scopes()
    if not scopes and not allowances:
        return None
    est_in = (
        tokens.estimate_request(request, model.name) if prompt_tokens is None else prompt_tokens
    )
    est_out = tokens.max_output(request, model.capabilities)
    estimate = pricing.estimate(est_in, est_out)
    limits: list[tuple[str, Budget, UsageTotals | None]]
    limits = [(scope, budget, None) for scope, budget in scopes]
    limits += [(a.scope, a.budget, a.spent) for a in allowances]
    for scope, budget, known in limits:
        spent = known if known is not None else await _spent(env, scope)
        if spent is None:
            continue
        problem = _problem(budget, spent, est_in + est_out, estimate)
        if problem is None:
            continue
        details = {
            "scope": scope, "problem": problem, "deployment": model.id,
            "limit": budget.model_dump(mode="json", include={"usd", "tokens", "calls"}),
            "spent": {"calls": spent.calls - spent.cache_hits, "tokens": spent.tokens,
                      "usd": str(Decimal(spent.cost_nanousd) / _NANO),
                      "unknown_cost_calls": spent.unknown_cost_calls},
            "estimate": {"tokens": est_in + est_out,
                         "usd": None if estimate.usd is None else str(estimate.usd)},
        }  # fmt: skip
        return Overrun(
            scope, f"{scope} budget: {problem}; the call to {model.id} was not sent", details,
            downgrade_to=budget.downgrade_to if budget.on_breach == "downgrade" else None,
            approve=budget.on_breach == "approve" and known is None,
        )  # fmt: skip
    return None


async def _spent(env: Spender, scope: str) -> UsageTotals | None:
    """What a configured scope has spent, from the usage rows (None: it does not apply)."""
    if scope == "run":
        return await env.store.usage_totals(run_id=env.run_id)
    if scope == "workflow_day":
        return await env.store.usage_totals(workflow=env.workflow, day=day(env.clock))
    if env.tenant is None:
        return None
    return await env.store.usage_totals(tenant=env.tenant, day=day(env.clock))


def _problem(budget: Budget, spent: UsageTotals, est_tokens: int, estimate: Cost) -> str | None:
    calls = spent.calls - spent.cache_hits  # a cache hit is not a model call
    if budget.calls is not None and calls + 1 > budget.calls:
        return f"{calls} of {budget.calls} model calls used"
    if budget.tokens is not None and spent.tokens + est_tokens > budget.tokens:
        return (
            f"{spent.tokens} of {budget.tokens} tokens used and this call may use up to"
            f" {est_tokens}"
        )
    if budget.usd is not None:
        if not budget.allow_unknown_cost and (estimate.usd is None or spent.unknown_cost_calls):
            return (
                f"the cost is unknown and the limit is {usd(budget.usd)} (price the model in"
                " legato.toml [prices], or set allow_unknown_cost)"
            )
        used = Decimal(spent.cost_nanousd) / _NANO
        if used + (estimate.usd or Decimal(0)) > budget.usd:
            return (
                f"{usd(used)} of {usd(budget.usd)} spent and this call may cost up to"
                f" {usd(estimate.usd)}"
            )
    return None
