"""The scenario format as pydantic models: every key a scenario file may hold, with its units.

Run ``python -m capsim.scenario > src/capsim/schema/scenario.schema.json`` to regenerate
the committed JSON Schema after changing these models.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from capsim.errors import Problem
from capsim.safeio import InputError, read_capped
from capsim.scenario.loader import PathKey, Position, format_path
from capsim.scenario.traffic_files import TrafficFileError, read_rate_series, read_timestamps
from capsim.textsafe import describe_unsafe, first_unsafe
from capsim.units import (
    UnitError,
    format_count,
    parse_duration,
    parse_rate,
    parse_ratio,
    parse_size,
    percentile_key,
)
from capsim.vocabulary import LATENCY_STATISTICS, TIER_TYPES

BALANCING = ("round_robin", "random", "least_connections", "power_of_two")
DISTRIBUTIONS = ("constant", "exponential", "lognormal", "gamma", "uniform", "empirical")
MAX_SAMPLES_FILE_BYTES = 10 * 1024 * 1024
FIELD = "{field}"  # replaced by the key's name when a problem is reported

#: A name: a letter, digit or "_" then letters, digits, "_" and "-"; matched in full (`fullmatch`:
#: with `match` and `$`, a trailing newline would pass).
_NAME_RE = re.compile(r"[\w][\w\-]*")


# ---- helpers for plain-worded errors ---------------------------------------------------------
def show(value: Any, limit: int = 80) -> str:
    """A value as the user wrote it, shortened to about `limit` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, float) and math.isnan(value):
        text = ".nan"
    elif isinstance(value, float) and math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: Any) -> str:
    """The YAML kind of a value, in the user's words."""
    if isinstance(value, bool):
        return f"the boolean {show(value)}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, (int, float)):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


#: How close a word must be to a valid one for `suggest` to offer it (difflib's ratio).
SUGGEST_CUTOFF = 0.6


def suggest(word: str, valid: Sequence[str]) -> str:
    """`; did you mean 'x'?` when one valid word is close, else an empty string; where the two
    differ by letters outside ASCII (which may look like others: Cyrillic 'а' and Latin 'a'),
    it names them."""
    close = difflib.get_close_matches(str(word), list(valid), n=1, cutoff=SUGGEST_CUTOFF)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?{look_alike(str(word), close[0])}"


def look_alike(word: str, other: str) -> str:
    """` (...)` naming the characters outside ASCII that one of two names has and the other
    not, with their code points: two names that look the same on screen; "" when there are
    none."""
    differing = [
        ch for ch in dict.fromkeys(word + other) if not ch.isascii() and (ch in word) != (ch in other)
    ]
    if not differing:
        return ""
    named = ", ".join(
        f"{(word if ch in word else other)!r} has {ch!r} U+{ord(ch):04X} "
        f"{unicodedata.name(ch, 'without a name')}"
        for ch in differing[:3]
    )
    return f" (they may look alike: {named})"


def invalid(message: str, at: str | None = None) -> PydanticCustomError:
    """A validation error whose message is shown as is; `at` names a key below the model."""
    context: dict[str, Any] = {"message": message}
    if at is not None:
        context["at"] = at
    return PydanticCustomError("capsim", "{message}", context)


def _number(value: Any, expected: str) -> float:
    if isinstance(value, bool):
        raise invalid(f"{show(value)} is a boolean, not a number; {FIELD} must be {expected}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            beyond = " (any number beyond about 1.8e308 counts as infinite)" * math.isinf(value)
            raise invalid(
                f"{show(value)} is not a finite number{beyond}; {FIELD} must be {expected}"
            )
        return float(value)
    raise invalid(f"expected a number, got {kind_of(value)}; {FIELD} must be {expected}")


def _unit(
    parse: Callable[[object], float], expected: str, positive: bool
) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if value is None or isinstance(value, (list, dict, bool)):
            raise invalid(f"expected {expected}, got {kind_of(value)}")
        try:
            number = parse(value)
        except UnitError as error:
            remedy = "" if error.remedy else f"; {FIELD} must be {expected}"
            raise invalid(f"{error}{remedy}") from None
        if positive and number <= 0:
            raise invalid(f"{show(value)} is not greater than 0; {FIELD} must be {expected}")
        if number < 0:
            raise invalid(f"{show(value)} is negative; {FIELD} must be {expected}")
        return number

    return check


def _whole(minimum: int, expected: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = _number(value, expected)
        if not number.is_integer():
            raise invalid(f"{show(value)} is not a whole number; {FIELD} must be {expected}")
        if number < minimum:
            problem = "is negative" if number < 0 else "is not positive"
            raise invalid(f"{show(value)} {problem}; {FIELD} must be {expected}")
        return int(number)

    return check


#: The largest whole number every float holds exactly: a seed written as a float beyond it
#: (1e300) names no one seed.
_EXACT_FLOAT = 2**53


def _seed(value: Any) -> int:
    """A seed, exactly as written: a whole number of any size; one written as a float only up
    to 2^53 (`_whole` goes through a float, which turned 123456789012345678901234567890 into
    123456789012345677877719597056, another seed than the one written)."""
    expected = "a whole number of 0 or more such as 42"
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise invalid(f"{show(value)} is negative; {FIELD} must be {expected}")
        return value
    number = _whole(0, expected)(value)
    if abs(float(value)) > _EXACT_FLOAT:
        raise invalid(
            f"{show(value)} is written as a float, which holds no whole number above 2^53 "
            f"exactly; write the seed's digits, e.g. 42"
        )
    return number


def _plain(minimum: float, strict: bool, expected: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        number = _number(value, expected)
        if number < minimum or (strict and number == minimum):
            raise invalid(f"{show(value)} is out of range; {FIELD} must be {expected}")
        return number

    return check


def _choice(valid: Sequence[str], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in valid:
            hint = suggest(value, valid) if isinstance(value, str) else ""
            raise invalid(f"unknown {what} {show(value)}{hint} (valid: {', '.join(valid)})")
        return value

    return check


def _text(value: Any) -> str:
    """One line of text: no control characters (newline and tab included), no lone surrogates."""
    return _checked_text(value, prose=False)


def _prose(value: Any) -> str:
    """Free text that may span lines (a description): newline and tab allowed."""
    return _checked_text(value, prose=True)


def _checked_text(value: Any, *, prose: bool) -> str:
    if not isinstance(value, str):
        raise invalid(f"expected text, got {kind_of(value)}")
    index = first_unsafe(value, prose=prose)
    if index is not None:
        allowed = "line breaks and tabs are allowed, " if prose else ""
        raise invalid(
            f"{show(value)} holds {describe_unsafe(value, index)}; {allowed}control characters "
            "and unpaired surrogates are not (they would reach terminals, logs and reports)"
        )
    return value


_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def _currency(value: Any) -> str:
    code = _text(value)
    if not _CURRENCY_RE.match(code):
        raise invalid(
            f"{show(code)} is not a currency code; write the 3 capital letters of ISO 4217, "
            "such as USD, EUR or GBP"
        )
    return code


def is_name(text: str) -> bool:
    """Whether `text` is a valid tier, class or zone name (the whole of it)."""
    return _NAME_RE.fullmatch(text) is not None


def _name(value: Any) -> str:
    name = _text(value)
    if not is_name(name):
        raise invalid(
            f"{show(name)} is not a valid name; use letters, digits, '_' and '-' (no dots or "
            f"spaces){not_a_letter(name)}"
        )
    return name


def not_a_letter(name: str) -> str:
    """` (...)` naming a character outside ASCII that is no letter, digit, '_' or '-' where a
    name looks valid on screen (a combining accent, a zero-width space), and the composed form
    when that is a valid name; "" otherwise."""
    odd = [ch for ch in name if not ch.isascii() and not _NAME_RE.fullmatch("a" + ch)]
    if not odd:
        return ""
    ch = odd[0]
    found = f" ({show(name)} holds U+{ord(ch):04X} {unicodedata.name(ch, 'without a name')}"
    composed = unicodedata.normalize("NFC", name)
    if composed != name and is_name(composed):
        return f"{found}, a separate accent: write the accented letter itself, {show(composed)})"
    return found + ")"


def _number_schema(description: str, pattern: str, examples: list[Any]) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": pattern}],
        "description": description,
        "examples": examples,
    }


_DURATION_PATTERN = (
    r"^\s*[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*(ns|us|µs|ms|s|sec|m|min|h|d)?\s*$"
)
_RATE_PATTERN = (
    r"^\s*[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*[kKMG]?\s*(/\s*(s|sec|min|m|h|d))?\s*$"
)
_RATIO_PATTERN = r"^\s*[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*%?\s*$"
_DURATION_SCHEMA = _number_schema(
    "duration: a number of seconds, or a number with a unit us, ms, s, min (or m), h, d",
    _DURATION_PATTERN,
    ["250ms", "1.5s", "2min", 0.02],
)
_RATE_SCHEMA = _number_schema(
    "rate: a number per second, or N/s, N/min, N/h, N/d with optional k, M, G multipliers",
    _RATE_PATTERN,
    ["800/s", "48k/min", "1.2M/h", 100],
)
_RATIO_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "pattern": _RATIO_PATTERN},
    ],
    "description": "ratio: a number in [0, 1] or a percentage such as 85% or 0.1%",
    "examples": [0.85, "85%", "0.1%"],
}

Duration = Annotated[
    float,
    BeforeValidator(_unit(parse_duration, "a duration of 0 or more such as 250ms", False)),
    WithJsonSchema(_DURATION_SCHEMA),
]
PositiveDuration = Annotated[
    float,
    BeforeValidator(_unit(parse_duration, "a duration greater than 0 such as 250ms", True)),
    WithJsonSchema(
        {**_DURATION_SCHEMA, "description": "positive " + _DURATION_SCHEMA["description"]}
    ),
]
Rate = Annotated[
    float,
    BeforeValidator(_unit(parse_rate, "a rate of 0 or more such as 800/s", False)),
    WithJsonSchema(_RATE_SCHEMA),
]
PositiveRate = Annotated[
    float,
    BeforeValidator(_unit(parse_rate, "a rate greater than 0 such as 800/s", True)),
    WithJsonSchema({**_RATE_SCHEMA, "description": "positive " + _RATE_SCHEMA["description"]}),
]
Ratio = Annotated[
    float,
    BeforeValidator(_unit(parse_ratio, "a ratio in [0, 1] such as 0.85 or 85%", False)),
    WithJsonSchema(_RATIO_SCHEMA),
]
Count = Annotated[
    int,
    BeforeValidator(_whole(1, "a positive integer such as 4")),
    WithJsonSchema({"type": "integer", "minimum": 1}),
]
NonNegativeInt = Annotated[
    int,
    BeforeValidator(_whole(0, "a whole number of 0 or more such as 100")),
    WithJsonSchema({"type": "integer", "minimum": 0}),
]
PositiveNumber = Annotated[
    float,
    BeforeValidator(_plain(0.0, True, "a number greater than 0 such as 1.5")),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0}),
]
NonNegativeNumber = Annotated[
    float,
    BeforeValidator(_plain(0.0, False, "a number of 0 or more such as 0.9")),
    WithJsonSchema({"type": "number", "minimum": 0}),
]
Name = Annotated[
    str,
    BeforeValidator(_name),
    WithJsonSchema({"type": "string", "pattern": r"^[\w][\w\-]*$"}),
]
Text = Annotated[str, BeforeValidator(_text)]
Prose = Annotated[str, BeforeValidator(_prose)]
Balancing = Annotated[
    Literal["round_robin", "random", "least_connections", "power_of_two"],
    BeforeValidator(_choice(BALANCING, "balancing")),
]


