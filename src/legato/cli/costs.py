"""``legato costs``: model calls, tokens and cost."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import click

from legato.cli.output import Rows, listed, plain
from legato.cli.session import app_workflows, parse_age, run_ops

if TYPE_CHECKING:
    from legato.ops import Operations
    from legato.store.usage import UsageTotals


@click.command()
@click.option(
    "--by",
    type=click.Choice(["workflow", "model", "day", "tenant", "run"]),
    default="workflow",
    show_default=True,
    help="How to group the model calls.",
)
@click.option("--since", default=None, metavar="AGE", help="Only the last AGE: 7d, 24h, 2w.")
@click.option("--workflow", default=None, help="Only this workflow's calls.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.pass_context
def costs(
    ctx: click.Context, by: str, since: str | None, workflow: str | None, as_json: bool
) -> None:
    """Model calls, tokens and cost, grouped by workflow, model, day, tenant or run."""
    from legato.ops import shapes

    age = parse_age(since) if since else None
    known = app_workflows(ctx)

    async def work(ops: Operations) -> list[tuple[str, UsageTotals]]:
        rows = await ops.costs.rollup(by=by, since=age, workflow=workflow)
        if not rows and workflow is not None:
            spent = [name for name, _ in await ops.costs.rollup(by="workflow")]
            await ops.runs.require_workflow(workflow, also={*known, *spent})
        return rows

    rows = run_ops(ctx, work)
    empty = "no model calls recorded"
    if listed(rows, as_json, lambda row: shapes.usage_document(by, *row), empty):
        return
    numbers = ("CALLS", "INPUT", "CACHED", "OUTPUT", "USD", "UNPRICED", "CACHE HITS")
    # run ids and tenants are copied into the next command: never cut them
    table = Rows(by.upper(), *numbers, keep=(by.upper(),), right=numbers)
    total = [0, 0, 0, 0, 0, 0]
    total_usd = Decimal(0)
    for key, t in rows:
        values = [t.calls, t.input_tokens, t.cached_input_tokens, t.output_tokens,
                  t.unknown_cost_calls, t.cache_hits]  # fmt: skip
        total = [a + b for a, b in zip(total, values, strict=True)]
        total_usd += t.cost_usd
        table.add(plain(key), *(str(v) for v in values[:4]), shapes.usd(t.cost_usd),
                  *(str(v) for v in values[4:]))  # fmt: skip
    table.add("TOTAL", *(str(v) for v in total[:4]), shapes.usd(total_usd),
              *(str(v) for v in total[4:]), style="bold")  # fmt: skip
    table.print()
    if total[4]:
        click.echo(
            f"{total[4]} call(s) have no known price: USD figures leave them out (see"
            " [prices] in legato.toml)"
        )
