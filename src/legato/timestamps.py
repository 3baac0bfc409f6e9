"""Timestamps: legato stores epoch seconds (from its Clock) and shows them in UTC, one way.

Every place that turns a stored time into a ``datetime`` or text goes through here, so the CLI,
``legato show`` summaries, cost rollups by day and waiting descriptions agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

#: ``iso``: 2024-05-14T09:30:00+00:00 (messages, summaries); ``text``: 2024-05-14 09:30:00
#: (tables); ``day``: 2024-05-14 (the UTC day budgets and cost rollups count by); ``stamp``:
#: 2024-05-14T09:30:00Z (inside ids: a scheduled run's)
Style = Literal["iso", "text", "day", "stamp"]
_FORMATS: dict[Style, str] = {
    "iso": "%Y-%m-%dT%H:%M:%S+00:00",
    "text": "%Y-%m-%d %H:%M:%S",
    "day": "%Y-%m-%d",
    "stamp": "%Y-%m-%dT%H:%M:%SZ",
}


def utc(ts: float) -> datetime:
    """The timezone-aware UTC ``datetime`` of epoch seconds."""
    return datetime.fromtimestamp(ts, tz=UTC)


def format_timestamp(ts: float, style: Style = "iso") -> str:
    """Epoch seconds as UTC text, to the second (or the day)."""
    return utc(ts).strftime(_FORMATS[style])
