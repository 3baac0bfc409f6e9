"""Turn the measured cases into the console summary and docs/benchmarks.md."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from run import Case

MB = 1024 * 1024

# The figure each workload is judged by, and whether more is better. Workloads run in this
# order: SQLite first, then PostgreSQL ("pg-").
KEY = {
    "seq": ("us_per_step", False),
    "seq-sync": ("us_per_step", False),
    "concurrent": ("steps_per_s", True),
    "parked": ("rss_growth", False),
    "restart": ("seconds", False),
    "imports": ("import_s", False),
    "startup": ("best_s", False),
    "pg-seq": ("us_per_step", False),
    "pg-seq-sync": ("us_per_step", False),
    "pg-serial": ("us_per_step", False),
    "pg-concurrent": ("steps_per_s", True),
    "pg-scaleout": ("steps_per_s", True),
}
PER_STEP = ("seq", "seq-sync", "pg-seq", "pg-seq-sync", "pg-serial")
PER_SECOND = ("concurrent", "pg-concurrent", "pg-scaleout")

# Before each repetition bench/run.py waits until the machine is quiet: less than QUIET_BUSY of
# its CPU busy over QUIET_SAMPLE seconds (nothing of the run's own runs then) and, for
# PostgreSQL, no other client session open; at most QUIET_WAIT s per repetition and
# QUIET_BUDGET s per run.
QUIET_BUSY, QUIET_SAMPLE, QUIET_WAIT, QUIET_BUDGET = 0.2, 0.2, 30.0, 180.0

# Configurations of the PostgreSQL cases (bench/run.py builds them; the report finds them).
ON = "synchronous_commit=on (default)"
OFF = "synchronous_commit=off"
NORMAL = "durability=normal"
FULL = "durability=full"

# What legato must reach (from the benchmark issue; the step and start-up targets from the
# foundations issue): the configurations judged, and the test.
TARGETS: dict[str, tuple[str, tuple[str, ...], Callable[[float], bool]]] = {
    "seq": ("<= 40 us per `async def` step", ("durability=normal",), lambda v: v <= 40),
    "seq-sync": ("<= 100 us per `def` step", ("durability=normal",), lambda v: v <= 100),
    "concurrent": (">= 5,000 steps/s", ("durability=normal",), lambda v: v >= 5000),
    "parked": (
        "< 20 MB RSS growth for 10,000 parked runs",
        ("worker --concurrency 1000", "worker --concurrency 100 (default)"),
        lambda v: v < 20 * MB,
    ),
    "restart": ("< 0.5 s from spawn to completed", ("legato worker",), lambda v: v < 0.5),
    "startup": (
        "< 150 ms from start to exit (best of the fresh interpreters)",
        ("import legato", "legato --help"),
        lambda v: v < 0.150,
    ),
    "pg-seq": ("<= 300 us per step", (NORMAL,), lambda v: v <= 300),
    "pg-concurrent": (">= 5,000 steps/s", (NORMAL, FULL), lambda v: v >= 5000),
}
TITLES = {
    "seq": "1. One workflow of 1,000 sequential steps",
    "seq-sync": "1b. One workflow of 1,000 sequential `def` steps",
    "concurrent": "2. 1,000 workflows x 5 steps, started together",
    "parked": "3. Parked runs: worker memory",
    "restart": "4. Restart after SIGKILL",
    "imports": "Import time (part of every process start)",
    "startup": "Start-up time: a fresh interpreter, start to exit",
    "pg-seq": "1. One workflow of 1,000 sequential steps",
    "pg-seq-sync": "1b. One workflow of 1,000 sequential `def` steps",
    "pg-serial": "2. 100 workflows x 10 steps, one after another",
    "pg-concurrent": "3. 1,000 workflows x 5 steps, started together",
    "pg-scaleout": "4. Scale-out: 4,000 runs x 5 steps by 1, 2 and 4 worker processes",
}
EXPLAIN = {
    "seq": """\
