"""Telling a typo from a name: what people type is checked against what the database knows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from legato.errors import LegatoError, did_you_mean


async def require_name(
    name: str,
    also: Collection[str],
    known: Callable[[], Awaitable[list[str]]],
    error: Callable[[str], LegatoError],
    hint: str,
) -> None:
    """Raise ``error`` (``hint`` + "did you mean") unless ``name`` is one of ``also`` or of
    what ``known()`` returns, which is asked only when ``also`` does not have it."""
    if name in also:
        return
    found = await known()
    if name not in found:
        raise error(f"{hint}{did_you_mean(name, {*found, *also})}")
