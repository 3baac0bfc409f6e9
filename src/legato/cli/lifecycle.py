"""``legato start`` and ``legato fork``: runs begun from the command line.

Both go through the App (``app.start``, ``app.fork``), the app given with ``legato --app
MODULE:APP``: it knows the workflows, so an input that does not fit a workflow's parameters is
refused here, before anything is written, not later in a worker.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from legato.errors import (
    ConfigurationError,
    LegatoError,
    RunFailed,
    UnknownRun,
    UnknownWorkflow,
)

if TYPE_CHECKING:
    from legato.app import App
    from legato.handle import RunHandle

_INPUT = click.option(
    "--input", "inputs", multiple=True, metavar="JSON|@FILE|-",
    help="One argument of the workflow (after ctx), as JSON, @FILE (JSON in a file) or - (JSON"
    " on stdin); repeat it for each positional argument.",
)  # fmt: skip
_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def read_json(text: str, what: str) -> Any:
    """A JSON value given as text, ``@path`` (a file) or ``-`` (stdin)."""
    if text == "-":
        text, where = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, where = path.read_text(), str(path)
        except OSError as exc:
            raise ConfigurationError(f"{what}: cannot read {path}: {exc.strerror}") from None
    else:
        where = "the command line"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{what} from {where} is not valid JSON: {exc}") from None


def _app(ctx: click.Context, needed_by: str | None) -> App:
    """The app given with ``legato --app``; without one, an app with no workflows on the
    command's database (enough to act on runs), unless ``needed_by`` says it is required."""
    from legato.app import App

    app: App | None = ctx.obj.get("app")
    if app is None:
        if needed_by is not None:
            raise ConfigurationError(
                f"{needed_by} needs the app that defines the workflow: legato --app MODULE:APP"
                f" {needed_by.removeprefix('legato ')} ... (for example legato --app"
                " myproject.flows:app)"
            )
        return App("legato-cli", ctx.obj["url"], payload_limit=ctx.obj["payload_limit"])
    if ctx.obj["explicit"]:
        app.database_url = ctx.obj["url"]
    return app


def _inputs(values: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(read_json(v, f"--input #{i + 1}") for i, v in enumerate(values))


def _echo_json(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, default=str))


@click.command()
@click.argument("workflow")
@_INPUT
@click.option("--run-id", default=None, help="The run's id [default: a new random one].")
@click.option("--tenant", default=None, help="Who the run works for (budgets per tenant).")
@click.option("--wait", is_flag=True, help="Wait for the run to end; print its result.")
@_JSON
@click.pass_context
def start(
    ctx: click.Context,
    workflow: str,
    inputs: tuple[str, ...],
    run_id: str | None,
    tenant: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Start a run of WORKFLOW; print its id (with --wait, its result once it ends).

    Starting with the --run-id of an existing run of WORKFLOW returns that run (idempotent).
    A worker must be running to execute it: `legato worker MODULE:APP`.
    """
    app = _app(ctx, "legato start")
    try:
        definition = app.workflows.get(workflow)
        if definition is None:
            close = difflib.get_close_matches(workflow, list(app.workflows), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownWorkflow(
                f"no workflow {workflow!r} in app {app.name!r}{hint} (registered:"
                f" {', '.join(sorted(app.workflows)) or 'none'})"
            )
        args = _inputs(inputs)
        # refused now, before a run exists, when it does not fit the workflow's parameters
        definition.decode_input(definition.encode_input(args, {}, app.payload_limit))
        created = run_id is None or not _exists(app, run_id)
        handle: RunHandle[Any] = app.start(workflow, *args, run_id=run_id, tenant=tenant)
        if wait:
            _wait(handle, as_json)
        elif as_json:
            _echo_json({"run_id": handle.run_id, "workflow": workflow, "created": created})
        else:
            click.echo(handle.run_id)
            if not created:
                click.echo(f"(run {handle.run_id} existed already)", err=True)
    finally:
        app.close()


def _exists(app: App, run_id: str) -> bool:
    try:
        app.handle(run_id).describe()
    except UnknownRun:
        return False
    return True


def _wait(handle: RunHandle[Any], as_json: bool) -> None:
    click.echo(f"waiting for run {handle.run_id} to end (a worker must be running)", err=True)
    try:
        result = handle.result()
    except RunFailed as exc:
        if as_json:
            _echo_json({"run_id": handle.run_id, "status": "failed", "error": str(exc)})
        raise
    except LegatoError:
        if as_json:
            _echo_json({"run_id": handle.run_id, "status": handle.status(), "result": None})
        raise
    text = json.dumps(result, default=str)
    if as_json:
        _echo_json({"run_id": handle.run_id, "status": "completed", "result": json.loads(text)})
    else:
        click.echo(text)


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--from", "entry", required=True, metavar="ENTRY",
    help="The entry to run afresh (its key in `legato show RUN`: 3, 0.1); entries recorded"
    " before it are kept.",
)  # fmt: skip
@_INPUT
@click.option("--run-id", "new_run_id", default=None, help="The fork's id [default: new].")
@click.option("--by", default=None, help="Who forks (audited) [default: $LEGATO_USER or $USER].")
@_JSON
@click.pass_context
def fork(
    ctx: click.Context,
    run_id: str,
    entry: str,
    inputs: tuple[str, ...],
    new_run_id: str | None,
    by: str | None,
    as_json: bool,
) -> None:
    """Fork RUN: a new run with RUN's journal up to ENTRY, which runs ENTRY and the rest afresh.

    The fork replays what RUN recorded before ENTRY (results, decisions, model calls: not paid
    again) and runs the rest on the current code, with --input replacing the arguments when
    given. It is a new run: new idempotency keys, its own approvals and child runs. RUN is left
    as it is. Lineage is shown by `legato show` and audited.
    """
    app = _app(ctx, "legato fork --input" if inputs else None)
    try:
        args = _inputs(inputs) if inputs else None
        handle = app.fork(run_id, entry, args=args, new_run_id=new_run_id, by=by or _person())
        kept = len(handle.timeline().entries)
    finally:
        app.close()
    if as_json:
        _echo_json(
            {"run_id": handle.run_id, "forked_from": run_id, "forked_entry": entry, "kept": kept}
        )
        return
    click.echo(handle.run_id)
    click.echo(
        f"run {handle.run_id} forked from {run_id} at entry {entry}: {kept} entr"
        f"{'y' if kept == 1 else 'ies'} kept; a worker runs the rest",
        err=True,
    )


def _person() -> str:
    return os.environ.get("LEGATO_USER") or os.environ.get("USER") or "cli"


def progress(custom_status: str | None) -> str:
    """A run's own status (``ctx.set_status``) as tables show it: a string as it is, other
    JSON compact."""
    if custom_status is None:
        return ""
    value = json.loads(custom_status)
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


__all__ = ["fork", "progress", "read_json", "start"]
