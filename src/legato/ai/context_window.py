"""Fitting a conversation into a model's context window.

:func:`trim` keeps, in this order of priority: the system prompt (always), the first user
message (the task), and the latest turns; it drops the oldest turns in between first. An
assistant turn that asks for tools and the tool messages answering it are one unit: kept or
dropped together, so no tool result is ever left without the call it answers. Messages with
the role ``system`` are kept like the system prompt.

:func:`compactable` splits a conversation for compaction instead (an agent's option, see
``legato.Compaction``): the first user message and the latest turns stay, the turns between
go to a cheap model as a :func:`transcript` and come back as one summary.

If what must be kept does not fit on its own, the longest kept text (never the system
prompt) loses its middle to a marker, ``[... N tokens trimmed ...]``, then the next longest,
and so on. Only a system prompt that alone exceeds the room raises ``ConfigurationError``
(or a window so small that the kept messages cannot fit even as bare markers).

Tokens are counted by a function the caller passes (a tokenizer, or an estimate). A message
costs ``count(content)``, plus ``count`` of the JSON of its tool calls, plus
:data:`MESSAGE_OVERHEAD` for its role and framing; the system prompt costs the same as a
message holding it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from legato.ai.messages import Message
from legato.errors import ConfigurationError

#: Tokens added per message for its role and framing (OpenAI's chat format uses 3 or 4).
MESSAGE_OVERHEAD = 4
#: Counts the tokens of a text: a tokenizer, or an estimate.
TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Trimmed:
    """A conversation that fits: the messages kept (in their order), how many were dropped,
    whether a text lost its middle, and the estimated tokens (system prompt included)."""

    messages: tuple[Message, ...]
    dropped: int
    truncated: bool
    tokens: int


def message_tokens(message: Message, count: TokenCounter) -> int:
    """What one message costs: content, the JSON of its tool calls, and the overhead."""
    tokens = MESSAGE_OVERHEAD + count(message.content)
    if message.tool_calls:
        calls = [call.model_dump(mode="json") for call in message.tool_calls]
        tokens += count(json.dumps(calls, ensure_ascii=False))
    return tokens


def trim(
    messages: Sequence[Message],
    *,
    system: str | None,
    limit: int,
    count: TokenCounter,
    reserve: int = 0,
    block: int = 0,
) -> Trimmed:
    """The messages that fit in ``limit - reserve`` tokens with the system prompt.

    ``reserve`` is room kept free, for the answer. See the module docstring for what is kept.
    With ``block``, older turns go in blocks of that many tokens counted from the oldest, so
    the next, longer request of the same conversation drops the same turns (its prompt
    begins the same, which providers' prompt caches need) until another block must go.
    """
    room = limit - reserve
    if room < 0:
        raise ConfigurationError(
            f"{reserve} tokens reserved for the answer, more than the context window's {limit}"
        )
    fixed = MESSAGE_OVERHEAD + count(system) if system is not None else 0
    if fixed > room:
        raise ConfigurationError(
            f"the system prompt alone takes {fixed} tokens, more than the {room} the context"
            f" window leaves (limit {limit}, {reserve} reserved for the answer); shorten it"
            " or use a model with a larger context window"
        )
    units = _units(messages)
    costs = [sum(message_tokens(m, count) for m in unit) for unit in units]
    kept = [True] * len(units)
    pinned = _pinned(units)
    total = fixed + sum(costs)
    excess = total - room
    if block > 0 and excess > 0:  # whole blocks: the cut moves only when a block must go
        excess = -(-excess // block) * block
    dropped_tokens = 0
    for i in range(len(units)):  # oldest first
        if dropped_tokens >= excess:
            break
        if i not in pinned:
            kept[i] = False
            dropped_tokens += costs[i]
    total -= dropped_tokens
    out = [m for unit, keep in zip(units, kept, strict=True) for m in (unit if keep else ())]
    dropped = len(messages) - len(out)
    truncated = False
    if total > room:
        out, total = _truncate(out, total - room, count, room)
        truncated = True
    return Trimmed(messages=tuple(out), dropped=dropped, truncated=truncated, tokens=total)


def compactable(
    messages: Sequence[Message], keep: int
) -> tuple[list[Message], list[Message], list[Message]] | None:
    """``(head, older, latest)``: what compaction keeps before the summary (system messages
    and the first user message, the task), the turns a summary may replace, and the latest
    ``keep`` turns (a tool call and its results are one turn). None: nothing to compact."""
    units = _units(messages)
    first_user = next((i for i, unit in enumerate(units) if unit[0].role == "user"), None)
    if first_user is None:
        return None
    start = max(first_user + 1, len(units) - keep)
    middle = units[first_user + 1 : start]
    if not any(unit[0].role != "system" for unit in middle):
        return None
    head = [*units[: first_user + 1], *(u for u in middle if u[0].role == "system")]
    older = [u for u in middle if u[0].role != "system"]
    return _flat(head), _flat(older), _flat(units[start:])


def transcript(messages: Sequence[Message]) -> str:
    """Turns as plain text for a model to summarize: who said what, which tools were called
    with which arguments, and what they returned."""
    lines: list[str] = []
    for message in messages:
        if message.role == "tool":
            lines.append(
                f"tool {message.name or ''} returned: {message.content}".replace("  ", " ")
            )
            continue
        if message.content:
            lines.append(f"{message.role}: {message.content}")
        for call in message.tool_calls:
            arguments = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
            lines.append(f"{message.role} called {call.name} with {arguments}")
    return "\n".join(lines)


def _flat(units: Sequence[Sequence[Message]]) -> list[Message]:
    return [m for unit in units for m in unit]


def _units(messages: Sequence[Message]) -> list[list[Message]]:
    """Messages grouped so that tool messages stay with the assistant turn calling them."""
    units: list[list[Message]] = []
    for message in messages:
        if message.role == "tool" and units and units[-1][0].tool_calls:
            units[-1].append(message)  # an answer to the call that opens the unit
        else:
            units.append([message])
    return units


def _pinned(units: Sequence[Sequence[Message]]) -> set[int]:
    """The units that are never dropped: the first user message's, the last, system ones."""
    pinned = {i for i, unit in enumerate(units) if unit[0].role == "system"}
    first_user = next((i for i, unit in enumerate(units) if unit[0].role == "user"), None)
    if first_user is not None:
        pinned.add(first_user)
    if units:
        pinned.add(len(units) - 1)
    return pinned


def _truncate(
    messages: list[Message], excess: int, count: TokenCounter, room: int
) -> tuple[list[Message], int]:
    """Cut the middle of the longest texts until ``excess`` tokens are gone."""
    out = list(messages)
    original = [m.content for m in messages]
    floor = [False] * len(out)  # already cut down to the marker alone
    while excess > 0:
        candidates = [i for i in range(len(out)) if not floor[i] and out[i].content]
        if not candidates:
            raise ConfigurationError(
                f"the context window leaves {room} tokens, too few for the messages that must"
                " be kept (the first user message and the latest turn) even with their text"
                " cut to a marker; use a model with a larger context window"
            )
        i = max(candidates, key=lambda j: count(out[j].content))
        now = count(out[i].content)
        text, floor[i] = _cut(original[i], now - excess, count)
        if count(text) >= now:  # too short to gain anything from a marker
            floor[i] = True
            continue
        excess -= now - count(text)
        out[i] = out[i].model_copy(update={"content": text})
    return out, room + excess


def _cut(text: str, target: int, count: TokenCounter) -> tuple[str, bool]:
    """``text`` with its middle replaced by a marker, in at most ``target`` tokens if it can
    be (else the marker alone); and whether it is the marker alone."""
    total = count(text)

    def joined(keep: int) -> str:
        if not keep:
            return f"[... {total} tokens trimmed ...]"
        head, tail = text[:keep], text[-keep:]
        gone = max(total - count(head) - count(tail), 1)
        return f"{head}\n[... {gone} tokens trimmed ...]\n{tail}"

    low, high, best = 1, (len(text) - 1) // 2, joined(0)
    while low <= high:  # the most characters kept at each end that still fit
        keep = (low + high) // 2
        candidate = joined(keep)
        if count(candidate) <= target:
            best, low = candidate, keep + 1
        else:
            high = keep - 1
    return best, best == joined(0)