class _Strict(BaseModel):
    # defer_build: each model's validator is built when first used (the scenario's, once, with
    # every nested model in it) instead of once per class at import: ~10 ms of every start-up.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, defer_build=True)


# ---- distributions -----------------------------------------------------------------------------
class SamplesFile(BaseModel):
    """Samples read from a file next to the scenario (one number or duration per field)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str
    samples: tuple[float, ...]


#: How long a named pipe named in a scenario may take to give its first bytes.
PIPE_WAIT_S = 10.0


def read_scenario_file(name: str, info: ValidationInfo, what: str = "samples file") -> str:
    """The text of a data file named in a scenario: relative to the scenario's folder, confined
    to it, at most MAX_SAMPLES_FILE_BYTES (samples, traces and rate series all go through here)."""
    context = info.context or {}
    base = Path(context.get("base_dir", ".")).resolve()
    try:
        target = (base / name).resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop (Python < 3.13)
        raise invalid(
            f"cannot read the {what} {show(name)}: {getattr(error, 'strerror', None) or error}"
        ) from None
    if not target.is_relative_to(base):
        raise invalid(
            f"{show(name)} is outside the scenario's folder; put the {what} in the same "
            "folder as the scenario (or below it) and give its relative path"
        )
    try:
        missing = not target.exists()
    except OSError:
        missing = False  # a name too long, say: reading says why
    if missing:
        raise invalid(
            f"no {what} {show(name)} in {show(str(base))}; check the path (relative to "
            "the scenario)"
        )
    try:
        # A named pipe with no writer would make the run wait for one that may never come.
        raw = read_capped(target, MAX_SAMPLES_FILE_BYTES, f"a {what}", pipe_wait=PIPE_WAIT_S)
        return raw.decode("utf-8-sig")
    except InputError as error:
        raise invalid(f"cannot read the {what} {show(name)}: {error.reason}") from None
    except UnicodeDecodeError as error:
        raise invalid(
            f"the {what} {show(name)} is not UTF-8 text (byte {error.start + 1}); save it as UTF-8"
        ) from None


def _read_samples_file(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, SamplesFile):
        return value
    name = _text(value)
    text = read_scenario_file(name, info)
    samples: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        tokens = [t for t in re.split(r"[,;\s]+", line) if t]
        values = []
        for token in tokens:
            try:
                values.append(parse_duration(token))
            except UnitError as error:
                if not samples and not values and all(not c.isdigit() for c in line):
                    break  # a header line such as "latency_ms"
                raise invalid(f"{name} line {number}: {error}") from None
        if any(v < 0 or not math.isfinite(v) for v in values):
            raise invalid(f"{name} line {number}: samples must be durations of 0 or more")
        samples.extend(values)
    if not samples:
        raise invalid(f"the samples file {show(name)} holds no numbers")
    return SamplesFile(path=name, samples=tuple(samples))


SamplesPath = Annotated[
    SamplesFile,
    BeforeValidator(_read_samples_file),
    WithJsonSchema(
        {
            "type": "string",
            "description": "path, relative to the scenario's folder, of a file of samples "
            "(numbers in seconds or durations with units, separated by commas or whitespace)",
        }
    ),
]


class ConstantDist(_Strict):
    dist: Literal["constant"]
    value: Duration


class ExponentialDist(_Strict):
    dist: Literal["exponential"]
    mean: PositiveDuration


#: The widest spread of a lognormal or gamma time capsim draws: beyond it the draws and moments
#: leave floating point (a cv of 1e300 squares to infinity, a gamma cv of 1e-300 to zero).
MAX_CV = 1e6
MIN_GAMMA_CV = 1e-6
#: The widest p99 / p50 of a lognormal fitted from percentiles (sigma about 12).
MAX_P99_OVER_P50 = 1e12


class LognormalDist(_Strict):
    """Lognormal from its mean and cv, or fitted to two percentiles p50 and p99."""

    dist: Literal["lognormal"]
    mean: PositiveDuration | None = None
    cv: PositiveNumber | None = None
    p50: PositiveDuration | None = None
    p99: PositiveDuration | None = None

    @model_validator(mode="after")
    def _one_form(self) -> LognormalDist:
        by_moments = self.mean is not None or self.cv is not None
        by_percentiles = self.p50 is not None or self.p99 is not None
        if by_moments and by_percentiles:
            raise invalid("give either mean and cv, or p50 and p99, not both")
        if by_percentiles:
            if self.p50 is None or self.p99 is None:
                raise invalid("a lognormal fitted from percentiles needs both p50 and p99")
            if self.p99 <= self.p50:
                raise invalid("p99 must be greater than p50", at="p99")
            if self.p99 > MAX_P99_OVER_P50 * self.p50:
                raise invalid(
                    f"p99 is more than {MAX_P99_OVER_P50:.0e} times p50, beyond what a "
                    "lognormal can be drawn from; give a p99 closer to p50",
                    at="p99",
                )
        elif self.mean is None or self.cv is None:
            raise invalid(
                "a lognormal needs mean and cv (e.g. mean: 20ms, cv: 1.5), or p50 and p99"
            )
        elif self.cv > MAX_CV:
            raise invalid(f"cv {self.cv:g} is above {MAX_CV:g}; give a cv of at most that", at="cv")
        return self


class GammaDist(_Strict):
    dist: Literal["gamma"]
    mean: PositiveDuration
    cv: PositiveNumber

    @model_validator(mode="after")
    def _drawable(self) -> GammaDist:
        if not MIN_GAMMA_CV <= self.cv <= MAX_CV:
            raise invalid(
                f"cv {self.cv:g} is outside [{MIN_GAMMA_CV:g}, {MAX_CV:g}], where a gamma can be "
                "drawn from (shape = 1 / cv^2); give a cv in that range (a constant for no spread)",
                at="cv",
            )
        return self


class UniformDist(_Strict):
    dist: Literal["uniform"]
    min: Duration
    max: Duration

    @model_validator(mode="after")
    def _ordered(self) -> UniformDist:
        if self.min > self.max:
            raise invalid("min is greater than max; write min <= max", at="max")
        return self


class EmpiricalDist(_Strict):
    dist: Literal["empirical"]
    samples: list[Duration] | None = Field(default=None, min_length=1)
    file: SamplesPath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EmpiricalDist:
        if (self.samples is None) == (self.file is None):
            raise invalid(
                "an empirical distribution needs exactly one of samples: [...] or file: path"
            )
        return self

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(self.samples) if self.samples is not None else self.file.samples  # type: ignore[union-attr]


def _dist_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "<value>"
    kind = value.get("dist")
    return f"<{kind}>" if isinstance(kind, str) and kind in DISTRIBUTIONS else None


DistributionSpec = Annotated[
    Annotated[Duration, Tag("<value>")]
    | Annotated[ConstantDist, Tag("<constant>")]
    | Annotated[ExponentialDist, Tag("<exponential>")]
    | Annotated[LognormalDist, Tag("<lognormal>")]
    | Annotated[GammaDist, Tag("<gamma>")]
    | Annotated[UniformDist, Tag("<uniform>")]
    | Annotated[EmpiricalDist, Tag("<empirical>")],
    Discriminator(
        _dist_tag, custom_error_type="capsim_tag_dist", custom_error_message="not a valid dist"
    ),
]
"""A duration (a constant) or a mapping with `dist:` naming the distribution."""


# ---- cache hit ratio ---------------------------------------------------------------------------
class LruModel(_Strict):
    """Hit ratio of an LRU cache under Zipf popularity, by Che's approximation."""

    model: Annotated[Literal["lru"], BeforeValidator(_choice(("lru", "ttl"), "hit-ratio model"))]
    capacity: Count
    keys: Count
    zipf: NonNegativeNumber
    cold: bool = False  # simulated key by key from an empty cache (docs/dynamic.md#cold-caches)

    @model_validator(mode="after")
    def _small_enough_to_simulate(self) -> LruModel:
        if self.cold and self.keys > COLD_KEYS:
            raise invalid(
                f"a cold cache is simulated key by key, so keys must be at most {COLD_KEYS} "
                f"(got {self.keys}); leave out cold: true to use Che's steady-state hit ratio",
                at="keys",
            )
        return self


#: The most keys a cold cache may have: its popularity table takes 8 bytes a key.
COLD_KEYS = 2_000_000


class TtlModel(_Strict):
    """Hit ratio of a TTL cache under Zipf popularity and Poisson requests (tests/oracles/ORACLES.md section 7)."""

    model: Annotated[Literal["ttl"], BeforeValidator(_choice(("ttl",), "hit-ratio model"))]
    ttl: PositiveDuration
    keys: Count
    zipf: NonNegativeNumber
    reset_on_hit: bool = False
    rate: PositiveRate | None = None  # requests reaching the cache; default: from the traffic


def _hit_model_tag(value: Any) -> str:
    if not isinstance(value, dict):
        return "<ratio>"
    return "<ttl>" if value.get("model") == "ttl" else "<lru>"


HitRatioSpec = Annotated[
    Annotated[Ratio, Tag("<ratio>")]
    | Annotated[LruModel, Tag("<lru>")]
    | Annotated[TtlModel, Tag("<ttl>")],
    Discriminator(_hit_model_tag),
]


# ---- calls ---------------------------------------------------------------------------------------
BACKOFFS = ("exponential", "constant", "none")
JITTERS = ("full", "none")


class RetrySpec(_Strict):
    """How a caller retries a failed or timed-out call (docs/dynamic.md#timeouts-and-retries)."""

    max: NonNegativeInt = 3
    backoff: Annotated[
        Literal["exponential", "constant", "none"], BeforeValidator(_choice(BACKOFFS, "backoff"))
    ] = "exponential"
    base: Duration = 0.05
    cap: PositiveDuration = 2.0
    jitter: Annotated[Literal["full", "none"], BeforeValidator(_choice(JITTERS, "jitter"))] = "full"
    budget: Ratio | None = None


class CircuitBreakerSpec(_Strict):
    """Closed, open, half-open on the error rate of recent calls (docs/dynamic.md)."""

    error_rate: Ratio = 0.5
    window: PositiveDuration = 10.0
    min_calls: Count = 20
    open_for: PositiveDuration = 30.0
    probes: Count = 5


#: Named percentiles a hedge may wait for (p999 is the 99.9th); others are written p<number>.
HEDGE_PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}
_HEDGE_AFTER = (
    "a duration greater than 0 such as 20ms, or a percentile of the callee's response time: "
    "p50, p90, p95, p99, p999 or p<number> with 0 < number < 100 (such as p97.5)"
)
_PERCENTILE_RE = re.compile(r"^p(\d+(\.\d*)?|\.\d+)$")


def hedge_percentile(text: str) -> float | None:
    """The quantile (0 < q < 1) that `p95`, `p999` or `p97.5` names; None if it names none."""
    text = text.strip()
    if text in HEDGE_PERCENTILES:
        return HEDGE_PERCENTILES[text]
    match = _PERCENTILE_RE.match(text)
    if match is None:
        return None
    number = float(match.group(1))
    return number / 100.0 if 0.0 < number < 100.0 else None


def _hedge_after(value: Any) -> float | str:
    if isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("p"):
            if hedge_percentile(text) is None:
                raise invalid(f"{show(value)} is not a percentile; {FIELD} must be {_HEDGE_AFTER}")
            return text
        try:
            parse_duration(value)
        except UnitError:
            raise invalid(
                f"{show(value)} is neither a duration nor a percentile; {FIELD} must be "
                f"{_HEDGE_AFTER}"
            ) from None
    return _unit(parse_duration, _HEDGE_AFTER, True)(value)


