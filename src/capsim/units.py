"""Units of the scenario format: inside capsim every time is float seconds, every rate per second."""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_RATE_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "min": 1 / 60.0,
    "m": 1 / 60.0,
    "h": 1 / 3600.0,
    "d": 1 / 86400.0,
}
_MULTIPLIERS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zµ]*)\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*([kKMG]?)\s*(?:/\s*([a-z]+))?\s*$")
_RATIO_RE = re.compile(rf"^\s*({_NUMBER})\s*(%?)\s*$")
_SIZE_RE = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z]*)\s*$")


class UnitError(ValueError):
    """A value could not be read in the expected unit: `problem` says what is wrong and
    `remedy`, when the unit's parser knows it, what would be valid (the message joins them
    with "; ")."""

    def __init__(self, problem: str, remedy: str = "") -> None:
        super().__init__(f"{problem}; {remedy}" if remedy else problem)
        self.problem = problem
        self.remedy = remedy


def _finite(value: float, text: object) -> float:
    if not math.isfinite(value):
        raise UnitError(f"{text!r} is not a finite number")
    return value


def _number(value: object, what: str) -> float | None:
    """A plain number (not bool) as float, or None when `value` is not a number."""
    if isinstance(value, bool):
        raise UnitError(f"expected a {what}, got the boolean {value!r}")
    if isinstance(value, (int, float)):
        return _finite(float(value), value)
    return None


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string such as ``250ms``, ``1.5s``, ``2min``, ``1h``."""
    number = _number(value, "duration")
    if number is not None:
        return number
    if not isinstance(value, str):
        raise UnitError(f"expected a duration such as 250ms or 2min, got {value!r}")
    match = _DURATION_RE.match(value)
    if not match:
        raise UnitError(
            f"{value!r} is not a duration", "write a number and a unit, e.g. 250ms, 1.5s, 2min"
        )
    amount, unit = match.groups()
    unit = unit or "s"
    if unit not in _DURATION_UNITS:
        valid = ", ".join(["us", "ms", "s", "min (or m)", "h", "d"])
        raise UnitError(f"unknown duration unit {unit!r} in {value!r}", f"valid units: {valid}")
    return _finite(float(amount) * _DURATION_UNITS[unit], value)


def parse_rate(value: object) -> float:
    """Per-second rate from a number or ``N/s``, ``N/min``, ``N/h``, ``N/d`` with k/M/G multipliers."""
    number = _number(value, "rate")
    if number is not None:
        return number
    if not isinstance(value, str):
        raise UnitError(f"expected a rate such as 800/s or 48k/min, got {value!r}")
    match = _RATE_RE.match(value)
    if not match:
        raise UnitError(f"{value!r} is not a rate", "write e.g. 800/s, 48k/min, 1.2M/h")
    amount, multiplier, unit = match.groups()
    unit = unit or "s"
    if unit not in _RATE_UNITS:
        raise UnitError(
            f"unknown rate unit '/{unit}' in {value!r}", "valid units: /s, /min, /h, /d"
        )
    return _finite(float(amount) * _MULTIPLIERS[multiplier] * _RATE_UNITS[unit], value)


def parse_ratio(value: object) -> float:
    """A ratio in [0, 1] from a number or a percentage string (``85%``, ``0.1%``)."""
    number = _number(value, "ratio")
    if number is None:
        if not isinstance(value, str):
            raise UnitError(f"expected a ratio such as 0.85 or 85%, got {value!r}")
        match = _RATIO_RE.match(value)
        if not match:
            raise UnitError(
                f"{value!r} is not a ratio", "write a number in [0, 1] or a percentage like 85%"
            )
        amount, percent = match.groups()
        number = _finite(float(amount) / (100.0 if percent else 1.0), value)
    if not 0.0 <= number <= 1.0:
        raise UnitError(
            f"{value!r} is outside [0, 1]", "write a number in [0, 1] or a percentage 0%..100%"
        )
    return number


def parse_size(value: object) -> float:
    """Bytes from a number or a string with B, KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB."""
    number = _number(value, "size")
    if number is not None:
        return number
    if not isinstance(value, str):
        raise UnitError(f"expected a size such as 512MiB, got {value!r}")
    match = _SIZE_RE.match(value)
    if not match:
        raise UnitError(f"{value!r} is not a size", "write e.g. 512MiB or 2GB")
    amount, unit = match.groups()
    unit = unit or "B"
    if unit not in _SIZE_UNITS:
        raise UnitError(
            f"unknown size unit {unit!r} in {value!r}", f"valid units: {', '.join(_SIZE_UNITS)}"
        )
    return _finite(float(amount) * _SIZE_UNITS[unit], value)


#: Durations shorter than this print as 0s: below half a nanosecond a figure is rounding noise of
#: a formula (an Erlang C wait of 1e-20 s), never something a capacity planner can act on.
NEGLIGIBLE_DURATION = 0.5e-9


def format_duration(seconds: float) -> str:
    """A short human form of a duration, to 4 significant digits: ``300ms``, ``1.5s``, ``2min``.

    Every unit keeps 4 digits, so the text reads back within 0.05%; never exponent notation.
    """
    magnitude = abs(seconds)
    if magnitude < NEGLIGIBLE_DURATION:
        return "0s"
    if magnitude < 1e-6:
        return f"{seconds * 1e9:.4g}ns"
    if magnitude < 1e-3:
        return f"{seconds * 1e6:.4g}us"
    if magnitude < 1.0:
        return f"{seconds * 1e3:.4g}ms"
    if magnitude < 120.0:
        return f"{seconds:.4g}s"
    if magnitude < 7200.0:
        return f"{seconds / 60.0:.4g}min"
    hours = seconds / 3600.0
    return f"{hours:.4g}h" if abs(hours) < 1e4 else f"{hours:.0f}h"


def _significant(value: float, digits: int = 4) -> str:
    """`value` to `digits` significant digits, in plain decimals (never exponent notation)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{round(value)}"
    text = f"{value:.{digits - 1 - magnitude}f}"
    return text.rstrip("0").rstrip(".")


