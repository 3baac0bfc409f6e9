"""LangGraph's side of each workload (SqliteSaver / AsyncSqliteSaver checkpointers, or with
``--url`` PostgresSaver / AsyncPostgresSaver from langgraph-checkpoint-postgres).

Run by bench/run.py in bench/.venv-peers with the bench folder as working directory, one fresh
process and database per call; the last line of output is the result as JSON. By hand:
``cd bench && .venv-peers/bin/python -m peers.langgraph_workloads seq --db /tmp/x/lg.db``, or
``--url 'postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dx'`` (an existing,
empty schema: the saver creates its tables there).

A durable step is one node execution of the graph API, checkpointed before the next superstep
(``durability="sync"``). The graph API is the one that kept exactly-once recording after a
SIGKILL in research/peers.md; ``--api functional`` (``@task`` in an ``@entrypoint``) is offered
for workload 1 as well. The savers put the file in WAL mode and keep ``synchronous=FULL``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

import aiosqlite
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from measure import Counters, emit, idle_cpu_percent, kill_hard, proc_status, stop
from measure import wait_until as wait


class Chain(TypedDict):
    x: int
    n: int


class Total(TypedDict):
    total: int


def _inc(state: Chain) -> dict[str, int]:
    return {"x": state["x"] + 1}


def _chain_graph(saver: Any) -> Any:
    """One node that loops on itself until x == n: one superstep (checkpoint) per step."""
    builder = StateGraph(Chain)
    builder.add_node("inc", _inc)
    builder.add_edge(START, "inc")
    builder.add_conditional_edges("inc", lambda s: "inc" if s["x"] < s["n"] else END)
    return builder.compile(checkpointer=saver)


def _config(thread: str, steps: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": steps + 10}


def _saver(db: Path, url: str | None = None) -> Any:
    if url:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        # What PostgresSaver.from_conn_string opens, kept open for the whole process.
        conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        pg_saver = PostgresSaver(conn)
        pg_saver.setup()
        return pg_saver
    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    saver.setup()
    return saver


def _journal_mode(saver: Any) -> str:
    if not isinstance(saver, SqliteSaver):
        return "PostgreSQL"
    mode = saver.conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = saver.conn.execute("PRAGMA synchronous").fetchone()[0]
    return f"{mode}, synchronous={sync}"


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
    """Workload 1: one thread of N sequential steps."""
    saver = _saver(args.db, args.url)
    if args.api == "graph":
        graph = _chain_graph(saver)

        def run(thread: str, n: int) -> int:
            out = graph.invoke({"x": 0, "n": n}, _config(thread, n), durability="sync")
            return int(out["x"])
    else:

        @task
        def inc(i: int) -> int:
            return i + 1

        @entrypoint(checkpointer=saver)
        def chain(n: int) -> int:
            x = 0
            for _ in range(n):
                x = inc(x).result()
            return x

        def run(thread: str, n: int) -> int:
            return int(chain.invoke(n, _config(thread, n), durability="sync"))

    run("warm-up", 1)
    with _interval(args) as span:
        result = run("timed", args.steps)
    assert result == args.steps
    return {
        "seconds": span.seconds,
        "steps": args.steps,
        "us_per_step": span.seconds / args.steps * 1e6,
        "api": args.api,
        "journal_mode": _journal_mode(saver),
        **span.figures(args.steps),
    }


def serial(args: argparse.Namespace) -> dict[str, Any]:
    """R threads of S steps one after another (graph API, ``invoke`` each)."""
    graph = _chain_graph(_saver(args.db, args.url))
    graph.invoke({"x": 0, "n": 1}, _config("warm-up", 1), durability="sync")
    with _interval(args) as span:
        for i in range(args.runs):
            config = _config(f"s{i}", args.per_run)
            out = graph.invoke({"x": 0, "n": args.per_run}, config, durability="sync")
            assert out["x"] == args.per_run
    steps = args.runs * args.per_run
    return {
        "seconds": span.seconds,
        "steps": steps,
        "us_per_step": span.seconds / steps * 1e6,
        "ms_per_run": span.seconds / args.runs * 1e3,
        **span.figures(steps),
    }


def concurrent(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 2: R threads of S steps started together with asyncio.gather.

    On PostgreSQL the AsyncPostgresSaver gets a pool of ``--pool`` connections (0: one
    connection, what ``from_conn_string`` gives)."""
    steps = args.runs * args.per_run

    async def timed(graph: Any) -> tuple[float, dict[str, Any]]:
        await graph.ainvoke({"x": 0, "n": 1}, _config("warm-up", 1), durability="sync")
        with _interval(args) as span:
            outs = await asyncio.gather(
                *(
                    graph.ainvoke(
                        {"x": 0, "n": args.per_run},
                        _config(f"t{i}", args.per_run),
                        durability="sync",
                    )
                    for i in range(args.runs)
                )
            )
        assert [o["x"] for o in outs] == [args.per_run] * args.runs
        return span.seconds, span.figures(steps)

    async def sqlite() -> tuple[float, dict[str, Any]]:
        async with aiosqlite.connect(args.db) as conn:
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            return await timed(_chain_graph(saver))

    async def postgres() -> tuple[float, dict[str, Any]]:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        if args.pool == 0:
            async with AsyncPostgresSaver.from_conn_string(args.url) as saver:
                await saver.setup()
                return await timed(_chain_graph(saver))
        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(
            args.url, min_size=args.pool, max_size=args.pool, kwargs=kwargs, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            return await timed(_chain_graph(saver))

    seconds, figures = asyncio.run(postgres() if args.url else sqlite())
    return {"seconds": seconds, "steps": steps, "steps_per_s": steps / seconds, **figures}


def _work(state: Chain) -> dict[str, int]:
    return {"x": state["x"] + 1}


def _wait(state: Chain) -> dict[str, int]:
    interrupt("resume in a week")
    return {}


def parked(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 3: RSS of this process before and after N threads stop at an interrupt.

    LangGraph has no durable timer: an interrupt() ends the invocation and the thread waits
    in its checkpoint until someone resumes it. The nearest equivalent of a parked run.
    """
    builder = StateGraph(Chain)
    builder.add_node("work", _work)
    builder.add_node("wait", _wait)
    builder.add_edge(START, "work")
    builder.add_edge("work", "wait")
    builder.add_edge("wait", END)
    graph = builder.compile(checkpointer=_saver(args.db))
    graph.invoke({"x": 0, "n": 0}, _config("warm-up", 2), durability="sync")
    time.sleep(2.0)
    before = proc_status()
    started = time.perf_counter()
    for i in range(args.runs):
        out = graph.invoke({"x": i, "n": 0}, _config(f"p{i}", 2), durability="sync")
        assert "__interrupt__" in out
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    after = proc_status()
    growth = after["rss"] - before["rss"]
    return {
        "runs": args.runs,
        "rss_before": before["rss"],
        "rss_after": after["rss"],
        "rss_growth": growth,
        "bytes_per_run": growth / args.runs,
        "hwm": after["hwm"],
        "threads": after["threads"],
        "seconds_to_park": seconds,
        "idle_cpu_percent": idle_cpu_percent("self", 3.0),
    }


_counters: Counters | None = None


def _counted(i: int) -> Any:
    def node(state: Total) -> dict[str, int]:
        assert _counters is not None
        _counters.hit(f"step{i}")
        if i == 6 and not _counters.exists("blocked"):
            _counters.hit("blocked")
            time.sleep(60)
        return {"total": state["total"] + i}

    return node


def _ten_steps(saver: SqliteSaver) -> Any:
    builder = StateGraph(Total)
    previous = START
    for i in range(1, 11):
        builder.add_node(f"s{i}", _counted(i))
        builder.add_edge(previous, f"s{i}")
        previous = f"s{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


def _child(args: argparse.Namespace, phase: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peers.langgraph_workloads",
            "restart-child",
            "--db",
            str(args.db),
            "--phase",
            phase,
        ],
        cwd=Path(__file__).parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )


def restart(args: argparse.Namespace) -> dict[str, Any]:
    """Workload 4: SIGKILL the process inside step 6 of 10; time a new one to completion.

    LangGraph has no worker: the new process resumes the thread with ``invoke(None)`` and
    prints ``DONE`` when it returns.
    """
    counters = Counters(args.db.parent / "counters")
    first = _child(args, "start")
    try:
        wait(lambda: counters.exists("blocked"), 120, "step 6 to begin")
    finally:
        kill_hard(first)
    spawned = time.perf_counter()
    second = _child(args, "recover")
    try:
        assert second.stdout is not None
        line = second.stdout.readline()
        done = time.perf_counter()
        assert line.strip() == "DONE 55", line
    finally:
        stop(second)
    counts = [counters.count(f"step{i}") for i in range(1, 11)]
    return {
        "seconds": done - spawned,
        "counts": counts,
        "exactly_once": counts[:5] == [1] * 5 and counts[6:] == [1] * 4,
    }


def restart_child(args: argparse.Namespace) -> None:
    """A process of workload 4: start the thread, or resume it from its last checkpoint."""
    global _counters  # noqa: PLW0603 - the node bodies read it; set once per process
    _counters = Counters(args.db.parent / "counters")
    graph = _ten_steps(_saver(args.db))
    config = _config("r1", 10)
    out = graph.invoke({"total": 0} if args.phase == "start" else None, config, durability="sync")
    print(f"DONE {out['total']}", flush=True)


def imports(args: argparse.Namespace) -> dict[str, Any]:
    from measure import import_seconds, import_top

    module = "langgraph.graph, langgraph.checkpoint.sqlite"
    return {**import_seconds(sys.executable, module), "top": import_top(sys.executable, module)}


# What ``startup --command NAME`` times (python's arguments): the package, what defining a
# functional-API workflow needs, and that plus the SQLite checkpointer that makes it durable.
DEFINE = "from langgraph.func import entrypoint, task"
STARTUP = {
    "bare": ["-c", "pass"],
    "import": ["-c", "import langgraph"],
    "define": ["-c", DEFINE],
    "durable": ["-c", f"{DEFINE}; from langgraph.checkpoint.sqlite import SqliteSaver"],
}


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
    parser.add_argument("--db", type=Path, default=Path("langgraph.db"))
    parser.add_argument("--url", help="a PostgreSQL URL (instead of --db)")
    parser.add_argument("--pool", type=int, default=10, help="PostgreSQL connections (concurrent)")
    parser.add_argument("--api", choices=["graph", "functional"], default="graph")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=5, help="steps per run")
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
