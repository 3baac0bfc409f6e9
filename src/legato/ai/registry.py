"""Deployments and aliases: which models exist, how to reach them, their circuit breakers.

``app.models`` is one of these. Deployments are named ``provider:model`` and built on first
use from the provider's settings (legato.toml and environment); models made in Python (a
scripted model in tests, a custom provider) are added with :meth:`Models.add`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from legato.ai.breakers import Breakers
from legato.ai.config import KINDS, AIConfig, AliasConfig, DeploymentConfig, Strategy
from legato.ai.learned import Learned
from legato.ai.model import Capabilities, Model, ProviderSettings
from legato.ai.reasoning import Reasoning, known_to_reason
from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato.ai.prices import PriceTable
    from legato.ai.usage import Cost, Usage

_ENV = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
}
_KIND_CAPABILITIES = {
    "openai": Capabilities(),
    "anthropic": Capabilities(native_output=False, context_window=200_000),
    "local": Capabilities(chat=False, tools=False, native_output=False, embeddings=True,
                          context_window=512),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Route:
    """What a model reference resolves to: candidates in order, and how to use them."""

    requested: str
    alias: str | None
    strategy: Strategy
    repairs: int
    candidates: tuple[str, ...]
    #: the alias's reasoning depths: the first for every call, all of them in a cascade
    reasoning: tuple[Reasoning, ...] = ()


class Pricing:
    """Prices for one deployment: legato.toml overrides by deployment id (``name:model``),
    public prices by the provider's kind (``openai:gpt-4o`` whatever the provider is named),
    and only at the provider's own endpoint (public price lists say nothing about others)."""

    def __init__(self, table: PriceTable, model: Model, overridden: bool) -> None:
        self.table = table
        self.key = model.id if overridden else f"{model.provider.kind}:{model.name}"
        official = ("openai", "anthropic")
        self.official = model.provider.base_url is None and model.provider.kind in official

    def price(self, usage: Usage) -> Cost:
        return self.table.price(self.key, usage, official=self.official)

    def estimate(self, input_tokens: int, output_tokens: int) -> Cost:
        return self.table.estimate(self.key, input_tokens, output_tokens, official=self.official)

    def cache_saving(self, usage: Usage, cost: Cost) -> Decimal | None:
        """What the prompt cache saved on ``usage`` (costing ``cost``) against the same prompt
        at the full input price: negative when cache writes cost more than reads saved."""
        if not usage.cached_input_tokens and not usage.cache_write_tokens:
            return Decimal(0)
        uncached = usage.model_copy(update={"cached_input_tokens": 0, "cache_write_tokens": 0})
        full = self.price(uncached).usd
        return None if full is None or cost.usd is None else full - cost.usd


