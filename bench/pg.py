"""PostgreSQL plumbing for the benchmarks: a throwaway schema or database per case, URLs that
carry it, and what the server did over an interval (CPU of its processes, WAL, commits).

Used by bench/run.py and the legato workload scripts (project venv, which has psycopg). The
server is shared: nothing here changes its configuration; every case gets its own schema (or,
for DBOS, its own database) and drops it afterwards.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
MONITOR = "bench-monitor"  # application_name of the monitoring sessions
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _psycopg() -> Any:
    import psycopg

    return psycopg


def with_params(url: str, *, database: str | None = None, **params: str) -> str:
    """``url`` with another database and/or query parameters; ``options`` values are added to
    the ones already there (``-csearch_path=x -csynchronous_commit=off``)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in params.items():
        query[key] = f"{query[key]} {value}" if key == "options" and key in query else value
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(parts._replace(path=path, query=urlencode(query, quote_via=quote)))


def schema_url(url: str, schema: str, synchronous_commit: str | None = None) -> str:
    """A URL whose sessions use ``schema`` and are named after it (pg_stat_activity)."""
    options = f"-csearch_path={schema}"
    if synchronous_commit is not None:
        options += f" -csynchronous_commit={synchronous_commit}"
    return with_params(url, options=options, application_name=schema)


def application_name(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query)).get("application_name", "")


def unreachable(url: str) -> str | None:
    """Why the server at ``url`` cannot be used, or None when it can."""
    try:
        psycopg = _psycopg()
    except ImportError:
        return "psycopg is not installed in the project venv (pip install 'legato[postgres]')"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"cannot connect to {redact(url)}: {str(exc).strip().splitlines()[0]}"
    return None


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def fresh_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def create_schema(url: str) -> str:
    name = fresh_name("bench")
    with _psycopg().connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return name


def drop_schema(url: str, name: str) -> None:
    with _psycopg().connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def create_database(url: str, synchronous_commit: str | None = None) -> str:
    """A throwaway database; ``synchronous_commit`` becomes the default of its sessions
    (``ALTER DATABASE ... SET``: that database only, never the server's setting)."""
    name = fresh_name("dbos_bench")
    with _psycopg().connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        if synchronous_commit is not None:
            conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = {synchronous_commit}")
    return name


def drop_database(url: str, name: str) -> None:
    """Drop a throwaway database; ``FORCE`` ends sessions a killed case script left open in it
    (only sessions of that database, which only the case used)."""
    with _psycopg().connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_connections(url: str) -> int:
    """Connections still free for ordinary clients (max_connections less the reserved ones
    and those open now)."""
    with _psycopg().connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
    return int(row[0])


SETTINGS = ["server_version", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay",
            "shared_buffers", "max_connections", "wal_level", "full_page_writes"]  # fmt: skip


def server_info(url: str) -> dict[str, Any]:
    """The server's settings that matter here, when it started, and whether its processes
    are visible from this host (so that their CPU can be measured)."""
    with _psycopg().connect(url, autocommit=True) as conn:
        info: dict[str, Any] = {s: str(conn.execute(f"SHOW {s}").fetchone()[0]) for s in SETTINGS}
        info["started"] = str(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0])
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    parent = _ppid(backend)
    info["same_host"] = parent is not None and _stat(parent) is not None
    return info


def other_clients(url: str) -> int:
    """Client sessions open now that are not this benchmark's (its cases name their sessions
    bench_*, DBOS names its own dbos_transact)."""
    with _psycopg().connect(with_params(url, application_name=MONITOR), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND pid <> pg_backend_pid() AND application_name NOT LIKE 'bench%%'"
            " AND application_name NOT IN (%s, 'dbos_transact')",
            (MONITOR,),
        ).fetchone()
    return int(row[0])


# -- what the server did over an interval -------------------------------------------------


