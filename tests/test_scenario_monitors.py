"""The scenario of continuous evaluation (issue 12), end to end.

An agent acts with a medium-risk tool at autonomy 2. Its model answers well for 30 runs, then
degrades: half its answers fail the ``answer-ok`` evaluator and each costs twice as much.
Within one window the quality monitor fires (autonomy drops to 1, the next tool calls park for
approval, a local webhook gets an alert) and the cost monitor reroutes ``fast`` to the cheap
deployment, which answers well. After two healthy windows autonomy is back at 2. Every
transition is audited, `legato monitors` shows the history. On PostgreSQL, three worker
processes do the work and check the monitors themselves, one is SIGKILLed mid-way: no
evaluation is lost and nothing fires twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import legato
from legato.cli.main import cli
from tests.apps import monitor_app
from tests.conftest import WorkerProcess, sql, wait_until
from tests.webhooks import Receiver, webhook_receiver

BATCH = 10


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
def support(db_url: str, receiver: Receiver) -> Iterator[legato.App]:
    app = monitor_app.app
    app.database_url = db_url
    app._monitors.clear()  # the module is shared by tests: a fresh webhook each time
    monitor_app.watch(receiver.url)
    app.models.overrides = {}
    yield app
    app.close()


def _start(app: legato.App, first: int, phase: str) -> list[str]:
    ids = [f"{phase}-{i}" for i in range(first, first + BATCH)]
    for number, run_id in zip(range(first, first + BATCH), ids, strict=True):
        app.start(monitor_app.support, number, phase, run_id=run_id)
    return ids


def _approve_all(app: legato.App, expected: int) -> None:
    pending = app.approvals.list()
    assert len(pending) == expected and all(p.name == "tool:refund" for p in pending)
    for p in pending:
        app.approvals.decide(p.id, True, by="dana")


def _monitor_events(app: legato.App) -> list[tuple[str, str]]:
    ops = app._sync(app.ops_async())
    rows = app._sync(ops.store.list_audit(kind_prefix="monitor.", limit=1000))
    return [(r.kind, r.subject or "") for r in rows if r.kind != "monitor.action"]


def _check_history(app: legato.App, db_url: str, receiver: Receiver) -> None:
    transitions = _monitor_events(app)  # the two fires (in either order), then the restore
    assert sorted(transitions[:2]) == [
        ("monitor.fired", "answer-quality"),
        ("monitor.fired", "cost-per-run"),
    ]
    assert transitions[2:] == [("monitor.restored", "answer-quality")]
    events = [(b["monitor"], b["event"]) for b in receiver.received]
    assert sorted(events) == [
        ("answer-quality", "fired"),
        ("answer-quality", "restored"),
        ("cost-per-run", "fired"),
    ]
    fired = next(b for b in receiver.received if b["event"] == "fired" and
                 b["monitor"] == "answer-quality")  # fmt: skip
    assert fired["value"] == 0.5 and fired["n"] == BATCH and fired["high"] < 0.8
    out = CliRunner().invoke(
        cli, ["--database-url", db_url, "--app", "tests.apps.monitor_app:app", "monitors",
              "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    shown = {m["monitor"]: m for m in map(json.loads, out.output.splitlines())}
    assert shown["answer-quality"]["state"] == "ok" and shown["cost-per-run"]["state"] == "firing"
    kinds = [e["kind"] for e in shown["answer-quality"]["history"]]
    assert kinds.count("monitor.fired") == 1 and kinds.count("monitor.restored") == 1
    assert "monitor.action" in kinds


def test_the_scenario_in_one_process(support: legato.App, receiver: Receiver, db_url: str) -> None:
    app = support

    def batch(first: int, phase: str) -> list[str]:
        ids = _start(app, first, phase)
        app.run_until_idle()
        return ids

    for first in (0, 10, 20):  # 30 good runs: three healthy windows, nothing fires
        batch(first, "good")
        cost = "insufficient" if first == 0 else "healthy"  # (no baseline before the first)
        assert [v for _, v, _ in app.check_monitors()] == ["healthy", cost]
    assert app.autonomy.list() == [] and receiver.received == []

    batch(30, "degraded")  # half the answers fail, each costs twice as much
    judged = {name: (verdict, what) for name, verdict, what in app.check_monitors()}
    assert judged == {"answer-quality": ("bad", "fired"), "cost-per-run": ("bad", "fired")}
    assert app.check_monitors() == []  # a window is judged once
    [level] = app.autonomy.list()
    assert (level.actor, level.level, level.set_by) == (
        "support-agent",
        1,
        "monitor:answer-quality",
    )
    assert app.models.overrides == {"fast": "scripted:cheap"}

    for first in (40, 50):  # the next tool calls park for approval; the cheap model answers well
        ids = batch(first, "degraded")
        assert {app.handle(r).status() for r in ids} == {"waiting"}
        _approve_all(app, BATCH)
        app.run_until_idle()
        assert {app.handle(r).result() for r in ids} == {"good answer"}
        app.check_monitors()
    [level] = app.autonomy.list()
    assert level.level == 2  # restored after two healthy windows

    ids = batch(60, "degraded")  # acts alone again
    assert {app.handle(r).status() for r in ids} == {"completed"}
    _check_history(app, db_url, receiver)
    rows = sql(db_url, "SELECT count(*) FROM evaluations WHERE evaluator = 'answer-ok'")
    assert rows[0][0] == 70


@pytest.fixture
def pg_support(pg_url: str, receiver: Receiver) -> Iterator[tuple[legato.App, str]]:
    app = monitor_app.app
    app.database_url = pg_url
    app._monitors.clear()
    monitor_app.watch(receiver.url)
    yield app, pg_url
    app.close()


def test_the_scenario_with_worker_processes_and_a_sigkill(
    pg_support: tuple[legato.App, str], receiver: Receiver, tmp_path: Path
) -> None:
    app, url = pg_support
    env = {"LEGATO_TEST_WEBHOOK": receiver.url}
    workers: list[WorkerProcess] = []

    def spawn() -> WorkerProcess:
        w = WorkerProcess("tests.apps.monitor_app:app", url, tmp_path, env=env)
        workers.append(w)
        return w

    def ended(ids: list[str]) -> bool:
        among = ", ".join(f"'{i}'" for i in ids)
        rows = sql(url, f"SELECT count(*) FROM runs WHERE run_id IN ({among})"
                        " AND status IN ('completed', 'waiting')")  # fmt: skip
        return bool(rows) and rows[0][0] == len(ids)

    def windows(name: str) -> int:
        rows = sql(url, "SELECT window_done FROM monitors WHERE name = ?", (name,))
        return int(rows[0][0]) + 1 if rows else 0

    try:
        first_worker = spawn()
        spawn()
        spawn()
        for n, first in enumerate((0, 10, 20)):
            ids = _start(app, first, "good")
            wait_until(lambda ids=ids: ended(ids), what="a batch of good runs")
            wait_until(lambda n=n: windows("answer-quality") == n + 1, what="a quality window")
        ids = _start(app, 30, "degraded")
        first_worker.kill()  # while the degraded batch runs
        wait_until(lambda: ended(ids), what="the degraded batch")
        wait_until(lambda: len(receiver.received) == 2, what="two alerts", timeout=90)
        assert app.autonomy.list()[0].level == 1
        for first in (40, 50):
            ids = _start(app, first, "degraded")
            wait_until(lambda ids=ids: len(app.approvals.list()) == BATCH, what="parked tools")
            _approve_all(app, BATCH)
            wait_until(lambda ids=ids: ended(ids) and not app.approvals.list(), what="approved")
            wait_until(
                lambda ids=ids: (
                    sql(url, "SELECT count(*) FROM runs WHERE status = 'waiting'")[0][0] == 0
                ),
                what="the approved runs to end",
            )
        wait_until(lambda: app.autonomy.list()[0].level == 2, what="autonomy restored", timeout=90)
        ids = _start(app, 60, "degraded")
        wait_until(lambda: ended(ids), what="the last batch")
        assert {app.handle(r).status() for r in ids} == {"completed"}  # alone again
        wait_until(lambda: len(receiver.received) == 3, what="the restore alert")
        _check_history(app, url, receiver)
        rows = sql(url, "SELECT count(*), count(DISTINCT run_id) FROM evaluations"
                        " WHERE evaluator = 'answer-ok'")  # fmt: skip
        assert tuple(rows[0]) == (70, 70)  # no evaluation lost, none twice
    finally:
        for w in workers:
            w.close()


def test_monitors_with_a_bad_policy_name_the_line() -> None:
    text = """
monitors:
  quality:
    metric: pass_rate
    evaluator: ok
    window: 10
    below: 0.8
    actions:
      - lower_autonomy: {actor: agent, to: 1}
      - reroute: {alias: fast}
"""
    with pytest.raises(legato.PolicyError, match=r"line 10: monitors.quality.actions\[1\]"):
        legato.Policy.from_yaml(text, "policy.yaml")
    good = text.replace("{alias: fast}", "{alias: fast, to: x:y}")
    assert legato.Policy.from_yaml(good).monitors["quality"].actions[1].kind == "reroute"
    with pytest.raises(legato.PolicyError, match=r"line 3: monitors.quality: .*exactly one of"):
        legato.Policy.from_yaml(good.replace("below: 0.8", "above: 1\n    below: 0.8"))