class HedgeSpec(_Strict):
    """Hedged requests: another copy of a call that has not answered in time
    (docs/dynamic.md#hedged-requests)."""

    after: Annotated[
        float | str,
        BeforeValidator(_hedge_after),
        WithJsonSchema(
            {
                "anyOf": [
                    _DURATION_SCHEMA["anyOf"][0] | {"exclusiveMinimum": 0},
                    _DURATION_SCHEMA["anyOf"][1],
                    {"type": "string", "pattern": r"^[pP](\d+(\.\d*)?|\.\d+)$"},
                ],
                "description": "when to send the next copy: " + _HEDGE_AFTER,
                "examples": ["20ms", "p95"],
            }
        ),
    ]
    max: Count = 1

    @property
    def quantile(self) -> float | None:
        """The percentile `after` names, as a quantile (None: `after` is a duration)."""
        return hedge_percentile(self.after) if isinstance(self.after, str) else None


class TierCall(_Strict):
    tier: Name
    probability: Ratio = 1.0
    repeat: Count = 1
    timeout: PositiveDuration | None = None
    retries: RetrySpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    bulkhead: Count | None = None
    hedge: HedgeSpec | None = None
    write: bool = Field(
        default=False,
        description="a write: goes to the callee's primary region (its `primary`), paying the "
        "round trip from other regions (docs/regions.md)",
    )


#: What decides how often a forwarding call is made (so the mapping has no probability or repeat).
_FORWARD_COUNT = {
    "on_miss": "a miss calls it once, so its share is 1 - hit_ratio",
    "backends": "every request goes to a backend once",
}


class ForwardCall(_Strict):
    """A cache's `on_miss` or a load balancer's `backends` as a call mapping: the tier, and the
    call's timeout, retries, circuit breaker, bulkhead and hedge (docs/dynamic.md#miss-and-backend-calls)."""

    tier: Name
    timeout: PositiveDuration | None = None
    retries: RetrySpec | None = None
    circuit_breaker: CircuitBreakerSpec | None = None
    bulkhead: Count | None = None
    hedge: HedgeSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_count(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("probability", "repeat"):
                if key in data:
                    raise invalid(
                        f"{key} has no place in on_miss or backends: "
                        f"{_FORWARD_COUNT['on_miss']}; {_FORWARD_COUNT['backends']}. "
                        "Keep tier, timeout, retries, circuit_breaker, bulkhead, hedge",
                        at=key,
                    )
        return data


def forward_target(value: str | ForwardCall | None) -> str | None:
    """The tier a forwarding setting (`on_miss`, `backends`) names, plain or as a mapping."""
    return value.tier if isinstance(value, ForwardCall) else value


Forward = Annotated[
    Annotated[Name, Tag("<name>")] | Annotated[ForwardCall, Tag("<tier>")],
    Discriminator(
        lambda value: (
            "<tier>" if isinstance(value, dict) else "<name>" if isinstance(value, str) else None
        ),
        custom_error_type="capsim_tag_forward",
        custom_error_message="not a tier name or a call mapping such as {tier: db, timeout: 1s}",
    ),
]
"""A tier name, or a call mapping {tier, timeout, retries, circuit_breaker, bulkhead, hedge}."""


class OneOfCall(_Strict):
    one_of: dict[str, Ratio] = Field(min_length=1)

    @field_validator("one_of")
    @classmethod
    def _sums_to_one_at_most(cls, weights: dict[str, float]) -> dict[str, float]:
        total = sum(weights.values())
        if total > 1.0 + 1e-9:
            raise invalid(
                f"the probabilities sum to {total:.6g}; they must sum to at most 1 "
                "(the rest of the requests make no call)"
            )
        return weights


class ParallelCall(_Strict):
    parallel: list[CallSpec] = Field(min_length=1)


def _call_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "<name>"
    if isinstance(value, dict):
        for key in ("one_of", "parallel", "tier"):
            if key in value:
                return f"<{key}>"
    return None


CallSpec = Annotated[
    Annotated[Name, Tag("<name>")]
    | Annotated[TierCall, Tag("<tier>")]
    | Annotated[OneOfCall, Tag("<one_of>")]
    | Annotated[ParallelCall, Tag("<parallel>")],
    Discriminator(
        _call_tag, custom_error_type="capsim_tag_call", custom_error_message="not a valid call"
    ),
]
"""A call: a tier name, {tier, probability, repeat}, {one_of: {...}} or {parallel: [...]}.
`ParallelCall` names it before it is defined: pydantic resolves it from this module when the
validator is first built (deferred, as every model's here), so no rebuild is needed at import."""


# ---- tiers -------------------------------------------------------------------------------------
class ClassWork(_Strict):
    """Per-class overrides of a tier's work."""

    service_time: DistributionSpec | None = None
    calls: list[CallSpec] | None = None


class DatabaseClassWork(ClassWork):
    read_ratio: Ratio | None = None


class LoadBalancerClassWork(_Strict):
    service_time: DistributionSpec | None = None
    calls: list[CallSpec] | None = None


SIZED_QUANTITIES = ("instances", "concurrency", "replicas", "consumers")


ByteSize = Annotated[
    float,
    BeforeValidator(_unit(parse_size, "a size of 0 or more such as 120KB or 2MiB", False)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {
                    "type": "string",
                    "pattern": r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$",
                },
            ],
            "description": "size: bytes, or a number with B, KB, MB, GB (powers of 1000) or "
            "KiB, MiB, GiB (powers of 1024)",
            "examples": [120000, "120KB", "512MiB"],
        }
    ),
]


class ReservedSpec(_Strict):
    """A committed base (docs/cost.md#reserved): `instances` paid at (1 - discount) x the
    on-demand price every hour, running or not; instances above it pay the on-demand (or spot)
    price."""

    instances: Count
    discount: Ratio


class SpotSpec(_Strict):
    """Instances above the reserved base run on spot capacity (docs/cost.md#spot): a `discount`
    on the on-demand price, and interruptions at `interruption_rate` per spot instance (an
    interrupted instance is lost like a fault and replaced after `replace_after`)."""

    discount: Ratio
    interruption_rate: Rate = 0.0
    replace_after: Duration = 120.0


class CostSpec(_Strict):
    """How a tier is billed (docs/cost.md): per instance-hour (database: each primary and replica;
    queue: each consumer) with an optional reserved base and spot above it, per request and per
    GB-second (serverless), per GB of responses sent (a CDN, egress)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=False,
        # At least one price, as `_priced` checks: editors see it in the JSON schema too.
        json_schema_extra={
            "anyOf": [
                {"required": [key]}
                for key in ("per_instance_hour", "per_million_requests", "per_gb_second", "per_gb")
            ]
        },
    )

    per_instance_hour: NonNegativeNumber | None = None
    reserved: ReservedSpec | None = None
    spot: SpotSpec | None = None
    per_million_requests: NonNegativeNumber | None = None
    per_gb_second: NonNegativeNumber | None = None
    memory: ByteSize | None = None
    per_gb: NonNegativeNumber | None = None

    @model_validator(mode="after")
    def _priced(self) -> CostSpec:
        for key in ("reserved", "spot"):
            if getattr(self, key) is not None and self.per_instance_hour is None:
                raise invalid(
                    f"cost.{key} is a discount on the on-demand price; give per_instance_hour too",
                    at=key,
                )
        prices = ("per_instance_hour", "per_million_requests", "per_gb_second", "per_gb")
        if all(getattr(self, key) is None for key in prices):
            raise invalid(
                "cost names no price; give at least one of "
                + ", ".join(prices)
                + " (e.g. cost: {per_instance_hour: 0.192})"
            )
        if self.per_gb_second is not None and not self.memory:
            raise invalid(
                "per_gb_second is billed on the memory of each worker; give memory "
                "(e.g. memory: 512MiB)",
                at="per_gb_second",
            )
        return self


class SizingSpec(_Strict):
    """What `capsim size` may change on a tier, and within which bounds."""

    of: (
        Annotated[
            Literal["instances", "concurrency", "replicas", "consumers"],
            BeforeValidator(_choice(SIZED_QUANTITIES, "sized quantity")),
        ]
        | None
    ) = None
    min: Count = 1
    max: Count = 1000

    @model_validator(mode="after")
    def _ordered(self) -> SizingSpec:
        if self.min > self.max:
            raise invalid(f"min ({self.min}) is greater than max ({self.max})", at="max")
        return self


def _fixed(value: Any) -> str:
    if value != "fixed":
        hint = suggest(value, ["fixed"]) if isinstance(value, str) else ""
        raise invalid(
            f"expected fixed or a mapping such as {{min: 2, max: 200}}, got {kind_of(value)}{hint}"
        )
    return "fixed"


SizingSetting = Annotated[
    Annotated[
        Annotated[Literal["fixed"], BeforeValidator(_fixed)],
        Tag("<fixed>"),
    ]
    | Annotated[SizingSpec, Tag("<range>")],
    Discriminator(lambda v: "<range>" if isinstance(v, dict) else "<fixed>"),
]
"""`fixed` (capsim size leaves the tier alone) or {of, min, max}."""

_SIZABLE = {
    "service": ("instances", "concurrency"),
    "load_balancer": ("instances", "concurrency"),
    "cache": ("instances", "concurrency"),
    "cdn": ("instances", "concurrency"),
    "database": ("instances", "concurrency", "replicas"),
    "queue": ("consumers", "concurrency"),
}


def _check_sizing(kind: str, sizing: SizingSpec | str | None) -> None:
    if not isinstance(sizing, SizingSpec) or sizing.of is None:
        return
    valid = _SIZABLE[kind]
    if sizing.of not in valid:
        raise invalid(
            f"a {kind} tier cannot be sized by {sizing.of}; "
            f"sizing.of is one of: {', '.join(valid)}",
            at="sizing.of",
        )


class HealthCheckSpec(_Strict):
    """How balancing finds out that an instance died, or came back (docs/dynamic.md#faults)."""

    interval: PositiveDuration = 5.0
    unhealthy_after: Count = 3
    healthy_after: Count = 1


def _zones(value: Any) -> Any:
    if isinstance(value, list):
        seen: set[Any] = set()
        for i, zone in enumerate(value):
            if not isinstance(zone, (str, int, float, bool)):
                continue  # not a zone name: the type check says so
            if zone in seen:
                raise invalid(f"zone {show(zone)} is listed twice; list each zone once", at=str(i))
            seen.add(zone)
    return value


AUTOSCALE_METRICS = ("utilization", "occupancy", "in_flight", "queue_length", "rate")


def _share(value: Any) -> float:
    """A positive share with no upper bound: 1.5 or 150%."""
    expected = "a share greater than 0 such as 100% or 2"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise invalid(
                f"{show(value)} is not a percentage; {FIELD} must be {expected}"
            ) from None
    return _plain(0.0, True, expected)(value)


class AutoscaleSpec(_Strict):
    """Horizontal autoscaling modelled on the Kubernetes HPA (docs/dynamic.md#autoscaling)."""

    metric: Annotated[
        Literal["utilization", "occupancy", "in_flight", "queue_length", "rate"],
        BeforeValidator(_choice(AUTOSCALE_METRICS, "metric")),
    ] = "utilization"
    target: Annotated[
        float,
        BeforeValidator(lambda value: value),
        WithJsonSchema(
            {
                "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
                "description": "the metric's target per ready instance: a ratio such as 60% "
                "(utilization, occupancy), a number of requests at the instance (in_flight), a "
                "number of waiting requests (queue_length), or a rate such as 100/s (rate)",
            }
        ),
    ] = 0.6
    min: NonNegativeInt = 1
    max: Count | None = None
    sync_period: PositiveDuration = 15.0
    scale_up_stabilization: Duration = 0.0
    scale_down_stabilization: Duration = 300.0
    tolerance: Ratio = 0.1
    max_scale_up: Annotated[
        float,
        BeforeValidator(_share),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "pattern": r"^\s*\d+(\.\d*)?\s*%\s*$"},
                ],
                "description": "instances added per sync at most, as a share of the current "
                "count such as 100% (or max_scale_up_instances, whichever is more)",
            }
        ),
    ] = 1.0
    max_scale_up_instances: Count = 4
    scale_up_period: PositiveDuration | None = Field(
        default=None,
        description="the period of the scale-up policies (the HPA's behavior.scaleUp.policies "
        "periodSeconds): over any such period at most max_scale_up or max_scale_up_instances "
        "are added, counted from the count at the period's start (default: one sync_period)",
    )
    scale_up_select: Literal["max", "min"] = Field(
        default="max",
        description="which scale-up policy applies (the HPA's selectPolicy): max, the one "
        "allowing more instances (the HPA's default), or min, the stricter one",
    )
    startup_time: Duration = 90.0
    cooldown: Duration = 0.0
    # Serverless tiers (docs/dynamic.md#serverless-tiers): instances follow the requests.
    scale_to_zero: bool = False
    cold_start: Duration = 0.0
    keep_warm: Duration = 300.0
    max_instances: Count | None = None

    @model_validator(mode="before")
    @classmethod
    def _target_in_its_unit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "target" not in data:
            return data
        metric = data.get("metric", "utilization")
        value = data["target"]
        if metric in ("utilization", "occupancy"):
            parse = _unit(parse_ratio, "a ratio greater than 0 such as 60%", True)
        elif metric == "rate":
            parse = _unit(parse_rate, "a rate greater than 0 such as 100/s", True)
        elif metric == "queue_length":
            parse = _plain(0.0, True, "a number of waiting requests greater than 0 such as 5")
        elif metric == "in_flight":
            parse = _plain(
                0.0, True, "a number of requests in flight per instance greater than 0 such as 10"
            )
        else:
            return data
        try:
            target = parse(value)
        except PydanticCustomError as error:
            message = str(error.context["message"] if error.context else error).replace(
                FIELD, "target"
            )
            raise invalid(message, at="target") from None
        return {**data, "target": target}

    @model_validator(mode="after")
    def _ordered(self) -> AutoscaleSpec:
        given = self.model_fields_set
        if self.max is not None and self.max_instances is not None:
            raise invalid(
                "max and max_instances say the same thing; give one of them", at="max_instances"
            )
        top = self.max if self.max is not None else self.max_instances
        if top is None:
            raise invalid(
                "autoscale needs max: (the most instances it may run, e.g. max: 20)"
                + (" or max_instances:" if self.scale_to_zero else ""),
                at="max",
            )
        self.max = top
        if self.min > top:
            at = "max" if "max" in given else "max_instances"
            raise invalid(f"min ({self.min}) is greater than {at} ({top})", at=at)
        if not self.scale_to_zero:
            if self.min == 0:
                raise invalid(
                    "min: 0 needs scale_to_zero: true (a serverless tier); "
                    "an HPA keeps at least 1 instance",
                    at="min",
                )
            for key in ("cold_start", "keep_warm", "max_instances"):
                if key in given:
                    raise invalid(
                        f"{key} is a serverless key; add scale_to_zero: true "
                        "(docs/dynamic.md#serverless-tiers)",
                        at=key,
                    )
            return self
        for key in SERVERLESS_IGNORES:
            if key in given:
                raise invalid(
                    f"{key} is an HPA key, and a tier with scale_to_zero: true scales per "
                    "request, not by a metric; remove it (docs/dynamic.md#serverless-tiers)",
                    at=key,
                )
        return self


