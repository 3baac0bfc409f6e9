"""One model call, ``ctx.llm`` or ``ctx.embed``: route -> data rules -> budget -> call -> account.

Runs inside the call's journaled entry, so it happens once per entry; replay returns the
recorded result and never calls or pays again. The router (routing.py) picks candidates; each
goes through the stages below and comes back as an outcome value (outcomes.py), which the
strategy reads to go on or stop. Per candidate:

1. gate: a deployment that cannot serve the call -> ``Skipped``;
2. data rules: redact for external providers; a forbidden class -> ``Skipped`` (an internal
   deployment may still take it); then the circuit breaker (shared by every worker through
   the store): open, or half-open with another call's probe in flight -> ``Skipped``;
3. prepare: the reasoning depth (dropped, with a note, where the deployment takes none), the
   operation's request (structured output the way the deployment is known to take it,
   context trimming);
4. cache: an identical request answered before -> ``Answered`` at no cost, no budget check;
5. budget: a request that would pass a limit is not sent -> ``OverBudget``;
6. call: the request (SDK retries off); a provider error -> ``Failed``; a feature the server
   rejects as unsupported is remembered for every worker (learned.py) and the request asked
   the next way (native schema -> JSON mode -> forced tool -> prompt instructions), at once;
7. account: a usage row, right after the answer (the money is spent);
8. validate: an answer that does not validate goes back for a bounded number of repairs,
   each one through 4-8 again, then -> ``Rejected``.

A call that received and judged an answer is never retried on the engine's timer: a retry
starts over and would pay for that answer again (see :meth:`Call._unanswered`).

What differs between a chat call and an embedding is an :class:`Operation` (calls.py); the
end of the route becomes the result or one typed error in :meth:`Call.run`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from legato.ai import budgets, tokens
from legato.ai.config import Budgets
from legato.ai.learned import Known
from legato.ai.messages import EmbeddingResponse, ModelRequest, ModelResponse
from legato.ai.model import Model, ModelError
from legato.ai.outcomes import (
    Answered,
    Failed,
    Outcome,
    OverBudget,
    Record,
    Rejected,
    Skipped,
    Tally,
)
from legato.ai.reasoning import Reasoning
from legato.ai.registry import Models, Route
from legato.ai.results import (
    BudgetExceeded,
    DataBlocked,
    ModelUnavailable,
    OutputValidationError,
    _BudgetApproval,
)
from legato.ai.routing import route_call
from legato.ai.usage import Cost, Usage
from legato.errors import StoreError
from legato.store.usage import UsageRecord

if TYPE_CHECKING:
    from legato.clock import Clock
    from legato.governance.data_rules import DataRules
    from legato.store.base import DeploymentStore, ModelStore

    class CallStore(ModelStore, DeploymentStore, Protocol):
        """What a call writes: usage rows, cached answers, breakers, what it learned of
        deployments."""


log = logging.getLogger("legato.ai")

R = TypeVar("R", bound=ModelResponse | EmbeddingResponse)
T = TypeVar("T")
Rec = TypeVar("Rec", bound=Record)


@dataclass
class CallEnv:
    """What the engine tells a call about where it runs."""

    run_id: str
    workflow: str
    tenant: str | None
    seq: int
    store: CallStore
    clock: Clock
    budgets: Budgets
    data_rules: DataRules | None = None
    cache_ttl: timedelta | None = None  # None: no response cache for this call
    entry: str | None = None  # the journal entry's key (its identity; seq may change)


class Operation(ABC, Generic[R, T]):
    """What one kind of call (chat, embeddings) puts into the shared stages. The defaults
    are a call whose answers are taken as they come: no preparation, cache or validation."""

    kind: ClassVar[str]  # the usage rows' kind
    reasons: ClassVar[bool] = False  # takes a reasoning depth
    #: the caller's own limits (an agent's budget), checked with the configured ones
    allowances: tuple[budgets.Allowance, ...] = ()
    subject: ClassVar[str]  # "the prompt holds", for data-rule messages
    answered: ClassVar[str]  # "answered", for "no candidate of 'x' answered"

    def __init__(self, draft: ModelRequest) -> None:
        #: the request before data rules and preparation (what ``cheapest`` estimates)
        self.draft = draft

    @abstractmethod
    def incapable(self, model: Model, needed: int | None = None) -> str | None:
        """Why ``model`` cannot serve the call (``needed``: the prompt's estimated tokens)."""

    @abstractmethod
    async def send(self, model: Model, request: ModelRequest) -> R: ...

    @abstractmethod
    def result(self, route: Route, answered: Answered[R], tally: Tally) -> T: ...

    def prepare(
        self, model: Model, request: ModelRequest, known: Known
    ) -> tuple[ModelRequest, int]:
        """The governed request made ready for ``model`` (``known``: what its server was seen
        to accept), and the turns trimmed to fit."""
        return request, 0

    def estimate(self, model: Model, request: ModelRequest, known: Known) -> int:
        """The prompt tokens ``request`` may count at ``model``, for the budget check."""
        return tokens.estimate_request(request, model.name)

    def measures_template(self, request: ModelRequest) -> bool:
        """The usage reported for ``request`` measures the chat template's overhead."""
        return False

    def rounds(self, route: Route) -> int:
        """Requests one candidate may take: the first, then repairs."""
        return 1

    def from_cache(self) -> Callable[[str], R] | None:
        """How to read an answer stored in the response cache; None: never cached."""
        return None

    def check(self, request: ModelRequest, response: R) -> tuple[Any, str | None]:
        """The validated output, or the problem to tell the model."""
        return None, None

    def repair(self, request: ModelRequest, response: R, problem: str) -> ModelRequest:
        """The request again, told what was wrong (only after :meth:`check` found a problem)."""
        raise NotImplementedError

    async def accepts(self, result: T) -> bool:
        """The caller's evaluator (a cascade asks it before taking an answer)."""
        return True


class Call(Generic[R, T]):
    """One call of ``op`` to the model reference ``ref``, in the environment ``env``."""

    def __init__(self, models: Models, env: CallEnv, op: Operation[R, T], ref: str) -> None:
        self.models = models
        self.env = env
        self.op = op
        self.ref = ref
        self.tally = Tally()
        #: deployments whose breaker holds failures in the store: a success clears them
        self._failing: set[str] = set()

    async def run(self) -> T:
        """The result, or the error that says why there is none."""
        route, outcome = await route_call(self, self.models.route(self.ref))
        match outcome:
            case Answered():
                if outcome.cache_key is not None and not outcome.cached:
                    await self._cache_put(outcome.cache_key, outcome.response)
                return self.op.result(route, outcome, self.tally)
            case Rejected():
                raise OutputValidationError(
                    f"{outcome.deployment} gave no valid {outcome.wanted} after"
                    f" {route.repairs} repair(s): {outcome.reason}",
                    details=self.tally.details(),
                )
            case OverBudget(overrun=overrun):
                # a breach after a downgrade fails too: nothing is cheaper than that alias
                error = _BudgetApproval if overrun.approve else BudgetExceeded
                raise error(overrun.message, details=overrun.details)
            case Failed():
                raise outcome.error  # a malformed request: no candidate would take it
        raise self._unanswered()

    def _unanswered(self) -> Exception:
        tally, summary = self.tally, self.tally.summary()
        if any(isinstance(r, Rejected) for r in tally.records):
            # answers were received and judged (escalated from, or their repair failed): a
            # retry starts over and would pay for them again
            return OutputValidationError(
                f"no candidate of {self.ref!r} gave an acceptable answer: {summary}",
                details=tally.details(),
            )
        if tally.blocked and all(isinstance(r, Skipped) for r in tally.records):
            blocked = sorted(tally.blocked)
            return DataBlocked(
                f"{self.op.subject} data the policy forbids sending to every candidate of"
                f" {self.ref!r}: {', '.join(blocked)}; nothing was sent",
                details={"blocked": blocked, **tally.details()},
            )
        failed = [r for r in tally.records if isinstance(r, Failed)]
        transient = any(f.transient for f in failed)
        # a garbled answer moves on but says nothing about the next try; auth or not_found do
        final = [
            f.error
            for f in failed
            if not f.transient and f.error.kind not in ("bad_response", "unsupported")
        ]
        if final and not transient:
            # nothing a later try could fix (a missing key, an unknown model): say so plainly
            last = final[-1]
            return ModelError(last.kind, f"{last.detail} (tried: {summary})",
                              deployment=last.deployment, status=last.status)  # fmt: skip
        return ModelUnavailable(
            f"no candidate of {self.ref!r} {self.op.answered}: {summary or 'none available'}",
            # only transient failures are worth retrying: a skip for capabilities stays a skip
            details={**tally.details(), "final": not transient},
        )

    # -- what the router asks (routing.Routable) -------------------------------------------

    def route(self, ref: str) -> Route:
        return self.models.route(ref)

    def fit(self, deployment: str) -> Skipped | Cost:
        model = self.models.get(deployment)
        needed = tokens.estimate_request(self.op.draft, "")
        why = self.op.incapable(model, needed)
        if why:
            return Skipped(deployment, why)
        out = tokens.max_output(self.op.draft, model.capabilities)
        return self.models.pricing(model).estimate(needed, out)

    async def accepts(self, route: Route, answered: Answered[R]) -> bool:
        return await self.op.accepts(self.op.result(route, answered, self.tally))

    def depths(self, route: Route, deployment: str, escalate: bool) -> list[Reasoning | None]:
        """The call's own depth; else the alias's first, or all of them when escalating; one
        where the deployment has no reasoning control (every depth would be the same call)."""
        if not self.op.reasons:
            return [None]
        if self.op.draft.reasoning is not None:
            return [self.op.draft.reasoning]
        depths: list[Reasoning | None] = list(route.reasoning) or [None]
        if not escalate or not self.models.get(deployment).capabilities.reasoning:
            return depths[:1]
        return depths

    async def attempt(self, route: Route, deployment: str, depth: Reasoning | None) -> Outcome:
        model = self.models.get(deployment)
        why = self.op.incapable(model)
        if why:
            return self._record(Skipped(deployment, why))
        governed = self._govern(model)
        if isinstance(governed, Skipped):
            return self._record(governed)
        why = await self._admit(deployment)  # last: a half-open probe is taken to be sent
        if why:
            return self._record(Skipped(deployment, why))
        known = await self.models.learned.known(self.env.store, model.id)
        request, trimmed = self.op.prepare(model, self._deepen(model, governed, depth), known)
        rounds, round_ = self.op.rounds(route), 1
        while True:
            sent = await self._send(route, model, request, known)
            if isinstance(sent, Failed) and sent.error.kind == "unsupported":
                # the server cannot take the request this way: remember, ask the next way
                self._record(sent)
                known = await self.models.learned.rejected(
                    self.env.store, model.id, sent.error.feature or "", sent.error.detail,
                    self.env.clock.now(),
                )  # fmt: skip
                again, trimmed = self.op.prepare(model, self._deepen(model, governed, depth), known)
                if again.output == request.output:
                    return sent  # no other way to ask
                request = again
                continue
            if not isinstance(sent, Answered):
                return sent if isinstance(sent, OverBudget) else self._record(sent)
            output, problem = self.op.check(request, sent.response)
            if problem is None:
                return self._record(replace(sent, output=output, trimmed=trimmed))
            wanted = request.output.name if request.output else "output"
            rejected = self._record(sent.rejected(problem, wanted))
            if round_ == rounds:
                return rejected
            request = self.op.repair(request, sent.response, problem)
            round_ += 1

    # -- the stages ---------------------------------------------------------------------------

    def _deepen(self, model: Model, request: ModelRequest, depth: Reasoning | None) -> ModelRequest:
        """The request at reasoning ``depth``, where the deployment takes one (else a note)."""
        if depth is not None and not model.capabilities.reasoning:
            self.tally.note(
                f"{model.id} takes no reasoning depth: reasoning={depth!r} was not sent"
            )
            depth = None
        return (
            request
            if request.reasoning == depth
            else request.model_copy(update={"reasoning": depth})
        )

    async def _admit(self, deployment: str) -> str | None:
        """The circuit breaker: why ``deployment`` is skipped now, or None."""
        admission = await self.models.breakers.admit(
            self.env.store, deployment, self.env.clock.now()
        )
        if admission.tracked:
            self._failing.add(deployment)
        why = admission.refused
        if why and (last := self.models.learned.last_failure(deployment)):
            why = f"{why}; the last one: {last}"
        return why

    def _govern(self, model: Model) -> ModelRequest | Skipped:
        """Data rules: redact what may not leave for an external provider, or refuse."""
        draft, rules = self.op.draft, self.env.data_rules
        if rules is None:
            return draft
        outcome = rules.apply(draft.messages, draft.system, external=model.external)
        if outcome.blocked:
            return Skipped(
                model.id,
                f"{self.op.subject} data the policy forbids sending to {model.id}:"
                f" {', '.join(sorted(outcome.blocked))}; nothing was sent",
                blocked=frozenset(outcome.blocked),
            )
        self.tally.redact(outcome.counts)
        update = {"messages": tuple(outcome.messages), "system": outcome.system}
        return draft.model_copy(update=update)

    async def _send(
        self, route: Route, model: Model, request: ModelRequest, known: Known
    ) -> Answered[R] | Failed | OverBudget:
        """Cache, budget, call, account: one request, or its answer from the cache."""
        started = time.monotonic()
        read = self.op.from_cache() if self.env.cache_ttl is not None else None
        key = None
        if read is not None:
            key = _cache_key(model, request)
            hit = await self.env.store.cache_get(key, self.env.clock.now())
            if hit is not None:  # a hit spends nothing: its row counts the hit, not tokens
                free = Cost(usd=Decimal(0))
                await self._account(route, model, Usage(requests=1), free, cached=True)
                return Answered(model, request, read(hit), free, _ms(started), cached=True,
                                cache_key=key)  # fmt: skip
        pricing = self.models.pricing(model)
        estimated = self.op.estimate(model, request, known)
        overrun = await budgets.check(
            self.env, model, request, pricing, self.op.allowances, prompt_tokens=estimated
        )
        if overrun is not None:
            return OverBudget(model.id, overrun)
        try:
            response = await self.op.send(model, request)
        except ModelError as exc:
            if exc.transient or exc.kind == "bad_response":
                await self.models.breakers.failure(self.env.store, model.id, self.env.clock.now())
                self._failing.add(model.id)
                self.models.learned.failed(model.id, str(exc))
            return Failed(model.id, exc)
        latency = _ms(started)
        if model.id in self._failing:
            self._failing.discard(model.id)
            await self.models.breakers.success(self.env.store, model.id)
        cost = pricing.price(response.usage)
        saved = pricing.cache_saving(response.usage, cost)
        await self._account(route, model, response.usage, cost, cached=False, saved=saved)
        reported = response.usage.input_tokens
        if reported and self.op.measures_template(request):
            await self.models.learned.measured(
                self.env.store, model.id, tokens.estimate_request(request, model.name), reported,
                self.env.clock.now(),
            )  # fmt: skip
        return Answered(model, request, response, cost, latency, cache_key=key,
                        estimated=estimated)  # fmt: skip

    async def _account(
        self, route: Route, model: Model, usage: Usage, cost: Cost, *, cached: bool,
        saved: Decimal | None = Decimal(0),
    ) -> None:  # fmt: skip
        """A usage row, written as soon as the request returns: it is paid for."""
        env = self.env
        await env.store.record_usage([
            UsageRecord(
                run_id=env.run_id, workflow=env.workflow, tenant=env.tenant, seq=env.seq,
                entry=env.entry,
                deployment=model.id, alias=route.alias, kind=self.op.kind,
                input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
                cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens, requests=max(usage.requests, 1),
                cost_nanousd=cost.nanousd, cost_usd=None if cost.usd is None else str(cost.usd),
                price_version=cost.price_version, cache_hit=cached, at=env.clock.now(),
                day=budgets.day(env.clock), cache_saved_nanousd=Cost(usd=saved).nanousd,
            )
        ])  # fmt: skip

    async def _cache_put(self, key: str, response: R) -> None:
        assert self.env.cache_ttl is not None
        now = self.env.clock.now()
        expires = now + self.env.cache_ttl.total_seconds()
        try:  # best effort: the answer is paid for and valid, a failed cache write must not redo it
            await self.env.store.cache_put(key, response.model_dump_json(), now, expires)
        except StoreError as exc:
            log.warning("could not cache a model response: %s", exc)

    def _record(self, record: Rec) -> Rec:
        self.tally.add(record)
        return record


def _cache_key(model: Model, request: ModelRequest) -> str:
    body = json.dumps(
        {"deployment": model.id, "request": request.model_dump(mode="json", by_alias=True)},
        sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(body.encode()).hexdigest()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
