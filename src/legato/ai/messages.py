"""What goes to a model and what comes back, independent of any provider's wire format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from legato.ai.reasoning import Reasoning
from legato.ai.usage import Usage
from legato.errors import ConfigurationError

Role = Literal["system", "user", "assistant", "tool"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    """A call the model asks for: the provider's id, the tool's name and its arguments."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(_Frozen):
    """One turn of a conversation.

    ``tool_calls`` is set on assistant turns that ask for tools; ``tool_call_id`` on the
    ``tool`` turns that answer them.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    #: a stable prefix ends here (a long document asked about again): providers that need
    #: marks to cache a prompt (Anthropic) are told to cache up to this message
    cache: bool = False
    #: the provider's reasoning blocks of an assistant turn, as it sent them (opaque, signed):
    #: sent back with the turn, as Anthropic requires in a tool loop with thinking on
    thinking: tuple[dict[str, Any], ...] = ()


class ToolSpec(_Frozen):
    """A tool offered to the model: its name, what it does and its arguments' JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


OutputMode = Literal["native", "json_object", "tool", "prompted"]


class OutputSpec(_Frozen):
    """A structured output the caller wants: a name and the JSON Schema of its type.

    ``mode`` says how the provider is asked for it: its native structured output (a JSON
    Schema the server enforces), JSON mode (JSON enforced, the schema asked for in the
    prompt), a tool the model must call, or instructions in the prompt (always validated
    afterwards, whatever the mode).
    """

    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    mode: OutputMode = "native"

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ModelRequest(_Frozen):
    """Everything a provider needs for one call; providers translate it to their wire format."""

    messages: tuple[Message, ...]
    system: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    output: OutputSpec | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    #: how hard the model may think (see legato.ai.reasoning); None: the provider's default
    reasoning: Reasoning | None = None


class ModelResponse(_Frozen):
    """What a provider answered, normalised. ``model`` is the name the provider reported."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None
    finish_reason: str | None = None
    #: reasoning blocks to send back with this turn (see ``Message.thinking``)
    thinking: tuple[dict[str, Any], ...] = ()


class EmbeddingResponse(_Frozen):
    """Vectors for the texts, in order, and what producing them used."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None


def as_messages(prompt: str | Sequence[Message | Mapping[str, Any]]) -> tuple[Message, ...]:
    """A prompt given as text, or as messages (objects or dicts), as a tuple of messages."""
    if isinstance(prompt, str):
        if not prompt:
            raise ConfigurationError("a prompt must not be empty")
        return (Message(role="user", content=prompt),)
    out: list[Message] = []
    for i, item in enumerate(prompt):
        if isinstance(item, Message):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(Message.model_validate(dict(item)))
            except ValueError as exc:
                raise ConfigurationError(f"message {i} is not a valid message: {exc}") from None
        else:
            raise ConfigurationError(
                f"message {i} must be a legato Message or a dict, got {type(item).__name__}"
            )
    if not out:
        raise ConfigurationError("a prompt must hold at least one message")
    return tuple(out)
