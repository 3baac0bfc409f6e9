"""Anthropic's Messages protocol, through the official ``anthropic`` SDK.

The SDK is imported when the first request builds the client, and its own retries are off.
Structured output is asked for natively (``output_config``'s JSON Schema, mode ``native``, for
the models that have it: see :func:`native_output`), as a tool the model must call (``tool``)
or with instructions in the system prompt (``prompted``).
A reasoning depth turns on extended thinking; the API then forces no tool (the output tool
is asked for in the system prompt) and takes no temperature (it is left out).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from legato.ai import reasoning
from legato.ai.messages import Message, ModelRequest, ModelResponse, ToolCall
from legato.ai.model import Capabilities, ErrorKind
from legato.ai.providers.formats import output_instruction
from legato.ai.providers.sdk import SDKModel
from legato.ai.tokens import heuristic_tokens
from legato.ai.usage import Usage

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from anthropic.types import Message as AnthropicMessage
    from anthropic.types import Usage as AnthropicUsage

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicModel", "native_output"]

#: this protocol requires ``max_tokens``; used when the request leaves it open
DEFAULT_MAX_TOKENS = 1024

# Claude models with structured outputs (output_config.format): Opus 4.1, the 4.5 family and on
_STRUCTURED = re.compile(r"claude-(opus-4-1|(opus|sonnet|haiku)-4-[5-9]|(opus|sonnet|haiku)-[5-9])")


def native_output(model: str) -> bool:
    """Whether a Claude model takes a JSON Schema in ``output_config``, by its name (a
    deployment's ``native_output`` overrides it; a server that rejects it is remembered)."""
    return _STRUCTURED.search(model.lower()) is not None


class AnthropicModel(SDKModel["AsyncAnthropic"]):
    """A model behind Anthropic's Messages API (or an endpoint speaking it)."""

    sdk = "anthropic"
    default_capabilities = Capabilities(native_output=False)
    event_kinds: ClassVar[Mapping[str, ErrorKind]] = {
        "rate_limit_error": "rate_limit",
        "overloaded_error": "server",
        "api_error": "server",
        "timeout_error": "timeout",
        "authentication_error": "auth",
        "permission_error": "auth",
        "not_found_error": "not_found",
        "invalid_request_error": "bad_request",
        "request_too_large": "bad_request",
    }

    async def request(
        self, request: ModelRequest, *, timeout: float | None = None
    ) -> ModelResponse:
        client, params = self._call(request, timeout)
        if request.stream:
            message = await self._send(lambda: _streamed(client, params), request)
        else:
            message = await self._send(lambda: client.messages.create(**params), request)
        return self._read(self._response, message)

    def _new_client(self, sdk: Any) -> AsyncAnthropic:
        key = self.provider.key() or ""  # key() raises when there is none
        # The SDK sends the key as a bearer token; Anthropic's API and many servers speaking
        # its protocol read it from x-api-key.
        headers = {"x-api-key": key, **dict(self.provider.headers)}
        client: AsyncAnthropic = sdk.AsyncAnthropic(
            api_key=key,
            base_url=self.provider.base_url,
            timeout=self.provider.timeout,
            max_retries=0,
            default_headers=headers,
        )
        return client

    # -- request --------------------------------------------------------------------------

    def _features(self, request: ModelRequest) -> tuple[str, ...]:
        output = request.output
        return (f"output.{output.mode}",) if output and output.mode != "prompted" else ()

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        system_parts, turns, marked = _turns(request.messages)
        if request.system:
            system_parts.insert(0, request.system)
        tools = [_tool(t.name, t.description, t.parameters) for t in request.tools]
        params: dict[str, Any] = {
            "model": self.name,
            "max_tokens": (
                DEFAULT_MAX_TOKENS if request.max_tokens is None else request.max_tokens
            ),
            "messages": turns,
        }
        output = request.output
        if output is not None:
            if output.mode == "native":
                schema = closed(output.schema_)
                params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
            elif output.mode != "tool":  # prompted (JSON mode is not in this protocol)
                system_parts.append(output_instruction(output))
            else:
                description = str(output.schema_.get("description") or f"Give {output.name}.")
                tools.append(_tool(output.name, description, output.schema_))
                params["tool_choice"] = {"type": "tool", "name": output.name}
        thinking = reasoning.thinking_budget(request.reasoning)
        if thinking is not None:
            # thinking counts against max_tokens: the answer keeps the room it was given
            params["thinking"] = {"type": "enabled", "budget_tokens": thinking}
            params["max_tokens"] += thinking
            if output is not None and "tool_choice" in params:  # no forced tool with thinking
                params["tool_choice"] = {"type": "auto"}
                system_parts.append(f"Answer by calling the tool {output.name} once.")
        if system_parts:
            params["system"] = "\n\n".join(system_parts)
        if tools:
            params["tools"] = tools
        if request.temperature is not None and thinking is None:  # thinking takes the default
            # not a parameter of this SDK's messages.create (2.x): sent as is, for the server
            params["extra_body"] = {"temperature": request.temperature}
        if self.provider.prompt_cache:
            _mark_prefixes(params, marked)
        return params

    # -- answer ---------------------------------------------------------------------------

    def _response(self, message: AnthropicMessage) -> ModelResponse:
        import anthropic.types

        if not isinstance(message, anthropic.types.Message):
            raise self._bad(f"the answer is not a message: {str(message)[:200]!r}")
        if not isinstance(message.content, list):
            raise self._bad("the answer holds no content")
        text: list[str] = []
        calls: list[ToolCall] = []
        thinking: list[dict[str, Any]] = []
        for block in message.content:
            if isinstance(
                block, anthropic.types.ThinkingBlock | anthropic.types.RedactedThinkingBlock
            ):
                thinking.append(block.model_dump(mode="json", exclude_none=True))
            elif isinstance(block, anthropic.types.TextBlock):
                text.append(block.text or "")
            elif isinstance(block, anthropic.types.ToolUseBlock):
                arguments = block.input
                if not isinstance(arguments, dict):
                    raise self._bad(f"input of the call to tool {block.name!r} is not an object")
                calls.append(ToolCall(id=block.id or "", name=block.name, arguments=arguments))
        return ModelResponse(
            text="".join(text),
            tool_calls=tuple(calls),
            usage=_usage(message.usage),
            model=message.model,
            finish_reason=message.stop_reason,
            thinking=tuple(thinking),
        )


async def _streamed(client: AsyncAnthropic, params: dict[str, Any]) -> AnthropicMessage:
    """The message a streamed answer adds up to (text, tool input JSON, usage)."""
    async with client.messages.stream(**params) as stream:
        return await stream.get_final_message()


def closed(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that does not say:
    structured outputs accept only closed objects (extra keys are ignored by validation
    anyway)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _usage(usage: AnthropicUsage | None) -> Usage:
    if usage is None:
        return Usage(requests=1)
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + read + written,
        cached_input_tokens=read,
        cache_write_tokens=written,
        output_tokens=usage.output_tokens or 0,
        requests=1,
        raw=usage.model_dump(mode="json", exclude_unset=True),
    )


def _tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "input_schema": parameters}
    if description:
        spec["description"] = description
    return spec


