"""Data rules: detection in realistic text, false positives, checks, redaction, blocking,
tool-call arguments, policy files, and properties of redaction."""

from __future__ import annotations

import string
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from legato.ai.messages import Message, ToolCall
from legato.governance import DATA_CLASSES, DataOutcome, DataRules, Intent, Policy, PolicyError

ALL = DataRules(redact=list(DATA_CLASSES))

CV = """\
JANE DOE, Senior Data Engineer
Berlin, Germany | jane.doe1987@example.de | +49 (0)151 1234 5678 | linkedin.com/in/janedoe

EXPERIENCE
2019-2024  ACME GmbH: built the billing pipeline (2.5M invoices/month, 99.95% uptime).
           Salary EUR 85,000. Ran the cluster at 10.20.30.40 and 2001:db8::8a2e:370:7334.
2015-2019  Initech, Austin TX: on-call at (512) 555-0147.

PERSONAL
US SSN 123-45-6789 (for the 2016 relocation). Salary into DE89 3704 0044 0532 0130 00.
Expenses card: 4111 1111 1111 1111, expiry 09/27.
Side project key (revoked): sk-proj-4f8A2kL9mN3pQ7rS1tU6vW0xY5zB
"""

THREAD = """\
From: Bob Martin <bob.martin@mail.example.co.uk>
To: support@shop.example.com
Date: Tue, 14 May 2024 10:32:07 +0100
Subject: Re: Order #A-20240514-7781

Hi, my order 20240514778 (total $1,299.99, 3 items) never arrived. Call me on
020 7946 0958 or +44 7700 900123 after 17:30. My IBAN for the refund is
GB82WEST12345698765432.

> On 12.05.2024, support@shop.example.com wrote:
> Version 2.14.3 of the app fixed it. Ticket 555-1234, ref 100-200-3000.
"""


def test_every_class_in_a_cv_is_found_and_redacted() -> None:
    assert ALL.scan(CV) == {
        "email": 1,
        "phone": 2,
        "us_ssn": 1,
        "credit_card": 1,
        "iban": 1,
        "ip_address": 2,
        "api_key": 1,
    }
    text, counts = ALL.redact_text(CV)
    assert counts == ALL.scan(CV)
    assert "jane.doe1987@example.de | [PHONE] |" not in text  # the e-mail went too
    assert "Berlin, Germany | [EMAIL] | [PHONE] | linkedin.com/in/janedoe" in text
    assert "10.20.30.40" not in text and "[IP_ADDRESS] and [IP_ADDRESS]." in text
    assert "on-call at [PHONE]." in text
    assert "US SSN [US_SSN] (for the 2016 relocation). Salary into [IBAN]." in text
    assert "Expenses card: [CREDIT_CARD], expiry 09/27." in text
    assert "Side project key (revoked): [API_KEY]" in text
    # what is not personal data stays
    for kept in ("2019-2024", "2.5M invoices/month, 99.95% uptime", "EUR 85,000", "2015-2019"):
        assert kept in text


def test_an_email_thread() -> None:
    assert ALL.scan(THREAD) == {"email": 3, "phone": 2, "iban": 1}
    text, _ = ALL.redact_text(THREAD)
    assert text.splitlines()[:2] == ["From: Bob Martin <[EMAIL]>", "To: [EMAIL]"]
    assert "Call me on\n[PHONE] or [PHONE] after 17:30." in text
    assert "> On 12.05.2024, [EMAIL] wrote:" in text
    for kept in ("10:32:07 +0100", "#A-20240514-7781", "20240514778", "$1,299.99", "2.14.3"):
        assert kept in text


