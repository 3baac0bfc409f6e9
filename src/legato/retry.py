"""Retry policies for steps: how often, how far apart, and which errors are final."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from legato.durations import parse_duration, to_seconds
from legato.errors import ConfigurationError


@dataclass(frozen=True)
class RetryPolicy:
    """When and how a failing step is tried again.

    Attempt ``n`` (1-based) that fails waits ``initial * multiplier ** (n - 1)``, capped at
    ``max_delay``; with ``jitter`` the wait is drawn uniformly from half to all of it, so many
    runs failing together do not retry in lockstep. Exceptions of a ``non_retryable`` type fail
    the step at once.
    """

    max_attempts: int = 3
    initial: timedelta | float = timedelta(seconds=1)
    multiplier: float = 2.0
    max_delay: timedelta | float = timedelta(minutes=5)
    jitter: bool = True
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        delays = []
        for name in ("initial", "max_delay"):  # seconds are welcome too; stored as timedelta
            value = getattr(self, name)
            try:
                delays.append(parse_duration(value, text=False))
            except ValueError:
                raise ConfigurationError(
                    f"RetryPolicy.{name} must be a timedelta or seconds, got {value!r}"
                ) from None
            object.__setattr__(self, name, delays[-1])
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}"
            )
        if self.multiplier < 1:
            raise ConfigurationError(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier}")
        if min(delays) < timedelta(0):
            raise ConfigurationError("RetryPolicy delays must not be negative")

    def is_retryable(self, error: BaseException) -> bool:
        return not isinstance(error, self.non_retryable)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        try:
            base = to_seconds(self.initial, "RetryPolicy.initial") * self.multiplier ** (
                attempt - 1
            )
        except OverflowError:  # "retry for ever" policies reach the cap long before this
            base = float("inf")
        capped = min(base, to_seconds(self.max_delay, "RetryPolicy.max_delay"))
        if self.jitter:
            return (rng or random).uniform(capped / 2, capped)
        return capped


NO_RETRY = RetryPolicy(max_attempts=1, jitter=False)
