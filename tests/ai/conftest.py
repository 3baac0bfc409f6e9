"""Real model servers for the provider tests: llm-katan processes (echo backend), one per
behaviour, started once per session on free ports and killed at teardown.

Katan answers the OpenAI and Anthropic protocols with an echo of the request; servers started
with its dashboard also publish every request they receive (headers and body) on a websocket
and count requests in ``/stats``, which is how tests see what went over the wire and how many
requests a call made.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

KATAN = str(Path(sys.executable).with_name("llm-katan"))
MODEL = "echo-model"
#: the key katan's ``--validate-keys`` servers accept, for both protocols
KEY = "test-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A server the tests started on 127.0.0.1, and the file its output goes to."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


@dataclass
class Katan(ServerProcess):
    """A running llm-katan server."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests_served(self) -> int:
        """Requests to the model endpoints so far (servers started with ``dashboard=True``)."""
        with urllib.request.urlopen(f"{self.url}/stats", timeout=5) as answer:
            return int(json.load(answer)["total"])

    def chat_once(self) -> None:
        """One chat request outside the code under test (to use up ``--*-after N`` budgets)."""
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "warm"}]})
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=body.encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {KEY}"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200


def start_katan(logs: Path, role: str, *options: str, dashboard: bool = False) -> Katan:
    """Start llm-katan and wait until it answers; fail the session loudly if it cannot."""
    port = free_port()
    log = logs / f"katan-{role}.log"
    argv = [
        KATAN,
        "--backend", "echo",
        "--host", "127.0.0.1",
        "--port", str(port),
        "-m", MODEL,
        "--providers", "openai,anthropic",
        "--stats-file", str(logs / f"katan-{role}-stats.json"),
        *([] if dashboard else ["--disable-dashboard"]),
        *options,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    server = Katan(port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    pytest.fail(
        f"llm-katan ({role}) did not start on port {port}: {' '.join(argv)}\n"
        f"{log.read_text(errors='replace')[-3000:]}",
        pytrace=False,
    )


@contextlib.contextmanager
def katan_server(
    factory: pytest.TempPathFactory, role: str, *options: str, dashboard: bool = False
) -> Iterator[Katan]:
    server = start_katan(factory.mktemp(f"katan-{role}"), role, *options, dashboard=dashboard)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def katan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    """A well-behaved server."""
    with katan_server(tmp_path_factory, "normal") as server:
        yield server


@pytest.fixture(scope="session")
def katan_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    """A well-behaved server that checks keys (``KEY``) and publishes what it receives."""
    keys = f"openai={KEY},anthropic={KEY}"
    with katan_server(
        tmp_path_factory, "wire", "--validate-keys", "--api-keys", keys, dashboard=True
    ) as server:
        yield server


@pytest.fixture(scope="session")
def katan_500(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    """Every model request fails with HTTP 500."""
    with katan_server(tmp_path_factory, "500", "--error-rate", "1.0", dashboard=True) as server:
        yield server


@pytest.fixture(scope="session")
def katan_429(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    """Rate limited: every model request after the first (made here) gets HTTP 429."""
    with katan_server(tmp_path_factory, "429", "--rate-limit-after", "1", dashboard=True) as server:
        server.chat_once()
        yield server


@pytest.fixture(scope="session")
def katan_504(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    """A gateway timing out: every model request after the first (made here) gets HTTP 504."""
    with katan_server(tmp_path_factory, "504", "--timeout-after", "1", dashboard=True) as server:
        server.chat_once()
        yield server


@pytest.fixture(scope="session")
def katan_slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Katan]:
    """Every answer takes 1 s (requests run side by side: an abandoned one blocks none)."""
    with katan_server(
        tmp_path_factory, "slow", "--latency-ms", "1000", "--max-concurrent", "8"
    ) as server:
        yield server


class Wire:
    """What a dashboard-enabled katan received, read from its live event feed."""

    def __init__(self, server: Katan) -> None:
        self.server = server
        self._ws: Any = None

    async def __aenter__(self) -> Wire:
        from websockets.asyncio.client import connect

        self._ws = await connect(f"ws://127.0.0.1:{self.server.port}/ws/events")
        # The feed only reaches clients the server has registered: poke it until it echoes.
        for _ in range(50):
            await asyncio.to_thread(self._poke)
            try:
                await asyncio.wait_for(self._ws.recv(), 0.2)
                return self
            except TimeoutError:
                continue
        await self._ws.close()
        raise AssertionError("katan's event feed never reported a request")

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    def _poke(self) -> None:
        try:
            with urllib.request.urlopen(f"{self.server.url}/v1/models", timeout=5):
                pass
        except urllib.error.HTTPError as error:  # 401 without a key: reported all the same
            error.close()

    async def received(self, path: str) -> dict[str, Any]:
        """The next request the server received on ``path``: method, headers, body, status."""
        while True:
            event: dict[str, Any] = json.loads(await asyncio.wait_for(self._ws.recv(), 10))
            if event["path"] == path:
                return event


@dataclass
class Stub:
    """A canned HTTP server for answers no real server gives on purpose (garbage), or a
    server with a made-up subset of a protocol; ``bodies`` holds every request's JSON."""

    url: str
    bodies: list[Any] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.bodies)


#: what a fake server answers a request's JSON body with: a status and a JSON-able body
Answer = Callable[[Any], tuple[int, Any]]


@pytest.fixture
def fake_server() -> Iterator[Callable[[Answer], Stub]]:
    """``fake_server(answer)``: a server answering every POST with ``answer(body)``."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answer: Answer) -> Stub:
        stub = Stub(url="")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                stub.bodies.append(body)
                status, reply = answer(body)
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stub.url = f"http://127.0.0.1:{server.server_address[1]}"
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub_server(fake_server: Callable[[Answer], Stub]) -> Callable[[bytes], Stub]:
    """``stub_server(body)``: a server answering every POST with 200 and ``body`` (as JSON)."""
    return lambda body: fake_server(lambda _: (200, body))


def canned_completion(
    stub_server: Callable[[bytes], Stub], model: str, text: str, usage: dict[str, Any],
    price: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """Config for provider ``p``: a server answering every chat request with ``text`` and the
    OpenAI ``usage`` given, and ``price`` for ``p:<model>`` (for usage a test can choose)."""
    answer = {
        "id": "c1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": usage,
    }  # fmt: skip
    stub = stub_server(json.dumps(answer).encode())
    return {
        "providers": {"p": {"kind": "openai", "base_url": f"{stub.url}/v1", "api_key": KEY}},
        "prices": {f"p:{model}": price},
    }
