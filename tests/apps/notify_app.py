"""A workflow that waits for an event, for the LISTEN/NOTIFY test."""

from __future__ import annotations

import legato

app = legato.App("notify")


@app.workflow()
async def waits(ctx: legato.Context) -> object:
    return await ctx.wait_for_event("go")
