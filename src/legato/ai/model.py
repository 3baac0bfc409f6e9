"""The seam between legato and a model: ``Model`` (one deployment, its wire protocol) and
``ProviderSettings`` (where it lives and how to authenticate), kept apart so one protocol
serves many endpoints (OpenAI's API, vLLM, Ollama, llama.cpp server and LM Studio all speak
OpenAI's).

Providers never retry on their own (SDK retries are off): the router and the engine decide
what happens after a failure, and journal why.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from legato.ai.messages import EmbeddingResponse, ModelRequest, ModelResponse, OutputMode
from legato.errors import ConfigurationError, LegatoError

ErrorKind = Literal[
    "rate_limit",  # 429: try another deployment, or later
    "timeout",  # no answer in time
    "server",  # 5xx
    "connection",  # refused, reset, DNS
    "bad_response",  # an answer that is not what the protocol promises (garbage JSON ...)
    "auth",  # 401/403 or no key
    "not_found",  # no such model at this endpoint
    "bad_request",  # 400: the request itself is wrong; another deployment would refuse it too
    # the server rejected a feature the request used (``ModelError.feature`` names it): the
    # same request asked another way may work (structured output negotiation)
    "unsupported",
]

#: failures that say nothing about the request: another deployment (or a later try) may work
TRANSIENT: frozenset[str] = frozenset({"rate_limit", "timeout", "server", "connection"})


class ModelError(LegatoError):
    """A model call failed; ``kind`` says how, ``deployment`` which model and provider."""

    code = "model_error"

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        deployment: str | None = None,
        status: int | None = None,
        feature: str | None = None,
    ) -> None:
        where = f"{deployment}: " if deployment else ""
        http = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{where}{kind}{http}: {message}")
        self.kind: ErrorKind = kind
        self.deployment = deployment
        self.status = status
        self.detail = message
        #: for ``unsupported``: what the server rejected (``output.native``, ``max_tokens`` ...)
        self.feature = feature
        self.details = {"kind": kind, "detail": message, "deployment": deployment,
                        "status": status, "feature": feature}  # fmt: skip

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a deployment can do; the router's cheapest-capable strategy filters on these."""

    chat: bool = True
    tools: bool = True
    #: the provider can constrain output to a JSON Schema (else: a tool call, or prompting)
    native_output: bool = True
    embeddings: bool = False
    #: the parameter that caps output (``max_tokens`` or ``max_completion_tokens``); None:
    #: chosen by the model's name (OpenAI's o-series and GPT-5 onwards need the latter)
    max_tokens_param: str | None = None
    context_window: int = 128_000
    max_output_tokens: int | None = None
    #: the deployment takes a reasoning depth (OpenAI reasoning_effort, Anthropic thinking)
    reasoning: bool = False


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """An endpoint and its credentials. ``kind`` is the wire protocol.

    The key is read from ``api_key`` or, when that is empty, from the environment variable
    ``api_key_env`` at the moment a client is built (never at import).
    """

    name: str
    kind: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0
    #: text sent here leaves the organisation: data rules redact before it goes
    external: bool = True
    #: mark stable prompt prefixes for caching where the protocol needs marks (Anthropic)
    prompt_cache: bool = True

    def key(self, *, required: bool = True) -> str | None:
        """The API key, or a :class:`ModelError` of kind ``auth`` naming where to set it."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if value:
                return value
        if not required:
            return None
        where = (
            f"set the environment variable {self.api_key_env}"
            if self.api_key_env
            else f"set api_key for provider {self.name!r} in legato.toml"
        )
        raise ModelError("auth", f"no API key for provider {self.name!r}: {where}")


class Model(ABC):
    """One deployment: a model name at a provider, spoken to in the provider's protocol."""

    #: the ways this protocol can be asked for structured output, best first (see
    #: ``structured.output_modes``); a deployment's capabilities and what its server was
    #: seen to reject narrow them
    output_modes: tuple[OutputMode, ...] = ("native", "tool", "prompted")
    #: prompt tokens a chat template may add that estimates do not see, assumed until the
    #: server's reported usage measured them (none for models that are not chat servers)
    template_margin: int = 0

    def __init__(
        self, provider: ProviderSettings, name: str, capabilities: Capabilities | None = None
    ) -> None:
        if not name:
            raise ConfigurationError(f"provider {provider.name!r}: a model needs a name")
        self.provider = provider
        self.name = name
        self.capabilities = capabilities or Capabilities()

    @property
    def id(self) -> str:
        """``provider:model``, how legato.toml, the journal and the cost tables name it."""
        return f"{self.provider.name}:{self.name}"

    @property
    def external(self) -> bool:
        return self.provider.external

    @abstractmethod
    async def request(
        self, request: ModelRequest, *, timeout: float | None = None
    ) -> ModelResponse:
        """Send one request; raise :class:`ModelError` on any failure (never retry here)."""

    async def embed(self, texts: Sequence[str]) -> EmbeddingResponse:
        raise ModelError("bad_request", "this model does not make embeddings", deployment=self.id)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
