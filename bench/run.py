"""Run every benchmark workload for legato and its peers, print the figures, write the report.

    make bench                          # full run (about 15 min), rewrites docs/benchmarks.md
    .venv/bin/python bench/run.py --quick      # smaller smoke run, 1 repetition, no report
    .venv/bin/python bench/run.py --no-peers   # legato only
    .venv/bin/python bench/run.py --only postgres   # one backend (no report unless --write)
    .venv/bin/python bench/run.py --from-results    # rewrite the report from the last run

Each measurement is a fresh process with a fresh database: on SQLite a file in a new temporary
folder, on PostgreSQL a new schema (``bench_<random>``; DBOS: a new database
``dbos_bench_<random>``) that is dropped afterwards. Each case runs 3 times (rounds interleave
the systems, so disk drift hits them alike) and the median is reported. legato runs in the
project venv; DBOS and LangGraph run in bench/.venv-peers, which this script creates and fills
from PyPI when it is missing. Raw samples go to bench/out/results.json.

PostgreSQL: ``--pg-url`` (default ``$BENCH_PG_URL``, else postgres@127.0.0.1:5432/test). The
server is only used, never reconfigured; when it cannot be reached, its part is skipped and
the report says why.
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

import pg
from report import (
    FULL,
    KEY,
    NORMAL,
    OFF,
    ON,
    QUIET_BUDGET,
    QUIET_BUSY,
    QUIET_SAMPLE,
    QUIET_WAIT,
    fmt,
    render,
    summary_table,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"
PEER_PACKAGES = [
    "dbos==3.4.0", "langgraph==1.2.22", "langgraph-checkpoint-sqlite==3.1.2",
    "langgraph-checkpoint-postgres==3.2.0", "psycopg[binary]==3.3.9", "psycopg-pool==3.3.3",
]  # fmt: skip
# Reported in docs/benchmarks.md with their installed versions.
PEER_DISTRIBUTIONS = [
    "dbos", "SQLAlchemy", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
    "aiosqlite", "langgraph-checkpoint-postgres", "psycopg", "psycopg-pool",
]  # fmt: skip
REPORT = ROOT / "docs" / "benchmarks.md"
OUT = BENCH / "out"
CASE_TIMEOUT = 300.0
RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Case:
    workload: str  # a key of report.KEY; PostgreSQL workloads start with "pg-"
    system: str  # legato, DBOS, LangGraph, or SQLite / PostgreSQL (the floor)
    label: str  # what distinguishes it in the tables
    argv: list[str]
    repeats: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # PostgreSQL cases: a fresh "schema" or (DBOS) "database" each run, and the session's
    # synchronous_commit when it is not the server's default.
    pg: str = ""
    synchronous_commit: str | None = None

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
    check = (
        "import dbos, langgraph.graph, langgraph.checkpoint.sqlite, langgraph.checkpoint.postgres,"
        " psycopg_pool"
    )
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


def build_cases(
    quick: bool, peers: bool, repeats: int, sqlite: bool = True, postgres: bool = True
) -> list[Case]:
    cases = []
    if sqlite:
        cases += _sqlite_cases(quick, peers, repeats)
    if postgres:
        cases += _postgres_cases(quick, peers, repeats)
    return cases


def _programs() -> dict[str, list[str]]:
    return {
        "legato": [sys.executable, "legato_workloads.py"],
        "SQLite": [sys.executable, "sqlite_floor.py"],
        "PostgreSQL": [sys.executable, "pg_floor.py"],
        "DBOS": [str(PEERS_PYTHON), "-m", "peers.dbos_workloads"],
        "LangGraph": [str(PEERS_PYTHON), "-m", "peers.langgraph_workloads"],
    }


def _sqlite_cases(quick: bool, peers: bool, repeats: int) -> list[Case]:
    steps, runs, parked, parked_peer = (200, 200, 2000, 300) if quick else (1000, 1000, 10000, 2000)
    n, r, k = f"--steps {steps}", f"--runs {runs}", f"--runs {3 if quick else 10}"
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
        ("seq-sync", "legato", "durability=normal", f"seq {n} --step sync"),
        ("seq-sync", "legato", "durability=full", f"seq {n} --step sync --durability full"),
        ("seq-sync", "DBOS", "default (rollback journal, FULL)", f"seq {n}"),
        ("seq-sync", "DBOS", "tuned (WAL, NORMAL)", f"seq {n} --tuned"),
        ("seq-sync", "LangGraph", "graph API, durability=sync", f"seq {n}"),
        ("seq-sync", "LangGraph", "functional API, durability=sync", f"seq {n} --api functional"),
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
        ("startup", "legato", "python (bare start)", f"startup --command bare {k}"),
        ("startup", "legato", "import legato", f"startup --command import {k}"),
        ("startup", "legato", "legato --help", f"startup --command help {k}"),
        ("startup", "legato", "from legato import App", f"startup --command define {k}"),
        ("startup", "DBOS", "python (bare start)", f"startup --command bare {k}"),
        ("startup", "DBOS", "import dbos", f"startup --command import {k}"),
        ("startup", "LangGraph", "python (bare start)", f"startup --command bare {k}"),
        ("startup", "LangGraph", "import langgraph", f"startup --command import {k}"),
        ("startup", "LangGraph", "functional API", f"startup --command define {k}"),
        ("startup", "LangGraph", "functional API + SQLite checkpointer",
         f"startup --command durable {k}"),
    ]  # fmt: skip
    programs = _programs()
    # One repetition of the start-up cases: each measures `k` fresh interpreters itself.
    once = ("imports", "startup")
    return [
        Case(workload, system, label, [*programs[system], *arguments.split()],
             1 if workload in once or "twice" in label else repeats)
        for workload, system, label, arguments in table
        if peers or system in ("legato", "SQLite")
    ]  # fmt: skip


def _postgres_cases(quick: bool, peers: bool, repeats: int) -> list[Case]:
    steps, serial, runs, scale = (200, 20, 200, 1000) if quick else (1000, 100, 1000, 4000)
    n, s, r = f"--steps {steps}", f"--runs {serial} --per-run 10", f"--runs {runs} --per-run 5"
    out = f"scaleout --runs {scale} --per-run 5 --concurrency 250"
    # workload, system, configuration, arguments, synchronous_commit (None: server default).
    # legato's own durability setting decides its synchronous_commit (see the report).
    table = [
        ("pg-seq", "legato", NORMAL, f"seq {n}", None),
        ("pg-seq", "legato", FULL, f"seq {n} --durability full", None),
        ("pg-seq", "DBOS", "default (psycopg, SQLAlchemy pool)", f"seq {n}", None),
        ("pg-seq", "DBOS", f"default, {OFF}", f"seq {n}", "off"),
        ("pg-seq", "LangGraph", "graph API, PostgresSaver, durability=sync", f"seq {n}", None),
        ("pg-seq", "LangGraph", f"graph API, PostgresSaver, durability=sync, {OFF}", f"seq {n}",
         "off"),
        ("pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {ON}", f"seq {n}", None),
        ("pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {OFF}", f"seq {n}", "off"),
        ("pg-seq", "PostgreSQL", f"floor: legato's statement, {ON}",
         f"seq {n} --statement legato", None),
        ("pg-seq", "PostgreSQL", f"floor: legato's statement, {OFF}",
         f"seq {n} --statement legato", "off"),
        ("pg-seq-sync", "legato", NORMAL, f"seq {n} --step sync", None),
        ("pg-seq-sync", "legato", FULL, f"seq {n} --step sync --durability full", None),
        ("pg-seq-sync", "DBOS", "default (psycopg, SQLAlchemy pool)", f"seq {n}", None),
        ("pg-seq-sync", "DBOS", f"default, {OFF}", f"seq {n}", "off"),
        ("pg-seq-sync", "LangGraph", "graph API, PostgresSaver, durability=sync", f"seq {n}",
         None),
        ("pg-seq-sync", "LangGraph", f"graph API, PostgresSaver, durability=sync, {OFF}",
         f"seq {n}", "off"),
        ("pg-serial", "legato", NORMAL, f"serial {s}", None),
        ("pg-serial", "legato", FULL, f"serial {s} --durability full", None),
        ("pg-serial", "DBOS", "default, direct calls", f"serial {s}", None),
        ("pg-serial", "LangGraph", "graph API, PostgresSaver, durability=sync", f"serial {s}",
         None),
        ("pg-concurrent", "legato", NORMAL, f"concurrent {r}", None),
        ("pg-concurrent", "legato", FULL, f"concurrent {r} --durability full", None),
        ("pg-concurrent", "DBOS", "default, a thread per workflow",
         f"concurrent {r} --mode threads", None),
        ("pg-concurrent", "LangGraph", "graph API, AsyncPostgresSaver, one connection",
         f"concurrent {r} --pool 0", None),
        ("pg-scaleout", "legato", "1 worker process", f"{out} --workers 1", None),
        ("pg-scaleout", "legato", "2 worker processes", f"{out} --workers 2", None),
        ("pg-scaleout", "legato", "4 worker processes", f"{out} --workers 4", None),
        ("pg-scaleout", "legato", f"4 worker processes, {FULL}",
         f"{out} --workers 4 --durability full", None),
    ]  # fmt: skip
    programs = _programs()
    return [
        Case(workload, system, label, [*programs[system], *arguments.split()], repeats,
             pg="database" if system == "DBOS" else "schema", synchronous_commit=sync)
        for workload, system, label, arguments, sync in table
        if peers or system in ("legato", "PostgreSQL")
    ]  # fmt: skip


class Quiet:
    """Waits for a quiet machine before each repetition, within a budget for the whole run."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.left = QUIET_BUDGET

    def wait(self, postgres: bool) -> dict[str, Any]:
        waited = 0.0
        while True:
            busy = pg.busy_share(QUIET_SAMPLE)
            others = pg.other_clients(self.pg_url) if postgres else 0
            if (busy < QUIET_BUSY and not others) or waited >= min(QUIET_WAIT, self.left):
                break
            time.sleep(0.5)
            waited += 0.5 + QUIET_SAMPLE
        self.left = max(0.0, self.left - waited)
        out = {"busy_before": busy, "waited_s": waited}
        return {**out, "other_clients_at_start": others} if postgres else out


