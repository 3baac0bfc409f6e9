"""Takeover latency: SIGKILL worker processes again and again; how soon do their runs move on?

    cd bench && ../.venv/bin/python takeover.py --backend postgres --kills 100
    cd bench && ../.venv/bin/python takeover.py --backend sqlite --kills 100
    cd bench && ../.venv/bin/python takeover.py --backend postgres --hosts separate

``--workers`` (3) ``legato worker legato_apps:app`` processes run ``storm`` runs: each step logs
its start (run, step, pid, wall time) and takes ``--step-ms``. A feeder keeps ``--in-flight``
runs going, well under the workers' capacity, so a run that is free is claimed at once. Every
0.3-1 s the script picks a worker that holds runs, notes which, SIGKILLs it and, ``--respawn``
seconds later (2), spawns a replacement: the survivors take over, not a worker that starts
(which would find the dead one at once). A held run's takeover latency is the time from the
kill to the first start of one of its steps by another process; the figures are percentiles
over all the runs the killed workers held.

Each worker runs in a session of its own (``start_new_session``). With ``--hosts separate``
each also has a host identity of its own (``LEGATO_HOST_IDENTITY``), so no worker may judge
another by its process id, as on separate machines: only the database (PostgreSQL: the dead
worker's session) or the lease (``--lease``) can tell. The last line is the result as JSON
(``BENCH-RESULT {...}``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pg
from measure import emit, kill_hard, stop

BENCH = Path(__file__).resolve().parent
LEGATO_CLI = str(Path(sys.executable).parent / "legato")


class Database:
    """The case's database: a fresh SQLite file or a fresh PostgreSQL schema."""

    def __init__(self, backend: str, pg_url: str, folder: Path) -> None:
        self.backend = backend
        self.schema: str | None = None
        if backend == "sqlite":
            self.url = f"sqlite:///{folder / 'bench.db'}"
        else:
            self.schema = pg.create_schema(pg_url)
            self.url = pg.schema_url(pg_url, self.schema)
        self.pg_url = pg_url

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)
            try:
                return conn.execute(query, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            try:
                return conn.execute(query.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
            except psycopg.errors.UndefinedTable:
                return []

    def drop(self) -> None:
        if self.schema is not None:
            pg.drop_schema(self.pg_url, self.schema)


class Workers:
    def __init__(self, args: argparse.Namespace, db: Database, folder: Path) -> None:
        self.args, self.db, self.folder = args, db, folder
        self.live: list[subprocess.Popen[bytes]] = []
        self.spawned = 0

    def spawn(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "LEGATO_DATABASE_URL": self.db.url,
            "BENCH_COUNTERS": str(self.folder),
            "STORM_STEP_MS": str(self.args.step_ms),
        }
        if self.args.hosts == "separate":
            env["LEGATO_HOST_IDENTITY"] = f"machine-{self.spawned}"
        self.spawned += 1
        command = [LEGATO_CLI, "worker", "legato_apps:app", "--concurrency",
                   str(self.args.concurrency), "--lease", str(self.args.lease),
                   "--log-level", self.args.log_level]  # fmt: skip
        log = open(self.folder / f"worker-{self.spawned}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            command, cwd=BENCH, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.live.append(proc)
        return proc

    def registered(self, proc: subprocess.Popen[bytes]) -> bool:
        return bool(self.db.rows("SELECT 1 FROM workers WHERE pid = ?", (proc.pid,)))

    def held(self, proc: subprocess.Popen[bytes]) -> list[str]:
        return [r[0] for r in self.db.rows(
            "SELECT r.run_id FROM runs r JOIN workers w ON w.worker_id = r.owner"
            " WHERE w.pid = ? AND r.status = 'running'", (proc.pid,))]  # fmt: skip

    def stop_all(self) -> None:
        for proc in self.live:
            stop(proc)


def feed(db: Database, args: argparse.Namespace, done: threading.Event) -> None:
    """Keep ``--in-flight`` runs going (started from this process)."""
    os.environ["LEGATO_DATABASE_URL"] = db.url
    from legato_apps import app, storm

    async def main() -> None:
        started = 0
        while not done.is_set():
            active = db.rows("SELECT count(*) FROM runs WHERE status IN ('pending', 'running')")
            missing = args.in_flight - (int(active[0][0]) if active else 0)
            for _ in range(max(0, missing)):
                await app.start_async(storm, args.steps, run_id=f"s{started:06d}")
                started += 1
            await asyncio.sleep(0.05)
        await app.close_async()

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def storm(args: argparse.Namespace, db: Database, folder: Path) -> dict[str, Any]:
    workers = Workers(args, db, folder)
    for _ in range(args.workers):
        workers.spawn()
    done = threading.Event()
    feeder = threading.Thread(target=feed, args=(db, args, done), daemon=True)
    kills: list[tuple[float, int, list[str]]] = []
    rng = random.Random(args.seed)
    try:
        deadline = time.monotonic() + 60
        while not all(workers.registered(p) for p in workers.live):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not register within 60 s")
            time.sleep(0.05)
        feeder.start()
        time.sleep(2.0)
        while len(kills) < args.kills:
            time.sleep(rng.uniform(0.3, 1.0))
            candidates = [p for p in workers.live if workers.registered(p) and workers.held(p)]
            if not candidates:
                continue
            victim = rng.choice(candidates)
            held = workers.held(victim)
            at = time.time()
            kill_hard(victim)
            workers.live.remove(victim)
            kills.append((at, victim.pid, held))
            time.sleep(args.respawn)
            workers.spawn()
        time.sleep(max(3.0, args.lease * 1.5 if args.hosts == "separate" else 3.0))
    finally:
        done.set()
        if feeder.is_alive():
            feeder.join(timeout=30)
        workers.stop_all()
    if args.keep:
        with open(folder / "kills.txt", "w") as f:
            for at, pid, held in kills:
                f.write(f"{at:.6f} {pid} {' '.join(held)}\n")
    return analyse(folder / "steps.log", kills, args)


def analyse(
    log: Path, kills: list[tuple[float, int, list[str]]], args: argparse.Namespace
) -> dict[str, Any]:
    starts: dict[str, list[tuple[float, int]]] = {}
    for line in log.read_text().splitlines():
        run_id, _step, pid, at = line.split()
        starts.setdefault(run_id, []).append((float(at), int(pid)))
    for steps in starts.values():
        steps.sort()
    latencies: list[float] = []
    finished = 0  # held runs with no step left to run after the kill
    for at, pid, held in kills:
        for run_id in held:
            after = [t for t, p in starts.get(run_id, []) if t > at and p != pid]
            if after:
                latencies.append(after[0] - at)
            else:
                finished += 1
    if not latencies:
        raise SystemExit("no run was taken over")
    return {
        "backend": args.backend,
        "hosts": args.hosts,
        "kills": len(kills),
        "runs_taken_over": len(latencies),
        "runs_without_a_next_step": finished,
        "p50_s": statistics.median(latencies),
        "p90_s": percentile(latencies, 0.90),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies),
        "lease_s": args.lease,
        "respawn_s": args.respawn,
        "load_at_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", pg.DEFAULT_URL))
    parser.add_argument("--hosts", choices=["same", "separate"], default="same")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20, help="steps per run")
    parser.add_argument("--step-ms", type=float, default=50.0)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--respawn", type=float, default=2.0, help="seconds before a replacement")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="legato-takeover-"))
    db = Database(args.backend, args.pg_url, folder)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        result = storm(args, db, folder)
    finally:
        db.drop()
        if args.keep:
            print(f"logs in {folder}")
    emit(result)


if __name__ == "__main__":
    main()
