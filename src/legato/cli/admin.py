"""Commands that run or maintain legato: the worker and the schema."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import click

from legato.cli.session import load_app
from legato.store.base import redact_url


@click.command()
@click.argument("target", metavar="MODULE:APP")
@click.option(
    "--concurrency",
    "-c",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs held at once.",
)
@click.option(
    "--lease",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Seconds a run stays leased to this worker without a heartbeat.",
)
@click.option(
    "--poll",
    default=None,
    type=click.FloatRange(min=0.001),
    help="Seconds between polls for work [default: 0.2 on SQLite; 5 on PostgreSQL, which"
    " notifies].",
)
@click.option(
    "--grace",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="On SIGINT/SIGTERM, seconds to let running steps finish before releasing runs.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.pass_context
def worker(
    ctx: click.Context,
    target: str,
    concurrency: int,
    lease: float,
    poll: float | None,
    grace: float,
    log_level: str,
) -> None:
    """Execute runs of the app's workflows until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = load_app(target)
    if ctx.obj["explicit"]:
        app.database_url = ctx.obj["url"]
    count = len(app.workflows)
    click.echo(
        f"legato worker: app {app.name!r}, {count} workflow{'' if count == 1 else 's'},"
        f" concurrency {concurrency}",
        err=True,
    )
    click.echo(f"legato worker: database {_which_database(app.database_url, ctx)}", err=True)
    app.worker(concurrency=concurrency, lease=lease, poll_interval=poll, grace=grace)
    # A sync step still running after the grace period cannot be interrupted: its run was
    # released (another worker will redo the step), so do not let its thread hold the exit.
    busy = [t for t in threading.enumerate() if t.name.startswith("legato-step")]
    if busy:
        click.echo(
            f"legato worker: {len(busy)} sync step(s) still running after the grace period;"
            " exiting without them (their runs were released)",
            err=True,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _which_database(url: str, ctx: click.Context) -> str:
    """The database as the worker will open it (a SQLite file by its absolute path), where
    its URL came from, and whether the SQLite file is there already."""
    from legato.store import DEFAULT_URL
    from legato.store.sqlite import path_from_url

    if ctx.obj["explicit"]:
        why = "given with --database-url"
    elif url == os.environ.get("LEGATO_DATABASE_URL"):
        why = "from LEGATO_DATABASE_URL"
    elif url == DEFAULT_URL:
        why = "the default: neither --database-url, the app nor LEGATO_DATABASE_URL names one"
    else:
        why = "the app's database_url"
    if not url.startswith("sqlite:"):
        return f"{redact_url(url)} ({why})"
    path = Path(path_from_url(url)).resolve()
    state = "an existing file" if path.exists() else "a new file, created empty: none was there"
    return f"sqlite:///{path} ({why}; {state})"


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate legato's tables (workers also do this when they start)."""

    async def upgrade() -> int:
        from legato.store import open_store

        store = await open_store(ctx.obj["url"], create_schema=True)
        try:
            return await store.schema_version()
        finally:
            await store.close()

    from legato.sync import run_coroutine

    version = run_coroutine(upgrade())
    click.echo(f"database {redact_url(ctx.obj['url'])} is at schema version {version}")
