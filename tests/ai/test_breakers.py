"""Circuit breakers shared through the store: workers learn a deployment is down from each
other, and after the cooldown exactly one call probes it (both backends)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

import legato
from legato.ai.config import parse_config
from legato.ai.messages import ModelRequest, ModelResponse
from legato.ai.model import ModelError
from legato.testing import ScriptedModel
from tests.ai.conftest import KEY, MODEL, Katan, katan_server
from tests.conftest import ROOT, sql


def _provider(server: Katan) -> dict[str, object]:
    return {"kind": "openai", "base_url": f"{server.url}/v1", "api_key": KEY, "timeout": 20}


def _clients(
    db_url: str, config: dict[str, object], count: int, calls: int, gate: Path | None = None
) -> list[list[list[str]]]:
    """Run ``count`` processes of tests/ai/breaker_client.py side by side; their answers."""
    argv = [sys.executable, "-m", "tests.ai.breaker_client", db_url, json.dumps(config),
            str(calls), *([str(gate)] if gate else [])]  # fmt: skip
    procs = [
        subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    if gate is not None:  # release them together once every one is ready to call
        deadline = time.monotonic() + 60
        while len(list(gate.glob("ready-*"))) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        (gate / "go").touch()
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()[-3000:]
        out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


def test_worker_processes_share_a_breaker_and_one_probe_goes_through(
    db_url: str, katan: Katan, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    broken_fast = ("500", "--error-rate", "1.0")
    broken_slow = ("500-slow", "--error-rate", "1.0", "--latency-ms", "3000")
    with (
        katan_server(tmp_path_factory, *broken_fast, dashboard=True) as fast,
        katan_server(tmp_path_factory, *broken_slow, dashboard=True) as slow,
    ):

        def config(broken: Katan) -> dict[str, object]:
            return {
                "providers": {"broken": _provider(broken), "good": _provider(katan)},
                "models": {"fast": {"candidates": [f"broken:{MODEL}", f"good:{MODEL}"]}},
                "circuit_breaker": {"failures": 2, "cooldown": "1h"},
            }

        # one process: two failures in a row open the breaker
        (first,) = _clients(db_url, config(fast), 1, calls=3)
        assert fast.requests_served() == 2 and "circuit open" in first[2][1]
        # three other processes learn it from the database: none asks the broken deployment
        others = _clients(db_url, config(fast), 3, calls=2)
        assert fast.requests_served() == 2
        assert all(a[0] == f"good:{MODEL}" and "circuit open" in a[1] for o in others for a in o)

        # the cooldown is over; four processes call at once (the deployment is now slow too):
        # exactly one probes it, the others skip it while the probe is in flight
        sql(db_url, "UPDATE breakers SET open_until = ?", (time.time() - 1,))
        gate = tmp_path / "gate"
        gate.mkdir()
        racing = [o[0] for o in _clients(db_url, config(slow), 4, calls=1, gate=gate)]
        assert slow.requests_served() == 1
        assert all(a[0] == f"good:{MODEL}" for a in racing)
        reasons = sorted(a[1] for a in racing)
        probed = [r for r in reasons if "server" in r]
        assert len(probed) == 1, reasons
        assert sum("another call is probing it" in r for r in reasons) == 3, reasons
        # the failed probe opened the breaker again, for everyone
        ((failures, open_until),) = sql(db_url, "SELECT failures, open_until FROM breakers")
        assert failures == 3 and open_until > time.time() + 3000


class _Probe(ScriptedModel):
    """Fails twice, then answers only once ``release`` is set (a probe kept in flight)."""

    def __init__(self) -> None:
        super().__init__(name="flaky")
        self.release = asyncio.Event()

    async def request(
        self, request: ModelRequest, *, timeout: float | None = None
    ) -> ModelResponse:
        self.requests.append(request)
        if self.calls <= 2:
            raise ModelError("server", "down", deployment=self.id, status=503)
        await self.release.wait()
        return ModelResponse(text="back")


def test_half_open_lets_one_call_through_and_its_success_closes_the_breaker(
    make_app: Callable[..., legato.App], db_url: str
) -> None:
    app = make_app(config=parse_config({"circuit_breaker": {"failures": 2, "cooldown": "1m"}}))
    flaky = app.models.add(_Probe())
    steady = ScriptedModel(lambda request: "steady", name="steady")
    app.models.add(steady)
    app.models.alias("fast", [flaky.id, steady.id])

    @app.workflow
    async def ask(ctx: legato.Context) -> list[str]:
        first = [(await ctx.llm(f"q{i}", model="fast")).model for i in range(3)]
        await ctx.sleep(timedelta(minutes=2))  # past the cooldown: half-open

        async def one(i: int) -> str:
            result = await ctx.llm(f"r{i}", model="fast")
            if steady.calls == 6:  # the three calls that skipped the probe have answered
                flaky.release.set()
            return f"{result.model} {result.routing.reason}"

        racing = await asyncio.gather(*(one(i) for i in range(4)))
        after = (await ctx.llm("s", model="fast")).model
        return [*first, *sorted(racing), after]

    out = app.run(ask)
    assert out[:3] == ["scripted:steady"] * 3  # two failures opened it; the third skipped
    probe = [r for r in out[3:7] if r.startswith("scripted:flaky")]
    assert len(probe) == 1  # one call went through: the probe
    skipped = [r for r in out[3:7] if r.startswith("scripted:steady")]
    assert len(skipped) == 3 and all("another call is probing it" in r for r in skipped)
    assert out[7] == "scripted:flaky"  # the probe's success closed the breaker
    assert flaky.calls == 4  # two failures, the probe, the call after it
    assert sql(db_url, "SELECT COUNT(*) FROM breakers") == [(0,)]