@pytest.mark.parametrize(
    "text",
    [
        "Invoice date 2024-01-15, due 15.01.2024, paid 01/15/2024 at 10:30:00.",
        "Order #12345678 and order 987654321012 shipped; tracking 1Z999AA10123456784.",
        "Prices: $1,234.56, EUR 1.234.567,89, 1 234 567 kr, 0.99 each.",
        "Born 1987, graduated 2009, joined in 2015; the years 1999-2001 were hard.",
        "Ranges 100-200-3000 and 123-456-7890 are part numbers; so is 5551234567.",
        "Version 2.14.3, build 1.2.3.4567, release 10.0.19045.",
        "Call at 10:30:00 on 2024-05-14; MAC 00:1A:2B:3C:4D:5E; ratio 16:9.",
        "Timestamp 1715678532000 and ISBN 978-3-16-148410-0.",
        "Meet me @ noon; email handles like @jane or user@localhost are not addresses.",
        "Tokens used: 4096; max_tokens=8192; prompt_token_count: 1234567890123456.",
        "pip install sk-learn-is-not-a-key and scikit-learn.",
        "std::vector<int> and a::b, Foo::Bar in C++ code, and dead::beef.",
        "Unix time 1700000000, phone extension x1234, room 0.42.",
    ],
)
def test_ordinary_numbers_are_not_personal_data(text: str) -> None:
    assert ALL.scan(text) == {}
    assert ALL.redact_text(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("+1 (555) 234-5678", "phone"),
        ("+1-555-234-5678", "phone"),
        ("+33 6 12 34 56 78", "phone"),
        ("+4915112345678", "phone"),
        ("+49 (0)30 901820", "phone"),
        ("(555) 234-5678", "phone"),
        ("555.234.5678", "phone"),
        ("06 12 34 56 78", "phone"),
        ("0151 1234567", "phone"),
        ("(020) 7946 0958", "phone"),
        ("5105-1051-0510-5100", "credit_card"),  # Mastercard
        ("378282246310005", "credit_card"),  # American Express
        ("6011 1111 1111 1117", "credit_card"),  # Discover
        ("NL91ABNA0417164300", "iban"),
        ("FR14 2004 1010 0505 0001 3M02 606", "iban"),
        ("255.255.255.0", "ip_address"),
        ("::1", "ip_address"),
        ("fe80::1ff:fe23:4567:890a", "ip_address"),
        ("AKIAIOSFODNN7EXAMPLE", "api_key"),
        ("ghp_" + "a1B2c3D4e5" * 4, "api_key"),
        ("xoxb-1234567890-abcdefghij", "api_key"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "api_key"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
            "api_key",
        ),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "api_key"),
    ],
)
def test_formats_each_class_knows(text: str, cls: str) -> None:
    assert ALL.scan(f"see {text}, thanks") == {cls: 1}
    assert ALL.redact_text(f"see {text}, thanks")[0] == f"see [{cls.upper()}], thanks"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("OPENAI_API_KEY=3f4a9c2e8b7d6f5a1c0e", "OPENAI_API_KEY=[API_KEY]"),
        ('{"client_secret": "Zm9vYmFyYmF6cXV4MTIzNDU2"}', '{"client_secret": "[API_KEY]"}'),
        ("password: s3cr3tPassw0rdLong!", "password: [API_KEY]!"),
        ("Authorization: Bearer abc123def456ghi789jkl0", "Authorization: Bearer [API_KEY]"),
    ],
)
def test_secrets_after_a_name_keep_the_name(text: str, redacted: str) -> None:
    assert ALL.redact_text(text) == (redacted, {"api_key": 1})


def test_checks_reject_lookalikes() -> None:
    assert ALL.scan("4111 1111 1111 1111") == {"credit_card": 1}
    assert ALL.scan("4111 1111 1111 1112") == {}  # Luhn fails
    assert ALL.scan("4111-1111 1111-1111") == {}  # mixed separators
    assert ALL.scan("1234 5678 9012 3452") == {}  # passes Luhn, but no network starts with 1
    assert ALL.scan("3782 8224 6310 0058") == {}  # Amex prefix, but 16 digits
    assert ALL.scan("DE89 3704 0044 0532 0130 00") == {"iban": 1}
    assert ALL.scan("DE89370400440532013001") == {}  # mod-97 fails
    assert ALL.scan("GB82WEST12345698765433") == {}
    assert ALL.scan("256.1.1.1 and 1.2.3.999") == {}
    assert ALL.scan("000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567") == {}
    assert ALL.scan("(155) 234-5678") == {}  # no area code starts with 1
    assert ALL.scan("+1 234") == {}  # too few digits


def test_overlapping_matches_leave_clean_text() -> None:
    text = "Write to 4111111111111111@cards.example or john.5551234567@example.com."
    assert ALL.redact_text(text) == ("Write to [EMAIL] or [EMAIL].", {"email": 2})
    blocked = DataRules(forbid=["credit_card"]).apply(
        [Message(role="user", content=text)], None, external=False
    )
    assert blocked.blocked == ["credit_card"]  # the card inside the address still counts


