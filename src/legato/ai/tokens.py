"""Token estimates before a call, for budgets and context windows.

OpenAI models are counted with their genuine BPE (``o200k_base`` or ``cl100k_base``) from the
``bpe-openai`` package, which bundles both vocabularies; nothing is downloaded. Every other
model (Claude, Llama, anything unknown) gets :func:`heuristic_tokens`, as does every model when
``bpe-openai`` is not installed.

Estimates only guard a call before it is sent: the usage the provider reports afterwards is the
truth, and budgets are reconciled with it. So estimates err high, never far low.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
import warnings
from typing import Any

from legato.ai import reasoning
from legato.ai.messages import Message, ModelRequest, ToolSpec
from legato.ai.model import Capabilities

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "TEMPLATE_MARGIN",
    "encoding_for",
    "estimate_request",
    "estimate_tokens",
    "heuristic_tokens",
    "max_output",
]

#: output tokens assumed when neither the request nor the deployment caps them: the worst case
#: priced before a call (Anthropic requires a cap and many deployments use this one)
DEFAULT_MAX_OUTPUT = 4096

#: prompt tokens a server's chat template may add that no client-side count sees (a default
#: system prompt: SmolLM2's adds 23, Llama 3's dates about 25, Qwen's about 20), assumed for
#: a deployment without an exact tokenizer here until its reported usage measured them
TEMPLATE_MARGIN = 64

# Chat framing, after OpenAI's published counting recipe: each message costs a few tokens of
# role markers, every reply is primed with a few more. The heuristic side rounds up.
_PER_MESSAGE = {"bpe": 3, "heuristic": 4}
_PER_NAME = 1
_REPLY_PRIMING = 3
_PER_TOOL = 8  # a tool's name, description and schema are wrapped in a few tokens of framing
_PER_TOOL_CALL = 4
_PER_OUTPUT = 40  # the instruction (or tool) that carries an output schema
#: Anthropic adds a tool-use system prompt of ~350 tokens when tools are offered, and chat
#: templates of open models do much the same; OpenAI's tool framing is only a few tokens.
_TOOL_PROMPT = 350

# Encoding families by model name (matched on each ":"/"/"-separated part, lower case), so
# "gpt-4o-2024-08-06", "openai/gpt-4o" and "ft:gpt-4o-mini:org::id" all find o200k.
_O200K = re.compile(r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o[134](-|$)|codex-)")
_CL100K = re.compile(r"^(gpt-4|gpt-3\.5|gpt-35|text-embedding-)")

# Encoding a chunk above this many characters trips bpe-openai's own limits (1M characters,
# 200k tokens: a character is at most 4 tokens), so long texts are counted in chunks.
_CHUNK = 40_000

#: encoding name -> bpe-openai encoding, or None when it cannot be loaded
_encodings: dict[str, Any] = {}
_encodings_lock = threading.Lock()


def encoding_for(model: str) -> str | None:
    """The BPE an OpenAI model name uses (``o200k_base``/``cl100k_base``), or None."""
    for part in re.split(r"[:/]", model.strip().lower()):
        if _O200K.match(part):
            return "o200k_base"
        if _CL100K.match(part):
            return "cl100k_base"
    return None


def estimate_tokens(text: str, model: str) -> int:
    """How many tokens ``text`` is for ``model``: exact for OpenAI names, else an estimate."""
    if not text:
        return 0
    encoding = _encoding(encoding_for(model))
    if encoding is not None:
        try:
            return sum(len(encoding.encode_ordinary(chunk)) for chunk in _chunks(text))
        except Exception:  # an encoder limit or bug must not fail a call: estimate instead
            return heuristic_tokens(text)
    return heuristic_tokens(text)


def estimate_request(request: ModelRequest, model: str) -> int:
    """Prompt tokens of ``request`` for ``model``: system, messages, tools and output schema.

    Adds the chat framing (a few tokens per message and for priming the reply) and, for
    models counted by the heuristic, the tool-use prompt providers add when tools are offered.
    """
    exact = _encoding(encoding_for(model)) is not None
    per_message = _PER_MESSAGE["bpe" if exact else "heuristic"]
    total = _REPLY_PRIMING
    if request.system:
        total += per_message + estimate_tokens(request.system, model)
    for message in request.messages:
        total += per_message + _message_tokens(message, model)
    for tool in request.tools:
        total += _PER_TOOL + estimate_tokens(_tool_json(tool), model)
    if request.output is not None:
        schema = json.dumps(request.output.schema_, ensure_ascii=False, sort_keys=True)
        total += _PER_OUTPUT + estimate_tokens(f"{request.output.name} {schema}", model)
    if offers_tools(request) and not exact:
        total += _TOOL_PROMPT
    return total


def template_tokens(model: str, measured: int | None, margin: int) -> int:
    """What ``model``'s chat template adds to a prompt: as measured from the usage its server
    reported (``learned.py``), else nothing for models counted exactly with OpenAI's framing,
    else ``margin`` (the deployment's ``Model.template_margin``)."""
    if measured is not None:
        return measured
    return 0 if _encoding(encoding_for(model)) is not None else margin


def offers_tools(request: ModelRequest) -> bool:
    """The request offers tools, the caller's or a forced output tool (chat templates then
    add a tool-use prompt the estimate guesses at, so its usage does not measure the rest)."""
    return bool(request.tools) or (request.output is not None and request.output.mode == "tool")


def max_output(request: ModelRequest, capabilities: Capabilities) -> int:
    """The most output tokens the call can produce: what a worst-case estimate prices.

    The request's ``max_tokens``, else the deployment's ``max_output_tokens``, else
    :data:`DEFAULT_MAX_OUTPUT`; plus the allowance of its reasoning depth (reasoning tokens
    are output tokens).
    """
    thinking = reasoning.allowance(request.reasoning)
    if request.max_tokens is not None:
        return request.max_tokens + thinking
    if capabilities.max_output_tokens is not None:
        return capabilities.max_output_tokens + thinking
    return DEFAULT_MAX_OUTPUT + thinking


# --------------------------------------------------------------------------- the heuristic

_LATIN = "A-Za-z\u00c0-\u024f"
_PIECES = re.compile(
    rf"[0-9{_LATIN}]+"  # words and numbers (Latin script, accents included)
    r"|[ ]+|\s+"  # runs of spaces; other whitespace (newlines, tabs)
    r"|[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]+"  # ASCII punctuation
    r"|[^\x00-\x7f]"  # any other character, one at a time
)
_SUBWORDS = re.compile(r"[0-9]+|[A-Z\u00c0-\u00de]*[a-z\u00df-\u024f]+|[A-Z\u00c0-\u00de]+")
_CYRILLIC = ("\u0400", "\u04ff")


def heuristic_tokens(text: str) -> int:
    """A tokenizer-free estimate, calibrated to err high against o200k and cl100k.

    Text is split much as BPE pre-tokenizers split it, then each piece is charged:

    * a word of up to 7 bytes is 1 token, a longer one ``ceil(bytes / 3)``; words split at
      case changes (``getUserName`` is three words) and at digits;
    * digits cost ``ceil(n / 3)`` (both OpenAI vocabularies group digits by three), and a
      space before a number 1;
    * a letters-and-digits run of 6 or more characters (ids, hashes, base64) costs one token
      per 2 characters, per 1.5 when it mixes upper and lower case;
    * one ASCII punctuation mark is 1 token, a run of them 1 per 2 characters;
    * newlines 1 each, other whitespace 1 per 4 characters beyond a single space;
    * other characters by UTF-8 length: Cyrillic 0.5, other 2-byte scripts (Greek, Hebrew,
      Arabic...) 1.1, 3-byte (CJK, Indic, Thai...) 1.25, 4-byte (emoji...) 2.5.

    Measured against ``max(o200k, cl100k)`` (tests/ai/test_tokens.py holds the samples):
    English prose 1.15x, SQL 1.2x, JSON 1.25x, Python 1.33x; on 300 excerpts of real Python
    and 100 of docs the median is 1.42x and the lowest 1.07x. Chinese, Japanese, Korean,
    Greek, Hindi 0.96-1.04x; Russian 0.92x, Hebrew 0.93x, Arabic 1.29x; UUIDs 0.94x, base64
    0.95x, numbers 1.0x. ``ceil(bytes / 4)``, by comparison, is 0.35-0.65x on ids, numbers
    and non-Latin scripts. Claude's tokenizers produce more tokens than cl100k for the same
    text, so the surplus over OpenAI's counts is mostly the margin a Claude estimate needs.
    """
    total = 0.0
    pieces: list[str] = _PIECES.findall(text)
    for i, piece in enumerate(pieces):
        first = piece[0]
        following = pieces[i + 1][0] if i + 1 < len(pieces) else ""
        if first.isalnum() and (first.isascii() or "\u00c0" <= first <= "\u024f"):
            total += _word_tokens(piece)
        elif first == " ":
            if len(piece) == 1:  # a single space joins the next word, but not a number
                total += 1 if following.isdigit() else 0
            else:
                total += math.ceil((len(piece) - 1) / 4)
        elif first.isspace():
            total += piece.count("\n") + math.ceil(len(piece.replace("\n", "")) / 4)
        elif first.isascii():
            total += 1 if len(piece) == 1 else math.ceil(len(piece) / 2)
        else:
            total += _char_tokens(first)
    return math.ceil(total)


def _word_tokens(piece: str) -> int:
    if len(piece) >= 6 and not piece.isdigit() and any(c.isdigit() for c in piece):
        mixed_case = any(c.isupper() for c in piece) and any(c.islower() for c in piece)
        return math.ceil(len(piece) / (1.5 if mixed_case else 2.0))
    total = 0
    for sub in _SUBWORDS.findall(piece):
        if sub[0].isdigit():
            total += math.ceil(len(sub) / 3)
        else:
            size = len(sub.encode())
            total += 1 if size <= 7 else math.ceil(size / 3)
    return total


def _char_tokens(char: str) -> float:
    size = len(char.encode("utf-8", "surrogatepass"))
    if size == 2:
        return 0.5 if _CYRILLIC[0] <= char <= _CYRILLIC[1] else 1.1
    return 1.25 if size == 3 else 2.5


# --------------------------------------------------------------------------- helpers


def _message_tokens(message: Message, model: str) -> int:
    total = estimate_tokens(message.content, model)
    if message.name:
        total += _PER_NAME + estimate_tokens(message.name, model)
    for call in message.tool_calls:
        arguments = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
        total += _PER_TOOL_CALL + estimate_tokens(f"{call.name} {arguments}", model)
    return total


def _tool_json(tool: ToolSpec) -> str:
    return json.dumps(
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
        ensure_ascii=False,
        sort_keys=True,
    )


def _chunks(text: str) -> list[str]:
    if len(text) <= _CHUNK:
        return [text]
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + _CHUNK, len(text))
        if end < len(text):  # cut after whitespace, so a word is not split in two
            space = text.rfind(" ", end - 1000, end)
            end = space + 1 if space > start else end
        out.append(text[start:end])
        start = end
    return out


def _encoding(name: str | None) -> Any:
    """The cached ``bpe-openai`` encoding, or None when the package is not installed."""
    if name is None:
        return None
    if name in _encodings:
        return _encodings[name]
    with _encodings_lock:
        if name not in _encodings:
            try:
                # imported here, on first use: loading the vocabularies takes about a second;
                # bpe-openai 0.1.4 reads them with a deprecated importlib.resources call
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    bpe_openai = importlib.import_module("bpe_openai")
                    _encodings[name] = bpe_openai.get_encoding(name)
            except Exception:  # not installed, or broken: the heuristic will do, silently
                _encodings[name] = None
    return _encodings[name]
