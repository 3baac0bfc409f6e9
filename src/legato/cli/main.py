"""The ``legato`` command. It calls the operations layer; user mistakes get one clear line."""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from legato.cli import evaluation
from legato.durations import format_duration, parse_duration
from legato.errors import ConfigurationError, LegatoError
from legato.store.base import redact_url
from legato.timestamps import format_timestamp

if TYPE_CHECKING:
    from legato.app import App
    from legato.ops import Operations

T = TypeVar("T")
_MAX_AGE = timedelta(days=100 * 365)

_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "waiting": "yellow",
    "running": "cyan",
    "pending": "blue",
    "retrying": "yellow",
}


def load_app(target: str) -> App:
    """Import ``module:attribute`` (or ``path/to/file.py:attribute``) and return the App."""
    from legato.app import App

    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"expected MODULE:APP (for example myproject.flows:app), got {target!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if module_name.endswith(".py"):
        module = _import_file(module_name)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ConfigurationError(f"cannot import module {module_name!r}: {exc}") from None
            raise
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise ConfigurationError(f"{target!r} is not a legato.App (found {type(app).__name__})")
    return app


def _import_file(path: str) -> Any:
    import importlib.util

    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"no such file {path!r}")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module
    spec.loader.exec_module(module)
    return module


def _run(ctx: click.Context, work: Callable[[Operations], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` against the operations layer on the command's database, then close it."""
    from legato.sync import (
        run_coroutine,  # here, not at the top: `legato --help` need not pay for it
    )

    async def main() -> T:
        from legato.clock import SystemClock
        from legato.ops import Operations
        from legato.store import open_store

        store = await open_store(ctx.obj["url"], create=False)
        try:
            return await work(Operations(store, SystemClock(), ctx.obj["payload_limit"]))
        finally:
            await store.close()

    return run_coroutine(main())


class _Group(click.Group):
    """Turns LegatoError into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LegatoError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="LEGATO_DATABASE_URL",
    default=None,
    help="Database URL [env LEGATO_DATABASE_URL; default sqlite:///./legato.db].",
)
@click.option(
    "--app",
    "app_target",
    default=None,
    metavar="MODULE:APP",
    help="Take the database URL from this app.",
)
@click.version_option(package_name="legato")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, app_target: str | None) -> None:
    """legato: durable, governed AI workflows."""
    from legato.serde import DEFAULT_PAYLOAD_LIMIT
    from legato.store import DEFAULT_URL

    # An explicit --database-url wins; then the app's own URL (which itself falls back to
    # LEGATO_DATABASE_URL); then the environment; then the default.
    explicit = ctx.get_parameter_source("database_url") is ParameterSource.COMMANDLINE
    url = database_url if explicit else None
    limit: int | None = DEFAULT_PAYLOAD_LIMIT
    if app_target is not None:
        app = load_app(app_target)
        url = url or app.database_url
        limit = app.payload_limit
    ctx.obj = {
        "url": url or database_url or DEFAULT_URL,
        "explicit": explicit,
        "payload_limit": limit,
        "app": app if app_target is not None else None,
    }


@cli.command()
@click.argument("target", metavar="MODULE:APP")
@click.option(
    "--concurrency",
    "-c",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs held at once.",
)
@click.option(
    "--lease",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Seconds a run stays leased to this worker without a heartbeat.",
)
@click.option(
    "--poll",
    default=None,
    type=click.FloatRange(min=0.001),
    help="Seconds between polls for work [default: 0.2 on SQLite; 5 on PostgreSQL, which"
    " notifies].",
)
@click.option(
    "--grace",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="On SIGINT/SIGTERM, seconds to let running steps finish before releasing runs.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.pass_context
def worker(
    ctx: click.Context,
    target: str,
    concurrency: int,
    lease: float,
    poll: float | None,
    grace: float,
    log_level: str,
) -> None:
    """Execute runs of the app's workflows until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = load_app(target)
    if ctx.obj["explicit"]:
        app.database_url = ctx.obj["url"]
    count = len(app.workflows)
    click.echo(
        f"legato worker: app {app.name!r}, {count} workflow{'' if count == 1 else 's'},"
        f" database {redact_url(app.database_url)}, concurrency {concurrency}",
        err=True,
    )
    app.worker(concurrency=concurrency, lease=lease, poll_interval=poll, grace=grace)
    # A sync step still running after the grace period cannot be interrupted: its run was
    # released (another worker will redo the step), so do not let its thread hold the exit.
    busy = [t for t in threading.enumerate() if t.name.startswith("legato-step")]
    if busy:
        click.echo(
            f"legato worker: {len(busy)} sync step(s) still running after the grace period;"
            " exiting without them (their runs were released)",
            err=True,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@cli.command()
@click.option("--status", "-s", default=None, help="Only runs in this status.")
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option("--limit", "-n", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def runs(
    ctx: click.Context, status: str | None, workflow: str | None, limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    found = _run(ctx, lambda ops: ops.runs.list(status=status, workflow=workflow, limit=limit))
    if as_json:
        for r in found:
            click.echo(
                json.dumps(
                    {
                        "run_id": r.run_id,
                        "workflow": r.workflow,
                        "status": r.status,
                        "created_at": r.created_at,
                        "finished_at": r.finished_at,
                        "waiting_on": r.waiting_on,
                    }
                )
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("RUN", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "WAITING ON / ERROR"):
        table.add_column(col, no_wrap=col == "RUN")
    for r in found:
        detail = r.waiting_on or ""
        if r.error:
            err = json.loads(r.error)
            detail = f"{err.get('type')}: {err.get('message', '')}"[:80]
        table.add_row(
            r.run_id,
            r.workflow,
            _styled(r.status),
            _time(r.created_at),
            _time(r.updated_at),
            detail,
        )
    console = Console()
    if not found:
        console.print("no runs")
    else:
        console.print(table)


@cli.command()
@click.argument("run_id")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the stored traceback.")
@click.pass_context
def show(ctx: click.Context, run_id: str, show_traceback: bool) -> None:
    """Show a run and the timeline of its journal."""
    timeline = _run(ctx, lambda ops: ops.runs.timeline(run_id))
    from rich.console import Console
    from rich.table import Table

    run = timeline.run
    console = Console()
    console.print(
        f"[bold]run[/bold] {run.run_id}   [bold]workflow[/bold] {run.workflow}"
        f"   [bold]status[/bold] {_styled(run.status)}"
    )
    console.print(f"created {_time(run.created_at)}   updated {_time(run.updated_at)}")
    console.print(f"code version {run.code_version or '-'}")
    if run.parent_run_id:
        entry = run.run_id.rpartition("~")[2] if "~" in run.run_id else run.parent_seq
        console.print(f"child of {run.parent_run_id} (entry {entry})")
    if run.waiting_on:
        console.print(f"waiting on: {run.waiting_on}")
    table = Table(box=None, header_style="bold")
    for col in ("#", "KIND", "NAME", "STATUS", "ATTEMPTS", "DURATION", "OUTPUT / ERROR"):
        table.add_column(col, overflow="fold")
    for e in timeline.entries:
        table.add_row(
            e.entry,
            e.kind,
            e.name,
            _styled(e.status),
            str(e.attempts),
            "-" if e.duration is None else format_duration(e.duration),
            e.summary,
        )
    if timeline.entries:
        console.print(table)
    else:
        console.print("(no journal entries)")
    if run.status == "completed":
        console.print("result: " + (run.output or "null"), markup=False, highlight=False)
    if run.error:
        err = json.loads(run.error)
        console.print(f"error: {err.get('type')}: {err.get('message')}", style="red", markup=False)
        if show_traceback and err.get("traceback"):
            console.print(err["traceback"], markup=False)


@cli.group()
def events() -> None:
    """Send events to runs."""


@events.command("send")
@click.argument("run_id")
@click.argument("name")
@click.option("--data", default="null", show_default=True, help="The payload, as JSON.")
@click.pass_context
def events_send(ctx: click.Context, run_id: str, name: str, data: str) -> None:
    """Deliver event NAME to RUN_ID (buffered until the run waits for it)."""
    _run(ctx, lambda ops: ops.runs.send_event_json(run_id, name, data))
    click.echo(f"event {name!r} sent to run {run_id}")


@cli.command()
@click.argument("run_id")
@click.pass_context
def cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a run that has not finished (and its child runs)."""
    _run(ctx, lambda ops: ops.runs.cancel(run_id))
    click.echo(f"run {run_id} cancelled")


@cli.command()
@click.argument("run_id")
@click.pass_context
def retry(ctx: click.Context, run_id: str) -> None:
    """Resume a failed run from its failed entry (after fixing the code, for instance)."""
    _run(ctx, lambda ops: ops.runs.retry(run_id))
    click.echo(f"run {run_id} will resume from its failed entry on the next worker")


@cli.command()
@click.option(
    "--status", "-s", default="pending", show_default=True,
    help="pending, approved, rejected, expired, cancelled, or all.",
)  # fmt: skip
@click.option("--run", "run_id", default=None, help="Only approvals of this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def approvals(ctx: click.Context, status: str, run_id: str | None, as_json: bool) -> None:
    """List approvals (pending ones by default), oldest first."""
    from legato.approvals import Approval

    wanted = None if status == "all" else status
    found = _run(ctx, lambda ops: ops.approvals.list(wanted, run_id, 500))
    shown = [Approval.from_record(r) for r in found]
    if as_json:
        for a in shown:
            click.echo(json.dumps({
                "id": a.id, "run_id": a.run_id, "name": a.name, "kind": a.kind,
                "status": a.status, "prompt": a.prompt, "data": a.data, "risk": a.risk,
                "reason": a.reason, "assignees": a.assignees, "decided_by": a.decided_by,
                "comment": a.comment,
            }, default=str))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not shown:
        console.print(f"no {'' if wanted is None else wanted + ' '}approvals")
        return
    table = Table(box=None, header_style="bold")
    for col in ("ID", "RUN", "NAME", "STATUS", "ASKED", "PROMPT / DATA", "DECIDED BY"):
        # ids are copied into the next command: never fold them
        table.add_column(col, overflow="fold", no_wrap=col in ("ID", "RUN"))
    for a in shown:
        detail = a.prompt or json.dumps(a.data, default=str)
        if a.reason:
            detail += f" ({a.reason})"
        table.add_row(
            a.id, a.run_id, a.name, _styled(a.status), _time(a.created_at.timestamp()),
            detail[:120], a.decided_by or "-",
        )  # fmt: skip
    console.print(table)


def _decide(ctx: click.Context, approval_id: str, approved: bool, by: str, data: str | None,
            comment: str | None) -> None:  # fmt: skip
    record = _run(
        ctx, lambda ops: ops.approvals.decide_json(approval_id, approved, by, data, comment)
    )
    edited = " with edited data" if record.decided_data is not None else ""
    click.echo(f"approval {approval_id} {record.status} by {record.decided_by}{edited}")


@cli.command()
@click.argument("approval_id")
@click.option("--by", required=True, help="Who approves (recorded and audited).")
@click.option("--data", default=None, help="Edited data, as JSON, replacing what was proposed.")
@click.option("--comment", default=None)
@click.pass_context
def approve(
    ctx: click.Context, approval_id: str, by: str, data: str | None, comment: str | None
) -> None:
    """Approve APPROVAL_ID; the waiting run resumes."""
    _decide(ctx, approval_id, True, by, data, comment)


@cli.command()
@click.argument("approval_id")
@click.option("--by", required=True, help="Who rejects (recorded and audited).")
@click.option("--comment", default=None, help="Why; the run sees it.")
@click.pass_context
def reject(ctx: click.Context, approval_id: str, by: str, comment: str | None) -> None:
    """Reject APPROVAL_ID; the waiting run resumes and sees the rejection."""
    _decide(ctx, approval_id, False, by, None, comment)


@cli.group(invoke_without_command=True)
@click.option("--run", "run_id", default=None, help="Only rows about this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def audit(ctx: click.Context, run_id: str | None, as_json: bool) -> None:
    """The audit log: gate decisions, approvals, autonomy changes, pauses."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _run(ctx, lambda ops: ops.audit.list(run_id=run_id, limit=100_000))
    if as_json:
        for r in rows:
            click.echo(json.dumps({
                "seq": r.seq, "at": r.at, "kind": r.kind, "actor": r.actor, "run_id": r.run_id,
                "subject": r.subject, "detail": json.loads(r.detail), "hash": r.hash,
            }))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not rows:
        console.print("the audit log is empty")
        return
    table = Table(box=None, header_style="bold")
    for col in ("#", "AT", "KIND", "ACTOR", "RUN", "SUBJECT", "DETAIL"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.seq), _time(r.at), r.kind, r.actor or "-", r.run_id or "-", r.subject or "-",
            r.detail[:100],
        )  # fmt: skip
    console.print(table, markup=False)


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the hash chain; exit 1 naming the first row that was edited or removed."""
    check = _run(ctx.parent or ctx, lambda ops: ops.audit.verify())
    if check.ok:
        click.echo(f"audit log intact: {check.rows} rows")
        return
    click.echo(f"error: audit row {check.bad_seq} is not intact: {check.problem}", err=True)
    ctx.exit(1)


@cli.group(invoke_without_command=True)
@click.pass_context
def autonomy(ctx: click.Context) -> None:
    """Autonomy levels per actor: 0 propose only, 1 low risk, 2 medium, 3 high."""
    if ctx.invoked_subcommand is not None:
        return
    levels = _run(ctx, lambda ops: ops.control.autonomy_levels())
    if not levels:
        click.echo("no levels set at run time (actors use the policy's, else 1)")
    for a in levels:
        click.echo(f"{a.actor}\t{a.level}\tset by {a.set_by} at {_time(a.updated_at.timestamp())}:"
                   f" {a.reason}")  # fmt: skip


@autonomy.command("set")
@click.argument("actor")
@click.argument("level", type=click.IntRange(0, 3))
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.option("--by", default=None, help="Who decides [default: $LEGATO_USER or $USER].")
@click.pass_context
def autonomy_set(ctx: click.Context, actor: str, level: int, reason: str, by: str | None) -> None:
    """Set ACTOR's LEVEL; the next proposal of every run uses it."""
    from legato.ops import LEVELS

    who = by or default_person()
    _run(
        ctx.parent or ctx, lambda ops: ops.control.set_autonomy(actor, level, by=who, reason=reason)
    )
    click.echo(f"{actor} is now at autonomy {level} ({LEVELS[level]}), set by {who}")


@cli.command()
@click.argument("workflow", required=False)
@click.option("--reason", default="paused from the CLI", show_default=True)
@click.option("--by", default=None, help="Who pauses [default: $LEGATO_USER or $USER].")
@click.pass_context
def pause(ctx: click.Context, workflow: str | None, reason: str, by: str | None) -> None:
    """Kill switch: no new entry of WORKFLOW starts until `legato resume` (lists if omitted)."""
    if workflow is None:
        paused = _run(ctx, lambda ops: ops.control.paused())
        if not paused:
            click.echo("no workflow is paused")
        for p in paused:
            click.echo(f"{p.workflow}\tpaused by {p.paused_by} at"
                       f" {_time(p.paused_at.timestamp())}: {p.reason}")  # fmt: skip
        return
    who = by or default_person()
    changed = _run(ctx, lambda ops: ops.control.pause(workflow, by=who, reason=reason))
    click.echo(f"{workflow} {'paused' if changed else 'was already paused'}")


@cli.command()
@click.argument("workflow")
@click.option("--by", default=None, help="Who resumes [default: $LEGATO_USER or $USER].")
@click.pass_context
def resume(ctx: click.Context, workflow: str, by: str | None) -> None:
    """Undo `legato pause`: WORKFLOW's runs carry on where they stopped."""
    who = by or default_person()
    changed = _run(ctx, lambda ops: ops.control.resume(workflow, by=who))
    click.echo(f"{workflow} {'resumed' if changed else 'was not paused'}")


@cli.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate legato's tables (workers also do this when they start)."""

    async def upgrade() -> int:
        from legato.store import open_store

        store = await open_store(ctx.obj["url"])
        try:
            return await store.schema_version()
        finally:
            await store.close()

    from legato.sync import run_coroutine

    version = run_coroutine(upgrade())
    click.echo(f"database {redact_url(ctx.obj['url'])} is at schema version {version}")


@cli.command()
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Finished at least this long ago: 30d, 12h, 90m, 2w.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.pass_context
def gc(ctx: click.Context, older_than: str, dry_run: bool) -> None:
    """Remove finished runs (completed, failed, cancelled), their journals and events."""
    age = parse_age(older_than)
    removed = _run(ctx, lambda ops: ops.runs.gc(age, dry_run=dry_run))
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {removed} finished run{'' if removed == 1 else 's'} older than {older_than}"
    )


@cli.command()
@click.option(
    "--by",
    type=click.Choice(["workflow", "model", "day", "tenant", "run"]),
    default="workflow",
    show_default=True,
    help="How to group the model calls.",
)
@click.option("--since", default=None, metavar="AGE", help="Only the last AGE: 7d, 24h, 2w.")
@click.option("--workflow", default=None, help="Only this workflow's calls.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def costs(
    ctx: click.Context, by: str, since: str | None, workflow: str | None, as_json: bool
) -> None:
    """Model calls, tokens and cost, grouped by workflow, model, day, tenant or run."""
    from decimal import Decimal

    age = parse_age(since) if since else None
    rows = _run(ctx, lambda ops: ops.costs.rollup(by=by, since=age, workflow=workflow))

    def usd(nano: int) -> str:
        return f"{Decimal(nano) / Decimal(1_000_000_000):.6f}"

    if as_json:
        for key, t in rows:
            click.echo(json.dumps({
                by: key, "calls": t.calls, "input_tokens": t.input_tokens,
                "cached_input_tokens": t.cached_input_tokens, "output_tokens": t.output_tokens,
                "usd": usd(t.cost_nanousd), "unknown_cost_calls": t.unknown_cost_calls,
                "cache_hits": t.cache_hits,
            }))  # fmt: skip
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not rows:
        console.print("no model calls recorded")
        return
    table = Table(box=None, header_style="bold")
    for col in (by.upper(), "CALLS", "INPUT", "CACHED", "OUTPUT", "USD", "UNPRICED", "CACHE HITS"):
        table.add_column(col, justify="left" if col == by.upper() else "right")
    total = [0, 0, 0, 0, 0, 0, 0]
    for key, t in rows:
        values = [t.calls, t.input_tokens, t.cached_input_tokens, t.output_tokens,
                  t.cost_nanousd, t.unknown_cost_calls, t.cache_hits]  # fmt: skip
        total = [a + b for a, b in zip(total, values, strict=True)]
        table.add_row(key or "-", *(str(v) for v in values[:4]), usd(values[4]),
                      *(str(v) for v in values[5:]))  # fmt: skip
    table.add_row("TOTAL", *(str(v) for v in total[:4]), usd(total[4]),
                  *(str(v) for v in total[5:]), style="bold")  # fmt: skip
    console.print(table, markup=False)
    if total[5]:
        console.print(
            f"{total[5]} call(s) have no known price: USD figures leave them out (see"
            " [prices] in legato.toml)",
            markup=False,
        )


def parse_age(text: str) -> timedelta:
    """``30d`` -> 30 days (any duration text: ``12h``, ``1d12h``); from 0 up to 100 years."""
    try:
        age = parse_duration(text)
    except ValueError:
        age = None
    if age is None or not timedelta(0) <= age <= _MAX_AGE:
        raise ConfigurationError(
            f"bad age {text!r}: use a number (up to 100 years) and a unit, like 30d, 12h, 90m"
        )
    return age


def default_person() -> str:
    """Who is acting at a terminal when no --by is given."""
    return os.environ.get("LEGATO_USER") or os.environ.get("USER") or "cli"


def _styled(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _time(ts: float | None) -> str:
    return "-" if ts is None else format_timestamp(ts, "text")


for _command in evaluation.commands(_run, parse_age):  # legato stats, evals, monitors
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="legato")
