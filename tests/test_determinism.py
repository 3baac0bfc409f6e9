"""The determinism contract: changed code under a run in flight is detected, or patched."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import legato


def _v1(app: legato.App, calls: list[str]) -> Callable[..., object]:
    @app.step()
    async def parse() -> str:
        calls.append("parse")
        return "p"

    @app.step()
    async def extract() -> str:
        calls.append("extract")
        return "e"

    @app.workflow(name="pipeline")
    async def pipeline(ctx: legato.Context) -> str:
        a = await parse()
        b = await extract()
        await ctx.wait_for_event("go")
        return a + b

    return pipeline


def test_reordered_steps_fail_with_both_names(make_app: Callable[..., legato.App]) -> None:
    calls: list[str] = []
    old = make_app("v1")
    _v1(old, calls)
    old.start("pipeline", run_id="nd")
    old.run_until_idle()
    assert old.handle("nd").status() == "waiting"

    new = make_app("v2")  # same database, the code was "deployed" with two steps swapped

    @new.step()
    async def parse() -> str:
        calls.append("parse2")
        return "p"

    @new.step()
    async def extract() -> str:
        calls.append("extract2")
        return "e"

    @new.workflow(name="pipeline")
    async def pipeline(ctx: legato.Context) -> str:
        b = await extract()
        a = await parse()
        await ctx.wait_for_event("go")
        return a + b

    new.send_event("nd", "go")
    new.run_until_idle()
    with pytest.raises(legato.RunFailed) as info:
        new.handle("nd").result()
    message = str(info.value)
    assert "NondeterminismError" in message
    assert "recorded step 'parse', now step 'extract' at entry 0" in message
    assert calls == ["parse", "extract"]  # nothing ran under the mismatched code

    # fix the code (back to the recorded order) and retry: the run completes from its journal
    fixed = make_app("v3")
    _v1(fixed, calls)
    fixed.retry("nd")
    fixed.run_until_idle()
    assert fixed.handle("nd").result() == "pe"
    assert calls == ["parse", "extract"]


def test_catching_the_error_in_workflow_code_does_not_hide_it(
    make_app: Callable[..., legato.App],
) -> None:
    old = make_app("a")

    @old.workflow(name="w")
    async def w1(ctx: legato.Context) -> str:
        await ctx.sleep(10)
        return "done"

    old.start("w", run_id="x")
    old.run_until_idle(skip=__import__("datetime").timedelta(0))

    new = make_app("b")

    @new.workflow(name="w")
    async def w2(ctx: legato.Context) -> str:
        try:
            await ctx.wait_for_event("other")
        except Exception:
            return "swallowed"
        return "done"

    new.run_until_idle()
    with pytest.raises(legato.RunFailed, match="NondeterminismError"):
        new.handle("x").result()


def test_patched_keeps_old_runs_on_the_old_path(make_app: Callable[..., legato.App]) -> None:
    old = make_app("old")
    sent: list[str] = []

    @old.step()
    async def email(run: str) -> None:
        sent.append(f"email:{run}")

    @old.workflow(name="notify")
    async def notify_v1(ctx: legato.Context) -> str:
        await email(ctx.run_id)
        await ctx.wait_for_event("go")
        return "v1"

    old.start("notify", run_id="in-flight")
    old.run_until_idle()

    new = make_app("new")

    @new.step(name="email")
    async def email2(run: str) -> None:
        sent.append(f"email:{run}")

    @new.step()
    async def sms(run: str) -> None:
        sent.append(f"sms:{run}")

    @new.workflow(name="notify")
    async def notify_v2(ctx: legato.Context) -> str:
        if ctx.patched("add-sms"):
            await sms(ctx.run_id)
        await email2(ctx.run_id)
        await ctx.wait_for_event("go")
        return "v2" if ctx.patched("add-sms-tail") else "v2-old"

    new.start("notify", run_id="fresh")
    new.run_until_idle()
    for run_id in ("in-flight", "fresh"):
        new.send_event(run_id, "go")
    new.run_until_idle()
    assert new.handle("in-flight").result() == "v2"
    assert new.handle("fresh").result() == "v2"
    assert sent == ["email:in-flight", "sms:fresh", "email:fresh"]


def test_workflow_that_returns_before_its_recorded_entries_is_nondeterministic(
    make_app: Callable[..., legato.App],
) -> None:
    old = make_app("long")

    @old.step()
    async def s() -> int:
        return 1

    @old.workflow(name="w")
    async def long(ctx: legato.Context) -> int:
        await s()
        await ctx.wait_for_event("go")
        return 1

    old.start("w", run_id="short")
    old.run_until_idle()

    new = make_app("short")

    @new.workflow(name="w")
    async def short(ctx: legato.Context) -> int:
        return 2

    new.send_event("short", "go")
    new.run_until_idle()
    with pytest.raises(
        legato.RunFailed, match="recorded step 's' at entry 0, now the workflow returned"
    ):
        new.handle("short").result()
