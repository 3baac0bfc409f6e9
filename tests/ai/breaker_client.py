"""A separate process for tests/ai/test_breakers.py: opens an app on the shared database and
makes ``calls`` model calls through the alias ``fast``, then prints which deployment answered
each and why (JSON). Started with ``python -m tests.ai.breaker_client DB_URL CONFIG CALLS
[GATE]``: with GATE (a folder), it says it is ready there and calls only once ``GATE/go``
exists, so processes started one by one call at the same moment."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import legato
from legato.ai.config import parse_config


def main() -> None:
    db_url, config, calls = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    app = legato.App("breakers", db_url, config=parse_config(config))

    @app.workflow
    async def ask(ctx: legato.Context) -> list[list[str]]:
        out = []
        for i in range(calls):
            result = await ctx.llm(f"question {i}", model="fast")
            out.append([result.model, result.routing.reason])
        return out

    try:
        if len(sys.argv) > 4:
            gate = Path(sys.argv[4])
            (gate / f"ready-{os.getpid()}").touch()
            while not (gate / "go").exists():
                time.sleep(0.01)
        print(json.dumps(app.run(ask)))
    finally:
        app.close()


if __name__ == "__main__":
    main()
