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
from tests.conftest import LEGATO, sql


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
        (["worker", "nowhere/flows.py:app"], "error: no such file 'nowhere/flows.py'"),
        (["gc", "--older-than", "soon"], "error: bad age 'soon'"),
        (["gc", "--older-than", "1e400d"], "error: bad age '1e400d'"),
        (["gc", "--older-than", "nand"], "error: bad age 'nand'"),
    ],
)
def test_user_mistakes_are_one_line_and_nonzero(
    db_url: str, runner: CliRunner, args: list[str], message: str
) -> None:
    assert _invoke(runner, db_url, "db", "upgrade")[0] == 0  # an empty database
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


def test_read_only_commands_do_not_create_a_database(tmp_path: Path, runner: CliRunner) -> None:
    missing = tmp_path / "typo.db"
    code, out = _invoke(runner, f"sqlite:///{missing}", "runs")
    assert code == 1 and "error: no legato database at" in out
    assert not missing.exists()


def test_worker_options_are_validated(db_url: str, runner: CliRunner) -> None:
    for args in (["-c", "0"], ["--log-level", "loud"], ["--lease", "0"], ["--grace", "-1"]):
        result = runner.invoke(cli, ["--database-url", db_url, "worker", "json:loads", *args])
        assert result.exit_code == 2 and "Invalid value" in result.output


def test_database_url_precedence(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--database-url on the command line > the app's URL > LEGATO_DATABASE_URL > default."""
    app_db, env_db, flag_db = (tmp_path / n for n in ("app.db", "env.db", "flag.db"))
    (tmp_path / "flows.py").write_text(
        "import legato\n"
        f"app = legato.App('f', 'sqlite:///{app_db}')\n"
        "@app.workflow\n"
        "async def wf(ctx: legato.Context) -> int:\n"
        "    return 1\n"
    )
    flows = f"{tmp_path / 'flows.py'}:app"
    monkeypatch.setenv("LEGATO_DATABASE_URL", f"sqlite:///{env_db}")
    assert runner.invoke(cli, ["--app", flows, "db", "upgrade"]).output.startswith(
        f"database sqlite:///{app_db} is at schema version"
    )
    assert app_db.exists() and not env_db.exists()
    out = runner.invoke(
        cli, ["--app", flows, "--database-url", f"sqlite:///{flag_db}", "db", "upgrade"]
    )
    assert f"sqlite:///{flag_db}" in out.output and flag_db.exists()
    out = runner.invoke(cli, ["db", "upgrade"])
    assert f"sqlite:///{env_db}" in out.output


def test_gc_removes_old_finished_runs_only(
    make_app: Callable[..., legato.App], db_url: str, runner: CliRunner
) -> None:
    from datetime import timedelta

    app = make_app()

    @app.workflow
    async def child(ctx: legato.Context) -> int:
        return 1

    @app.workflow
    async def parent(ctx: legato.Context, wait: bool) -> int:
        value = await ctx.child(child)
        if wait:
            await ctx.wait_for_event("go")
        return value

    app.start(parent, False, run_id="old-done")
    app.start(parent, True, run_id="old-waiting")
    app.run_until_idle()
    app.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    app.start(parent, False, run_id="recent")
    app.run_until_idle()

    # the CLI runs on the system clock: age the old runs by hand
    sql(
        db_url,
        "UPDATE runs SET finished_at = finished_at - 86400 * 400"
        " WHERE run_id NOT IN ('recent', 'recent~0')",
    )
    code, out = _invoke(runner, db_url, "gc", "--older-than", "30d", "--dry-run")
    assert code == 0 and out.startswith("would remove 2 finished runs")  # old-done and its child
    code, out = _invoke(runner, db_url, "gc", "--older-than", "30d")
    assert code == 0 and out.startswith("removed 2 finished runs older than 30d")
    code, out = _invoke(runner, db_url, "runs", "--json")
    remaining = sorted(json.loads(line)["run_id"] for line in out.splitlines())
    # the waiting parent's finished child stays: its parent may still need it
    assert remaining == ["old-waiting", "old-waiting~0", "recent", "recent~0"]
