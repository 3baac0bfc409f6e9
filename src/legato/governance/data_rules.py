"""Data rules: which kinds of personal or secret data may reach which model provider.

A policy's ``data`` section names *data classes*: built-in ones, found by regular expressions
and checked where a check cuts false positives (Luhn for cards, mod-97 for IBANs, real
addresses for IPs), plus classes the policy defines as patterns. Before a model call the
rules scan every text of the request (system prompt, messages, string values inside tool
call arguments) and:

- ``redact``: classes replaced by a placeholder (``[EMAIL]``, ``[PHONE]``, the class name
  upper-cased) when the provider is external; internal providers see the text as it is;
- ``forbid``: classes that block the call, whatever the provider;
- ``forbid_external``: classes that block the call only when the provider is external.

Counts per class are reported, never the values. Detection favours precision: a bare run of
digits is not a phone number, a date is not a phone, and a number that fails the Luhn check
is not a card.

Custom patterns are searched anywhere in the text (``re.finditer``), each compiled on its own,
without a timeout: so a pattern that repeats a group which itself repeats without bound
(``(a+)+``, the classic cause of exponential backtracking) is refused, as is a pattern that
matches empty text. Use an atomic group ``(?>...)`` or a possessive quantifier (``++``) when
such a repetition is really meant.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
)

from legato.errors import did_you_mean

if TYPE_CHECKING:
    from legato.ai.messages import Message, ToolCall

#: The built-in data classes, in the order they are reported.
DATA_CLASSES: tuple[str, ...] = (
    "email",
    "phone",
    "us_ssn",
    "credit_card",
    "iban",
    "ip_address",
    "api_key",
)
#: Longest custom pattern accepted, in characters.
MAX_PATTERN_LENGTH = 1000
#: Redaction is repeated until nothing more is found, at most this many passes (replacing a
#: value changes its neighbours' context, which can reveal a match the first pass skipped).
MAX_PASSES = 8

_CLASS_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

Check = Callable[[str], bool]


@dataclass(frozen=True)
class _Detector:
    """One way to find a class: a pattern, an optional check of the text, the group to hide."""

    cls: str
    pattern: re.Pattern[str]
    check: Check | None = None
    group: str | int = 0


# -- checks -------------------------------------------------------------------------------


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _luhn(number: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(number)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card_lengths(number: str) -> range | tuple[int, ...]:
    """The lengths the card network that issues numbers starting like this uses."""
    if number.startswith("4"):  # Visa
        return (13, 16, 19)
    if number.startswith(("34", "37")):  # American Express
        return (15,)
    if number.startswith(("36", "38", "39", "30")):  # Diners Club
        return range(14, 17)
    if "51" <= number[:2] <= "55" or "2221" <= number[:4] <= "2720":  # Mastercard
        return (16,)
    if number.startswith(("35", "6", "50", "56", "57", "58")):  # JCB, Discover, UnionPay...
        return range(13, 20)
    return ()


def _card(text: str) -> bool:
    number = _digits(text)
    separators = {c for c in text if not c.isdigit()}
    return len(separators) <= 1 and len(number) in _card_lengths(number) and _luhn(number)


def _iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _international_phone(text: str) -> bool:
    return 8 <= len(_digits(text)) <= 15


def _north_american_phone(text: str) -> bool:
    return _digits(text)[0] in "23456789"  # area codes never start with 0 or 1


def _trunk_phone(text: str) -> bool:
    return 9 <= len(_digits(text)) <= 12  # a date such as 01.02.2024 has 8 digits


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    # "dead::beef" is an address, but more often a word; times and MACs never match at all
    return any(c.isdigit() for c in text)


def _secret(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


# -- built-in detectors -------------------------------------------------------------------

_END = r"(?![\w]|[.,-]\d)"  # not followed by more of a word or a number
# Where a number starts: not inside a word or a longer number. A "+" or "(" may follow a
# digit: refusing it would hide the second of two numbers written without a space until the
# first is a placeholder, one more per pass along such a list.
_OPEN = r"(?<![A-Za-z_.+-])"
_START = r"(?<![\w.+-])"
_V4_PART = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = r"[0-9A-Fa-f]{1,4}"


def _builtin(cls: str, pattern: str, check: Check | None = None, group: str | int = 0) -> _Detector:
    return _Detector(cls, re.compile(pattern), check, group)


_BUILTIN: tuple[_Detector, ...] = (
    _builtin(
        "email",
        r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])",
    ),
    # +44 20 7946 0958, +1 (555) 123-4567, +33 6 12 34 56 78, +4915112345678
    _builtin(
        "phone",
        r"(?<![A-Za-z_+])\+(?:\d{1,4}(?:[ .-]?\(\d{1,4}\)[ .-]?|[ .-])\d{1,8}(?:[ .-]\d{1,8}){0,6}"
        rf"|\d{{7,15}}){_END}",
        _international_phone,
    ),
    # (555) 123-4567, 555-123-4567, 555.123.4567: one separator throughout
    _builtin(
        "phone",
        rf"(?:{_OPEN}\(\d{{3}}\)[ .-]?|{_START}\d{{3}}([ .-]))\d{{3}}(?(1)\1|[ .-])\d{{4}}{_END}",
        _north_american_phone,
    ),
    # national numbers with a trunk 0: 020 7946 0958, 06 12 34 56 78, 0151 1234567
    _builtin(
        "phone",
        rf"(?:{_OPEN}\(0[1-9]\d{{0,3}}\)|{_START}0[1-9]\d{{0,3}})([ .-])\d{{2,8}}"
        rf"(?:\1\d{{2,4}}){{0,4}}{_END}",
        _trunk_phone,
    ),
    _builtin(
        "us_ssn",
        rf"(?<![\w.-])(?!000|666|9\d\d)\d{{3}}-(?!00)\d{{2}}-(?!0000)\d{{4}}{_END}",
    ),
    _builtin("credit_card", rf"(?<![\w.,+-])(?:\d[ -]?){{12,18}}\d{_END}", _card),
    _builtin(
        "iban",
        r"(?<!\w)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)",
        _iban,
    ),
    _builtin("ip_address", rf"(?<![\w.])(?:{_V4_PART}\.){{3}}{_V4_PART}(?![\w]|\.\d)"),
    _builtin(
        "ip_address",
        rf"(?<![\w:.])(?:{_H}(?::{_H}){{7}}|(?:{_H}(?::{_H}){{0,6}})?::(?:{_H}(?::{_H}){{0,6}})?)"
        r"(?![\w:])",
        _ipv6,
    ),
    # provider keys: OpenAI/Anthropic sk-..., Stripe sk_live_..., AWS, GitHub, Slack, Google
    _builtin("api_key", r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}", _secret),
    _builtin("api_key", r"(?<!\w)[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    _builtin("api_key", r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _builtin("api_key", r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    _builtin("api_key", r"(?<![\w-])xox[abeoprs]-[A-Za-z0-9-]{10,}"),
    _builtin("api_key", r"(?<![\w-])AIza[0-9A-Za-z_-]{35}"),
    _builtin("api_key", r"(?<![\w-])eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]{10,}"),  # a JWT
    _builtin(
        "api_key",
        r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----",
    ),
    # a long hex or base64 value after a secret-looking name: api_key=..., "token": "..."
    _builtin(
        "api_key",
        r"(?i)(?<![a-z0-9])(?:[a-z0-9_-]*(?:api|access|secret|private|client)[_-]?key"
        r"|[a-z0-9_-]*(?:secret|token)|password|passwd|authorization|auth)[\"']?\s*[:=]\s*"
        r"[\"']?(?:bearer\s+|basic\s+|token\s+)?(?P<value>[A-Za-z0-9+/_.~-]{16,}=*)",
        _secret,
        "value",
    ),
    _builtin(
        "api_key", r"(?i)(?<!\w)bearer\s+(?P<value>[A-Za-z0-9+/_.~-]{20,}=*)", _secret, "value"
    ),
)


# -- custom patterns ----------------------------------------------------------------------


def _nested_repetition(pattern: str) -> bool:
    """Whether a group repeated without bound itself holds an unbounded repetition.

    Atomic groups and possessive quantifiers cannot backtrack, so they do not count.
    """
    stack: list[list[bool]] = []  # per open group: [holds an unbounded repetition, atomic]
    i, in_set = 0, False
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "\\":
            i += 1
        elif in_set:
            in_set = char != "]"
        elif char == "[":
            in_set = True
            i += 1 if pattern[i : i + 1] == "^" else 0
            i += 1 if pattern[i : i + 1] == "]" else 0  # a leading ] is literal
        elif char == "(":
            stack.append([False, pattern.startswith("?>", i)])
        elif char == ")" and stack:
            holds, atomic = stack.pop()
            size, possessive = _quantifier(pattern, i)
            if holds and size and not atomic and not possessive:
                return True
            if stack and ((holds and not atomic) or (size and not possessive)):
                stack[-1][0] = True
            i += size + possessive
        else:
            size, possessive = _quantifier(pattern, i - 1)
            if size and stack and not possessive:
                stack[-1][0] = True
            i += max(size - 1, 0) + possessive
    return False


def _quantifier(pattern: str, i: int) -> tuple[int, int]:
    """The length of an unbounded quantifier (``*``, ``+``, ``{n,}``) at ``i`` (else 0), and
    1 when it is possessive (followed by ``+``), else 0."""
    if pattern[i : i + 1] in ("*", "+"):
        size = 1
    else:
        found = re.match(r"\{\d*,\}", pattern[i:])
        size = len(found.group()) if found else 0
    return size, int(size > 0 and pattern[i + size : i + size + 1] == "+")


def _check_pattern(pattern: str) -> str:
    if not pattern:
        raise ValueError("a pattern must not be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"a pattern must be at most {MAX_PATTERN_LENGTH} characters long")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    if compiled.fullmatch(""):
        raise ValueError(f"pattern {pattern!r} matches empty text, so it would match everywhere")
    if _nested_repetition(pattern):
        raise ValueError(
            f"pattern {pattern!r} repeats a group that itself repeats without bound, such as"
            " (a+)+, which can take exponential time on some texts; use an atomic group"
            " (?>...) or a possessive quantifier such as ++"
        )
    return pattern


def _check_name(name: str) -> str:
    if not _CLASS_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a data class name: use lower-case letters, digits and _,"
            " starting with a letter (at most 40 characters)"
        )
    if name in DATA_CLASSES:
        raise ValueError(f"{name!r} is a built-in data class; give the pattern another name")
    return name


def _check_known(name: str, info: ValidationInfo) -> str:
    if name in DATA_CLASSES:
        return name
    if "patterns" not in info.data:
        return name  # the patterns are wrong already; that error says what to fix
    known = [*DATA_CLASSES, *info.data["patterns"]]
    if name not in known:
        hint = did_you_mean(name, known)
        raise ValueError(f"unknown data class {name!r}{hint}; known classes are {', '.join(known)}")
    return name


ClassName = Annotated[str, AfterValidator(_check_name)]
PatternText = Annotated[str, AfterValidator(_check_pattern)]
KnownClass = Annotated[str, AfterValidator(_check_known)]


# -- finding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    label: str  # the class the placeholder names: the longest match's
    classes: frozenset[str]  # every class that matched here


def _find(text: str, detectors: Sequence[_Detector], protected: re.Pattern[str]) -> list[_Span]:
    """Matches in ``text``, overlapping ones merged, none inside an existing placeholder."""
    keep = [(m.start(), m.end()) for m in protected.finditer(text)]
    order: dict[str, int] = {}
    for detector in detectors:
        order.setdefault(detector.cls, len(order))
    found: list[tuple[int, int, str]] = []
    for detector in detectors:
        for match in detector.pattern.finditer(text):
            start, end = match.span(detector.group)
            if start >= end or any(a <= start and end <= b for a, b in keep):
                continue
            if detector.check is None or detector.check(text[start:end]):
                found.append((start, end, detector.cls))
    found.sort()
    spans: list[_Span] = []
    for start, end, cls in found:
        last = spans[-1] if spans else None
        if last is None or start >= last.end:
            spans.append(_Span(start, end, cls, frozenset({cls})))
            continue
        longer = end - start > last.end - last.start or (
            end - start == last.end - last.start and order[cls] < order[last.label]
        )
        spans[-1] = _Span(
            last.start, max(last.end, end), cls if longer else last.label, last.classes | {cls}
        )
    return spans


@dataclass
class _Replaced:
    text: str
    counts: Counter[str] = field(default_factory=Counter)
    present: set[str] = field(default_factory=set)


def _replace(text: str, detectors: Sequence[_Detector], protected: re.Pattern[str]) -> _Replaced:
    """``text`` with every match replaced by its placeholder, until nothing more is found."""
    out = _Replaced(text)
    if not detectors:
        return out
    for _ in range(MAX_PASSES):
        spans = _find(out.text, detectors, protected)
        if not spans:
            break
        parts, pos = [], 0
        for span in spans:
            parts += [out.text[pos : span.start], f"[{span.label.upper()}]"]
            pos = span.end
            out.counts[span.label] += 1
            out.present |= span.classes
        parts.append(out.text[pos:])
        out.text = "".join(parts)
    return out


# -- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataOutcome:
    """What the data rules did to one request.

    ``counts``: occurrences replaced, per class. ``found``: occurrences detected, per class,
    whether replaced or not. ``blocked``: the forbidden classes present, in class order; a
    class also counts as present when its match lies inside a longer match of another class
    (a card number used as an e-mail's local part). Never any value.
    """

    messages: tuple[Message, ...]
    system: str | None
    counts: dict[str, int]
    found: dict[str, int]
    blocked: list[str]


class DataRules(BaseModel):
    """Which data classes are redacted for external providers and which block a call.

    ``patterns`` defines custom classes (name: regular expression); ``redact``, ``forbid``
    and ``forbid_external`` name built-in or custom classes. See the module docstring.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: custom classes: a name (lower case) and a regular expression searched anywhere
    patterns: dict[ClassName, PatternText] = Field(default_factory=dict)
    #: replaced by ``[CLASS]`` before text reaches an external provider
    redact: list[KnownClass] = Field(default_factory=list)
    #: block the call, whatever the provider
    forbid: list[KnownClass] = Field(default_factory=list)
    #: block the call when the provider is external
    forbid_external: list[KnownClass] = Field(default_factory=list)

    _detectors: tuple[_Detector, ...] = PrivateAttr(default=())
    _protected: re.Pattern[str] = PrivateAttr(default=re.compile(r"(?!)"))

    def model_post_init(self, context: Any, /) -> None:
        custom = tuple(_Detector(n, re.compile(p)) for n, p in self.patterns.items())
        self._detectors = _BUILTIN + custom
        names = "|".join(re.escape(c.upper()) for c in self.classes)
        self._protected = re.compile(rf"\[(?:{names})\]")

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class these rules know: the built-in ones, then the custom ones."""
        return (*DATA_CLASSES, *self.patterns)

    def _only(self, classes: Iterable[str]) -> tuple[_Detector, ...]:
        wanted = set(classes)
        return tuple(d for d in self._detectors if d.cls in wanted)

    def scan(self, text: str) -> dict[str, int]:
        """How many values of each class (built-in and custom) ``text`` holds."""
        return self._ordered(_replace(text, self._detectors, self._protected).counts)

    def redact_text(self, text: str) -> tuple[str, dict[str, int]]:
        """``text`` with the ``redact`` classes replaced by ``[CLASS]``, and counts per class.

        Idempotent: placeholders are never matched again.
        """
        done = _replace(text, self._only(self.redact), self._protected)
        return done.text, self._ordered(done.counts)

    def apply(
        self, messages: Sequence[Message], system: str | None, *, external: bool
    ) -> DataOutcome:
        """Scan a request; redact it when ``external``; name the forbidden classes found.

        Message contents, the system prompt and string values anywhere inside tool call
        arguments are scanned (keys are not). Messages that change are copies; the others
        are returned as they are.
        """
        found: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        present: set[str] = set()
        redacting = self._only(self.redact) if external else ()

        def clean(text: str) -> str:
            seen = _replace(text, self._detectors, self._protected)
            found.update(seen.counts)
            present.update(seen.present)
            done = _replace(text, redacting, self._protected)
            counts.update(done.counts)
            return done.text

        out = tuple(_clean_message(message, clean) for message in messages)
        forbidden = set(self.forbid) | (set(self.forbid_external) if external else set())
        return DataOutcome(
            messages=out,
            system=clean(system) if system is not None else None,
            counts=self._ordered(counts),
            found=self._ordered(found),
            blocked=[c for c in self.classes if c in forbidden and c in present],
        )

    def _ordered(self, counts: Mapping[str, int]) -> dict[str, int]:
        return {c: counts[c] for c in self.classes if counts.get(c)}


def _clean_value(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {key: _clean_value(item, clean) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean_value(item, clean) for item in value]
    if isinstance(value, tuple):
        return tuple(_clean_value(item, clean) for item in value)
    return value


def _clean_call(call: ToolCall, clean: Callable[[str], str]) -> ToolCall:
    arguments = _clean_value(call.arguments, clean)
    return call if arguments == call.arguments else call.model_copy(update={"arguments": arguments})


def _clean_message(message: Message, clean: Callable[[str], str]) -> Message:
    content = clean(message.content)
    calls = tuple(_clean_call(call, clean) for call in message.tool_calls)
    if content == message.content and all(
        a is b for a, b in zip(calls, message.tool_calls, strict=True)
    ):
        return message
    return message.model_copy(update={"content": content, "tool_calls": calls})