#: HPA keys that mean nothing to a serverless tier, which scales per request.
SERVERLESS_IGNORES = (
    "metric",
    "target",
    "sync_period",
    "scale_up_stabilization",
    "scale_down_stabilization",
    "tolerance",
    "max_scale_up",
    "max_scale_up_instances",
    "scale_up_period",
    "scale_up_select",
    "startup_time",
    "cooldown",
)


class RateLimitSpec(_Strict):
    """A token bucket: `rate` requests a second on average, bursts of up to `burst`."""

    rate: PositiveRate
    burst: Count = 1


def _regions(value: Any) -> Any:
    """`regions: [eu, us]` is `regions: {eu: {}, us: {}}`; a region listed twice is refused."""
    if not isinstance(value, list):
        return value
    seen: dict[Any, dict[str, Any]] = {}
    for i, region in enumerate(value):
        if not isinstance(region, str):
            raise invalid(f"expected a region name, got {kind_of(region)}", at=str(i))
        if region in seen:
            raise invalid(
                f"region {show(region)} is listed twice; list each region once", at=str(i)
            )
        seen[region] = {}
    return seen


class RegionalTierSpec(_Strict):
    """What differs in one region's copy of a tier (docs/regions.md)."""

    instances: Count | None = Field(
        default=None, description="this copy's instances (default: the tier's)"
    )


class RegionalQueueSpec(_Strict):
    """A queue's copy in one region: as the queue is written."""


def _check_primary(regions: dict[str, Any] | None, primary: str | None) -> None:
    """A tier's primary region is one of the regions it is placed in."""
    if primary is None or regions is None or primary in regions:
        return
    names = list(regions)
    raise invalid(
        f"primary {primary!r} is not one of this tier's regions ({', '.join(names)})"
        f"{suggest(primary, names)}; add it to regions: or name one of them",
        at="primary",
    )


class AffinitySpec(_Strict):
    """Requests of one client always go to one instance (docs/regions.md#affinity)."""

    by: Annotated[
        Literal["ip_hash", "session"],
        BeforeValidator(_choice(("ip_hash", "session"), "affinity")),
    ]
    clients: Count = Field(description="clients (IP addresses, sessions) sending the requests")
    zipf: NonNegativeNumber = Field(
        default=1.0, description="popularity: client k sends a share proportional to k^-zipf"
    )


MAX_SHARD_KEYS = 10_000_000  # keys are hashed one by one when the model is built


def _shard_keys(value: Any) -> int:
    expected = f"a whole number of keys from 1 to {MAX_SHARD_KEYS:,}"
    keys = _whole(1, expected)(value)
    if keys > MAX_SHARD_KEYS:
        raise invalid(f"{show(value)} is too many; {FIELD} must be {expected}")
    return keys


class ShardsSpec(_Strict):
    """A database split into shards by key, keys of Zipf popularity (docs/regions.md#shards)."""

    count: Count = Field(description="shards, each a copy of the database's instances")
    keys: Annotated[
        int,
        BeforeValidator(_shard_keys),
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_SHARD_KEYS}),
    ] = 1_000_000
    zipf: NonNegativeNumber = Field(
        default=1.0, description="popularity: key k is asked for in proportion to k^-zipf"
    )


QueueDiscipline = Annotated[
    Literal["fifo", "lifo"], BeforeValidator(_choice(("fifo", "lifo"), "queue_discipline"))
]


class _TierBase(_Strict):
    instances: Count = 1
    concurrency: Count = 1
    blocking: bool | None = Field(
        default=None,
        description="a worker stays held while its calls are outstanding (thread-per-request); "
        "default true for a service, false for every other tier type",
    )
    balancing: Balancing = "round_robin"
    max_queue: NonNegativeInt | None = None
    timeout: PositiveDuration | None = None
    cost: CostSpec | None = None
    sizing: SizingSetting | None = None
    zones: Annotated[list[Name], BeforeValidator(_zones), Field(min_length=1)] | None = None
    health_check: HealthCheckSpec | None = None
    autoscale: AutoscaleSpec | None = None
    rate_limit: RateLimitSpec | None = None
    queue_discipline: QueueDiscipline = "fifo"
    drop_abandoned: bool = False
    priorities: list[Name] | None = Field(default=None, min_length=1)
    regions: (
        Annotated[dict[Name, RegionalTierSpec], BeforeValidator(_regions), Field(min_length=1)]
        | None
    ) = Field(
        default=None,
        description="the regions this tier runs in, one copy each (default: every region): a "
        "list [eu, us], or a mapping with each copy's instances {eu: {instances: 6}, us: {}}; "
        "docs/regions.md",
    )
    primary: Name | None = Field(
        default=None,
        description="the region of the copy that takes writes (calls with write: true)",
    )
    affinity: AffinitySpec | None = None

    @model_validator(mode="after")
    def _sizable(self) -> _TierBase:
        _check_sizing(str(getattr(self, "type", "service")), self.sizing)
        _check_primary(self.regions, self.primary)
        return self


class ServiceTier(_TierBase):
    type: Literal["service"] = "service"
    service_time: DistributionSpec
    calls: list[CallSpec] = Field(default_factory=list)
    classes: dict[str, ClassWork] = Field(default_factory=dict)


class LoadBalancerTier(_TierBase):
    type: Literal["load_balancer"]
    service_time: DistributionSpec = 0.0
    backends: Forward
    algorithm: Balancing = "round_robin"
    calls: list[CallSpec] = Field(
        default_factory=list,
        description="the balancer's own calls (an auth check, an access log), made after its "
        "backend answers; calls every tier accepts (SPEC.md)",
    )
    classes: dict[str, LoadBalancerClassWork] = Field(default_factory=dict)


class OriginShield(_Strict):
    """A second cache layer between a CDN's edge and its origin (`on_miss`)."""

    hit_ratio: HitRatioSpec
    service_time: DistributionSpec | None = None


class CacheTier(_TierBase):
    type: Literal["cache"]
    service_time: DistributionSpec = 0.001
    hit_ratio: HitRatioSpec
    on_miss: Forward | None = None
    calls: list[CallSpec] = Field(default_factory=list)
    classes: dict[str, ClassWork] = Field(default_factory=dict)
    shards: ShardsSpec | None = Field(
        default=None,
        description="a consistent-hash cluster of `count` nodes; a lost node's keys miss and "
        "go to on_miss (docs/regions.md#a-consistent-hash-cache-cluster)",
    )


class CdnTier(_TierBase):
    type: Literal["cdn"]
    service_time: DistributionSpec = 0.005
    hit_ratio: HitRatioSpec
    on_miss: Forward | None = None
    origin_shield: OriginShield | None = None
    edges: Count = 1  # edge locations, each with its own cache (docs/dynamic.md#cdn-edge-locations)
    calls: list[CallSpec] = Field(default_factory=list)
    classes: dict[str, ClassWork] = Field(default_factory=dict)


class PoolSpec(_Strict):
    size: Count
    max_waiting: NonNegativeInt | None = None
    timeout: PositiveDuration | None = None


class DatabaseTier(_TierBase):
    type: Literal["database"]
    service_time: DistributionSpec
    replicas: NonNegativeInt = 0
    read_ratio: Ratio = 1.0
    pool: PoolSpec | None = None
    calls: list[CallSpec] = Field(default_factory=list)
    classes: dict[str, DatabaseClassWork] = Field(default_factory=dict)
    shards: ShardsSpec | None = None


class BatchSpec(_Strict):
    """A consumer takes up to `size` messages at once, a batch's first message waiting at most
    `linger` for it to fill (docs/dynamic.md#batching-consumers-and-partitions)."""

    size: Count
    linger: Duration = 0.0


QUEUE_SCALING_METRICS = ("backlog", "lag")


def _queue_metric(value: Any) -> str:
    if isinstance(value, str) and value in AUTOSCALE_METRICS:
        raise invalid(
            f"{value} is a metric of an HPA on instances; a queue's autoscale scales its "
            "consumers on its messages (KEDA): metric must be backlog (messages waiting) or lag "
            "(messages waiting or being consumed)"
        )
    return _choice(QUEUE_SCALING_METRICS, "metric")(value)


