"""Durations: the one parser and the one formatter every part of legato uses.

A duration is a ``timedelta``, a number of seconds (an int or float, never a bool), or text
such as ``"30s"``, ``"1h30m"`` or ``"250ms"`` (units ``ms s m h d w``, any case; parts may
repeat: ``"1d12h"``). Callers decide what else they require (positive, not negative, an upper
bound) and word their own errors, so a policy file, a ``RetryPolicy`` and ``legato gc`` each keep
the message their users know; what counts as a duration is decided here once.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from legato.errors import ConfigurationError

UNITS: dict[str, float] = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_TEXT = re.compile(rf"\s*(?:{_NUMBER}\s*(?:ms|s|m|h|d|w)\s*)+", re.IGNORECASE)
HINT = "write seconds or a number with a unit, such as 30s, 10m, 1h or 1d"


def parse_duration(value: object, *, text: bool = True) -> timedelta:
    """A ``timedelta`` from a timedelta, finite seconds or (when ``text``) a string like "1h30m".

    Raises ``ValueError`` naming the value for anything else; the sign is the caller's business.
    """
    if isinstance(value, timedelta):
        return value
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif text and isinstance(value, str) and _TEXT.fullmatch(value):
        seconds = sum(float(n) * UNITS[u.lower()] for n, u in _PART.findall(value))
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration; {HINT}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # finite but beyond timedelta's range (about 2.7 million years)
        raise ValueError(f"{value!r} is not a duration: it is too long") from None


def positive_duration(value: object) -> timedelta:
    """:func:`parse_duration` for settings that must be longer than zero (policies, config)."""
    result = parse_duration(value)
    if result <= timedelta(0):
        raise ValueError(f"a duration must be positive, got {value!r}")
    return result


def to_seconds(value: timedelta | float, what: str) -> float:
    """Seconds from a timedelta or a number, for API arguments; never negative.

    Raises :class:`legato.ConfigurationError` naming ``what`` (e.g. "sleep duration").
    """
    try:
        seconds = parse_duration(value, text=False).total_seconds()
    except ValueError:
        raise ConfigurationError(f"{what} must be a timedelta or seconds, got {value!r}") from None
    if seconds < 0:
        raise ConfigurationError(f"{what} must not be negative, got {value!r}")
    return seconds


def format_duration(value: timedelta | float) -> str:
    """Short text that :func:`parse_duration` reads back: "250ms", "2.5s", "10m", "1h30m".

    Under a second: milliseconds to three digits; under a minute: seconds to three digits;
    longer: whole units from days down, rounded up to the second.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if 0 < seconds < 1:
        return _three_digits(seconds * 1000) + "ms"
    if seconds < 60 and seconds != int(seconds):
        return _three_digits(seconds) + "s"
    whole = math.ceil(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts) or "0s"


def _three_digits(x: float) -> str:
    """``x`` (positive) to three significant digits, never in exponent notation."""
    decimals = max(0, 2 - math.floor(math.log10(x)))
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{x:.0f}"
