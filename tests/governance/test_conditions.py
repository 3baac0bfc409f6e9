"""Structured conditions: every op, argument paths, and what cannot be decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from legato.durations import format_duration
from legato.governance.policy import (
    OPS,
    Condition,
    Rule,
    Undecidable,
    parse_duration,
)


def holds(op: str, found: Any, value: Any = None, *, with_value: bool = True) -> bool:
    fields: dict[str, Any] = {"arg": "x", "op": op}
    if with_value:
        fields["value"] = value
    return Condition.model_validate(fields).holds({"x": found})


# one case where the op holds and one where it does not, for every op
CASES: dict[str, tuple[tuple[Any, Any], tuple[Any, Any]]] = {
    "eq": (("a", "a"), ("a", "b")),
    "ne": (("a", "b"), ("a", "a")),
    "in": (("EUR", ["EUR", "USD"]), ("GBP", ["EUR", "USD"])),
    "not_in": (("GBP", ["EUR", "USD"]), ("EUR", ["EUR", "USD"])),
    "startswith": (("ops@example.com", "ops@"), ("dev@example.com", "ops@")),
    "endswith": (("a@example.com", "@example.com"), ("a@evil.com", "@example.com")),
    "contains": (("hello world", "world"), ("hello", "world")),
    "matches": (("Salary talk", r"(?i)\bsalary\b"), ("salaryman", r"(?i)\bsalary\b")),
    "gt": ((501, 500), (500, 500)),
    "gte": ((500, 500), (499.5, 500)),
    "lt": ((499, 500), (500, 500)),
    "lte": ((500, 500), (500.01, 500)),
    "exists": (("anything", True), ("anything", False)),
}


def test_the_cases_cover_every_op() -> None:
    assert set(CASES) == set(OPS)


@pytest.mark.parametrize("op", sorted(CASES))
def test_each_op_holds_and_fails(op: str) -> None:
    (yes_found, yes_value), (no_found, no_value) = CASES[op]
    assert holds(op, yes_found, yes_value) is True
    assert holds(op, no_found, no_value) is False


def test_exists_without_value_means_present_and_not_null() -> None:
    assert holds("exists", "x", with_value=False) is True
    assert holds("exists", None, with_value=False) is False
    assert Condition(arg="x", op="exists").holds({}) is False
    assert Condition(arg="x", op="exists", value=False).holds({}) is True
    assert Condition(arg="x", op="exists", value=False).holds({"x": None}) is True


@pytest.mark.parametrize("op", ["eq", "ne", "in", "not_in", "gt", "endswith", "matches"])
def test_a_missing_argument_makes_every_other_op_false(op: str) -> None:
    value = CASES[op][0][1]
    condition = Condition.model_validate({"arg": "x", "op": op, "value": value})
    assert condition.holds({}) is False
    assert condition.holds({"x": None}) is False


def test_startswith_and_endswith_accept_a_list_of_alternatives() -> None:
    ends = Condition(arg="to", op="endswith", value=["@a.com", "@b.com"])
    assert ends.holds({"to": "x@b.com"}) and not ends.holds({"to": "x@c.com"})
    starts = Condition(arg="path", op="startswith", value=["/tmp/", "/var/tmp/"])
    assert starts.holds({"path": "/var/tmp/f"}) and not starts.holds({"path": "/etc/passwd"})


def test_contains_on_lists_and_mappings() -> None:
    cc = Condition(arg="cc", op="contains", value="ceo@example.com")
    assert cc.holds({"cc": ["a@example.com", "ceo@example.com"]})
    assert not cc.holds({"cc": ["a@example.com"]})
    headers = Condition(arg="headers", op="contains", value="X-Urgent")
    assert headers.holds({"headers": {"X-Urgent": "1"}})
    assert not headers.holds({"headers": {"X-Other": "1"}})


def test_matches_searches_anywhere_and_compiles_once() -> None:
    condition = Condition(arg="body", op="matches", value=r"\d{4}-\d{4}")
    assert condition.holds({"body": "card 1234-5678 please"})
    assert condition._pattern is not None and condition._pattern.pattern == r"\d{4}-\d{4}"


def test_booleans_are_not_numbers() -> None:
    assert holds("eq", 1, True) is False
    assert holds("eq", True, True) is True
    assert holds("in", 0, [False]) is False
    with pytest.raises(Undecidable):
        holds("gt", True, 0)


def test_comparisons_of_text_and_dates() -> None:
    assert holds("gt", "2024-06-01", "2024-01-01") is True
    assert holds("lt", date(2024, 1, 1), date(2024, 6, 1)) is True


@pytest.mark.parametrize(
    ("op", "found", "value"),
    [
        ("gt", "lots", 500),  # text against a number
        ("lte", [1], 5),
        ("startswith", 42, "4"),
        ("endswith", 7, "7"),
        ("matches", {"a": 1}, "a"),
        ("contains", 5, 5),
        ("contains", "text", 5),
    ],
)
def test_type_mismatches_cannot_be_decided(op: str, found: Any, value: Any) -> None:
    with pytest.raises(Undecidable, match="argument 'x'"):
        holds(op, found, value)


def test_dotted_paths_reach_into_dicts_lists_models_and_dataclasses() -> None:
    class Order(BaseModel):
        amount: float
        currency: str

    @dataclass
    class Line:
        sku: str

    amount = Condition(arg="order.amount", op="gt", value=100)
    assert amount.holds({"order": {"amount": 150}})
    assert amount.holds({"order": Order(amount=150, currency="EUR")})
    assert not amount.holds({"order": Order(amount=50, currency="EUR")})
    assert not amount.holds({"order": "not a mapping"})
    sku = Condition(arg="lines.1.sku", op="eq", value="B")
    assert sku.holds({"lines": [Line("A"), Line("B")]})
    assert not sku.holds({"lines": [Line("A")]})  # index out of range: missing
    assert not Condition(arg="order.model_config", op="exists").holds(
        {"order": Order(amount=1, currency="E")}
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"arg": "x", "op": "eq"}, "op 'eq' needs a value"),
        ({"arg": "x", "op": "in", "value": "EUR"}, "op 'in' needs a list of values"),
        ({"arg": "x", "op": "endswith", "value": 5}, "op 'endswith' needs text"),
        ({"arg": "x", "op": "endswith", "value": []}, "op 'endswith' needs text"),
        ({"arg": "x", "op": "matches", "value": "(["}, "invalid regular expression"),
        ({"arg": "x", "op": "gt", "value": [1]}, "op 'gt' needs a number"),
        ({"arg": "x", "op": "gt", "value": True}, "op 'gt' needs a number"),
        ({"arg": "x", "op": "exists", "value": "yes"}, "op 'exists' takes true, false"),
        ({"arg": "a..b", "op": "exists"}, "is not an argument path"),
        ({"arg": "", "op": "exists"}, "is not an argument path"),
        ({"arg": "x", "op": "like", "value": "a"}, "Input should be 'eq'"),
        ({"arg": "x", "op": "eq", "value": 1, "extra": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_conditions_are_refused_when_built(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Condition.model_validate(fields)


def test_in_values_are_kept_as_a_list() -> None:
    condition = Condition(arg="x", op="in", value=("a", "b"))
    assert condition.value == ["a", "b"]
    assert condition.holds({"x": "b"})


def test_a_rule_needs_every_condition() -> None:
    rule = Rule(
        when=[
            Condition(arg="to", op="endswith", value="@example.com"),
            Condition(arg="amount", op="lt", value=10),
        ],
        effect="allow",
        reason="small internal",
    )
    assert rule.matches({"to": "a@example.com", "amount": 5})
    assert not rule.matches({"to": "a@example.com", "amount": 50})
    assert not rule.matches({"to": "a@evil.com", "amount": 5})


def test_a_rule_without_conditions_always_applies() -> None:
    assert Rule(effect="deny", reason="never").matches({}) is True


def test_one_false_condition_decides_even_if_another_cannot_be_checked() -> None:
    rule = Rule(
        when=[
            Condition(arg="amount", op="gt", value=100),
            Condition(arg="to", op="eq", value="boss"),
        ],
        effect="deny",
        reason="r",
    )
    assert rule.matches({"amount": "lots", "to": "someone else"}) is False
    with pytest.raises(Undecidable, match="'lots'"):
        rule.matches({"amount": "lots", "to": "boss"})


def test_callable_rules_get_a_copy_of_the_arguments() -> None:
    seen: list[dict[str, Any]] = []

    def check(args: dict[str, Any]) -> bool:
        seen.append(args)
        args["mutated"] = True
        return len(args["to"]) > 3

    rule = Rule(when=check, effect="deny", reason="long")
    original = {"to": "abcd"}
    assert rule.matches(original) is True
    assert rule.matches({"to": "ab"}) is False
    assert original == {"to": "abcd"} and seen[0]["to"] == "abcd"


def test_callable_rules_that_fail_or_return_non_bools_cannot_be_decided() -> None:
    def boom(args: dict[str, Any]) -> bool:
        raise KeyError("to")

    with pytest.raises(Undecidable, match="raised KeyError"):
        Rule(when=boom, effect="deny", reason="r").matches({})
    with pytest.raises(Undecidable, match="returned None"):
        Rule(when=lambda args: None, effect="deny", reason="r").matches({})  # type: ignore[arg-type,return-value]


def test_a_rule_needs_a_reason() -> None:
    with pytest.raises(ValidationError, match="reason"):
        Rule(effect="deny", reason="")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("1d", 86400),
        ("1h30m", 5400),
        (90, 90),
        (2.5, 2.5),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("2w", 1_209_600),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["10 minutes", "1y", "", "h", -5, 0, True, None, [1], float("inf")])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(timedelta(hours=1)) == "1h"
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(2.5) == "2.5s"
    assert format_duration(0) == "0s"
    assert format_duration(timedelta(days=1, seconds=1)) == "1d1s"
