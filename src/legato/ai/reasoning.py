"""Reasoning depth: how hard a model may think before it answers, and what that may cost.

A depth is a level, ``"none"``, ``"low"``, ``"medium"`` or ``"high"``, or a number of tokens.
Each protocol maps it to its own control (the providers do, see ``providers/``):

- OpenAI's ``reasoning_effort``: the level as is; a number becomes the level whose allowance
  covers it (0 ``none``, up to 1024 ``low``, up to 8192 ``medium``, more ``high``);
- Anthropic's extended thinking, ``thinking={"type": "enabled", "budget_tokens": N}``: a
  number as is (at least 1024, the API's minimum), a level as its allowance below; ``none``
  sends no thinking at all.

Reasoning tokens are output tokens: providers count them in the output (OpenAI reports them
apart too, in ``usage.reasoning_tokens``), and they are priced as output. Before a call, the
budget check adds the depth's allowance to the most output the answer may take. For a level
sent to OpenAI the allowance is legato's estimate, not a cap the provider enforces.

A deployment without a reasoning control (``Capabilities.reasoning``) is sent no depth: the
call goes on, and ``LLMResult.notes`` says the depth was ignored there.
"""

from __future__ import annotations

import re
from typing import Literal

from legato.errors import ConfigurationError

Level = Literal["none", "low", "medium", "high"]
#: a level, or a number of thinking tokens
Reasoning = Level | int

LEVELS: tuple[Level, ...] = ("none", "low", "medium", "high")
#: thinking tokens a level may spend: Anthropic's ``budget_tokens`` and what budgets price
ALLOWANCE: dict[str, int] = {"none": 0, "low": 1024, "medium": 4096, "high": 16384}
#: Anthropic refuses a smaller ``budget_tokens``
MIN_THINKING = 1024

# Models known to take a reasoning control, by name (a deployment's config may say otherwise)
_OPENAI = re.compile(r"^(o[1-9](-|$)|gpt-5)")
_ANTHROPIC = re.compile(r"claude-(3-7|(opus|sonnet|haiku)-[4-9]|[4-9])")


def checked(value: object, where: str = "reasoning") -> Reasoning:
    """``value`` as a depth, or a :class:`ConfigurationError` that lists what is allowed."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigurationError(f"{where} must be one of {', '.join(LEVELS)} or a number of"
                                 f" tokens, got {value!r}")  # fmt: skip
    if isinstance(value, int):
        if value < 0:
            raise ConfigurationError(f"{where} must be at least 0 tokens, got {value}")
        return value
    if value not in LEVELS:
        raise ConfigurationError(
            f"{where} must be one of {', '.join(LEVELS)} or a number of tokens, got {value!r}"
        )
    return value


def allowance(depth: Reasoning | None) -> int:
    """The thinking tokens ``depth`` may spend (on top of the answer)."""
    if depth is None:
        return 0
    return depth if isinstance(depth, int) else ALLOWANCE[depth]


def thinking_budget(depth: Reasoning | None) -> int | None:
    """Anthropic's ``budget_tokens`` for ``depth``; None: no thinking."""
    tokens = allowance(depth)
    return None if tokens == 0 else max(tokens, MIN_THINKING)


def effort(depth: Reasoning) -> Level:
    """OpenAI's ``reasoning_effort`` for ``depth``."""
    if isinstance(depth, str):
        return depth
    if depth == 0:
        return "none"
    return "low" if depth <= 1024 else "medium" if depth <= 8192 else "high"


def known_to_reason(kind: str, model: str) -> bool:
    """Whether a model of this protocol takes a reasoning control, judged by its name."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    if kind == "openai":
        return bool(_OPENAI.match(name))
    if kind == "anthropic":
        return bool(_ANTHROPIC.search(name))
    return False
