"""One ``ctx.llm`` call: route, govern, budget, send, validate, account.

Runs inside the journaled ``llm`` entry, so everything here happens once per entry; replay
returns the recorded :class:`LLMResult` and never calls or pays again. For each candidate the
router picks, in order: circuit breaker, capabilities, data rules (redact for external
providers, block forbidden classes), context trimming, budgets (a call that would pass a limit
is not sent), the response cache, the request itself (SDK retries off), a usage row, then
output validation with bounded repairs. Every choice lands in ``attempts`` and ``routing``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from legato.ai import structured, tokens
from legato.ai.config import Budget, Budgets
from legato.ai.messages import Message, ModelRequest, ModelResponse, ToolSpec
from legato.ai.model import Model, ModelError
from legato.ai.registry import Models, Route
from legato.ai.results import (
    Attempt,
    BudgetExceeded,
    DataBlocked,
    LLMResult,
    ModelUnavailable,
    OutputValidationError,
    Routing,
    _BudgetApproval,
    usd,
)
from legato.ai.usage import Cost, Usage
from legato.errors import StoreError
from legato.store.usage import UsageRecord

log = logging.getLogger("legato.ai")

if TYPE_CHECKING:
    from legato.clock import Clock
    from legato.governance.data_rules import DataRules
    from legato.store.base import Store


@dataclass
class CallEnv:
    """What the engine tells a call about where it runs."""

    run_id: str
    workflow: str
    tenant: str | None
    seq: int
    store: Store
    clock: Clock
    budgets: Budgets
    data_rules: DataRules | None = None
    cache_ttl: timedelta | None = None  # None: no response cache for this call
    entry: str | None = None  # the journal entry's key (its identity; seq may change)


@dataclass(frozen=True)
class CallSpec:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    output: Any = None
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    timeout: float | None = None
    evaluator: Callable[[LLMResult[Any]], bool | Awaitable[bool]] | None = None


@dataclass
class _Tally:
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: Cost = field(default_factory=Cost)
    redacted: dict[str, int] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)

    def add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        if attempt.outcome in ("ok", "invalid", "escalated", "cached"):
            self.usage = self.usage + attempt.usage
            self.cost = self.cost + attempt.cost

    def details(self) -> dict[str, Any]:
        return {"attempts": [a.model_dump(mode="json") for a in self.attempts]}


class _NextCandidate(Exception):
    """Internal: this candidate is done; try the next one."""


async def complete(models: Models, env: CallEnv, spec: CallSpec) -> LLMResult[Any]:
    route = models.route(spec.model)
    tally = _Tally()
    order = list(route.candidates)
    if route.strategy == "cheapest":
        order = _cheapest(models, order, spec, tally)
    downgraded = False
    last_error: ModelError | None = None
    i = 0
    while i < len(order):
        deployment = order[i]
        i += 1
        try:
            return await _candidate(models, env, spec, route, deployment, tally, i == len(order))
        except _Downgrade as switch:
            if downgraded:
                raise BudgetExceeded(switch.message, details=switch.details) from None
            downgraded = True
            tally.attempts.append(
                Attempt(deployment=deployment, outcome="skipped",
                        reason=f"{switch.message}; downgraded to {switch.alias!r}")
            )  # fmt: skip
            # the downgrade alias brings its own candidates, strategy and repairs
            route = replace(models.route(switch.alias), alias=switch.alias)
            order, i = list(route.candidates), 0
            if route.strategy == "cheapest":
                order = _cheapest(models, order, spec, tally)
        except _NextCandidate:
            continue
        except ModelError as exc:
            if exc.kind == "bad_request":
                raise  # the request itself is wrong: another deployment would refuse it too
            last_error = exc
    summary = "; ".join(f"{a.deployment}: {a.outcome} {a.reason}" for a in tally.attempts)
    outcomes = {a.outcome for a in tally.attempts}
    if "escalated" in outcomes:  # retrying would pay the rejected candidates again
        raise OutputValidationError(
            f"no candidate of {spec.model!r} gave an acceptable answer: {summary}",
            details=tally.details(),
        )
    if tally.blocked and outcomes <= {"skipped"}:
        raise DataBlocked(
            f"the prompt holds data the policy forbids sending to every candidate of"
            f" {spec.model!r}: {', '.join(sorted(tally.blocked))}; nothing was sent",
            details={"blocked": sorted(tally.blocked), "attempts": tally.details()["attempts"]},
        )
    transient = [a for a in tally.attempts if a.outcome == "error" and "transient" in a.reason]
    if last_error is not None and not transient:
        # nothing a later try could fix (a missing key, an unknown model): say so plainly
        raise ModelError(last_error.kind, f"{last_error.detail} (tried: {summary})",
                         deployment=last_error.deployment, status=last_error.status)  # fmt: skip
    raise ModelUnavailable(
        f"no candidate of {spec.model!r} answered: {summary or 'none available'}",
        # only transient failures are worth retrying: a skip for capabilities stays a skip
        details={**tally.details(), "final": not transient},
    )


class _Downgrade(Exception):
    def __init__(self, alias: str, message: str, details: dict[str, Any]) -> None:
        self.alias = alias
        self.message = message
        self.details = details


def _cheapest(models: Models, order: list[str], spec: CallSpec, tally: _Tally) -> list[str]:
    """Capable candidates, cheapest estimate first (unknown prices last, in given order)."""
    needed = tokens.estimate_request(_base_request(spec), "")
    ranked: list[tuple[int, Decimal, int, str]] = []
    for position, deployment in enumerate(order):
        model = models.get(deployment)
        caps = model.capabilities
        why = _incapable(model, spec) or (
            f"context window {caps.context_window} < {needed} tokens needed"
            if caps.context_window < needed else None
        )  # fmt: skip
        if why:
            tally.attempts.append(Attempt(deployment=deployment, outcome="skipped", reason=why))
            continue
        out = tokens.max_output(_base_request(spec), caps)
        cost = _price(models, model).estimate(needed, out)
        known = 0 if cost.usd is not None else 1
        ranked.append((known, cost.usd or Decimal(0), position, deployment))
    return [d for *_, d in sorted(ranked)]


def _incapable(model: Model, spec: CallSpec) -> str | None:
    if not model.capabilities.chat:
        return "does not generate text"
    if spec.tools and not model.capabilities.tools:
        return "does not support tools"
    return None


def _base_request(spec: CallSpec) -> ModelRequest:
    return ModelRequest(
        messages=spec.messages, system=spec.system, tools=spec.tools,
        temperature=spec.temperature, max_tokens=spec.max_tokens, stream=spec.stream,
    )  # fmt: skip


async def _candidate(
    models: Models,
    env: CallEnv,
    spec: CallSpec,
    route: Route,
    deployment: str,
    tally: _Tally,
    last: bool,
) -> LLMResult[Any]:
    model = models.get(deployment)
    why = models.breakers.check(deployment) or _incapable(model, spec)
    if why:
        tally.add(Attempt(deployment=deployment, outcome="skipped", reason=why))
        raise _NextCandidate()
    try:
        request, trimmed = _prepare(model, env, spec, tally)
    except DataBlocked as blocked:  # an internal deployment may still take it
        tally.blocked.update(blocked.details.get("blocked", []))
        tally.add(Attempt(deployment=deployment, outcome="skipped", reason=str(blocked)))
        raise _NextCandidate() from None
    for round_ in range(route.repairs + 1):
        started = time.monotonic()
        response, cached, key = await _send(models, model, env, request, tally, spec.timeout)
        latency = int((time.monotonic() - started) * 1000)
        cost = Cost(usd=Decimal(0)) if cached else _price(models, model).price(response.usage)
        # a cache hit spends no tokens: its row counts the hit, not the original call's usage
        spent = Usage(requests=1) if cached else response.usage
        await _record_usage(env, route, model, spent, cost, cached=cached)
        output: Any = None
        if (
            spec.output is not None
            and request.output is not None
            and not _wants_tools(response, request)
        ):
            try:
                output = structured.parse(spec.output, request.output, response)
            except structured.Invalid as invalid:
                tally.add(Attempt(deployment=deployment, outcome="invalid", reason=str(invalid),
                                  usage=response.usage, cost=cost, latency_ms=latency))  # fmt: skip
                if round_ < route.repairs:
                    request = structured.repair(request, response, str(invalid))
                    continue
                if route.strategy == "cascade" and not last:
                    tally.attempts[-1] = tally.attempts[-1].model_copy(
                        update={"outcome": "escalated"}
                    )
                    raise _NextCandidate() from None
                wanted = request.output.name if request.output else "output"
                raise OutputValidationError(
                    f"{deployment} gave no valid {wanted} after"
                    f" {route.repairs} repair(s): {invalid}",
                    details=tally.details(),
                ) from None
        tally.add(Attempt(deployment=deployment, outcome="cached" if cached else "ok",
                          usage=response.usage,
                          cost=cost, latency_ms=latency,
                          reason="from the response cache" if cached else ""))  # fmt: skip
        result = _result(spec, route, model, response, output, tally, request, cached, trimmed)
        if spec.evaluator is not None and route.strategy == "cascade" and not last:
            verdict = spec.evaluator(result)
            if not isinstance(verdict, bool):
                verdict = await verdict
            if not verdict:
                tally.attempts[-1] = tally.attempts[-1].model_copy(
                    update={"outcome": "escalated", "reason": "the evaluator rejected the answer"}
                )
                raise _NextCandidate()
        if key is not None and not cached:
            await _cache_put(env, key, response)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _wants_tools(response: ModelResponse, request: ModelRequest) -> bool:
    """The model called the caller's tools instead of answering: no output to check yet."""
    spec = request.output
    names = {t.name for t in request.tools}
    return any(c.name in names for c in response.tool_calls) and not any(
        spec is not None and c.name == spec.name for c in response.tool_calls
    )


