"""Commands for people in charge: the audit log, autonomy levels and the pause switch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from legato.cli.output import Rows, cut, listed, plain, when
from legato.cli.session import FORCE_HINT, app_workflows, default_person, run_ops

if TYPE_CHECKING:
    from legato.ops import Operations
    from legato.store.records import AuditRecord

_JSON_HELP = "Print one JSON object per line."


@click.group(invoke_without_command=True)
@click.option("--run", "run_id", default=None, help="Only rows about this run.")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def audit(ctx: click.Context, run_id: str | None, as_json: bool) -> None:
    """The audit log: gate decisions, approvals, autonomy changes, pauses."""
    from legato.ops import shapes

    if ctx.invoked_subcommand is not None:
        return

    async def work(ops: Operations) -> list[AuditRecord]:
        rows = await ops.audit.list(run_id=run_id, limit=100_000)
        if not rows and run_id is not None:
            await ops.runs.get(run_id)  # the log outlives removed runs: check only when empty
        return rows

    found = run_ops(ctx, work)
    empty = "the audit log is empty" if run_id is None else f"no audit rows for {run_id}"
    if listed(found, as_json, shapes.audit_document, empty):
        return
    rows = Rows("#", "AT", "KIND", "ACTOR", "RUN", "SUBJECT", "DETAIL")
    for r in found:
        rows.add(
            str(r.seq), when(r.at), r.kind, plain(r.actor), plain(r.run_id), plain(r.subject),
            plain(cut(r.detail, 100)),
        )  # fmt: skip
    rows.print()


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Check the hash chain; exit 1 naming the first row that was edited or removed."""
    check = run_ops(ctx, lambda ops: ops.audit.verify())
    if check.ok:
        click.echo(f"audit log intact: {check.rows} rows")
        return
    click.echo(f"error: audit row {check.bad_seq} is not intact: {check.problem}", err=True)
    ctx.exit(1)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.pass_context
def autonomy(ctx: click.Context, as_json: bool) -> None:
    """Autonomy levels per actor: 0 propose only, 1 low risk, 2 medium, 3 high."""
    from legato.ops import shapes

    if ctx.invoked_subcommand is not None:
        return
    levels = run_ops(ctx, lambda ops: ops.control.autonomy_levels())
    empty = "no levels set at run time (actors use the policy's, else 1)"
    if listed(levels, as_json, shapes.autonomy_document, empty):
        return
    for a in levels:
        click.echo(f"{a.actor}\t{a.level}\tset by {a.set_by} at {when(a.updated_at.timestamp())}:"
                   f" {a.reason}")  # fmt: skip


@autonomy.command("set")
@click.argument("actor")
@click.argument("level", type=click.IntRange(0, 3))
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@click.option("--by", default=None, help="Who decides [default: $LEGATO_USER or $USER].")
@click.option("--force", is_flag=True, help="Set the level of an actor that has not acted yet.")
@click.pass_context
def autonomy_set(
    ctx: click.Context, actor: str, level: int, reason: str, by: str | None, force: bool
) -> None:
    """Set ACTOR's LEVEL; the next proposal of every run uses it."""
    from legato.ops import LEVELS

    who = by or default_person()
    app = ctx.find_root().obj.get("app")
    in_policy = set(app.policy.autonomy) if app is not None and app.policy is not None else set()

    async def work(ops: Operations) -> None:
        if not force:
            levels = {a.actor for a in await ops.control.autonomy_levels()}
            hint = "; pass --force for an actor that has not acted yet"
            await ops.audit.require_actor(actor, also=levels | in_policy, hint=hint)
        await ops.control.set_autonomy(actor, level, by=who, reason=reason)

    run_ops(ctx, work)
    click.echo(f"{actor} is now at autonomy {level} ({LEVELS[level]}), set by {who}")


@click.command()
@click.argument("workflow", required=False)
@click.option("--reason", default="paused from the CLI", show_default=True)
@click.option("--by", default=None, help="Who pauses [default: $LEGATO_USER or $USER].")
@click.option("--force", is_flag=True, help="Pause a workflow that has no runs yet.")
@click.option("--json", "as_json", is_flag=True, help="List paused workflows as JSON lines.")
@click.pass_context
def pause(
    ctx: click.Context,
    workflow: str | None,
    reason: str,
    by: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Kill switch: no new entry of WORKFLOW starts until `legato resume` (lists if omitted)."""
    from legato.ops import shapes

    if workflow is None:
        paused = run_ops(ctx, lambda ops: ops.control.paused())
        if listed(paused, as_json, shapes.pause_document, "no workflow is paused"):
            return
        for p in paused:
            click.echo(f"{p.workflow}\tpaused by {p.paused_by} at"
                       f" {when(p.paused_at.timestamp())}: {p.reason}")  # fmt: skip
        return
    if as_json:
        raise click.UsageError("--json lists paused workflows: give no WORKFLOW with it")
    who = by or default_person()
    known = app_workflows(ctx)

    async def work(ops: Operations) -> bool:
        if not force:
            await ops.runs.require_workflow(workflow, also=known, hint=FORCE_HINT)
        return await ops.control.pause(workflow, by=who, reason=reason)

    changed = run_ops(ctx, work)
    click.echo(f"{workflow} {'paused' if changed else 'was already paused'}")


@click.command()
@click.argument("workflow")
@click.option("--by", default=None, help="Who resumes [default: $LEGATO_USER or $USER].")
@click.pass_context
def resume(ctx: click.Context, workflow: str, by: str | None) -> None:
    """Undo `legato pause`: WORKFLOW's runs carry on where they stopped."""
    who = by or default_person()
    known = app_workflows(ctx)

    async def work(ops: Operations) -> bool:
        changed = await ops.control.resume(workflow, by=who)
        if not changed:  # "was not paused" is news only for a name that exists
            paused = [p.workflow for p in await ops.control.paused()]
            await ops.runs.require_workflow(workflow, also={*known, *paused})
        return changed

    changed = run_ops(ctx, work)
    click.echo(f"{workflow} {'resumed' if changed else 'was not paused'}")