def test_redaction_repeats_until_nothing_is_left() -> None:
    # "a@b.co" followed by a letter is not an address (it continues a word); once the
    # employee number after it is a placeholder, it is, and it goes too
    rules = DataRules(patterns={"employee_id": r"E\d{6}"}, redact=["email", "employee_id"])
    text, counts = rules.redact_text("mail a@b.coE123456 now")
    assert (text, counts) == ("mail [EMAIL][EMPLOYEE_ID] now", {"email": 1, "employee_id": 1})
    assert rules.redact_text(text) == (text, {})
    assert rules.scan("mail a@b.coE123456 now") == counts


def test_only_the_listed_classes_are_redacted() -> None:
    rules = DataRules(redact=["email"])
    text = "ana@example.com, +44 20 7946 0958"
    assert rules.redact_text(text) == ("[EMAIL], +44 20 7946 0958", {"email": 1})
    assert rules.scan(text) == {"email": 1, "phone": 1}  # scan sees every class
    assert DataRules().redact_text(text) == (text, {})


def test_custom_patterns() -> None:
    rules = DataRules(
        patterns={"employee_id": r"\bE\d{6}\b", "case_number": r"(?i)case-\d{4}-\d{5}"},
        redact=["employee_id", "email"],
        forbid_external=["case_number"],
    )
    assert rules.classes == (*DATA_CLASSES, "employee_id", "case_number")
    text = "E123456 (ana@example.com) filed CASE-2024-00042; E12345 is too short."
    assert rules.scan(text) == {"email": 1, "employee_id": 1, "case_number": 1}
    assert rules.redact_text(text) == (
        "[EMPLOYEE_ID] ([EMAIL]) filed CASE-2024-00042; E12345 is too short.",
        {"email": 1, "employee_id": 1},
    )
    outcome = rules.apply([Message(role="user", content=text)], None, external=True)
    assert outcome.blocked == ["case_number"]
    assert rules.apply([Message(role="user", content=text)], None, external=False).blocked == []


@pytest.mark.parametrize(
    "pattern",
    [r"(?>\w+\s?)+!", r"(\w+\s?)++!", r"(\d{3}-)+\d{4}", r"(a{2,5})*b", r"[(]+x", r"\(a+\)+"],
)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    assert DataRules(patterns={"x": pattern}).patterns == {"x": pattern}


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("([", "invalid regular expression '(['"),
        ("a*", "matches empty text"),
        ("", "must not be empty"),
        ("(a+)+b", "repeats a group that itself repeats without bound"),
        (r"(?:\w+\s?)*!", "repeats a group that itself repeats without bound"),
        ("((ab)*c)+", "repeats a group that itself repeats without bound"),
        ("(x{2,})*y", "repeats a group that itself repeats without bound"),
        ("a" * 1001, "at most 1000 characters"),
    ],
)
def test_unsafe_patterns_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=r"patterns\.x") as caught:
        DataRules(patterns={"x": pattern})
    assert problem in str(caught.value)


def test_class_names_are_checked() -> None:
    with pytest.raises(ValidationError, match="'email' is a built-in data class"):
        DataRules(patterns={"email": "x+"})
    with pytest.raises(ValidationError, match="'Employee' is not a data class name"):
        DataRules(patterns={"Employee": "x+"})
    with pytest.raises(ValidationError, match=r"unknown data class 'emial' \(did you mean 'email'"):
        DataRules(forbid=["emial"])


def conversation() -> list[Message]:
    return [
        Message(role="user", content="Book a call with ana@example.com about the order."),
        Message(
            role="assistant",
            content="",
            tool_calls=(
                ToolCall(
                    id="c1",
                    name="send_email",
                    arguments={
                        "to": "ana@example.com",
                        "cc": ["bo@example.org", "no address"],
                        "meta": {"phone": "+44 20 7946 0958", "priority": 2, "ok": True},
                    },
                ),
            ),
        ),
        Message(role="tool", tool_call_id="c1", content="sent"),
        Message(role="assistant", content="Done."),
    ]


