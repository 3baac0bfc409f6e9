"""Long steps for the prompt-cancel test: each logs how it ended."""

from __future__ import annotations

import asyncio
import time

import legato
from tests.apps.counters import record

app = legato.App("cancels")


@app.step()
async def long_async() -> str:
    record("async", "started")
    try:
        await asyncio.sleep(120)
    except asyncio.CancelledError:
        record("async", "cancelled")
        raise
    return "slept"


@app.step()
def long_sync() -> str:
    record("sync", "started")
    step = legato.current_step()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if step.cancelled:
            record("sync", "saw-cancel")
            return "gave up"
        time.sleep(0.05)
    return "slept"


@app.workflow()
async def waits_async(ctx: legato.Context) -> str:
    return await long_async()


@app.workflow()
async def waits_sync(ctx: legato.Context) -> str:
    return await long_sync()
