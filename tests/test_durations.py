"""One duration parser and formatter for policies, config, retries, the ctx API and the CLI."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import legato
from legato.durations import UNITS, format_duration, parse_duration, positive_duration, to_seconds
from legato.timestamps import format_timestamp, utc

units = st.sampled_from(sorted(UNITS))
amounts = st.integers(min_value=0, max_value=10_000)


@given(st.lists(st.tuples(amounts, units, st.sampled_from(["", " "])), min_size=1, max_size=4))
def test_text_is_the_sum_of_its_parts(parts: list[tuple[int, str, str]]) -> None:
    text = "".join(f"{n}{space}{unit}" for n, unit, space in parts)
    expected = sum(n * UNITS[unit] for n, unit, _ in parts)
    assert parse_duration(text).total_seconds() == pytest.approx(expected)
    assert parse_duration(f" {text.upper()} ") == parse_duration(text)


@given(st.floats(min_value=0, max_value=10**8, allow_nan=False))
def test_seconds_and_timedeltas_are_durations(seconds: float) -> None:
    assert parse_duration(seconds) == timedelta(seconds=seconds)
    assert parse_duration(timedelta(seconds=seconds)) == timedelta(seconds=seconds)
    assert to_seconds(timedelta(seconds=seconds), "x") == pytest.approx(seconds, abs=1e-6)


@given(st.floats(min_value=0.001, max_value=10**8, allow_nan=False))
def test_what_is_formatted_parses_back(seconds: float) -> None:
    text = format_duration(seconds)
    back = parse_duration(text).total_seconds()
    if seconds < 60:  # three significant digits
        assert back == pytest.approx(seconds, rel=5e-3)
    else:  # whole seconds, rounded up
        assert math.ceil(seconds) == pytest.approx(back)


@given(st.one_of(st.text(alphabet="0123456789.smhdwy xe-", max_size=8), st.text(max_size=8)))
def test_text_either_parses_or_says_how_to_write_a_duration(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError as exc:
        assert "is not a duration" in str(exc)
    else:
        assert result >= timedelta(0) and any(c in text.lower() for c in "smhdw")


@pytest.mark.parametrize(
    "bad", [True, None, [1], "5", "-5s", "1y", "nand", "1e400d", float("nan"), float("-inf")]
)
def test_what_is_not_a_duration(bad: Any) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(bad)


def test_each_caller_keeps_its_rules_and_messages() -> None:
    # policy and AI config: positive, text welcome
    assert positive_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="a duration must be positive, got 0"):
        positive_duration(0)
    # the Python API: timedelta or seconds, never text, never negative
    with pytest.raises(legato.ConfigurationError, match="sleep duration must not be negative"):
        to_seconds(-1, "sleep duration")
    with pytest.raises(legato.ConfigurationError, match="must be a timedelta or seconds"):
        to_seconds("30s", "event timeout")  # type: ignore[arg-type]
    with pytest.raises(legato.ConfigurationError, match=r"RetryPolicy\.max_delay must be a"):
        legato.RetryPolicy(max_delay=float("nan"))
    with pytest.raises(legato.ConfigurationError, match="RetryPolicy delays must not be negative"):
        legato.RetryPolicy(initial=-1)


def test_format_duration_examples() -> None:
    assert [format_duration(s) for s in (0.0123, 0.25, 2.5, 12.345, 90, 3600, 86401)] == [
        "12.3ms", "250ms", "2.5s", "12.3s", "1m30s", "1h", "1d1s",
    ]  # fmt: skip


def test_one_timestamp_format_per_use() -> None:
    ts = 1_715_679_000.75  # 2024-05-14 09:30:00.75 UTC
    assert format_timestamp(ts) == utc(ts).isoformat(timespec="seconds")
    assert format_timestamp(ts) == "2024-05-14T09:30:00+00:00"
    assert format_timestamp(ts, "text") == "2024-05-14 09:30:00"
    assert format_timestamp(ts, "day") == "2024-05-14"
