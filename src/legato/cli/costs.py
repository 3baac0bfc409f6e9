"""``legato costs``: model calls, tokens and cost."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import click

from legato.cli.output import Rows, listed, plain
from legato.cli.session import app_workflows, parse_age, run_ops

if TYPE_CHECKING:
    from collections.abc import Callable

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
    from legato.store.usage import UsageTotals

    total = sum((t for _, t in rows), UsageTotals())

    def cached(t: UsageTotals) -> str:  # prompt tokens read from a cache, and their share
        rate = t.cache_hit_rate
        return f"{t.cached_input_tokens} ({rate:.0%})" if rate else str(t.cached_input_tokens)

    def nano(value: int) -> str:
        return shapes.usd(Decimal(value) / Decimal(1_000_000_000))

    # columns that would be all zeros are left out, so the table fits a terminal
    columns: dict[str, Callable[[UsageTotals], str]] = {
        "CALLS": lambda t: str(t.calls),
        "INPUT": lambda t: str(t.input_tokens),
        "CACHED": cached,
        "OUTPUT": lambda t: str(t.output_tokens),
        "USD": lambda t: shapes.usd(t.cost_usd),
        "SAVED": lambda t: nano(t.cache_saved_nanousd),
        "UNPRICED": lambda t: str(t.unknown_cost_calls),
        "CACHE HITS": lambda t: str(t.cache_hits),
    }
    optional = {"CACHED": total.cached_input_tokens, "SAVED": total.cache_saved_nanousd,
                "UNPRICED": total.unknown_cost_calls, "CACHE HITS": total.cache_hits}  # fmt: skip
    shown = [name for name in columns if optional.get(name, 1)]
    # run ids and tenants are copied into the next command: never cut them
    table = Rows(by.upper(), *shown, keep=(by.upper(),), right=tuple(shown))
    for key, t in rows:
        table.add(plain(key), *(columns[name](t) for name in shown))
    table.add("TOTAL", *(columns[name](total) for name in shown), style="bold")
    table.print()
    if total.unknown_cost_calls:
        click.echo(
            f"{total.unknown_cost_calls} call(s) have no known price: USD figures leave them"
            " out (see [prices] in legato.toml)"
        )
