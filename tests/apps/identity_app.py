"""Concurrent branches for the entry-identity crash test.

Each step records its idempotency key in the counter file. A slow step blocks (on its first
execution only) after a fast sibling has finished and been journaled, so the test can SIGKILL
the worker exactly in that window: the fast entry recorded, the slow one in flight.
"""

from __future__ import annotations

import asyncio

import legato
from tests.apps.counters import counter_file, executions, record

app = legato.App("identity")


def _ran_before(tag: str) -> bool:
    return any(parts[0] == tag for parts in executions(counter_file()))


@app.step(retry=legato.NO_RETRY)
async def slow_step(tag: str) -> str:
    first_time = not _ran_before(tag)
    record(tag, legato.current_step().idempotency_key)
    if first_time:
        await asyncio.sleep(3600)  # the test kills the worker here
    return tag


@app.step(retry=legato.NO_RETRY)
async def fast_step(tag: str) -> str:
    record(tag, legato.current_step().idempotency_key)
    return tag


async def _chain(ctx: legato.Context, name: str, slow: bool) -> list[str]:
    """A branch of two steps; the slow branch's first step blocks."""
    first = await (slow_step if slow else fast_step)(f"{name}-1")
    return [first, await fast_step(f"{name}-2")]


@app.workflow()
async def gather_steps(ctx: legato.Context) -> list[str]:
    """Steps called straight into gather (the issue's minimal reproduction)."""
    slow, fast = await asyncio.gather(slow_step("slow"), fast_step("fast"))
    after = await fast_step("after")
    return [slow, fast, after]


@app.workflow()
async def gather_branches(ctx: legato.Context) -> list[list[str]]:
    """Sub-coroutines as branches: the fast branch finishes both its steps first."""
    a, b = await asyncio.gather(_chain(ctx, "a", slow=True), _chain(ctx, "b", slow=False))
    child = await ctx.child(leaf, "x")
    return [a, b, [child]]


@app.workflow()
async def leaf(ctx: legato.Context, x: str) -> str:
    return await fast_step(f"leaf-{x}")