def _turns(
    messages: tuple[Message, ...],
) -> tuple[list[str], list[dict[str, Any]], set[int]]:
    """System texts, the conversation as this protocol's turns, and the turns that end a
    prefix the caller marked for caching (``Message.cache``).

    Tool results travel in user turns; consecutive results share one turn.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    marked: set[int] = set()
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        elif message.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": message.content,
            }
            last = turns[-1] if turns else None
            if last is not None and last["role"] == "user" and _all_results(last["content"]):
                last["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif message.role == "assistant" and (message.tool_calls or message.thinking):
            blocks: list[dict[str, Any]] = [dict(b) for b in message.thinking]  # first, as sent
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            )
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": message.role, "content": message.content})
        if message.cache and message.role != "system":  # its text is in the latest turn
            marked.add(len(turns) - 1)
    return system, turns, marked


#: Anthropic caches no prefix shorter than this (2048 on Haiku models): a mark on a shorter
#: one is wasted, and a cache write costs more than plain input
MIN_CACHED_TOKENS = 1024
_EPHEMERAL = {"type": "ephemeral"}
_MAX_MARKS = 4  # the API's limit of cache breakpoints per request


def _mark_prefixes(params: dict[str, Any], marked: set[int]) -> None:
    """Ask the API to cache stable prefixes (this protocol caches only where it is told).

    Marked, when at least :data:`MIN_CACHED_TOKENS` long: the tools and system prompt (the
    same on every turn of an agent), the turns the caller marked (a long document), and in a
    conversation the latest turn, which the next turn's prompt begins with.
    """
    tools, turns = params.get("tools") or [], params["messages"]
    size = heuristic_tokens(json.dumps(tools)) + heuristic_tokens(params.get("system", ""))
    left = _MAX_MARKS
    if size >= MIN_CACHED_TOKENS:
        if "system" in params:
            params["system"] = [{"type": "text", "text": params["system"],
                                 "cache_control": _EPHEMERAL}]  # fmt: skip
        else:
            tools[-1] = {**tools[-1], "cache_control": _EPHEMERAL}
        left -= 1
    if len(turns) > 1:
        marked = marked | {len(turns) - 1}
    worth: list[int] = []
    for i, turn in enumerate(turns):
        size += heuristic_tokens(json.dumps(turn["content"]))
        if i in marked and size >= MIN_CACHED_TOKENS:
            worth.append(i)
    for i in worth[-left:] if left else ():
        turns[i]["content"] = _marked(turns[i]["content"])


def _marked(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A turn's content with a cache mark on its last block."""
    if isinstance(content, str):
        if not content:
            return content  # an empty text block is refused: nothing to mark
        return [{"type": "text", "text": content, "cache_control": _EPHEMERAL}]
    return [*content[:-1], {**content[-1], "cache_control": _EPHEMERAL}]


def _all_results(content: object) -> bool:
    return isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
