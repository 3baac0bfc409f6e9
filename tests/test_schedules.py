"""Schedules: each tick starts one run, under catch-up and overlap policies, on both backends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import legato
from legato.testing import TimeSkippingClock
from tests.apps.counters import counts, executions
from tests.conftest import WorkerProcess, sql, wait_until
from tests.test_cli_scripting import legato_cli, ok

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, four weeks before Europe's clocks change
HOUR = 3600.0


def _runs(db_url: str, workflow: str) -> dict[str, str]:
    rows = sql(db_url, "SELECT run_id, status FROM runs WHERE workflow = ?", (workflow,))
    return dict(sorted(rows))


def _tick(run_id: str) -> datetime:
    return datetime.strptime(run_id.split("@")[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_a_month_of_weekday_ticks_in_local_time(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = make_app(clock=TimeSkippingClock(START))

    @app.schedule("0 9 * * 1-5", tz="Europe/Berlin")
    @app.workflow()
    async def report(ctx: legato.Context) -> str:
        return ctx.run_id

    app.run_until_idle(skip=timedelta(days=30))  # to April 1st, 0:00 UTC
    runs = _runs(db_url, "report")
    local = [_tick(r).astimezone(ZoneInfo("Europe/Berlin")) for r in runs]
    assert len(runs) == 22  # the weekdays of March 2026, each once
    assert {(t.hour, t.minute) for t in local} == {(9, 0)}  # before and after the DST change
    assert all(t.weekday() < 5 for t in local)
    assert set(runs.values()) == {"completed"}
    [schedule] = app.schedules.list()
    assert (schedule.id, schedule.source, schedule.fired, schedule.skipped) == (
        "report", "code", 22, 0)  # fmt: skip
    # without a limit the clock does not jump to ticks (a schedule never runs out of them)
    assert app.run_until_idle() == 0


@pytest.mark.parametrize(("catchup", "fired"), [("one", 1), ("all", 5), ("skip", 0)])
def test_catchup_after_downtime(
    make_app: Callable[..., legato.App], db_url: str, catchup: str, fired: int
) -> None:
    clock = TimeSkippingClock(START)
    app = make_app(clock=clock)

    @app.workflow()
    async def hourly(ctx: legato.Context) -> None:
        return None

    # overlap="allow": with the default "skip", missed ticks would also skip while the first
    # of them runs
    app.schedules.add(hourly, "0 * * * *", catchup=catchup, overlap="allow", by="ops")
    clock.advance(5 * HOUR + 120)  # five ticks pass with no worker running, the last 2 min ago
    app.run_until_idle(skip=timedelta(0))
    runs = _runs(db_url, "hourly")
    assert len(runs) == fired
    if fired:  # the latest tick is always among them, and each run has its own tick
        assert max(_tick(r) for r in runs) == START + timedelta(hours=5)
    schedule = app.schedules.get("hourly")
    assert (schedule.fired, schedule.skipped) == (fired, 5 - fired)
    assert schedule.next_at == START + timedelta(hours=6)


def test_a_tick_a_little_late_still_fires_under_skip(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    clock = TimeSkippingClock(START)
    app = make_app(clock=clock)

    @app.workflow()
    async def hourly(ctx: legato.Context) -> None:
        return None

    app.schedules.add(hourly, "0 * * * *", catchup="skip", by="ops")
    clock.advance(HOUR + 20)  # a busy worker comes 20 s late
    app.run_until_idle(skip=timedelta(0))
    assert list(_runs(db_url, "hourly")) == ["hourly@2026-03-02T01:00:00Z"]


def _overlap_app(make_app: Callable[..., legato.App], overlap: str) -> legato.App:
    app = make_app(clock=TimeSkippingClock(START))

    @app.schedule("0 * * * *", overlap=overlap)
    @app.workflow()
    async def long(ctx: legato.Context) -> None:
        await ctx.wait_for_event("done")

    return app


def _ticks_pass(app: legato.App, hours: int) -> None:
    app.run_until_idle(skip=timedelta(hours=hours, minutes=1))


@pytest.mark.parametrize(
    ("overlap", "after_two_ticks"),
    [
        ("skip", {"long@2026-03-02T01:00:00Z": "waiting"}),
        ("buffer", {"long@2026-03-02T01:00:00Z": "waiting"}),
        ("allow", {"long@2026-03-02T01:00:00Z": "waiting", "long@2026-03-02T02:00:00Z": "waiting"}),
        ("cancel", {"long@2026-03-02T01:00:00Z": "cancelled",
                    "long@2026-03-02T02:00:00Z": "waiting"}),
    ],
)  # fmt: skip
def test_overlap_policies(
    make_app: Callable[..., legato.App],
    db_url: str,
    overlap: str,
    after_two_ticks: dict[str, str],
) -> None:
    app = _overlap_app(make_app, overlap)
    _ticks_pass(app, 2)
    assert _runs(db_url, "long") == after_two_ticks
    first = "long@2026-03-02T01:00:00Z"
    if overlap == "buffer":  # the 2:00 tick waits for the first run, then starts
        assert app.schedules.get("long").buffered_at == START + timedelta(hours=2)
        app.send_event(first, "done")
        app.run_until_idle(skip=timedelta(0))
        assert _runs(db_url, "long") == {
            first: "completed", "long@2026-03-02T02:00:00Z": "waiting"}  # fmt: skip
        assert app.schedules.get("long").buffered_at is None
    if overlap == "skip":
        assert app.schedules.get("long").skipped == 1


def test_a_second_buffered_tick_replaces_the_first(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _overlap_app(make_app, "buffer")
    _ticks_pass(app, 3)
    schedule = app.schedules.get("long")
    assert schedule.buffered_at == START + timedelta(hours=3)
    assert (schedule.fired, schedule.skipped) == (1, 1)


def test_pause_resume_trigger_and_delete(make_app: Callable[..., legato.App], db_url: str) -> None:
    clock = TimeSkippingClock(START)
    app = make_app(clock=clock)

    @app.workflow()
    async def hourly(ctx: legato.Context, who: str) -> str:
        return who

    app.schedules.add(hourly, "0 * * * *", id="h", kwargs={"who": "ann"}, by="ops")
    assert app.schedules.pause("h", by="ops") is True
    assert app.schedules.pause("h", by="ops") is False
    clock.advance(3 * HOUR + 60)
    app.run_until_idle(skip=timedelta(0))
    assert _runs(db_url, "hourly") == {}  # nothing while paused
    assert app.schedules.resume("h", by="ops") is True
    app.run_until_idle(skip=timedelta(0))
    assert _runs(db_url, "hourly") == {}  # the ticks that fell while paused never fire
    _ticks_pass(app, 1)
    assert list(_runs(db_url, "hourly")) == ["h@2026-03-02T04:00:00Z"]
    manual = app.schedules.trigger("h", by="bob")
    assert manual.startswith("h@manual-")
    app.run_until_idle(skip=timedelta(0))
    assert app.handle(manual).result() == "ann"  # the schedule's input
    audit = [r[0] for r in sql(db_url, "SELECT kind FROM audit WHERE subject = 'h' ORDER BY seq")]
    assert audit == ["schedule.put", "schedule.paused", "schedule.resumed", "schedule.triggered"]
    app.schedules.delete("h", by="ops")
    with pytest.raises(legato.UnknownSchedule, match="no schedule 'h'; schedules: none"):
        app.schedules.get("h")
    with pytest.raises(legato.UnknownSchedule):
        app.schedules.trigger("h", by="bob")


def test_bad_schedules_are_refused_where_they_are_declared(
    make_app: Callable[..., legato.App],
) -> None:
    app = make_app()
    with pytest.raises(legato.ConfigurationError, match="bad cron expression '0 25"):
        app.schedule("0 25 * * *")
    with pytest.raises(legato.ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        app.schedule("0 9 * * *", tz="Mars/Olympus")
    with pytest.raises(legato.ConfigurationError, match="overlap must be one of"):
        app.schedule("0 9 * * *", overlap="queue")

    @app.workflow()
    async def wf(ctx: legato.Context) -> None:
        return None

    with pytest.raises(legato.ConfigurationError, match="bad schedule id 'a@b'"):
        app.schedules.add(wf, "0 9 * * *", id="a@b", by="ops")
    with pytest.raises(legato.UnknownWorkflow):
        app.schedules.add("nope", "0 9 * * *", by="ops")


def test_code_schedules_follow_the_code(make_app: Callable[..., legato.App]) -> None:
    clock = TimeSkippingClock(START)
    first = make_app(clock=clock)

    @first.schedule("0 * * * *")
    @first.workflow(name="job")
    async def job(ctx: legato.Context) -> None:
        return None

    _ticks_pass(first, 2)
    before = first.schedules.get("job")
    # a new deploy changes the input only: the next tick and the history stay
    second = make_app(clock=clock)

    @second.schedule("0 * * * *", kwargs={})
    @second.workflow(name="job")
    async def job2(ctx: legato.Context) -> None:
        return None

    second.run_until_idle(skip=timedelta(0))
    after = second.schedules.get("job")
    assert (after.next_at, after.fired) == (before.next_at, before.fired)
    # a new cron moves the next tick
    third = make_app(clock=clock)

    @third.schedule("30 * * * *")
    @third.workflow(name="job")
    async def job3(ctx: legato.Context) -> None:
        return None

    third.run_until_idle(skip=timedelta(0))
    assert third.schedules.get("job").next_at.minute == 30


def test_each_tick_starts_once_with_several_workers_and_a_kill(
    db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """1,000 missed ticks fired by three worker processes at once, one SIGKILLed while they do,
    then live ticks every second: every tick's run exists once and ran its step once."""
    workers = [spawn_worker("tests.apps.schedule_app:app") for _ in range(3)]
    wait_until(lambda: sql(db_url, "SELECT count(*) FROM schedules") == [(1,)], 60, "schedule")
    # the schedule was last seen 1,000 seconds ago: a backlog for the three to race over
    now = time.time()
    sql(db_url, "UPDATE schedules SET next_at = ?", (float(int(now) - 1000),))
    wait_until(lambda: len(_runs(db_url, "every_second")) > 200, 60, "ticks to fire")
    workers[0].kill()
    time.sleep(3)  # live ticks with two workers left
    sql(db_url, "UPDATE schedules SET paused = ?", (True,))
    time.sleep(0.5)  # let a worker that read the schedule before the pause finish its fire
    ids = list(_runs(db_url, "every_second"))
    ticks = sorted(_tick(r).timestamp() for r in ids)
    assert len(ids) >= 1000
    assert ticks == [ticks[0] + i for i in range(len(ticks))]  # every second, none missing
    wait_until(lambda: set(_runs(db_url, "every_second").values()) == {"completed"}, 120, "runs")
    ran = counts(tmp_path / "executions.log")
    assert {key[0] for key in ran} == set(ids)  # every tick's run ran its step
    # twice only where the killed worker had the step in flight (steps run at least once)
    by_killed = {parts[0] for parts in executions(tmp_path / "executions.log")
                 if parts[-1] == str(workers[0].pid)}  # fmt: skip
    assert set(ran.values()) <= {1, 2}
    assert {key[0] for key, n in ran.items() if n == 2} <= by_killed
    for w in workers[1:]:
        assert w.stop() == 0


