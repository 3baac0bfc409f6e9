"""OpenAI's Chat Completions protocol, through the official ``openai`` SDK.

Serves OpenAI itself and every endpoint that speaks the same protocol (vLLM, Ollama,
llama.cpp server, LM Studio): point ``base_url`` at it. The SDK is imported when the first
request builds the client, and its own retries are off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from legato.ai import reasoning
from legato.ai.messages import (
    EmbeddingResponse,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
)
from legato.ai.providers.formats import json_arguments, output_instruction
from legato.ai.providers.sdk import SDKModel
from legato.ai.usage import Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types import CompletionUsage, CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

__all__ = ["OpenAIModel", "max_tokens_param"]

# OpenAI's reasoning models (o1, o3, o4-mini ...) and GPT-5 onwards refuse ``max_tokens``
_COMPLETION_TOKENS = re.compile(r"^(o\d+(-|$)|gpt-[5-9])")


def max_tokens_param(model: str) -> str:
    """The parameter that caps a model's output by its name: ``max_completion_tokens`` for
    OpenAI's o-series and GPT-5 onwards, ``max_tokens`` (which every compatible server
    knows) for the rest. A deployment's ``max_tokens_param`` overrides it."""
    parts = re.split(r"[:/]", model.strip().lower())
    return (
        "max_completion_tokens" if any(_COMPLETION_TOKENS.match(p) for p in parts) else "max_tokens"
    )


