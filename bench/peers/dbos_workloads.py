"""DBOS's side of each workload (DBOS Transact, SQLite or PostgreSQL system database).

Run by bench/run.py in bench/.venv-peers with the bench folder as working directory, one fresh
process and database per call; the last line of output is the result as JSON. By hand:
``cd bench && .venv-peers/bin/python -m peers.dbos_workloads seq --db /tmp/x/dbos.db``, or
with ``--url postgresql://postgres@127.0.0.1:5432/dbos_bench_x`` (a database of its own:
DBOS creates it if missing and puts its tables in its ``dbos`` schema).

``--tuned`` puts the file in WAL mode with ``synchronous=NORMAL`` (legato's own settings);
without it DBOS keeps SQLite's defaults (rollback journal, ``synchronous=FULL``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID
from measure import Counters, emit, idle_cpu_percent, kill_hard, proc_status, scalar, stop
from measure import wait_until as wait

WEEK = 7 * 24 * 3600.0
_counters: Counters | None = None


@DBOS.step()
def inc(i: int) -> int:
    return i + 1


@DBOS.workflow()
def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


@DBOS.step()
async def inc_async(i: int) -> int:
    return i + 1


@DBOS.workflow()
async def chain_async(n: int) -> int:
    x = 0
    for _ in range(n):
        x = await inc_async(x)
    return x


@DBOS.workflow()
def parked_wf(i: int) -> int:
    x = inc(i)
    DBOS.sleep(WEEK)
    return x


@DBOS.step()
def counted(i: int) -> int:
    assert _counters is not None
    _counters.hit(f"step{i}")
    if i == 6 and not _counters.exists("blocked"):
        _counters.hit("blocked")
        time.sleep(60)
    return i


@DBOS.workflow()
def ten_steps() -> int:
    total = 0
    for i in range(1, 11):
        total += counted(i)
    return total


def _tune() -> None:
    """WAL + synchronous=NORMAL on every connection DBOS opens."""

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def _launch(args: argparse.Namespace) -> None:
    if args.tuned and not args.url:
        _tune()
    url = args.url or f"sqlite:///{args.db}"
    DBOS(config={"name": "bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()


def _journal_mode(args: argparse.Namespace) -> str:
    if args.url:
        return "PostgreSQL"
    return str(scalar(args.db, "PRAGMA journal_mode"))


def _interval(args: argparse.Namespace) -> Any:
    """Client and server cost of the timed section on PostgreSQL (SQLite: just the clock)."""
    if args.url:
        from pg import Interval

        return Interval(args.url)
    return _Clock()


class _Clock:
    def __enter__(self) -> _Clock:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started

    def figures(self, steps: int) -> dict[str, Any]:
        return {}


def seq(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 1: one workflow of N sequential steps, called in this process."""
    _launch(args)
    chain(1)
    with _interval(args) as span:
        result = chain(args.steps)
    assert result == args.steps
    return {
        "seconds": span.seconds,
        "steps": args.steps,
        "us_per_step": span.seconds / args.steps * 1e6,
        "journal_mode": _journal_mode(args),
        **span.figures(args.steps),
    }


def serial(args: argparse.Namespace) -> dict[str, Any]:
    """R workflows of S steps one after another, each a direct call in this process."""
    _launch(args)
    chain(1)
    with _interval(args) as span:
        for _ in range(args.runs):
            assert chain(args.per_run) == args.per_run
    steps = args.runs * args.per_run
    return {
        "seconds": span.seconds,
        "steps": steps,
        "us_per_step": span.seconds / steps * 1e6,
        "ms_per_run": span.seconds / args.runs * 1e3,
        **span.figures(steps),
    }


def concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 2: R workflows of S steps started together in this process.

    ``--mode async`` awaits R async workflows with asyncio.gather on one event loop;
    ``--mode threads`` starts R sync workflows with DBOS.start_workflow (a thread each).
    """
    _launch(args)
    chain(1)
    steps = args.runs * args.per_run
    if args.mode == "async":

        async def main() -> tuple[float, dict[str, Any]]:
            await chain_async(1)
            with _interval(args) as span:
                results = await asyncio.gather(
                    *(chain_async(args.per_run) for _ in range(args.runs))
                )
            assert results == [args.per_run] * args.runs
            return span.seconds, span.figures(steps)

        seconds, figures = asyncio.run(main())
    else:
        with _interval(args) as span:
            handles = [DBOS.start_workflow(chain, args.per_run) for _ in range(args.runs)]
            assert [h.get_result() for h in handles] == [args.per_run] * args.runs
        seconds, figures = span.seconds, span.figures(steps)
    return {
        "seconds": seconds,
        "steps": steps,
        "steps_per_s": steps / seconds,
        "mode": args.mode,
        **figures,
    }


def parked(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 3: RSS of this process before and after N workflows sleep for a week.

    DBOS holds a sleeping sync workflow in its thread: the process is its own worker.
    """
    _launch(args)
    chain(1)
    time.sleep(2.0)
    before = proc_status()
    started = time.perf_counter()
    for i in range(args.runs):
        DBOS.start_workflow(parked_wf, i)
    sleeping = "SELECT count(*) FROM operation_outputs WHERE function_name = 'DBOS.sleep'"
    parked_at = wait(
        lambda: scalar(args.db, sleeping) == args.runs, 600, "the workflows to sleep", 0.05
    )
    time.sleep(1.0)
    after = proc_status()
    idle_cpu = idle_cpu_percent("self", 3.0)
    growth = after["rss"] - before["rss"]
    result = {
        "runs": args.runs,
        "rss_before": before["rss"],
        "rss_after": after["rss"],
        "rss_growth": growth,
        "bytes_per_run": growth / args.runs,
        "hwm": after["hwm"],
        "threads": after["threads"],
        "seconds_to_park": parked_at - started,
        "idle_cpu_percent": idle_cpu,
    }
    emit(result)
    os._exit(0)  # the sleeping workflow threads would keep a normal exit waiting for a week


def _child(args: argparse.Namespace, phase: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "peers.dbos_workloads", "restart-child", "--db", str(args.db)]
    if args.tuned:
        command.append("--tuned")
    return subprocess.Popen([*command, "--phase", phase], cwd=Path(__file__).parents[1])


def restart(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 4: SIGKILL the process inside step 6 of 10; time a new one to completion."""
    counters = Counters(args.db.parent / "counters")
    first = _child(args, "start")
    try:
        wait(lambda: counters.exists("blocked"), 120, "step 6 to begin")
    finally:
        kill_hard(first)
    spawned = time.perf_counter()
    second = _child(args, "recover")
    sql = "SELECT status FROM workflow_status WHERE workflow_uuid = 'r1'"
    try:
        done = wait(lambda: scalar(args.db, sql) == "SUCCESS", 120, "the workflow to succeed")
    finally:
        stop(second)
    counts = [counters.count(f"step{i}") for i in range(1, 11)]
    return {
        "seconds": done - spawned,
        "counts": counts,
        "exactly_once": counts[:5] == [1] * 5 and counts[6:] == [1] * 4,
    }


def restart_child(args: argparse.Namespace) -> None:
    """A process of workload 4: start the workflow, or just launch (which recovers it)."""
    global _counters  # noqa: PLW0603 - the step body reads it; set once per process
    _counters = Counters(args.db.parent / "counters")
    _launch(args)
    if args.phase == "start":
        with SetWorkflowID("r1"):
            ten_steps()
    threading.Event().wait()  # DBOS recovers pending workflows in the background at launch


def imports(args: argparse.Namespace) -> dict[str, Any]:
    from measure import import_seconds, import_top

    return {**import_seconds(sys.executable, "dbos"), "top": import_top(sys.executable, "dbos")}


# What ``startup --command NAME`` times (python's arguments): ``import dbos`` is also what
# defining a workflow needs (``from dbos import DBOS``).
STARTUP = {"bare": ["-c", "pass"], "import": ["-c", "import dbos"]}


def startup(args: argparse.Namespace) -> dict[str, Any]:
    """Start to exit of a fresh interpreter running one command (best and median of --runs)."""
    from import_time import measure

    return measure(sys.executable, STARTUP[args.command], args.runs)


WORKLOADS = {
    "seq": seq,
    "concurrent": concurrent,
    "parked": parked,
    "restart": restart,
    "imports": imports,
    "serial": serial,
    "startup": startup,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=[*sorted(WORKLOADS), "restart-child"])
    parser.add_argument("--db", type=Path, default=Path("dbos.db"))
    parser.add_argument("--url", help="a PostgreSQL system database URL (instead of --db)")
    parser.add_argument("--tuned", action="store_true", help="WAL + synchronous=NORMAL")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=5, help="steps per run")
    parser.add_argument("--mode", choices=["async", "threads"], default="async")
    parser.add_argument("--phase", choices=["start", "recover"], default="start")
    parser.add_argument("--command", choices=sorted(STARTUP), default="import", help="startup")
    args = parser.parse_args()
    args.db = args.db.resolve()
    if args.workload == "restart-child":
        restart_child(args)
    else:
        emit(WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
