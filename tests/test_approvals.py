"""Approvals: people decide, runs resume; decisions are bound, atomic, idempotent and audited."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

import legato
from legato.cli.main import cli
from tests.apps import approval_app
from tests.apps.counters import counts
from tests.conftest import LEGATO, ROOT, WorkerProcess, sql, wait_until


class Offer(BaseModel):
    candidate: str
    salary: int


def _offer_app(make_app: Callable[..., legato.App], **approval: object) -> legato.App:
    app = make_app()

    @app.workflow
    async def hire(ctx: legato.Context) -> dict[str, object]:
        decision = await ctx.approval(
            "offer", data=Offer(candidate="ada", salary=100), prompt="Make this offer?", **approval
        )
        return {
            "approved": decision.approved,
            "by": decision.by,
            "comment": decision.comment,
            "salary": decision.data.salary,
            "type": type(decision.data).__name__,
            "edited": decision.edited,
        }

    return app


def _pending(app: legato.App) -> legato.Approval:
    [only] = app.approvals.list()
    return only


def test_edited_data_reaches_the_run_typed(make_app: Callable[..., legato.App]) -> None:
    app = _offer_app(make_app)
    handle = app.start("hire", run_id="h1")
    app.run_until_idle()
    assert handle.status() == "waiting"
    pending = _pending(app)
    assert pending.run_id == "h1" and pending.name == "offer" and pending.status == "pending"
    assert (
        pending.data == {"candidate": "ada", "salary": 100} and pending.prompt == "Make this offer?"
    )
    app.approvals.decide(
        pending.id, True, by="alice", data={"candidate": "ada", "salary": 120}, comment="a bit more"
    )
    app.run_until_idle()
    assert handle.result() == {
        "approved": True,
        "by": "alice",
        "comment": "a bit more",
        "salary": 120,
        "type": "Offer",
        "edited": True,
    }
    assert app.approvals.get(pending.id).status == "approved"


def test_rejection_carries_who_and_why(make_app: Callable[..., legato.App]) -> None:
    app = _offer_app(make_app)
    handle = app.start("hire", run_id="h2")
    app.run_until_idle()
    app.approvals.decide(_pending(app).id, False, by="bob", comment="budget frozen")
    app.run_until_idle()
    result = handle.result()
    assert (
        result["approved"] is False
        and result["by"] == "bob"
        and result["comment"] == "budget frozen"
    )


@pytest.mark.parametrize(
    ("on_timeout", "expected"), [("reject", False), ("approve", True), ("fail", None)]
)
def test_timeouts_on_the_time_skipping_clock(
    make_app: Callable[..., legato.App], on_timeout: str, expected: bool | None
) -> None:
    app = _offer_app(make_app, timeout=timedelta(days=2), on_timeout=on_timeout)
    handle = app.start("hire", run_id="t")
    app.run_until_idle(skip=timedelta(days=1))
    assert handle.status() == "waiting"
    app.run_until_idle()  # skip past the deadline
    if expected is None:
        with pytest.raises(legato.RunFailed, match="ApprovalTimeout: approval 'offer'"):
            handle.result()
        assert app.approvals.get(app.approvals.list(None)[0].id).status == "expired"
    else:
        result = handle.result()
        assert result["approved"] is expected and result["by"] == "legato:timeout"


def test_deciding_twice(make_app: Callable[..., legato.App]) -> None:
    app = _offer_app(make_app)
    app.start("hire", run_id="d")
    app.run_until_idle()
    the_id = _pending(app).id
    first = app.approvals.decide(the_id, True, by="alice")
    again = app.approvals.decide(the_id, True, by="alice")  # the same decision: idempotent
    assert first == again
    with pytest.raises(legato.ApprovalConflict, match="already approved by alice"):
        app.approvals.decide(the_id, False, by="bob", comment="no")
    app.run_until_idle()
    assert app.handle("d").result()["approved"] is True


def test_concurrent_deciders_exactly_one_wins(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _offer_app(make_app)
    app.start("hire", run_id="race")
    app.run_until_idle()
    the_id = _pending(app).id
    procs = [
        subprocess.Popen(
            [
                LEGATO,
                "--database-url",
                db_url,
                "approve" if i % 2 else "reject",
                the_id,
                "--by",
                f"person-{i}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        outcomes.append((p.returncode, out, err))
    winners = [out for code, out, _ in outcomes if code == 0]
    losers = [err for code, _, err in outcomes if code != 0]
    assert len(winners) == 1 and len(losers) == 5
    assert all("is refused" in err for err in losers)
    decided = app.approvals.get(the_id)
    assert winners[0].startswith(f"approval {the_id} {decided.status} by {decided.decided_by}")
    rows = sql(db_url, "SELECT count(*) FROM audit WHERE kind = 'approval.decided'")
    assert rows[0][0] == 1  # one decision, audited once


def test_bad_decisions_are_refused(make_app: Callable[..., legato.App], db_url: str) -> None:
    app = _offer_app(make_app)
    app.start("hire", run_id="bad")
    app.run_until_idle()
    the_id = _pending(app).id
    with pytest.raises(legato.UnknownApproval, match="no approval 'ap_nope'"):
        app.approvals.decide("ap_nope", True, by="alice")
    with pytest.raises(legato.ConfigurationError, match=r"salary: 'lots' is not of type 'integer'"):
        app.approvals.decide(the_id, True, by="alice", data={"candidate": "ada", "salary": "lots"})
    with pytest.raises(legato.ConfigurationError, match="'salary' is a required property"):
        app.approvals.decide(the_id, True, by="alice", data={"candidate": "ada"})
    with pytest.raises(legato.ConfigurationError, match="needs the name of who decides"):
        app.approvals.decide(the_id, True, by=" ")
    runner = CliRunner()
    out = runner.invoke(
        cli, ["--database-url", db_url, "approve", the_id, "--by", "a", "--data", "{x"]
    )
    assert out.exit_code == 1 and out.output.startswith("error: --data is not valid JSON")
    assert app.approvals.get(the_id).status == "pending"  # nothing was half-written
    app.cancel("bad")
    assert app.approvals.get(the_id).status == "cancelled"
    with pytest.raises(legato.RunConflict, match="was cancelled with run 'bad'"):
        app.approvals.decide(the_id, True, by="alice")


def test_changed_data_under_a_waiting_approval_fails_closed(
    make_app: Callable[..., legato.App],
) -> None:
    old = make_app("old")

    @old.workflow(name="pay")
    async def pay_v1(ctx: legato.Context) -> bool:
        return (await ctx.approval("pay", data={"amount": 10})).approved

    old.start("pay", run_id="p")
    old.run_until_idle()
    the_id = _pending(old).id
    new = make_app("new")

    @new.workflow(name="pay")
    async def pay_v2(ctx: legato.Context) -> bool:
        return (await ctx.approval("pay", data={"amount": 10_000})).approved

    new.approvals.decide(the_id, True, by="alice")
    new.run_until_idle()
    with pytest.raises(legato.RunFailed, match="requested for different data"):
        new.handle("p").result()


def test_audit_log_records_and_verify_finds_tampering(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _offer_app(make_app)
    for run_id in ("a1", "a2"):
        app.start("hire", run_id=run_id)
    app.run_until_idle()
    for approval in app.approvals.list():
        app.approvals.decide(approval.id, True, by="carol")
    app.run_until_idle()
    runner = CliRunner()
    out = runner.invoke(cli, ["--database-url", db_url, "audit", "--json"])
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["kind"] for r in rows].count("approval.requested") == 2
    assert [r["kind"] for r in rows].count("approval.decided") == 2
    assert {r["actor"] for r in rows if r["kind"] == "approval.decided"} == {"carol"}
    out = runner.invoke(cli, ["--database-url", db_url, "audit", "--run", "a2", "--json"])
    assert {json.loads(line)["run_id"] for line in out.output.splitlines()} == {"a2"}
    ok = runner.invoke(cli, ["--database-url", db_url, "audit", "verify"])
    assert ok.exit_code == 0 and ok.output.startswith("audit log intact: 4 rows")

    sql(db_url, "UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    bad = runner.invoke(cli, ["--database-url", db_url, "audit", "verify"])
    assert bad.exit_code == 1
    assert "error: audit row 3 is not intact: its content does not match its hash" in bad.output
    sql(db_url, "UPDATE audit SET actor = 'carol' WHERE seq = 3")
    sql(db_url, "DELETE FROM audit WHERE seq = 2")
    gone = runner.invoke(cli, ["--database-url", db_url, "audit", "verify"])
    assert gone.exit_code == 1 and "audit row 2 is not intact: row 2 is missing" in gone.output


def test_approval_survives_sigkill_and_is_decided_from_another_process(
    db_url: str, tmp_path: Path, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    approval_app.app.database_url = db_url
    try:
        handle = approval_app.app.start(approval_app.outreach, "hr@example.com", run_id="o1")
        first = spawn_worker("tests.apps.approval_app:app")
        wait_until(lambda: handle.status() == "waiting", what="the run to park")
        first.kill()
        listed = subprocess.run(
            [LEGATO, "--database-url", db_url, "approvals", "--json"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        [pending] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert pending["run_id"] == "o1" and pending["data"]["subject"] == "Interview"
        edited = {**pending["data"], "subject": "Interview at ACME"}
        decided = subprocess.run(
            [
                LEGATO,
                "--database-url",
                db_url,
                "approve",
                pending["id"],
                "--by",
                "dana",
                "--data",
                json.dumps(edited),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert decided.returncode == 0, decided.stderr
        spawn_worker("tests.apps.approval_app:app")
        assert handle.result(timeout=60) == "sent 'Interview at ACME' to hr@example.com"
        assert counts(tmp_path / "executions.log")[("o1", "send")] == 1
    finally:
        approval_app.app.close()


def test_cli_lists_and_rejects(make_app: Callable[..., legato.App], db_url: str) -> None:
    app = _offer_app(make_app)
    app.start("hire", run_id="c1")
    app.run_until_idle()
    the_id = _pending(app).id
    runner = CliRunner()
    table = runner.invoke(cli, ["--database-url", db_url, "approvals"])
    assert the_id in table.output  # whole, whatever the terminal width
    listed = runner.invoke(cli, ["--database-url", db_url, "approvals", "--json"]).output
    assert json.loads(listed)["prompt"] == "Make this offer?"
    out = runner.invoke(
        cli, ["--database-url", db_url, "reject", the_id, "--by", "erin", "--comment", "not now"]
    )
    assert out.exit_code == 0 and out.output.startswith(f"approval {the_id} rejected by erin")
    assert runner.invoke(cli, ["--database-url", db_url, "approvals"]).output.startswith(
        "no pending approvals"
    )
    app.run_until_idle()
    assert app.handle("c1").result()["comment"] == "not now"
    for bad in (["approve", "ap_x"], ["approvals", "--status", "maybe"]):
        result = runner.invoke(cli, ["--database-url", db_url, *bad])
        assert result.exit_code != 0 and "Traceback" not in result.output
    assert sys.executable  # the CLI ran in-process and in subprocesses alike
