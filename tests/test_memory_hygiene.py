"""A finished or parked run leaves nothing for the cycle collector.

A worker with many runs in flight grows to its load only if each execution is freed by reference
counting when it ends; an execution caught in a reference cycle (a collaborator holding its host,
a branch holding its task, an exception's traceback holding the frames that hold both) lives on
until a full collection, and 1,000 in flight grew a worker by 27 MB instead of 16.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

import legato
from legato.ai.messages import ToolCall
from legato.testing import ScriptedModel


class Answer(BaseModel):
    temperature: int


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """Collect first, then keep whatever the collector finds in the block instead of freeing it."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _legato_cycles(garbage: list[object]) -> Counter[str]:
    """Objects of legato's own types, and frames of its code, among what the collector found."""
    found: Counter[str] = Counter()
    for obj in garbage:
        module = type(obj).__module__
        if module.startswith("legato"):
            found[type(obj).__qualname__] += 1
        elif type(obj).__name__ == "frame" and "/legato/" in obj.f_code.co_filename:  # type: ignore[attr-defined]
            found[f"frame {obj.f_code.co_name}"] += 1  # type: ignore[attr-defined]
    return found


def _shapes(app: legato.App) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Workflows that take every path an execution has: gather, a sync step that fails once, a
    step timeout, an agent with a gated tool, a child, a parked sleep, an approval, an event, and
    a run that fails."""
    attempts: Counter[int] = Counter()

    @app.step()
    async def double(i: int) -> int:
        return 2 * i

    @app.step(retry=legato.RetryPolicy(max_attempts=2, initial=0))
    def flaky(i: int) -> int:
        attempts[i] += 1
        if attempts[i] == 1:
            raise RuntimeError("first attempt fails")
        return i

    @app.step(retry=legato.RetryPolicy(max_attempts=1))
    async def broken() -> None:
        raise ValueError("always")

    @app.step(timeout=0.01, retry=legato.RetryPolicy(max_attempts=2, initial=0))
    async def slow_once(i: int) -> int:
        attempts[-i - 1] += 1
        if attempts[-i - 1] == 1:
            await asyncio.sleep(1)
        return i

    @app.tool(risk="low")
    def weather(city: str) -> int:
        return 21

    replies = [
        [ToolCall(id="1", name="weather", arguments={"city": "Paris"})],
        [ToolCall(id="2", name="final_result", arguments={"temperature": 21})],
    ]
    model = app.models.add(ScriptedModel(replies * 20))
    agent = legato.Agent("forecaster", model.id, "Weather?", tools=[weather], output=Answer)

    @app.workflow()
    async def child(ctx: legato.Context, i: int) -> int:
        return await double(i)

    @app.workflow()
    async def shapes(ctx: legato.Context, i: int) -> int:
        a, b = await asyncio.gather(double(i), flaky(i))
        assert await slow_once(i) == i
        assert (await agent.run(ctx, "Paris?")).output == Answer(temperature=21)
        c = await ctx.child(child, i)
        await ctx.sleep(timedelta(days=7))  # parked, then woken by the time-skipping clock
        decision = await ctx.approval("go", {"i": i})
        event = await ctx.wait_for_event("poke")
        return a + b + c + int(decision.approved) + int(event["n"])

    @app.workflow()
    async def fails(ctx: legato.Context) -> None:
        await broken()

    return shapes, fails


def test_runs_of_every_shape_are_freed_without_the_cycle_collector(
    make_app: Callable[..., legato.App], saved_garbage: list[object]
) -> None:
    app = make_app()
    shapes, fails = _shapes(app)

    def batch(first: int) -> None:
        handles = [app.start(shapes, i, run_id=f"s{i}") for i in range(first, first + 5)]
        failing = app.start(fails, run_id=f"f{first}")
        app.run_until_idle()
        for pending in app.approvals.list():
            app.approvals.decide(pending.id, True, by="ops")
        for handle in handles:
            app.send_event(handle.run_id, "poke", {"n": 1})
        app.run_until_idle()
        assert [h.result() for h in handles] == [5 * i + 2 for i in range(first, first + 5)]
        with pytest.raises(legato.RunFailed):
            failing.result()

    batch(0)  # first runs warm caches (models, adapters) that live as long as the app
    gc.collect()
    saved_garbage.clear()
    batch(10)
    gc.collect()
    assert _legato_cycles(saved_garbage) == Counter()
