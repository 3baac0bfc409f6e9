"""Waiting for a run's end where the database cannot announce it (SQLite).

An end written through this store (a worker of this process finished or cancelled the run)
wakes its waiters at once; an end written by another process is found by polling, which on
SQLite costs a local read: from 1 ms, doubling up to 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from legato.store.base import TERMINAL, RunRecord

_FIRST_POLL = 0.001
_MAX_POLL = 0.1


class LocalEnds:
    """Waiters for run ends, woken by ends written in this process."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    def announce(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            for fut in self._waiting.get(run_id, ()):
                if not fut.done():
                    fut.set_result(None)

    async def wait(
        self,
        run_id: str,
        read: Callable[[str], Awaitable[RunRecord | None]],
        timeout: float | None,
    ) -> RunRecord | None:
        """See ``Store.wait_for_end``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = _FIRST_POLL
        while True:
            ended: asyncio.Future[None] = loop.create_future()
            waiting = self._waiting.setdefault(run_id, set())
            waiting.add(ended)  # before the read: an end from now on is not missed
            try:
                run = await read(run_id)
                left = None if deadline is None else deadline - loop.time()
                if run is None or run.status in TERMINAL or (left is not None and left <= 0):
                    return run
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended, delay if left is None else min(delay, left))
                delay = min(delay * 2, _MAX_POLL)
            finally:
                waiting.discard(ended)
                if not waiting:
                    self._waiting.pop(run_id, None)
