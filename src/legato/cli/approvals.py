"""Commands on approvals: list, approve and reject them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from legato.cli.output import Rows, cut, listed, plain, styled, when
from legato.cli.session import JSON_ARGUMENT, run_ops

if TYPE_CHECKING:
    from legato.ops import Operations
    from legato.store.records import ApprovalRecord


@click.command()
@click.option(
    "--status", "-s", default="pending", show_default=True,
    help="pending, approved, rejected, expired, cancelled, or all.",
)  # fmt: skip
@click.option("--run", "run_id", default=None, help="Only approvals of this run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.pass_context
def approvals(ctx: click.Context, status: str, run_id: str | None, as_json: bool) -> None:
    """List approvals (pending ones by default), oldest first."""
    from legato.ops import shapes

    wanted = None if status == "all" else status

    async def work(ops: Operations) -> list[ApprovalRecord]:
        found = await ops.approvals.list(wanted, run_id, 500)
        if not found and run_id is not None:
            await ops.runs.get(run_id)  # a mistyped run is an error, not "no approvals"
        return found

    found = run_ops(ctx, work)
    empty = f"no {'' if wanted is None else wanted + ' '}approvals"
    if listed(found, as_json, shapes.approval_document, empty):
        return
    # ids are copied into the next command: never fold them
    rows = Rows("ID", "RUN", "NAME", "STATUS", "ASKED", "PROMPT / DATA", "DECIDED BY",
                 keep=("ID", "RUN"))  # fmt: skip
    for a in found:
        detail = a.prompt or a.data or "null"
        if a.reason:
            detail += f" ({a.reason})"
        rows.add(
            a.approval_id, plain(a.run_id), plain(a.name), styled(a.status), when(a.created_at),
            plain(cut(detail, 120)), plain(a.decided_by),
        )  # fmt: skip
    rows.print()


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
@click.option(
    "--data",
    default=None,
    type=JSON_ARGUMENT,
    help="Edited data replacing what was proposed: JSON, @FILE or - (standard input).",
)
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
