"""What recording metrics costs the write path: 1,000 runs x 5 steps on SQLite, started together
(bench/legato_workloads.py's ``concurrent`` workload), with and without the metrics code.

The two sides are two source trees of legato (``--base``: a checkout without metrics, e.g.
``git archive main src | tar -x -C /tmp/base``; ``--branch``: this one), run alternately in
fresh processes, each on a fresh database; the figure is the median over ``--rounds`` of steps
per second of wall time and of process CPU time in the timed section (CPU time is what a busy
machine disturbs least), and the best round of each.

    .venv/bin/python bench/metrics_overhead.py --base /tmp/base/src --rounds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(db: str, runs: int, per_run: int) -> None:
    import legato

    app = legato.App("bench", f"sqlite:///{db}")

    @app.step
    async def inc(i: int) -> int:
        return i + 1

    @app.workflow
    async def chain(ctx: legato.Context, n: int) -> int:
        total = 0
        for i in range(n):
            total = await inc(i)
        return total

    async def main() -> tuple[float, float]:
        await app.run_async(chain, 1, run_id="warm-up")
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(
            *(app.start_async(chain, per_run, run_id=f"r{i}") for i in range(runs))
        )
        await app.run_until_idle_async(concurrency=runs)
        return time.perf_counter() - wall, time.process_time() - cpu

    wall, cpu = asyncio.run(main())
    steps = runs * per_run
    print(json.dumps({"wall_steps_per_s": steps / wall, "cpu_steps_per_s": steps / cpu}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="src folder of legato without metrics")
    parser.add_argument("--branch", default=str(HERE.parent / "src"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--per-run", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.per_run)
        return
    results: dict[str, list[dict[str, float]]] = {"base": [], "branch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for side in ("base", "branch") if i % 2 == 0 else ("branch", "base"):
                db = f"{tmp}/{side}-{i}.db"
                env = dict(os.environ, PYTHONPATH=getattr(args, side))
                out = subprocess.run(
                    [sys.executable, __file__, "--base", "-", "--child", db,
                     "--runs", str(args.runs), "--per-run", str(args.per_run)],
                    env=env, check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                results[side].append(json.loads(out.strip().splitlines()[-1]))
    report: dict[str, dict[str, float]] = {}
    for side, rows in results.items():
        for key in ("wall_steps_per_s", "cpu_steps_per_s"):
            values = [r[key] for r in rows]
            report.setdefault(side, {})[f"median_{key}"] = statistics.median(values)
            report[side][f"best_{key}"] = max(values)
    report["overhead"] = {
        stat: 1 - report["branch"][stat] / report["base"][stat] for stat in report["base"]
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
