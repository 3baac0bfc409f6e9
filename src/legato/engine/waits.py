"""Small pieces the engine's parts share: what a parked run waits for, and errors bound to the
journal entry that raised them (the entry `legato retry` resumes from)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypeVar

from legato.timestamps import format_timestamp


@dataclass(slots=True)
class Parkable:
    deadline: float | None
    describe: str
    event: str | None = None
    child: str | None = None
    approval: str | None = None


E = TypeVar("E", bound=BaseException)


def bound(error: E, seq: int) -> E:
    """Mark an error as raised by journal entry ``seq`` (the entry a retry starts from)."""
    error._legato_seq = seq  # type: ignore[attr-defined]
    return error


def failed_seq(error: BaseException) -> int | None:
    """The entry behind ``error``, also when workflow code raised another error from it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        seq = getattr(current, "_legato_seq", None)
        if isinstance(seq, int):
            return seq
        current = current.__cause__ or current.__context__
    return None


async def forever() -> None:
    await asyncio.get_running_loop().create_future()


def iso(ts: float) -> str:
    return format_timestamp(ts)
