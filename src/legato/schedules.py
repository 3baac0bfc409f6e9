"""``app.schedules``: add, list, pause, resume, trigger and delete schedules at run time.

Schedules can also be declared in code with ``@app.schedule``; workers keep those in step with
the code when they start.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from legato.ops import Operations, Schedule
from legato.sync import blocking

if TYPE_CHECKING:
    from legato.app import App

T = TypeVar("T")


class Schedules:
    """``app.schedules`` (sync and ``*_async``). Changes made here reach this process's workers
    at once and other processes' within their poll interval."""

    def __init__(self, app: App) -> None:
        self._app = app

    def _sync(self, coro: Coroutine[Any, Any, T], /) -> T:
        return self._app._sync(coro)

    async def _ops(self) -> Operations:
        return await self._app.ops_async()

    async def add_async(
        self,
        workflow: Callable[..., Any] | str,
        cron: str,
        *,
        id: str | None = None,
        tz: str = "UTC",
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        catchup: str = "one",
        overlap: str = "skip",
        by: str,
    ) -> Schedule:
        """Start ``workflow`` with ``args``/``kwargs`` on every tick of ``cron`` in ``tz``.

        ``id`` defaults to the workflow's name; adding an existing id changes that schedule
        (its next tick is kept while cron and zone stay the same). See ``@app.schedule`` for
        ``catchup`` and ``overlap``.
        """
        ops = await self._ops()
        schedule, _ = await ops.schedules.put(
            self._app._definition(workflow), cron, schedule_id=id, tz=tz, args=args,
            kwargs=kwargs, catchup=catchup, overlap=overlap, source="api", by=by,
        )  # fmt: skip
        self._app._schedules_changed()
        return schedule

    async def list_async(self) -> builtins.list[Schedule]:
        return await (await self._ops()).schedules.list()

    async def get_async(self, id: str) -> Schedule:
        """One schedule; :class:`legato.UnknownSchedule` if there is none."""
        return await (await self._ops()).schedules.get(id)

    async def pause_async(self, id: str, *, by: str, reason: str = "paused") -> bool:
        """No tick fires until ``resume``; False when it was paused already."""
        changed = await (await self._ops()).schedules.pause(id, by=by, reason=reason)
        self._app._schedules_changed()
        return changed

    async def resume_async(self, id: str, *, by: str, reason: str = "resumed") -> bool:
        """Fire again from the next tick; ticks that fell while paused do not fire."""
        changed = await (await self._ops()).schedules.resume(id, by=by, reason=reason)
        self._app._schedules_changed()
        return changed

    async def trigger_async(self, id: str, *, by: str) -> str:
        """Start a run now, besides the ticks; its run id."""
        run = await (await self._ops()).schedules.trigger(id, by=by)
        self._app._notify_workers()
        return run.run_id

    async def delete_async(self, id: str, *, by: str) -> None:
        await (await self._ops()).schedules.delete(id, by=by)
        self._app._schedules_changed()

    add = blocking(add_async)
    list = blocking(list_async)
    get = blocking(get_async)
    pause = blocking(pause_async)
    resume = blocking(resume_async)
    trigger = blocking(trigger_async)
    delete = blocking(delete_async)


__all__ = ["Schedule", "Schedules"]
