"""What calls cost: genai-prices' bundled offline table, with overrides from legato.toml.

The table never fetches anything: legato reads the snapshot that ships inside the installed
``genai-prices`` package (even if other code in the process turns on its auto-update), so a
cost can be recomputed from the version stored with it.

Public list prices only say something about a provider's own endpoint: a call to a custom
``base_url`` (vLLM, Ollama, a proxy) is priced with ``official=False``, and then only the
overrides apply. Whatever is not priced is *unknown* (``Cost.usd is None``), never zero.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from legato.ai.usage import Cost, Usage
from legato.errors import ConfigurationError

__all__ = ["LOCAL_VERSION", "Price", "PriceTable"]

#: the price version of models that run inside this process (provider ``local``): free
LOCAL_VERSION = "local"

_MTOK = Decimal(1_000_000)

#: provider names legato uses -> genai-prices provider ids, where they differ
_GENAI_PROVIDERS: dict[str, str] = {
    "azure-openai": "azure",
    "azure_openai": "azure",
    "bedrock": "aws",
    "gemini": "google",
    "google-gla": "google",
    "google-vertex": "google",
    "vertex": "google",
    "vertexai": "google",
    "grok": "x-ai",
    "xai": "x-ai",
    "moonshot": "moonshotai",
}


class Price(BaseModel):
    """A price set in legato.toml, in USD per million tokens (``per_request`` per call).

    Cached input defaults to the input price and cache writes too (no discount assumed). A
    bucket that has tokens but no price makes the cost unknown: an override that names only
    an output price cannot price input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    per_request: Decimal | None = None

    @field_validator("*")
    @classmethod
    def _non_negative(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (not value.is_finite() or value < 0):
            raise ValueError("a price must be a finite number >= 0")
        return value

    def cost(self, usage: Usage) -> Decimal | None:
        """The USD cost of ``usage`` at this price, or None when a used bucket has no price."""
        cached, written, fresh = _input_parts(usage)
        input_rate = self.input_per_mtok
        cached_rate = (
            self.cached_input_per_mtok if self.cached_input_per_mtok is not None else input_rate
        )
        write_rate = (
            self.cache_write_per_mtok if self.cache_write_per_mtok is not None else input_rate
        )
        total = Decimal(0)
        for tokens, rate in (
            (fresh, input_rate),
            (cached, cached_rate),
            (written, write_rate),
            (usage.output_tokens, self.output_per_mtok),
        ):
            if tokens:
                if rate is None:
                    return None
                total += Decimal(tokens) * rate / _MTOK
        if self.per_request is not None:
            total += self.per_request * max(usage.requests, 1)
        return total

    def canonical(self) -> dict[str, str | None]:
        """The fields as strings in a normal form (``0.150`` and ``0.15`` are the same)."""
        return {
            name: None if value is None else _plain(value)
            for name, value in self.model_dump().items()
        }


class PriceTable:
    """Prices by model id ``provider:model``, ``provider`` being the provider's kind.

    Overrides come first, then (for ``official`` endpoints) genai-prices; models of the
    ``local`` provider run in this process and cost nothing unless an override says so.
    Usage summed over several calls is priced as one call of that size, plus the per-request
    fee once per call: where a provider has price tiers by prompt size, that errs high.
    """

    def __init__(self, overrides: Mapping[str, Price | Mapping[str, Any]] | None = None) -> None:
        self._overrides: dict[str, Price] = {}
        for model_id, price in (overrides or {}).items():
            key = _key(model_id)
            try:
                self._overrides[key] = (
                    price if isinstance(price, Price) else Price.model_validate(dict(price))
                )
            except ValueError as exc:
                raise ConfigurationError(f"price of {model_id!r}: {exc}") from None
        canonical = json.dumps(
            {key: price.canonical() for key, price in self._overrides.items()},
            sort_keys=True,
            separators=(",", ":"),
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        #: version of the overrides: changes whenever any override changes
        self.overrides_version = f"legato.toml@{digest}"
        self._lock = threading.Lock()
        #: (genai-prices' bundled snapshot, its version), loaded on first use
        self._genai: tuple[Any, str] | None = None
        #: model id -> (genai provider, genai model), or None when genai-prices has no price
        self._models: dict[str, tuple[Any, Any] | None] = {}

    @property
    def genai_version(self) -> str:
        """``genai-prices <version>``: the bundled snapshot genai-prices rows come from."""
        return self._load()[1]

    @property
    def version(self) -> str:
        """Both sources: ``genai-prices <version>; legato.toml@<sha>``."""
        return f"{self.genai_version}; {self.overrides_version}"

    def price(
        self,
        model_id: str,
        usage: Usage,
        *,
        official: bool = True,
        at: datetime | None = None,
    ) -> Cost:
        """What ``usage`` cost on ``model_id``; unknown (never zero) when it has no price.

        ``official`` is False for a custom endpoint: public price lists are not consulted.
        ``at`` is when the call was made (default now), for prices that change by date.
        """
        _check(usage)
        key = _key(model_id)
        override = self._overrides.get(key)
        if override is not None:
            return Cost(usd=override.cost(usage), price_version=self.overrides_version)
        if key.split(":", 1)[0] == "local":
            return Cost(usd=Decimal(0), price_version=LOCAL_VERSION)
        if not official:
            return Cost.unknown(self.overrides_version)
        return self._genai_cost(key, usage, at)

    def estimate(
        self,
        model_id: str,
        input_tokens: int,
        output_tokens: int,
        *,
        official: bool = True,
        at: datetime | None = None,
    ) -> Cost:
        """The worst-case cost of one call before it is sent: no prompt cache assumed."""
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, requests=1)
        return self.price(model_id, usage, official=official, at=at)

    # ----------------------------------------------------------------------- genai-prices

    def _load(self) -> tuple[Any, str]:
        if self._genai is None:
            with self._lock:
                if self._genai is None:
                    # imported on first use (about 0.1 s): its bundled data is a large module
                    genai_prices = importlib.import_module("genai_prices")
                    data = importlib.import_module("genai_prices.data")
                    snapshots = importlib.import_module("genai_prices.data_snapshot")
                    # our own snapshot of the bundled data: never one another part of the
                    # process may have fetched, which the version string would not describe
                    snapshot = snapshots.DataSnapshot(
                        providers=data.providers, from_auto_update=False
                    )
                    self._genai = (snapshot, f"genai-prices {genai_prices.__version__}")
        return self._genai

    def _genai_cost(self, key: str, usage: Usage, at: datetime | None) -> Cost:
        snapshot, version = self._load()
        if key not in self._models:
            self._models[key] = _find(snapshot, key)
        found = self._models[key]
        if found is None:
            return Cost.unknown(version)
        provider, model = found
        when = at or datetime.now(tz=UTC)
        prices = model.get_prices(when)
        cached, written, _ = _input_parts(usage)
        if (usage.input_tokens and prices.input_mtok is None) or (
            usage.output_tokens and prices.output_mtok is None
        ):
            return Cost.unknown(version)  # e.g. a model priced by image or by request only
        genai_usage = importlib.import_module("genai_prices").Usage(
            input_tokens=max(usage.input_tokens, cached + written),
            cache_read_tokens=cached,
            cache_write_tokens=written,
            output_tokens=usage.output_tokens,
            output_reasoning_tokens=min(usage.reasoning_tokens, usage.output_tokens),
        )
        try:
            calculation = model.calc_price(genai_usage, provider, genai_request_timestamp=when)
        except (ValueError, LookupError):
            return Cost.unknown(version)
        total: Decimal = calculation.total_price
        per_call = getattr(prices, "requests_kcount", None)
        if per_call is not None and usage.requests > 1:  # genai-prices charges one request
            total += per_call * (usage.requests - 1) / 1000
        return Cost(usd=total, price_version=version)


def _find(snapshot: Any, key: str) -> tuple[Any, Any] | None:
    provider, model = key.split(":", 1)
    provider_id: str | None = _GENAI_PROVIDERS.get(provider, provider)
    try:
        snapshot.find_provider(None, provider_id, None)
    except LookupError:
        # a provider genai-prices does not know by this name (an official endpoint, by a
        # name of the user's choosing): find the model by its own name
        provider_id = None
    try:
        found: tuple[Any, Any] = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return found


def _key(model_id: str) -> str:
    provider, sep, model = model_id.strip().partition(":")
    if not sep or not provider or not model:
        raise ConfigurationError(f"a model is priced as 'provider:model', got {model_id!r}")
    return f"{provider.lower()}:{model.lower()}"


def _check(usage: Usage) -> None:
    for name in ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens"):
        if getattr(usage, name) < 0:
            raise ValueError(f"usage.{name} is negative: {getattr(usage, name)}")


def _input_parts(usage: Usage) -> tuple[int, int, int]:
    """(cache reads, cache writes, other input): ``input_tokens`` counts all three.

    If a provider reports more cached than input tokens, the cached figures win (errs high).
    """
    cached = usage.cached_input_tokens
    written = usage.cache_write_tokens
    fresh = max(usage.input_tokens - cached - written, 0)
    return cached, written, fresh


def _first(value: Decimal | None, default: Decimal | None) -> Decimal | None:
    return default if value is None else value


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
