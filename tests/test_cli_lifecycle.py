"""`legato start`, `legato fork` and `legato retry` of a cancelled run, as an operator uses them:
the real command in a subprocess, real worker processes, one SIGKILLed mid-step."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.apps.counters import counts
from tests.conftest import LEGATO, ROOT, WorkerProcess, sql, wait_until

APP = "tests.apps.lifecycle_app:app"
JOB = {"title": "engineer", "candidates": ["ann", "bob", "cy"]}


@pytest.fixture
def legato_cli(db_url: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ, LEGATO_DATABASE_URL=db_url, LEGATO_TEST_DIR=str(tmp_path),
            PYTHONPATH=str(ROOT),
        )  # fmt: skip
        return subprocess.run(
            [LEGATO, *args], env=env, cwd=ROOT, input=stdin, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    return run


def _runs(cli: Callable[..., subprocess.CompletedProcess[str]]) -> dict[str, dict[str, Any]]:
    out = cli("runs", "--json")
    assert out.returncode == 0, out.stderr
    return {row["run_id"]: row for row in map(json.loads, out.stdout.splitlines())}


def _status(db_url: str, run_id: str) -> str | None:
    rows = sql(db_url, "SELECT status FROM runs WHERE run_id = ?", (run_id,))
    return str(rows[0][0]) if rows else None


def test_start_prints_the_run_id_and_refuses_input_that_does_not_fit(
    legato_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, db_url: str
) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(JOB))
    started = legato_cli("--app", APP, "start", "hire", "--input", f"@{job}", "--run-id", "r1")
    assert (started.returncode, started.stdout) == (0, "r1\n"), started.stderr
    again = legato_cli(
        "--app", APP, "start", "hire", "--input", "-", "--run-id", "r1", "--json",
        stdin=job.read_text(),
    )  # fmt: skip
    assert json.loads(again.stdout) == {"run_id": "r1", "workflow": "hire", "created": False}
    fresh = legato_cli("--app", APP, "start", "hire", "--input", json.dumps(JOB), "--json")
    document = json.loads(fresh.stdout)
    assert document["created"] is True and _status(db_url, document["run_id"]) == "pending"

    bad = legato_cli("--app", APP, "start", "hire", "--input", '{"title": 1}', "--run-id", "bad")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "candidates" in bad.stderr
    assert _status(db_url, "bad") is None  # nothing was written
    typo = legato_cli("--app", APP, "start", "hier")
    assert typo.returncode == 1 and "did you mean 'hire'?" in typo.stderr
    not_json = legato_cli("--app", APP, "start", "hire", "--input", "{oops")
    assert not_json.returncode == 1 and "--input #1 from the command line is not valid JSON" in (
        not_json.stderr
    )
    no_app = legato_cli("start", "hire")
    assert no_app.returncode == 1 and "legato --app MODULE:APP start" in no_app.stderr


def test_runs_of_a_paused_workflow_show_paused(
    legato_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert legato_cli("--app", APP, "start", "hire", "--input", json.dumps(JOB)).returncode == 0
    assert legato_cli("--app", APP, "pause", "hire", "--by", "ann").returncode == 0
    [row] = _runs(legato_cli).values()
    assert row["status"] == "paused"
    listed = legato_cli("runs", "--status", "paused")
    assert row["run_id"] in listed.stdout and "paused" in listed.stdout
    assert legato_cli("runs", "--status", "pending", "--json").stdout == ""
    assert legato_cli("--app", APP, "resume", "hire", "--by", "ann").returncode == 0
    assert [r["status"] for r in _runs(legato_cli).values()] == ["pending"]


def test_start_wait_prints_the_result_and_runs_show_progress_and_lineage(
    legato_cli: Callable[..., subprocess.CompletedProcess[str]],
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    spawn_worker(APP)
    done = legato_cli(
        "--app", APP, "start", "hire", "--input", json.dumps(JOB), "--run-id", "w1", "--wait"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ann": 3, "bob": 3, "cy": 2}
    row = _runs(legato_cli)["w1"]
    assert row["status"] == "completed" and row["custom_status"] == {"scored": 3, "of": 3}
    assert row["forked_from"] is None

    forked = legato_cli("fork", "w1", "--from", "3", "--run-id", "w1-b", "--by", "ann", "--json")
    assert json.loads(forked.stdout) == {
        "run_id": "w1-b", "forked_from": "w1", "forked_entry": "3", "kept": 3
    }  # fmt: skip
    wait_until(lambda: _runs(legato_cli)["w1-b"]["status"] == "completed", what="the fork")
    row = _runs(legato_cli)["w1-b"]
    assert (row["forked_from"], row["forked_entry"]) == ("w1", "3")
    shown = legato_cli("show", "w1-b")
    assert "forked from w1 (entry 3)" in shown.stdout
    assert 'progress: {"scored": 3, "of": 3}' in shown.stdout
    audit = [json.loads(line) for line in legato_cli("audit", "--json").stdout.splitlines()]
    [forked_row] = [r for r in audit if r["kind"] == "run.forked"]
    assert (forked_row["actor"], forked_row["run_id"], forked_row["subject"]) == (
        "ann", "w1-b", "w1"
    )  # fmt: skip
    unknown = legato_cli("fork", "w1", "--from", "42")
    assert unknown.returncode == 1 and "no entry '42'; its entries are 0, 1, 2" in unknown.stderr


def test_fork_and_retry_of_a_cancelled_run_after_a_sigkilled_worker(
    legato_cli: Callable[..., subprocess.CompletedProcess[str]],
    spawn_worker: Callable[..., WorkerProcess],
    db_url: str,
    tmp_path: Path,
) -> None:
    log = tmp_path / "executions.log"
    for run_id in ("orig", "stopped"):
        out = legato_cli(
            "--app", APP, "start", "hire", "--input", json.dumps(JOB), "--input", '"bob"',
            "--run-id", run_id,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    first = spawn_worker(APP)
    wait_until(
        lambda: counts(log)[("orig", "bob")] == 1 and counts(log)[("stopped", "bob")] == 1,
        what="both runs to block in bob's step",
    )
    first.kill()  # SIGKILL: both runs are left "running" under a dead worker

    # a fork from the status before bob's step (the step in flight at the kill has no entry),
    # with new input that does not block; the original is left alone
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({**JOB, "candidates": ["ann", "bob", "dee"]}))
    forked = legato_cli(
        "--app", APP, "fork", "orig", "--from", "2", "--input", f"@{edited}", "--input", '""',
        "--run-id", "orig-fix",
    )  # fmt: skip
    assert (forked.returncode, forked.stdout) == (0, "orig-fix\n"), forked.stderr
    # the other run is cancelled while its worker is dead, then resumed where it stopped
    assert legato_cli("cancel", "stopped").returncode == 0
    assert _runs(legato_cli)["stopped"]["status"] == "cancelled"
    retried = legato_cli("retry", "stopped")
    assert retried.returncode == 0 and "where it was cancelled" in retried.stdout
    assert _runs(legato_cli)["stopped"]["status"] == "pending"

    spawn_worker(APP)
    wait_until(
        lambda: {r["status"] for r in _runs(legato_cli).values()} == {"completed"},
        what="every run to complete",
    )
    rows = _runs(legato_cli)
    assert rows["orig-fix"]["custom_status"] == {"scored": 3, "of": 3}
    ran = counts(log)
    # ann's score was recorded before the fork point: the fork replayed it, never ran it
    assert (ran[("orig-fix", "ann")], ran[("orig-fix", "bob")], ran[("orig-fix", "dee")]) == (
        0, 1, 1
    )  # fmt: skip
    for run_id in ("orig", "stopped"):  # finished steps once; the killed one twice
        assert (ran[(run_id, "ann")], ran[(run_id, "bob")], ran[(run_id, "cy")]) == (1, 2, 1)