One run whose workflow awaits N steps one after another; each step returns its input plus one,
so the figure is the cost of making a step durable: journal the result, commit, continue. Timed
from the call that starts the run to the returned result (legato `app.run`, a direct DBOS
workflow call, LangGraph `invoke`), divided by N, after a 1-step warm-up run in the same process.
legato's store is WAL with `synchronous=NORMAL` (`durability="normal"`: survives a process
crash) or `FULL` (`"full"`: fsync per commit, survives power loss). DBOS runs with SQLite's
defaults (rollback journal, `FULL`) and tuned to WAL + `NORMAL` (legato's settings, set by a
SQLAlchemy connect hook). LangGraph's savers set WAL and keep `FULL`, so its like-for-like
legato figure is `durability=full`. For LangGraph a step is one superstep of a graph whose node
loops on itself (a checkpoint each, `durability="sync"`). The functional API (`@task` inside an
`@entrypoint`) is shown too, but research/peers.md saw it re-run finished tasks after a SIGKILL
(its task writes are not awaited), so it is not the like-for-like row. The SQLite rows are the
floor: a bare loop of autocommitted upserts shaped like legato's journal write, with no engine
at all (bench/sqlite_floor.py). legato's step here is an `async def`; the peers' are plain `def`
functions (the same as in 1b).""",
    "seq-sync": """\
Workload 1 with legato's step a plain `def` (the workflow stays `async def`): legato runs each
call in a thread of its pool and hands the result back to the workflow's event loop, which is
what a sync step costs over an `async def` one. The peers in their natural sync form, as in
workload 1 and measured again in this workload's own rounds: DBOS a `@DBOS.step()` on a `def`
function inside a `def` workflow, called directly; LangGraph a `def` node run by the sync
`invoke` (graph API) and a `@task` `def` inside a `def` `@entrypoint` (functional API), with
the sync `SqliteSaver`; in both peers the step body runs on the calling thread.""",
    "concurrent": """\
R runs of 5 steps each are started together and executed in one process; the figure is
R x 5 / (time from the first start to the last completion). legato: `asyncio.gather` of R
`app.start_async` calls, then `app.run_until_idle_async(concurrency=R)`; concurrent runs share
commits (group commit). DBOS: R `DBOS.start_workflow` calls (a thread each) then every
`get_result()`, and R async workflows awaited with `asyncio.gather` on one event loop.
LangGraph: `asyncio.gather` of R `ainvoke` calls on one `AsyncSqliteSaver`.""",
    "parked": """\
A workflow runs one step, then `await ctx.sleep(timedelta(days=7))`. One `legato worker`
process is started and left to idle; its VmRSS (/proc/PID/status) is read, then N runs are
started from another process, and VmRSS is read again 1 s after all N are `waiting` in the
database. Peak RSS (VmHWM), thread count and the CPU the idle worker then uses (3 s sample) are
reported too. DBOS: the process that starts N sync workflows doing one step then
`DBOS.sleep(7 days)` is their worker; N is 2,000, because every sleeping workflow holds a thread
and 10,000 would make the run long. LangGraph has no durable timer: the nearest equivalent is a
node that calls `interrupt()`, which ends the invocation with the thread saved in its
checkpoint, so nothing is held by design.""",
    "restart": """\
A 10-step workflow whose step 6 sleeps 60 s the first time it runs (a marker file decides; every
step body appends to a counter file). A worker process runs it, and once step 6 has begun it is
sent SIGKILL and reaped. The clock starts when the new process is spawned and stops when the run
is seen completed (legato: `runs.status`, DBOS: `workflow_status.status`, polled every 1 ms;
LangGraph: the new process prints when `invoke(None, config)` returns). Exactly-once means
steps 1-5 and 7-10 ran once in every repetition; step 6, in flight at the kill, runs again by
design (steps run at least once, are recorded exactly once). "Interpreter + imports" is the
system's row in the import-time table below, measured in separate processes, so its share of
the restart is approximate.""",
    "imports": """\