def _prepare(model: Model, env: CallEnv, spec: CallSpec, tally: _Tally) -> tuple[ModelRequest, int]:
    messages, system = spec.messages, spec.system
    if env.data_rules is not None:
        outcome = env.data_rules.apply(messages, system, external=model.external)
        if outcome.blocked:
            raise DataBlocked(
                f"the prompt holds data the policy forbids sending to {model.id}:"
                f" {', '.join(sorted(outcome.blocked))}; nothing was sent",
                details={"blocked": sorted(outcome.blocked), "deployment": model.id},
            )
        messages, system = tuple(outcome.messages), outcome.system
        for name, n in outcome.counts.items():
            tally.redacted[name] = max(tally.redacted.get(name, 0), n)
    output = None
    if spec.output is not None:
        output = structured.output_spec(spec.output, model.capabilities, has_tools=bool(spec.tools))
    request = ModelRequest(
        messages=messages, system=system, tools=spec.tools, output=output,
        temperature=spec.temperature, max_tokens=spec.max_tokens, stream=spec.stream,
    )  # fmt: skip
    caps = model.capabilities
    reserve = tokens.max_output(request, caps)
    if tokens.estimate_request(request, model.name) + reserve <= caps.context_window:
        return request, 0
    from legato.ai.context_window import trim

    def count(text: str) -> int:
        return tokens.estimate_tokens(text, model.name)

    trimmed = trim(messages, system=system, limit=caps.context_window, count=count,
                   reserve=reserve)  # fmt: skip
    return request.model_copy(update={"messages": tuple(trimmed.messages)}), trimmed.dropped


