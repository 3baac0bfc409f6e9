"""What every workload script shares: reading /proc, counting side effects, killing a process
tree cleanly, and handing one result back to bench/run.py.

Standard library only: it is imported by the legato scripts (project venv) and by the peer
scripts (bench/.venv-peers) alike.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH-RESULT "
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def emit(result: dict[str, Any]) -> None:
    """Print the one line bench/run.py reads back (everything else on stdout is ignored)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM in bytes, and the thread count, of a process."""
    wanted = {"VmRSS": "rss", "VmHWM": "hwm", "Threads": "threads"}
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in wanted:
                number = int(value.split()[0])
                out[wanted[key]] = number * 1024 if value.strip().endswith("kB") else number
    return out


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def idle_cpu_percent(pid: int | str = "self", seconds: float = 3.0) -> float:
    """Share of one core a process uses over ``seconds`` (call it while the process idles)."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - before) / seconds


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.001
) -> float:
    """Poll ``check`` until it is true; return when (perf_counter); raise after ``timeout``."""
    deadline = time.perf_counter() + timeout
    while True:
        if check():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def scalar(db: Path, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One value from a SQLite file, read on a short-lived connection (None if absent)."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(sql, params).fetchone()
    except sqlite3.Error:  # tables not created yet, or a writer holds a lock for a moment
        return None
    finally:
        conn.close()
    return None if row is None else row[0]


class Counters:
    """Side-effect counters in files: a step body appends one byte each time it really runs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def hit(self, name: str) -> None:
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)

    def count(self, name: str) -> int:
        path = self.folder / name
        return path.stat().st_size if path.exists() else 0

    def exists(self, name: str) -> bool:
        return (self.folder / name).exists()


def kill_hard(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a process and reap it, so its pid is really gone before we go on."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM a process we started, and SIGKILL it if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_hard(proc)


def import_seconds(python: str, module: str, repeats: int = 5) -> dict[str, Any]:
    """Median time to import ``module`` in a fresh interpreter (timed inside it, so process
    teardown is left out), and median wall time of a bare ``python -c pass``."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    imports, bare = [], []
    for _ in range(repeats):
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        imports.append(float(out.stdout))
        started = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    return {
        "interpreter_s": sorted(bare)[repeats // 2],
        "import_s": sorted(imports)[repeats // 2],
        "module": module,
    }


def import_top(python: str, module: str, count: int = 8) -> list[tuple[str, float]]:
    """Import time by top-level package (``-X importtime`` self times summed), largest first."""
    err = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    totals: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        root = name.strip().split(".")[0]
        totals[root] = totals.get(root, 0.0) + int(self_us) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:count]
