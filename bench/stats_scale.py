"""How long `legato stats` takes over many runs: the metrics of N finished runs (1,000,000 by
default) are written through the store's own write path (the statements a run's end runs:
``run_metrics`` and the hourly rollup), then each grouping of ``ops.evals.stats`` is timed.

The runs are spread over 30 days, 5 workflows and 20 tenants; each has a step, a tool and a
model call. ``legato stats`` reads the rollup, so its time depends on hours x workflows x
tenants, not on the number of runs.

    .venv/bin/python bench/stats_scale.py --db /tmp/stats.db
    .venv/bin/python bench/stats_scale.py --url 'postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dstats'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import timedelta

from legato.clock import SystemClock
from legato.ops import Operations
from legato.store import open_store
from legato.store.base import RunMetrics, Tally
from legato.store.dialect import Tx
from legato.store.metrics import write_run_metrics

DAY = 86400.0


def _metrics(i: int, now: float, rng: random.Random) -> RunMetrics:
    finished = now - rng.random() * 30 * DAY
    outcome = "completed" if rng.random() < 0.9 else "failed"
    m = RunMetrics(f"run-{i}", f"workflow-{i % 5}", f"tenant-{i % 20}", outcome,
                   finished - rng.random() * 60, finished)  # fmt: skip
    cost = rng.randrange(1_000, 5_000_000)
    m.run.tokens, m.run.cost_nanousd, m.run.calls = 300, cost, 1
    m.op("step", "fetch", outcome).add(Tally(n=1, duration=rng.random()))
    m.op("tool", "send", "completed").add(Tally(n=1, duration=0.1))
    m.op("llm", "openai:gpt-4o-mini", "completed").add(
        Tally(n=1, calls=1, tokens=300, cost_nanousd=cost, duration=0.5)
    )
    return m


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", help="a SQLite file to create")
    parser.add_argument("--url", help="a PostgreSQL URL whose schema is empty")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{args.db}"
    store = await open_store(url)
    now, rng = time.time(), random.Random(7)
    started = time.perf_counter()
    batch = 2000
    for first in range(0, args.runs, batch):
        rows = [_metrics(i, now, rng) for i in range(first, min(first + batch, args.runs))]

        async def work(tx: Tx, rows: list[RunMetrics] = rows) -> None:
            for m in rows:
                await write_run_metrics(tx, m)

        await store._transact(work)  # type: ignore[attr-defined]
    written = time.perf_counter() - started
    ops = Operations(store, SystemClock())
    timings: dict[str, float] = {}
    for by in ("workflow", "tenant", "day", "model", "step", "tool"):
        for since in (None, timedelta(days=7)):
            seconds = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                rows = await ops.evals.stats(by=by, since=since)
                seconds.append(time.perf_counter() - t0)
            key = by + (" --since 7d" if since else "")
            timings[key] = statistics.median(seconds)
    runs = sum(r.tally.n for r in await ops.evals.stats())
    await store.close()
    print(json.dumps({"runs": runs, "write_s": written, "stats_s": timings}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
