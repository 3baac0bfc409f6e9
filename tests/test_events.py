"""External events: buffered, typed, timed out, and refused when they cannot be delivered."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import BaseModel

import legato


class Reply(BaseModel):
    candidate: str
    interested: bool


def test_event_sent_before_the_wait_is_buffered(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> list[object]:
        await ctx.sleep(timedelta(days=1))
        first = await ctx.wait_for_event("reply")
        second = await ctx.wait_for_event("reply")
        return [first, second]

    handle = app.start(wf, run_id="b")
    app.send_event("b", "reply", {"n": 1})  # before the run even started
    app.send_event("b", "reply", {"n": 2})
    app.run_until_idle()
    assert handle.result() == [{"n": 1}, {"n": 2}]  # in order, none lost


def test_typed_event_payload(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        reply = await ctx.wait_for_event("reply", type=Reply)
        return f"{type(reply).__name__}:{reply.candidate}:{reply.interested}"

    handle = app.start(wf, run_id="t")
    app.run_until_idle()
    app.send_event("t", "reply", Reply(candidate="c7", interested=True))
    app.run_until_idle()
    assert handle.result() == "Reply:c7:True"


def test_event_timeout_raises_and_can_be_handled(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        try:
            await ctx.wait_for_event("reply", timeout=timedelta(days=5))
        except legato.EventTimeout as exc:
            return f"timed out waiting for {exc.name}"
        return "replied"

    handle = app.start(wf, run_id="to")
    app.run_until_idle(skip=timedelta(days=4))
    assert handle.status() == "waiting"
    app.run_until_idle()  # skip the rest: the timeout fires
    assert handle.result() == "timed out waiting for reply"
    # a late event is refused loudly rather than silently dropped
    with pytest.raises(
        legato.RunConflict, match="is completed; event 'reply' would never be received"
    ):
        app.send_event("to", "reply", {})


def test_unhandled_event_timeout_fails_the_run(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        await ctx.wait_for_event("approval", timeout=60)

    with pytest.raises(
        legato.RunFailed, match="EventTimeout: no event 'approval' arrived within 60s"
    ):
        app.run(wf)


def test_event_for_unknown_run_is_an_error(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    with pytest.raises(legato.UnknownRun, match="no run 'ghost'"):
        app.send_event("ghost", "reply", {})


def test_event_payload_that_is_not_json_is_refused(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> object:
        return await ctx.wait_for_event("x")

    handle = app.start(wf, run_id="j")
    with pytest.raises(
        legato.SerializationError, match="payload of event 'x' cannot be stored as JSON"
    ):
        app.send_event("j", "x", object())
    app.send_event("j", "x", [1, 2])
    app.run_until_idle()
    assert handle.result() == [1, 2]


def test_wrongly_typed_payload_is_rejected_and_a_corrected_one_accepted_after_retry(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        reply = await ctx.wait_for_event("reply", type=Reply)
        return reply.candidate

    handle = app.start(wf, run_id="w")
    app.send_event("w", "reply", {"candidate": 3})
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="event 'reply' of run 'w' does not match its type"):
        handle.result()
    # the bad payload stays rejected: after a retry the run waits for a corrected event
    app.retry("w")
    app.run_until_idle()
    assert handle.status() == "waiting"
    app.send_event("w", "reply", {"candidate": "c9", "interested": False})
    app.run_until_idle()
    assert handle.result() == "c9"


def test_handled_rejection_replays_the_same_way(make_app: Callable[..., legato.App]) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        with contextlib.suppress(legato.SerializationError):
            await ctx.wait_for_event("reply", type=Reply)
        await ctx.sleep(timedelta(days=1))  # unload and replay through the rejection
        reply = await ctx.wait_for_event("reply", type=Reply)
        return reply.candidate

    handle = app.start(wf, run_id="h")
    app.send_event("h", "reply", "garbage")
    app.send_event("h", "reply", {"candidate": "ok", "interested": True})
    app.run_until_idle()
    assert handle.result() == "ok"


def test_an_event_sent_again_with_its_id_is_delivered_once(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> list[object]:
        first = await ctx.wait_for_event("reply")
        second = await ctx.wait_for_event("reply", timeout=timedelta(hours=1))
        return [first, second]

    handle = app.start(wf, run_id="once")
    # a webhook delivered twice, a client that timed out and sent again
    assert app.send_event("once", "reply", {"n": 1}, event_id="msg-1") is True
    assert app.send_event("once", "reply", {"n": 1}, event_id="msg-1") is False
    with pytest.raises(legato.RunConflict, match="sent with another name or payload"):
        app.send_event("once", "reply", {"n": 2}, event_id="msg-1")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="EventTimeout"):
        handle.result()  # the second wait saw no second event: it timed out
    # after the run ended, a late repeat is still only a repeat
    assert app.send_event("once", "reply", {"n": 1}, event_id="msg-1") is False
