"""Core behaviour of workflows and steps in one process, on a time-skipping clock."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

import legato
from legato.testing import TimeSkippingClock


class Profile(BaseModel):
    name: str
    skills: list[str]


@dataclasses.dataclass
class Score:
    candidate: str
    value: float


def test_run_returns_the_workflow_result(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.step()
    async def fetch(name: str) -> Profile:
        return Profile(name=name, skills=["python", "sql"])

    @app.step()
    def score(p: Profile) -> Score:  # a sync step runs in a thread
        return Score(p.name, len(p.skills) / 2)

    @app.workflow()
    async def hire(ctx: legato.Context, name: str) -> Score:
        profile = await fetch(name)
        assert isinstance(profile, Profile)
        return await score(profile)

    assert app.run(hire, "ada") == Score("ada", 1.0)


def test_replay_returns_recorded_results_without_running_steps_again(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    calls: list[str] = []

    @app.step()
    async def fetch(name: str) -> Profile:
        calls.append(name)
        return Profile(name=name, skills=["x"])

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        p = await fetch("bob")
        got = await ctx.wait_for_event("go")
        return f"{p.name}:{type(p).__name__}:{got}"

    handle = app.start(wf, run_id="r")
    app.run_until_idle()
    assert handle.status() == "waiting"
    app.send_event("r", "go", 7)
    app.run_until_idle()
    # the second execution replayed `fetch` (read back as a Profile) without calling it
    assert handle.result() == "bob:Profile:7"
    assert calls == ["bob"]


def test_first_execution_sees_what_replay_would(make_app: Callable[..., legato.App]) -> None:
    """A tuple becomes a list in JSON: the first execution must already see the list."""
    app = make_app()

    @app.step()
    async def pair() -> list[int]:
        return (1, 2)  # type: ignore[return-value]

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        return type(await pair()).__name__

    assert app.run(wf) == "list"


def test_parallel_steps_with_gather_are_numbered_in_call_order(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.step()
    async def slow(i: int) -> int:
        await asyncio.sleep(0.01 * (5 - i))  # finish in reverse order
        return i

    @app.workflow()
    async def fan(ctx: legato.Context) -> list[int]:
        return list(await asyncio.gather(*(slow(i) for i in range(5))))

    handle = app.start(fan, run_id="fan")
    app.run_until_idle()
    assert handle.result() == [0, 1, 2, 3, 4]
    timeline = asyncio.run(_timeline(app, "fan"))
    assert [(e.seq, e.summary) for e in timeline] == [(i, str(i)) for i in range(5)]


async def _timeline(app: legato.App, run_id: str) -> list[legato.ops.TimelineEntry]:  # type: ignore[name-defined]
    try:
        ops = await app.ops_async()
        return (await ops.runs.timeline(run_id)).entries
    finally:
        await app.close_async()


def test_now_random_uuid_are_recorded_and_replayed(make_app: Callable[..., legato.App]) -> None:
    clock = TimeSkippingClock(datetime(2030, 1, 1, tzinfo=UTC))
    app = make_app(clock=clock)
    seen: list[tuple[datetime, float, uuid.UUID]] = []

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        values = (ctx.now(), ctx.random(), ctx.uuid())
        seen.append(values)
        await ctx.wait_for_event("go")
        return "ok"

    app.start(wf, run_id="v")
    app.run_until_idle()
    clock.advance(timedelta(hours=5))
    app.send_event("v", "go")
    app.run_until_idle()
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0][0] == datetime(2030, 1, 1, tzinfo=UTC)


def test_durable_sleep_of_a_week_takes_no_time(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> float:
        before = ctx.now()
        await ctx.sleep(timedelta(days=7))
        return (ctx.now() - before).total_seconds()

    assert app.run(wf) == 7 * 86400


def test_short_sleep_on_the_system_clock_stays_in_memory(db_url: str) -> None:
    app = legato.App("real", db_url)
    try:

        @app.workflow()
        async def wf(ctx: legato.Context) -> str:
            await ctx.sleep(0.05)
            return "woke"

        handle = app.start(wf)
        assert app.run(wf) == "woke"
        app.run_until_idle()
        assert handle.result() == "woke"
    finally:
        app.close()


def test_child_workflows_run_and_return(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.step()
    async def double(x: int) -> int:
        return 2 * x

    @app.workflow()
    async def child(ctx: legato.Context, x: int) -> int:
        await ctx.sleep(timedelta(hours=1))
        return await double(x)

    @app.workflow()
    async def parent(ctx: legato.Context) -> list[int]:
        return list(await asyncio.gather(ctx.child(child, 1), ctx.child(child, 2)))

    handle = app.start(parent, run_id="p")
    app.run_until_idle()
    assert handle.result() == [2, 4]
    assert app.handle("p~0").result() == 2 and app.handle("p~1").result() == 4


def test_failed_child_raises_child_failed_in_parent(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def child(ctx: legato.Context) -> int:
        raise ValueError("bad child")

    @app.workflow()
    async def parent(ctx: legato.Context) -> str:
        try:
            await ctx.child(child)
        except legato.ChildFailed as exc:
            return f"{exc.status}:{exc.error_type}:{exc.message}"
        return "no"

    assert app.run(parent) == "failed:ValueError:bad child"


def test_step_outside_a_workflow_simply_runs(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.step()
    def sync_step(x: int) -> int:
        return x + 1

    @app.step()
    async def async_step(x: int) -> int:
        return x + 2

    assert sync_step(1) == 2  # type: ignore[comparison-overlap]
    assert asyncio.run(async_step(1)) == 3  # type: ignore[arg-type]


def test_steps_read_a_stable_idempotency_key(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    keys: list[tuple[str, int]] = []

    @app.step(retry=legato.RetryPolicy(max_attempts=3, initial=timedelta(seconds=1), jitter=False))
    def charge() -> str:
        info = legato.current_step()
        keys.append((info.idempotency_key, info.attempt))
        if info.attempt < 2:
            raise ConnectionError("try again")
        return info.idempotency_key

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        await ctx.sleep(1)
        return await charge()

    assert app.run(wf, run_id="pay-1") == "pay-1:1"
    assert keys == [("pay-1:1", 1), ("pay-1:1", 2)]
    with pytest.raises(legato.LegatoError, match="only available inside a running step"):
        legato.current_step()


def test_start_is_idempotent_on_run_id(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def a(ctx: legato.Context, x: int) -> int:
        return x

    @app.workflow()
    async def b(ctx: legato.Context) -> int:
        return 0

    first = app.start(a, 1, run_id="same")
    again = app.start(a, 2, run_id="same")
    assert first.run_id == again.run_id == "same"
    app.run_until_idle()
    assert again.result() == 1  # the existing run, not a new one
    with pytest.raises(legato.RunConflict, match="already belongs to workflow 'a'"):
        app.start(b, run_id="same")


def test_run_failed_carries_type_message_and_traceback(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def boom(ctx: legato.Context) -> None:
        raise KeyError("missing-thing")

    handle = app.start(boom, run_id="boom")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed) as info:
        handle.result()
    assert "KeyError" in str(info.value) and "missing-thing" in str(info.value)
    assert info.value.error_type == "KeyError"
    assert info.value.traceback is not None and "raise KeyError" in info.value.traceback
    assert handle.status() == "failed"


def test_cancel_stops_a_waiting_run(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        await ctx.wait_for_event("never")

    handle = app.start(wf, run_id="c")
    app.run_until_idle()
    app.cancel("c")
    assert handle.status() == "cancelled"
    with pytest.raises(legato.RunCancelled):
        handle.result()
    with pytest.raises(legato.RunConflict, match="already cancelled"):
        app.cancel("c")


def test_async_api_in_user_event_loop(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.step()
    async def one() -> int:
        return 1

    @app.workflow()
    async def wf(ctx: legato.Context, n: int) -> int:
        return n + await one()

    async def main() -> tuple[int, str]:
        handle = await app.start_async(wf, 41)
        await app.run_until_idle_async()
        result = await handle.result_async()
        status = await handle.status_async()
        await app.close_async()
        return result, status

    assert asyncio.run(main()) == (42, "completed")


def test_result_timeout_when_nobody_executes_the_run(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        return None

    handle = app.start(wf)
    with pytest.raises(legato.ResultTimeout, match="still pending"):
        handle.result(timeout=0.05)


def test_blocking_sync_steps_of_many_runs_run_in_parallel(db_url: str) -> None:
    """Sync steps get a thread per run held, not asyncio's small default pool."""
    import threading

    app = legato.App("threads", db_url)
    barrier = threading.Barrier(12, timeout=30)

    @app.step(retry=legato.NO_RETRY)
    def rendezvous() -> int:
        return barrier.wait()  # returns only once 12 steps are blocked here at the same time

    @app.workflow()
    async def wf(ctx: legato.Context) -> int:
        return await rendezvous()

    try:
        handles = [app.start(wf) for _ in range(12)]
        app.run_until_idle(concurrency=12)
        assert sorted(h.result() for h in handles) == list(range(12))
    finally:
        app.close()


