"""Structured output: how to ask each deployment for a type, and how to read its answer.

Whatever the mode, the answer is validated with pydantic; errors go back to the model for a
bounded number of repairs (see pipeline.py), each repair a paid request counted in usage.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from legato.ai.messages import Message, ModelRequest, ModelResponse, OutputMode, OutputSpec
from legato.ai.model import Model

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def output_modes(
    model: Model, *, has_tools: bool, rejected: frozenset[str] = frozenset()
) -> list[OutputMode]:
    """The ways to ask ``model`` for structured output, best first: native structured output
    (a JSON Schema the server enforces), JSON mode (JSON enforced, the schema in the prompt),
    a forced tool call (not when the caller offers tools: a forced tool would stop the model
    using them), instructions in the prompt. Ways its protocol or capabilities lack, and ways
    its server rejected (``rejected``: ``output.<mode>``), are left out; prompting remains."""
    caps = model.capabilities
    usable = {
        "native": caps.native_output,
        "json_object": caps.native_output,
        "tool": caps.tools and not has_tools,
        "prompted": True,
    }
    modes = [m for m in model.output_modes if usable[m] and f"output.{m}" not in rejected]
    return modes if "prompted" in modes else [*modes, "prompted"]


def output_spec(output: Any, mode: OutputMode) -> OutputSpec:
    return OutputSpec(name=type_name(output), schema=schema_of(output), mode=mode)


def type_name(output: Any) -> str:
    name = getattr(output, "__name__", None) or "output"
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def schema_of(output: Any) -> dict[str, Any]:
    return TypeAdapter(output).json_schema()


class Invalid(Exception):
    """The answer does not validate; ``message`` is what the model is told."""


def parse(output: Any, spec: OutputSpec, response: ModelResponse) -> Any:
    """The validated output, or :class:`Invalid` with what was wrong."""
    adapter: TypeAdapter[Any] = TypeAdapter(output)
    call = next((c for c in response.tool_calls if c.name == spec.name), None)
    raw: Any = call.arguments if call is not None else _json(response.text)
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        raise Invalid(problems) from None


def _json(text: str) -> Any:
    if not text.strip():
        raise Invalid("the answer was empty; answer with JSON only")
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        pass
    import json_repair  # a cheap fix (a trailing comma, a missing quote) before a re-ask

    repaired = json_repair.loads(body)
    if isinstance(repaired, dict | list) and repaired:
        return repaired
    raise Invalid("the answer was not JSON; answer with JSON only, no prose")


def repair(request: ModelRequest, response: ModelResponse, problem: str) -> ModelRequest:
    """The request again, with the model's answer and what was wrong with it appended."""
    spec = request.output
    assert spec is not None
    note = (
        f"Your answer did not match the required schema: {problem}. Answer again with only"
        f" JSON matching this schema: {json.dumps(spec.schema_)}"
    )
    call = next((c for c in response.tool_calls if c.name == spec.name), None)
    turns: list[Message] = [
        Message(
            role="assistant",
            content=response.text,
            tool_calls=response.tool_calls,
            thinking=response.thinking,
        )
    ]
    if response.tool_calls:  # every tool call must be answered before the conversation goes on
        for c in response.tool_calls:
            text = note if c is call else "Not run: answer with the required output."
            turns.append(Message(role="tool", content=text, tool_call_id=c.id, name=c.name))
        if call is None:
            turns.append(Message(role="user", content=note))
    else:
        turns.append(Message(role="user", content=note))
    return request.model_copy(update={"messages": (*request.messages, *turns)})
