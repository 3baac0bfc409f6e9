"""Token usage in typed buckets, and cost as a decimal or unknown (never a silent zero)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class Usage(BaseModel):
    """Tokens one or more model calls used, by bucket, plus what the provider reported.

    ``input_tokens`` counts every prompt token, cached or not; ``cached_input_tokens`` and
    ``cache_write_tokens`` say how many of them were read from or written to the provider's
    prompt cache. ``reasoning_tokens`` are part of ``output_tokens``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    #: the provider's own usage object, as it sent it (None when summed over several calls)
    raw: dict[str, Any] | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
        )


class Cost(BaseModel):
    """What calls cost in USD. ``usd`` is None when any part of it is unknown.

    Unknown is not zero: a budget in USD treats unknown cost as a breach unless it is told
    to allow it, so an unpriced model cannot spend without limit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: Decimal | None = Decimal(0)
    #: the price table (and its version) the figure came from, so it can be recomputed
    price_version: str | None = None

    @property
    def known(self) -> bool:
        return self.usd is not None

    @property
    def nanousd(self) -> int | None:
        """Whole nano-dollars, as usage rows sum them exactly (None when unknown)."""
        if self.usd is None:
            return None
        return int((self.usd * 1_000_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def __add__(self, other: Cost) -> Cost:
        usd = None if self.usd is None or other.usd is None else self.usd + other.usd
        version = self.price_version if self.price_version == other.price_version else None
        return Cost(usd=usd, price_version=version or self.price_version or other.price_version)

    @classmethod
    def unknown(cls, price_version: str | None = None) -> Cost:
        return cls(usd=None, price_version=price_version)
