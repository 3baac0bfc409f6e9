"""docs/reference/cli.md stays true: every command, option and JSON shape of the real `legato`
is documented there, and everything documented there exists."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import click
import pytest

import legato
from legato.cli.main import cli
from tests.conftest import ROOT
from tests.test_cli_scripting import LONG_ID, _review_app, ok

REFERENCE = (ROOT / "docs" / "reference" / "cli.md").read_text()
README = (ROOT / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command a user can run: leaves, and groups that do something on their own."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield path, command
            yield from _commands(command, path + " ")
        else:
            yield path, command


COMMANDS = dict(_commands(cli))


def _section(heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", REFERENCE, re.M | re.S)
    assert match is not None, f"docs/reference/cli.md has no section '## {heading}'"
    return match[1]


def _documented(section: str, opt: str) -> bool:
    return re.search(rf"`{re.escape(opt)}(?:[ `=\[]|$)", section) is not None


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_each_command_and_option_is_documented(path: str) -> None:
    command = COMMANDS[path]
    section = _section(f"`legato {path}`")
    assert f"[`{path}`](#legato-{path.replace(' ', '-')})" in REFERENCE  # the table at the top
    assert f"`legato {path}" in README, f"README's CLI table lacks legato {path}"
    for param in command.params:
        if isinstance(param, click.Argument):
            assert (param.metavar or param.name or "").upper() in section, param.name
            continue
        for opt in [*param.opts, *param.secondary_opts]:
            assert _documented(section, opt), f"legato {path}: {opt} is not documented"


def test_only_real_commands_and_global_options_are_documented() -> None:
    headings = re.findall(r"^## `legato ([a-z ]+)`", REFERENCE, re.M)
    assert sorted(headings) == sorted(COMMANDS)
    section = _section("Global options")
    for param in cli.params:
        for opt in param.opts:
            assert _documented(section, opt), f"global option {opt} is not documented"


def _keys(section: str) -> list[list[str]]:
    """The keys of each JSON example (a line that is a JSON object) of a section."""
    return [list(json.loads(line)) for line in section.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_documented_json_shapes_are_the_printed_ones(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = _review_app(make_app)
    app.start("refund", 40, run_id=LONG_ID)
    app.run_until_idle()
    [pending] = [json.loads(line) for line in ok(db_url, "approvals", "--json").splitlines()]
    ok(db_url, "approve", pending["id"], "--by", "ann")
    ok(db_url, "autonomy", "set", "agent", "1", "--reason", "trial", "--force")
    ok(db_url, "pause", "refund")
    app.run_until_idle()

    def printed(*args: str) -> list[str]:
        return list(json.loads(ok(db_url, *args, "--json").splitlines()[0]))

    shown = json.loads(ok(db_url, "show", LONG_ID, "--json"))
    [run_keys] = _keys(_section("`legato runs`"))
    assert run_keys == printed("runs")
    [show_keys] = _keys(_section("`legato show`"))
    assert show_keys == list(shown)
    example = next(
        json.loads(line) for line in _section("`legato show`").splitlines() if line[:1] == "{"
    )
    assert list(example["entries"][0]) == list(shown["entries"][0])
    assert _keys(_section("`legato approvals`")) == [printed("approvals", "-s", "all")]
    assert _keys(_section("`legato audit`")) == [printed("audit")]
    assert _keys(_section("`legato autonomy`")) == [printed("autonomy")]
    assert _keys(_section("`legato pause`")) == [printed("pause")]
    costs = printed("costs")
    for keys in _keys(_section("`legato costs`")):  # the first key is the grouping's name
        assert keys[1:] == costs[1:]
