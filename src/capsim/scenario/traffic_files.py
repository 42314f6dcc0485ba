"""Traffic read from files: request timestamps (a trace, a CSV column, an access log) and rate series.

The functions take the file's text (the scenario schema reads it, confined to the scenario's
folder and size-capped) and raise TrafficFileError with a message naming the file and line.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, datetime
from typing import Any

from capsim.units import UnitError, parse_duration, parse_rate

#: The most timestamps capsim reads from one trace: memory stays bounded (8 bytes each, twice).
MAX_TRACE_TIMESTAMPS = 1_000_000
#: The most points a rate-series file may hold.
MAX_PROFILE_POINTS = 100_000

# Common and Combined Log Format (Apache, nginx's default): [10/Oct/2000:13:55:36 -0700]
_ACCESS_LOG_TIME = re.compile(
    r"\[(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*([+-])?(\d{2})?(\d{2})?\]"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
TIMESTAMP_FORMS = (
    "seconds (a number, or a duration such as 1.5s), epoch seconds, an ISO-8601 timestamp "
    "(2024-05-01T12:00:00.250Z), or an access-log line with [10/Oct/2024:13:55:36 +0000] or an "
    "ISO-8601 field"
)


class TrafficFileError(ValueError):
    """A traffic file that cannot be read as the scenario says."""


def parse_timestamp(text: str) -> float | None:
    """Seconds for a number, a duration or an ISO-8601 timestamp (naive ones read as UTC)."""
    text = text.strip().strip('"')
    if not text:
        return None
    try:
        return float(text)  # the common case, fast: seconds or epoch seconds
    except ValueError:
        pass
    try:
        return parse_duration(text)
    except UnitError:
        pass
    return _iso_seconds(text)


def _iso_seconds(text: str) -> float | None:
    if not text[:1].isdigit() or "-" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _access_log_seconds(line: str) -> float | None:
    found = _ACCESS_LOG_TIME.search(line)
    if found is not None:
        day, month, year, hour, minute, second, fraction, sign, zone_h, zone_m = found.groups()
        if month.lower() not in _MONTHS:
            return None
        try:
            moment = datetime(
                int(year),
                _MONTHS[month.lower()],
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=UTC,
            )
        except ValueError:
            return None
        offset = 0.0
        if sign is not None and zone_h is not None:
            offset = (int(zone_h) * 3600 + int(zone_m or 0) * 60) * (1 if sign == "+" else -1)
        return moment.timestamp() + float(fraction or 0.0) - offset
    for field in line.split():
        seconds = _iso_seconds(field.strip("[]\"'"))
        if seconds is not None:
            return seconds
    return None


def _line_seconds(line: str) -> float | None:
    whole = parse_timestamp(line)
    return whole if whole is not None else _access_log_seconds(line)


def read_timestamps(text: str, name: str, column: str | None = None) -> list[float]:
    """Request times in seconds from the first one, in order (access logs are written in order
    of completion, so the times are sorted)."""
    stamps = _csv_column(text, name, column) if column is not None else _lines(text, name)
    if not stamps:
        raise TrafficFileError(f"the trace {name!r} holds no timestamps")
    stamps.sort()
    first = stamps[0]
    return [t - first for t in stamps]


def _lines(text: str, name: str) -> list[float]:
    stamps: list[float] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        seconds = _line_seconds(line)
        if seconds is None:
            if not stamps and not any(c.isdigit() for c in line):
                continue  # a header line such as "timestamp"
            raise TrafficFileError(
                f"{name} line {number}: no timestamp in {_short(line)}; each line must hold "
                f"{TIMESTAMP_FORMS} (for a CSV file, name the column with column:)"
            )
        _keep(stamps, seconds, name, number)
    return stamps


def _csv_column(text: str, name: str, column: str) -> list[float]:
    rows = csv.reader(text.splitlines())
    try:
        return _read_csv_column(rows, name, column)
    except csv.Error as error:  # a field over the csv module's 131,072-character limit, say
        raise TrafficFileError(
            f"{name} line {rows.line_num}: not readable as CSV ({error}); a trace holds one "
            "timestamp (or one row of short fields) per line"
        ) from None


def _read_csv_column(rows: Any, name: str, column: str) -> list[float]:
    header = next(rows, None)
    if header is None:
        raise TrafficFileError(
            f"the trace {name!r} is empty; it needs a header row naming {column!r}"
        )
    names = [h.strip() for h in header]
    folded = [h.lower() for h in names]
    if column in names:
        index = names.index(column)
    elif column.lower() in folded:
        index = folded.index(column.lower())
    else:
        raise TrafficFileError(
            f"the trace {name!r} has no column {column!r}; its header names: "
            + ", ".join(repr(n) for n in names)
        )
    stamps: list[float] = []
    for row in rows:
        number = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        cell = row[index] if index < len(row) else ""
        seconds = parse_timestamp(cell)
        if seconds is None:
            raise TrafficFileError(
                f"{name} line {number}: column {column!r} holds {_short(cell)}, not a timestamp; "
                f"write {TIMESTAMP_FORMS}"
            )
        _keep(stamps, seconds, name, number)
    return stamps


def _keep(stamps: list[float], seconds: float, name: str, number: int) -> None:
    if not math.isfinite(seconds):
        raise TrafficFileError(f"{name} line {number}: the timestamp is not a finite number")
    if len(stamps) >= MAX_TRACE_TIMESTAMPS:
        raise TrafficFileError(
            f"the trace {name!r} holds more than {MAX_TRACE_TIMESTAMPS:,} timestamps, the most "
            "capsim reads from one trace; replay a shorter window of it (and loop: true to "
            "repeat it)"
        )
    stamps.append(seconds)


def read_rate_series(text: str, name: str) -> list[tuple[float, float]]:
    """(at, rate) points from lines `at,rate` (a header line is skipped), in order of `at`."""
    points: list[tuple[float, float]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f for f in re.split(r"[,;\t]+|\s+", line) if f]
        if not points and not any(c.isdigit() for c in line):
            continue  # a header line such as "at,rate"
        if len(fields) != 2:
            raise TrafficFileError(
                f"{name} line {number}: expected two fields `at,rate` (e.g. 5min,2400/s), "
                f"got {_short(line)}"
            )
        try:
            at = parse_duration(fields[0])
        except UnitError as error:
            raise TrafficFileError(f"{name} line {number}: at: {error}") from None
        try:
            rate = parse_rate(fields[1])
        except UnitError as error:
            raise TrafficFileError(f"{name} line {number}: rate: {error}") from None
        if at < 0 or rate < 0 or not (math.isfinite(at) and math.isfinite(rate)):
            raise TrafficFileError(
                f"{name} line {number}: at and rate must be 0 or more, got {_short(line)}"
            )
        if points and at < points[-1][0]:
            raise TrafficFileError(
                f"{name} line {number}: points must be in order of `at`: {at:g}s comes after "
                f"{points[-1][0]:g}s"
            )
        if len(points) >= MAX_PROFILE_POINTS:
            raise TrafficFileError(
                f"the rate series {name!r} holds more than {MAX_PROFILE_POINTS:,} points, the "
                "most capsim reads; resample it to coarser steps"
            )
        points.append((at, rate))
    if not points:
        raise TrafficFileError(f"the rate series {name!r} holds no `at,rate` points")
    return points


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