def test_apply_redacts_messages_system_and_tool_call_arguments() -> None:
    rules = DataRules(redact=["email", "phone"])
    messages = conversation()
    outcome = rules.apply(messages, "Reply to ops@example.com when done.", external=True)
    assert isinstance(outcome, DataOutcome)
    assert outcome.system == "Reply to [EMAIL] when done."
    assert outcome.messages[0].content == "Book a call with [EMAIL] about the order."
    assert outcome.messages[1].tool_calls[0].arguments == {
        "to": "[EMAIL]",
        "cc": ["[EMAIL]", "no address"],
        "meta": {"phone": "[PHONE]", "priority": 2, "ok": True},
    }
    assert outcome.messages[1].tool_calls[0].id == "c1"
    assert outcome.messages[2] is messages[2] and outcome.messages[3] is messages[3]
    assert outcome.counts == {"email": 4, "phone": 1}
    assert outcome.found == {"email": 4, "phone": 1}
    assert outcome.blocked == []
    assert messages[0].content.startswith("Book a call with ana@")  # the input is untouched
    assert "ana@example.com" not in repr(outcome.counts) + repr(outcome.blocked)


def test_internal_providers_see_the_text_as_written() -> None:
    rules = DataRules(redact=["email", "phone"], forbid=["api_key"], forbid_external=["phone"])
    messages = conversation()
    outcome = rules.apply(messages, None, external=False)
    assert outcome.messages == tuple(messages)
    assert all(a is b for a, b in zip(outcome.messages, messages, strict=True))
    assert outcome.counts == {} and outcome.found == {"email": 3, "phone": 1}
    assert outcome.blocked == []  # phone is only forbidden for external providers
    assert rules.apply(messages, None, external=True).blocked == ["phone"]


def test_forbidden_classes_block_for_every_provider() -> None:
    rules = DataRules(forbid=["api_key", "credit_card"], redact=["api_key"])
    messages = [Message(role="user", content="Use key sk-ant-api03-abcDEF123456ghiJKL789 now")]
    for external in (True, False):
        outcome = rules.apply(messages, None, external=external)
        assert outcome.blocked == ["api_key"]
    assert rules.apply([Message(role="user", content="hi")], "be nice", external=True) == (
        DataOutcome(
            messages=(Message(role="user", content="hi"),),
            system="be nice",
            counts={},
            found={},
            blocked=[],
        )
    )


# -- policy files ---------------------------------------------------------------------------

POLICY = """\
intent:
  goal: Answer customers
data:
  patterns:
    employee_id: '\\bE\\d{6}\\b'
  redact: [email, phone, employee_id]
  forbid: [api_key]
  forbid_external:
    - credit_card
    - us_ssn
"""


