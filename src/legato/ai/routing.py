"""Routing strategies: how a call works through an alias's candidates.

Each candidate goes through the pipeline's stages and comes back as an outcome value
(outcomes.py); a strategy looks only at those values to decide what is next, and strategies
compose (like Pydantic AI's ``FallbackModel`` wraps models):

- ``fallback``: candidates in order; skips and failures move on, the first answer wins; a
  rejected answer, a budget breach or a malformed request (HTTP 400) ends the call;
- ``cascade``: fallback where a rejected answer (invalid after its repairs, or the caller's
  evaluator says no) also moves on, except at the last candidate; with several reasoning
  depths on the alias, it moves on to the next depth of the same candidate first (cheap ->
  deeper -> stronger);
- ``cheapest``: an order for fallback: the capable candidates, cheapest estimate first;
- :func:`route_call`: any of them, and when a budget breach's policy is to downgrade, the
  same again on the cheaper alias, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from legato.ai.outcomes import Answered, Failed, Outcome, OverBudget, Rejected, Skipped, Tally
from legato.ai.reasoning import Reasoning
from legato.ai.registry import Route
from legato.ai.usage import Cost


class Routable(Protocol):
    """The call a strategy routes (:class:`legato.ai.pipeline.Call`)."""

    tally: Tally

    def route(self, ref: str) -> Route: ...

    def fit(self, deployment: str) -> Skipped | Cost:
        """Why ``deployment`` cannot serve the call, or what the call would cost there."""
        ...

    def depths(self, route: Route, deployment: str, escalate: bool) -> Sequence[Reasoning | None]:
        """The reasoning depths to try ``deployment`` at, in order (one unless escalating)."""
        ...

    async def attempt(self, route: Route, deployment: str, depth: Reasoning | None) -> Outcome:
        """One candidate at one depth through every stage; every attempt lands in ``tally``."""
        ...

    async def accepts(self, route: Route, answered: Answered[Any]) -> bool:
        """The caller's evaluator on an answer (True when there is none)."""
        ...


#: a strategy: the outcome that ends the call, or None when no candidate answered
Strategy = Callable[[Routable, Route], Awaitable[Outcome | None]]


async def fallback(
    call: Routable, route: Route, order: Sequence[str] | None = None, *, escalate: bool = False
) -> Outcome | None:
    candidates = route.candidates if order is None else order
    steps = [(d, depth) for d in candidates for depth in call.depths(route, d, escalate)]
    passed: set[str] = set()  # skipped or failed: not asked again at another depth
    for i, (deployment, depth) in enumerate(steps):
        if deployment in passed:
            continue
        outcome = await call.attempt(route, deployment, depth)
        more = escalate and i < len(steps) - 1  # the last answer is taken as it is
        if more and isinstance(outcome, Answered) and not await call.accepts(route, outcome):
            outcome = outcome.rejected("the evaluator rejected the answer")
        if isinstance(outcome, Rejected) and more:
            call.tally.escalate(outcome)
            continue
        if isinstance(outcome, Skipped) or (isinstance(outcome, Failed) and not outcome.fatal):
            passed.add(deployment)
            continue
        return outcome
    return None


async def cascade(call: Routable, route: Route) -> Outcome | None:
    return await fallback(call, route, escalate=True)


async def cheapest(call: Routable, route: Route) -> Outcome | None:
    ranked: list[tuple[bool, Decimal, int, str]] = []
    for position, deployment in enumerate(route.candidates):
        fit = call.fit(deployment)
        if isinstance(fit, Skipped):
            call.tally.add(fit)
            continue
        # unknown prices last, in the order given
        ranked.append((fit.usd is None, fit.usd or Decimal(0), position, deployment))
    return await fallback(call, route, [d for *_, d in sorted(ranked)])


STRATEGIES: dict[str, Strategy] = {
    "fallback": fallback,
    "cascade": cascade,
    "cheapest": cheapest,
}


async def route_call(call: Routable, route: Route) -> tuple[Route, Outcome | None]:
    """The call routed by its alias's strategy, downgraded once if a budget says so; the
    route it ended on (the downgrade alias brings its own candidates, strategy and repairs)."""
    outcome = await STRATEGIES[route.strategy](call, route)
    if isinstance(outcome, OverBudget) and outcome.overrun.downgrade_to:
        alias = outcome.overrun.downgrade_to
        reason = f"{outcome.overrun.message}; downgraded to {alias!r}"
        call.tally.add(Skipped(outcome.deployment, reason))
        route = replace(call.route(alias), alias=alias)
        # a breach on the cheaper alias ends the call: there is nothing cheaper to go to
        outcome = await STRATEGIES[route.strategy](call, route)
    return route, outcome
