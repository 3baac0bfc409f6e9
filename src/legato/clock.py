"""Durable time. Every timer, lease and timestamp the engine uses comes from a Clock.

`legato.testing.TimeSkippingClock` replaces the system clock in tests and demos, so days of
timers run in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of durable time, in seconds since the epoch."""

    #: Waits longer than this (seconds) unload the run instead of holding it in memory.
    park_after: float
    #: Whether the driver may jump to the next timer when nothing else is runnable.
    skips_time: bool

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def advance_to(self, when: float) -> None: ...


class SystemClock:
    """Wall-clock time; short waits are held in memory, longer ones park the run."""

    park_after = 1.0
    skips_time = False

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def advance_to(self, when: float) -> None:  # pragma: no cover - real time cannot jump
        raise RuntimeError("the system clock cannot be advanced")
