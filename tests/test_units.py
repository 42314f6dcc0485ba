"""Units: every time is seconds and every rate per second once parsed; formats read back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capsim.units import (
    UnitError,
    format_duration,
    format_rate,
    format_ratio,
    parse_duration,
    parse_rate,
    parse_ratio,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (20, 20.0),
        (0.25, 0.25),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2min", 120.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("300us", 3e-4),
        ("1e3", 1000.0),
        ("1e-3s", 1e-3),
    ],
)
def test_a_duration_is_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        (800, 800.0),
        ("800/s", 800.0),
        ("48k/min", 800.0),
        ("1.2M/h", 1.2e6 / 3600),
        ("86400/d", 1.0),
    ],
)
def test_a_rate_is_per_second(text: object, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(
    ("text", "ratio"), [(0.85, 0.85), ("85%", 0.85), ("0.1%", 0.001), (1, 1.0)]
)
def test_a_ratio_is_a_fraction(text: object, ratio: float) -> None:
    assert parse_ratio(text) == pytest.approx(ratio)


@pytest.mark.parametrize(
    ("text", "size"), [("512MiB", 512 * 1024**2), ("2GB", 2e9), ("1KB", 1000), (10, 10)]
)
def test_sizes_use_decimal_and_binary_prefixes(text: object, size: float) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("parse", "value", "fragment"),
    [
        (parse_duration, "5 parsecs", "unknown duration unit"),
        (parse_duration, True, "boolean"),
        (parse_duration, float("nan"), "finite"),
        (parse_rate, "800/week", "valid units: /s, /min, /h, /d"),
        (parse_ratio, "150%", "outside [0, 1]"),
        (parse_ratio, 1.2, "outside [0, 1]"),
        (parse_size, "3 lightyears", "unknown size unit"),
    ],
)
def test_unreadable_values_say_what_would_be_valid(parse, value, fragment) -> None:
    with pytest.raises(UnitError) as caught:
        parse(value)
    assert fragment in str(caught.value)


def test_a_unit_error_carries_its_problem_and_remedy_apart() -> None:
    with pytest.raises(UnitError) as caught:
        parse_rate("800/week")
    error = caught.value
    assert error.problem == "unknown rate unit '/week' in '800/week'"
    assert error.remedy == "valid units: /s, /min, /h, /d"
    assert str(error) == f"{error.problem}; {error.remedy}"
    with pytest.raises(UnitError) as caught:
        parse_duration(True)
    assert caught.value.remedy == ""  # the caller adds what its field accepts


def test_the_formats_read_like_the_spec() -> None:
    assert format_duration(0.3) == "300ms"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(600) == "10min"
    assert format_rate(800) == "800/s"
    assert format_ratio(0.001) == "0.1%"
    assert format_ratio(0.7) == "70%"


@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_a_formatted_duration_reads_back_within_its_precision(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-3)


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False))
def test_a_duration_written_in_ms_reads_back_as_seconds(milliseconds: float) -> None:
    assert parse_duration(f"{milliseconds!r}ms") == pytest.approx(milliseconds / 1e3, rel=1e-12)


@given(st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_a_formatted_rate_reads_back_within_its_precision(per_second: float) -> None:
    assert parse_rate(format_rate(per_second)) == pytest.approx(per_second, rel=1e-3)


@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_a_formatted_ratio_reads_back_within_its_precision(ratio: float) -> None:
    assert parse_ratio(format_ratio(ratio)) == pytest.approx(ratio, rel=1e-3, abs=1e-12)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["/s", "/min", "/h", "/d"]))
def test_rates_in_any_unit_are_positive_per_second(amount: int, unit: str) -> None:
    value = parse_rate(f"{amount}{unit}")
    assert value >= 0 and math.isfinite(value)
