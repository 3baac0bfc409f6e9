"""The ``legato`` command. It calls the operations layer; user mistakes get one clear line.

The commands live in modules by subject; this one holds the group, its global options, and the
list of commands.
"""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from legato.cli import admin, approvals, control, costs, evaluation, lifecycle, runs, schedules
from legato.cli.session import load_app, parse_age, run_ops
from legato.errors import LegatoError

#: the group's options that take a value; they are also accepted after the command
_GLOBAL = ("--database-url", "--app")


class _Group(click.Group):
    """Turns LegatoError into one line on stderr and exit code 1, and accepts the global
    options after the command too (``legato runs --database-url X``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoist(self, ctx, args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LegatoError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="LEGATO_DATABASE_URL",
    default=None,
    help="Database URL [env LEGATO_DATABASE_URL; default sqlite:///./legato.db].",
)
@click.option(
    "--app",
    "app_target",
    default=None,
    metavar="MODULE:APP",
    help="Take the database URL from this app.",
)
@click.version_option(package_name="legato")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, app_target: str | None) -> None:
    """legato: durable, governed AI workflows.

    These options may also follow the command: legato runs --database-url URL.
    """
    from legato.serde import DEFAULT_PAYLOAD_LIMIT
    from legato.store import DEFAULT_URL

    # An explicit --database-url wins; then the app's own URL (which itself falls back to
    # LEGATO_DATABASE_URL); then the environment; then the default.
    explicit = ctx.get_parameter_source("database_url") is ParameterSource.COMMANDLINE
    url = database_url if explicit else None
    limit: int | None = DEFAULT_PAYLOAD_LIMIT
    app = None
    if app_target is not None:
        app = load_app(app_target)
        url = url or app.database_url
        limit = app.payload_limit
    ctx.obj = {
        "url": url or database_url or DEFAULT_URL,
        "explicit": explicit,
        "payload_limit": limit,
        "app": app,
    }


def _hoist(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """Move the global options found after the command in front of it, unless the command has
    an option of the same name (its own wins). Nothing after ``--`` moves."""
    command: click.Command | None = None
    words = iter(enumerate(args))
    front: list[str] = []
    rest: list[str] = []
    for i, arg in words:
        if arg == "--":
            rest.extend(args[i:])
            break
        if command is None and not arg.startswith("-"):
            command = group.get_command(ctx, arg)
        name, eq, _ = arg.partition("=")
        if command is not None and name in _GLOBAL and name not in _own_options(command, args):
            if eq:
                front.append(arg)
            else:
                front.extend(args[i : i + 2])
                next(words, None)
            continue
        rest.append(arg)
    return front + rest


def _own_options(command: click.Command, args: list[str]) -> set[str]:
    """The option names of ``command`` and of the subcommands named in ``args``."""
    names: set[str] = set()
    while True:
        for param in command.params:
            names.update(param.opts)
        if not isinstance(command, click.Group):
            return names
        sub = next((command.commands[a] for a in args if a in command.commands), None)
        if sub is None:
            return names
        command = sub


for _command in (
    admin.worker,
    runs.runs,
    runs.show,
    runs.events,
    runs.cancel,
    runs.retry,
    approvals.approvals,
    approvals.approve,
    approvals.reject,
    control.audit,
    control.autonomy,
    control.pause,
    control.resume,
    admin.db,
    runs.gc,
    costs.costs,
    lifecycle.start,
    lifecycle.fork,
    schedules.schedules,
):
    cli.add_command(_command)
for _command in evaluation.commands(run_ops, parse_age):  # legato stats, evals, monitors
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="legato")
