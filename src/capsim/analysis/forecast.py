"""`capsim forecast`: when a growing load meets the capacity `saturate` finds, and what to buy.

The load grows on a compound monthly curve, load(t) = rate_now x (1 + g)^months(t), with
months counted as days / 30.436875 (the mean Gregorian month). `find_saturation` runs once, at
today's load; its rates become dates by inverting the curve. Seasonal events multiply the load
of one day: a day whose spike reaches a threshold before the trend does is the answer.
The capacity plan sizes the scenario (`size_tiers`) at the load of each step and of the day
before each event. docs/forecast.md defines every figure.
"""

from __future__ import annotations

import csv
import io
import math
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from capsim.analysis.cost import HOURS_PER_MONTH
from capsim.analysis.sizing import SizingError
from capsim.errors import UsageError
from capsim.measurements.reading import undecodable_at

DAYS_PER_MONTH = 365.2425 / 12

_SPAN = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(mo|months?|w|weeks?|d|days?|y|years?)\s*$", re.IGNORECASE
)
_GROWTH = re.compile(
    r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*(?:/|per\s+)\s*(mo|month|y|year)\s*$", re.IGNORECASE
)
_EVENT = re.compile(r"^\s*([^=]+?)\s*=\s*(\d+(?:\.\d+)?)\s*x?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Event:
    """A seasonal event: the load of `day` is `multiplier` x the trend."""

    day: date
    multiplier: float
    text: str


@dataclass(frozen=True)
class Growth:
    """Compound monthly growth and where it came from (`--growth` or a `--history` fit)."""

    monthly: float
    source: str
    fit: dict[str, Any] | None = None

    def factor(self, months: float) -> float:
        return float((1.0 + self.monthly) ** months)

    def months_to(self, ratio: float) -> float | None:
        """Months until the load is `ratio` x today's (None: never, with this growth)."""
        if ratio <= 1.0:
            return 0.0
        if self.monthly <= 0:
            return None
        return math.log(ratio) / math.log1p(self.monthly)


@dataclass(frozen=True)
class Horizon:
    start: date
    end: date
    events: list[Event] = field(default_factory=list)

    def months(self, day: date) -> float:
        return (day - self.start).days / DAYS_PER_MONTH

    def day_after(self, months: float) -> date:
        """The first whole day on which `months` have passed (rounded up)."""
        return self.start + timedelta(days=math.ceil(months * DAYS_PER_MONTH - 1e-9))


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a date; write it as YYYY-MM-DD (e.g. 2027-01-31)"
        ) from None


@dataclass(frozen=True)
class Span:
    """A calendar span: whole months (mo, y) or days (w, d), as the user wrote it."""

    months: int = 0
    days: float = 0.0
    text: str = ""

    def after(self, day: date, times: int = 1) -> date:
        """`day` plus `times` spans: months on the calendar (the day clamped to the month's
        end: 31 January + 1mo is 28 or 29 February), days rounded to whole days."""
        try:
            if self.months:
                total = day.year * 12 + day.month - 1 + self.months * times
                year, month = divmod(total, 12)
                return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))
            return day + timedelta(days=round(self.days * times))
        except (ValueError, OverflowError):  # past the calendar's last day, 9999-12-31
            raise UsageError(
                f"{day.isoformat()} plus {times} x {self.text or 'the span'} is past the year "
                "9999, where the calendar ends; start earlier (--from) or shorten the span"
            ) from None


#: The longest --horizon or --step: a century is past any capacity plan, and dates past the
#: year 9999 do not exist in the calendar.
MAX_SPAN_YEARS = 100


def parse_span(text: str, option: str) -> Span:
    """A span: 24mo, 18 months, 2y (calendar months) or 6w, 90d (days)."""
    match = _SPAN.match(text)
    if not match:
        raise UsageError(
            f"{option} {text!r} is not a span; write a number and a unit: mo/months, w, d or y "
            "(e.g. 24mo, 13w, 90d, 2y)"
        )
    value = float(match.group(1))
    unit = match.group(2).lower()
    if value <= 0:
        raise UsageError(f"{option} {text!r} must be longer than 0")
    longest = MAX_SPAN_YEARS * (12 if unit[0] == "m" else 1 if unit[0] == "y" else 365.25)
    if value > (longest / 7.0 if unit[0] == "w" else longest):
        raise UsageError(
            f"{option} {text!r} is longer than {MAX_SPAN_YEARS} years, the longest span capsim "
            "forecasts over (the calendar ends at the year 9999); write e.g. 10y"
        )
    if unit[0] in "my":
        months = value * (12 if unit[0] == "y" else 1)
        if months != int(months):
            raise UsageError(
                f"{option} {text!r}: months and years must be whole (write days instead, e.g. 45d)"
            )
        return Span(months=int(months), text=text.strip())
    return Span(days=value * (7.0 if unit[0] == "w" else 1.0), text=text.strip())