class QueueAutoscaleSpec(_Strict):
    """KEDA-style scaling of a queue's consumers on its backlog
    (docs/dynamic.md#scaling-queue-consumers-on-backlog-keda)."""

    metric: Annotated[Literal["backlog", "lag"], BeforeValidator(_queue_metric)] = "backlog"
    target: PositiveNumber = Field(
        description="messages per consumer: desired consumers = ceil(metric / target)"
    )
    min: NonNegativeInt = 0
    max: Count = 100
    polling_interval: PositiveDuration = 30.0
    cooldown_period: Duration = 300.0
    activation_threshold: NonNegativeNumber = Field(
        default=0.0,
        description="KEDA's activationThreshold: the scaler is active while the metric is above "
        "it; from 0 consumers a poll starts one only then, and with min 0 the consumers go to "
        "0 after cooldown_period without an active poll (default 0: any message)",
    )
    max_scale_up: Annotated[
        float | None,
        BeforeValidator(lambda value: None if value is None else _share(value)),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "pattern": r"^\s*\d+(\.\d*)?\s*%\s*$"},
                ],
                "description": "the HPA's Percent scale-up policy: consumers added per "
                "scale_up_period at most, as a share of the count at its start such as 100% "
                "(default: no limit)",
            }
        ),
    ] = None
    max_scale_up_instances: Count | None = Field(
        default=None,
        description="the HPA's Pods scale-up policy: consumers added per scale_up_period at "
        "most (default: no limit)",
    )
    scale_up_period: PositiveDuration = Field(
        default=15.0,
        description="the period of the scale-up policies (periodSeconds)",
    )
    scale_up_select: Literal["max", "min"] = Field(
        default="max",
        description="with both policies, which applies (selectPolicy): max or min",
    )
    tolerance: Ratio = 0.1
    scale_down_stabilization: Duration = 300.0
    startup_time: Duration = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> QueueAutoscaleSpec:
        if self.min > self.max:
            raise invalid(f"min ({self.min}) is greater than max ({self.max})", at="max")
        return self


class QueueTier(_Strict):
    """An asynchronous queue: one FIFO of messages served by `consumers` x `concurrency` workers."""

    type: Literal["queue"]
    service_time: DistributionSpec
    consumers: Count = 1
    instances: Count | None = Field(
        default=None,
        description="a queue's instances are its consumers: the same as consumers (give one)",
    )
    concurrency: Count = 1
    publish_time: DistributionSpec = 0.0
    max_depth: NonNegativeInt | None = None
    max_queue: NonNegativeInt | None = Field(
        default=None,
        description="the messages allowed to wait: the same as max_depth (give one)",
    )
    balancing: Balancing = Field(
        default="round_robin",
        description="accepted as on every tier; a queue's consumers all take from one FIFO "
        "(per partition), so no balancing applies",
    )
    timeout: PositiveDuration | None = None
    blocking: bool | None = Field(
        default=None,
        description="a consumer stays held until its message's calls answer (default true); "
        "false: it is freed after its own work (an async consumer)",
    )
    calls: list[CallSpec] = Field(default_factory=list)
    classes: dict[str, ClassWork] = Field(default_factory=dict)
    cost: CostSpec | None = None
    sizing: SizingSetting | None = None
    rate_limit: RateLimitSpec | None = None
    queue_discipline: QueueDiscipline = "fifo"
    priorities: list[Name] | None = Field(default=None, min_length=1)
    max_retries: NonNegativeInt = 0
    batch: BatchSpec | None = None
    partitions: Count | None = None
    autoscale: QueueAutoscaleSpec | None = None
    regions: (
        Annotated[dict[Name, RegionalQueueSpec], BeforeValidator(_regions), Field(min_length=1)]
        | None
    ) = Field(
        default=None,
        description="the regions this queue runs in, one copy each (default: every region); "
        "docs/regions.md",
    )
    primary: Name | None = Field(
        default=None,
        description="the region of the copy that takes writes (calls with write: true)",
    )

    @model_validator(mode="after")
    def _sizable(self) -> QueueTier:
        self._take_aliases()
        _check_sizing("queue", self.sizing)
        self._check_autoscale()
        _check_primary(self.regions, self.primary)
        if self.batch is not None or self.partitions is not None:
            key = "batch" if self.batch is not None else "partitions"
            if self.priorities:
                raise invalid(
                    f"{key} and priorities do not go together: a batch or a partition is "
                    "consumed in publish order; remove priorities",
                    at="priorities",
                )
            if self.queue_discipline != "fifo":
                raise invalid(
                    f"{key} needs queue_discipline: fifo: a batch or a partition is consumed "
                    "in publish order",
                    at="queue_discipline",
                )
        return self

    def _take_aliases(self) -> None:
        """`instances` and `max_queue`, the keys SPEC.md says every tier accepts, are a queue's
        `consumers` and `max_depth`: either name, not two different values."""
        for alias, key in (("instances", "consumers"), ("max_queue", "max_depth")):
            value = getattr(self, alias)
            if value is None:
                continue
            if key in self.model_fields_set and getattr(self, key) != value:
                raise invalid(
                    f"{alias} ({value}) and {key} ({getattr(self, key)}) are the same setting "
                    f"for a queue (its {alias} are its {key}); give one of them",
                    at=alias,
                )
            setattr(self, key, value)
            self.model_fields_set.add(key)
        if isinstance(self.sizing, SizingSpec) and self.sizing.of == "instances":
            self.sizing.of = "consumers"

    def _check_autoscale(self) -> None:
        scaler = self.autoscale
        if scaler is None:
            return
        for key in ("batch", "partitions"):
            if getattr(self, key) is not None:
                raise invalid(
                    f"autoscale and {key} do not go together yet: capsim scales consumers that "
                    f"take one message at a time from one line; remove {key} or autoscale",
                    at="autoscale",
                )
        if "consumers" in self.model_fields_set and not (
            scaler.min <= self.consumers <= scaler.max
        ):
            key = "consumers" if self.instances is None else "instances"
            raise invalid(
                f"{key} ({self.consumers}) is outside autoscale's range "
                f"{scaler.min}..{scaler.max}; start inside it, or leave {key} out to start "
                f"at min ({scaler.min})",
                at=key,
            )


def _tier_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type", "service")
    return f"<{kind}>" if isinstance(kind, str) and kind in TIER_TYPES else None


TierSpec = Annotated[
    Annotated[ServiceTier, Tag("<service>")]
    | Annotated[LoadBalancerTier, Tag("<load_balancer>")]
    | Annotated[CacheTier, Tag("<cache>")]
    | Annotated[CdnTier, Tag("<cdn>")]
    | Annotated[DatabaseTier, Tag("<database>")]
    | Annotated[QueueTier, Tag("<queue>")],
    Discriminator(
        _tier_tag, custom_error_type="capsim_tag_tier", custom_error_message="not a valid tier"
    ),
]
AnyTier = ServiceTier | LoadBalancerTier | CacheTier | CdnTier | DatabaseTier | QueueTier


# ---- traffic -----------------------------------------------------------------------------------
class ProfilePointSpec(_Strict):
    at: Duration
    rate: Rate


def _traffic_file(
    read: Callable[[str, str], Any], name: str, info: ValidationInfo, what: str, at: str
) -> Any:
    """`read` applied to a traffic file's text; problems are reported at key `at`."""
    try:
        text = read_scenario_file(name, info, what)
    except PydanticCustomError as error:
        raise invalid(str((error.context or {})["message"]), at=at) from None
    try:
        return read(text, name)
    except TrafficFileError as error:
        raise invalid(str(error), at=at) from None


class ProfileFileSpec(_Strict):
    """A rate profile read from a file of `at,rate` lines next to the scenario."""

    file: Text
    _points: tuple[tuple[float, float], ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _read(self, info: ValidationInfo) -> ProfileFileSpec:
        points = _traffic_file(read_rate_series, self.file, info, "rate-series file", "file")
        self._points = tuple(points)
        return self

    @property
    def points(self) -> tuple[tuple[float, float], ...]:
        return self._points


def _profile_tag(value: Any) -> str | None:
    if isinstance(value, list):
        return "<points>"
    if isinstance(value, dict) and "file" in value:
        return "<file>"
    return None


ProfileSpec = Annotated[
    Annotated[list[ProfilePointSpec], Tag("<points>"), Field(min_length=1)]
    | Annotated[ProfileFileSpec, Tag("<file>")],
    Discriminator(
        _profile_tag,
        custom_error_type="capsim_tag_profile",
        custom_error_message="not a valid profile",
    ),
]
"""A rate profile: a list of {at, rate} points, or {file: rates.csv}."""


def _speedup(value: Any) -> float:
    number = _plain(0.0, True, "a speedup such as 2 (twice as fast)")(value)
    if not 1e-6 <= number <= 1e6:
        raise invalid(f"expected a speedup from 0.000001 to 1000000 such as 2, got {show(value)}")
    return number


Speedup = Annotated[
    float,
    BeforeValidator(_speedup),
    WithJsonSchema({"type": "number", "minimum": 1e-6, "maximum": 1e6}),
]


class TraceArrivalsSpec(_Strict):
    """Request timestamps replayed from a file next to the scenario."""

    trace: Text
    column: Text | None = None
    speedup: Speedup = 1.0
    loop: bool = False
    _times: tuple[float, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _read(self, info: ValidationInfo) -> TraceArrivalsSpec:
        def read(text: str, name: str) -> list[float]:
            return read_timestamps(text, name, self.column)

        times = _traffic_file(read, self.trace, info, "trace file", "trace")
        if self.loop and (len(times) < 2 or times[-1] / self.speedup <= 0.0):
            raise invalid(
                f"loop: true needs a trace that spans some time; {show(self.trace)} holds "
                f"{len(times)} timestamp(s) all at one instant (after speedup)",
                at="loop",
            )
        self._times = tuple(times)
        return self

    @property
    def times(self) -> tuple[float, ...]:
        """Seconds from the trace's first timestamp, in order, before `speedup`."""
        return self._times


#: Why a rate profile cannot shape each arrival process (the message says what to do instead).
_PROFILE_CLASH = {
    "trace": "a trace's timestamps are its rate over time; remove profile:, or replay another "
    "window of the trace (speedup: scales its rate)",
    "mmpp": "an MMPP's rate over time is its states' rates and sojourns; remove profile:, or "
    "use poisson arrivals with the profile for a planned change of rate",
    "batch": "batches arrive as a Poisson process at the constant rate: of batches (the exact "
    "batch-Poisson formulas assume it); remove profile:, or split the class into one class per "
    "period of constant rate",
}


class MmppSpec(_Strict):
    """A two-state Markov-modulated Poisson process: Poisson at rates[i] while in state i,
    which lasts an exponential time of mean mean_sojourn[i]."""

    rates: list[Rate]
    mean_sojourn: list[PositiveDuration]

    @model_validator(mode="after")
    def _two_states(self) -> MmppSpec:
        for key, values in (("rates", self.rates), ("mean_sojourn", self.mean_sojourn)):
            if len(values) != 2:
                raise invalid(
                    f"an MMPP has two states, so {key} needs exactly two values "
                    f"(e.g. rates: [50/s, 400/s], mean_sojourn: [20s, 5s]); got {len(values)}",
                    at=key,
                )
        if max(self.rates) <= 0.0:
            raise invalid("at least one of the MMPP's rates must be above 0", at="rates")
        return self


class MmppArrivalsSpec(_Strict):
    mmpp: MmppSpec


#: The largest batch size (or mean batch size) a scenario may ask for: a batch is held at once.
MAX_BATCH_SIZE = 100_000


def _at_least_one(value: Any) -> float:
    number = _plain(0.0, True, "a mean batch size of 1 or more such as 4")(value)
    if not 1.0 <= number <= MAX_BATCH_SIZE:
        raise invalid(
            f"expected a mean batch size from 1 to {MAX_BATCH_SIZE:,} such as 4, got {show(value)}"
        )
    return number


def _batch_size(value: Any) -> int:
    number = _whole(1, "a batch size: a positive integer such as 4")(value)
    if number > MAX_BATCH_SIZE:
        raise invalid(
            f"a batch of {number:,} requests is more than capsim holds at one instant "
            f"({MAX_BATCH_SIZE:,}); split it into smaller batches at a higher rate"
        )
    return number


BatchSize = Annotated[
    int,
    BeforeValidator(_batch_size),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_BATCH_SIZE}),
]


