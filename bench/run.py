"""Run every benchmark workload for legato and its peers, print the figures, write the report.

    make bench                          # full run (about 6 min), rewrites docs/benchmarks.md
    .venv/bin/python bench/run.py --quick      # smaller smoke run, 1 repetition, no report
    .venv/bin/python bench/run.py --no-peers   # legato only

Each measurement is a fresh process with a fresh database in a new temporary folder; each case
runs 3 times (rounds interleave the systems, so disk drift hits them alike) and the median is
reported. legato runs in the project venv; DBOS and LangGraph run in bench/.venv-peers, which
this script creates and fills from PyPI when it is missing. Raw samples go to
bench/out/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from report import KEY, fmt, render, summary_table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
PEER_PACKAGES = ["dbos==3.4.0", "langgraph==1.2.22", "langgraph-checkpoint-sqlite==3.1.2"]
# Reported in docs/benchmarks.md with their installed versions.
PEER_DISTRIBUTIONS = [
    "dbos", "SQLAlchemy", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
    "aiosqlite",
]  # fmt: skip
REPORT = ROOT / "docs" / "benchmarks.md"
OUT = BENCH / "out"
CASE_TIMEOUT = 300.0
RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Case:
    workload: str
    system: str  # legato, DBOS, LangGraph, or SQLite (the floor)
    label: str  # what distinguishes it in the tables
    argv: list[str]
    repeats: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def median(self) -> dict[str, Any] | None:
        """The sample whose key figure is the median (the middle run, not a mix of runs)."""
        if not self.samples:
            return None
        key, _ = KEY[self.workload]
        ordered = sorted(self.samples, key=lambda s: s[key])
        return ordered[(len(ordered) - 1) // 2]


def ensure_peers() -> str | None:
    """Create bench/.venv-peers with the pinned peers if needed; return why not, or None."""
    check = "import dbos, langgraph.graph, langgraph.checkpoint.sqlite"
    if PEERS_PYTHON.exists() and _ok([str(PEERS_PYTHON), "-c", check]):
        return None
    print(f"setting up {PEERS_VENV} with {' '.join(PEER_PACKAGES)} ...", flush=True)
    try:
        if not PEERS_PYTHON.exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(PEERS_VENV)
        pip = [str(PEERS_PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, *PEER_PACKAGES], check=True, capture_output=True, text=True, timeout=900
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        return f"pip install {' '.join(PEER_PACKAGES)} failed: {' | '.join(tail)}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not create {PEERS_VENV}: {exc}"
    if not _ok([str(PEERS_PYTHON), "-c", check]):
        return f"{PEERS_VENV} was created but `{check}` fails in it"
    return None


def _ok(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def build_cases(quick: bool, peers: bool, repeats: int) -> list[Case]:
    steps, runs, parked, parked_peer = (200, 200, 2000, 300) if quick else (1000, 1000, 10000, 2000)
    n, r = f"--steps {steps}", f"--runs {runs}"
    # workload, system, configuration, arguments of the system's workload script
    table = [
        ("seq", "legato", "durability=normal", f"seq {n}"),
        ("seq", "legato", "durability=full", f"seq {n} --durability full"),
        ("seq", "DBOS", "default (rollback journal, FULL)", f"seq {n}"),
        ("seq", "DBOS", "tuned (WAL, NORMAL)", f"seq {n} --tuned"),
        ("seq", "LangGraph", "graph API, durability=sync", f"seq {n}"),
        ("seq", "LangGraph", "functional API, durability=sync", f"seq {n} --api functional"),
        ("seq", "SQLite", "floor: 1 upsert + commit, WAL, NORMAL", f"seq {n}"),
        ("seq", "SQLite", "floor: 1 upsert + commit, WAL, FULL", f"seq {n} --synchronous FULL"),
        ("concurrent", "legato", "durability=normal", f"concurrent {r}"),
        ("concurrent", "legato", "durability=full", f"concurrent {r} --durability full"),
        ("concurrent", "DBOS", "default, a thread per workflow", f"concurrent {r} --mode threads"),
        ("concurrent", "DBOS", "tuned, a thread per workflow",
         f"concurrent {r} --mode threads --tuned"),
        ("concurrent", "DBOS", "tuned, async workflows on one loop",
         f"concurrent {r} --mode async --tuned"),
        ("concurrent", "LangGraph", "graph API, async, durability=sync", f"concurrent {r}"),
        ("parked", "legato", "worker --concurrency 1000",
         f"parked --runs {parked} --concurrency 1000"),
        ("parked", "legato", "worker --concurrency 1000, twice the runs",
         f"parked --runs {2 * parked} --concurrency 1000"),
        ("parked", "legato", "worker --concurrency 100 (default)",
         f"parked --runs {parked} --concurrency 100"),
        ("parked", "DBOS", "DBOS.sleep, tuned", f"parked --runs {parked_peer} --tuned"),
        ("parked", "LangGraph", "interrupt()", f"parked --runs {parked_peer}"),
        ("restart", "legato", "legato worker", "restart"),
        ("restart", "DBOS", "default, recovery at launch", "restart"),
        ("restart", "LangGraph", "graph API, invoke(None)", "restart"),
        ("imports", "legato", "import legato, legato.cli.main", "imports"),
        ("imports", "DBOS", "import dbos", "imports"),
        ("imports", "LangGraph", "import langgraph.graph, langgraph.checkpoint.sqlite", "imports"),
    ]  # fmt: skip
    programs = {
        "legato": [sys.executable, "legato_workloads.py"],
        "SQLite": [sys.executable, "sqlite_floor.py"],
        "DBOS": [str(PEERS_PYTHON), "-m", "peers.dbos_workloads"],
        "LangGraph": [str(PEERS_PYTHON), "-m", "peers.langgraph_workloads"],
    }
    return [
        Case(workload, system, label, [*programs[system], *arguments.split()],
             1 if workload == "imports" or "twice" in label else repeats)
        for workload, system, label, arguments in table
        if peers or system in ("legato", "SQLite")
    ]  # fmt: skip


def run_once(case: Case) -> None:
    folder = Path(tempfile.mkdtemp(prefix="legato-bench-"))
    command = [*case.argv, "--db", str(folder / "bench.db")]
    started = time.perf_counter()
    # Its own session, so that a timeout also ends the worker processes it started.
    proc = subprocess.Popen(
        command, cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        _end_session(proc.pid)
        proc.communicate()
        case.errors.append(f"timed out after {CASE_TIMEOUT:g}s")
        print(f"  {case.system} {case.workload} [{case.label}] TIMED OUT", flush=True)
        return
    finally:
        _end_session(proc.pid)  # a worker left behind by a failed workload script
        shutil.rmtree(folder, ignore_errors=True)
    lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        case.errors.append(f"exit {proc.returncode}: {tail}")
        print(f"  {case.system} {case.workload} [{case.label}] FAILED: {tail}", flush=True)
        return
    sample = json.loads(lines[-1][len(RESULT_PREFIX) :])
    case.samples.append(sample)
    key, _ = KEY[case.workload]
    shown = (
        f"{sample[key]:.3f} s" if case.workload == "imports" else fmt(case.workload, sample[key])
    )
    took = time.perf_counter() - started
    print(f"  {case.system:9} {case.label:45} {shown:>16}  ({took:.1f}s)", flush=True)


def _end_session(pid: int) -> None:
    """SIGKILL what is left of the session a workload script led (nothing, normally)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_all(cases: list[Case]) -> None:
    """Rounds interleave the systems within a workload, so drift in disk speed hits all."""
    for workload in KEY:
        group = [c for c in cases if c.workload == workload]
        for rnd in range(max((c.repeats for c in group), default=0)):
            print(f"{workload}: round {rnd + 1}", flush=True)
            for case in group:
                if rnd < case.repeats:
                    run_once(case)


