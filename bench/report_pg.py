"""The PostgreSQL part of docs/benchmarks.md (bench/report.py renders the rest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from report import (
    FULL,
    KEY,
    NORMAL,
    OFF,
    ON,
    STEP_KINDS,
    TITLES,
    _find,
    _findings,
    _of,
    _ratio,
    _spread,
    _table,
    _value,
    failures,
    fmt,
    short,
    step_kinds,
)

if TYPE_CHECKING:
    from run import Case

TARGET_SEQ = 300.0  # us per step: TARGETS["pg-seq"]

EXPLAIN = {
    "pg-seq": """\
One run whose workflow awaits 1,000 steps one after another (each returns its input plus one),
timed from the call that starts the run to its result, after a 1-step warm-up run in the same
process; so the figure is what making one step durable costs: journal the result, commit,
continue. Same workflow and peers' equivalents as on SQLite (DBOS: a direct workflow call;
LangGraph: one checkpointed superstep per step, `durability="sync"`), at the server's default
and with `synchronous_commit=off`. The PostgreSQL rows are the floor: a loop of autocommitted
single-row upserts from psycopg's sync API, no engine (bench/pg_floor.py), either a plain upsert
fenced on the run's owner (the shape of legato's journal write) or legato's own statement (its
single-row upsert, which also takes a share lock on the run's row). "legato above this floor"
compares a floor with legato at the same `synchronous_commit` for its journal: `off` with
`durability=normal`, `on` with `durability=full`.""",
    "pg-seq-sync": """\
Workload 1 with legato's step a plain `def`, run in a thread of legato's pool (the workflow
stays `async def`), beside the peers' sync form measured in this workload's own rounds: DBOS a
`@DBOS.step()` on a `def` function inside a `def` workflow, called directly; LangGraph a `def`
node run by the sync `invoke` with PostgresSaver. Same settings as workload 1.""",
    "pg-serial": """\
100 runs of 10 steps each, one after another in one process (legato: `app.run` per run; DBOS: a
direct workflow call per run; LangGraph: one `invoke` per thread); the figure is the time per
step including each run's start and finish, and per workflow.""",
    "pg-concurrent": """\
1,000 runs of 5 steps each, started together and executed in one process; the figure is
5,000 / (time from the first start to the last completion). legato: `asyncio.gather` of 1,000
`app.start_async` calls, then `app.run_until_idle_async(concurrency=1000)` (its journal writes
from concurrent runs share one statement and one commit per round trip). DBOS: 1,000
`DBOS.start_workflow` calls, a thread each (its faster mode on SQLite, and in trials here
too). LangGraph: `asyncio.gather` of 1,000 `ainvoke` calls on one AsyncPostgresSaver with one
connection (what `from_conn_string` gives; a pool of 10 connections was slower in trials).""",
    "pg-scaleout": """\
4,000 runs of 5 steps are started first (a separate process, which then closes its
connections); then 1, 2 or 4 `legato worker legato_apps:app --concurrency 250` processes are
spawned together, and the clock runs from the first spawn until every run is completed (polled
every 20 ms). "Steady" is the rate between 10 % and 90 % of runs completed (no process start).
Over the interval: the workers' CPU (from /proc, startup included), the CPU of all server
processes, the share of the machine's 2 cores busy and waiting on I/O (/proc/stat), commits
and WAL fsyncs (pg_stat_database, pg_stat_wal, read once the workers exited) and WAL bytes.
The workers, the server and the monitor share this machine's 2 cores; "rest of the machine"
is what the busy share leaves after the workers and the server (the monitor, the kernel's
work not charged to a process, and anything else running).""",
}