def parse_growth(text: str) -> Growth:
    """`8%/month` or `60%/year` (compound; converted to monthly), above -100%."""
    match = _GROWTH.match(text)
    if not match:
        raise UsageError(
            f"--growth {text!r} is not a growth rate; write a percentage per month or year "
            "(e.g. 8%/month, -2%/mo, 60%/year)"
        )
    value = float(match.group(1)) / 100.0
    if value <= -1.0:
        raise UsageError(
            f"--growth {text!r}: a decline of 100% or more leaves no load; give a rate above -100%"
        )
    if match.group(2).lower().startswith("y"):
        value = (1.0 + value) ** (1.0 / 12.0) - 1.0
    return Growth(monthly=value, source=f"--growth {text.strip()}")


def parse_event(text: str, horizon: Horizon) -> Event:
    match = _EVENT.match(text)
    if not match:
        raise UsageError(
            f"--event {text!r} is not an event; write DATE=FACTOR (e.g. 2027-11-26=3x)"
        )
    day = parse_date(match.group(1), f"--event {text!r}: the date")
    multiplier = float(match.group(2))
    if multiplier <= 0:
        raise UsageError(f"--event {text!r}: the multiplier must be greater than 0")
    if not horizon.start <= day <= horizon.end:
        raise UsageError(
            f"--event {text!r} is outside the horizon {horizon.start.isoformat()} .. "
            f"{horizon.end.isoformat()}; move it inside or lengthen --horizon"
        )
    return Event(day, multiplier, text.strip())


