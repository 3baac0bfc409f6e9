"""Side-effect counters that survive the process: one line appended per step execution.

Appends of a short line with O_APPEND are atomic, so several worker processes can share a file.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path


def counter_file() -> Path:
    return Path(os.environ["LEGATO_TEST_DIR"]) / "executions.log"


def record(*parts: object) -> None:
    line = " ".join(str(p) for p in parts) + f" {os.getpid()}\n"
    fd = os.open(counter_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def executions(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def counts(path: Path) -> Counter[tuple[str, ...]]:
    """How often each (run, step) executed, from the log lines (pid dropped)."""
    return Counter(tuple(parts[:-1]) for parts in executions(path))