Median of 5 fresh interpreters timing the import inside the process (`time.perf_counter`
around the import statement), next to a bare `python -c pass`. The largest packages come from
`python -X importtime` (self time summed per top-level package).""",
    "startup": """\
What a user waits for: the wall time from starting `python` to its exit, for each command in a
fresh interpreter (bench/import_time.py's measurement, after one unmeasured run that warms the
file cache and the `.pyc` files), the best and the median of N runs; the best is the least
disturbed by other processes, and the target is judged on it. Each system's interpreter is
the one of its venv (same Python), so its bare start is shown too. `import legato` loads the
public names on first use (PEP 562); `from legato import App` is what defining a workflow
imports. `import dbos` is also what defining a DBOS workflow needs (`from dbos import DBOS`);
`import langgraph` is a namespace package, so the functional API (`from langgraph.func import
entrypoint, task`) and that plus the SQLite checkpointer that makes it durable are shown.""",
}


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def fmt(workload: str, value: float) -> str:
    if workload in PER_STEP:
        return f"{_num(value)} us/step"
    if workload in PER_SECOND:
        return f"{_num(value)} steps/s"
    if workload == "parked":
        return f"{value / MB:.1f} MB"
    if workload == "startup":
        return f"{value * 1000:.0f} ms"
    return f"{value:.3f} s"


def short(title: str) -> str:
    """A title without its number ("1b. One workflow ..." -> "One workflow ...")."""
    return title.split(". ", 1)[-1]


def _spread(case: Case) -> str:
    key, _ = KEY[case.workload]
    values = [s[key] for s in case.samples]
    if len(values) < 2:
        return ""
    return f"{fmt(case.workload, min(values))} - {fmt(case.workload, max(values))}"


def _find(cases: list[Case], workload: str, system: str, label_start: str = "") -> Case | None:
    for case in cases:
        if (
            case.workload == workload
            and case.system == system
            and case.label.startswith(label_start)
        ):
            return case
    return None


def _ratio(case: Case, reference: Case | None) -> str:
    """How many times better legato's reference case did than this peer (same run)."""
    if (
        case.system in ("legato", "SQLite", "PostgreSQL")
        or reference is None
        or not case.samples
        or not reference.samples
    ):
        return ""
    key, more_is_better = KEY[case.workload]
    mine, theirs = reference.median[key], case.median[key]  # type: ignore[index]
    ratio = mine / theirs if more_is_better else theirs / mine
    return f"{ratio:.1f}x"


def _verdict(case: Case) -> str:
    target = TARGETS.get(case.workload)
    if case.system != "legato" or target is None or case.median is None:
        return ""
    _, labels, test = target
    if case.label not in labels:
        return ""
    key, _ = KEY[case.workload]
    return "met" if test(case.median[key]) else "MISSED"


def _value(case: Case) -> str:
    if case.median is None:
        return "not measured: " + ("; ".join(case.errors) or "no sample")
    key, _ = KEY[case.workload]
    return fmt(case.workload, case.median[key])


def summary_table(cases: list[Case]) -> str:
    """Plain text for the console."""
    lines = [f"{'workload':13} {'system':10} {'configuration':55} {'median':>18}  {'range'}"]
    for case in cases:
        if case.workload == "imports":
            continue
        verdict = _verdict(case)
        lines.append(
            f"{case.workload:13} {case.system:10} {case.label[:55]:55} {_value(case):>18}  "
            f"{_spread(case)}{'  [' + verdict + ']' if verdict else ''}"
        )
    return "\n".join(lines)


def _table(header: str, rows: list[list[str]]) -> list[str]:
    """A markdown table; ``header`` names the columns separated by ``|``."""
    names = [h.strip() for h in header.split("|")]
    out = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _of(cases: list[Case], workload: str) -> list[Case]:
    return [c for c in cases if c.workload == workload]


