"""The CLI as scripts and operators use it, through a real `legato` process: piped output,
JSON shapes, payloads from files and stdin, option order, typed names, PostgreSQL schemas."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import legato
from legato.testing import ScriptedModel
from tests.conftest import LEGATO, POSTGRES_ENV, ROOT, postgres_schema, sql

LONG_ID = "order-" + "7" * 70
PROMPT = "Refund the customer in full? " + "They wrote a long complaint about the parcel. " * 8
DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def legato_cli(
    db_url: str | None, *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `legato ARGS` with stdout and stderr piped (not a terminal), as a script would."""
    env = {k: v for k, v in os.environ.items() if k != "LEGATO_DATABASE_URL"}
    if db_url is not None:
        env["LEGATO_DATABASE_URL"] = db_url
    return subprocess.run(
        [LEGATO, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        check=False,
        timeout=60,
    )


def ok(db_url: str | None, *args: str, stdin: str | None = None) -> str:
    proc = legato_cli(db_url, *args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fails(db_url: str | None, *args: str) -> str:
    """The one-line error of a command that must exit with status 1."""
    proc = legato_cli(db_url, *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr.strip()


def _review_app(make_app: Callable[..., legato.App]) -> legato.App:
    app = make_app()
    model = app.models.add(ScriptedModel(lambda request: "fine", name="writer"))

    @app.workflow
    async def refund(ctx: legato.Context, amount: int) -> dict[str, object]:
        await ctx.llm("summarize", model=model.id)
        decision = await ctx.approval("refund", {"amount": amount, "note": ""}, prompt=PROMPT)
        return {"approved": decision.approved, "data": decision.data}

    return app


def test_piped_output_is_never_wrapped_or_cut(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _review_app(make_app)
    app.start("refund", 40, run_id=LONG_ID)
    app.start("refund", 50, run_id="short")
    app.run_until_idle()

    lines = ok(db_url, "runs").splitlines()
    assert len(lines) == 3  # the header and one line per run
    row = next(line for line in lines if LONG_ID in line)
    assert len(re.findall(DATE, row)) == 2 and "approval 'refund'" in row
    assert all(line == line.rstrip() for line in lines)

    lines = ok(db_url, "approvals").splitlines()
    assert len(lines) == 3
    assert any(LONG_ID in line and PROMPT.strip() in line for line in lines)

    lines = ok(db_url, "costs", "--by", "run").splitlines()
    assert any(line.split()[0] == LONG_ID for line in lines)  # whole, so it can be copied

    shown = ok(db_url, "show", LONG_ID)
    assert f"run {LONG_ID}" in shown and "approval" in shown


def test_every_read_command_speaks_json(
    make_app: Callable[..., legato.App], db_url: str, tmp_path: Path
) -> None:
    app = _review_app(make_app)
    app.start("refund", 40, run_id=LONG_ID, tenant="acme")
    app.run_until_idle()

    [run] = [json.loads(line) for line in ok(db_url, "runs", "--json").splitlines()]
    assert run["run_id"] == LONG_ID and run["status"] == "waiting" and run["tenant"] == "acme"

    shown = json.loads(ok(db_url, "show", LONG_ID, "--json"))
    assert {k: shown[k] for k in run} == run  # show's object extends the list's
    assert shown["input"] is not None and shown["output"] is None
    kinds = [e["kind"] for e in shown["entries"]]
    assert kinds == ["llm", "approval"]
    assert shown["entries"][0]["output"] is not None  # the recorded output, as JSON

    [pending] = [json.loads(line) for line in ok(db_url, "approvals", "--json").splitlines()]
    assert pending["prompt"] == PROMPT and pending["decided_at"] is None
    assert isinstance(pending["created_at"], float)
    edited = json.dumps({"amount": 30, "note": "agreed on the phone"})
    ok(db_url, "approve", pending["id"], "--by", "ann", "--data", edited)
    [decided] = [
        json.loads(line) for line in ok(db_url, "approvals", "-s", "all", "--json").splitlines()
    ]
    assert decided["decided_data"] == {"amount": 30, "note": "agreed on the phone"}
    assert decided["decided_by"] == "ann" and decided["decided_at"] >= decided["created_at"]

    ok(db_url, "autonomy", "set", "refund-agent", "0", "--reason", "incident", "--by", "sam",
       "--force")  # fmt: skip
    [level] = [json.loads(line) for line in ok(db_url, "autonomy", "--json").splitlines()]
    assert level == {
        "actor": "refund-agent", "level": 0, "set_by": "sam", "reason": "incident",
        "updated_at": level["updated_at"],
    }  # fmt: skip
    ok(db_url, "pause", "refund", "--reason", "wrong template", "--by", "sam")
    [paused] = [json.loads(line) for line in ok(db_url, "pause", "--json").splitlines()]
    assert paused["workflow"] == "refund" and paused["paused_by"] == "sam"

    rows = [json.loads(line) for line in ok(db_url, "audit", "--json").splitlines()]
    assert [r["kind"] for r in rows][-2:] == ["autonomy.set", "workflow.paused"]
    [cost] = [
        json.loads(line) for line in ok(db_url, "costs", "--by", "run", "--json").splitlines()
    ]
    assert cost["run"] == LONG_ID and cost["calls"] == 1


def test_json_options_take_a_file_or_stdin_beyond_the_argument_limit(
    make_app: Callable[..., legato.App], db_url: str, tmp_path: Path
) -> None:
    app = make_app()

    @app.workflow
    async def inbox(ctx: legato.Context) -> int:
        message = await ctx.wait_for_event("message")
        return len(message["body"])

    app.start(inbox, run_id="from-file")
    app.start(inbox, run_id="from-stdin")
    app.run_until_idle()
    big = json.dumps({"body": "x" * 200_000})  # over the 128 KiB a command line argument may be
    (tmp_path / "message.json").write_text(big)
    ok(db_url, "events", "send", "from-file", "message", "--data", f"@{tmp_path / 'message.json'}")
    ok(db_url, "events", "send", "from-stdin", "message", "--data", "-", stdin=big)
    app.run_until_idle()
    assert app.handle("from-file").result() == app.handle("from-stdin").result() == 200_000

    proc = legato_cli(db_url, "events", "send", "from-file", "m", "--data", "@nowhere.json")
    assert proc.returncode == 2 and "cannot read 'nowhere.json'" in proc.stderr
    assert "not valid JSON" in fails(db_url, "events", "send", "from-file", "m", "--data", "-")


def test_global_options_work_after_the_command_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    assert "schema version" in ok(None, "db", "upgrade", "--database-url", url)
    assert ok(None, "runs", "--database-url", url) == "no runs\n"
    assert ok(None, "audit", "verify", f"--database-url={url}").startswith("audit log intact")
    assert ok(None, "runs", "--json", "--database-url", url) == ""
    proc = legato_cli(None, "runs", "--", "--database-url", url)  # nothing moves after --
    assert proc.returncode == 2


def test_names_that_match_nothing_are_errors(
    make_app: Callable[..., legato.App], db_url: str, tmp_path: Path
) -> None:
    app = make_app()

    @app.workflow
    async def refund(ctx: legato.Context) -> int:
        return 1

    app.run(refund, run_id="refund-1")

    assert "(did you mean 'refund'?)" in fails(db_url, "pause", "refnd")
    assert "pass --force" in fails(db_url, "pause", "refnd")
    assert fails(db_url, "runs", "-w", "refnd").startswith("error: no workflow 'refnd' has runs")
    assert "did you mean 'refund'" in fails(db_url, "costs", "--workflow", "refnd")
    assert "did you mean 'refund-1'" in fails(db_url, "audit", "--run", "refund-2")
    assert "did you mean 'refund-1'" in fails(db_url, "approvals", "--run", "refund-2")
    assert "did you mean 'refund-1'" in fails(db_url, "show", "refund-2")
    assert fails(db_url, "resume", "refnd").startswith("error: no workflow 'refnd'")
    # an actor is known once it has a level (or a tool call of it was decided)
    ok(db_url, "autonomy", "set", "support-agent", "2", "--reason", "trial", "--force")
    assert fails(db_url, "autonomy", "set", "suport-agent", "0", "--reason", "incident") == (
        "error: no actor 'suport-agent' has proposed a tool call here or has a level (did you"
        " mean 'support-agent'?); pass --force for an actor that has not acted yet"
    )
    ok(db_url, "autonomy", "set", "support-agent", "0", "--reason", "incident")

    # a name no run has yet: --force, or an app that registers it
    assert ok(db_url, "pause", "nightly", "--force", "--by", "sam") == "nightly paused\n"
    assert ok(db_url, "resume", "nightly", "--by", "sam") == "nightly resumed\n"
    (tmp_path / "flows.py").write_text(
        "import legato\n"
        "app = legato.App('flows')\n"
        "@app.workflow\n"
        "async def nightly(ctx: legato.Context) -> None: ...\n"
    )
    flows = f"{tmp_path / 'flows.py'}:app"
    assert ok(db_url, "pause", "nightly", "--database-url", db_url, "--app", flows) == (
        "nightly paused\n"
    )
    assert ok(db_url, "runs", "-w", "nightly", "--database-url", db_url, "--app", flows) == (
        "no runs\n"
    )
    assert ok(db_url, "runs", "-w", "refund") != "no runs\n"


def _legato_tables(url: str) -> list[tuple[object, ...]]:
    return sql(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
    )


def test_postgres_read_only_commands_create_no_tables(pg_url: str) -> None:
    schema = re.search(r"search_path%3D(\w+)", pg_url)
    assert schema is not None
    expected = (
        f"error: no legato tables in schema '{schema[1]}' of {pg_url} (run legato db upgrade)"
    )
    for args in (["runs"], ["show", "r"], ["approvals"], ["audit"], ["costs"], ["pause"],
                 ["autonomy"], ["audit", "verify"]):  # fmt: skip
        assert fails(pg_url, *args) == expected
    assert _legato_tables(pg_url) == []
    ok(pg_url, "db", "upgrade")
    assert ok(pg_url, "runs") == "no runs\n"


def test_the_readme_postgresql_steps_work_as_written() -> None:
    """The README's PostgreSQL block, on the test server, in a schema that does not exist."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (CI sets it and fails on skips)")
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## PostgreSQL\n.*?```sh\n(.*?)```", readme, re.S)
    assert block is not None
    steps = [line for line in block[1].splitlines() if line.startswith(("export", "legato db"))]
    assert len(steps) == 2
    with postgres_schema() as url:  # a name that is free; the README's step must create it
        schema = url.rsplit("%3D", 1)[1]
        sql(url, f'DROP SCHEMA "{schema}"')
        script = "\n".join(steps).replace("postgresql://legato@db.internal/main", base)
        script = script.replace("search_path%3Dsignup", f"search_path%3D{schema}")
        proc = subprocess.run(
            ["bash", "-euc", f'export PATH="{Path(LEGATO).parent}:$PATH"\n{script}\nlegato runs'],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "is at schema version" in proc.stdout and proc.stdout.endswith("no runs\n")
        sql(url, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # for the fixture to drop


def test_worker_names_its_database_and_the_controls_that_match_nothing(
    db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "refunds.py").write_text(
        "import legato\n"
        "app = legato.App('refunds', policy='policy.yaml')\n"
        "@app.tool(risk='low')\n"
        "async def refund(order_id: str) -> str:\n"
        "    return order_id\n"
        "@app.workflow\n"
        "async def complaint(ctx: legato.Context) -> None: ...\n"
    )
    (tmp_path / "policy.yaml").write_text(
        "tools:\n"
        "  refnd:\n"
        "    rules: [{when: [{arg: amount, op: gt, value: 5}], effect: deny, reason: no}]\n"
        "throttles:\n"
        "  - {tool: refnd, limit: 1, per: 1h}\n"
    )
    relative = db_url.startswith("sqlite")
    url = "sqlite:///./big.db" if relative else db_url
    env = {**os.environ, "LEGATO_DATABASE_URL": url}
    if not relative:
        ok(db_url, "db", "upgrade")
        ok(db_url, "pause", "complaints", "--force")
    proc = subprocess.Popen(
        [LEGATO, "worker", "refunds:app", "--grace", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    expected = 4 if relative else 5  # two banner lines, a warning per unmatched control
    stopper = threading.Timer(30, proc.kill)  # a missing line fails the test, never hangs it
    stopper.start()
    try:
        assert proc.stderr is not None
        while len(lines) < expected and (line := proc.stderr.readline()):
            lines.append(line)
    finally:
        stopper.cancel()
        proc.terminate()
        proc.communicate(timeout=30)
    text = "".join(lines)
    if relative:
        assert (
            f"database sqlite:///{tmp_path.resolve() / 'big.db'} (from LEGATO_DATABASE_URL;"
            " a new file, created empty: none was there)"
        ) in text
    else:
        assert f"database {db_url} (from LEGATO_DATABASE_URL)" in text
        assert (
            "workflow 'complaints' is paused, but app 'refunds' has no such workflow (did you"
            " mean 'complaint'?)"
        ) in text
    assert "policy: tools.refnd matches no tool of app 'refunds' (did you mean 'refund'?)" in text
    assert "policy: throttles[0] is for tool 'refnd'" in text


def test_legato_toml_errors_name_the_line_and_a_close_name(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text("import legato\napp = legato.App('flows')\n")
    (tmp_path / "legato.toml").write_text(
        "# models for the flows\n"
        "[providers.openai]\n"
        'base_url = "http://127.0.0.1:8000/v1"\n'
        "timout = 5\n"
        "\n"
        "[budgets.run]\n"
        'on_breach = "maybe"\n'
    )
    proc = legato_cli(None, "--app", "flows:app", "runs", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "error: legato.toml, line 4: providers.openai.timout: unknown field 'timout' (did you"
        " mean 'timeout'?); expected one of kind, base_url, api_key, api_key_env, headers,"
        " timeout, external, prompt_cache",
        "legato.toml, line 7: budgets.run.on_breach: 'maybe' is not one of fail, downgrade,"
        " approve",
    ]
