"""Concurrent branches (asyncio.gather, TaskGroup) replay deterministically, whatever order
their journal writes completed in the first time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

import legato


def test_multi_step_branches_replay_with_their_own_results(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    calls: list[str] = []

    @app.step
    async def fetch(name: str) -> str:
        calls.append(f"fetch:{name}")
        await asyncio.sleep(0.02 if name == "ann" else 0)  # ann's first write lands last
        return f"profile-{name}"

    @app.step
    async def rate(profile: str) -> str:
        calls.append(f"rate:{profile}")
        return f"score-of-{profile}"

    async def score(name: str) -> str:
        return await rate(await fetch(name))

    @app.workflow
    async def rank(ctx: legato.Context) -> list[str]:
        scores = await asyncio.gather(score("ann"), score("bob"), score("cy"))
        await ctx.sleep(timedelta(days=1))  # unload: the rest is replay
        return list(scores)

    handle = app.start(rank, run_id="g")
    app.run_until_idle()
    assert handle.result() == [
        "score-of-profile-ann", "score-of-profile-bob", "score-of-profile-cy",
    ]  # fmt: skip
    assert sorted(calls) == sorted(
        [f"fetch:{n}" for n in ("ann", "bob", "cy")]
        + [f"rate:profile-{n}" for n in ("ann", "bob", "cy")]
    )  # each step ran once: the replay took every result from the journal


def test_parallel_event_waits_then_classification(make_app: Callable[..., legato.App]) -> None:
    """The hiring pattern: wait for each candidate's reply in parallel, classify each."""
    app = make_app()

    @app.step
    async def classify(text: str) -> str:
        return "yes" if "interested" in text else "no"

    async def reply_of(ctx: legato.Context, cid: str) -> str:
        reply = await ctx.wait_for_event(f"reply:{cid}", timeout=timedelta(days=5))
        return await classify(reply["text"])

    @app.workflow
    async def collect(ctx: legato.Context) -> dict[str, str]:
        async with asyncio.TaskGroup() as group:
            tasks = {cid: group.create_task(reply_of(ctx, cid)) for cid in ("c1", "c2", "c3")}
        return {cid: t.result() for cid, t in tasks.items()}

    handle = app.start(collect, run_id="replies")
    app.run_until_idle(skip=timedelta(0))
    for cid, text in (("c3", "interested!"), ("c1", "no thanks"), ("c2", "very interested")):
        app.send_event("replies", f"reply:{cid}", {"text": text})  # in any order
        app.run_until_idle(skip=timedelta(0))
    assert handle.result() == {"c1": "no", "c2": "yes", "c3": "yes"}
    branches = {e.name: e for e in handle.timeline().entries if e.kind == "event"}
    assert set(branches) == {"reply:c1", "reply:c2", "reply:c3"}


def test_tasks_in_a_fresh_context_take_no_branch_number(
    make_app: Callable[..., legato.App],
) -> None:
    """The store's own write tasks (PostgreSQL's journal batch) run on the first execution
    only and start in a fresh, empty context: they must not take branch numbers, or the
    gather's branches are renumbered on replay (found on PostgreSQL: an empty Context is
    falsy, so the task factory numbered it)."""
    import contextvars

    app = make_app()
    calls: list[str] = []

    async def background() -> None:
        return None

    @app.step
    async def one(name: str) -> str:
        calls.append(name)
        return name.upper()

    async def twice(name: str) -> str:
        return await one(await one(name))

    @app.workflow
    async def flow(ctx: legato.Context) -> list[str]:
        if not ctx.is_replaying:  # like a store write: first execution only, fresh context
            await asyncio.get_running_loop().create_task(
                background(), context=contextvars.Context()
            )
        rest = await asyncio.gather(twice("a"), twice("b"))  # steps inside the branches
        await ctx.sleep(timedelta(days=1))  # unload: the rest is replay
        return list(rest)

    handle = app.start(flow, run_id="s")
    app.run_until_idle()
    assert handle.result() == ["A", "B"]
    assert sorted(calls) == ["A", "B", "a", "b"]  # each step once: replay used the journal


def _branchy(app: legato.App) -> Callable[..., object]:
    @app.step
    async def one(name: str) -> str:
        return name.upper()

    async def twice(name: str) -> str:
        return await one(await one(name))

    @app.workflow
    async def flow(ctx: legato.Context) -> list[str]:
        return list(await asyncio.gather(twice("a"), twice("b")))

    return flow


def test_the_host_loop_keeps_its_task_factory(make_app: Callable[..., legato.App]) -> None:
    """legato numbers tasks only while a run executes on the loop; afterwards the loop's own
    factory (none, or the one it had) is back."""
    app = make_app()
    flow = _branchy(app)
    made: list[object] = []

    def theirs(
        loop: asyncio.AbstractEventLoop, coro: object, **kwargs: object
    ) -> asyncio.Task[object]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)  # type: ignore[arg-type]

    async def main() -> tuple[object, object, list[str]]:
        loop = asyncio.get_running_loop()
        before = loop.get_task_factory()
        first = await app.run_async(flow, run_id="plain")
        after_plain = loop.get_task_factory()
        loop.set_task_factory(theirs)
        second = await app.run_async(flow, run_id="chained")  # theirs is chained, then restored
        assert loop.get_task_factory() is theirs
        loop.set_task_factory(None)
        await app.close_async()
        return before, after_plain, [*first, *second]

    before, after, results = asyncio.run(main())
    assert before is None and after is None
    assert results == ["A", "B", "A", "B"]
    assert made  # the chained factory still created the workflow's tasks


def test_a_factory_that_drops_legatos_context_fails_the_run_loudly(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    flow = _branchy(app)

    def careless(
        loop: asyncio.AbstractEventLoop, coro: object, **kwargs: object
    ) -> asyncio.Task[object]:
        return asyncio.Task(coro, loop=loop)  # type: ignore[arg-type]  # drops `context`

    async def main() -> None:
        asyncio.get_running_loop().set_task_factory(careless)
        try:
            await app.run_async(flow, run_id="careless")
        finally:
            await app.close_async()

    with pytest.raises(legato.RunFailed) as failed:
        asyncio.run(main())
    assert "created without legato's branch numbering" in str(failed.value)
    assert "careless" in str(failed.value)  # the factory is named