def read_history(path: Path, text: str) -> list[tuple[date, float]]:
    """Past peaks from a CSV `date,rate` (a header line is optional); located errors."""
    rows: list[tuple[date, float]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        records = list(enumerate(reader, start=1))
    except csv.Error as error:  # a field over the csv module's 131,072-character limit, say
        raise UsageError(
            f"{path}:{reader.line_num}: not readable as CSV ({error}); write one date,rate per line"
        ) from None
    for line_no, row in records:
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{line_no}"
        if len(row) < 2:
            raise UsageError(f"{where}: expected two columns, date,rate; got {row!r}")
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            if not rows and line_no == 1:
                continue  # a header line
            raise UsageError(
                f"{where}:1: {row[0].strip()!r} is not a date; write YYYY-MM-DD"
            ) from None
        try:
            rate = float(row[1].strip().removesuffix("/s"))
        except ValueError:
            raise UsageError(
                f"{where}:{len(row[0]) + 2}: {row[1].strip()!r} is not a rate; write a number "
                "of requests per second (e.g. 1250 or 1250/s)"
            ) from None
        if not math.isfinite(rate) or rate <= 0:
            raise UsageError(f"{where}:{len(row[0]) + 2}: the rate must be a positive number")
        if rows and day <= rows[-1][0]:
            raise UsageError(
                f"{where}:1: dates must increase; {day.isoformat()} does not come after "
                f"{rows[-1][0].isoformat()}"
            )
        rows.append((day, rate))
    if len(rows) < 3:
        raise UsageError(
            f"{path}: a trend needs at least 3 dated peaks, and the file has {len(rows)}"
        )
    return rows


def fit_growth(rows: list[tuple[date, float]], source: str) -> Growth:
    """Least-squares line through ln(rate) against months; monthly growth = e^slope - 1."""
    from scipy import stats

    origin = rows[0][0]
    xs = [(day - origin).days / DAYS_PER_MONTH for day, _ in rows]
    ys = [math.log(rate) for _, rate in rows]
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    ss_res = sum(r * r for r in residuals)
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    se = math.sqrt(ss_res / (n - 2) / sxx) if n > 2 else math.inf
    t = float(stats.t.ppf(0.975, n - 2))
    low, high = slope - t * se, slope + t * se
    last_day = rows[-1][0]
    fitted_last = math.exp(intercept + slope * xs[-1])
    return Growth(
        monthly=math.expm1(slope),
        source=source,
        fit={
            "points": n,
            "first": origin.isoformat(),
            "last": last_day.isoformat(),
            "monthly_ci95": [math.expm1(low), math.expm1(high)],
            "r2": r2,
            "fitted_rate_at_last": fitted_last,
        },
    )


def _threshold_day(
    rate: float | None, base: float, growth: Growth, horizon: Horizon
) -> tuple[date | None, str | None]:
    """The first day inside the horizon when the load (trend or an event spike) reaches `rate`."""
    if rate is None:
        return None, None
    months = growth.months_to(rate / base)
    trend_day = horizon.day_after(months) if months is not None else None
    if trend_day is not None and trend_day > horizon.end:
        trend_day = None
    for event in sorted(horizon.events, key=lambda e: e.day):
        if trend_day is not None and event.day >= trend_day:
            break
        if base * growth.factor(horizon.months(event.day)) * event.multiplier >= rate:
            return event.day, event.text
    return trend_day, None


def _breached_slo(saturation: dict[str, Any]) -> str | None:
    """The SLO nearest its limit at max_rate_meeting_slos: the one that breaks first."""
    slos = saturation.get("slos") or []
    scored = [
        (float(s.get("upper") or s.get("observed") or 0.0) / float(s["limit"]), s["slo"])
        for s in slos
        if s.get("limit")
    ]
    return max(scored)[1] if scored else None


def _saturating_first(saturation: dict[str, Any], tiers: dict[str, Any]) -> str | None:
    """The tier whose saturation caps `max_rate_meeting_slos` (saturate caps it at its
    `slo_ceiling`, the lowest lower bound of a tier's saturation rate), else None: there the
    "breach" is that tier saturating while every SLO still holds."""
    rate = saturation.get("max_rate_meeting_slos")
    if rate is None or rate != saturation.get("slo_ceiling"):
        return None
    rated = {name: t["saturation_rate"] for name, t in tiers.items() if t["saturation_rate"]}
    return min(rated, key=lambda name: rated[name]) if rated else saturation.get("bottleneck")


def plan_days(horizon: Horizon, step: Span) -> list[tuple[date, str]]:
    """Each step from the start (inclusive) to the end, and each event's day."""
    days: list[tuple[date, str]] = []
    k = 0
    while (day := step.after(horizon.start, k)) <= horizon.end:
        days.append((day, "step"))
        k += 1
    for event in horizon.events:
        days.append((event.day, f"before event {event.text}"))
    return sorted(days)


def _capacity(tier: dict[str, Any]) -> dict[str, Any]:
    """What `size` chose for one tier: what it sized and the count of each unit."""
    keys = ["sized", "instances", "replicas"]
    if tier.get("sized"):
        keys.append(tier["sized"])
    return {key: tier[key] for key in keys if tier.get(key) is not None}


def _unsized_step(day: date, why: str, load: float, rate: float, error: str) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "why": why,
        "load": load,
        "rate": rate * load,
        "tiers": None,
        "cost_per_hour": None,
        "cost_per_month": None,
        "verified": False,
        "error": error,
    }


def _single_replication_note(saturation: dict[str, Any]) -> list[str]:
    """A note when the saturation search measured its points with one replication (asked for
    with `--replications 1`): without a 95% interval each objective is judged on its figure
    alone, so the dates are not the conservative ones of `capsim saturate` (3 replications)."""
    curve = saturation.get("curve") or []
    if not curve or min(int(p.get("replications") or 1) for p in curve) > 1:
        return []
    return [
        "the saturation search ran one replication per point (--replications 1): each "
        "objective was judged on its figure alone, without the upper end of a 95% interval, "
        "and the lower bounds of the saturation rates only --precision below them, so these "
        "dates can be later than capsim saturate's (3 replications, the forecast's default); "
        "leave out --replications 1 for the conservative dates"
    ]


