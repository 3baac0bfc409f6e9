"""A scripted model for users' own tests: answers from a list or a function, offline.

::

    model = ScriptedModel(["first answer", {"name": "Ada"}, ModelError("rate_limit", "slow down")])
    app.models.add(model)                       # deployment "scripted:scripted"
    app.models.alias("fast", [model.id])

Each request takes the next answer: text, a dict (JSON for structured output; a forced output
tool call when the request asks for one), a list of :class:`ToolCall`, a full
:class:`ModelResponse`, or an exception to raise. A function gets the request and returns
any of those. ``requests`` keeps what was sent, so tests can assert on prompts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from legato.ai.messages import EmbeddingResponse, ModelRequest, ModelResponse, ToolCall
from legato.ai.model import Capabilities, Model, ModelError, ProviderSettings
from legato.ai.usage import Usage

Answer = str | dict[str, Any] | list[ToolCall] | ModelResponse | BaseException
Script = Sequence[Answer | Callable[[ModelRequest], Answer]] | Callable[[ModelRequest], Answer]


class ScriptedModel(Model):
    """A model whose answers are written by the test."""

    def __init__(
        self,
        script: Script = (),
        *,
        name: str = "scripted",
        provider: str = "scripted",
        capabilities: Capabilities | None = None,
        external: bool = False,
        embed_dimensions: int = 8,
    ) -> None:
        settings = ProviderSettings(name=provider, kind="scripted", external=external)
        super().__init__(settings, name, capabilities or Capabilities(embeddings=True))
        self._script = script
        self._position = 0
        self.embed_dimensions = embed_dimensions
        #: every request this model received, in order
        self.requests: list[ModelRequest] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def request(
        self, request: ModelRequest, *, timeout: float | None = None
    ) -> ModelResponse:
        self.requests.append(request)
        answer = self._next(request)
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(request)
        if isinstance(answer, BaseException):
            raise answer
        return self._response(request, answer)

    def _next(self, request: ModelRequest) -> Any:
        if callable(self._script):
            return self._script(request)
        if self._position >= len(self._script):
            raise ModelError(
                "bad_response",
                f"ScriptedModel {self.id} has no answer left for request {self._position + 1}"
                f" (it was given {len(self._script)})",
                deployment=self.id,
            )
        answer = self._script[self._position]
        self._position += 1
        return answer

    def _response(self, request: ModelRequest, answer: Any) -> ModelResponse:
        if isinstance(answer, ModelResponse):
            return answer
        tool_calls: tuple[ToolCall, ...] = ()
        text = ""
        if isinstance(answer, dict):
            spec = request.output
            if spec is not None and spec.mode == "tool":
                tool_calls = (ToolCall(id=f"call_{self.calls}", name=spec.name, arguments=answer),)
            else:
                text = json.dumps(answer)
        elif isinstance(answer, list):
            tool_calls = tuple(answer)
        else:
            text = str(answer)
        prompt = " ".join(m.content for m in request.messages) + " " + (request.system or "")
        calls = sum(len(json.dumps(c.arguments)) // 4 for c in tool_calls)
        usage = Usage(
            input_tokens=len(prompt.split()), output_tokens=len(text.split()) + calls, requests=1
        )
        finish = "tool_calls" if tool_calls else "stop"
        return ModelResponse(
            text=text, tool_calls=tool_calls, usage=usage, model=self.name, finish_reason=finish
        )

    async def embed(self, texts: Sequence[str]) -> EmbeddingResponse:
        """Deterministic unit vectors from a hash of each text (equal texts, equal vectors)."""
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            raw = [b - 127.5 for b in digest[: self.embed_dimensions]]
            norm = sum(v * v for v in raw) ** 0.5 or 1.0
            vectors.append(tuple(v / norm for v in raw))
        usage = Usage(input_tokens=sum(len(t.split()) for t in texts), requests=1)
        return EmbeddingResponse(vectors=tuple(vectors), usage=usage, model=self.name)
