"""A workflow whose sync step blocks for a long time (threads cannot be interrupted)."""

from __future__ import annotations

import time

import legato
from tests.apps.counters import record

app = legato.App("blocking")


@app.step(retry=legato.NO_RETRY)
def block(run_id: str) -> None:
    record(run_id, "block")
    time.sleep(120)


@app.workflow()
async def blocked(ctx: legato.Context) -> None:
    await block(ctx.run_id)
