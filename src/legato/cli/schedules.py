"""``legato schedules``: list, pause, resume, trigger and delete schedules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from legato.cli.output import Rows, listed, plain, when
from legato.cli.session import default_person, run_ops

if TYPE_CHECKING:
    from legato.ops.schedules import Schedule

_BY_HELP = "Who does it (audited) [default: $LEGATO_USER or $USER]."


def schedule_document(s: Schedule) -> dict[str, Any]:
    """A schedule as ``legato schedules --json`` prints it (one per line)."""

    def at(value: Any) -> float | None:
        return None if value is None else value.timestamp()

    return {
        "id": s.id, "workflow": s.workflow, "cron": s.cron, "tz": s.tz, "input": s.input,
        "catchup": s.catchup, "overlap": s.overlap, "source": s.source, "paused": s.paused,
        "next_at": at(s.next_at), "last_tick_at": at(s.last_tick_at),
        "last_run_id": s.last_run_id, "buffered_at": at(s.buffered_at), "fired": s.fired,
        "skipped": s.skipped,
    }  # fmt: skip


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """Schedules: workflows started on cron ticks (lists them without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    found = run_ops(ctx, lambda ops: ops.schedules.list())
    if listed(found, as_json, schedule_document, "no schedules"):
        return
    rows = Rows("ID", "WORKFLOW", "CRON", "TZ", "STATE", "NEXT", "LAST RUN", "FIRED", "SKIPPED",
                keep=("ID", "LAST RUN"))  # fmt: skip
    for s in found:
        rows.add(
            plain(s.id), plain(s.workflow), plain(s.cron), s.tz,
            "paused" if s.paused else "active", when(s.next_at.timestamp()),
            plain(s.last_run_id or "-"), str(s.fired), str(s.skipped),
        )  # fmt: skip
    rows.print()


@schedules.command("pause")
@click.argument("schedule_id", metavar="ID")
@click.option("--by", default=None, help=_BY_HELP)
@click.pass_context
def schedules_pause(ctx: click.Context, schedule_id: str, by: str | None) -> None:
    """No tick of schedule ID fires until `legato schedules resume`."""
    who = by or default_person()
    changed = run_ops(ctx, lambda ops: ops.schedules.pause(schedule_id, by=who))
    click.echo(f"schedule {schedule_id} {'paused' if changed else 'was already paused'}")


@schedules.command("resume")
@click.argument("schedule_id", metavar="ID")
@click.option("--by", default=None, help=_BY_HELP)
@click.pass_context
def schedules_resume(ctx: click.Context, schedule_id: str, by: str | None) -> None:
    """Fire schedule ID again from its next tick (ticks missed while paused do not fire)."""
    who = by or default_person()
    changed = run_ops(ctx, lambda ops: ops.schedules.resume(schedule_id, by=who))
    click.echo(f"schedule {schedule_id} {'resumed' if changed else 'was not paused'}")


@schedules.command("trigger")
@click.argument("schedule_id", metavar="ID")
@click.option("--by", default=None, help=_BY_HELP)
@click.pass_context
def schedules_trigger(ctx: click.Context, schedule_id: str, by: str | None) -> None:
    """Start a run of schedule ID now, with its input, besides its ticks; print its id."""
    who = by or default_person()
    run = run_ops(ctx, lambda ops: ops.schedules.trigger(schedule_id, by=who))
    click.echo(run.run_id)


@schedules.command("delete")
@click.argument("schedule_id", metavar="ID")
@click.option("--by", default=None, help=_BY_HELP)
@click.pass_context
def schedules_delete(ctx: click.Context, schedule_id: str, by: str | None) -> None:
    """Remove schedule ID (the runs it started stay)."""
    who = by or default_person()
    run_ops(ctx, lambda ops: ops.schedules.delete(schedule_id, by=who))
    click.echo(f"schedule {schedule_id} deleted")
