"""Wire protocols: ``openai`` (any OpenAI-compatible endpoint), ``anthropic``, ``local``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from legato.ai.messages import OutputSpec
from legato.ai.model import Capabilities, ErrorKind, Model, ModelError, ProviderSettings
from legato.errors import ConfigurationError

__all__ = [
    "build_model",
    "json_arguments",
    "output_instruction",
    "status_kind",
]

Builder = Callable[[ProviderSettings, str, Capabilities | None], Model]


def _openai(settings: ProviderSettings, name: str, capabilities: Capabilities | None) -> Model:
    from legato.ai.providers.openai import OpenAIModel

    return OpenAIModel(settings, name, capabilities)


def _anthropic(settings: ProviderSettings, name: str, capabilities: Capabilities | None) -> Model:
    from legato.ai.providers.anthropic import AnthropicModel

    return AnthropicModel(settings, name, capabilities)


#: ``ProviderSettings.kind`` -> how to build a model speaking that protocol. A new kind is one
#: more entry here; builders import their module lazily so an optional SDK is only needed by
#: the deployments that use it.
_BUILDERS: dict[str, Builder] = {
    "openai": _openai,
    "anthropic": _anthropic,
}


def build_model(
    settings: ProviderSettings, name: str, capabilities: Capabilities | None = None
) -> Model:
    """The model ``name`` at the provider ``settings``, speaking the protocol ``settings.kind``."""
    builder = _BUILDERS.get(settings.kind)
    if builder is None:
        known = ", ".join(sorted(_BUILDERS))
        raise ConfigurationError(
            f"provider {settings.name!r} has unknown kind {settings.kind!r} (known kinds: {known})"
        )
    return builder(settings, name, capabilities)


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