def test_a_policy_file_with_data_rules_equals_the_same_policy_in_python(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    from_file = Policy.from_file(path)
    in_python = Policy(
        intent=Intent(goal="Answer customers"),
        data=DataRules(
            patterns={"employee_id": r"\bE\d{6}\b"},
            redact=["email", "phone", "employee_id"],
            forbid=["api_key"],
            forbid_external=["credit_card", "us_ssn"],
        ),
    )
    assert from_file == in_python
    assert from_file.data.redact_text("E123456") == ("[EMPLOYEE_ID]", {"employee_id": 1})
    assert Policy().data == DataRules() and Policy.from_yaml("").data == DataRules()


BAD_DATA: dict[str, tuple[str, str]] = {
    "unknown class": (
        """\
        data:
          redact:
            - email
            - phon
        """,
        "line 4: data.redact[1]: unknown data class 'phon' (did you mean 'phone'?); known"
        " classes are email, phone, us_ssn, credit_card, iban, ip_address, api_key",
    ),
    "unknown class names the custom ones": (
        """\
        data:
          patterns: {badge: 'B-\\d+'}
          forbid_external: [badges]
        """,
        "line 3: data.forbid_external[0]: unknown data class 'badges' (did you mean 'badge'?);"
        " known classes are email, phone, us_ssn, credit_card, iban, ip_address, api_key, badge",
    ),
    "bad regular expression": (
        """\
        data:
          patterns:
            badge: 'B-\\d+'
            ticket: 'T-(['
        """,
        "line 4: data.patterns.ticket: invalid regular expression 'T-([': unterminated"
        " character set at position 3",
    ),
    "a built-in name": (
        """\
        data:
          patterns:
            phone: '\\d+'
        """,
        "line 3: data.patterns.phone: 'phone' is a built-in data class; give the pattern"
        " another name",
    ),
    "unknown field": (
        """\
        data:
          redcat: [email]
        """,
        "line 2: data.redcat: unknown field 'redcat' (did you mean 'redact'?); expected one of"
        " patterns, redact, forbid, forbid_external",
    ),
    "a list instead of a mapping": (
        """\
        intent: {goal: x}
        data: [email, phone]
        """,
        "line 2: data: should be a mapping with keys such as patterns, redact, forbid,"
        " forbid_external, got a list",
    ),
    "text instead of a list": (
        """\
        data:
          forbid: api_key
        """,
        "line 2: data.forbid: should be a valid list, got 'api_key'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_sections(tmp_path: Path, case: str) -> None:
    text, expected = BAD_DATA[case]
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(PolicyError) as caught:
        Policy.from_file(path)
    assert str(caught.value) == f"{path}, {expected}"


def test_a_bad_pattern_does_not_also_report_its_uses() -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_yaml("data:\n  patterns: {badge: '(['}\n  redact: [badge]\n", "p.yaml")
    assert str(caught.value).splitlines() == [
        "p.yaml, line 2: data.patterns.badge: invalid regular expression '([': unterminated"
        " character set at position 1"
    ]


# -- speed and properties ---------------------------------------------------------------------


def test_scanning_stays_linear_on_hostile_text() -> None:
    hostile = [
        "1" * 50_000,
        "a" * 50_000,
        "a." * 25_000,
        "a@" * 25_000,
        "ab:" * 20_000,
        "+1 " * 20_000,
        "api_key=" * 8_000,
        "DE89 " * 10_000,
    ]
    started = time.perf_counter()
    for text in hostile:
        ALL.redact_text(text)
    assert time.perf_counter() - started < 10  # about 1s; quadratic would take minutes


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,12}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["com", "org", "de", "co.uk", "example"]),
)
phones = st.one_of(
    st.builds(lambda a, b, c, d: f"+{a} {b} {c} {d}", digits(2), digits(3), digits(3), digits(4)),
    st.builds(lambda a, b: f"+{a}{b}", st.sampled_from(["1", "44", "49"]), digits(10)),
    st.builds(
        lambda a, b, c, sep: f"{a}{sep}{b}{sep}{c}",
        st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
        digits(3),
        digits(4),
        st.sampled_from(["-", ".", " "]),
    ),
    st.builds(
        lambda a, b, c: f"({a}) {b}-{c}",
        st.from_regex(r"[2-9]\d\d", fullmatch=True),
        digits(3),
        digits(4),
    ),
    st.builds(
        lambda a, b, c: f"0{a} {b} {c}",
        st.from_regex(r"[1-9]\d\d", fullmatch=True),
        digits(4),
        digits(4),
    ),
)
noise = st.text(alphabet=string.printable, max_size=12)
separators = st.sampled_from(["", " ", ", ", "\n", ": ", "; "])


@st.composite
def mixed_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(emails, phones, noise), max_size=8))
    return "".join(part + draw(separators) for part in parts)


@settings(max_examples=300, deadline=None)
@given(mixed_texts())
def test_redacted_text_holds_nothing_to_find_and_redacting_again_changes_nothing(
    text: str,
) -> None:
    redacted, counts = ALL.redact_text(text)
    assert ALL.scan(redacted) == {}
    assert ALL.redact_text(redacted) == (redacted, {})
    assert counts == ALL.scan(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(emails, phones), max_size=6), st.booleans())
def test_isolated_emails_and_phones_are_all_found(values: list[str], external: bool) -> None:
    text = " | ".join(f"item {value} here" for value in values)
    email_count = sum("@" in value for value in values)
    expected = {"email": email_count, "phone": len(values) - email_count}
    expected = {k: v for k, v in expected.items() if v}
    rules = DataRules(redact=["email", "phone"])
    outcome = rules.apply([Message(role="user", content=text)], None, external=external)
    assert outcome.found == expected
    assert outcome.counts == (expected if external else {})
    if external:
        assert all(value not in outcome.messages[0].content for value in values)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_redacts_to_a_fixed_point(text: str) -> None:
    redacted, _ = ALL.redact_text(text)
    assert ALL.redact_text(redacted) == (redacted, {})
