"""The sync API is derived from the async one: same names, signatures, docs and errors."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import legato
from legato.handle import RunHandle
from legato.oversight import Approvals, Autonomy
from legato.sync import blocking

# *_async methods whose sync form does something else, so it is written by hand:
# `worker` installs signal handlers and closes the app; `close` also stops the private loop.
NOT_TWINS = {"worker_async", "close_async", "ops_async"}
FACADES = [legato.App, RunHandle, Approvals, Autonomy]


def _twins() -> list[tuple[type, str]]:
    return [
        (cls, name.removesuffix("_async"))
        for cls in FACADES
        for name, member in vars(cls).items()
        if name.endswith("_async") and name not in NOT_TWINS and inspect.iscoroutinefunction(member)
    ]


def test_every_async_method_has_a_sync_twin_with_its_signature_and_docstring() -> None:
    twins = _twins()
    assert len(twins) == 22  # (App.fork, RunHandle.custom_status, App.check_monitors, ...)
    for cls, name in twins:
        sync, coro = getattr(cls, name), getattr(cls, f"{name}_async")
        assert not inspect.iscoroutinefunction(sync), f"{cls.__name__}.{name}"
        assert sync.__name__ == name and sync.__qualname__ == f"{cls.__name__}.{name}"
        assert inspect.signature(sync) == inspect.signature(coro)
        assert sync.__doc__ and sync.__doc__ == coro.__doc__, f"{cls.__name__}.{name}"


def test_blocking_only_derives_from_async_methods() -> None:
    async def status(self: Any) -> str:
        return "x"

    with pytest.raises(TypeError, match="sync twins of \\*_async methods"):
        blocking(status)


def _workflow_app(make_app: Callable[..., legato.App]) -> tuple[legato.App, Any]:
    app = make_app()

    @app.workflow()
    async def double(ctx: legato.Context, n: int) -> int:
        return 2 * n

    return app, double


def test_sync_twins_work_without_and_with_a_running_loop(
    make_app: Callable[..., legato.App],
) -> None:
    app, double = _workflow_app(make_app)
    assert app.run(double, 2, run_id="plain") == 4

    async def inside_a_loop() -> tuple[int, str]:
        # a script's own event loop is running in this thread: sync calls still work
        handle = app.start(double, 5, run_id="in-loop")
        app.run_until_idle()
        return handle.result(), handle.status()

    assert asyncio.run(inside_a_loop()) == (10, "completed")


def _same_error(sync: Callable[[], object], coro: Callable[[], Coroutine[Any, Any, object]]) -> str:
    with pytest.raises(legato.LegatoError) as from_sync:
        sync()
    with pytest.raises(legato.LegatoError) as from_async:
        asyncio.run(coro())
    assert type(from_sync.value) is type(from_async.value)
    assert str(from_sync.value) == str(from_async.value)
    return str(from_sync.value)


def test_sync_twins_raise_what_the_async_methods_raise(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    ghost = app.handle("ghost")

    async def async_status() -> object:
        try:
            return await ghost.status_async()
        finally:
            await app.close_async()

    assert "no run 'ghost'" in _same_error(ghost.status, async_status)

    async def async_get() -> object:
        try:
            return await app.approvals.get_async("ap_nope")
        finally:
            await app.close_async()

    message = _same_error(lambda: app.approvals.get("ap_nope"), async_get)
    assert "no approval 'ap_nope'" in message

    async def async_set() -> None:
        try:
            await app.autonomy.set_async("bot", 7, by="ann", reason="why")
        finally:
            await app.close_async()

    message = _same_error(lambda: app.autonomy.set("bot", 7, by="ann", reason="why"), async_set)
    assert "autonomy level must be 0, 1, 2 or 3" in message


def test_a_sync_call_on_legatos_own_loop_names_the_async_twin(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.step()
    async def peek() -> str:
        return app.handle("anything").status()  # runs on the app's private loop: deadlock

    @app.workflow()
    async def calls_sync(ctx: legato.Context) -> str:
        return await peek()

    with pytest.raises(legato.RunFailed, match="use its \\*_async twin"):
        app.run(calls_sync, run_id="own-loop")


def test_legatos_own_loops_use_uvloop_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    import uvloop

    from legato.sync import new_loop

    loop = new_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    monkeypatch.setenv("LEGATO_UVLOOP", "0")
    loop = new_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
