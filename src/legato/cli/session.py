"""What every command needs: the app (``MODULE:APP``), the operations layer on the command's
database, and the small parsers shared by several commands."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from legato.durations import parse_duration
from legato.errors import ConfigurationError

if TYPE_CHECKING:
    from legato.app import App
    from legato.ops import Operations

T = TypeVar("T")
_MAX_AGE = timedelta(days=100 * 365)


def load_app(target: str) -> App:
    """Import ``module:attribute`` (or ``path/to/file.py:attribute``) and return the App."""
    from legato.app import App

    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"expected MODULE:APP (for example myproject.flows:app), got {target!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if module_name.endswith(".py"):
        module = _import_file(module_name)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise ConfigurationError(f"cannot import module {module_name!r}: {exc}") from None
            raise
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise ConfigurationError(f"{target!r} is not a legato.App (found {type(app).__name__})")
    return app


def _import_file(path: str) -> Any:
    import importlib.util

    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"no such file {path!r}")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[file.stem] = module
    spec.loader.exec_module(module)
    return module


def run_ops(ctx: click.Context, work: Callable[[Operations], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` against the operations layer on the command's database, then close it."""
    from legato.sync import (
        run_coroutine,  # here, not at the top: `legato --help` need not pay for it
    )

    async def main() -> T:
        from legato.clock import SystemClock
        from legato.ops import Operations
        from legato.store import open_store

        store = await open_store(ctx.obj["url"], create=False)
        try:
            return await work(Operations(store, SystemClock(), ctx.obj["payload_limit"]))
        finally:
            await store.close()

    return run_coroutine(main())


def parse_age(text: str) -> timedelta:
    """``30d`` -> 30 days (any duration text: ``12h``, ``1d12h``); from 0 up to 100 years."""
    try:
        age = parse_duration(text)
    except ValueError:
        age = None
    if age is None or not timedelta(0) <= age <= _MAX_AGE:
        raise ConfigurationError(
            f"bad age {text!r}: use a number (up to 100 years) and a unit, like 30d, 12h, 90m"
        )
    return age


def default_person() -> str:
    """Who is acting at a terminal when no --by is given."""
    return os.environ.get("LEGATO_USER") or os.environ.get("USER") or "cli"


class JsonArgument(click.ParamType[str, Any]):
    """JSON text given inline, as ``@path`` (a file's content) or ``-`` (standard input).

    Files and stdin lift the limit the operating system puts on a command line (about 128 KiB
    per argument on Linux); what the database accepts is still the payload limit.
    """

    name = "JSON|@FILE|-"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not isinstance(value, str):
            return json.dumps(value)
        if value == "-":
            return sys.stdin.read()
        if value.startswith("@"):
            try:
                return Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                self.fail(f"cannot read {value[1:]!r}: {exc.strerror or exc}", param, ctx)
            except UnicodeDecodeError:
                self.fail(f"{value[1:]!r} is not UTF-8 text", param, ctx)
        return value


JSON_ARGUMENT = JsonArgument()


def app_workflows(ctx: click.Context) -> frozenset[str]:
    """The workflows of the app given with ``--app`` (none without it)."""
    app: App | None = ctx.find_root().obj.get("app")
    return frozenset(app.workflows) if app is not None else frozenset()


#: what commands that check a workflow's name add to "no workflow X has runs"
FORCE_HINT = "; pass --force for a workflow that has no runs yet"
