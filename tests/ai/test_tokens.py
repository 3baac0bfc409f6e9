"""Token estimates before a call: the genuine BPE for OpenAI names, a heuristic otherwise."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import pytest

from legato.ai import tokens
from legato.ai.messages import Message, ModelRequest, OutputSpec, ToolCall, ToolSpec
from legato.ai.model import Capabilities
from legato.ai.tokens import (
    DEFAULT_MAX_OUTPUT,
    encoding_for,
    estimate_request,
    estimate_tokens,
    heuristic_tokens,
    max_output,
)

GERMAN = (
    "Die Verarbeitung der personenbezogenen Daten erfolgt ausschließlich zur Erfüllung des"
    " Vertrages."
)

#: texts of each kind the heuristic must not under-count (see heuristic_tokens' docstring)
SAMPLES = {
    "english": (
        "The quick brown fox jumps over the lazy dog. Durable workflows keep their state in a"
        " journal, so a crash never loses finished steps. Please review the attached proposal"
        " and let me know by Friday whether the budget works for your team."
    ),
    "code": (
        "def fibonacci(n: int) -> list[int]:\n"
        '    """Return the first n Fibonacci numbers."""\n'
        "    out: list[int] = [0, 1]\n"
        "    while len(out) < n:\n"
        "        out.append(out[-1] + out[-2])\n"
        "    return out[:n]\n"
    ),
    "json": (
        '{"type": "object", "properties": {"name": {"type": "string", "description": "The'
        ' customer name"}, "age": {"type": "integer", "minimum": 0}}, "required": ["name"]}'
    ),
    "sql": (
        "SELECT u.id, u.email, COUNT(o.id) AS orders FROM users u LEFT JOIN orders o ON"
        " o.user_id = u.id WHERE u.created_at >= '2024-01-01' GROUP BY u.id HAVING"
        " COUNT(o.id) > 3;"
    ),
    "german": GERMAN,
    "french": (
        "Nous avons bien reçu votre candidature et nous vous remercions de l'intérêt que vous"
        " portez à notre entreprise."
    ),
    "russian": "Быстрая коричневая лиса прыгает через ленивую собаку. Пожалуйста, проверьте.",
    "greek": "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",  # noqa: RUF001
    "hebrew": "השועל החום המהיר קופץ מעל הכלב העצלן. אנא עיין בהצעה המצורפת.",
    "arabic": "الثعلب البني السريع يقفز فوق الكلب الكسول. يرجى مراجعة الاقتراح المرفق.",
    "chinese": (
        "敏捷的棕色狐狸跳过了懒狗。请查看附件中的提案，"  # noqa: RUF001
        "并在周五之前告诉我预算是否适合您的团队。"
    ),
    "japanese": "素早い茶色の狐がのろまな犬を飛び越える。添付の提案書をご確認ください。",
    "korean": "빠른 갈색 여우가 게으른 개를 뛰어넘습니다. 첨부된 제안서를 검토하시고 알려주세요.",
    "hindi": "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है। कृपया संलग्न प्रस्ताव की समीक्षा करें।",
    "emoji": "Great job team 🎉🚀🔥 thanks 🙏😊👍 see you 👋",
    "ids": "550e8400-e29b-41d4-a716-446655440000 a3f5c9e1b2d4 0x7fffffffffff",
    "numbers": "3.14159 2.71828 42 1000000 2024-05-17 12:30:45 +1 (555) 123-4567 192.168.0.1",
    "base64": "SGVsbG8gV29ybGQhIFRoaXMgaXMgYSBiYXNlNjQgZW5jb2RlZCBzdHJpbmc=",
    "url": "https://www.example.com/api/v2/users/12345/orders?status=pending&page=3",
}


def bpe(encoding: str) -> Any:
    with warnings.catch_warnings():  # bpe-openai 0.1.4 uses a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        return bpe_openai.get_encoding(encoding)


def real(text: str, encoding: str) -> int:
    return len(bpe(encoding).encode_ordinary(text))


# ------------------------------------------------------------------------------- BPE


def test_hello_world_is_two_tokens_in_both_openai_vocabularies() -> None:
    assert estimate_tokens("hello world", "gpt-4o") == 2
    assert estimate_tokens("hello world", "gpt-4") == 2
    assert bpe("o200k_base").encode_ordinary("hello world") == [24912, 2375]  # tiktoken's ids


def test_known_counts_tell_the_vocabularies_apart() -> None:
    # o200k is far more efficient on German and Chinese than cl100k: the right one is used
    assert estimate_tokens(GERMAN, "gpt-4o") == real(GERMAN, "o200k_base") == 16
    assert estimate_tokens(GERMAN, "gpt-4") == real(GERMAN, "cl100k_base") == 27
    chinese = "敏捷的棕色狐狸跳过了懒狗。"
    assert estimate_tokens(chinese, "gpt-4.1-mini") == 14
    assert estimate_tokens(chinese, "gpt-3.5-turbo") == 25
    assert estimate_tokens("The quick brown fox jumps over the lazy dog.", "gpt-4") == 10


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o1-preview", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("openai:gpt-4o", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("claude-sonnet-4-5", None),
        ("llama3:8b", None),
        ("mistral-large-latest", None),
        ("o100", None),
        ("", None),
    ],
)
def test_encoding_by_model_name(model: str, encoding: str | None) -> None:
    assert encoding_for(model) == encoding


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_openai_counts_are_the_genuine_bpe(name: str) -> None:
    text = SAMPLES[name]
    assert estimate_tokens(text, "gpt-4o") == real(text, "o200k_base")
    assert estimate_tokens(text, "gpt-4") == real(text, "cl100k_base")


def test_long_text_is_counted_in_chunks_close_to_the_whole() -> None:
    text = SAMPLES["english"] * 600  # ~140k characters: above one chunk
    whole = real(text, "o200k_base")
    counted = estimate_tokens(text, "gpt-4o")
    assert whole <= counted <= whole + 10  # a cut between chunks can cost a token, never less


def test_special_token_text_is_counted_as_plain_text() -> None:
    # what a user writes is text; bpe-openai's encode() would refuse it
    assert estimate_tokens("<|endoftext|> hi", "gpt-4o") == real("<|endoftext|> hi", "o200k_base")


def test_empty_text_is_zero_tokens() -> None:
    assert estimate_tokens("", "gpt-4o") == 0
    assert estimate_tokens("", "claude-sonnet-4-5") == 0
    assert heuristic_tokens("") == 0


def test_without_bpe_openai_the_heuristic_is_used_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_encodings", {})
    monkeypatch.setitem(sys.modules, "bpe_openai", None)  # import fails
    text = SAMPLES["english"]
    assert estimate_tokens(text, "gpt-4o") == heuristic_tokens(text)
    request = ModelRequest(messages=(Message(role="user", content=text),))
    assert estimate_request(request, "gpt-4o") == estimate_request(request, "claude-3-opus")


# ------------------------------------------------------------------------------- heuristic


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_heuristic_errs_high_never_far_low(name: str) -> None:
    """Measured against the larger of o200k and cl100k: at most 15% under, at most 1.6x over."""
    text = SAMPLES[name]
    truth = max(real(text, "o200k_base"), real(text, "cl100k_base"))
    estimate = heuristic_tokens(text)
    assert estimate >= 0.85 * truth, (name, estimate, truth)
    assert estimate <= 1.6 * truth, (name, estimate, truth)
    assert estimate_tokens(text, "claude-sonnet-4-5") == estimate


def test_heuristic_beats_bytes_over_four_where_that_fails() -> None:
    # bytes / 4 under-counts ids, numbers and CJK by half or more; the heuristic does not
    for name in ("ids", "numbers", "base64", "chinese"):
        text = SAMPLES[name]
        truth = max(real(text, "o200k_base"), real(text, "cl100k_base"))
        assert len(text.encode()) / 4 < 0.7 * truth
        assert heuristic_tokens(text) >= 0.85 * truth


def test_heuristic_is_fast_enough_for_long_prompts() -> None:
    import time

    text = SAMPLES["english"] * 400  # ~90k characters
    started = time.perf_counter()
    heuristic_tokens(text)
    assert time.perf_counter() - started < 1.0


def test_heuristic_survives_lone_surrogates_and_control_characters() -> None:
    assert heuristic_tokens("a\ud800b\x00\x07c") >= 3
    assert estimate_tokens("a\ud800b", "gpt-4o") >= 2


# ------------------------------------------------------------------------------- requests


def test_request_counts_framing_system_and_messages() -> None:
    request = ModelRequest(messages=(Message(role="user", content="hello world"),))
    # reply priming 3 + per message 3 + "hello world" 2
    assert estimate_request(request, "gpt-4o") == 8
    with_system = request.model_copy(update={"system": "hello world"})
    assert estimate_request(with_system, "gpt-4o") == 13


def test_request_counts_tools_output_names_and_tool_calls() -> None:
    base = ModelRequest(messages=(Message(role="user", content="What is the weather in Paris?"),))
    tool = ToolSpec(
        name="weather",
        description="Current weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    with_tool = base.model_copy(update={"tools": (tool,)})
    output = OutputSpec(name="Answer", schema={"type": "object", "properties": {}})
    with_output = base.model_copy(update={"output": output})
    call = ToolCall(id="c1", name="weather", arguments={"city": "Paris"})
    conversation = base.model_copy(
        update={
            "messages": (
                *base.messages,
                Message(role="assistant", tool_calls=(call,)),
                Message(role="tool", content="18 C, sunny", tool_call_id="c1"),
            )
        }
    )
    named = base.model_copy(update={"messages": (Message(role="user", content="hi", name="ana"),)})
    plain = estimate_request(base, "gpt-4o")
    assert estimate_request(with_tool, "gpt-4o") > plain + 15
    assert estimate_request(with_output, "gpt-4o") > plain + 40
    assert estimate_request(conversation, "gpt-4o") > plain + 10
    assert estimate_request(named, "gpt-4o") == 3 + 3 + 1 + 1 + 1  # "hi", name "ana"


def test_claude_requests_with_tools_include_the_tool_prompt() -> None:
    tool = ToolSpec(name="lookup", description="Find a customer")
    base = ModelRequest(messages=(Message(role="user", content="Find Ana"),))
    claude_plain = estimate_request(base, "claude-sonnet-4-5")
    claude_tools = estimate_request(base.model_copy(update={"tools": (tool,)}), "claude-sonnet-4-5")
    openai_plain = estimate_request(base, "gpt-4o")
    openai_tools = estimate_request(base.model_copy(update={"tools": (tool,)}), "gpt-4o")
    assert claude_tools - claude_plain >= 350
    assert openai_tools - openai_plain < 50


def test_max_output_prefers_request_then_deployment_then_default() -> None:
    request = ModelRequest(messages=(Message(role="user", content="hi"),))
    assert max_output(request, Capabilities()) == DEFAULT_MAX_OUTPUT == 4096
    assert max_output(request, Capabilities(max_output_tokens=16_384)) == 16_384
    capped = request.model_copy(update={"max_tokens": 300})
    assert max_output(capped, Capabilities(max_output_tokens=16_384)) == 300


def test_structured_output_as_a_forced_tool_counts_the_tool_prompt() -> None:
    base = ModelRequest(messages=(Message(role="user", content="Extract the name"),))
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}

    def asked(mode: str) -> ModelRequest:
        return base.model_copy(
            update={"output": OutputSpec(name="Person", schema=schema, mode=mode)}
        )

    # a forced tool brings the provider's tool-use prompt; a schema enforced natively does not
    tool, prompted = asked("tool"), asked("prompted")
    assert (
        estimate_request(tool, "claude-sonnet-4-5")
        - estimate_request(prompted, "claude-sonnet-4-5")
        == 350
    )
    assert estimate_request(asked("native"), "claude-sonnet-4-5") == estimate_request(
        prompted, "claude-sonnet-4-5"
    )
    assert estimate_request(tool, "gpt-4o") == estimate_request(prompted, "gpt-4o")