class GeometricSize(_Strict):
    """Sizes 1, 2, 3, ... with P(k) = p (1 - p)^(k - 1), p = 1 / mean."""

    dist: Literal["geometric"]
    mean: Annotated[
        float,
        BeforeValidator(_at_least_one),
        WithJsonSchema({"type": "number", "minimum": 1, "maximum": MAX_BATCH_SIZE}),
    ]


class ConstantSize(_Strict):
    dist: Literal["constant"]
    value: BatchSize


class EmpiricalSize(_Strict):
    """Each batch's size drawn from these sizes, equally likely (repeat one to weight it)."""

    dist: Literal["empirical"]
    samples: list[BatchSize] = Field(min_length=1)


BATCH_SIZES = ("constant", "geometric", "empirical")


def _size_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "<value>"
    kind = value.get("dist")
    return f"<{kind}>" if isinstance(kind, str) and kind in BATCH_SIZES else None


BatchSizeSpec = Annotated[
    Annotated[BatchSize, Tag("<value>")]
    | Annotated[ConstantSize, Tag("<constant>")]
    | Annotated[GeometricSize, Tag("<geometric>")]
    | Annotated[EmpiricalSize, Tag("<empirical>")],
    Discriminator(
        _size_tag, custom_error_type="capsim_tag_size", custom_error_message="not a valid size"
    ),
]
"""A batch size: a positive integer (constant) or a mapping with `dist:` over 1, 2, 3, ..."""


class ArrivalBatchSpec(_Strict):
    size: BatchSizeSpec


class BatchArrivalsSpec(_Strict):
    """Batches at Poisson epochs (`rate:` is the rate of batches), all of a batch at one instant."""

    batch: ArrivalBatchSpec


ARRIVAL_KINDS = ("poisson", "constant")
ARRIVAL_PROCESSES = ("trace", "mmpp", "batch")


def _arrivals_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "<name>"
    if isinstance(value, dict):
        for key in ARRIVAL_PROCESSES:
            if key in value:
                return f"<{key}>"
    return None


ArrivalsSpec = Annotated[
    Annotated[
        Literal["poisson", "constant"],
        BeforeValidator(_choice(ARRIVAL_KINDS, "arrivals")),
        Tag("<name>"),
    ]
    | Annotated[TraceArrivalsSpec, Tag("<trace>")]
    | Annotated[MmppArrivalsSpec, Tag("<mmpp>")]
    | Annotated[BatchArrivalsSpec, Tag("<batch>")],
    Discriminator(
        _arrivals_tag,
        custom_error_type="capsim_tag_arrivals",
        custom_error_message="not a valid arrival process",
    ),
]
"""How an open class's requests arrive: poisson, constant, {trace: file}, {mmpp: ...}, {batch: ...}."""


_RATIO = _unit(parse_ratio, "a share such as 70%", False)


def _entry(value: Any) -> str | dict[str, float]:
    """`entry: app`, or `entry: {akamai: 70%, fastly: 30%}`: a split between entry tiers."""
    if not isinstance(value, dict):
        return _name(value)
    if not value:
        raise invalid("entry must not be empty; name a tier, or split: {cdn-a: 70%, cdn-b: 30%}")
    shares = {}
    for key, share in value.items():
        shares[_name(key)] = _RATIO(share)
    total = sum(shares.values())
    if abs(total - 1.0) > 1e-6:
        raise invalid(
            f"the entry's shares add up to {total * 100:.6g}%; they must add up to 100% "
            "(every request enters one of them)"
        )
    return shares


EntrySpec = Annotated[
    str | dict[str, float],
    BeforeValidator(_entry),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[\w][\w\-]*$"},
                {"type": "object", "additionalProperties": _RATIO_SCHEMA, "minProperties": 1},
            ],
            "description": "the tier a request enters first, or a split between tiers by "
            "share (multi-CDN: {cdn-a: 70%, cdn-b: 30%}, docs/regions.md)",
        }
    ),
]


class TrafficSpec(_Strict):
    """A request class: open (`rate`, optional `profile`) or closed (`users` with `think_time`)."""

    entry: EntrySpec
    rate: PositiveRate | None = None
    arrivals: ArrivalsSpec = "poisson"
    profile: ProfileSpec | None = None
    users: Count | None = None
    think_time: DistributionSpec | None = None
    response_size: ByteSize | None = None  # bytes of each answer (docs/cost.md#per-gb)
    region: Name | None = Field(
        default=None,
        description="all of this class's clients are in this region (default: the regions' "
        "shares); docs/regions.md",
    )

    @property
    def entry_shares(self) -> dict[str, float]:
        """The entry tiers and the share of requests each gets ({entry: 1.0} for one)."""
        return dict(self.entry) if isinstance(self.entry, dict) else {self.entry: 1.0}

    @property
    def first_entry(self) -> str:
        """The entry tier, or the first of a split (docs/regions.md#multi-cdn)."""
        return next(iter(self.entry_shares))

    @property
    def arrival_kind(self) -> str:
        """poisson, constant, trace, mmpp or batch."""
        if isinstance(self.arrivals, TraceArrivalsSpec):
            return "trace"
        if isinstance(self.arrivals, MmppArrivalsSpec):
            return "mmpp"
        if isinstance(self.arrivals, BatchArrivalsSpec):
            return "batch"
        return self.arrivals

    @property
    def profile_points(self) -> list[tuple[float, float]]:
        """The profile as (at, rate) pairs, whether written or read from a file."""
        if self.profile is None:
            return []
        if isinstance(self.profile, ProfileFileSpec):
            return list(self.profile.points)
        return [(p.at, p.rate) for p in self.profile]

    @model_validator(mode="after")
    def _one_workload(self) -> TrafficSpec:
        kind = self.arrival_kind
        is_open = self.rate is not None or self.profile is not None or kind in ARRIVAL_PROCESSES
        is_closed = self.users is not None
        if is_open and is_closed:
            opened_by = self._open_keys(kind)
            raise invalid(
                f"a class has either {opened_by} (open workload) or users (closed workload), "
                "not both; remove one of them",
                at="users",
            )
        if not is_open and not is_closed:
            raise invalid("a class needs rate: (e.g. rate: 800/s) or users: with think_time:")
        if is_closed and self.think_time is None:
            raise invalid("users needs think_time: (e.g. think_time: 2s)", at="users")
        if not is_closed and self.think_time is not None:
            raise invalid(
                "think_time is for closed classes (with users:); remove it", at="think_time"
            )
        if is_closed and "arrivals" in self.model_fields_set:
            raise invalid("arrivals is for open classes (with rate:); remove it", at="arrivals")
        self._check_process(kind)
        if isinstance(self.profile, list):
            for i, (a, b) in enumerate(zip(self.profile, self.profile[1:], strict=False)):
                if b.at < a.at:
                    raise invalid(
                        f"profile points must be in order of `at`: {b.at:g}s comes after {a.at:g}s",
                        at=f"profile.{i + 1}.at",
                    )
        return self

    def _open_keys(self, kind: str) -> str:
        """The keys that make this class open, as written (`rate`, `profile`, `arrivals`)."""
        keys = [
            key
            for key, present in (
                ("rate", self.rate is not None),
                ("profile", self.profile is not None),
                ("arrivals", kind in ARRIVAL_PROCESSES),
            )
            if present
        ]
        return " and ".join(keys)

    def _check_process(self, kind: str) -> None:
        if kind in ("trace", "mmpp") and self.rate is not None:
            source = "its trace's timestamps" if kind == "trace" else "the MMPP's rates"
            raise invalid(
                f"a class with {kind} arrivals takes its rate from {source}; remove rate:",
                at="rate",
            )
        if kind in ARRIVAL_PROCESSES and self.profile is not None:
            raise invalid(
                f"profile: shapes poisson or constant arrivals only, not {kind} arrivals: "
                + _PROFILE_CLASH[kind],
                at="profile",
            )
        if kind == "batch" and self.rate is None:
            raise invalid(
                "batch arrivals need rate: (the rate of batches, e.g. rate: 50/s)", at="arrivals"
            )


# ---- SLOs --------------------------------------------------------------------------------------
#: Statistics of a tier's time waiting for a worker, as SLO keys (`wait_p99: 2s`).
WAIT_STATISTICS = tuple(f"wait_{s}" for s in LATENCY_STATISTICS)
#: Statistics of a queue's message age (enqueue to done), as SLO keys (`age_p99: 5s`).
AGE_STATISTICS = tuple(f"age_{s}" for s in LATENCY_STATISTICS)
#: What an SLO on a class may bound.
CLASS_SLO_STATISTICS = (*LATENCY_STATISTICS, "error_rate", "share_over")
#: What an SLO on a tier may bound; the queue-only ones are in QUEUE_SLO_STATISTICS.
TIER_SLO_STATISTICS = ("utilization", "occupancy", *WAIT_STATISTICS, *AGE_STATISTICS, "backlog")
QUEUE_SLO_STATISTICS = (*AGE_STATISTICS, "backlog")
SLO_STATISTICS = (*CLASS_SLO_STATISTICS, *TIER_SLO_STATISTICS)


class ShareOverSpec(_Strict):
    """`share_over: {limit: 1s, max: 1%}`: at most `max` of the requests slower than `limit`."""

    limit: PositiveDuration
    max: Ratio

    @model_validator(mode="before")
    @classmethod
    def _both_keys(cls, value: Any) -> Any:
        form = "share_over: {limit: 300ms, max: 1%} (at most 1% of requests slower than 300ms)"
        if not isinstance(value, dict):
            raise invalid(f"expected a mapping, got {kind_of(value)}; write {form}")
        missing = [key for key in ("limit", "max") if key not in value]
        if missing and not set(value) - {"limit", "max"}:
            raise invalid(f"missing {' and '.join(missing)}; write {form}")
        return value


#: A backlog limit counts messages, so it is a whole number (1.5 messages cannot be queued).
Backlog = Annotated[
    int,
    BeforeValidator(_whole(0, "a whole number of messages of 0 or more such as 1000")),
    WithJsonSchema({"type": "integer", "minimum": 0}),
]