class Models:
    """The deployments and aliases an app's workflows may call."""

    def __init__(self, config: AIConfig | None = None) -> None:
        self.config = config or AIConfig()
        self._models: dict[str, Model] = {}
        self._aliases: dict[str, AliasConfig] = dict(self.config.models)
        self._lock = threading.Lock()
        breaker = self.config.circuit_breaker
        self.breakers = Breakers(breaker.failures, breaker.cooldown.total_seconds())
        #: what deployments' servers were seen to accept (shared with every worker by the store)
        self.learned = Learned()
        self._prices: PriceTable | None = None
        #: alias -> deployment, where a monitor rerouted an alias (refreshed from the database)
        self.overrides: dict[str, str] = {}

    # -- registration ---------------------------------------------------------------------
    def add(self, model: Model) -> Model:
        """Register a model built in Python under its id (``provider:model``)."""
        with self._lock:
            self._models[model.id] = model
        return model

    def alias(
        self, name: str, candidates: Sequence[str], *, strategy: Strategy = "fallback",
        repairs: int = 2, reasoning: Reasoning | Sequence[Reasoning] | None = None,
    ) -> None:  # fmt: skip
        """Make ``name`` mean these candidates, tried per ``strategy``, at the reasoning
        depth(s) given (several: a cascade tries each on a candidate before the next)."""
        if ":" in name:
            raise ConfigurationError(f"an alias may not contain ':', got {name!r}")
        depths = (
            reasoning if reasoning is None or isinstance(reasoning, str | int) else [*reasoning]
        )
        try:
            config = AliasConfig(candidates=list(candidates), strategy=strategy,
                                 repairs=repairs, reasoning=depths)  # fmt: skip
        except ValueError as exc:
            raise ConfigurationError(f"alias {name!r}: {exc}") from None
        with self._lock:
            self._aliases[name] = config

    @property
    def aliases(self) -> dict[str, AliasConfig]:
        return dict(self._aliases)

    # -- resolution -----------------------------------------------------------------------
    def route(self, ref: str) -> Route:
        """Resolve an alias or a ``provider:model`` name; a clear error for anything else."""
        if not ref:
            raise ConfigurationError("model must be an alias or 'provider:model', got ''")
        alias = self._aliases.get(ref)
        rerouted = self.overrides.get(ref)
        if alias is not None and rerouted is not None:  # a monitor sent this alias elsewhere
            self._check_provider(rerouted)
            return Route(ref, ref, "fallback", alias.repairs, (rerouted,))
        if alias is not None:
            for candidate in alias.candidates:
                self._check_provider(candidate)
            return Route(ref, ref, alias.strategy, alias.repairs, tuple(alias.candidates),
                         alias.depths())  # fmt: skip
        if ":" in ref:
            self._check_provider(ref)
            return Route(ref, None, "fallback", 2, (ref,))
        known = ", ".join(sorted(self._aliases)) or "none configured"
        raise ConfigurationError(
            f"unknown model alias {ref!r} (aliases: {known}); use an alias from legato.toml"
            " [models.*] or app.models.alias(), or name a deployment as 'provider:model'"
        )

    def _check_provider(self, deployment: str) -> None:
        provider = deployment.split(":", 1)[0]
        if deployment in self._models or provider in self._providers():
            return
        raise ConfigurationError(
            f"unknown provider {provider!r} in {deployment!r}; known providers:"
            f" {', '.join(sorted(self._providers()))} (add [providers.{provider}] to legato.toml)"
        )

    def _providers(self) -> set[str]:
        added = {m.split(":", 1)[0] for m in self._models}
        return {"openai", "anthropic", "local", *self.config.providers, *added}

    def settings(self, provider: str) -> ProviderSettings:
        """The provider's endpoint and credentials: legato.toml over environment defaults."""
        conf = self.config.providers.get(provider)
        kind = (conf.kind if conf and conf.kind else provider).lower()
        if kind not in KINDS:
            raise ConfigurationError(
                f"provider {provider!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}"
            )
        key_env, url_env = _ENV.get(kind, (None, None))
        base_url = conf.base_url if conf else None
        if base_url is None and url_env:
            base_url = os.environ.get(url_env) or None
        return ProviderSettings(
            name=provider,
            kind=kind,
            base_url=base_url,
            api_key=conf.api_key if conf else None,
            api_key_env=(conf.api_key_env if conf and conf.api_key_env else key_env),
            headers=tuple(sorted((conf.headers if conf else {}).items())),
            timeout=conf.timeout if conf else 60.0,
            external=(conf.external if conf and conf.external is not None else kind != "local"),
            prompt_cache=conf.prompt_cache if conf else True,
        )

    def capabilities(self, deployment: str, kind: str) -> Capabilities:
        base = _KIND_CAPABILITIES.get(kind, Capabilities())
        name = deployment.split(":", 1)[-1]
        base = replace(base, reasoning=known_to_reason(kind, name))
        if kind == "anthropic":
            from legato.ai.providers.anthropic import native_output

            base = replace(base, native_output=native_output(name))
        conf: DeploymentConfig | None = self.config.deployments.get(deployment)
        if conf is None:
            return base
        values = {k: v for k, v in conf.model_dump().items() if v is not None}
        return Capabilities(**{**_fields(base), **values})

    def get(self, deployment: str) -> Model:
        """The deployment's model, built on first use."""
        with self._lock:
            model = self._models.get(deployment)
        if model is not None:
            return model
        if ":" not in deployment:
            raise ConfigurationError(f"a deployment is named 'provider:model', got {deployment!r}")
        provider, name = deployment.split(":", 1)
        settings = self.settings(provider)
        caps = self.capabilities(deployment, settings.kind)
        if settings.kind == "local":
            from legato.ai.providers.local import LocalModel

            model = LocalModel(settings, name, caps)
        elif settings.kind == "scripted":
            raise ConfigurationError(
                f"{deployment}: scripted models are added in Python, with"
                " app.models.add(legato.testing.ScriptedModel(...))"
            )
        else:
            from legato.ai.providers import build_model

            model = build_model(settings, name, caps)
        with self._lock:
            return self._models.setdefault(deployment, model)

    @property
    def prices(self) -> PriceTable:
        """The price table (genai-prices' offline snapshot, with legato.toml overrides)."""
        if self._prices is None:
            from legato.ai.prices import PriceTable

            self._prices = PriceTable(overrides=self.config.prices)
        return self._prices

    def pricing(self, model: Model) -> Pricing:
        """How calls to ``model`` are priced."""
        return Pricing(self.prices, model, overridden=model.id in self.config.prices)

    async def aclose(self) -> None:
        with self._lock:
            models = list(self._models.values())
        for model in models:
            await model.aclose()


def _fields(caps: Capabilities) -> dict[str, object]:
    return {name: getattr(caps, name) for name in caps.__slots__}
