"""How commands print: rich tables for people, JSON for scripts.

At a terminal, tables fit its width (long cells fold, long details are cut). When stdout is
not a terminal (a pipe, a file), nothing is wrapped or cut: each row is one line, whole, so
``grep`` and ``cut`` see what the database holds. ``--json`` prints one object for one thing and
one object per line for lists (shapes in :mod:`legato.ops.shapes`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from legato.timestamps import format_timestamp

if TYPE_CHECKING:  # rich is imported when a table is printed: `legato --help` need not pay
    from rich.console import Console
    from rich.text import Text

_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "waiting": "yellow",
    "running": "cyan",
    "pending": "blue",
    "paused": "yellow",
    "retrying": "yellow",
}
T = TypeVar("T")
#: wide enough that no row of a piped table is ever wrapped
_UNBOUNDED = 1_000_000


def piped() -> bool:
    return not sys.stdout.isatty()


def console() -> Console:
    from rich.console import Console

    if piped():
        return Console(width=_UNBOUNDED, soft_wrap=True, highlight=False)
    return Console(highlight=False)


class Rows:
    """A borderless table, built when printed. Columns in ``keep`` hold ids people copy into
    the next command: they are never folded or cut, even at a narrow terminal."""

    def __init__(self, *columns: str, keep: Iterable[str] = (), right: Iterable[str] = ()):
        self.columns = columns
        self.keep = set(keep)
        self.right = set(right)
        self.rows: list[tuple[tuple[str | Text, ...], str | None]] = []

    def add(self, *cells: str | Text, style: str | None = None) -> None:
        self.rows.append((cells, style))

    def print(self) -> None:
        from rich.table import Table

        out = Table(box=None, header_style="bold")
        for i, col in enumerate(self.columns):
            widest = max((len(cells[i]) for cells, _ in self.rows), default=0)
            kept = col in self.keep
            out.add_column(
                col,
                overflow="fold",
                no_wrap=kept,
                min_width=widest if kept else None,
                justify="right" if col in self.right else "left",
            )
        for cells, style in self.rows:
            out.add_row(*cells, style=style)
        shown = console()
        if not piped():
            shown.print(out)
            return
        with shown.capture() as captured:
            shown.print(out)
        for line in captured.get().splitlines():
            click.echo(line.rstrip())


def cut(text: str, width: int) -> str:
    """``text`` shortened to ``width`` at a terminal; whole when piped."""
    if piped() or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def plain(text: str | None) -> Text:
    """A cell of user data: shown as written, never read as rich markup."""
    from rich.text import Text

    return Text("-" if text is None else text)


def styled(status: str) -> Text:
    from rich.text import Text

    return Text(status, style=_STATUS_STYLE.get(status, ""))


def when(ts: float | None) -> str:
    return "-" if ts is None else format_timestamp(ts, "text")


def emit(document: dict[str, Any]) -> None:
    """One JSON object on one line."""
    click.echo(json.dumps(document, default=str))


def listed(
    items: Sequence[T], as_json: bool, document: Callable[[T], dict[str, Any]], empty: str
) -> bool:
    """Print ``items`` as JSON lines with ``--json``, or ``empty`` when there are none; False
    when the caller has a table (or lines) to print."""
    if as_json:
        for item in items:
            emit(document(item))
        return True
    if not items:
        click.echo(empty)
        return True
    return False
