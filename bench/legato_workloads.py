"""legato's side of each workload. Run by bench/run.py in the project venv, one fresh process
and one fresh database per call; the last line of output is the result as JSON.

By hand: ``cd bench && ../.venv/bin/python legato_workloads.py seq --db /tmp/x/b.db``; on
PostgreSQL ``--url 'postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dx'``
instead of ``--db`` (the schema must exist and be empty; bench/run.py makes one per case).

Per-run latency on PostgreSQL, by hand (not in bench/run.py's report): ``serial --runs 100
--per-run 10 --floor`` (``app.run`` per run) and ``roundtrip --runs 100 --per-run 10``
(``app.start`` + ``handle.result`` here, a ``legato worker`` process executing) report
``ms_per_run``, the run's commit floor measured right after (``floor_ms``) and the ratio
(``x_floor``).
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

from measure import (
    Counters,
    cpu_seconds,
    emit,
    idle_cpu_percent,
    kill_hard,
    proc_status,
    scalar,
    stop,
)
from measure import wait_until as wait

import legato

BENCH = Path(__file__).resolve().parent
LEGATO_CLI = str(Path(sys.executable).parent / "legato")


def _url(args: argparse.Namespace) -> str:
    return str(args.url) if args.url else f"sqlite:///{args.db}"


def _scalar(args: argparse.Namespace, sql: str) -> Any:
    """One value from the case's database (SQLite file or PostgreSQL schema)."""
    if not args.url:
        return scalar(args.db, sql)
    import psycopg

    with psycopg.connect(args.url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _interval(args: argparse.Namespace) -> Any:
    """Client and server cost of the timed section (PostgreSQL only; SQLite: just the clock)."""
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


def _chain_app(args: argparse.Namespace) -> tuple[legato.App, Any]:
    """A workflow of N steps; with ``--step sync`` the step is a plain ``def``, which legato
    runs in a thread (the workflow itself is always ``async def``)."""
    app = legato.App("bench", _url(args), durability=args.durability)

    async def inc_async(i: int) -> int:
        return i + 1

    def inc_sync(i: int) -> int:
        return i + 1

    step = app.step(name="inc")
    inc = step(inc_sync) if args.step == "sync" else step(inc_async)

    @app.workflow()
    async def chain(ctx: legato.Context, n: int) -> int:
        x = 0
        for _ in range(n):
            x = await inc(x)
        return x

    return app, chain


def seq(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 1: one run of N sequential steps, driven by ``app.run`` in this process
    (``async def`` steps, or ``def`` steps with ``--step sync``)."""
    app, chain = _chain_app(args)
    app.run(chain, 1, run_id="warm-up")
    with _interval(args) as span:
        result = app.run(chain, args.steps, run_id="timed")
    app.close()
    recorded = _scalar(args, "SELECT count(*) FROM entries WHERE run_id = 'timed'")
    assert result == args.steps and recorded == args.steps, (result, recorded)
    return {
        "seconds": span.seconds,
        "steps": args.steps,
        "us_per_step": span.seconds / args.steps * 1e6,
        "step": args.step,
        **span.figures(args.steps),
    }


def serial(args: argparse.Namespace) -> dict[str, Any]:
    """R runs of S steps one after another, each driven by ``app.run`` in this process."""
    app, chain = _chain_app(args)
    app.run(chain, 1, run_id="warm-up")
    with _interval(args) as span:
        for i in range(args.runs):
            assert app.run(chain, args.per_run, run_id=f"s{i}") == args.per_run
    app.close()
    done = _scalar(args, "SELECT count(*) FROM runs WHERE status = 'completed'")
    assert done == args.runs + 1, done
    steps = args.runs * args.per_run
    result = {
        "seconds": span.seconds,
        "steps": steps,
        "us_per_step": span.seconds / steps * 1e6,
        "ms_per_run": span.seconds / args.runs * 1e3,
        **span.figures(steps),
    }
    if args.url and args.floor:  # the run's commits alone, measured right after
        result.update(_commit_floor(args))
        result["x_floor"] = result["ms_per_run"] / result["floor_ms"]
    return result


def _commit_floor(args: argparse.Namespace) -> dict[str, Any]:
    """What the commits of one run of ``--per-run`` steps cost the server and the driver alone
    (PostgreSQL): a run commits its creation, its claim, each step and its finish. With
    ``durability=normal`` the steps commit with ``synchronous_commit=off`` and the other three
    as the server says (on); with ``full`` all of them wait for the flush. Each commit is
    priced as bench/pg_floor.py's fenced single-row upsert, measured here and now."""
    import psycopg
    from pg_floor import PLAIN, SCHEMA

    figures: dict[str, float] = {}
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(SCHEMA.replace("runs", "floor_runs").replace("entries", "floor_entries"))
        upsert = PLAIN.replace("runs", "floor_runs").replace("entries", "floor_entries")
        for sync in ("on", "off"):
            conn.execute(f"SET synchronous_commit = {sync}")
            for i in range(-20, 0):
                conn.execute(upsert, ("r1", i, "x", "r1", "w1"))
            started = time.perf_counter()
            for i in range(500):
                conn.execute(upsert, ("r1", i, "x", "r1", "w1"))
            figures[sync] = (time.perf_counter() - started) / 500 * 1e3
        conn.execute("DROP TABLE floor_runs, floor_entries")
    steps = figures["off" if args.durability == "normal" else "on"]
    floor = 3 * figures["on"] + args.per_run * steps
    return {"floor_on_ms": figures["on"], "floor_off_ms": figures["off"], "floor_ms": floor}


def roundtrip(args: argparse.Namespace) -> dict[str, Any]:
    """PostgreSQL: R runs of S steps one after another, each started here and its result
    awaited here (``app.start`` then ``handle.result``), executed by one ``legato worker``
    process: what a request that runs a short workflow waits for (creation, the worker's
    wake-up and claim, the steps, the finish, the wait for the result)."""
    os.environ["LEGATO_DATABASE_URL"] = args.url
    os.environ["BENCH_DURABILITY"] = args.durability  # the worker inherits it
    from legato_apps import app
    from legato_apps import chain as chain_wf

    env = {**os.environ, "LEGATO_DATABASE_URL": args.url}
    command = "worker legato_apps:app --concurrency 10 --log-level WARNING"
    worker = subprocess.Popen([LEGATO_CLI, *command.split()], cwd=BENCH, env=env)
    try:
        wait(
            lambda: _scalar(args, "SELECT count(*) FROM pg_tables WHERE tablename = 'workers'"
                            " AND schemaname = current_schema()") == 1
            and _scalar(args, "SELECT count(*) FROM workers") == 1,
            60, "the worker", interval=0.05,
        )  # fmt: skip
        for i in range(5):  # warm-up: prepared statements on both sides
            assert (
                app.start(chain_wf, args.per_run, run_id=f"w{i}").result(timeout=60) == args.per_run
            )
        times = []
        started = time.perf_counter()
        for i in range(args.runs):
            begun = time.perf_counter()
            handle = app.start(chain_wf, args.per_run, run_id=f"r{i}")
            assert handle.result(timeout=60) == args.per_run
            times.append(time.perf_counter() - begun)
        seconds = time.perf_counter() - started
        app.close()
    finally:
        stop(worker)
    times.sort()
    floor = _commit_floor(args)
    per_run = seconds / args.runs * 1e3
    return {
        "seconds": seconds,
        "steps": args.runs * args.per_run,
        "us_per_step": seconds / (args.runs * args.per_run) * 1e6,
        "ms_per_run": per_run,
        "p50_ms": times[len(times) // 2] * 1e3,
        "p99_ms": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] * 1e3,
        **floor,
        "x_floor": per_run / floor["floor_ms"],
    }


def concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 2: R runs of S steps, all started at once, executed with concurrency=R."""
    app, chain = _chain_app(args)
    steps = args.runs * args.per_run

    async def main() -> tuple[float, dict[str, Any]]:
        await app.run_async(chain, 1, run_id="warm-up")
        with _interval(args) as span:
            await asyncio.gather(
                *(app.start_async(chain, args.per_run, run_id=f"r{i}") for i in range(args.runs))
            )
            await app.run_until_idle_async(concurrency=args.runs)
        await app.close_async()
        return span.seconds, span.figures(steps)

    seconds, figures = asyncio.run(main())
    done = _scalar(args, "SELECT count(*) FROM runs WHERE status = 'completed'")
    assert done == args.runs + 1, done
    return {"seconds": seconds, "steps": steps, "steps_per_s": steps / seconds, **figures}


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


def scaleout(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 4 on PostgreSQL: R runs of S steps are started first (this process, which then
    closes its connections); then K ``legato worker`` processes are spawned together and the
    clock runs from the first spawn until every run is completed (polled every 20 ms). Over
    that interval: the workers' CPU, the whole server's CPU, WAL bytes and write transactions
    (real-time counters); once the workers have exited, commits and WAL syncs (statistics)."""
    from pg import Server, application_name, delta, free_connections

    os.environ["LEGATO_DATABASE_URL"] = args.url
    os.environ["BENCH_DURABILITY"] = args.durability  # the workers inherit it
    from legato_apps import app
    from legato_apps import chain as chain_wf

    needed = 12 * args.workers + 2  # pool 10 + journal + LISTEN per worker; the monitor
    free = free_connections(args.url)
    if free < needed:
        raise SystemExit(f"{args.workers} workers need {needed} connections; {free} are free")

    async def start_all() -> None:
        for first in range(0, args.runs, 1000):
            last = min(first + 1000, args.runs)
            await asyncio.gather(
                *(
                    app.start_async(chain_wf, args.per_run, run_id=f"s{i}")
                    for i in range(first, last)
                )
            )
        await app.close_async()

    asyncio.run(start_all())
    server = Server(args.url)
    name = application_name(args.url)
    marks = {"first": 1, "p10": args.runs // 10, "p90": args.runs * 9 // 10, "all": args.runs}
    seen: dict[str, float] = {}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        server.wait_for_stats()  # the starter's backends flushed their counts at exit
        others = server.others(name)
        before = server.snapshot(stats=True)
        env = {**os.environ, "LEGATO_DATABASE_URL": args.url}
        command = f"worker legato_apps:app --concurrency {args.concurrency} --log-level WARNING"
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [LEGATO_CLI, *command.split()], cwd=BENCH, env=env, stdout=subprocess.DEVNULL
                )
            )
        deadline = time.perf_counter() + 600
        while len(seen) < len(marks):
            done = server.scalar("SELECT count(*) FROM runs WHERE status = 'completed'")
            now = time.perf_counter()
            seen.update({k: now for k, n in marks.items() if k not in seen and done >= n})
            if now > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"{done} of {args.runs} runs completed; gave up")
            time.sleep(0.02)
        after = server.snapshot()
        worker_cpu = [cpu_seconds(w.pid) for w in workers]
        others = max(others, server.others(name))
        for w in workers:
            stop(w)
        server.wait_for_stats()  # the workers' backends flushed theirs at exit
        after.stats = server.stats()
    finally:
        for w in workers:
            stop(w)
        server.close()
    steps = args.runs * args.per_run
    seconds = seen["all"] - before.at
    per_step = delta(before, after, steps)
    server_cpu = per_step.pop("server_cpu_us")
    middle = (marks["p90"] - marks["p10"]) * args.per_run
    return {
        "seconds": seconds,
        "steps": steps,
        "steps_per_s": steps / seconds,
        "steady_steps_per_s": middle / (seen["p90"] - seen["p10"]),
        "workers": args.workers,
        "concurrency": args.concurrency,
        "first_run_s": seen["first"] - before.at,
        "worker_cpu_s": sum(worker_cpu),
        "server_cpu_s": None if server_cpu is None else server_cpu * steps / 1e6,
        "monitor_cpu_s": per_step.pop("client_cpu_us") * steps / 1e6,
        "other_clients": others,
        **per_step,
    }


