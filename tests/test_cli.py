"""The `legato` command: tables, timelines, events, cancel, retry, and one-line errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import legato
from legato.cli.main import cli
from tests.conftest import LEGATO


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _invoke(runner: CliRunner, db_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["--database-url", db_url, *args])
    return result.exit_code, result.output


def test_runs_show_events_retry_cancel(
    make_app: Callable[..., legato.App], db_url: str, runner: CliRunner
) -> None:
    app = make_app()
    broken = {"yes": True}

    @app.step(retry=legato.NO_RETRY)
    async def check() -> str:
        if broken["yes"]:
            raise RuntimeError("quota exceeded")
        return "fine"

    @app.workflow()
    async def wf(ctx: legato.Context) -> str:
        reply = await ctx.wait_for_event("reply")
        return f"{reply['ok']}:{await check()}"

    app.start(wf, run_id="cli-1")
    app.start(wf, run_id="cli-2")
    app.run_until_idle()

    code, out = _invoke(runner, db_url, "runs", "--status", "waiting")
    assert code == 0 and "cli-1" in out and "cli-2" in out and "event 'reply'" in out

    code, out = _invoke(
        runner, db_url, "events", "send", "cli-1", "reply", "--data", '{"ok": true}'
    )
    assert code == 0 and "sent" in out
    app.run_until_idle()
    code, out = _invoke(runner, db_url, "runs", "--status", "failed", "--json")
    assert code == 0
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["run_id"] == "cli-1" and row["workflow"] == "wf"

    code, out = _invoke(runner, db_url, "show", "cli-1")
    assert code == 0
    assert "event" in out and "reply" in out and "completed" in out
    assert "RuntimeError: quota exceeded" in out

    broken["yes"] = False
    code, out = _invoke(runner, db_url, "retry", "cli-1")
    assert code == 0 and "will resume" in out
    app.run_until_idle()
    assert app.handle("cli-1").result() == "True:fine"

    code, out = _invoke(runner, db_url, "cancel", "cli-2")
    assert code == 0 and app.handle("cli-2").status() == "cancelled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "ghost"], "error: no run 'ghost'"),
        (["events", "send", "ghost", "e", "--data", "{}"], "error: no run 'ghost'"),
        (
            ["events", "send", "x", "e", "--data", "{not json"],
            "error: event data is not valid JSON",
        ),
        (["runs", "--status", "sleepy"], "error: unknown status 'sleepy'"),
        (["cancel", "ghost"], "error: no run 'ghost'"),
        (["retry", "ghost"], "error: no run 'ghost'"),
        (["worker", "no_such_module:app"], "error: cannot import module 'no_such_module'"),
        (["worker", "json:loads"], "error: 'json:loads' is not a legato.App"),
        (["worker", "missing-colon"], "error: expected MODULE:APP"),
    ],
)
def test_user_mistakes_are_one_line_and_nonzero(
    db_url: str, runner: CliRunner, args: list[str], message: str
) -> None:
    code, out = _invoke(runner, db_url, *args)
    assert code == 1
    assert out.strip().startswith(message), out
    assert "Traceback" not in out


def test_malformed_event_is_not_half_written(
    make_app: Callable[..., legato.App], db_url: str, runner: CliRunner
) -> None:
    app = make_app()

    @app.workflow()
    async def wf(ctx: legato.Context) -> object:
        return await ctx.wait_for_event("e")

    handle = app.start(wf, run_id="m")
    app.run_until_idle()
    code, _ = _invoke(runner, db_url, "events", "send", "m", "e", "--data", "[1, 2")
    assert code == 1
    app.run_until_idle()
    assert handle.status() == "waiting"  # nothing was delivered
    code, _ = _invoke(runner, db_url, "events", "send", "m", "e", "--data", "[1, 2]")
    assert code == 0
    app.run_until_idle()
    assert handle.result() == [1, 2]


def test_cli_on_a_corrupted_file_says_so_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("garbage" * 100)
    proc = subprocess.run(
        [LEGATO, "--database-url", f"sqlite:///{bad}", "runs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot use") and "Traceback" not in proc.stderr