def render_postgres(cases: list[Case], info: dict[str, Any]) -> list[str]:
    server = info.get("postgres", {})
    if server.get("skipped"):
        return [f"Not measured in this run: {server['skipped']}."]
    lines = ["### Server and method", "", *_server(server, cases), ""]
    lines += [
        "- Each case gets its own schema `bench_<random>` (legato and LangGraph, through",
        "  `?options=-csearch_path%3Dbench_<random>` in the URL, which also names the sessions",
        "  with `application_name`), DBOS its own system database `dbos_bench_<random>`; all are",
        "  dropped after the case. The server is used as it is configured, never changed.",
        "- legato's rows name its `durability`: `normal` (the default) commits journal writes on",
        "  the journal's own connection with `synchronous_commit=off` and everything else (run",
        "  creation, claims, parks, finishes) with the server's default; `full` sets",
        "  `synchronous_commit=on` on all its connections. Other rows marked",
        "  *synchronous_commit=off* set it for the case's sessions only",
        "  (`options=-csynchronous_commit%3Doff` in the URL; DBOS: `ALTER DATABASE ... SET` on its",
        "  throwaway database); every other row runs with the server's default, `on`: each commit",
        "  waits for its WAL to be flushed to disk.",
        "- Client CPU: the case process (all its threads) over the timed section. Server CPU: all",
        "  PostgreSQL processes (/proc/PID/schedstat, exited backends included). Write",
        "  transactions: transaction ids used (`pg_current_snapshot()`), WAL: bytes of",
        "  `pg_current_wal_insert_lsn()`. These are server-wide counters: another client's work",
        "  would show in them, so the number of other client sessions is recorded too.",
        "",
        "### Summary",
        "",
        *_findings(cases, "pg-", notes={"pg-seq": _full_mode(cases)}),
        *_floor_findings(cases),
        *_scaleout_finding(cases),
        "",
    ]
    kinds = step_kinds(cases, "pg-", STEP_PEERS)
    if kinds:
        lines += [STEP_KINDS, "", *kinds, ""]
    side = _side_by_side(cases)
    if side:
        lines += ["Like for like, same run:", ""]
        lines += [*side, ""]
    sections = {
        "pg-seq": _section_seq,
        "pg-seq-sync": _section_seq_sync,
        "pg-serial": _section_serial,
        "pg-concurrent": _section_concurrent,
        "pg-scaleout": _section_scaleout,
    }
    for workload, section in sections.items():
        lines += [f"### {TITLES[workload]}", "", EXPLAIN[workload], ""]
        lines += section(cases) if _of(cases, workload) else ["Not measured in this run."]
        lines += ["", *failures(cases, workload)]
    return lines


def _noise(cases: list[Case]) -> str:
    """How many repetitions began while someone else had sessions open on the server."""
    seen = [
        s.get("other_clients_at_start", 0)
        for c in cases
        if c.workload.startswith("pg-")
        for s in c.samples
    ]
    busy = [n for n in seen if n]
    if not busy:
        return f"none of the {len(seen)} repetitions"
    return f"**{len(busy)} of {len(seen)} repetitions** (up to {max(busy)} sessions)"


def _server(server: dict[str, Any], cases: list[Case]) -> list[str]:
    where = (
        "this machine, over loopback TCP (its processes visible in /proc)"
        if server.get("same_host")
        else "another host (its CPU is not measured)"
    )
    restarted = server.get("restarted")
    rows = [
        ["address", f"`{server['url']}`, {where}"],
        ["version", server.get("server_version", "?")],
        ["synchronous_commit (default)", server.get("synchronous_commit", "?")],
        ["fsync, wal_sync_method", f"{server.get('fsync')}, {server.get('wal_sync_method')}"],
        ["commit_delay", server.get("commit_delay", "?")],
        ["shared_buffers, max_connections",
         f"{server.get('shared_buffers')}, {server.get('max_connections')}"],
        ["other client sessions", f"{server.get('others_at_start', '?')} when the run began,"
         f" {server.get('others_at_end', '?')} at its end"],
        ["repetitions begun while other sessions were open", _noise(cases)],
        ["restarted during the run", "**yes** (not by this run: figures around it are suspect)"
         if restarted else "no"],
    ]  # fmt: skip
    return _table(" | ", rows)


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f} us"


