"""Start-up time: ``import legato`` and ``legato --help``, each in a fresh interpreter.

    .venv/bin/python bench/import_time.py            # best of 10 runs each
    .venv/bin/python bench/import_time.py --runs 20 --src /tmp/old/src   # another tree

Prints the best and the median wall time per command (the best is the least disturbed by
other processes: report it on a busy machine), the bare interpreter start for reference, and
with ``--top`` the slowest imports of ``import legato`` and of the CLI from ``-X importtime``.
The target of the foundations issue is under 150 ms for both.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from typing import Any

COMMANDS = {
    "python (bare start)": ["-c", "pass"],
    "import legato": ["-c", "import legato"],
    "legato --help": ["-m", "legato", "--help"],
    "from legato import App": ["-c", "from legato import App"],
}
TARGET_MS = 150.0


def wall_ms(python: str, args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([python, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def measure(
    python: str, args: list[str], runs: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Wall time of ``python ARGS`` (start to exit) in ``runs`` fresh interpreters, after one
    unmeasured run that warms the file cache and the .pyc files: the best and the median, in
    seconds. Standard library only: bench/run.py's workload scripts call it in every venv."""
    env = dict(os.environ) if env is None else env
    wall_ms(python, args, env)
    times = [wall_ms(python, args, env) / 1000 for _ in range(runs)]
    return {
        "best_s": min(times),
        "median_s": statistics.median(times),
        "runs": runs,
        "command": shlex.join(["python", *args]),
    }


def slowest_imports(python: str, args: list[str], env: dict[str, str], top: int) -> list[str]:
    """The ``top`` modules with the largest cumulative import time (microseconds)."""
    out = subprocess.run(
        [python, "-X", "importtime", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ).stderr
    rows = []
    for line in out.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:8.1f} ms {name}" for us, name in rows[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh interpreters per command")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--src", default=None, help="put this source tree first on PYTHONPATH")
    parser.add_argument("--top", type=int, default=0, help="also list the N slowest imports")
    opts = parser.parse_args()

    env = dict(os.environ)
    if opts.src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [opts.src, env.get("PYTHONPATH")]))
    print(
        f"{opts.runs} fresh interpreters each; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'command':<26}{'best':>10}{'median':>10}")
    for label, args in COMMANDS.items():
        m = measure(opts.python, args, opts.runs, env)
        best, median = m["best_s"] * 1000, m["median_s"] * 1000
        flag = ""
        if label in ("import legato", "legato --help"):
            flag = "  ok" if best < TARGET_MS else f"  over {TARGET_MS:.0f} ms"
        print(f"{label:<26}{best:>8.1f}ms{median:>8.1f}ms{flag}")
    if opts.top:
        for label in ("import legato", "legato --help"):
            print(f"\nslowest imports of {label} (cumulative, one run):")
            print("\n".join(slowest_imports(opts.python, COMMANDS[label], env, opts.top)))


if __name__ == "__main__":
    main()