def _section_seq(cases: list[Case], workload: str = "seq") -> list[str]:
    normal = _find(cases, workload, "legato", "durability=normal")
    full = _find(cases, workload, "legato", "durability=full")
    rows = [
        [c.system, c.label, _value(c), _spread(c), _ratio(c, normal), _ratio(c, full)]
        for c in _of(cases, workload)
    ]
    header = (
        "system | configuration | median | range | legato normal faster by | legato full faster by"
    )
    return _table(header, rows)


def _section_concurrent(cases: list[Case]) -> list[str]:
    normal = _find(cases, "concurrent", "legato", "durability=normal")
    full = _find(cases, "concurrent", "legato", "durability=full")
    rows = [
        [c.system, c.label, _value(c), _spread(c),
         f"{c.median['seconds']:.2f} s" if c.median else "", _ratio(c, normal), _ratio(c, full)]
        for c in _of(cases, "concurrent")
    ]  # fmt: skip
    header = (
        "system | configuration | median | range | wall time | legato normal faster by"
        " | legato full faster by"
    )
    return _table(header, rows)


def _section_parked(cases: list[Case]) -> list[str]:
    rows = []
    for c in _of(cases, "parked"):
        m = c.median
        if m is None:
            rows.append([c.system, c.label, _value(c), *[""] * 8])
            continue
        rows.append([
            c.system, c.label, _num(m["runs"]), f"{m['rss_before'] / MB:.1f} MB",
            f"{m['rss_after'] / MB:.1f} MB", f"**{m['rss_growth'] / MB:.1f} MB**",
            f"{m['bytes_per_run'] / 1024:.1f} KB", f"{m['hwm'] / MB:.1f} MB", str(m["threads"]),
            f"{m['idle_cpu_percent']:.1f} %", f"{m['seconds_to_park']:.1f} s",
        ])  # fmt: skip
    header = (
        "system | configuration | runs | RSS idle | RSS parked | growth | per run | peak RSS"
        " | threads | idle CPU | time to park all"
    )
    return _table(header, rows)


def _startup(cases: list[Case], case: Case) -> str:
    """Interpreter start + imports of the case's system, and its share of the case's time."""
    imports = _find(cases, "imports", case.system)
    if imports is None or imports.median is None or case.median is None:
        return ""
    start = imports.median["interpreter_s"] + imports.median["import_s"]
    share = 100 * start / case.median["seconds"]
    return f"{start:.3f} s ({'nearly all' if share > 90 else f'{share:.0f} %'})"


def _section_restart(cases: list[Case]) -> list[str]:
    legato = _find(cases, "restart", "legato")
    rows = []
    for c in _of(cases, "restart"):
        held = sum(bool(s["exactly_once"]) for s in c.samples)
        once = f"{'yes' if held == len(c.samples) else 'NO'} ({held}/{len(c.samples)})"
        counts = " ".join(str(n) for n in c.median["counts"]) if c.median else ""
        rows.append([c.system, c.label, _value(c), _spread(c), _startup(cases, c),
                     once if c.samples else "", counts, _ratio(c, legato)])  # fmt: skip
    header = (
        "system | configuration | median | range | interpreter + imports | exactly-once"
        " | runs of steps 1..10 | legato faster by"
    )
    return _table(header, rows)


def _section_imports(cases: list[Case]) -> list[str]:
    rows = []
    for c in _of(cases, "imports"):
        m = c.median
        if m is None:
            rows.append([c.system, c.label, _value(c), "", ""])
            continue
        top = ", ".join(f"{name} {sec * 1000:.0f}" for name, sec in m["top"][:6])
        rows.append([c.system, f"`{m['module']}`", f"{m['import_s'] * 1000:.0f} ms",
                     f"{m['interpreter_s'] * 1000:.0f} ms", top])  # fmt: skip
    return _table("system | import | import time | bare interpreter | largest packages (ms)", rows)