def _stat(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu(fields: list[str], children: bool = False) -> float:
    """utime + stime (fields 14, 15), and with ``children`` the reaped children's too."""
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _on_cpu(pid: int | str) -> float | None:
    """Time on CPU in seconds of a single-threaded process (a server process):
    /proc/PID/schedstat (nanoseconds, main thread only) where the kernel has it, else
    /proc/PID/stat (clock ticks, 10 ms: too coarse for a sub-second interval)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = _stat(pid)
        return None if fields is None else _cpu(fields)


def _ppid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _children(parent: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _ppid(int(name)) == parent:
            out.append(int(name))
    return out


@dataclass
class Snapshot:
    at: float  # perf_counter
    client_cpu: float  # this process (seconds)
    server_cpu: float | None  # all server processes, exited backends included (seconds)
    wal_lsn: int  # WAL insert position (bytes): real time
    next_xid: int  # next transaction id: one per transaction that wrote, real time
    machine: tuple[int, int, int]  # /proc/stat: busy, idle, iowait ticks (all cores)
    stats: dict[str, int] | None = None  # cumulative statistics (see Server.stats)


def machine_ticks() -> tuple[int, int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle, iowait = values[3], values[4]
    return sum(values[:8]) - idle - iowait, idle, iowait


def busy_share(seconds: float) -> float:
    """Share of the machine's CPU (all cores) busy over the next ``seconds``."""
    before = machine_ticks()
    time.sleep(seconds)
    ticks = [b - a for a, b in zip(before, machine_ticks(), strict=True)]
    return ticks[0] / max(1, sum(ticks))


class Server:
    """One monitoring connection to the server, and its processes if they run on this host.

    The server's CPU is the postmaster's own plus everything it reaped (``cutime``/``cstime``
    of the postmaster: backends that already exited) plus its live children: so a backend that
    comes and goes during the interval still counts. It is the whole server, other clients
    included: ``others()`` tells whether there were any.
    """

    def __init__(self, url: str) -> None:
        self.conn = _psycopg().connect(with_params(url, application_name=MONITOR), autocommit=True)
        backend = int(self.scalar("SELECT pg_backend_pid()"))
        self.postmaster = _ppid(backend)
        if self.postmaster is not None and _stat(self.postmaster) is None:
            self.postmaster = None

    def close(self) -> None:
        self.conn.close()

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def server_cpu(self) -> float | None:
        if self.postmaster is None:
            return None
        own, reaped = _stat(self.postmaster), _on_cpu(self.postmaster)
        if own is None or reaped is None:
            return None
        total = reaped + (int(own[13]) + int(own[14])) / CLOCK_TICKS  # + exited backends
        for pid in _children(self.postmaster):
            total += _on_cpu(pid) or 0.0
        return total

    def others(self, mine: str) -> int:
        """Client backends connected now that belong to neither this case nor a monitor."""
        return int(
            self.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                " AND application_name NOT IN (%s, %s, 'dbos_transact')",
                (mine, MONITOR),
            )
        )

    def snapshot(self, stats: bool = False) -> Snapshot:
        """Where the counters are now; ``stats`` adds the cumulative statistics, which are
        only complete once the case's backends exited or flushed (``wait_for_stats``)."""
        row = self.conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint,"
            " pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
        ).fetchone()
        assert row is not None
        snap = Snapshot(
            at=time.perf_counter(),
            client_cpu=time.process_time(),  # all threads, ended ones included
            server_cpu=self.server_cpu(),
            wal_lsn=int(row[0]),
            next_xid=int(row[1]),
            machine=machine_ticks(),
        )
        if stats:
            snap.stats = self.stats()
        return snap

    def stats(self) -> dict[str, int]:
        """Commits of this database, WAL records and WAL syncs (fsyncs) of the server."""
        row = self.conn.execute(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
            " wal_records, wal_sync, wal_write FROM pg_stat_wal"
        ).fetchone()
        assert row is not None
        return dict(zip(("xact_commit", "wal_records", "wal_sync", "wal_write"),
                        (int(v) for v in row), strict=True))  # fmt: skip

    def wait_for_stats(self, seconds: float = 1.1) -> None:
        """PostgreSQL 15 moves a backend's pending statistics to the shared counters at most
        once a second (and at exit): give the ones of the interval time to arrive."""
        time.sleep(seconds)
        self.conn.execute("SELECT pg_stat_clear_snapshot()")


def delta(before: Snapshot, after: Snapshot, per: float) -> dict[str, Any]:
    """What happened between two snapshots, per unit of work (``per`` steps)."""
    ticks = [b - a for a, b in zip(before.machine, after.machine, strict=True)]
    out: dict[str, Any] = {
        "client_cpu_us": (after.client_cpu - before.client_cpu) / per * 1e6,
        "server_cpu_us": None
        if after.server_cpu is None or before.server_cpu is None
        else (after.server_cpu - before.server_cpu) / per * 1e6,
        "wal_bytes": (after.wal_lsn - before.wal_lsn) / per,
        "write_xacts": (after.next_xid - before.next_xid) / per,
        "machine_busy": ticks[0] / max(1, sum(ticks)),
        "machine_iowait": ticks[2] / max(1, sum(ticks)),
    }
    if before.stats is not None and after.stats is not None:
        for key, value in after.stats.items():
            out[key] = (value - before.stats[key]) / per
    return out


class Interval:
    """The client's and the server's cost of a timed section, per step.

    ``with Interval(url) as span: ...`` then ``span.seconds`` and ``span.figures(steps)``.
    """

    def __init__(self, url: str) -> None:
        self.server = Server(url)

    def __enter__(self) -> Interval:
        self.before = self.server.snapshot()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.after = self.server.snapshot()
        self.server.close()

    def figures(self, steps: int) -> dict[str, Any]:
        return delta(self.before, self.after, steps)