class OpenAIModel(SDKModel["AsyncOpenAI"]):
    """A model behind an OpenAI-compatible Chat Completions endpoint."""

    sdk = "openai"
    output_modes = ("native", "json_object", "tool", "prompted")

    async def request(
        self, request: ModelRequest, *, timeout: float | None = None
    ) -> ModelResponse:
        client, params = self._call(request, timeout)
        if request.stream:
            chunks = await self._send(lambda: _collect(client, params), request)
            return self._read(self._merged, chunks)
        completion = await self._send(lambda: client.chat.completions.create(**params), request)
        return self._read(self._response, completion)

    async def embed(self, texts: Sequence[str]) -> EmbeddingResponse:
        client = self._connect()
        answer = await self._send(
            lambda: client.embeddings.create(model=self.name, input=list(texts))
        )
        return self._read(lambda a: self._embeddings(a, len(texts)), answer)

    def _new_client(self, sdk: Any) -> AsyncOpenAI:
        client: AsyncOpenAI = sdk.AsyncOpenAI(
            api_key=self.provider.key(),
            base_url=self.provider.base_url,
            timeout=self.provider.timeout,
            max_retries=0,
            default_headers=dict(self.provider.headers) or None,
        )
        return client

    # -- request --------------------------------------------------------------------------

    def _features(self, request: ModelRequest) -> tuple[str, ...]:
        output = request.output
        return (f"output.{output.mode}",) if output and output.mode != "prompted" else ()

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        system = request.system
        tools = [_function(t.name, t.description, t.parameters) for t in request.tools]
        params: dict[str, Any] = {"model": self.name}
        output = request.output
        if output is not None:
            if output.mode == "native":
                params["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": output.name, "schema": output.schema_},
                }
            elif output.mode == "json_object":  # JSON is enforced, the schema is only asked for
                params["response_format"] = {"type": "json_object"}
                instruction = output_instruction(output)
                system = f"{system}\n\n{instruction}" if system else instruction
            elif output.mode == "tool":
                description = str(output.schema_.get("description") or f"Give {output.name}.")
                tools.append(_function(output.name, description, output.schema_))
                params["tool_choice"] = {"type": "function", "function": {"name": output.name}}
            else:
                instruction = output_instruction(output)
                system = f"{system}\n\n{instruction}" if system else instruction
        messages = [{"role": "system", "content": system}] if system else []
        messages.extend(_message(m) for m in request.messages)
        params["messages"] = messages
        if tools:
            params["tools"] = tools
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            cap = self.capabilities.max_tokens_param or max_tokens_param(self.name)
            params[cap] = request.max_tokens
        if request.reasoning is not None:
            params["reasoning_effort"] = reasoning.effort(request.reasoning)
        if request.stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        return params

    # -- answer ---------------------------------------------------------------------------

    def _response(self, completion: ChatCompletion) -> ModelResponse:
        import openai.types.chat

        if not isinstance(completion, openai.types.chat.ChatCompletion):
            raise self._bad(f"the answer is not a chat completion: {str(completion)[:200]!r}")
        choices = completion.choices
        if not isinstance(choices, list) or not choices or choices[0].message is None:
            raise self._bad("the answer holds no choices")
        choice = choices[0]
        message = choice.message
        calls: list[ToolCall] = []
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is None or not function.name:
                raise self._bad(f"a tool call without a function: {call!r}"[:300])
            arguments = json_arguments(function.arguments, tool=function.name, deployment=self.id)
            calls.append(ToolCall(id=call.id or "", name=function.name, arguments=arguments))
        return ModelResponse(
            text=message.content or "",
            tool_calls=tuple(calls),
            usage=_usage(completion.usage),
            model=completion.model,
            finish_reason=choice.finish_reason,
        )

    def _merged(self, chunks: list[ChatCompletionChunk]) -> ModelResponse:
        import openai.types.chat

        if not chunks:
            raise self._bad("the stream ended before its first chunk")
        merged = _Merged()
        for chunk in chunks:
            if not isinstance(chunk, openai.types.chat.ChatCompletionChunk):
                raise self._bad(f"a stream chunk is not a chat chunk: {str(chunk)[:200]!r}")
            merged.add(chunk)
        calls = tuple(
            ToolCall(
                id=call.id,
                name=call.name,
                arguments=json_arguments(call.arguments, tool=call.name, deployment=self.id),
            )
            for _, call in sorted(merged.calls.items())
        )
        return ModelResponse(
            text="".join(merged.text),
            tool_calls=calls,
            usage=_usage(merged.usage),
            model=merged.model,
            finish_reason=merged.finish_reason,
        )

    def _embeddings(self, answer: CreateEmbeddingResponse, count: int) -> EmbeddingResponse:
        data = answer.data
        if not isinstance(data, list) or len(data) != count:
            raise self._bad(f"asked for {count} embeddings, the answer does not hold them")
        ordered = sorted(data, key=lambda item: item.index)
        usage = answer.usage
        return EmbeddingResponse(
            vectors=tuple(tuple(float(x) for x in item.embedding) for item in ordered),
            usage=Usage(
                input_tokens=(usage.prompt_tokens or 0) if usage else 0,
                requests=1,
                raw=usage.model_dump(mode="json", exclude_unset=True) if usage else None,
            ),
            model=answer.model,
        )


async def _collect(client: AsyncOpenAI, params: dict[str, Any]) -> list[ChatCompletionChunk]:
    chunks: list[ChatCompletionChunk] = []
    stream = await client.chat.completions.create(**params)
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage(requests=1)
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        cached_input_tokens=(prompt_details.cached_tokens or 0) if prompt_details else 0,
        output_tokens=usage.completion_tokens or 0,
        reasoning_tokens=((completion_details.reasoning_tokens or 0) if completion_details else 0),
        requests=1,
        raw=usage.model_dump(mode="json", exclude_unset=True),
    )


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Merged:
    """A streamed answer, put back together chunk by chunk."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    model: str | None = None
    finish_reason: str | None = None
    usage: CompletionUsage | None = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            if delta.content:
                self.text.append(delta.content)
            for part in delta.tool_calls or ():
                call = self.calls.setdefault(part.index, _Call())
                call.id = part.id or call.id
                if part.function is not None:
                    call.name = part.function.name or call.name
                    call.arguments += part.function.arguments or ""


def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "parameters": parameters}
    if description:
        spec["description"] = description
    return {"type": "function", "function": spec}


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
        return out
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        # strict servers (llama-cpp-python) refuse a null content: empty text is valid everywhere
        out["content"] = message.content
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return out
