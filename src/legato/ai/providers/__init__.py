"""Wire protocols: ``openai`` (any OpenAI-compatible endpoint), ``anthropic``, ``local``."""

from __future__ import annotations

from collections.abc import Callable

from legato.ai.model import Capabilities, Model, ProviderSettings
from legato.ai.providers.formats import json_arguments, output_instruction, status_kind
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
