"""Reading a saved `capsim run --format json` result (a baseline, a compare input) as untrusted.

Anything may be in the file: wrong types, missing keys, numbers beyond any float, `Infinity` and
`NaN`, nesting 100,000 deep, bytes that are not UTF-8, names with control characters. Every such
file is refused with one message, `not a capsim result: <path>: <what>` (exit 2), before any
figure is used; what passes has the shape the comparisons rely on and only finite numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from capsim.errors import UsageError
from capsim.safeio import read_capped
from capsim.textsafe import describe_unsafe, first_unsafe, visible

#: The largest result file read: a run's JSON with time series for many classes and tiers is a
#: few MiB; far beyond that it is not a result.
MAX_RESULT_BYTES = 64 * 1024 * 1024
#: An integer longer than this is not a figure capsim writes (and beyond a float's range).
MAX_INTEGER_DIGITS = 300
#: A name or text longer than this is not one capsim writes.
MAX_TEXT = 1000
_CLASS_NUMBERS = ("offered_rate", "throughput", "error_rate", "errors", "completed")
_TIER_NUMBERS = ("utilization", "occupancy", "throughput", "rejected")


class NotAResult(UsageError):
    """The file is not a capsim result; the message says where and what is wrong."""

    def __init__(self, source: str, what: str) -> None:
        super().__init__(f"not a capsim result: {visible(source)}: {what}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number capsim writes (figures are finite)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond the range of a float")
    return value


def _parse_int(text: str) -> int:
    if len(text) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer of {len(text):,} digits is not a figure")
    return int(text)


def parse_result_json(text: str, source: str) -> Any:
    """Strict JSON: no Infinity or NaN, finite numbers only, nesting Python can hold."""
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as error:
        raise NotAResult(
            source, f"line {error.lineno} column {error.colno}: not valid JSON ({error.msg})"
        ) from None
    except RecursionError:
        raise NotAResult(source, "the JSON is nested too deeply") from None
    except ValueError as error:
        raise NotAResult(source, str(error)) from None


def decode_result(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NotAResult(
            source, f"not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start})"
        ) from None


def load_result(path: str | Path) -> dict[str, Any]:
    """A saved result read from `path` (`-` for standard input) and checked (`validate_result`)."""
    source = str(path)
    raw = read_capped(source, MAX_RESULT_BYTES, "a capsim result")
    return validate_result(parse_result_json(decode_result(raw, source), source), source)


# ---- the shape ---------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _text(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str):
        raise NotAResult(source, f"{where} must be text, not {_kind(value)}")
    if len(value) > MAX_TEXT:
        raise NotAResult(source, f"{where} is {len(value):,} characters long")
    index = first_unsafe(value)
    if index is not None:
        raise NotAResult(
            source, f"{where} '{visible(value)[:80]}' holds {describe_unsafe(value, index)}"
        )
    return value


def _number(value: Any, where: str, source: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise NotAResult(source, f"{where} must be a number or null, not {_kind(value)}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        raise NotAResult(source, f"{where} is an integer beyond any figure capsim writes")


def _mapping(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NotAResult(source, f"{where} must be a JSON object, not {_kind(value)}")
    return value


def _intervals(entry: dict[str, Any], where: str, source: str) -> None:
    if entry.get("ci95") is None:
        return
    for figure, interval in _mapping(entry["ci95"], f"{where}.ci95", source).items():
        at = f"{where}.ci95.{visible(figure)}"
        if interval is None:
            continue
        if not isinstance(interval, list) or len(interval) != 2:
            raise NotAResult(source, f"{at} must be a list [low, high] or null")
        for end in interval:
            _number(end, at, source)


def _entries(data: dict[str, Any], key: str, numbers: tuple[str, ...], source: str) -> None:
    for name, entry in _mapping(data[key], key, source).items():
        _text(name, f"a name in {key}", source)
        where = f"{key}.{name}"
        _mapping(entry, where, source)
        for figure in numbers:
            _number(entry.get(figure), f"{where}.{figure}", source)
        for group in ("latency", "wait", "queue_length"):
            if entry.get(group) is not None:
                for statistic, value in _mapping(entry[group], f"{where}.{group}", source).items():
                    _number(value, f"{where}.{group}.{visible(statistic)}", source)
        _intervals(entry, where, source)


def _slos(value: Any, source: str) -> None:
    if not isinstance(value, list):
        raise NotAResult(source, f"slos must be a list, not {_kind(value)}")
    for index, verdict in enumerate(value):
        where = f"slos[{index}]"
        _mapping(verdict, where, source)
        _text(verdict.get("slo"), f"{where}.slo", source)
        if not isinstance(verdict.get("passed"), bool):
            raise NotAResult(source, f"{where}.passed must be true or false")
        for key in ("observed", "limit"):
            _number(verdict.get(key), f"{where}.{key}", source)
        if verdict.get("limit") is None:
            raise NotAResult(source, f"{where}.limit is missing")
        if verdict.get("statistic") is not None:
            _text(verdict["statistic"], f"{where}.statistic", source)


def validate_result(data: Any, source: str) -> dict[str, Any]:
    """`data` when it has the shape of a `capsim run --format json` result, else NotAResult."""
    if not isinstance(data, dict):
        raise NotAResult(
            source,
            f"the top level is {_kind(data)}, not the JSON object written by "
            "`capsim run SCENARIO --format json --output FILE`",
        )
    if isinstance(data.get("command"), str):
        raise NotAResult(
            source,
            f"it is a `capsim {visible(data['command'])[:40]}` result; give the output of "
            "`capsim run SCENARIO --format json`",
        )
    for key in ("classes", "tiers"):
        if key not in data:
            raise NotAResult(
                source,
                f"it has no `{key}`; give the output of `capsim run SCENARIO --format json`",
            )
    _entries(data, "classes", _CLASS_NUMBERS, source)
    _entries(data, "tiers", _TIER_NUMBERS, source)
    for key in ("scenario", "capsim_version"):
        if data.get(key) is not None:
            _text(data[key], key, source)
    replications = data.get("replications", 1)
    if isinstance(replications, bool) or not isinstance(replications, int):
        raise NotAResult(source, f"replications must be a whole number, not {_kind(replications)}")
    if not 1 <= replications <= 10**9:
        raise NotAResult(source, f"replications is {replications}; it must be at least 1")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise NotAResult(source, f"seed must be a whole number, not {_kind(seed)}")
    if seed is not None and not 0 <= seed < 2**64:
        raise NotAResult(source, "seed is beyond the seeds capsim uses (0 to 2^64 - 1)")
    _number(data.get("duration"), "duration", source)
    if data.get("passed") is not None and not isinstance(data["passed"], bool):
        raise NotAResult(source, "passed must be true, false or null")
    _slos(data.get("slos", []), source)
    return data
