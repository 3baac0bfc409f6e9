"""Shadow evaluations for crash tests: the evaluation of run BLOCKED blocks on its first
execution (the test kills the worker there); every execution is counted."""

from __future__ import annotations

import asyncio

import legato
from legato.evals import Target, Verdict
from tests.apps.counters import counter_file, counts, record

app = legato.App("shadow")
BLOCKED = "r3"


@app.workflow()
async def answer(ctx: legato.Context, i: int) -> dict[str, int]:
    return {"answer": i}


@app.evaluator("even", on="workflow", mode="shadow")
async def even(target: Target) -> Verdict:
    first_time = counts(counter_file())[("eval", target.run_id)] == 0
    record("eval", target.run_id)
    if target.run_id == BLOCKED and first_time:
        await asyncio.sleep(3600)  # the test kills the worker here
    value = target.output["answer"]
    return Verdict(1.0 if value % 2 == 0 else 0.0, value % 2 == 0, f"answer {value}")