def imports(args: argparse.Namespace) -> dict[str, Any]:
    """What starting a worker costs before any legato code runs: interpreter + imports."""
    from measure import import_seconds, import_top

    module = "legato, legato.cli.main"
    return {**import_seconds(sys.executable, module), "top": import_top(sys.executable, module)}


# What ``startup --command NAME`` times: commands of bench/import_time.py.
STARTUP = {
    "bare": "python (bare start)",
    "import": "import legato",
    "define": "from legato import App",
    "help": "legato --help",
}


def startup(args: argparse.Namespace) -> dict[str, Any]:
    """Start to exit of a fresh interpreter running one command (best and median of --runs)."""
    from import_time import COMMANDS, measure

    return measure(sys.executable, COMMANDS[STARTUP[args.command]], args.runs)


WORKLOADS = {
    "seq": seq,
    "concurrent": concurrent,
    "parked": parked,
    "restart": restart,
    "imports": imports,
    "serial": serial,
    "scaleout": scaleout,
    "startup": startup,
    "roundtrip": roundtrip,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--db", type=Path, default=Path("bench.db"))
    parser.add_argument("--url", help="a PostgreSQL URL (instead of --db)")
    parser.add_argument("--durability", choices=["normal", "full"], default="normal")
    parser.add_argument("--step", choices=["async", "sync"], default="async", help="step kind")
    parser.add_argument("--command", choices=sorted(STARTUP), default="import", help="startup")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=5, help="steps per run")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (scaleout)")
    parser.add_argument(
        "--floor", action="store_true", help="serial: also measure the run's commit floor"
    )
    args = parser.parse_args()
    args.db = args.db.resolve()
    emit(WORKLOADS[args.workload](args))


if __name__ == "__main__":
    main()