def _section_startup(cases: list[Case]) -> list[str]:
    rows = []
    for c in _of(cases, "startup"):
        m = c.median
        if m is None:
            rows.append([c.system, c.label, _value(c), "", "", ""])
            continue
        verdict = _verdict(c)
        rows.append([c.system, f"`{m['command']}`", f"**{fmt('startup', m['best_s'])}**",
                     fmt("startup", m["median_s"]), str(m["runs"]),
                     f"< 150 ms: **{verdict}**" if verdict else ""])  # fmt: skip
    return _table("system | command | best | median | fresh interpreters | target", rows)


# The step-kind table: legato's `def` and `async def` steps at each durability, and each peer's
# sync form beside the legato configuration it is like (same syncs and journal mode).
STEP_PEERS = [
    ("DBOS", "tuned", "durability=normal"),
    ("DBOS", "default", "durability=full"),
    ("LangGraph", "graph API", "durability=full"),
]


STEP_KINDS = (
    "`def` and `async def` steps (workloads 1b and 1), same run; each peer's sync form, from 1b,"
    " beside the legato durability it is like:"
)


def step_kinds(
    cases: list[Case], backend: str = "", peers: list[tuple[str, str, str]] = STEP_PEERS
) -> list[str]:
    """legato's sync and async step beside the peers' sync steps, with the ratios (same run).

    ``backend`` is ``""`` (SQLite) or ``"pg-"``; the peers' rows come from the sync workload."""
    seq, sync = f"{backend}seq", f"{backend}seq-sync"
    legato = {
        (kind, label): _find(cases, workload, "legato", label)
        for kind, workload in (("def", sync), ("async def", seq))
        for label in ("durability=normal", "durability=full")
    }
    rows = []
    for (kind, label), case in legato.items():
        if case is None:
            continue
        step = "`def` (run in a thread)" if kind == "def" else "`async def`"
        target = TARGETS.get(case.workload)
        verdict = _verdict(case)
        shown = f"{target[0].split(' per')[0]}: **{verdict}**" if target and verdict else ""
        rows.append(["legato", step, label, _value(case), shown, "", "", ""])
    for system, prefix, label in peers:
        case = _find(cases, sync, system, prefix)
        if case is None:
            continue
        ratios = [_ratio(case, legato[kind, label]) for kind in ("def", "async def")]
        rows.append([system, "`def` (sync form)", case.label, _value(case), "", label,
                     *ratios])  # fmt: skip
    if not rows:
        return []
    header = (
        "system | step | configuration | median | target | compared with legato"
        " | legato `def` faster by | legato `async def` faster by"
    )
    return _table(header, rows)


def _findings(
    cases: list[Case], backend: str = "", notes: dict[str, str] | None = None
) -> list[str]:
    """Each target and its verdict: SQLite's, or with ``backend="pg-"`` PostgreSQL's;
    ``notes`` adds a sentence to a workload's line."""
    out = []
    for workload, (text, labels, _) in TARGETS.items():
        if workload.startswith("pg-") != (backend == "pg-"):
            continue
        for label in labels:
            case = _find(cases, workload, "legato", label)
            if case is None or case.median is None:
                out.append(f"- **{TITLES[workload]}** ({label}): not measured.")
                continue
            key, _ = KEY[workload]
            runs = f" with {_num(case.median['runs'])} runs" if workload == "parked" else ""
            out.append(
                f"- **{TITLES[workload]}** ({label}): target {text}; measured"
                f" {fmt(workload, case.median[key])}{runs}: **{_verdict(case)}**."
                + (notes or {}).get(workload, "")
            )
    if backend:
        return out
    define = _find(cases, "startup", "legato", "from legato import App")
    if define is not None and define.median is not None:
        out.append(
            f"- `import legato` loads the public names on first use: `from legato import App`,"
            f" what defining a workflow imports, takes {fmt('startup', define.median['best_s'])}"
            " from start to exit (best)."
        )
    hi = _find(cases, "parked", "legato", "worker --concurrency 1000")
    lo = _find(cases, "parked", "legato", "worker --concurrency 100 ")
    more = _find(cases, "parked", "legato", "worker --concurrency 1000, ")
    if hi and lo and more and hi.median and lo.median and more.median:
        out.append(
            f"- Parked-run memory is the high-water mark of runs *in flight*, not memory kept per"
            f" parked run: the same worker grows {hi.median['rss_growth'] / MB:.1f} MB for"
            f" {_num(hi.median['runs'])} runs and {more.median['rss_growth'] / MB:.1f} MB for"
            f" {_num(more.median['runs'])} runs at `--concurrency 1000`, and"
            f" {lo.median['rss_growth'] / MB:.1f} MB at the default `--concurrency 100`."
        )
    return out


