"""legato's side of each workload. Run by bench/run.py in the project venv, one fresh process
and one fresh database per call; the last line of output is the result as JSON.

By hand: ``cd bench && ../.venv/bin/python legato_workloads.py seq --db /tmp/x/b.db``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import Counters, emit, idle_cpu_percent, kill_hard, proc_status, scalar, stop
from measure import wait_until as wait

import legato

BENCH = Path(__file__).resolve().parent
LEGATO_CLI = str(Path(sys.executable).parent / "legato")


def _chain_app(db: Path, durability: str) -> tuple[legato.App, Any]:
    app = legato.App("bench", f"sqlite:///{db}", durability=durability)

    @app.step()
    async def inc(i: int) -> int:
        return i + 1

    @app.workflow()
    async def chain(ctx: legato.Context, n: int) -> int:
        x = 0
        for _ in range(n):
            x = await inc(x)
        return x

    return app, chain


def seq(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 1: one run of N sequential steps, driven by ``app.run`` in this process."""
    app, chain = _chain_app(args.db, args.durability)
    app.run(chain, 1, run_id="warm-up")
    started = time.perf_counter()
    result = app.run(chain, args.steps, run_id="timed")
    seconds = time.perf_counter() - started
    app.close()
    recorded = scalar(args.db, "SELECT count(*) FROM entries WHERE run_id = 'timed'")
    assert result == args.steps and recorded == args.steps, (result, recorded)
    return {"seconds": seconds, "steps": args.steps, "us_per_step": seconds / args.steps * 1e6}


def concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 2: R runs of S steps, all started at once, executed with concurrency=R."""
    app, chain = _chain_app(args.db, args.durability)

    async def main() -> float:
        await app.run_async(chain, 1, run_id="warm-up")
        started = time.perf_counter()
        await asyncio.gather(
            *(app.start_async(chain, args.per_run, run_id=f"r{i}") for i in range(args.runs))
        )
        await app.run_until_idle_async(concurrency=args.runs)
        seconds = time.perf_counter() - started
        await app.close_async()
        return seconds

    seconds = asyncio.run(main())
    done = scalar(args.db, "SELECT count(*) FROM runs WHERE status = 'completed'")
    assert done == args.runs + 1, done
    steps = args.runs * args.per_run
    return {"seconds": seconds, "steps": steps, "steps_per_s": steps / seconds}


def _worker(db: Path, counters: Path, concurrency: int) -> subprocess.Popen[bytes]:
    """A real ``legato worker`` process on the bench app (bench/legato_apps.py)."""
    env = {**os.environ, "LEGATO_DATABASE_URL": f"sqlite:///{db}", "BENCH_COUNTERS": str(counters)}
    command = f"worker legato_apps:app --concurrency {concurrency} --log-level WARNING"
    return subprocess.Popen([LEGATO_CLI, *command.split()], cwd=BENCH, env=env)


def _use_database(db: Path, counters: Path) -> None:
    os.environ["LEGATO_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["BENCH_COUNTERS"] = str(counters)


def parked(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 3: the RSS of one worker process before and after N runs park for a week."""
    counters = args.db.parent / "counters"
    _use_database(args.db, counters)
    from legato_apps import app
    from legato_apps import parked as parked_wf

    worker = _worker(args.db, counters, args.concurrency)
    try:
        wait(lambda: scalar(args.db, "SELECT count(*) FROM workers") == 1, 30, "the worker")
        time.sleep(2.0)  # let it settle into its idle poll loop
        before = proc_status(worker.pid)

        async def start_all() -> None:
            for first in range(0, args.runs, 1000):
                last = min(first + 1000, args.runs)
                await asyncio.gather(
                    *(app.start_async(parked_wf, i, run_id=f"p{i}") for i in range(first, last))
                )
            await app.close_async()

        started = time.perf_counter()
        asyncio.run(start_all())
        parked_at = wait(
            lambda: (
                scalar(args.db, "SELECT count(*) FROM runs WHERE status = 'waiting'") == args.runs
            ),
            600,
            f"{args.runs} parked runs",
            interval=0.05,
        )
        time.sleep(1.0)
        after = proc_status(worker.pid)
        idle_cpu = idle_cpu_percent(worker.pid, 3.0)
    finally:
        stop(worker)
    growth = after["rss"] - before["rss"]
    return {
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


def restart(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 4: SIGKILL a worker inside step 6 of 10; time a new worker to completion."""
    counters = Counters(args.db.parent / "counters")
    _use_database(args.db, counters.folder)
    from legato_apps import app, ten_steps

    app.start(ten_steps, run_id="r1")
    app.close()
    first = _worker(args.db, counters.folder, 100)
    try:
        wait(lambda: counters.exists("blocked"), 60, "step 6 to begin")
    finally:
        kill_hard(first)
    spawned = time.perf_counter()
    second = _worker(args.db, counters.folder, 100)
    try:
        done = wait(
            lambda: scalar(args.db, "SELECT status FROM runs WHERE run_id = 'r1'") == "completed",
            60,
            "the run to complete",
        )
    finally:
        stop(second)
    counts = [counters.count(f"step{i}") for i in range(1, 11)]
    return {
        "seconds": done - spawned,
        "counts": counts,
        "exactly_once": counts[:5] == [1] * 5 and counts[6:] == [1] * 4,
    }


def imports(args: argparse.Namespace) -> dict[str, Any]:
    """What starting a worker costs before any legato code runs: interpreter + imports."""
    from measure import import_seconds, import_top

    module = "legato, legato.cli.main"
    return {**import_seconds(sys.executable, module), "top": import_top(sys.executable, module)}


WORKLOADS = {
    "seq": seq,
    "concurrent": concurrent,
    "parked": parked,
    "restart": restart,
    "imports": imports,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--db", type=Path, default=Path("bench.db"))
    parser.add_argument("--durability", choices=["normal", "full"], default="normal")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=5, help="steps per run (concurrent)")
    parser.add_argument("--concurrency", type=int, default=1000)
    args = parser.parse_args()
    args.db = args.db.resolve()
    emit(WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
