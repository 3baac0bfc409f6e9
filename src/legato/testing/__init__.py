"""Tools for testing workflows: a clock that skips time, so days of timers take milliseconds.

::

    app = legato.App("t", "sqlite:///t.db", clock=TimeSkippingClock())
    app.run(onboarding, user)      # a 7-day sleep inside returns at once

With a time-skipping clock every wait parks the run, and whenever nothing is runnable the
driver (``app.run``, ``app.run_until_idle``, a worker) moves the clock to the next timer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta

from legato.engine.runtime import StepInfo, current_step
from legato.testing.models import ScriptedModel


class TimeSkippingClock:
    """A virtual clock that only moves when told to, or when the driver skips to a timer."""

    park_after = 0.0
    skips_time = True

    def __init__(self, start: datetime | float | None = None) -> None:
        if isinstance(start, datetime):
            start = start.timestamp()
        self._now = float(start) if start is not None else time.time()
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by ``delta``."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        with self._lock:
            if when <= self._now:
                return
            self._now = when
            due = [s for s in self._sleepers if s[0] <= when]
            self._sleepers = [s for s in self._sleepers if s[0] > when]
        for _, loop, fut in due:
            loop.call_soon_threadsafe(_resolve, fut)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._sleepers.append((self._now + seconds, loop, fut))
        await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


__all__ = ["ScriptedModel", "StepInfo", "TimeSkippingClock", "current_step"]