def test_schedules_from_the_cli(make_app: Callable[..., legato.App], db_url: str) -> None:
    app = make_app()

    @app.workflow()
    async def nightly(ctx: legato.Context) -> None:
        return None

    app.schedules.add(nightly, "0 2 * * *", id="nightly", by="ops")
    [listed] = [json.loads(line) for line in ok(db_url, "schedules", "--json").splitlines()]
    assert (listed["id"], listed["cron"], listed["paused"]) == ("nightly", "0 2 * * *", False)
    assert "nightly" in ok(db_url, "schedules")
    assert ok(db_url, "schedules", "pause", "nightly", "--by", "ann").strip() == (
        "schedule nightly paused")  # fmt: skip
    assert "active" not in ok(db_url, "schedules")
    ok(db_url, "schedules", "resume", "nightly", "--by", "ann")
    run_id = ok(db_url, "schedules", "trigger", "nightly", "--by", "ann").strip()
    assert run_id.startswith("nightly@manual-") and app.handle(run_id).status() == "pending"
    ok(db_url, "schedules", "delete", "nightly", "--by", "ann")
    failed = legato_cli(db_url, "schedules", "pause", "nightly")
    assert failed.returncode == 1
    assert failed.stderr.strip() == "error: no schedule 'nightly'; schedules: none"


def test_an_event_sent_twice_from_the_cli_with_its_id_is_delivered_once(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = make_app()

    @app.workflow()
    async def waits(ctx: legato.Context) -> object:
        return await ctx.wait_for_event("go")

    app.start(waits, run_id="w")
    send = ("events", "send", "w", "go", "--data", '{"n": 1}', "--id", "delivery-7")
    assert ok(db_url, *send).strip() == "event 'go' sent to run w"
    assert "before; not sent again" in ok(db_url, *send)
    app.run_until_idle()
    assert app.handle("w").result() == {"n": 1}