#: From here on a count is written as a power of ten (10^18: a billion billion).
HUGE_COUNT = 1e18


def format_count(count: float) -> str:
    """A count for people, to 3 significant digits with thousands separators and never in
    exponent notation: 21987.4 -> ``22,000``, 3.6e9 -> ``3,600,000,000``, 2.5 -> ``2.5``; from
    HUGE_COUNT on, a power of ten: 5e300 -> ``5 x 10^300``."""
    if count == 0 or not math.isfinite(count):
        return f"{count:g}"
    if abs(count) >= HUGE_COUNT:
        # 1e300 requests would be 301 digits: a power of ten reads better than a wall of them.
        mantissa, exponent = f"{count:.2e}".split("e")
        return f"{float(mantissa):g} x 10^{int(exponent)}"
    rounded = float(f"{count:.3g}")
    return f"{rounded:,.0f}" if abs(rounded) >= 100 else _significant(rounded, 3)


def option_count(count: float) -> str:
    """A count to type on the command line (an option's value): 2 significant digits, plain
    digits that parse as a number: 24190 -> ``24000``; ``inf`` from HUGE_COUNT on (no one
    types 10^300, and the options that take a count accept inf)."""
    if not abs(count) < HUGE_COUNT:
        return "inf"
    return f"{float(f'{count:.2g}'):.0f}"


def format_rate(per_second: float) -> str:
    """A short human form of a rate, to 4 significant digits: ``800/s``, ``14110/s``."""
    return f"{_significant(per_second)}/s"


def format_ratio(ratio: float) -> str:
    """A percentage with enough digits for small error-rate limits: ``0.1%``, ``70%``."""
    return f"{_significant(ratio * 100)}%"


#: SLO statistics that are ratios (shown as percentages); `backlog` is a count; the rest are times.
#: SLO statistics that are ratios (shown as percentages) and counts (shown as whole numbers);
#: every other statistic is a time.
RATIO_STATISTICS: tuple[str, ...] = ("error_rate", "utilization", "occupancy", "share_over")
COUNT_STATISTICS: tuple[str, ...] = ("backlog",)


def format_slo_figure(statistic: str, value: float) -> str:
    """An SLO's figure in the unit of its statistic: ``70.31%``, ``3.867s``, ``1,200``."""
    if statistic in RATIO_STATISTICS:
        return format_ratio(value)
    if statistic in COUNT_STATISTICS:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"
    return format_duration(value)


def percentile_key(percent: float) -> str:
    """The result key of a percentile: ``p`` and its digits without the point (p50, p999, p9999)."""
    digits = f"{percent:.10f}".rstrip("0").rstrip(".").replace(".", "")
    return f"p{digits}"
