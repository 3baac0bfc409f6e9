"""``legato stats``, ``legato monitors`` and ``legato evals``: what runs measured and judged.

The commands call the operations layer through the runner ``cli.main`` gives them
(:func:`commands`), so this module does not import the main command. ``--json`` prints one
object per line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import click

from legato.timestamps import format_timestamp

if TYPE_CHECKING:
    from legato.ops import Operations
    from legato.store.base import StatRow

T = TypeVar("T")
Runner = Callable[[click.Context, Callable[["Operations"], Coroutine[Any, Any, Any]]], Any]
BY = ("workflow", "model", "step", "tool", "tenant", "day")


def _usd(nano: int) -> str:
    return f"{Decimal(nano) / Decimal(1_000_000_000):.6f}"


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


def stat_json(by: str, row: StatRow) -> dict[str, Any]:
    """One group of ``legato stats`` as JSON (the figures that apply to what is grouped)."""
    t, o = row.tally, row.outcomes
    out: dict[str, Any] = {by: row.group}
    if by in ("workflow", "tenant", "day"):
        ended = t.n
        out |= {
            "runs": ended, "completed": o.get("completed", 0), "failed": o.get("failed", 0),
            "cancelled": o.get("cancelled", 0),
            "success_rate": _mean(o.get("completed", 0), ended),
            "mean_duration_s": _mean(t.duration, ended), "usd": _usd(t.cost_nanousd),
            "unknown_cost_calls": t.unknown_cost, "tokens": t.tokens, "model_calls": t.calls,
            "retries": t.retries, "approvals": t.approvals, "approved": t.approved,
            "edited": t.edited, "rejected": t.rejected, "timed_out": t.timed_out,
        }  # fmt: skip
    elif by == "model":
        out |= {
            "calls": t.n, "failed": o.get("failed", 0), "tokens": t.tokens,
            "usd": _usd(t.cost_nanousd), "unknown_cost_calls": t.unknown_cost,
            "mean_latency_s": _mean(t.duration, t.n), "repairs": t.repairs,
            "fallbacks": t.fallbacks, "invalid": t.invalid,
        }  # fmt: skip
    else:  # step or tool: calls ended, and for tools the gate's answers and approvals
        calls = o.get("completed", 0) + o.get("failed", 0)
        out |= {
            "calls": calls, "failed": o.get("failed", 0), "retries": t.retries,
            "mean_duration_s": _mean(t.duration - t.wait, calls),
        }  # fmt: skip
        if by == "tool":
            out |= {
                "gate_answers": o.get("gate", 0), "allowed": t.allowed, "denied": t.denied,
                "throttled": t.throttled, "approvals": t.approvals, "approved": t.approved,
                "edited": t.edited, "rejected": t.rejected, "timed_out": t.timed_out,
                "mean_approval_wait_s": _mean(t.wait, t.approvals),
            }  # fmt: skip
    return out


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for i, col in enumerate(columns):
        table.add_column(col.upper().replace("_", " "), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in columns))
    Console().print(table, markup=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value) or "-"


_COLUMNS = {
    "workflow": ["runs", "completed", "failed", "cancelled", "success_rate", "mean_duration_s",
                 "usd", "tokens", "model_calls", "retries", "approvals", "rejected"],
    "model": ["calls", "failed", "tokens", "usd", "mean_latency_s", "repairs", "fallbacks",
              "invalid"],
    "step": ["calls", "failed", "retries", "mean_duration_s"],
    "tool": ["calls", "failed", "allowed", "denied", "throttled", "approvals", "approved",
             "edited", "rejected", "mean_approval_wait_s"],
}  # fmt: skip


def commands(run: Runner, age: Callable[[str], timedelta]) -> list[click.Command]:
    """The commands, bound to ``run`` (opens the database, calls the operations layer) and
    ``age`` (parses ``--since``)."""
    return [_stats(run, age), _evals(run, age), _monitors(run)]


def _stats(run: Runner, age: Callable[[str], timedelta]) -> click.Command:
    @click.command()
    @click.option("--workflow", "-w", default=None, help="Only this workflow.")
    @click.option(
        "--by", type=click.Choice(BY), default="workflow", show_default=True,
        help="Group runs by workflow, tenant or day; or model calls, steps or tools.",
    )  # fmt: skip
    @click.option("--since", default=None, metavar="AGE", help="Only the last AGE: 7d, 24h.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
    @click.pass_context
    def stats(
        ctx: click.Context, workflow: str | None, by: str, since: str | None, as_json: bool
    ) -> None:
        """What runs measured: outcomes, duration, cost, tokens, retries, escalations."""
        since_age = age(since) if since else None
        rows = run(ctx, lambda ops: ops.evals.stats(by=by, workflow=workflow, since=since_age))
        found = [stat_json(by, r) for r in rows]
        if as_json:
            for item in found:
                click.echo(json.dumps(item))
        elif not found:
            click.echo("nothing measured yet")
        else:
            columns = _COLUMNS.get(by, _COLUMNS["workflow"])
            _table(found, [by, *columns])

    return stats


def _evals(run: Runner, age: Callable[[str], timedelta]) -> click.Command:
    @click.command()
    @click.option("--since", default=None, metavar="AGE", help="Only the last AGE: 7d, 24h.")
    @click.option("--workflow", "-w", default=None, help="Only this workflow's evaluations.")
    @click.option("--recent", "-n", default=0, help="Also list the N newest evaluations.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
    @click.pass_context
    def evals(
        ctx: click.Context, since: str | None, workflow: str | None, recent: int, as_json: bool
    ) -> None:
        """Evaluators: how many outputs each judged, the pass rate and the mean score."""
        since_age = age(since) if since else None

        async def work(ops: Operations) -> tuple[list[Any], list[Any]]:
            summary = await ops.evals.evaluators(workflow=workflow, since=since_age)
            latest = await ops.evals.recent(limit=recent) if recent else []
            return summary, latest

        summary, latest = run(ctx, work)
        rows = [
            {"evaluator": s.evaluator, "evaluations": s.evaluations, "passed": s.passed,
             "pass_rate": s.pass_rate, "mean_score": s.mean_score}
            for s in summary
        ]  # fmt: skip
        recent_rows = [
            {"at": format_timestamp(e.at, "iso"), "evaluator": e.evaluator, "run": e.run_id,
             "target": e.target, "mode": e.mode, "score": e.score, "passed": e.passed,
             "reason": e.reason}
            for e in latest
        ]  # fmt: skip
        if as_json:
            for item in rows + recent_rows:
                click.echo(json.dumps(item))
            return
        if not rows:
            click.echo("no evaluations recorded")
            return
        _table(rows, ["evaluator", "evaluations", "passed", "pass_rate", "mean_score"])
        if recent_rows:
            click.echo("")
            _table(recent_rows, ["at", "evaluator", "run", "target", "score", "passed", "reason"])

    return evals


def _monitors(run: Runner) -> click.Command:
    @click.group(invoke_without_command=True)
    @click.option("--history", is_flag=True, help="Also list each monitor's audited events.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
    @click.pass_context
    def monitors(ctx: click.Context, history: bool, as_json: bool) -> None:
        """Monitors: state, last window's value, last fire and restore (and history)."""
        if ctx.invoked_subcommand is not None:
            return
        app = ctx.obj.get("app")
        defined = app.monitors if app is not None else {}
        views = run(ctx, lambda ops: ops.monitors.list(defined))
        rows = [_monitor_json(v) for v in views]
        if as_json:
            for item in rows:
                click.echo(json.dumps(item))
            return
        if not rows:
            click.echo("no monitors (give --app MODULE:APP to list those not checked yet)")
            return
        _table(rows, ["monitor", "state", "metric", "window", "last_value", "last_n",
                      "windows", "fired_at", "restored_at"])  # fmt: skip
        if history:
            for item in rows:
                for event in item["history"]:
                    click.echo(f"{event['at']}  {item['monitor']}  {event['kind']}"
                               f"  {json.dumps(event['detail'])}")  # fmt: skip

    @monitors.command("restore")
    @click.argument("name")
    @click.option("--by", required=True, help="Who restores (recorded and audited).")
    @click.option("--reason", required=True, help="Why (recorded and audited).")
    @click.pass_context
    def monitors_restore(ctx: click.Context, name: str, by: str, reason: str) -> None:
        """Undo what a firing monitor changed (autonomy, routes, pauses)."""
        app = ctx.obj.get("app")
        spec = app.monitors.get(name) if app is not None else None
        done = run(ctx, lambda ops: ops.monitors.restore(name, by=by, reason=reason, monitor=spec))
        click.echo(f"monitor {name} restored" if done else f"monitor {name} is not firing")

    return monitors


def _monitor_json(view: Any) -> dict[str, Any]:
    from legato.ops.monitors import window_text

    s, m = view.state, view.monitor
    return {
        "monitor": view.name, "state": s.state,
        "metric": m.metric if m is not None else None,
        "window": window_text(m.window) if m is not None else None,
        "last_value": s.last_value, "last_low": s.last_low, "last_high": s.last_high,
        "last_n": s.last_n, "baseline": s.last_baseline, "windows": s.window_done + 1,
        "healthy_windows": s.healthy,
        "evaluated_at": _when(s.evaluated_at), "fired_at": _when(s.fired_at),
        "restored_at": _when(s.restored_at),
        "history": [
            {"at": _when(e.at), "kind": e.kind, "by": e.actor, "detail": json.loads(e.detail)}
            for e in view.history
        ],
    }  # fmt: skip


def _when(ts: float | None) -> str | None:
    return None if ts is None else format_timestamp(ts, "iso")