def forecast(
    model: Any,
    *,
    capsim_version: str,
    growth: Growth,
    horizon: Horizon,
    step: Span,
    find_saturation: Callable[[Any], dict[str, Any]],
    size_at: Callable[[Any, float], dict[str, Any]] | None,
    open_rate: float,
) -> dict[str, Any]:
    """Saturation and first-SLO-breach dates, and a sized plan at each step and event."""
    saturation = find_saturation(model)
    tiers: dict[str, Any] = {}
    for name, tier in saturation["tiers"].items():
        rate = tier.get("max_rate_low")
        day, by_event = _threshold_day(rate, open_rate, growth, horizon)
        tiers[name] = {
            "saturation_rate": rate,
            "saturates_on": day.isoformat() if day else None,
            "by_event": by_event,
        }
    slo_rate = saturation.get("max_rate_meeting_slos")
    breach_day, breach_event = _threshold_day(slo_rate, open_rate, growth, horizon)
    notes = list(saturation.get("notes", []))
    notes.extend(_single_replication_note(saturation))
    if slo_rate is None and model.slos:
        notes.append("no rate met every SLO, so no breach date can be given")
    plan: list[dict[str, Any]] = []
    if size_at is not None:
        for day, why in plan_days(horizon, step):
            load = growth.factor(horizon.months(day))
            multiplier = next((e.multiplier for e in horizon.events if e.day == day), 1.0)
            load *= multiplier
            try:
                sized = size_at(model, load)
            except SizingError as error:
                plan.append(_unsized_step(day, why, load, open_rate, str(error)))
                notes.append(f"{day.isoformat()}: no sized configuration: {error}")
                continue
            hourly = sized.get("total_cost_per_hour")
            plan.append(
                {
                    "date": day.isoformat(),
                    "why": why,
                    "load": load,
                    "rate": open_rate * load,
                    "tiers": {name: _capacity(t) for name, t in sized["tiers"].items()},
                    "cost_per_hour": hourly,
                    "cost_per_month": hourly * HOURS_PER_MONTH if hourly is not None else None,
                    "verified": sized.get("verified"),
                    "error": None,
                }
            )
    return {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "command": "forecast",
        "from": horizon.start.isoformat(),
        "until": horizon.end.isoformat(),
        "offered_rate": open_rate,
        "growth": {"monthly": growth.monthly, "source": growth.source, "fit": growth.fit},
        "events": [{"date": e.day.isoformat(), "multiplier": e.multiplier} for e in horizon.events],
        "tiers": tiers,
        "first_slo_breach": {
            "date": breach_day.isoformat() if breach_day else None,
            "slo": _breached_slo(saturation) if breach_day else None,
            "saturation": _saturating_first(saturation, tiers),
            "rate": slo_rate,
            "by_event": breach_event,
            "determined": slo_rate is not None,
        },
        "plan": plan,
        "currency": getattr(model, "currency", None),
        "saturation": {
            "bottleneck": saturation.get("bottleneck"),
            "saturation_rate": saturation.get("saturation_rate"),
            "max_rate_meeting_slos": slo_rate,
        },
        "notes": notes,
    }


#: The keys of a forecast that `capsim report --forecast` draws (docs/forecast.md).
REPORTED_KEYS = ("from", "until", "offered_rate", "growth", "tiers", "first_slo_breach", "plan")


#: The largest forecast or history file read (bytes).
MAX_FORECAST_FILE_BYTES = 16 * 1024 * 1024


def load_forecast(path: Path, scenario: str) -> dict[str, Any]:
    """A forecast JSON file for `capsim report --forecast`, read (bounded) and checked."""
    from capsim.safeio import read_capped

    raw = read_capped(path, MAX_FORECAST_FILE_BYTES, "a forecast file")
    return read_forecast(path, decode_text(path, raw, "a forecast (JSON)"), scenario)


def decode_text(path: Path, raw: bytes, what: str) -> str:
    """The UTF-8 text of a file read for forecast or report; a located error if it is not."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = undecodable_at(raw, error)
        raise UsageError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[error.start]:02x}); "
            f"the file should be {what}, saved as UTF-8"
        ) from None


def read_forecast(path: Path, text: str, scenario: str) -> dict[str, Any]:
    """A `capsim forecast --format json` file for the report of `scenario`; located errors."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path}:{error.lineno}:{error.colno}: not JSON ({error.msg}); write the file with "
            f"capsim forecast {scenario!r} ... --format json -o {path}"
        ) from None
    except (RecursionError, ValueError) as error:  # nested too deeply; a 5,000-digit number
        what = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise UsageError(
            f"{path}: not a forecast ({what}); write one with capsim forecast {scenario!r} ... "
            f"--format json -o {path}"
        ) from None
    if not isinstance(data, dict) or data.get("command") != "forecast":
        raise UsageError(
            f'{path}: not a forecast (its `command` is not "forecast"); write one with '
            "capsim forecast SCENARIO --growth 8%/month --format json -o FILE"
        )
    missing = [key for key in REPORTED_KEYS if key not in data]
    if missing:
        raise UsageError(
            f"{path}: a forecast without {', '.join(missing)}; write it again with this "
            "capsim's forecast --format json"
        )
    if data.get("scenario") != scenario:
        raise UsageError(
            f"{path} is a forecast of scenario {data.get('scenario')!r}, not of {scenario!r}; "
            "run capsim forecast on the scenario of the report"
        )
    for key in ("from", "until"):
        parse_date(str(data[key]), f"{path}: `{key}`")
    return data
