"""Context trimming: what is kept, what goes first, tool-call groups, truncation, and
properties over random conversations."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.ai.context_window import MESSAGE_OVERHEAD, Trimmed, message_tokens, trim
from legato.ai.messages import Message, ToolCall
from legato.errors import ConfigurationError


def words(text: str) -> int:
    return len(text.split())


def text(label: str, size: int) -> str:
    return " ".join([label] * size)


def user(label: str, size: int = 10) -> Message:
    return Message(role="user", content=text(label, size))


def assistant(label: str, size: int = 10) -> Message:
    return Message(role="assistant", content=text(label, size))


def calling(label: str, *ids: str) -> Message:
    calls = tuple(ToolCall(id=i, name="lookup", arguments={"q": label}) for i in ids)
    return Message(role="assistant", content=label, tool_calls=calls)


def answer(call_id: str, size: int = 10) -> Message:
    return Message(role="tool", tool_call_id=call_id, content=text(f"result-{call_id}", size))


def cost(messages: tuple[Message, ...] | list[Message], system: str | None = None) -> int:
    fixed = MESSAGE_OVERHEAD + words(system) if system is not None else 0
    return fixed + sum(message_tokens(m, words) for m in messages)


CHAT = [
    user("task", 20),
    assistant("a1"),
    user("u2"),
    assistant("a2"),
    user("u3"),
    assistant("a3"),
    user("u4"),
]


def test_nothing_is_trimmed_when_it_fits() -> None:
    result = trim(CHAT, system="be brief", limit=10_000, count=words)
    assert result == Trimmed(
        messages=tuple(CHAT), dropped=0, truncated=False, tokens=cost(CHAT, "be brief")
    )
    exact = trim(CHAT, system="be brief", limit=cost(CHAT, "be brief"), count=words)
    assert exact.messages == tuple(CHAT) and exact.dropped == 0


def test_a_message_costs_its_content_its_tool_calls_and_an_overhead() -> None:
    call = calling("find it", "c1")
    expected = words("find it") + words(json.dumps([call.tool_calls[0].model_dump(mode="json")]))
    assert message_tokens(call, words) == MESSAGE_OVERHEAD + expected
    assert message_tokens(user("x", 7), words) == MESSAGE_OVERHEAD + 7


def test_the_oldest_middle_turns_go_first() -> None:
    full = cost(CHAT, "be brief")
    result = trim(CHAT, system="be brief", limit=full - 1, count=words)
    assert result.messages == (CHAT[0], *CHAT[2:])  # a1 went; the task stayed
    assert result.dropped == 1 and not result.truncated
    assert result.tokens == cost(result.messages, "be brief") <= full - 1
    smaller = trim(CHAT, system="be brief", limit=full - 30, count=words)
    assert smaller.messages == (CHAT[0], *CHAT[4:])
    assert smaller.dropped == 3


def test_the_first_user_message_the_last_turn_and_the_system_prompt_stay() -> None:
    system = text("rules", 30)
    needed = cost([CHAT[0], CHAT[-1]], system)
    result = trim(CHAT, system=system, limit=needed, count=words)
    assert result.messages == (CHAT[0], CHAT[-1])
    assert result.dropped == 5 and result.tokens == needed


def test_reserve_leaves_room_for_the_answer() -> None:
    full = cost(CHAT)
    assert trim(CHAT, system=None, limit=full, count=words).dropped == 0
    result = trim(CHAT, system=None, limit=full, count=words, reserve=20)
    assert result.dropped > 0 and result.tokens <= full - 20


def test_a_tool_call_and_its_answers_go_together() -> None:
    chat = [
        user("task"),
        calling("look twice", "c1", "c2"),
        answer("c1"),
        answer("c2"),
        assistant("found"),
        user("thanks"),
    ]
    full = cost(chat)
    # dropping the calling turn alone would be enough, but its answers go with it
    result = trim(chat, system=None, limit=full - 5, count=words)
    assert result.messages == (chat[0], chat[4], chat[5])
    assert result.dropped == 3


def test_the_last_turn_keeps_its_tool_call() -> None:
    chat = [user("task"), assistant("a1", 50), calling("look", "c1"), answer("c1", 5)]
    result = trim(chat, system=None, limit=cost(chat) - 50, count=words)
    assert result.messages == (chat[0], chat[2], chat[3])


def test_too_long_essentials_lose_their_middle() -> None:
    chat = [user("task", 400), assistant("a1"), user("now", 5)]
    result = trim(chat, system="be brief", limit=100, count=words)
    assert result.truncated and result.dropped == 1
    assert result.tokens == cost(result.messages, "be brief") <= 100
    first, last = result.messages
    assert last == chat[-1]  # only the longest text was cut
    assert first.role == "user" and first.content.startswith("task task")
    assert first.content.endswith("task task")
    trimmed = int(first.content.split("[... ")[1].split(" ")[0])
    assert trimmed == 400 - words(first.content.replace(f"[... {trimmed} tokens trimmed ...]", ""))


def test_the_longest_essential_is_cut_first_then_the_next() -> None:
    chat = [user("task", 60), assistant("a", 5), calling("look", "c1"), answer("c1", 200)]
    result = trim(chat, system=None, limit=150, count=words)
    first, call, tool = result.messages
    assert first == chat[0] and call == chat[2]  # the 200-word tool result was cut
    assert "tokens trimmed" in tool.content and tool.tool_call_id == "c1"
    both = trim(chat, system=None, limit=40, count=words)
    assert all("tokens trimmed" in m.content for m in (both.messages[0], both.messages[2]))
    assert both.tokens <= 40


def test_a_system_prompt_that_alone_is_too_long_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="the system prompt alone takes 104 tokens"):
        trim(CHAT, system=text("rule", 100), limit=100, count=words)
    with pytest.raises(ConfigurationError, match="50 reserved for the answer"):
        trim(CHAT, system=text("rule", 60), limit=100, count=words, reserve=50)
    with pytest.raises(ConfigurationError, match="more than the context window's 10"):
        trim(CHAT, system=None, limit=10, count=words, reserve=20)


def test_a_window_too_small_for_even_the_markers_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="too few for the messages that must be kept"):
        trim(CHAT, system="be brief", limit=20, count=words)


def test_no_messages() -> None:
    assert trim([], system="hi", limit=10, count=words) == Trimmed(
        messages=(), dropped=0, truncated=False, tokens=MESSAGE_OVERHEAD + 1
    )


def test_system_messages_in_the_list_are_kept() -> None:
    chat = [Message(role="system", content="policy"), *CHAT]
    result = trim(chat, system=None, limit=cost(chat) - 30, count=words)
    assert result.messages[:2] == (chat[0], chat[1])


# -- properties -----------------------------------------------------------------------------


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    messages: list[Message] = []
    turns = draw(st.integers(min_value=1, max_value=12))
    for turn in range(turns):
        kind = draw(st.sampled_from(["user", "assistant", "tools", "system"]))
        size = draw(st.integers(min_value=0, max_value=60))
        label = f"m{turn}"
        if kind == "tools":
            ids = [f"{label}c{i}" for i in range(draw(st.integers(min_value=1, max_value=3)))]
            messages.append(calling(label, *ids))
            messages += [answer(i, draw(st.integers(min_value=0, max_value=40))) for i in ids]
        else:
            content = " ".join([label] * size) if size else ""
            messages.append(Message(role=kind, content=content))
    # a name makes every message unique, so the kept ones can be traced back
    return [m.model_copy(update={"name": f"n{i}"}) for i, m in enumerate(messages)]


MARKER = words("[... 1 tokens trimmed ...]")


def smallest_possible(messages: list[Message], system: str | None) -> int:
    """What the kept essentials cost with every text cut to a bare marker."""
    groups: list[list[Message]] = []
    for message in messages:
        if message.role == "tool" and groups and groups[-1][0].tool_calls:
            groups[-1].append(message)
        else:
            groups.append([message])
    first_user = next((i for i, g in enumerate(groups) if g[0].role == "user"), None)
    keep = {i for i, g in enumerate(groups) if g[0].role == "system"} | {len(groups) - 1}
    keep |= {first_user} if first_user is not None else set()
    total = MESSAGE_OVERHEAD + words(system) if system is not None else 0
    for i in keep:
        for message in groups[i]:
            full = message_tokens(message, words)
            total += full - words(message.content) + min(words(message.content), MARKER)
    return total


def origin(kept: Message, messages: list[Message], start: int) -> int:
    """Where ``kept`` is in ``messages`` at or after ``start`` (the same message, or it cut)."""
    for i in range(start, len(messages)):
        original = messages[i]
        if kept == original or (
            "tokens trimmed ...]" in kept.content
            and kept.model_copy(update={"content": original.content}) == original
        ):
            return i
    raise AssertionError(f"{kept!r} is not in the input after position {start}")


@settings(max_examples=400, deadline=None)
@given(
    conversations(),
    st.none() | st.text(alphabet="ab ", max_size=40),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=30),
)
def test_trimmed_conversations_fit_keep_order_and_never_orphan_a_tool_message(
    messages: list[Message], system: str | None, limit: int, reserve: int
) -> None:
    room = limit - reserve
    try:
        result = trim(messages, system=system, limit=limit, count=words, reserve=reserve)
    except ConfigurationError:
        assert room < 0 or smallest_possible(messages, system) > room
        return
    assert result.tokens == cost(result.messages, system) <= room
    assert result.dropped == len(messages) - len(result.messages)
    # a subsequence of the input, in order
    positions: list[int] = []
    for kept in result.messages:
        positions.append(origin(kept, messages, positions[-1] + 1 if positions else 0))
    if not result.truncated:
        assert all(kept == messages[i] for kept, i in zip(result.messages, positions, strict=True))
    # the last message and the first user message are kept
    assert positions[-1] == len(messages) - 1
    first_user = next((i for i, m in enumerate(messages) if m.role == "user"), None)
    assert first_user is None or first_user in positions
    assert all(messages[i].role != "system" or i in positions for i in range(len(messages)))
    # every tool message follows the assistant turn that called it
    for j, kept in enumerate(result.messages):
        if kept.role == "tool":
            before = result.messages[:j]
            opener = next(m for m in reversed(before) if m.role != "tool")
            assert kept.tool_call_id in {c.id for c in opener.tool_calls}
    if smallest_possible(messages, system) <= room and cost(messages, system) <= room:
        assert result.dropped == 0 and not result.truncated


@settings(max_examples=200, deadline=None)
@given(conversations(), st.integers(min_value=0, max_value=400))
def test_a_character_counter_works_too(messages: list[Message], limit: int) -> None:
    def chars(text: str) -> int:
        return (len(text) + 3) // 4

    try:
        result = trim(messages, system="be brief", limit=limit, count=chars)
    except ConfigurationError:
        return
    recount = MESSAGE_OVERHEAD + chars("be brief")
    recount += sum(message_tokens(m, chars) for m in result.messages)
    assert result.tokens == recount <= limit


def test_trimming_in_blocks_keeps_the_prompt_start_while_the_conversation_grows() -> None:
    """An agent's next turn appends to the conversation: dropping turns one by one would change
    the prompt's start on every turn (a prompt-cache miss); in blocks it stays until the next
    block must go."""
    chat = [user("task", 20)]
    for i in range(40):
        chat += [assistant(f"a{i}"), user(f"u{i}")]
    limit = 300
    starts = []
    for turns in range(10, len(chat), 2):
        kept = trim(chat[:turns], system=None, limit=limit, count=words, block=100).messages
        assert cost(kept) <= limit and kept[0] == chat[0]
        starts.append(kept[1])  # what follows the task: where the dropped turns were
    changes = sum(a != b for a, b in itertools.pairwise(starts))
    assert changes <= len(starts) // 4  # one by one, it changes at nearly every turn
    one_by_one = [trim(chat[:t], system=None, limit=limit, count=words).messages[1]
                  for t in range(10, len(chat), 2)]  # fmt: skip
    assert sum(a != b for a, b in itertools.pairwise(one_by_one)) > changes * 3
