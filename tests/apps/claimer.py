"""A process that claims runs as fast as it can and prints what it got (for race tests)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from legato.store import open_store


async def main(url: str, start_at: float, worker: str) -> None:
    store = await open_store(url)
    got: list[str] = []
    while time.time() < start_at:  # all claimers start together
        await asyncio.sleep(0.001)
    now = time.time()
    while True:
        claimed = await store.claim(worker, ["wf"], now, 300.0, 7)
        if not claimed:
            break
        got.extend(r.run_id for r in claimed)
        await asyncio.sleep(0.001)  # let the others in: we want them to interleave
    await store.close()
    print(json.dumps(got))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), f"claimer-{os.getpid()}"))
