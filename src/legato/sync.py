"""The sync edge: sync methods derived from the async core, run on a private event loop.

legato is written with asyncio. Scripts, notebooks and the CLI want plain calls, so each facade
method that talks to the database is written once, as ``*_async``, and its sync twin is derived
with :func:`blocking`: same name without ``_async``, same parameters and docstring, and it runs
the coroutine on a :class:`Portal` (one long-lived loop in a daemon thread per app). Running on
that thread, not on the caller's, is what lets a sync call work both with and without an event
loop running in the calling thread, and keeps the app's connections on one loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from legato.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def new_loop() -> asyncio.AbstractEventLoop:
    """An event loop for the threads and commands legato owns (never the caller's): uvloop's
    where it is installed, for its cheaper hand-off between threads and the loop (what a sync
    step costs), unless ``LEGATO_UVLOOP=0``; asyncio's otherwise."""
    if os.environ.get("LEGATO_UVLOOP", "1") != "0":
        try:
            import uvloop
        except ImportError:  # not on this platform (Windows) or not installed
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a loop from :func:`new_loop`."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)


class Portal:
    """Runs coroutines on one long-lived loop in a daemon thread and waits for them."""

    def __init__(self, name: str) -> None:
        self._loop = new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal's loop; return its result or raise its exception."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise ConfigurationError(
                "a sync legato method was called from async code running on legato's own loop;"
                " use its *_async twin"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


class Blocking(Protocol):
    """A facade whose sync methods :func:`blocking` derives: it knows how to run a coroutine."""

    def _sync(self, coro: Coroutine[Any, Any, T], /) -> T: ...


S = TypeVar("S", bound=Blocking)


def blocking(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]], /
) -> Callable[Concatenate[S, P], R]:
    """The sync twin of an ``async def name_async(self, ...)`` method, for the class body::

    async def status_async(self) -> str: ...
    status = blocking(status_async)
    """
    name = method.__name__.removesuffix("_async")
    if name == method.__name__:
        raise TypeError(f"blocking() derives sync twins of *_async methods, not {name!r}")

    @functools.wraps(method)
    def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._sync(method(self, *args, **kwargs))

    twin.__name__ = name
    twin.__qualname__ = method.__qualname__.removesuffix("_async")
    return twin