def _per(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _m(case: Case | None) -> dict[str, Any] | None:
    return None if case is None else case.median


def _costs(m: dict[str, Any] | None) -> list[str]:
    """Client CPU, server CPU, write transactions and WAL bytes per step."""
    if m is None:
        return ["", "", "", ""]
    return [_us(m.get("client_cpu_us")), _us(m.get("server_cpu_us")),
            _per(m.get("write_xacts")), _per(m.get("wal_bytes"), 0)]  # fmt: skip


def _label(case: Case) -> str:
    return case.label.replace(ON, "*sync commit on*").replace(OFF, "*sync commit off*")


def _legato(cases: list[Case], workload: str, label: str = NORMAL) -> Case | None:
    return _find(cases, workload, "legato", label)


def _above(legato: Case | None, floor: Case | None) -> str:
    lm, fm = _m(legato), _m(floor)
    if lm is None or fm is None:
        return ""
    diff = lm["us_per_step"] - fm["us_per_step"]
    return f"{diff:+,.0f} us ({lm['us_per_step'] / fm['us_per_step']:.2f}x)"


def _section_seq(cases: list[Case]) -> list[str]:
    normal, full = _legato(cases, "pg-seq"), _legato(cases, "pg-seq", FULL)
    rows = []
    for c in _of(cases, "pg-seq"):
        above = ""
        if c.system == "PostgreSQL":
            above = _above(normal if c.label.endswith(OFF) else full, c)
        rows.append([c.system, _label(c), _value(c), _spread(c), *_costs(c.median),
                     _ratio(c, normal), _ratio(c, full), above])  # fmt: skip
    header = (
        "system | configuration | median | range | client CPU/step | server CPU/step"
        " | write transactions/step | WAL bytes/step | legato normal faster by"
        " | legato full faster by | legato above this floor"
    )
    return _table(header, rows)


def _section_seq_sync(cases: list[Case]) -> list[str]:
    normal, full = _legato(cases, "pg-seq-sync"), _legato(cases, "pg-seq-sync", FULL)
    rows = [
        [c.system, _label(c), _value(c), _spread(c), *_costs(c.median), _ratio(c, normal),
         _ratio(c, full)]
        for c in _of(cases, "pg-seq-sync")
    ]  # fmt: skip
    header = (
        "system | configuration | median | range | client CPU/step | server CPU/step"
        " | write transactions/step | WAL bytes/step | legato normal faster by"
        " | legato full faster by"
    )
    return _table(header, rows)


def _section_serial(cases: list[Case]) -> list[str]:
    normal, full = _legato(cases, "pg-serial"), _legato(cases, "pg-serial", FULL)
    rows = []
    for c in _of(cases, "pg-serial"):
        m = c.median
        per_run = f"{m['ms_per_run']:.1f} ms" if m else ""
        rows.append([c.system, _label(c), _value(c), _spread(c), per_run, *_costs(m),
                     _ratio(c, normal), _ratio(c, full)])  # fmt: skip
    header = (
        "system | configuration | median | range | per workflow | client CPU/step"
        " | server CPU/step | write transactions/step | WAL bytes/step"
        " | legato normal faster by | legato full faster by"
    )
    return _table(header, rows)


def _section_concurrent(cases: list[Case]) -> list[str]:
    normal, full = _legato(cases, "pg-concurrent"), _legato(cases, "pg-concurrent", FULL)
    rows = []
    for c in _of(cases, "pg-concurrent"):
        m = c.median
        wall = f"{m['seconds']:.2f} s" if m else ""
        rows.append([c.system, _label(c), _value(c), _spread(c), wall, *_costs(m),
                     _ratio(c, normal), _ratio(c, full)])  # fmt: skip
    header = (
        "system | configuration | median | range | wall time | client CPU/step"
        " | server CPU/step | write transactions/step | WAL bytes/step"
        " | legato normal faster by | legato full faster by"
    )
    return _table(header, rows)


def _cores(m: dict[str, Any], key: str) -> float | None:
    value = m.get(key)
    return None if value is None else value / m["seconds"]


def _section_scaleout(cases: list[Case]) -> list[str]:
    one = _m(_find(cases, "pg-scaleout", "legato", "1 worker"))
    rows = []
    for c in _of(cases, "pg-scaleout"):
        m = c.median
        if m is None:
            rows.append([_label(c), _value(c), *[""] * 13])
            continue
        workers, server = _cores(m, "worker_cpu_s"), _cores(m, "server_cpu_s")
        rest = (
            None if workers is None or server is None else 2 * m["machine_busy"] - workers - server
        )
        fsync = m.get("wal_sync") or 0
        rows.append([
            _label(c), f"**{_value(c)}**", _spread(c),
            f"{m['steps_per_s'] / one['steps_per_s']:.2f}x" if one else "",
            fmt("pg-scaleout", m["steady_steps_per_s"]), f"{m['first_run_s']:.2f} s",
            _per(workers), _per(server), _per(rest), f"{m['machine_busy'] * 100:.0f} %",
            f"{m['machine_iowait'] * 100:.1f} %", _per(m.get("xact_commit")),
            (f"{1 / fsync:,.0f}" if 1 / fsync >= 100 else f"{1 / fsync:.1f}") if fsync else "",
            _per(m["wal_bytes"], 0),
        ])  # fmt: skip
    header = (
        "configuration | steps/s | range | vs 1 process | steady | first run done"
        " | workers' CPU (cores) | server CPU (cores) | rest of the machine (cores)"
        " | machine busy (2 cores) | I/O wait | commits/step | steps per WAL fsync"
        " | WAL bytes/step"
    )
    return [*_table(header, rows), "", *_where_the_limit_is(cases)]


def _where_the_limit_is(cases: list[Case]) -> list[str]:
    """The paragraph that reads the scale-out figures: does it grow, what saturates first."""
    by = {k: _m(_find(cases, "pg-scaleout", "legato", f"{k} worker")) for k in (1, 2, 4)}
    one, two, four = by[1], by[2], by[4]
    full = _m(_find(cases, "pg-scaleout", "legato", f"4 worker processes, {FULL}"))
    if one is None or two is None or four is None:
        return ["**Where the limit is:** not all three configurations were measured."]
    r2, r4 = two["steps_per_s"] / one["steps_per_s"], four["steps_per_s"] / one["steps_per_s"]
    t2 = two["steady_steps_per_s"] / one["steady_steps_per_s"]
    t4 = four["steady_steps_per_s"] / one["steady_steps_per_s"]
    text = [
        f"**Where the limit is.** From 1 to 2 worker processes throughput {_trend(r2)}"
        f" ({r2:.2f}x the steps/s of 1 process; {t2:.2f}x in the steady middle of the run);"
        f" with 4 processes it {_trend(r4)} ({r4:.2f}x; steady {t4:.2f}x; their start alone"
        f" takes {four['first_run_s']:.1f} s before a first run completes)."
    ]
    w1, s1 = _cores(one, "worker_cpu_s"), _cores(one, "server_cpu_s")
    if w1 is not None:
        text.append(
            f"One worker process keeps {w1:.2f} of a core busy (its event loop runs on one thread:"
            f" one process can use at most one core)"
            + (f", PostgreSQL {s1:.2f} core" if s1 is not None else "")
            + f"; the machine is {one['machine_busy'] * 100:.0f} % busy."
        )
    busy = [m["machine_busy"] for m in (two, four)]
    parts = []
    for n, m in ((2, two), (4, four)):
        w, s = _cores(m, "worker_cpu_s"), _cores(m, "server_cpu_s")
        shares = "" if w is None or s is None else f" (workers {w:.2f} + server {s:.2f} cores)"
        parts.append(f"{m['machine_busy'] * 100:.0f} % with {n} processes{shares}")
    text.append("The machine's 2 cores are busy " + " and ".join(parts) + ".")
    iowait = max(m["machine_iowait"] for m in (one, two, four))
    fsyncs = [m.get("wal_sync") for m in (one, two, four)]
    disk = f"I/O wait stays at or below {iowait * 100:.1f} % of the machine"
    if all(fsyncs):
        per = [1 / f for f in fsyncs if f]
        disk += (
            f" and one WAL fsync carries {_count(min(per))}-{_count(max(per))} steps (with"
            " durability=normal the journal's commits do not wait for a flush; the other"
            " commits share flushes)"
        )
    if full is not None:
        change = full["steps_per_s"] / four["steps_per_s"] - 1
        disk += (
            f"; with durability=full for the 4 processes (every journal commit waits for its"
            f" WAL flush) their steps/s change by {change * 100:+.0f} %"
        )
    text.append(disk + ".")
    if min(busy) >= 0.9 and iowait < 0.05:
        saturated = (
            "So the CPU saturates first, not the disk: from two processes on, the workers and"
            " PostgreSQL together use both cores of this machine, and more processes only add"
            " contention."
        )
        if w1 is not None and w1 >= 0.8 and one["machine_busy"] < 0.9:
            saturated = (
                "So with one process the limit is that process's core (its event loop); from two"
                " processes on, the CPU of this 2-core machine saturates first, not the disk: the"
                " workers and PostgreSQL together use both cores, and more processes only add"
                " contention."
            )
        text.append(saturated)
        text.append(
            "On a machine where the server has cores of its own, throughput should keep growing"
            " with worker processes until the server's CPU or its WAL flushes saturate; these"
            " figures cannot show where that is."
        )
    else:
        text.append(
            "Neither the CPU (below 90 % busy in some configuration) nor the disk is clearly"
            " saturated in this run: read the table for the figures."
        )
    return [" ".join(text)]


def _trend(ratio: float) -> str:
    return "grows" if ratio > 1.1 else "falls" if ratio < 0.9 else "stays about flat"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _floor_findings(cases: list[Case]) -> list[str]:
    """How far legato is above what the server allows (same run, same synchronous_commit for
    the journal's commits)."""
    out = []
    pairs = (
        (NORMAL, OFF, "synchronous_commit=off", "its journal commits with synchronous_commit=off"),
        (FULL, ON, "synchronous_commit=on", "every commit waits for its WAL flush"),
    )
    for label, floor, name, how in pairs:
        legato = _m(_legato(cases, "pg-seq", label))
        plain = _m(_find(cases, "pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {floor}"))
        mine = _m(_find(cases, "pg-seq", "PostgreSQL", f"floor: legato's statement, {floor}"))
        if legato is None or plain is None:
            continue
        text = (
            f"- Floor, {name}: a bare autocommitted upsert round trip from psycopg (sync) takes"
            f" {fmt('pg-seq', plain['us_per_step'])}; legato's durable step with {label} ({how})"
            f" takes {fmt('pg-seq', legato['us_per_step'])},"
            f" {legato['us_per_step'] - plain['us_per_step']:,.0f} us"
            f" ({legato['us_per_step'] / plain['us_per_step']:.2f}x) above it"
        )
        if mine is not None:
            text += (
                f" (legato's own statement sent the same way: {fmt('pg-seq', mine['us_per_step'])})"
            )
        client = legato.get("client_cpu_us"), plain.get("client_cpu_us")
        if None not in client:
            text += (
                f". Client CPU per step: legato {client[0]:,.0f} us, psycopg alone"
                f" {client[1]:,.0f} us"
            )
        out.append(text + ".")
    on = _m(_find(cases, "pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {ON}"))
    off = _m(_find(cases, "pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {OFF}"))
    if on is not None and off is not None:
        target = TARGET_SEQ
        text = (
            f"- Waiting for the WAL flush (floor on minus floor off) costs"
            f" {on['us_per_step'] - off['us_per_step']:,.0f} us per commit on this disk in this"
            " run."
        )
        if on["us_per_step"] >= target:
            text += (
                f" With synchronous_commit=on the floor itself is above the target"
                f" ({target:.0f} us): no design that flushes each step's commit before running"
                " the next step can meet it on this disk today, which is why the target is judged"
                " with durability=normal (the same trade as SQLite's synchronous=NORMAL)."
            )
        else:
            text += (
                f" The target ({target:.0f} us) leaves"
                f" {target - on['us_per_step']:,.0f} us per step above the synchronous_commit=on"
                " floor for the engine."
            )
        out.append(text)
    return out


def _full_mode(cases: list[Case]) -> str:
    """What the sequential workload's target line says about durability=full, and why."""
    full = _m(_legato(cases, "pg-seq", FULL))
    if full is None:
        return ""
    value = full["us_per_step"]
    text = f" With durability=full: {fmt('pg-seq', value)}"
    if value <= TARGET_SEQ:
        return text + ", within the target too."
    on = _m(_find(cases, "pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {ON}"))
    off = _m(_find(cases, "pg-seq", "PostgreSQL", f"floor: 1 fenced upsert, {OFF}"))
    if on is None:
        return text + ", above the target."
    floor = on["us_per_step"]
    text += ", above the target: each step's commit then also waits for its WAL flush"
    if off is not None:
        text += f" ({floor - off['us_per_step']:,.0f} us per commit on this disk in this run)"
    if floor >= TARGET_SEQ:
        return text + (
            f", and a bare fenced upsert with synchronous_commit=on alone takes"
            f" {fmt('pg-seq', floor)}: at or above the target before any engine work."
        )
    return text + (
        f", and a bare fenced upsert with synchronous_commit=on alone takes"
        f" {fmt('pg-seq', floor)}, which leaves {TARGET_SEQ - floor:,.0f} us for everything"
        f" else a step costs (legato's step is {value - floor:,.0f} us above that floor)."
    )


def _scaleout_finding(cases: list[Case]) -> list[str]:
    ms = [_m(_find(cases, "pg-scaleout", "legato", f"{k} worker")) for k in (1, 2, 4)]
    if any(m is None for m in ms):
        return []
    figures = ", ".join(
        f"{k}: {fmt('pg-scaleout', m['steps_per_s'])}"  # type: ignore[index]
        for k, m in zip((1, 2, 4), ms, strict=True)
    )
    return [
        f"- **{TITLES['pg-scaleout']}**, worker processes: {figures} (see where the limit is,"
        " below)."
    ]


# Like-for-like pairs on PostgreSQL: (workload, legato configuration, peer, peer configuration,
# why alike). The peers flush every commit at the server's default; with synchronous_commit=off
# none of their commits waits, while legato's durability=normal still flushes everything but
# the journal's commits.
FLUSHED = "both wait for each commit's WAL flush"
UNFLUSHED = "a step's commit waits for no WAL flush in either"
PAIRS = [
    ("pg-seq", NORMAL, "DBOS", f"default, {OFF}", UNFLUSHED),
    ("pg-seq", NORMAL, "LangGraph", f"graph API, PostgresSaver, durability=sync, {OFF}", UNFLUSHED),
    ("pg-seq", FULL, "DBOS", "default (", FLUSHED),
    ("pg-seq", FULL, "LangGraph", "graph API, PostgresSaver, durability=sync", FLUSHED),
    ("pg-serial", FULL, "DBOS", "default", FLUSHED),
    ("pg-serial", FULL, "LangGraph", "graph API", FLUSHED),
    ("pg-concurrent", FULL, "DBOS", "default", FLUSHED),
    ("pg-concurrent", FULL, "LangGraph", "graph API", FLUSHED),
]


# The peers of the PostgreSQL step-kind table, each beside the legato configuration it is like.
STEP_PEERS = [
    ("DBOS", f"default, {OFF}", NORMAL),
    ("DBOS", "default (", FULL),
    ("LangGraph", f"graph API, PostgresSaver, durability=sync, {OFF}", NORMAL),
    ("LangGraph", "graph API, PostgresSaver, durability=sync", FULL),
]


def _side_by_side(cases: list[Case]) -> list[str]:
    rows = []
    for workload, mine, peer, theirs, why in PAIRS:
        legato, other = _legato(cases, workload, mine), _find(cases, workload, peer, theirs)
        if legato is None or other is None or not legato.samples or not other.samples:
            continue
        rows.append([short(TITLES[workload]), f"{_value(legato)} ({mine})",
                     f"{_value(other)} ({peer}, {_label(other)})", why,
                     f"**{_ratio(other, legato)}**"])  # fmt: skip
    header = "workload | legato | peer | alike because | legato better by"
    return _table(header, rows) if rows else []


__all__ = ["KEY", "render_postgres"]