class SloSpec(_Strict):
    """One objective: statistics of a class (latency, error_rate, share_over) or of a tier
    (utilization, occupancy, wait, and for queues message age and backlog)."""

    class_: Name | None = Field(default=None, alias="class")
    tier: Text | None = None  # may name a synthetic tier such as ``cdn.origin_shield``
    mean: PositiveDuration | None = None
    p50: PositiveDuration | None = None
    p90: PositiveDuration | None = None
    p95: PositiveDuration | None = None
    p99: PositiveDuration | None = None
    p999: PositiveDuration | None = None
    max: PositiveDuration | None = None
    error_rate: Ratio | None = None
    share_over: ShareOverSpec | None = None
    utilization: Ratio | None = None
    occupancy: Ratio | None = None
    wait_mean: PositiveDuration | None = None
    wait_p50: PositiveDuration | None = None
    wait_p90: PositiveDuration | None = None
    wait_p95: PositiveDuration | None = None
    wait_p99: PositiveDuration | None = None
    wait_p999: PositiveDuration | None = None
    wait_max: PositiveDuration | None = None
    age_mean: PositiveDuration | None = None
    age_p50: PositiveDuration | None = None
    age_p90: PositiveDuration | None = None
    age_p95: PositiveDuration | None = None
    age_p99: PositiveDuration | None = None
    age_p999: PositiveDuration | None = None
    age_max: PositiveDuration | None = None
    backlog: Backlog | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> SloSpec:
        if (self.class_ is None) == (self.tier is None):
            raise invalid("an SLO names exactly one of class: or tier:")
        named = [s for s in SLO_STATISTICS if getattr(self, s) is not None]
        if not named:
            raise invalid(f"an SLO needs at least one statistic ({', '.join(SLO_STATISTICS)})")
        if self.tier is not None:
            for statistic in named:
                if statistic in CLASS_SLO_STATISTICS:
                    raise invalid(_class_statistic_on_tier(statistic), at=statistic)
        else:
            for statistic in named:
                if statistic in TIER_SLO_STATISTICS:
                    raise invalid(
                        f"{statistic} is a tier statistic; use tier: instead of class: "
                        f"(a class SLO takes {', '.join(CLASS_SLO_STATISTICS)})",
                        at=statistic,
                    )
        return self

    def objectives(self) -> list[tuple[str, float | ShareOverSpec]]:
        """(statistic, limit) pairs in a fixed order."""
        return [(s, getattr(self, s)) for s in SLO_STATISTICS if getattr(self, s) is not None]


def _class_statistic_on_tier(statistic: str) -> str:
    """Why a class statistic cannot bound a tier, and the tier statistic meant, if any."""
    tier_form = f"wait_{statistic}" if statistic in LATENCY_STATISTICS else None
    remedy = (
        f"; for the time requests wait for a worker at this tier write {tier_form}, "
        "for request latency use class:"
        if tier_form
        else "; use class: for it"
    )
    return (
        f"{statistic} is a class statistic; a tier SLO takes utilization, occupancy, "
        f"wait_mean ... wait_max, and for queues age_mean ... age_max and backlog{remedy}"
    )


# ---- faults -------------------------------------------------------------------------------------
def _lose(value: Any) -> int | float | bool:
    """`lose:` N instances, N% of them, or true (a whole zone)."""
    expected = "a number of instances such as 1, a percentage such as 25%, or true (a zone)"
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().endswith("%"):
        share = _unit(parse_ratio, "a percentage such as 25%", True)(value)
        if share > 1:
            raise invalid(f"{show(value)} is more than 100%; {FIELD} must be {expected}")
        return share
    return _whole(1, expected)(value)


def _factor(value: Any) -> float:
    """`slowdown: 3x` (or a plain number): service times multiplied by it."""
    expected = "a factor greater than 0 such as 3x or 1.5"
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("x").strip()
        try:
            number = float(text)
        except ValueError:
            raise invalid(f"{show(value)} is not a factor; {FIELD} must be {expected}") from None
        value = number
    number = _number(value, expected)
    if number <= 0:
        raise invalid(f"{show(value)} is not greater than 0; {FIELD} must be {expected}")
    return number


FAULT_EFFECTS = ("lose", "error_rate", "slowdown")


class FaultSpec(_Strict):
    """One fault: from `at` (from the start of warm-up) for `for` (default: to the end)."""

    at: Duration
    for_: PositiveDuration | None = Field(default=None, alias="for")
    tier: Text | None = None
    zone: Name | None = None
    region: Name | None = Field(
        default=None,
        description="a region lost: every tier's copy there loses all its instances, and DNS "
        "moves its traffic after routing's health_check and dns_ttl (docs/regions.md)",
    )
    lose: (
        Annotated[
            int | float | bool,
            BeforeValidator(_lose),
            WithJsonSchema(
                {
                    "anyOf": [
                        {"type": "integer", "minimum": 1},
                        {"type": "string", "pattern": r"^\s*\d+(\.\d*)?\s*%\s*$"},
                        {"type": "boolean"},
                    ],
                    "description": "instances lost: a count, a percentage, or true for a zone",
                }
            ),
        ]
        | None
    ) = None
    error_rate: Ratio | None = None
    slowdown: (
        Annotated[
            float,
            BeforeValidator(_factor),
            WithJsonSchema(
                {
                    "anyOf": [
                        {"type": "number", "exclusiveMinimum": 0},
                        {"type": "string", "pattern": r"^\s*\d+(\.\d*)?\s*[xX]\s*$"},
                    ],
                    "description": "service times multiplied by this factor, such as 3x",
                }
            ),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_target_one_effect(self) -> FaultSpec:
        targets = [t for t in ("tier", "zone", "region") if getattr(self, t) is not None]
        if len(targets) != 1:
            raise invalid("a fault names exactly one of tier:, zone: or region:")
        effects = [e for e in FAULT_EFFECTS if getattr(self, e) is not None]
        if self.region is not None:
            if effects and (effects != ["lose"] or self.lose is not True):
                raise invalid(
                    "a region fault loses the whole region; remove "
                    + " and ".join(e for e in effects if not (e == "lose" and self.lose is True)),
                    at=effects[0],
                )
            return self
        if len(effects) != 1:
            raise invalid(
                "a fault has exactly one effect: lose, error_rate or slowdown"
                + (f" (this one has {' and '.join(effects)})" if effects else "")
            )
        if self.zone is not None and self.lose is not True:
            raise invalid("a zone fault loses the whole zone: write lose: true", at="lose")
        if self.tier is not None and self.lose is True:
            raise invalid(
                "lose: true loses a zone; for a tier give a count such as 1 or a share such as 25%",
                at="lose",
            )
        return self


# ---- regions and global routing (docs/regions.md) -----------------------------------------------
ROUTING_POLICIES = ("geo", "latency", "weighted")


class RegionSpec(_Strict):
    """A region: where its clients are (`share`), how far the others are (`rtt`), standby."""

    share: Ratio | None = Field(
        default=None,
        description="the share of every class's requests from clients in this region (geo, "
        "latency) or sent here by DNS weights (weighted); default: equal shares",
    )
    rtt: dict[str, PositiveDuration] = Field(
        default_factory=dict,
        description="round-trip time to other regions, e.g. {us-east: 70ms}; symmetric, "
        "written on either side",
    )
    standby: bool = Field(
        default=False,
        description="active-passive: a warm standby that takes traffic only when a region is lost",
    )


class RoutingSpec(_Strict):
    """How DNS sends requests to regions, and how long it takes to notice a lost one."""

    policy: Annotated[
        Literal["geo", "latency", "weighted"],
        BeforeValidator(_choice(ROUTING_POLICIES, "policy")),
    ] = "geo"
    health_check: Duration = Field(
        default=30.0,
        description="how long after a region is lost (or back) DNS health checks notice it",
    )
    dns_ttl: Duration = Field(
        default=60.0,
        description="how long clients keep a DNS answer: traffic moves over this long, "
        "evenly, once DNS has noticed",
    )


# ---- the whole scenario ------------------------------------------------------------------------
#: At most this many time buckets in a run (memory per replication grows with them).
MAX_TIMESERIES_BUCKETS = 2000
_POSITIVE_DURATION = _unit(parse_duration, "true, false or a bucket duration such as 10s", True)


def _timeseries_setting(value: Any) -> bool | float:
    if isinstance(value, bool):
        return value
    return _POSITIVE_DURATION(value)


TimeseriesSetting = Annotated[
    bool | float,
    BeforeValidator(_timeseries_setting),
    WithJsonSchema(
        {
            "anyOf": [{"type": "boolean"}, _DURATION_SCHEMA],
            "description": "figures per time bucket in the result: true (bucket: duration / 120 "
            "rounded to 1, 2 or 5 x 10^k s), false (none, even with a profile), or the bucket",
        }
    ),
]


def _percent(value: Any) -> float:
    expected = "a percentile strictly between 0 and 100 such as 99.99"
    number = _number(value, expected)
    if not 0.0 < number < 100.0:
        raise invalid(f"{show(value)} is out of range; {FIELD} must be {expected}")
    return number


Percentile = Annotated[
    float,
    BeforeValidator(_percent),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100}),
]


class SimulationSpec(_Strict):
    duration: PositiveDuration = 60.0
    warmup: Duration | None = None
    replications: Count = 1
    timeseries: TimeseriesSetting | None = None
    percentiles: Annotated[
        list[Percentile],
        Field(
            description="latency percentiles reported beside p50 ... p999, e.g. [75, 99.99] "
            "(reported as p75, p9999)"
        ),
    ] = Field(default_factory=list)
    share_over: Annotated[
        list[PositiveDuration],
        Field(
            description="latency limits whose share of slower requests is reported per class "
            "(classes.<c>.share_over), e.g. [300ms, 1s]"
        ),
    ] = Field(default_factory=list)

    @field_validator("percentiles")
    @classmethod
    def _distinct_names(cls, value: list[float]) -> list[float]:
        seen: dict[str, float] = {}
        for i, percent in enumerate(value):
            key = percentile_key(percent)
            if key in seen and seen[key] != percent:
                raise invalid(
                    f"{percent:g} and {seen[key]:g} would both be reported as {key}; "
                    "keep one of them",
                    at=str(i),
                )
            seen[key] = percent
        return value

    @model_validator(mode="after")
    def _bounded_buckets(self) -> SimulationSpec:
        bucket = self.timeseries
        if isinstance(bucket, bool) or bucket is None:
            return self
        horizon = self.duration + self.warmup_or_default
        if horizon / bucket > MAX_TIMESERIES_BUCKETS:
            raise invalid(
                f"a bucket of {bucket:g}s makes {format_count(math.ceil(horizon / bucket))} buckets over the "
                f"{horizon:g}s run (warm-up included); at most {MAX_TIMESERIES_BUCKETS}: use a "
                f"bucket of at least {horizon / MAX_TIMESERIES_BUCKETS:.3g}s",
                at="timeseries",
            )
        return self

    @property
    def warmup_or_default(self) -> float:
        """The warm-up, 10% of the duration when not given."""
        return self.warmup if self.warmup is not None else 0.1 * self.duration


def _version(value: Any) -> int:
    if isinstance(value, bool) or value != 1:
        raise invalid(f"unsupported version {show(value)}; version must be 1 (or left out)")
    return 1