def run_once(case: Case, pg_url: str, quiet: Quiet) -> None:
    folder = Path(tempfile.mkdtemp(prefix="legato-bench-"))
    command = [*case.argv, "--db", str(folder / "bench.db")]
    cleanup, before = None, {}
    try:
        before = quiet.wait(bool(case.pg))
    except Exception as exc:  # the server went away: the case will say so below
        print(f"  (could not check for other work: {exc})")
    if case.pg:
        try:
            command, cleanup = _postgres(case, pg_url)
        except Exception as exc:  # the server went away (or refused): this repetition fails
            shutil.rmtree(folder, ignore_errors=True)
            _failed(case, f"could not prepare PostgreSQL: {str(exc).strip().splitlines()[0]}")
            return
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
        if cleanup is not None:
            try:
                cleanup()
            except Exception as exc:
                print(f"  (could not drop the case's PostgreSQL schema/database: {exc})")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        _failed(case, f"exit {proc.returncode}: {tail}")
        return
    sample = {**json.loads(lines[-1][len(RESULT_PREFIX) :]), **before}
    case.samples.append(sample)
    key, _ = KEY[case.workload]
    shown = (
        f"{sample[key]:.3f} s" if case.workload == "imports" else fmt(case.workload, sample[key])
    )
    took = time.perf_counter() - started
    print(f"  {case.system:10} {case.label:55} {shown:>16}  ({took:.1f}s)", flush=True)