async def _send(
    models: Models,
    model: Model,
    env: CallEnv,
    request: ModelRequest,
    tally: _Tally,
    timeout: float | None,
) -> tuple[ModelResponse, bool, str | None]:
    key = _cache_key(model, request) if env.cache_ttl is not None else None
    if key is not None:
        hit = await env.store.cache_get(key, env.clock.now())
        if hit is not None:
            return ModelResponse.model_validate_json(hit), True, key
    await _check_budgets(models, env, model, request, tally)  # a cache hit costs nothing
    try:
        response = await model.request(request, timeout=timeout)
    except ModelError as exc:
        if exc.transient or exc.kind == "bad_response":
            models.breakers.failure(model.id)
        kind = "transient" if exc.transient else "final"
        tally.add(Attempt(deployment=model.id, outcome="error", reason=f"{kind} {exc}"))
        if exc.kind == "bad_request":
            raise  # the request itself is wrong: another deployment would refuse it too
        if exc.transient or exc.kind == "bad_response":
            raise _NextCandidate() from None
        raise
    models.breakers.success(model.id)
    return response, False, key


def _cache_key(model: Model, request: ModelRequest) -> str:
    body = json.dumps(
        {"deployment": model.id, "request": request.model_dump(mode="json", by_alias=True)},
        sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(body.encode()).hexdigest()


async def _cache_put(env: CallEnv, key: str, response: ModelResponse) -> None:
    assert env.cache_ttl is not None
    now = env.clock.now()
    try:  # best effort: the answer is paid for and valid, a failed cache write must not redo it
        await env.store.cache_put(
            key, response.model_dump_json(), now, now + env.cache_ttl.total_seconds()
        )
    except StoreError as exc:
        log.warning("could not cache a model response: %s", exc)


def _official(model: Model) -> bool:
    """Public price lists apply only at the provider's own endpoint."""
    return model.provider.base_url is None and model.provider.kind in ("openai", "anthropic")


class _Priced:
    """Prices for one deployment: legato.toml overrides by deployment id (``name:model``),
    public prices by the provider's kind (``openai:gpt-4o`` whatever the provider is named),
    and only at the provider's own endpoint."""

    def __init__(self, models: Models, model: Model) -> None:
        self.table = models.prices
        overridden = model.id in models.config.prices
        self.key = model.id if overridden else f"{model.provider.kind}:{model.name}"
        self.official = _official(model)

    def price(self, usage: Usage) -> Cost:
        return self.table.price(self.key, usage, official=self.official)

    def estimate(self, input_tokens: int, output_tokens: int) -> Cost:
        return self.table.estimate(self.key, input_tokens, output_tokens, official=self.official)


def _price(models: Models, model: Model) -> _Priced:
    return _Priced(models, model)


def _day(env: CallEnv) -> str:
    return datetime.fromtimestamp(env.clock.now(), UTC).strftime("%Y-%m-%d")


def nanousd(cost: Cost) -> int | None:
    if cost.usd is None:
        return None
    return int((cost.usd * Decimal(1_000_000_000)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def _record_usage(
    env: CallEnv, route: Route, model: Model, usage: Usage, cost: Cost, *, cached: bool,
    kind: str = "chat",
) -> None:  # fmt: skip
    await env.store.record_usage([
        UsageRecord(
            run_id=env.run_id, workflow=env.workflow, tenant=env.tenant, seq=env.seq,
            entry=env.entry, deployment=model.id, alias=route.alias, kind=kind,
            input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens, requests=max(usage.requests, 1),
            cost_nanousd=nanousd(cost), cost_usd=None if cost.usd is None else str(cost.usd),
            price_version=cost.price_version, cache_hit=cached, at=env.clock.now(),
            day=_day(env),
        )
    ])  # fmt: skip


async def _check_budgets(
    models: Models, env: CallEnv, model: Model, request: ModelRequest, tally: _Tally
) -> None:
    scopes = env.budgets.scopes()
    if not scopes:
        return
    est_in = tokens.estimate_request(request, model.name)
    est_out = tokens.max_output(request, model.capabilities)
    estimate = _price(models, model).estimate(est_in, est_out)
    for scope, budget in scopes:
        filters: dict[str, str]
        if scope == "run":
            filters = {"run_id": env.run_id}
        elif scope == "workflow_day":
            filters = {"workflow": env.workflow, "day": _day(env)}
        else:
            if env.tenant is None:
                continue
            filters = {"tenant": env.tenant, "day": _day(env)}
        spent = await env.store.usage_totals(**filters)
        problem = _breach(budget, spent, est_in + est_out, estimate)
        if problem is None:
            continue
        details = {
            "scope": scope, "problem": problem, "deployment": model.id,
            "limit": budget.model_dump(mode="json", include={"usd", "tokens", "calls"}),
            "spent": {"calls": spent.calls - spent.cache_hits, "tokens": spent.tokens,
                      "usd": str(Decimal(spent.cost_nanousd) / Decimal(1_000_000_000)),
                      "unknown_cost_calls": spent.unknown_cost_calls},
            "estimate": {"tokens": est_in + est_out,
                         "usd": None if estimate.usd is None else str(estimate.usd)},
        }  # fmt: skip
        message = f"{scope} budget: {problem}; the call to {model.id} was not sent"
        if budget.on_breach == "downgrade" and budget.downgrade_to:
            raise _Downgrade(budget.downgrade_to, message, details)
        if budget.on_breach == "approve":
            raise _BudgetApproval(message, details=details)
        raise BudgetExceeded(message, details=details)


def _breach(budget: Budget, spent: Any, est_tokens: int, estimate: Cost) -> str | None:
    calls = spent.calls - spent.cache_hits
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
        used = Decimal(spent.cost_nanousd) / Decimal(1_000_000_000)
        if used + (estimate.usd or Decimal(0)) > budget.usd:
            return (
                f"{usd(used)} of {usd(budget.usd)} spent and this call may cost up to"
                f" {usd(estimate.usd)}"
            )
    return None


def _result(
    spec: CallSpec, route: Route, model: Model, response: ModelResponse, output: Any,
    tally: _Tally, request: ModelRequest, cached: bool, trimmed: int,
) -> LLMResult[Any]:  # fmt: skip
    reasons = [f"{a.deployment}: {a.outcome}{' (' + a.reason + ')' if a.reason else ''}"
               for a in tally.attempts]  # fmt: skip
    calls = list(response.tool_calls)
    if request.output is not None:  # the output tool is legato's, not the caller's
        calls = [c for c in calls if c.name != request.output.name]
    return LLMResult[Any](
        text=response.text,
        output=output,
        tool_calls=calls,
        model=model.id,
        provider=model.provider.name,
        usage=tally.usage,
        cost=tally.cost,
        attempts=tally.attempts,
        routing=Routing(
            requested=spec.model,
            strategy=route.strategy,
            candidates=list(route.candidates),
            chosen=model.id,
            reason="; ".join(reasons),
        ),
        redacted=dict(tally.redacted),
        estimated_input_tokens=tokens.estimate_request(request, model.name),
        finish_reason=response.finish_reason,
        cached=cached,
        trimmed_messages=trimmed,
    )


async def embed(models: Models, env: CallEnv, ref: str, texts: list[str]) -> Any:
    """Embeddings from the first candidate of ``ref`` that answers (fallback order)."""
    from legato.ai.results import EmbedResult

    route = models.route(ref)
    tally = _Tally()
    for deployment in route.candidates:
        model = models.get(deployment)
        why = models.breakers.check(deployment) or (
            None if model.capabilities.embeddings else "does not make embeddings"
        )
        if why:
            tally.add(Attempt(deployment=deployment, outcome="skipped", reason=why))
            continue
        sent = texts
        if env.data_rules is not None:  # the same rules as for chat: redact or block
            as_turns = tuple(Message(role="user", content=t) for t in texts)
            outcome = env.data_rules.apply(as_turns, None, external=model.external)
            if outcome.blocked:
                tally.blocked.update(outcome.blocked)
                tally.add(
                    Attempt(
                        deployment=deployment,
                        outcome="skipped",
                        reason=f"forbidden data: {', '.join(sorted(outcome.blocked))}",
                    )
                )
                continue  # fmt: skip
            sent = [m.content for m in outcome.messages]
        request = ModelRequest(messages=tuple(Message(role="user", content=t) for t in sent),
                               max_tokens=1)  # fmt: skip
        await _check_budgets(models, env, model, request, tally)
        try:
            response = await model.embed(sent)
        except ModelError as exc:
            tally.add(Attempt(deployment=deployment, outcome="error", reason=str(exc)))
            if exc.transient:
                models.breakers.failure(deployment)
                continue
            raise
        models.breakers.success(deployment)
        cost = _price(models, model).price(response.usage)
        await _record_usage(env, route, model, response.usage, cost, cached=False, kind="embed")
        return EmbedResult(
            vectors=[list(v) for v in response.vectors], model=model.id, usage=response.usage,
            cost=cost,
        )  # fmt: skip
    summary = "; ".join(f"{a.deployment}: {a.reason}" for a in tally.attempts)
    if tally.blocked and all(a.outcome == "skipped" for a in tally.attempts):
        raise DataBlocked(f"the texts hold data the policy forbids sending to every candidate"
                          f" of {ref!r}: {', '.join(sorted(tally.blocked))}; nothing was sent",
                          details={"blocked": sorted(tally.blocked)})  # fmt: skip
    transient = any(a.outcome == "error" for a in tally.attempts)
    raise ModelUnavailable(f"no candidate of {ref!r} made embeddings: {summary}",
                           details={**tally.details(), "final": not transient})  # fmt: skip
