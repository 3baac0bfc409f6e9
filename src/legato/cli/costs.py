"""``legato costs``: model calls, tokens and cost."""

from __future__ import annotations

import json

import click

from legato.cli.session import parse_age, run_ops


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def costs(
    ctx: click.Context, by: str, since: str | None, workflow: str | None, as_json: bool
) -> None:
    """Model calls, tokens and cost, grouped by workflow, model, day, tenant or run."""
    from decimal import Decimal

    age = parse_age(since) if since else None
    rows = run_ops(ctx, lambda ops: ops.costs.rollup(by=by, since=age, workflow=workflow))

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
