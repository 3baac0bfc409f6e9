"""What the wire protocols share: how an HTTP status is classified, what a server said in an
error body, which features a rejected request used, how structured output is asked for in a
prompt, how a tool call's JSON arguments are read."""

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


def server_message(body: object) -> str | None:
    """What the server said in an error body, in the shapes servers use: OpenAI's and
    Anthropic's ``{"error": {"message"}}``, vLLM's ``{"message"}``, Ollama's ``{"error": "..."}``,
    FastAPI's ``{"detail": "..." | [{"loc", "msg"}]}`` (llama-cpp-python, LiteLLM)."""
    if isinstance(body, str):
        return body.strip()[:1000] or None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:1000]
    if isinstance(error, str) and error:
        return error[:1000]
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        return "; ".join(_problem(item) for item in detail)[:1000]
    if detail:
        return str(detail)[:1000]
    message = body.get("message")
    return str(message)[:1000] if message else None


def _problem(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(p) for p in item.get("loc") or ())
    return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", item))


#: what a server says when it rejects a feature a request used, per feature: words any of
#: which, in an error about that request, mean "not supported here", not "try again"
FEATURE_WORDS: dict[str, tuple[str, ...]] = {
    "output.native": ("response_format", "json_schema", "json_object", "output_config",
                      "output_format", "structured output", "guided"),
    "output.json_object": ("response_format", "json_object", "json mode"),
    "output.tool": ("tool_choice", "tool", "function"),
}  # fmt: skip
#: statuses servers answer an unsupported feature with: 400/422 (validation), 404 or 501 (no
#: such endpoint option), and 500 from servers that let a validation error escape
_REJECTING = frozenset({400, 404, 422, 500, 501})


def rejected_feature(status: int | None, message: str, used: tuple[str, ...]) -> str | None:
    """The feature among ``used`` (names of :data:`FEATURE_WORDS`) that an error answer with
    ``status`` and ``message`` rejects, or None when it is about something else."""
    if status not in _REJECTING:
        return None
    text = message.lower()
    for feature in used:
        if any(word in text for word in FEATURE_WORDS[feature]):
            return feature
    return None


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