# Like-for-like pairs: (workload, legato configuration, peer, peer configuration, why alike).
PAIRS = [
    ("seq", "durability=normal", "DBOS", "tuned", "both WAL + synchronous=NORMAL"),
    ("seq", "durability=full", "DBOS", "default", "both fsync each commit"),
    ("seq", "durability=full", "LangGraph", "graph API", "both WAL + synchronous=FULL"),
    ("concurrent", "durability=normal", "DBOS", "tuned, a thread", "both WAL + synchronous=NORMAL"),
    ("concurrent", "durability=full", "LangGraph", "graph API", "both WAL + synchronous=FULL"),
    ("restart", "legato worker", "DBOS", "default", "spawn to completed"),
    ("restart", "legato worker", "LangGraph", "graph API", "spawn to completed"),
]


def _side_by_side(cases: list[Case]) -> list[str]:
    rows = []
    for workload, mine, peer, theirs, why in PAIRS:
        legato = _find(cases, workload, "legato", mine)
        other = _find(cases, workload, peer, theirs)
        if legato is None or other is None or not legato.samples or not other.samples:
            continue
        rows.append([short(TITLES[workload]), f"{_value(legato)} ({mine})",
                     f"{_value(other)} ({peer}, {other.label})", why,
                     f"**{_ratio(other, legato)}**"])  # fmt: skip
    header = "workload | legato | peer | alike because | legato better by"
    return _table(header, rows) if rows else []


def render(
    cases: list[Case], info: dict[str, Any], command: str, repeats: int, elapsed: float
) -> str:
    legato = info["legato"]
    peers = info.get("peers", {})
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/run.py); do not edit by hand, run it again. Every figure",
        "below was measured in the same run, on the machine described here, so the ratios between",
        "systems are what to quote: this disk's fsync latency drifts by 10x within a day, and",
        "absolute figures drift with it.",
        "",
        "## How it was measured",
        "",
        f"- Command: `{command}`" + (" (what `make bench` runs)" if command == "bench/run.py"
                                      else ""),
        f"- Each case: a fresh process and a fresh database (SQLite: a new file in a new"
        " temporary folder; PostgreSQL: a new schema, for DBOS a new database, dropped"
        f" afterwards), {repeats} repetition{'s' if repeats > 1 else ''}, median reported (range"
        " = fastest to slowest repetition). Rounds interleave the systems, so a slow-disk spell"
        f" hits all of them. Whole run, both backends: {elapsed / 60:.1f} min.",
        "- legato runs in the project venv; DBOS and LangGraph in `bench/.venv-peers`, which"
        " bench/run.py creates from PyPI when missing (`--no-peers` skips them; `--only sqlite`"
        " or `--only postgres` measures one backend).",
        f"- Before each repetition the run waits until the machine is quiet (less than"
        f" {QUIET_BUSY:.0%} of its CPU busy over {QUIET_SAMPLE:g} s, and no other client session"
        f" on the PostgreSQL server), at most {QUIET_WAIT:g} s per repetition and"
        f" {QUIET_BUDGET / 60:g} min per run: {_quiet(cases)}.",
        "- Raw samples: `bench/out/results.json` (not committed).",
        "",
        "## Machine",
        "",
        *_table(" | ", [
            ["CPU", f"{info['cpu']}, {info['nproc']} cores (nproc)"],
            ["memory", f"{int(info['memory'].split()[0]) / 1024**2:.1f} GiB"],
            ["kernel", info["kernel"]],
            ["database folder", info["filesystem"]],
            ["Python", legato["Python"]],
            ["SQLite (Python's sqlite3)", legato["SQLite"]],
            ["legato", f"{legato['legato']} at {info['source']} (pydantic {legato['pydantic']})"],
            *[[k, v] for k, v in peers.items() if k not in ("Python", "SQLite")],
            ["machine load", info.get("load", "not recorded")],
            ["date", info["date"]],
        ]),
        "",
    ]  # fmt: skip
    if "--quick" in command.split():
        lines += [
            "**A `--quick` smoke run:** smaller workloads than the titles say; do not quote.",
            "",
        ]
    if info.get("peers_skipped"):
        lines += [f"**Peers not measured:** {info['peers_skipped']}.", ""]
    lines += ["## SQLite", ""]
    if "sqlite" not in info.get("backends", ["sqlite"]):
        lines += ["Not measured in this run (`--only postgres`).", ""]
    else:
        lines += _sqlite(cases, bool(peers))
    from report_pg import render_postgres

    lines += ["## PostgreSQL", "", *render_postgres(cases, info), ""]
    lines += _all_samples(cases)
    return "\n".join(lines).rstrip() + "\n"