class Scenario(_Strict):
    """A scenario file, validated: the input of `capsim.model.build.build_model`."""

    version: Annotated[Literal[1], BeforeValidator(_version)] = 1
    name: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    description: Prose = ""
    currency: Annotated[
        str | None,
        BeforeValidator(_currency),
        Field(
            description="ISO 4217 code of the prices in `cost` (USD, EUR, ...): shown beside costs."
        ),
        WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"}),
    ] = None
    seed: Annotated[
        int,
        BeforeValidator(_seed),
        WithJsonSchema({"type": "integer", "minimum": 0}),
    ] = 0
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    traffic: dict[str, TrafficSpec] = Field(min_length=1)
    tiers: dict[str, TierSpec] = Field(min_length=1)
    slos: list[SloSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)
    regions: dict[str, RegionSpec] = Field(
        default_factory=dict,
        description="regions by name, with their round-trip times (docs/regions.md)",
    )
    routing: RoutingSpec = Field(default_factory=RoutingSpec)

    _source: str = PrivateAttr(default="<scenario>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _positions: dict[PathKey, Position] = PrivateAttr(default_factory=dict)
    _key_positions: dict[PathKey, Position] = PrivateAttr(default_factory=dict)
    _origins: dict[PathKey, str] = PrivateAttr(default_factory=dict)

    @field_validator("traffic", "tiers", "regions", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if not is_name(str(key)):
                    raise invalid(
                        f"{show(key)} is not a valid name; use letters, digits, '_' and '-' "
                        f"(no dots or spaces){not_a_letter(str(key))}",
                        at=str(key),
                    )
        return value

    # ---- where things are in the file ----------------------------------------------------------
    def attach_source(
        self,
        source: str,
        base_dir: Path,
        positions: dict[PathKey, Position],
        key_positions: dict[PathKey, Position],
        origins: dict[PathKey, str],
    ) -> None:
        """Remember the file and node positions (called by the loader)."""
        self._source = source
        self._base_dir = base_dir
        self._positions = positions
        self._key_positions = key_positions
        self._origins = origins

    @property
    def source(self) -> str:
        """The scenario file as the user named it (``<scenario>`` when built in code)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def positions(self) -> dict[PathKey, Position]:
        """(line, column) of each value, by key path such as ``('tiers', 'app', 'instances')``."""
        return self._positions

    def problem(self, message: str, path: PathKey, at_key: bool = False) -> Problem:
        """A Problem located at `path` (or at the nearest enclosing node that has a position)."""
        return locate(
            message, path, self._source, self._positions, self._key_positions, self._origins, at_key
        )

    def tier_specs(self) -> dict[str, AnyTier]:
        return dict(self.tiers)


def locate(
    message: str,
    path: PathKey,
    source: str,
    positions: dict[PathKey, Position],
    key_positions: dict[PathKey, Position],
    origins: dict[PathKey, str],
    at_key: bool = False,
) -> Problem:
    """A Problem for `path`: the override that made it (`origins`: as the user typed it), or
    the nearest positioned node."""
    dotted = format_path(path)
    for end in range(len(path), -1, -1):
        prefix = path[:end]
        if prefix in origins:
            return Problem(message=message, file=origins[prefix], line=0, column=0, path=dotted)
        where = key_positions.get(prefix) if at_key else None
        where = where or positions.get(prefix)
        if where is not None:
            return Problem(
                message=message, file=source, line=where[0], column=where[1], path=dotted
            )
    return Problem(message=message, file=source, line=0, column=0, path=dotted)


# ---- pydantic errors in plain words ------------------------------------------------------------
_EXAMPLES = {
    "name": "name: web-shop",
    "traffic": "traffic: {browse: {entry: app, rate: 100/s}}",
    "tiers": "tiers: {app: {service_time: 20ms}}",
    "service_time": "service_time: 25ms",
    "entry": "entry: app",
    "backends": "backends: app",
    "hit_ratio": "hit_ratio: 85%",
    "tier": "tier: db",
    "size": "size: 20",
    "mean": "mean: 20ms",
    "cv": "cv: 1.5",
    "value": "value: 20ms",
    "min": "min: 5ms",
    "max": "max: 15ms",
    "capacity": "capacity: 100000",
    "keys": "keys: 1000000",
    "zipf": "zipf: 0.9",
    "model": "model: lru",
    "at": "at: 5min",
    "rate": "rate: 800/s",
    "per_instance_hour": "per_instance_hour: 0.192",
}
_TAG_HELP = {
    "tier": ("tier type", "type", TIER_TYPES),
    "dist": ("distribution", "dist", DISTRIBUTIONS),
    "size": ("batch-size distribution", "dist", BATCH_SIZES),
}


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(_models_in(arg))
    return found


_TAGGED: dict[str, type[BaseModel]] = {}


def _register_tags(annotation: Any) -> None:
    for arg in get_args(annotation):
        if get_origin(arg) is Annotated:
            inner, *meta = get_args(arg)
            for item in meta:
                if (
                    isinstance(item, Tag)
                    and isinstance(inner, type)
                    and issubclass(inner, BaseModel)
                ):
                    _TAGGED[item.tag] = inner
        elif get_args(arg):
            _register_tags(arg)


for _union in (
    DistributionSpec,
    CallSpec,
    TierSpec,
    HitRatioSpec,
    SizingSetting,
    ArrivalsSpec,
    ProfileSpec,
    BatchSizeSpec,
):
    _register_tags(_unwrap(_union))


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validated the mapping at raw pydantic location `loc`."""
    current: Any = Scenario
    for part in loc:
        if isinstance(part, str) and part.startswith("<") and part in _TAGGED:
            current = _TAGGED[part]
            continue
        optional = [a for a in get_args(_unwrap(current)) if a is not type(None)]
        if get_origin(_unwrap(current)) in (Union, UnionType) and len(optional) == 1:
            current = optional[0]  # `Spec | None` holding a mapping: look inside Spec
        model = current if isinstance(current, type) and issubclass(current, BaseModel) else None
        if model is not None:
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            current = field.annotation
            continue
        annotation = _unwrap(current)
        origin = get_origin(annotation)
        if origin in (dict, list):
            current = get_args(annotation)[-1]
            continue
        if origin is Union or get_args(annotation):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                current = args[0]
                inner = get_origin(_unwrap(current))
                if inner in (dict, list):
                    current = get_args(_unwrap(current))[-1]
                    continue
            return None
        return None
    models = _models_in(current)
    return models[0] if len(models) == 1 else None


#: A percentile written as an SLO key that is not one of p50, p90, p95, p99, p999 (`p9999`,
#: `wait_p75`): reportable with `simulation.percentiles`, but not an SLO statistic.
_UNLISTED_PERCENTILE = re.compile(r"(?:wait_|age_)?p\d+")


def _unlisted_percentile_message(field: str, hint: str) -> str:
    """Why `p9999` is refused as an SLO key, and the form that bounds the same tail.

    A deeper percentile than p999 keeps no "did you mean" (p999 is another objective); a typo
    such as `wait_p9` keeps it.
    """
    prefix, digits = field.rsplit("p", 1)
    listed = ", ".join(f"{prefix}{s}" for s in LATENCY_STATISTICS if s.startswith("p"))
    hint = "" if len(digits) > len("999") else hint
    message = f"{field} is not an SLO statistic{hint} (percentiles in SLOs: {listed})"
    if prefix:
        return message
    return (
        f"{message}; to bound another percentile of a class, bound the share of requests "
        "slower than its limit: share_over: {limit: 2s, max: 0.01%} is p99.99 <= 2s"
    )


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def problems_from_validation_error(
    error: ValidationError,
    source: str,
    positions: dict[PathKey, Position],
    key_positions: dict[PathKey, Position],
    origins: dict[PathKey, str],
) -> list[Problem]:
    """Every pydantic error as a located Problem in plain words."""
    problems: list[Problem] = []
    for item in error.errors():
        raw_loc = tuple(item["loc"])
        path: PathKey = tuple(
            p for p in raw_loc if not (isinstance(p, str) and p.startswith("<") and p.endswith(">"))
        )
        path = tuple(p for p in path if p != "[key]")
        kind = item["type"]
        value = item.get("input")
        context = item.get("ctx") or {}
        field = next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
        at_key = False
        if kind == "capsim":
            message = str(context["message"]).replace(FIELD, field)
            if "at" in context:
                extra = tuple(int(p) if p.isdigit() else p for p in str(context["at"]).split("."))
                path = (*path, *extra)
                at_key = isinstance(path[-1], str)
        elif kind.startswith("capsim_tag_"):
            what = kind.removeprefix("capsim_tag_")
            message = _tag_message(what, value, field)
            key = _TAG_HELP[what][1] if what in _TAG_HELP else None
            if key is not None and isinstance(value, dict) and key in value:
                path = (*path, key)
        elif kind == "extra_forbidden":
            at_key = True
            model = _model_at(raw_loc[:-1])
            valid = _keys_of(model) if model else []
            message = f"unknown key {show(field)}"
            hint = suggest(field, valid)
            if model is SloSpec and _UNLISTED_PERCENTILE.fullmatch(field):
                message = _unlisted_percentile_message(field, hint)
            elif model is SloSpec:
                message = (
                    f"unknown key or statistic {show(field)}{hint} "
                    f"(statistics: {', '.join(SLO_STATISTICS)})"
                )
            elif hint:
                message += hint
            elif valid:
                message += f" (valid keys: {', '.join(valid)})"
        elif kind == "missing":
            at_key = True
            example = _EXAMPLES.get(field)
            message = f"missing required key {show(field)}" + (
                f", e.g. {example}" if example else ""
            )
            path_parent = path[:-1]
            problems.append(
                _located(message, path, path_parent, source, positions, key_positions, origins)
            )
            continue
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            message = f"expected a mapping (key: value pairs), got {kind_of(value)}"
        elif kind == "list_type":
            message = f"expected a list, got {kind_of(value)}"
        elif kind in ("string_type", "str_type"):
            message = f"expected text, got {kind_of(value)}"
        elif kind == "bool_type":
            message = f"expected true or false, got {kind_of(value)}"
        elif kind == "too_short" or kind == "string_too_short":
            message = f"{field} must not be empty"
        else:
            message = f"{item['msg']} (got {show(value)})"  # pydantic's own wording
        problems.append(locate(message, path, source, positions, key_positions, origins, at_key))
    return sorted(problems, key=lambda p: (p.file, p.line, p.column))


def _located(
    message: str,
    path: PathKey,
    parent: PathKey,
    source: str,
    positions: dict[PathKey, Position],
    key_positions: dict[PathKey, Position],
    origins: dict[PathKey, str],
) -> Problem:
    """A missing key is reported at the key of the mapping that lacks it."""
    located = locate(message, parent, source, positions, key_positions, origins, at_key=True)
    return Problem(
        message=located.message,
        file=located.file,
        line=located.line,
        column=located.column,
        path=format_path(path),
    )


def _squeezed_colon(value: dict[Any, Any]) -> str:
    """A hint for `{tier:push}`, which YAML reads as the one key 'tier:push' without a value
    (a flow mapping needs a space after each colon)."""
    for key, item in value.items():
        if isinstance(key, str) and ":" in key and item is None:
            name, _, rest = key.partition(":")
            return (
                f": {key!r} is one key without a value, as YAML needs a space after a colon "
                f"({name}: {rest})"
            )
    return ""


def _tag_message(what: str, value: Any, field: str) -> str:
    if what == "arrivals":
        form = (
            "poisson, constant, {trace: file}, {mmpp: {rates: [..], mean_sojourn: [..]}} or "
            "{batch: {size: 4}}"
        )
        return f"expected arrivals as {form}, got {kind_of(value)} {show(value)}"
    if what == "profile":
        form = "a list of {at: 0s, rate: 800/s} points or {file: rates.csv}"
        return f"expected a profile as {form}, got {kind_of(value)} {show(value)}"
    if what == "forward":
        form = "a tier name or a call mapping such as {tier: db, timeout: 500ms}"
        return f"expected {form}, got {kind_of(value)}"
    if what == "call":
        form = "a tier name, {tier: db, probability: 0.2}, {one_of: {a: 0.8}} or {parallel: [a, b]}"
        if isinstance(value, dict):
            return f"this mapping is not a call{_squeezed_colon(value)}; write a call as {form}"
        return f"expected a call, got {kind_of(value)}; write a call as {form}"
    label, key, valid = _TAG_HELP.get(what, (what, what, ()))
    if not isinstance(value, dict):
        return f"expected a mapping (key: value pairs), got {kind_of(value)}"
    if key not in value:
        return f"missing key {key!r}; it names the {label}, one of: {', '.join(valid)}"
    given = value[key]
    hint = suggest(given, valid) if isinstance(given, str) else ""
    return f"unknown {label} {show(given)}{hint} (valid: {', '.join(valid)})"


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of the scenario format (for editors and CI)."""
    schema = Scenario.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://capsim.dev/schema/scenario.schema.json",
        **schema,
        "title": "capsim scenario",
        "description": "A capsim scenario file: traffic, tiers and SLOs (format version 1).",
    }


def render_json_schema() -> str:
    """The JSON Schema as committed in src/capsim/schema/scenario.schema.json."""
    return json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False) + "\n"
