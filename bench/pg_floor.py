"""The floor under the PostgreSQL workload 1: what one durable write per step costs the server
and the driver alone, no engine. Each "step" is one autocommitted single-row upsert fenced on
the run's owner (the shape of legato's journal write), sent with psycopg's sync API, so the
figure is one round trip plus one commit (and, with ``synchronous_commit=on``, one WAL flush).

``--statement legato`` sends legato's own journal statement instead, taken from the installed
legato (``legato.store.postgres._UPSERT_ONE``, the fenced single-row upsert its store sends for
a batch of one entry) against the tables legato's migrations create: it separates what the
statement costs the server from what the Python around it costs. By hand:
``cd bench && ../.venv/bin/python pg_floor.py seq --url 'postgresql://...?options=-csearch_path%3Dx'``
(the schema must exist and be empty).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import psycopg
from measure import emit
from pg import Interval

SCHEMA = """
CREATE TABLE runs (run_id text PRIMARY KEY, owner text, status text);
CREATE TABLE entries (run_id text, seq int, output text, PRIMARY KEY (run_id, seq));
INSERT INTO runs VALUES ('r1', 'w1', 'running');
"""
PLAIN = """
INSERT INTO entries (run_id, seq, output) SELECT %s, %s, %s
WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = %s AND owner = %s AND status = 'running')
ON CONFLICT (run_id, seq) DO UPDATE SET output = excluded.output
"""


class Legato:
    """legato's journal statement and its parameters for one entry, as its store sends them."""

    def __init__(self, url: str) -> None:
        import legato
        from legato.store.base import Entry, entry_values
        from legato.store.postgres import _UPSERT_ONE

        app = legato.App("floor", url)  # creates legato's tables (its migrations) and a run

        @app.workflow()
        async def one(ctx: legato.Context) -> None:
            return None

        app.start(one, run_id="r1")
        app.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE runs SET status = 'running', owner = 'w1' WHERE run_id = 'r1'")
        self.statement, self.entry, self.values = _UPSERT_ONE, Entry, entry_values

    def params(self, i: int) -> tuple[Any, ...]:
        now = time.time()
        entry = self.entry("r1", i, "step", "inc", "completed", output=str(i + 1),
                           started_at=now, finished_at=now)  # fmt: skip
        return (*self.values(entry), "r1", "w1")


def seq(args: argparse.Namespace) -> dict[str, Any]:
    mine = Legato(args.url) if args.statement == "legato" else None
    with psycopg.connect(args.url, autocommit=True) as conn:
        sync = str(conn.execute("SHOW synchronous_commit").fetchone()[0])  # type: ignore[index]
        if mine is None:
            conn.execute(SCHEMA)

            def write(i: int) -> None:
                conn.execute(PLAIN, ("r1", i, str(i + 1), "r1", "w1"))
        else:

            def write(i: int) -> None:
                written = conn.execute(mine.statement, mine.params(i)).rowcount
                assert written == 1, written

        for i in range(-10, 0):  # warm-up: prepared statements (psycopg prepares after 5)
            write(i)
        with Interval(args.url) as span:
            for i in range(args.steps):
                write(i)
    return {
        "seconds": span.seconds,
        "steps": args.steps,
        "us_per_step": span.seconds / args.steps * 1e6,
        "synchronous_commit": sync,
        **span.figures(args.steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=["seq"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--statement", choices=["plain", "legato"], default="plain")
    emit(seq(parser.parse_args()))


if __name__ == "__main__":
    main()
