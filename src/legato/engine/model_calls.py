"""Model calls inside a run: ``ctx.llm`` and ``ctx.embed`` as journaled entries.

A collaborator of :class:`legato.engine.execution.Execution` (through
:class:`legato.engine.host.Host`). A call is an entry of kind ``llm`` (or
``embed``) run like a step: its result (text, output, usage, cost, attempts, routing) is
journaled, so replay returns it without calling or paying again. A budget breach whose policy
is ``approve`` parks the run on an approval to raise the limit, then calls again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from legato import serde
from legato.ai.calls import CallEnv, CallSpec, complete, embed
from legato.ai.config import Budget, Budgets
from legato.ai.model import ModelError
from legato.ai.results import TYPED_ERRORS, BudgetExceeded, EmbedResult, LLMResult, ModelUnavailable
from legato.engine.definitions import StepDef
from legato.engine.host import weak
from legato.errors import ConfigurationError, StepFailed
from legato.retry import RetryPolicy

if TYPE_CHECKING:
    from legato.ai.registry import Models
    from legato.engine.host import Host
    from legato.engine.supervision import Supervision


@dataclass(frozen=True)
class _ModelRetry(RetryPolicy):
    """Retry only when every candidate failed transiently; anything else (a budget, invalid
    output, a store error after the provider answered) would pay again for nothing."""

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, ModelUnavailable) and not error.details.get("final")


#: the engine retries a call whose candidates all failed transiently, on a durable timer
MODEL_RETRY = _ModelRetry(max_attempts=4, initial=2.0, multiplier=4.0, max_delay=120.0)


class BudgetRaise(BaseModel):
    """What a person approves to let a run spend more (they may edit the new limits)."""

    model_config = ConfigDict(extra="forbid")

    scope: str
    problem: str
    usd: Decimal | None = None
    tokens: int | None = Field(default=None, ge=0)
    calls: int | None = Field(default=None, ge=0)
    #: True lets calls without a known price count against the USD limit as unpriced
    allow_unknown_cost: bool = False


class ModelCalls:
    """``ctx.llm`` and ``ctx.embed`` of one run."""

    def __init__(self, host: Host, supervision: Supervision) -> None:
        self.host = weak(host)
        self.supervision = supervision  # budget raises are approvals
        #: budget limits a person raised in this run (rebuilt on replay by the same approvals)
        self._raised: dict[str, Budget] = {}
        #: serializes a run's calls while budgets are configured (see _budgeted)
        self._budget_lock = asyncio.Lock()

    def _models(self) -> Models:
        if self.host.models is None:
            raise ConfigurationError("this run has no model registry (an App provides one)")
        return self.host.models

    def _budgets(self) -> Budgets:
        configured = self._models().config.budgets
        return configured.model_copy(update=self._raised) if self._raised else configured

    def _env(self, seq: int, cache: bool | None) -> CallEnv:
        host = self.host
        config = self._models().config
        use_cache = config.cache.enabled if cache is None else cache
        return CallEnv(
            run_id=host.run_id,
            workflow=host.run.workflow,
            tenant=host.run.tenant,
            seq=seq,
            entry=host.key_of(seq),
            store=host.store,
            clock=host.clock,
            budgets=self._budgets(),
            data_rules=host.policy.data if host.policy is not None else None,
            cache_ttl=config.cache.ttl if use_cache else None,
        )

    async def llm(self, spec: CallSpec, cache: bool | None) -> LLMResult[Any]:
        while True:
            try:
                raw: LLMResult[Any] = await self._journaled(
                    "llm", f"llm:{spec.model}", LLMResult[Any], spec.model,
                    lambda seq: self._budgeted(complete, self._env(seq, cache), spec),
                )  # fmt: skip
            except StepFailed as failed:
                if failed.error_type != "_BudgetApproval":
                    raise _typed(failed) from None
                await self._ask_to_raise(failed)
                continue
            if spec.output is None or raw.output is None:
                return raw
            output = TypeAdapter(spec.output).validate_python(raw.output)
            return raw.model_copy(update={"output": output})

    async def embed(self, texts: list[str], model: str) -> EmbedResult:
        try:
            result: EmbedResult = await self._journaled(
                "embed", f"embed:{model}", EmbedResult, model,
                lambda seq: self._budgeted(embed, self._env(seq, False), model, texts),
            )  # fmt: skip
        except StepFailed as failed:
            raise _typed(failed) from None
        return result

    def context_window(self, ref: str) -> int:
        models = self._models()
        route = models.route(ref)
        return min(models.get(d).capabilities.context_window for d in route.candidates)

    async def _budgeted(self, fn: Callable[..., Awaitable[Any]], env: CallEnv, *args: Any) -> Any:
        """Run a call; with budgets, one at a time per run, so concurrent calls of a run
        (a gather) cannot each see the same spend and pass a limit together."""
        if not env.budgets.scopes():
            return await fn(self._models(), env, *args)
        async with self._budget_lock:
            return await fn(self._models(), env, *args)

    async def _journaled(
        self, kind: str, name: str, returns: Any, ref: str, call: Callable[[int], Awaitable[Any]]
    ) -> Any:
        seq, entry = self.host.take(kind, name)
        pending = self.host.evaluations.take(kind, ref) if kind == "llm" else []
        if entry is None:  # a new call: a bad alias fails before anything is journaled
            self._models().route(ref)

        async def run() -> Any:
            return await call(seq)

        step = StepDef(name, run, MODEL_RETRY, None)
        step.returns = returns
        result = await self.host.run_step(seq, entry, step, (), {}, kind=kind)
        if pending:
            output = serde.loads(self.host.journal[seq].output)
            await self.host.evaluations.judge(pending, kind, ref, seq, None, output)
        return result

    async def _ask_to_raise(self, failed: StepFailed) -> None:
        details = failed.details or {}
        scope = str(details.get("scope", "run"))
        limit = details.get("limit") or {}
        spent = details.get("spent") or {}
        estimate = details.get("estimate") or {}
        problem = str(details.get("problem", failed.message))

        def more(key: str, needed: Decimal) -> Decimal | None:
            # enough for this call, and at least double: one raise should not be one call
            if limit.get(key) is None:
                return None
            return max(Decimal(str(limit[key])) * 2, needed)

        est_usd = Decimal(str(estimate.get("usd") or 0))
        usd = more("usd", Decimal(str(spent.get("usd") or 0)) + est_usd)
        tokens = more(
            "tokens", Decimal(int(spent.get("tokens") or 0) + int(estimate.get("tokens") or 0))
        )
        calls = more("calls", Decimal(int(spent.get("calls") or 0) + 1))
        proposal = BudgetRaise(
            scope=scope, problem=problem, usd=usd,
            tokens=None if tokens is None else int(tokens),
            calls=None if calls is None else int(calls),
            allow_unknown_cost="unknown" in problem,
        )  # fmt: skip
        decision = await self.supervision.approval(
            f"budget:{scope}", proposal, prompt=f"Raise the {scope} budget? {failed.message}",
            assignees=[], timeout=None, on_timeout="reject",
        )  # fmt: skip
        if not decision.approved:
            raise BudgetExceeded(
                f"{failed.message} (a person declined to raise the {scope} budget)",
                details=details,
            )
        raised: BudgetRaise = decision.data
        current = getattr(self._budgets(), scope) or Budget()
        self._raised[scope] = current.model_copy(
            update={"usd": raised.usd, "tokens": raised.tokens, "calls": raised.calls,
                    "allow_unknown_cost": current.allow_unknown_cost or raised.allow_unknown_cost}
        )  # fmt: skip


def _typed(failed: StepFailed) -> Exception:
    """The error a model call raised, rebuilt from its journaled form (same on replay)."""
    typed = TYPED_ERRORS.get(failed.error_type)
    if typed is not None:
        return typed(failed.message, details=failed.details)
    if failed.error_type == "ModelError":
        d = failed.details or {}
        return ModelError(d.get("kind", "bad_response"), str(d.get("detail", failed.message)),
                          deployment=d.get("deployment"), status=d.get("status"),
                          feature=d.get("feature"))  # fmt: skip
    return failed
