"""A schedule of every second for the several-workers test: each run logs (run, pid) once."""

from __future__ import annotations

import legato
from tests.apps.counters import record

app = legato.App("scheduled")


@app.step()
def tick(run_id: str) -> None:
    record(run_id)


@app.schedule("* * * * * *", catchup="all", overlap="allow")
@app.workflow()
async def every_second(ctx: legato.Context) -> None:
    await tick(ctx.run_id)