def _quiet(cases: list[Case]) -> str:
    """How quiet the machine was when the repetitions began."""
    samples = [s for c in cases for s in c.samples if "busy_before" in s]
    if not samples:
        return "not recorded"
    waited = sum(s["waited_s"] for s in samples)
    noisy = [
        s for s in samples
        if s["busy_before"] >= QUIET_BUSY or s.get("other_clients_at_start", 0)
    ]  # fmt: skip
    text = f"it waited {waited:.0f} s in all, and "
    if not noisy:
        return text + f"all {len(samples)} repetitions began on a quiet machine"
    return text + f"**{len(noisy)} of {len(samples)} repetitions began while other work ran**"


def _sqlite(cases: list[Case], peers: bool) -> list[str]:
    lines = ["### Summary", "", *_findings(cases), ""]
    kinds = step_kinds(cases)
    if kinds:
        lines += [STEP_KINDS, "", *kinds, ""]
    if peers:
        lines += ["Like for like, same run:", "", *_side_by_side(cases), ""]
    sections: dict[str, Callable[[list[Case]], list[str]]] = {
        "seq": _section_seq, "seq-sync": lambda c: _section_seq(c, "seq-sync"),
        "concurrent": _section_concurrent, "parked": _section_parked,
        "restart": _section_restart, "imports": _section_imports, "startup": _section_startup,
    }  # fmt: skip
    for workload, section in sections.items():
        lines += [f"### {TITLES[workload]}", "", EXPLAIN[workload], ""]
        lines += section(cases) if _of(cases, workload) else ["Not measured in this run."]
        lines += ["", *failures(cases, workload)]
    return lines


def failures(cases: list[Case], workload: str) -> list[str]:
    errors = [
        f"- {c.system} [{c.label}]: {'; '.join(c.errors)}"
        for c in cases
        if c.workload == workload and c.errors
    ]
    return ["Failed repetitions:", "", *errors, ""] if errors else []


def _all_samples(cases: list[Case]) -> list[str]:
    rows = []
    for case in cases:
        if case.workload in ("imports", "startup") or not case.samples:
            continue
        key, _ = KEY[case.workload]
        values = [s[key] for s in case.samples]
        shown = ", ".join(fmt(case.workload, v) for v in values)
        mean = fmt(case.workload, statistics.fmean(values))
        rows.append([case.workload, case.system, case.label, shown, mean])
    if not rows:
        return []
    return [
        "## Every repetition",
        "",
        *_table("workload | system | configuration | repetitions, in order | mean", rows),
        "",
    ]