def _failed(case: Case, why: str) -> None:
    case.errors.append(why)
    print(f"  {case.system} {case.workload} [{case.label}] FAILED: {why}", flush=True)


def _postgres(case: Case, base: str) -> tuple[list[str], Any]:
    """The case's command with ``--url`` of a fresh schema (or database), and its cleanup."""
    if case.pg == "database":
        name = pg.create_database(base, case.synchronous_commit)
        url = pg.with_params(base, database=name)
        return [*case.argv, "--url", url], lambda: pg.drop_database(base, name)
    name = pg.create_schema(base)
    url = pg.schema_url(base, name, case.synchronous_commit)
    return [*case.argv, "--url", url], lambda: pg.drop_schema(base, name)


def _end_session(pid: int) -> None:
    """SIGKILL what is left of the session a workload script led (nothing, normally)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_all(cases: list[Case], pg_url: str) -> None:
    """Rounds interleave the systems within a workload, so drift in disk speed hits all."""
    quiet = Quiet(pg_url)
    for workload in KEY:
        group = [c for c in cases if c.workload == workload]
        for rnd in range(max((c.repeats for c in group), default=0)):
            print(f"{workload}: round {rnd + 1}", flush=True)
            for case in group:
                if rnd < case.repeats:
                    run_once(case, pg_url, quiet)


def _server_before(url: str) -> dict[str, Any]:
    """The server's settings and state when the run begins, or why it cannot be used."""
    reason = pg.unreachable(url)
    if reason is not None:
        return {"skipped": reason}
    try:
        info: dict[str, Any] = pg.server_info(url)
        info["others_at_start"] = pg.other_clients(url)
    except Exception as exc:
        return {"skipped": f"{pg.redact(url)}: {str(exc).strip().splitlines()[0]}"}
    return info