def machine(peers_reason: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "memory": _first("/proc/meminfo", "MemTotal"),
        "kernel": os.uname().release,
        "filesystem": _filesystem(tempfile.gettempdir()),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "legato": _versions(sys.executable, ["legato", "pydantic"]),
        "peers_skipped": peers_reason,
    }
    if peers_reason is None:
        info["peers"] = _versions(str(PEERS_PYTHON), PEER_DISTRIBUTIONS)
    return info


def _source() -> str:
    """The legato commit measured, and whether src/ had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (
        " + uncommitted changes in src/" if git("status", "--porcelain", "src") else ""
    )


def _loadavg() -> float:
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


def _first(path: str, key: str) -> str:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _filesystem(path: str) -> str:
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True, check=False).stdout
    rows = out.splitlines()
    return f"{rows[1].split()[1]} ({path})" if len(rows) > 1 else "unknown"


_VERSIONS = """
import json, platform, sqlite3, sys
from importlib.metadata import version
found = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
print(json.dumps({**found, **{name: version(name) for name in sys.argv[1:]}}))
"""


def _versions(python: str, packages: list[str]) -> dict[str, str]:
    out = subprocess.run(
        [python, "-c", _VERSIONS, *packages], capture_output=True, text=True, check=True
    )
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 1 repetition")
    parser.add_argument("--no-peers", action="store_true", help="measure legato only")
    parser.add_argument("--repeats", type=int, default=None, help="runs per case (default 3)")
    write = parser.add_mutually_exclusive_group()
    write.add_argument(
        "--write", action="store_true", help="write docs/benchmarks.md (default for a full run)"
    )
    write.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    command = shlex.join(["bench/run.py", *sys.argv[1:]])

    started = time.perf_counter()
    load, source = _loadavg(), _source()
    if load > 0.5:
        print(f"warning: the load average is {load:.2f}: other work will skew the figures")
    peers_reason = "--no-peers was given" if args.no_peers else ensure_peers()
    if peers_reason and not args.no_peers:
        print(f"peers skipped: {peers_reason}", flush=True)
    cases = build_cases(args.quick, peers_reason is None, repeats)
    run_all(cases)
    elapsed = time.perf_counter() - started

    info = machine(peers_reason)
    info["load"] = f"{load:.2f} (1-minute load average when the run began)"
    if _source() != source:
        source += f", then {_source()} by the end of the run"
    info["source"] = source
    OUT.mkdir(exist_ok=True)
    results = {
        "command": command,
        "quick": args.quick,
        "repeats": repeats,
        "seconds": elapsed,
        "machine": info,
        "cases": [asdict(c) for c in cases],
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(summary_table(cases))
    print(f"\nall done in {elapsed:.0f}s; raw samples in {OUT / 'results.json'}")
    if args.write or (not args.quick and not args.no_write):
        REPORT.write_text(render(cases, info, command, repeats, elapsed))
        print(f"wrote {REPORT}")
    if any(c.errors for c in cases):
        sys.exit(1)


if __name__ == "__main__":
    main()
