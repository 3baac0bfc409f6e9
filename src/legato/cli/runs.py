"""Commands on runs: list, show, send events to, cancel, retry and remove them."""

from __future__ import annotations

import json

import click

from legato.cli.output import styled, when
from legato.cli.session import parse_age, run_ops
from legato.durations import format_duration


@click.command()
@click.option("--status", "-s", default=None, help="Only runs in this status.")
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option("--limit", "-n", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def runs(
    ctx: click.Context, status: str | None, workflow: str | None, limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    found = run_ops(ctx, lambda ops: ops.runs.list(status=status, workflow=workflow, limit=limit))
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
            styled(r.status),
            when(r.created_at),
            when(r.updated_at),
            detail,
        )
    console = Console()
    if not found:
        console.print("no runs")
    else:
        console.print(table)


@click.command()
@click.argument("run_id")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the stored traceback.")
@click.pass_context
def show(ctx: click.Context, run_id: str, show_traceback: bool) -> None:
    """Show a run and the timeline of its journal."""
    timeline = run_ops(ctx, lambda ops: ops.runs.timeline(run_id))
    from rich.console import Console
    from rich.table import Table

    run = timeline.run
    console = Console()
    console.print(
        f"[bold]run[/bold] {run.run_id}   [bold]workflow[/bold] {run.workflow}"
        f"   [bold]status[/bold] {styled(run.status)}"
    )
    console.print(f"created {when(run.created_at)}   updated {when(run.updated_at)}")
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
            styled(e.status),
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


@click.group()
def events() -> None:
    """Send events to runs."""


@events.command("send")
@click.argument("run_id")
@click.argument("name")
@click.option("--data", default="null", show_default=True, help="The payload, as JSON.")
@click.pass_context
def events_send(ctx: click.Context, run_id: str, name: str, data: str) -> None:
    """Deliver event NAME to RUN_ID (buffered until the run waits for it)."""
    run_ops(ctx, lambda ops: ops.runs.send_event_json(run_id, name, data))
    click.echo(f"event {name!r} sent to run {run_id}")


@click.command()
@click.argument("run_id")
@click.pass_context
def cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a run that has not finished (and its child runs)."""
    run_ops(ctx, lambda ops: ops.runs.cancel(run_id))
    click.echo(f"run {run_id} cancelled")


@click.command()
@click.argument("run_id")
@click.pass_context
def retry(ctx: click.Context, run_id: str) -> None:
    """Resume a failed run from its failed entry (after fixing the code, for instance)."""
    run_ops(ctx, lambda ops: ops.runs.retry(run_id))
    click.echo(f"run {run_id} will resume from its failed entry on the next worker")


@click.command()
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
    removed = run_ops(ctx, lambda ops: ops.runs.gc(age, dry_run=dry_run))
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {removed} finished run{'' if removed == 1 else 's'} older than {older_than}"
    )
