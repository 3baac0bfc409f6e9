"""Commands on runs: list, show, send events to, cancel, retry and remove them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from legato.cli import lifecycle
from legato.cli.output import (
    Rows,
    cut,
    emit,
    listed,
    piped,
    plain,
    styled,
    when,
)
from legato.cli.session import JSON_ARGUMENT, app_workflows, parse_age, run_ops
from legato.durations import format_duration

if TYPE_CHECKING:
    from legato.ops import Operations
    from legato.store.records import RunRecord


@click.command()
@click.option("--status", "-s", default=None, help="Only runs in this status.")
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.pass_context
def runs(
    ctx: click.Context, status: str | None, workflow: str | None, limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    from legato.ops import shapes

    known = app_workflows(ctx)

    async def work(ops: Operations) -> list[RunRecord]:
        found = await ops.runs.list(status=status, workflow=workflow, limit=limit)
        if not found and workflow is not None:
            await ops.runs.require_workflow(workflow, also=known)
        return found

    found = run_ops(ctx, work)
    if listed(found, as_json, shapes.run_document, "no runs"):
        return
    rows = Rows("RUN", "WORKFLOW", "STATUS", "PROGRESS", "CREATED", "UPDATED",
                "WAITING ON / ERROR", keep=("RUN",))  # fmt: skip
    for r in found:
        detail = r.waiting_on or ""
        if r.error:
            err = json.loads(r.error)
            detail = cut(f"{err.get('type')}: {err.get('message', '')}", 80)
        rows.add(
            plain(r.run_id), plain(r.workflow), styled(r.status),
            plain(lifecycle.progress(r.custom_status)), when(r.created_at),
            when(r.updated_at), plain(detail),
        )  # fmt: skip
    rows.print()


@click.command()
@click.argument("run_id")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show the stored traceback.")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its journal as JSON.")
@click.pass_context
def show(ctx: click.Context, run_id: str, show_traceback: bool, as_json: bool) -> None:
    """Show a run and the timeline of its journal."""
    from legato.ops import shapes

    whole = as_json or piped()
    timeline = run_ops(ctx, lambda ops: ops.runs.timeline(run_id, width=None if whole else 80))
    if as_json:
        emit(shapes.timeline_document(timeline))
        return
    run = timeline.run
    lines = [
        f"run {run.run_id}   workflow {run.workflow}   status {run.status}",
        f"created {when(run.created_at)}   updated {when(run.updated_at)}",
        f"code version {run.code_version or '-'}",
    ]
    if run.parent_run_id:
        entry = run.run_id.rpartition("~")[2] if "~" in run.run_id else run.parent_seq
        lines.append(f"child of {run.parent_run_id} (entry {entry})")
    if run.forked_from:
        lines.append(f"forked from {run.forked_from} (entry {run.forked_entry})")
    if run.custom_status is not None:
        lines.append("progress: " + lifecycle.progress(run.custom_status))
    if run.waiting_on:
        lines.append(f"waiting on: {run.waiting_on}")
    for line in lines:
        click.echo(line)
    rows = Rows("#", "KIND", "NAME", "STATUS", "ATTEMPTS", "DURATION", "OUTPUT / ERROR")
    for e in timeline.entries:
        rows.add(
            e.entry, e.kind, plain(e.name), styled(e.status), str(e.attempts),
            "-" if e.duration is None else format_duration(e.duration), plain(e.summary),
        )  # fmt: skip
    if timeline.entries:
        rows.print()
    else:
        click.echo("(no journal entries)")
    if run.status == "completed":
        click.echo("result: " + (run.output or "null"))
    if run.error:
        err = json.loads(run.error)
        click.secho(f"error: {err.get('type')}: {err.get('message')}", fg="red")
        if show_traceback and err.get("traceback"):
            click.echo(err["traceback"].rstrip("\n"))


@click.group()
def events() -> None:
    """Send events to runs."""


@events.command("send")
@click.argument("run_id")
@click.argument("name")
@click.option(
    "--data",
    default="null",
    show_default=True,
    type=JSON_ARGUMENT,
    help="The payload: JSON, @FILE or - (standard input).",
)
@click.option(
    "--id",
    "event_id",
    default=None,
    help="The event's own id: sending again with it delivers the event once.",
)
@click.pass_context
def events_send(
    ctx: click.Context, run_id: str, name: str, data: str, event_id: str | None
) -> None:
    """Deliver event NAME to RUN_ID (buffered until the run waits for it)."""
    sent = run_ops(ctx, lambda ops: ops.runs.send_event_json(run_id, name, data, event_id=event_id))
    if sent:
        click.echo(f"event {name!r} sent to run {run_id}")
    else:
        click.echo(f"event {event_id!r} was sent to run {run_id} before; not sent again")


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
    """Resume a failed run from its failed entry (after fixing the code, for instance), or a
    cancelled run where it was cancelled."""
    run_ops(ctx, lambda ops: ops.runs.retry(run_id))
    click.echo(
        f"run {run_id} will resume on the next worker (a failed run from its failed entry, a"
        " cancelled one where it was cancelled)"
    )


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
