"""Tools through the gate inside durable runs: allow, throttle, approval, deny; autonomy at
run time; the pause switch; everything journaled and audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import legato
from legato.cli.main import cli
from legato.governance import Condition, Rule, Throttle, ToolPolicy


def _mail_app(
    make_app: Callable[..., legato.App], policy: legato.Policy | None = None
) -> tuple[legato.App, list[str]]:
    app = make_app(policy=policy)
    sent: list[str] = []

    @app.tool(risk="low", description="Look a candidate up")
    async def lookup(name: str) -> str:
        return name.upper()

    @app.tool(risk="medium", description="Send an email")
    async def send_email(to: str, subject: str) -> str:
        sent.append(f"{to}:{subject}")
        return f"sent to {to}"

    @app.tool(risk="critical", description="Wire money")
    async def wire(amount: int) -> str:
        sent.append(f"wire:{amount}")
        return "wired"

    @app.workflow
    async def outreach(ctx: legato.Context, to: str) -> str:
        who = await lookup(name="ada")  # a low-risk call, made by calling the tool
        try:
            result = await ctx.tool(send_email, to=to, subject=f"Hello {who}")
        except legato.ActionDenied as exc:
            return f"denied: {exc}"
        return result

    return app, sent


def _kinds(app: legato.App, run_id: str) -> list[tuple[str, str]]:
    return [(e.kind, e.name) for e in app.handle(run_id).timeline().entries]


def test_no_policy_low_risk_acts_alone_medium_asks_a_person(
    make_app: Callable[..., legato.App],
) -> None:
    app, sent = _mail_app(make_app)
    handle = app.start("outreach", "bob@example.com", run_id="r1")
    app.run_until_idle()
    assert handle.status() == "waiting" and sent == []
    [pending] = app.approvals.list()
    assert pending.kind == "tool" and pending.name == "tool:send_email" and pending.risk == "medium"
    assert pending.data == {"to": "bob@example.com", "subject": "Hello ADA"}
    assert "autonomy 1 may act alone up to low risk" in (pending.reason or "")
    app.approvals.decide(pending.id, True, by="alice")
    app.run_until_idle()
    assert handle.result() == "sent to bob@example.com" and sent == ["bob@example.com:Hello ADA"]
    assert _kinds(app, "r1") == [
        ("gate", "lookup"),
        ("tool", "lookup"),
        ("gate", "send_email"),
        ("approval", "tool:send_email"),
        ("tool", "send_email"),
    ]


def test_approver_edits_arguments_and_rejection_denies(make_app: Callable[..., legato.App]) -> None:
    app, sent = _mail_app(make_app)
    app.start("outreach", "bob@example.com", run_id="edit")
    app.start("outreach", "eve@example.com", run_id="no")
    app.run_until_idle()
    for approval in app.approvals.list():
        if approval.run_id == "edit":
            app.approvals.decide(
                approval.id,
                True,
                by="alice",
                data={**approval.data, "subject": "Interview at ACME"},
            )
        else:
            app.approvals.decide(approval.id, False, by="alice", comment="not a candidate")
    app.run_until_idle()
    assert app.handle("edit").result() == "sent to bob@example.com"
    assert app.handle("no").result() == (
        "denied: send_email was denied by alice: a person rejected it: not a candidate"
    )
    assert sent == ["bob@example.com:Interview at ACME"]  # the rejected call never ran


def test_deny_rule_and_critical_risk(make_app: Callable[..., legato.App]) -> None:
    policy = legato.Policy(
        tools={
            "send_email": ToolPolicy(
                rules=[
                    Rule(
                        when=[Condition(arg="to", op="endswith", value="@competitor.com")],
                        effect="deny",
                        reason="never write to competitors",
                    )
                ]
            )
        },
        autonomy={"outreach": 3},
    )
    app, sent = _mail_app(make_app, policy)
    assert app.run("outreach", "cto@competitor.com").startswith(
        "denied: send_email was denied: never write to competitors"
    )
    assert app.run("outreach", "ok@example.com") == "sent to ok@example.com"  # level 3: alone

    @app.workflow
    async def pay(ctx: legato.Context) -> str:
        return str(await ctx.tool(app.tools["wire"].fn and _wire(app), amount=10))

    handle = app.start(pay, run_id="pay")
    app.run_until_idle()
    assert handle.status() == "waiting"  # critical: a person, even at autonomy 3
    assert (
        app.approvals.list()[0].reason
        == "wire is critical risk; critical actions always need a person."
    )
    assert sent == ["ok@example.com:Hello ADA"]


def _wire(app: legato.App) -> legato.Tool:  # type: ignore[type-arg]
    return legato.Tool(app.tools["wire"])


def test_throttle_waits_on_a_durable_timer(make_app: Callable[..., legato.App]) -> None:
    policy = legato.Policy(
        throttles=[Throttle(limit=2, per=timedelta(hours=1), tool="send_email")],
        autonomy={"outreach": 2},
    )
    app, sent = _mail_app(make_app, policy)
    for i in range(3):
        app.start("outreach", f"p{i}@example.com", run_id=f"t{i}")
    app.run_until_idle(skip=timedelta(minutes=30))
    assert len(sent) == 2
    [third] = [app.handle(f"t{i}") for i in range(3) if app.handle(f"t{i}").status() != "completed"]
    assert third.status() == "waiting"  # whichever came third waits for the window
    assert "sleep until" in (third.describe().waiting_on or "")
    app.run_until_idle()  # past the window: the third goes through
    assert third.result() == f"sent to p{third.run_id[1]}@example.com" and len(sent) == 3
    gates = [
        e.summary for e in third.timeline().entries if e.kind == "gate" and e.name == "send_email"
    ]
    assert '"action":"throttle"' in gates[0] and '"action":"allow"' in gates[1]


def test_autonomy_change_mid_run_changes_the_next_decision(
    make_app: Callable[..., legato.App],
) -> None:
    app, _sent = _mail_app(make_app)

    @app.workflow
    async def twice(ctx: legato.Context) -> list[str]:
        tool = legato.Tool(app.tools["send_email"])
        first = await ctx.tool(tool, actor="agent-7", to="a@example.com", subject="one")
        await ctx.sleep(timedelta(hours=1))
        second = await ctx.tool(tool, actor="agent-7", to="b@example.com", subject="two")
        return [first, second]

    handle = app.start(twice, run_id="tw")
    app.run_until_idle(skip=timedelta(0))
    [first] = app.approvals.list()  # level 1: medium risk asks
    app.approvals.decide(first.id, True, by="ops")
    app.run_until_idle(skip=timedelta(minutes=1))
    app.autonomy.set("agent-7", 2, by="ops", reason="trusted after review")
    app.run_until_idle()
    assert handle.result() == ["sent to a@example.com", "sent to b@example.com"]
    assert app.approvals.list() == []  # the second call did not ask
    assert [(a.actor, a.level, a.set_by) for a in app.autonomy.list()] == [("agent-7", 2, "ops")]
    with pytest.raises(legato.ConfigurationError, match="autonomy level must be 0, 1, 2 or 3"):
        app.autonomy.set("agent-7", 5, by="ops", reason="x")


def test_pause_stops_new_entries_and_resume_carries_on(make_app: Callable[..., legato.App]) -> None:
    app = make_app()
    done: list[int] = []

    @app.step
    async def work(i: int) -> int:
        done.append(i)
        return i

    @app.workflow
    async def steps(ctx: legato.Context) -> int:
        await work(1)
        await ctx.sleep(timedelta(hours=1))
        await work(2)
        return len(done)

    handle = app.start(steps, run_id="ps")
    app.run_until_idle(skip=timedelta(0))
    assert done == [1]
    assert app.pause("steps", by="oncall", reason="bad emails going out") is True
    assert app.pause("steps", by="oncall", reason="again") is False
    app.run_until_idle()  # the timer fires, but the workflow is paused: nothing starts
    assert done == [1] and handle.status() == "paused"  # stored: pending or waiting
    app.resume("steps", by="oncall")
    app.run_until_idle()
    assert handle.result() == 2 and done == [1, 2]


def test_policy_file_and_cli_controls_are_audited(
    make_app: Callable[..., legato.App], db_url: str, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("intent:\n  goal: hire well\ntools:\n  send_email:\n    risk: low\n")
    app, _sent = _mail_app(make_app, legato.Policy.from_file(policy_file))
    assert app.run("outreach", "x@example.com") == "sent to x@example.com"  # risk lowered
    runner = CliRunner()
    base = ["--database-url", db_url]
    out = runner.invoke(
        cli, [*base, "autonomy", "set", "outreach", "0", "--reason", "incident", "--by", "sam"]
    )
    assert out.exit_code == 0 and "outreach is now at autonomy 0" in out.output
    assert (
        runner.invoke(cli, [*base, "pause", "outreach", "--by", "sam"]).output
        == "outreach paused\n"
    )
    assert "outreach\tpaused by sam" in runner.invoke(cli, [*base, "pause"]).output
    assert (
        runner.invoke(cli, [*base, "resume", "outreach", "--by", "sam"]).output
        == "outreach resumed\n"
    )
    app.start("outreach", "y@example.com", run_id="after")
    app.run_until_idle()
    assert app.handle("after").status() == "waiting"  # level 0: even the low-risk lookup asks
    rows = [
        json.loads(line)
        for line in runner.invoke(cli, [*base, "audit", "--json"]).output.splitlines()
    ]
    kinds = [r["kind"] for r in rows]
    for kind in (
        "gate.allow",
        "autonomy.set",
        "workflow.paused",
        "workflow.resumed",
        "gate.require_approval",
        "approval.requested",
    ):
        assert kind in kinds, kind
    assert runner.invoke(cli, [*base, "audit", "verify"]).exit_code == 0


def test_bad_policy_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        "tools:\n  send_email:\n    rules:\n      - when: [{arg: to, op: near, value: x}]\n"
        "        effect: deny\n        reason: no\n"
    )
    with pytest.raises(
        legato.PolicyError,
        match=r"policy\.yaml, line 4: tools\.send_email\.rules\[0\]\.when\[0\]\.op",
    ):
        legato.App("p", f"sqlite:///{tmp_path / 'x.db'}", policy=bad)


def test_tool_schema_and_bad_arguments(make_app: Callable[..., legato.App]) -> None:
    app, _ = _mail_app(make_app)
    tool = legato.Tool(app.tools["send_email"])
    assert tool.schema["required"] == ["to", "subject"]
    assert tool.schema["properties"]["to"]["type"] == "string"

    @app.workflow
    async def wrong(ctx: legato.Context) -> None:
        await ctx.tool(tool, to="x@example.com")  # subject missing

    with pytest.raises(legato.RunFailed, match="InvalidArguments"):
        app.run(wrong)


def test_retry_after_a_denial_asks_the_gate_again(make_app: Callable[..., legato.App]) -> None:
    policy = legato.Policy(
        tools={"send_email": ToolPolicy(rules=[Rule(when=[], effect="deny", reason="frozen")])},
        autonomy={"strict": 2},
    )
    app, sent = _mail_app(make_app, policy)

    @app.workflow
    async def strict(ctx: legato.Context) -> str:
        return str(await ctx.tool(legato.Tool(app.tools["send_email"]), to="a@x.com", subject="s"))

    handle = app.start(strict, run_id="st")
    app.run_until_idle()
    with pytest.raises(legato.RunFailed, match="ActionDenied: send_email was denied: frozen"):
        handle.result()
    app.policy = legato.Policy(autonomy={"strict": 2})  # the freeze is lifted
    app.retry("st")
    app.run_until_idle()
    assert handle.result() == "sent to a@x.com" and sent == ["a@x.com:s"]


def test_tool_approval_edits_are_checked_against_the_tool_schema(
    make_app: Callable[..., legato.App],
) -> None:
    app, _ = _mail_app(make_app)
    app.start("outreach", "bob@example.com", run_id="sch")
    app.run_until_idle()
    [pending] = app.approvals.list()
    with pytest.raises(legato.ConfigurationError, match="'subject' is a required property"):
        app.approvals.decide(pending.id, True, by="alice", data={"to": "x@example.com"})
    assert app.approvals.get(pending.id).status == "pending"


def test_a_tool_called_inside_a_step_is_refused(make_app: Callable[..., legato.App]) -> None:
    app, sent = _mail_app(make_app)
    send = legato.Tool(app.tools["send_email"])

    @app.step(retry=legato.NO_RETRY)
    async def sneaky() -> None:
        await send(to="x@example.com", subject="hidden")

    @app.workflow
    async def wf(ctx: legato.Context) -> None:
        await sneaky()

    with pytest.raises(legato.RunFailed, match="was called inside a step"):
        app.run(wf)
    assert sent == []


def test_timed_out_tool_approval_says_so(make_app: Callable[..., legato.App]) -> None:
    from legato.governance import RiskDefaults

    policy = legato.Policy(defaults={"medium": RiskDefaults(approval_timeout=timedelta(hours=4))})
    app, _ = _mail_app(make_app, policy)
    assert app.run("outreach", "z@example.com") == (
        "denied: send_email was denied by legato:timeout: no one decided in time:"
        " not decided by " + app.approvals.list(None)[0].expires_at.isoformat(timespec="seconds")  # type: ignore[union-attr]
    )


def test_approved_calls_count_against_throttles(make_app: Callable[..., legato.App]) -> None:
    policy = legato.Policy(throttles=[Throttle(limit=1, per=timedelta(hours=1), tool="send_email")])
    app, sent = _mail_app(make_app, policy)  # level 1: send_email (medium) needs a person
    app.start("outreach", "a@example.com", run_id="first")
    app.run_until_idle(skip=timedelta(0))
    app.approvals.decide(app.approvals.list()[0].id, True, by="ops")
    app.run_until_idle(skip=timedelta(0))
    assert sent == ["a@example.com:Hello ADA"]
    app.autonomy.set("outreach", 2, by="ops", reason="trusted")  # now it may act alone...
    second = app.start("outreach", "b@example.com", run_id="second")
    app.run_until_idle(skip=timedelta(minutes=30))
    assert second.status() == "waiting" and len(sent) == 1  # ...but the approved call counted
    app.run_until_idle()
    assert second.result() == "sent to b@example.com"
