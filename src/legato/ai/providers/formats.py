"""What the wire protocols share: how an HTTP status is classified, how structured output is
asked for in a prompt, how a tool call's JSON arguments are read."""

from __future__ import annotations

import json
from typing import Any

from legato.ai.messages import OutputSpec
from legato.ai.model import ErrorKind, ModelError


def status_kind(status: int) -> ErrorKind:
    """How a failed HTTP answer is classified, by its status code alone."""
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status >= 500:
        return "server"
    return "bad_request"


def output_instruction(output: OutputSpec) -> str:
    """The system-prompt text that asks for structured output when nothing enforces it."""
    schema = json.dumps(output.schema_, ensure_ascii=False, sort_keys=True)
    return (
        f"Answer only with a JSON value ({output.name}) that matches this JSON Schema, "
        f"with no other text before or after it and no code fences:\n{schema}"
    )


def json_arguments(raw: str | None, *, tool: str, deployment: str) -> dict[str, Any]:
    """A tool call's JSON-encoded arguments as a dict, or a ``bad_response`` error."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ModelError(
            "bad_response",
            f"arguments of the call to tool {tool!r} are not a JSON object: {raw[:200]!r}",
            deployment=deployment,
        )
    return value
