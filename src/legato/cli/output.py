"""How commands print: rich tables for people, JSON lines for scripts."""

from __future__ import annotations

from legato.timestamps import format_timestamp

_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "waiting": "yellow",
    "running": "cyan",
    "pending": "blue",
    "retrying": "yellow",
}


def styled(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def when(ts: float | None) -> str:
    return "-" if ts is None else format_timestamp(ts, "text")
