"""Retries with backoff on the time-skipping clock; final failures; `retry` resumes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

import pytest

import legato
from legato.testing import TimeSkippingClock

POLICY = legato.RetryPolicy(
    max_attempts=4,
    initial=timedelta(minutes=1),
    multiplier=3,
    max_delay=timedelta(minutes=5),
    jitter=False,
    non_retryable=(PermissionError,),
)


def test_backoff_follows_the_policy_on_the_durable_clock(
    make_app: Callable[..., legato.App],
) -> None:
    clock = TimeSkippingClock(1_000_000.0)
    app = make_app(clock=clock)
    attempts_at: list[float] = []

    @app.step(retry=POLICY)
    def flaky() -> str:
        attempts_at.append(clock.now())
        if len(attempts_at) < 4:
            raise ConnectionError("down")
        return "up"

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        return await flaky()

    assert app.run(wf) == "up"
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert gaps == [60, 180, 300]  # 1 min, 3 min, then capped at max_delay 5 min


def test_jitter_spreads_delays_between_half_and_full() -> None:
    policy = legato.RetryPolicy(initial=timedelta(seconds=10), jitter=True)
    delays = [policy.delay(1) for _ in range(200)]
    assert all(5 <= d <= 10 for d in delays) and len(set(delays)) > 100


def test_non_retryable_error_fails_at_once(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    calls: list[int] = []

    @app.step(retry=POLICY)
    def forbidden() -> None:
        calls.append(1)
        raise PermissionError("no access to the mailbox")

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        await forbidden()

    handle = app.start(wf)
    app.run_until_idle()
    with pytest.raises(legato.RunFailed) as info:
        handle.result()
    assert calls == [1]
    assert info.value.error_type == "StepFailed"
    assert "failed after 1 attempt: PermissionError: no access to the mailbox" in str(info.value)


def test_exhausted_retries_fail_the_run_and_retry_resumes_from_the_failed_step(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    healthy = {"value": False}
    calls = {"before": 0, "flaky": 0, "after": 0}

    @app.step()
    async def before() -> int:
        calls["before"] += 1
        return 1

    @app.step(retry=legato.RetryPolicy(max_attempts=2, initial=timedelta(seconds=30), jitter=False))
    async def flaky() -> int:
        calls["flaky"] += 1
        if not healthy["value"]:
            raise TimeoutError("upstream timed out")
        return 2

    @app.step()
    async def after(x: int) -> int:
        calls["after"] += 1
        return x + 10

    @app.workflow()
    async def wf(ctx: legato.Context) -> int:
        a = await before()
        b = await flaky()
        return await after(a + b)

    handle = app.start(wf, run_id="r")
    app.run_until_idle()
    with pytest.raises(
        legato.RunFailed, match="step 'flaky' failed after 2 attempts: TimeoutError"
    ):
        handle.result()
    assert calls == {"before": 1, "flaky": 2, "after": 0}

    healthy["value"] = True
    app.retry("r")
    app.run_until_idle()
    assert handle.result() == 13
    assert calls == {"before": 1, "flaky": 3, "after": 1}  # `before` was not redone
    with pytest.raises(legato.RunConflict, match="only failed or cancelled runs can be retried"):
        app.retry("r")


def test_workflow_can_handle_a_failed_step_deterministically(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.step(retry=legato.NO_RETRY)
    async def risky() -> int:
        raise ValueError("nope")

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        try:
            await risky()
        except legato.StepFailed as exc:
            fallback = exc.error_type
        await ctx.wait_for_event("go")  # forces a replay through the handled failure
        return fallback

    handle = app.start(wf, run_id="h")
    app.run_until_idle()
    app.send_event("h", "go")
    app.run_until_idle()
    assert handle.result() == "ValueError"


def test_step_timeout_counts_as_a_failed_attempt(db_url: str) -> None:
    app = legato.App("timeouts", db_url)
    try:
        import asyncio

        @app.step(timeout=0.05, retry=legato.RetryPolicy(max_attempts=2, initial=timedelta(0)))
        async def hangs() -> None:
            await asyncio.sleep(10)

        @app.workflow()
        async def wf(ctx: legato.Context) -> None:
            await hangs()

        with pytest.raises(legato.RunFailed, match=r"timed out after 0\.05s"):
            app.run(wf)
    finally:
        app.close()


def test_a_sync_step_times_out_and_its_late_result_is_dropped(db_url: str) -> None:
    """A sync step runs in a thread that cannot be interrupted: the step fails at its
    timeout, and the result the thread hands back later changes nothing."""
    import threading

    app = legato.App("sync-timeouts", db_url)
    release = threading.Event()
    try:

        @app.step(timeout=0.05, retry=legato.NO_RETRY)
        def hangs() -> str:
            release.wait(10)
            return "too late"

        @app.step(retry=legato.NO_RETRY)
        def fails() -> str:
            raise KeyError("no such order")

        @app.workflow()
        async def wf(ctx: legato.Context) -> str:
            try:
                await hangs()
            except legato.StepFailed as exc:
                release.set()
                try:
                    await fails()
                except legato.StepFailed as again:
                    return f"{exc.error_type}: {exc.message} / {again.error_type}"
            return "finished?"

        assert app.run(wf) == "TimeoutError: step 'hangs' timed out after 0.05s / KeyError"
    finally:
        release.set()
        app.close()


def test_bad_retry_policies_are_rejected() -> None:
    with pytest.raises(legato.ConfigurationError, match="max_attempts"):
        legato.RetryPolicy(max_attempts=0)
    with pytest.raises(legato.ConfigurationError, match="multiplier"):
        legato.RetryPolicy(multiplier=0.5)


def test_retry_resumes_from_the_entry_that_failed_the_run_not_a_handled_one(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    sent: list[str] = []
    card_ok = {"value": False}

    @app.step
    async def email(what: str) -> None:
        sent.append(what)

    @app.step(retry=legato.NO_RETRY)
    async def charge() -> str:
        if not card_ok["value"]:
            raise ConnectionError("card declined")
        return "paid"

    @app.workflow
    async def signup(ctx: legato.Context) -> str:
        try:
            await ctx.wait_for_event("confirmed", timeout=timedelta(days=2))
        except legato.EventTimeout:
            await email("reminder")  # handled: the run goes on
        await email("welcome")
        try:
            return await charge()
        except legato.StepFailed as exc:
            raise RuntimeError("billing failed") from exc  # another error, from the step's

    handle = app.start(signup, run_id="s")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="RuntimeError: billing failed"):
        handle.result()
    assert sent == ["reminder", "welcome"]
    card_ok["value"] = True
    app.retry("s")
    app.run_until_idle()
    assert handle.result() == "paid"
    assert sent == ["reminder", "welcome"]  # nothing before the failed charge ran again


def test_retry_for_ever_policies_stay_capped() -> None:
    policy = legato.RetryPolicy(max_attempts=10**9, initial=1, max_delay=60, jitter=False)
    assert policy.delay(5000) == 60
