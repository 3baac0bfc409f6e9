"""Monitors: significance before firing, one judgement per window across checkers, durable
alerts, duration windows, restores by hand (CLI) that respect a person's later change."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner

import legato
from legato.cli.main import cli
from legato.evals import Target
from legato.governance import Alert, LowerAutonomy, Monitor, PauseStarts
from legato.ops.monitors import judge
from tests.webhooks import Receiver, webhook_receiver


def _rate(**fields: object) -> Monitor:
    values: dict[str, object] = {"metric": "pass_rate", "evaluator": "ok", "window": 10,
                                 "below": 0.8}  # fmt: skip
    return Monitor(**(values | fields))  # type: ignore[arg-type]


def test_a_rate_fires_only_when_significantly_below() -> None:
    monitor = _rate()
    assert judge(monitor, [1.0] * 5 + [0.0] * 5).verdict == "bad"  # 5/10: upper bound 0.73
    assert judge(monitor, [1.0] * 7 + [0.0] * 3).verdict == "unclear"  # 7/10 could be 0.8
    assert judge(monitor, [1.0] * 9 + [0.0]).verdict == "healthy"
    assert judge(monitor, [0.0] * 5).verdict == "insufficient"  # fewer than min_sample
    figures = judge(monitor, [1.0] * 5 + [0.0] * 5)
    assert figures.value == 0.5 and figures.high is not None and figures.high < 0.8


def test_a_mean_fires_on_a_t_test_against_a_fixed_or_trailing_baseline() -> None:
    fixed = Monitor(metric="duration", window=5, above=2.0, min_sample=5)
    assert judge(fixed, [3.0, 3.1, 2.9, 3.2, 3.0]).verdict == "bad"
    assert judge(fixed, [1.0, 5.0, 0.5, 4.0, 0.6]).verdict == "unclear"  # mean 2.2: noise
    trailing = Monitor(metric="cost", window=5, above=1.5, baseline="trailing", min_sample=5)
    base = [1.0, 1.1, 0.9, 1.0, 1.05]
    assert judge(trailing, [2.0, 2.1, 1.9, 2.2, 2.0], base).verdict == "bad"
    assert judge(trailing, [1.1, 1.0, 1.2, 0.9, 1.0], base).verdict == "healthy"
    assert judge(trailing, [2.0] * 5, base[:2]).verdict == "insufficient"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def _app(make_app: Callable[..., legato.App]) -> legato.App:
    app = make_app()

    @app.workflow
    async def job(ctx: legato.Context, ok: bool) -> bool:
        return ok

    @app.evaluator("ok")
    def ok(target: Target) -> bool:
        return bool(target.output)

    return app


def _runs(app: legato.App, oks: list[bool], prefix: str) -> None:
    for i, ok in enumerate(oks):
        app.start("job", ok, run_id=f"{prefix}{i}")
    app.run_until_idle()


def test_each_window_is_judged_once_by_concurrent_checkers(
    make_app: Callable[..., legato.App], receiver: Receiver
) -> None:
    app = _app(make_app)
    app.monitor("q", _rate(actions=[LowerAutonomy(actor="bot", to=0), Alert(webhook=receiver.url)]))
    _runs(app, [True, False] * 5, "r")

    async def race() -> list[list[object]]:
        ops = await app.ops_async()
        checks = [ops.monitors.check(app.monitors, f"worker-{i}") for i in range(4)]
        return list(await asyncio.gather(*checks))

    judged = [j for found in app._sync(race()) for j in found]
    assert judged == [("q", "bad", "fired")]  # one checker judged it, the others found it taken
    app.check_monitors()  # delivers the alert
    assert [b["event"] for b in receiver.received] == ["fired"]
    assert app._sync(app.ops_async()).clock is app.clock
    [level] = app.autonomy.list()
    assert (level.actor, level.level) == ("bot", 0)


def test_alerts_are_retried_until_the_webhook_accepts_them(
    make_app: Callable[..., legato.App], receiver: Receiver
) -> None:
    app = _app(make_app)
    app.monitor("q", _rate(actions=[Alert(webhook=receiver.url)]))
    receiver.fail = 2  # the receiver is down for two posts
    _runs(app, [False] * 10, "r")
    app.check_monitors()
    assert receiver.received == []
    for _ in range(2):  # backoff: 2 s, then 4 s
        app.clock.advance_to(app.clock.now() + 5)
        app.check_monitors()
    assert [b["event"] for b in receiver.received] == ["fired"]
    ops = app._sync(app.ops_async())
    [alert] = app._sync(ops.store.list_alerts())
    assert alert.attempts == 3 and alert.delivered_at is not None
    assert receiver.keys == [f"legato-alert-{alert.id}"]


def test_a_duration_window_is_judged_after_it_ends(make_app: Callable[..., legato.App]) -> None:
    app = _app(make_app)
    app.monitor(
        "fails", metric="failure_rate", window=timedelta(minutes=10), above=0.2, min_sample=5,
        actions=[PauseStarts(workflow="job")],
    )  # fmt: skip
    start = (app.clock.now() // 600 + 1) * 600  # the start of the next window
    app.clock.advance_to(start + 1)

    @app.workflow
    async def broken(ctx: legato.Context) -> None:
        raise ValueError("no")

    for i in range(6):
        app.start(broken, run_id=f"b{i}")
    app.run_until_idle()
    # the window before (nothing in it) is judged; this one has not ended
    assert app.check_monitors() == [("fails", "insufficient", "no change")]
    assert app.check_monitors() == []
    app.clock.advance_to(start + 600 + 1)
    assert app.check_monitors() == [("fails", "bad", "fired")]
    assert [p.workflow for p in app._sync(app._sync(app.ops_async()).control.paused())] == ["job"]


def test_a_person_restores_by_cli_and_a_level_they_set_stays(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _app(make_app)
    app.monitor(
        "q", _rate(restore="manual", actions=[LowerAutonomy(actor="bot", to=1),
                                                PauseStarts(workflow="job")])
    )  # fmt: skip
    _runs(app, [False] * 10, "r")
    assert app.check_monitors() == [("q", "bad", "fired")]
    app.autonomy.set("bot", 0, by="sam", reason="incident")  # a person's change since
    _runs(app, [True] * 10, "s")  # paused: these wait; healthy windows do not restore (manual)
    runner = CliRunner()
    base = ["--database-url", db_url]
    out = runner.invoke(cli, [*base, "monitors", "restore", "q", "--by", "sam", "--reason", "ok"])
    assert out.exit_code == 0 and "monitor q restored" in out.output
    assert [(a.actor, a.level) for a in app.autonomy.list()] == [("bot", 0)]  # sam's, kept
    assert app._sync(app._sync(app.ops_async()).control.paused()) == []
    again = runner.invoke(cli, [*base, "monitors", "restore", "q", "--by", "sam", "--reason", "x"])
    assert "monitor q is not firing" in again.output
    shown = runner.invoke(cli, [*base, "monitors", "--json"])
    [row] = [json.loads(line) for line in shown.output.splitlines()]
    kinds = [(e["kind"], e["by"]) for e in row["history"]]
    assert ("monitor.restored", "sam") in kinds and ("monitor.fired", "monitor:q") in kinds
    assert row["state"] == "ok" and row["fired_at"] is not None


def test_stats_and_evals_commands_print_tables_and_json_lines(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _app(make_app)
    _runs(app, [True, True, False], "r")
    runner = CliRunner()
    base = ["--database-url", db_url]
    out = runner.invoke(cli, [*base, "stats", "--json"])
    [row] = [json.loads(line) for line in out.output.splitlines()]
    assert (row["workflow"], row["runs"], row["completed"]) == ("job", 3, 3)
    table = runner.invoke(cli, [*base, "stats", "--by", "day"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "SUCCESS RATE" in table.output
    assert time.strftime("%Y-%m-%d", time.gmtime(app.clock.now())) in table.output
    evals = runner.invoke(cli, [*base, "evals", "--json", "--recent", "1"])
    lines = [json.loads(line) for line in evals.output.splitlines()]
    assert lines[0] == {"evaluator": "ok", "evaluations": 3, "passed": 2,
                        "pass_rate": 2 / 3, "mean_score": 2 / 3}  # fmt: skip
    assert lines[1]["evaluator"] == "ok" and len(lines) == 2
    bad = runner.invoke(cli, [*base, "stats", "--since", "soon"])
    assert bad.exit_code != 0
