"""Commands on approvals: list, approve and reject them."""

from __future__ import annotations

import json

import click

from legato.cli.output import styled, when
from legato.cli.session import run_ops


@click.command()
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
    found = run_ops(ctx, lambda ops: ops.approvals.list(wanted, run_id, 500))
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
            a.id, a.run_id, a.name, styled(a.status), when(a.created_at.timestamp()),
            detail[:120], a.decided_by or "-",
        )  # fmt: skip
    console.print(table)


def _decide(ctx: click.Context, approval_id: str, approved: bool, by: str, data: str | None,
            comment: str | None) -> None:  # fmt: skip
    record = run_ops(
        ctx, lambda ops: ops.approvals.decide_json(approval_id, approved, by, data, comment)
    )
    edited = " with edited data" if record.decided_data is not None else ""
    click.echo(f"approval {approval_id} {record.status} by {record.decided_by}{edited}")


@click.command()
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


@click.command()
@click.argument("approval_id")
@click.option("--by", required=True, help="Who rejects (recorded and audited).")
@click.option("--comment", default=None, help="Why; the run sees it.")
@click.pass_context
def reject(ctx: click.Context, approval_id: str, by: str, comment: str | None) -> None:
    """Reject APPROVAL_ID; the waiting run resumes and sees the rejection."""
    _decide(ctx, approval_id, False, by, None, comment)
