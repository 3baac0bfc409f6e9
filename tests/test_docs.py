"""The documentation's examples run as written: every fenced block of README.md and
docs/howto/*.md marked ``<!-- runnable -->`` is executed, in order, one folder per document, on
both backends. The rules are in CONTRIBUTING.md ("Runnable documentation")."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

MARK = "<!-- runnable -->"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs" / "howto").glob("*.md"))]
_FILE = re.compile(r"#\s*([\w.-]+\.\w+)")


@dataclass(frozen=True)
class Block:
    where: str  # README.md:52, for messages
    lang: str
    text: str


def runnable_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        assert fence.startswith("```"), f"{path.name}:{i + 1}: {MARK} must precede a fenced block"
        end = next(k for k in range(i + 2, len(lines)) if lines[k].startswith("```"))
        text = "\n".join(lines[i + 2 : end]) + "\n"
        found.append(Block(f"{path.relative_to(ROOT)}:{i + 2}", fence[3:].strip(), text))
    return found


DOCUMENTED = [p for p in DOCUMENTS if runnable_blocks(p)]


def test_the_docs_have_runnable_examples() -> None:
    assert {p.name for p in DOCUMENTED} >= {"README.md", "events.md"}


class _Folder:
    """One document's folder: its files, its environment and its background workers."""

    def __init__(self, folder: Path, db_url: str) -> None:
        self.folder = folder
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "LEGATO_DATABASE_URL": db_url,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(folder),
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self.tests = 0

    def run(self, block: Block) -> None:
        first = block.text.splitlines()[0] if block.text.strip() else ""
        if saved := _FILE.fullmatch(first.strip()):
            (self.folder / saved[1]).write_text(block.text)
        elif block.lang == "python" and re.search(r"^def test_", block.text, re.M):
            self.tests += 1
            name = f"test_doc_{self.tests}.py"
            (self.folder / name).write_text(block.text)
            self.check(block, f"{sys.executable} -m pytest -q -p no:cacheprovider {name}")
        elif block.lang == "python":
            self.check(block, f"{sys.executable} -", stdin=block.text)
        elif block.lang == "sh":
            for line in block.text.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    self.check(block, line)
        elif block.lang == "console":
            for command, expected in _console(block.text):
                out = self.check(block, command)
                pattern = re.escape(expected).replace(re.escape("..."), ".*?")
                assert re.fullmatch(pattern, out, re.S), (
                    f"{block.where}: `{command}` printed\n{out}\nnot\n{expected}"
                )
        else:
            raise AssertionError(f"{block.where}: cannot run a {block.lang!r} block")

    def check(self, block: Block, command: str, stdin: str | None = None) -> str:
        if command.split()[:2] == ["legato", "worker"]:  # runs until the document is done
            self.workers.append(
                subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=self.folder,
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            return ""
        proc = subprocess.run(
            ["bash", "-c", command], cwd=self.folder, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (
            f"{block.where}: `{command}` failed:\n{proc.stdout}{proc.stderr}"
        )
        return proc.stdout

    def close(self) -> None:
        for worker in self.workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)


def _console(text: str) -> Iterator[tuple[str, str]]:
    """``$ command`` lines and the output that follows each."""
    command: str | None = None
    output: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, "".join(output)
            command, output = line[2:], []
        else:
            output.append(line + "\n")
    if command is not None:
        yield command, "".join(output)


@pytest.mark.parametrize("document", DOCUMENTED, ids=lambda p: p.name)
def test_runnable_examples_run_as_written(document: Path, db_url: str, tmp_path: Path) -> None:
    folder = _Folder(tmp_path, db_url)
    try:
        for block in runnable_blocks(document):
            folder.run(block)
    finally:
        folder.close()


def test_the_docs_name_every_migration_and_the_latest_schema_version() -> None:
    """The migrations table of the configuration reference lists the shipped migrations, and
    every "schema version N" that means this legato's names the latest one."""
    from legato.store.migrations import migrations

    shipped = [(version, name) for version, name, _ in migrations("sqlite")]
    latest = shipped[-1][0]
    reference = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    table = re.findall(r"^\| (\d+) \| `(\w+)` \|", reference, re.M)
    assert [(int(v), n) for v, n in table] == shipped
    for path in [*DOCUMENTS, *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text()
        for claimed in re.findall(r"is at schema version (\d+)|this legato knows \((\d+)\)", text):
            number = int(claimed[0] or claimed[1])
            assert number == latest, f"{path.relative_to(ROOT)} says schema version {number}"
