"""The floor under workload 1: what one commit per step costs in SQLite itself, no engine.

Each "step" is one autocommitted upsert of the shape legato journals a step with (an insert
fenced on the run's owner). Same process and file rules as the other workload scripts.
By hand: ``cd bench && ../.venv/bin/python sqlite_floor.py seq --db /tmp/x/floor.db``.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from measure import emit

SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, owner TEXT, status TEXT);
CREATE TABLE entries (
    run_id TEXT, seq INTEGER, output TEXT, PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO runs VALUES ('r1', 'w1', 'running');
"""
UPSERT = """
INSERT INTO entries (run_id, seq, output) SELECT ?, ?, ?
WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running')
ON CONFLICT (run_id, seq) DO UPDATE SET output = excluded.output
"""


def seq(args: argparse.Namespace) -> dict[str, Any]:
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {args.synchronous}")
    conn.executescript(SCHEMA)
    started = time.perf_counter()
    for i in range(args.steps):
        conn.execute(UPSERT, ("r1", i, str(i + 1), "r1", "w1"))
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "steps": args.steps, "us_per_step": seconds / args.steps * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=["seq"])
    parser.add_argument("--db", type=Path, default=Path("floor.db"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    emit(seq(parser.parse_args()))


if __name__ == "__main__":
    main()
