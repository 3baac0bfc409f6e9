"""Commands for people in charge: the audit log, autonomy levels and the pause switch."""

from __future__ import annotations

import json

import click

from legato.cli.output import when
from legato.cli.session import default_person, run_ops


@click.group(invoke_without_command=True)
@click.option("--run", "run_id", default=None, help="Only rows about this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def audit(ctx: click.Context, run_id: str | None, as_json: bool) -> None:
    """The audit log: gate decisions, approvals, autonomy changes, pauses."""
    if ctx.invoked_subcommand is not None:
        return
    rows = run_ops(ctx, lambda ops: ops.audit.list(run_id=run_id, limit=100_000))
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
            str(r.seq), when(r.at), r.kind, r.actor or "-", r.run_id or "-", r.subject or "-",
            r.detail[:100],
        )  # fmt: skip
    console.print(table, markup=False)


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the hash chain; exit 1 naming the first row that was edited or removed."""
    check = run_ops(ctx.parent or ctx, lambda ops: ops.audit.verify())
    if check.ok:
        click.echo(f"audit log intact: {check.rows} rows")
        return
    click.echo(f"error: audit row {check.bad_seq} is not intact: {check.problem}", err=True)
    ctx.exit(1)


@click.group(invoke_without_command=True)
@click.pass_context
def autonomy(ctx: click.Context) -> None:
    """Autonomy levels per actor: 0 propose only, 1 low risk, 2 medium, 3 high."""
    if ctx.invoked_subcommand is not None:
        return
    levels = run_ops(ctx, lambda ops: ops.control.autonomy_levels())
    if not levels:
        click.echo("no levels set at run time (actors use the policy's, else 1)")
    for a in levels:
        click.echo(f"{a.actor}\t{a.level}\tset by {a.set_by} at {when(a.updated_at.timestamp())}:"
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
    run_ops(
        ctx.parent or ctx, lambda ops: ops.control.set_autonomy(actor, level, by=who, reason=reason)
    )
    click.echo(f"{actor} is now at autonomy {level} ({LEVELS[level]}), set by {who}")


@click.command()
@click.argument("workflow", required=False)
@click.option("--reason", default="paused from the CLI", show_default=True)
@click.option("--by", default=None, help="Who pauses [default: $LEGATO_USER or $USER].")
@click.pass_context
def pause(ctx: click.Context, workflow: str | None, reason: str, by: str | None) -> None:
    """Kill switch: no new entry of WORKFLOW starts until `legato resume` (lists if omitted)."""
    if workflow is None:
        paused = run_ops(ctx, lambda ops: ops.control.paused())
        if not paused:
            click.echo("no workflow is paused")
        for p in paused:
            click.echo(f"{p.workflow}\tpaused by {p.paused_by} at"
                       f" {when(p.paused_at.timestamp())}: {p.reason}")  # fmt: skip
        return
    who = by or default_person()
    changed = run_ops(ctx, lambda ops: ops.control.pause(workflow, by=who, reason=reason))
    click.echo(f"{workflow} {'paused' if changed else 'was already paused'}")


@click.command()
@click.argument("workflow")
@click.option("--by", default=None, help="Who resumes [default: $LEGATO_USER or $USER].")
@click.pass_context
def resume(ctx: click.Context, workflow: str, by: str | None) -> None:
    """Undo `legato pause`: WORKFLOW's runs carry on where they stopped."""
    who = by or default_person()
    changed = run_ops(ctx, lambda ops: ops.control.resume(workflow, by=who))
    click.echo(f"{workflow} {'resumed' if changed else 'was not paused'}")