def test_workflow_decorator_without_parentheses_and_timeline(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.step
    async def one() -> int:
        return 1

    @app.workflow
    async def bare(ctx: legato.Context) -> int:
        return await one()

    handle = app.start(bare, run_id="bare")
    app.run_until_idle()
    assert handle.result() == 1
    timeline = handle.timeline()
    assert timeline.run.status == "completed"
    assert [(e.kind, e.name, e.status) for e in timeline.entries] == [("step", "one", "completed")]
    with pytest.raises(legato.ConfigurationError, match=r"@app\.workflow\(name='x'\)"):
        app.workflow("x")  # type: ignore[call-overload]


def test_child_ids_never_collide_with_user_run_ids(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def child(ctx: legato.Context) -> str:
        return "child"

    @app.workflow()
    async def parent(ctx: legato.Context) -> str:
        return await ctx.child(child)

    app.start(child, run_id="p:0")  # a user's run whose id looks like an old-style child id
    assert app.run(parent, run_id="p") == "child"
    assert app.handle("p~0").status() == "completed"


def test_retrying_a_parent_resumes_its_cancelled_child(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def child(ctx: legato.Context) -> str:
        await ctx.wait_for_event("go")
        return "done"

    @app.workflow()
    async def parent(ctx: legato.Context) -> str:
        return await ctx.child(child)

    handle = app.start(parent, run_id="par")
    app.run_until_idle()
    app.cancel("par~0")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="ChildFailed: child run 'par~0' cancelled"):
        handle.result()
    app.retry("par")
    app.send_event("par~0", "go")
    app.run_until_idle()
    assert handle.result() == "done"


def test_retry_policy_accepts_seconds() -> None:
    policy = legato.RetryPolicy(initial=2, max_delay=5.0, jitter=False)
    assert policy.initial == timedelta(seconds=2) and policy.delay(3) == 5.0
    with pytest.raises(legato.ConfigurationError, match="must be a timedelta or seconds"):
        legato.RetryPolicy(initial="soon")  # type: ignore[arg-type]