def _server_after(url: str, before: dict[str, Any]) -> dict[str, Any]:
    """Whether the server restarted during the run (someone else's doing: the run never
    restarts it), and the other clients connected at the end."""
    try:
        info = pg.server_info(url)
    except Exception as exc:
        return {"after": f"unreachable at the end of the run: {exc}"}
    restarted = info["started"] != before["started"]
    return {"restarted": restarted, "started_at_end": info["started"],
            "others_at_end": pg.other_clients(url)}  # fmt: skip


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


def rerender() -> None:
    """The report of the last run again (after a change to report.py): same figures."""
    saved = json.loads((OUT / "results.json").read_text())
    cases = [Case(**c) for c in saved["cases"]]
    info, command = saved["machine"], saved["command"]
    REPORT.write_text(render(cases, info, command, saved["repeats"], saved["seconds"]))
    print(f"wrote {REPORT} from {OUT / 'results.json'} ({command}, {info['date']})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 1 repetition")
    parser.add_argument("--no-peers", action="store_true", help="measure legato only")
    parser.add_argument("--repeats", type=int, default=None, help="runs per case (default 3)")
    parser.add_argument(
        "--only", choices=["sqlite", "postgres"], help="measure one backend (default: both)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", pg.DEFAULT_URL),
        help="PostgreSQL server to use (default $BENCH_PG_URL, else %(default)s)",
    )
    write = parser.add_mutually_exclusive_group()
    write.add_argument(
        "--write",
        action="store_true",
        help="write docs/benchmarks.md (default for a full run of both backends)",
    )
    write.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="measure nothing: rewrite docs/benchmarks.md from bench/out/results.json",
    )
    args = parser.parse_args()
    if args.from_results:
        rerender()
        return
    repeats = args.repeats or (1 if args.quick else 3)
    command = shlex.join(["bench/run.py", *sys.argv[1:]])

    started = time.perf_counter()
    load, source = _loadavg(), _source()
    if load > 0.5:
        print(f"warning: the load average is {load:.2f}: other work will skew the figures")
    peers_reason = "--no-peers was given" if args.no_peers else ensure_peers()
    if peers_reason and not args.no_peers:
        print(f"peers skipped: {peers_reason}", flush=True)
    sqlite, postgres = args.only in (None, "sqlite"), args.only in (None, "postgres")
    server: dict[str, Any] = {"url": pg.redact(args.pg_url)}
    if postgres:
        server.update(_server_before(args.pg_url))
        if server.get("skipped"):
            print(f"PostgreSQL skipped: {server['skipped']}", flush=True)
    else:
        server["skipped"] = "--only sqlite was given"
    cases = build_cases(
        args.quick, peers_reason is None, repeats, sqlite, postgres and not server.get("skipped")
    )
    run_all(cases, args.pg_url)
    elapsed = time.perf_counter() - started

    info = machine(peers_reason)
    info["load"] = f"{load:.2f} (1-minute load average when the run began)"
    if _source() != source:
        source += f", then {_source()} by the end of the run"
    info["source"] = source
    if not server.get("skipped"):
        server.update(_server_after(args.pg_url, server))
    info["postgres"] = server
    info["backends"] = [b for b, on in (("sqlite", sqlite), ("postgres", postgres)) if on]
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
    if args.write or (not args.quick and not args.no_write and args.only is None):
        REPORT.write_text(render(cases, info, command, repeats, elapsed))
        print(f"wrote {REPORT}")
    if any(c.errors for c in cases):
        sys.exit(1)


if __name__ == "__main__":
    main()
