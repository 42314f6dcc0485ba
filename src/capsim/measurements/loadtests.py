"""Load-test results: k6 (--summary-export JSON, --out json NDJSON), Locust (--csv files) and a
plain concurrency,throughput CSV. Each becomes load steps with throughput and latency."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from capsim.errors import ResourceLimitError
from capsim.measurements.reading import (
    MeasurementError,
    malformed_warning,
    parse_json,
    refuse_mostly_malformed,
)
from capsim.measurements.types import LoadStep, LoadTest

PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}


def _percentiles(durations: np.ndarray) -> dict[str, float]:
    if durations.size == 0:
        return {}
    values = np.percentile(durations, list(PERCENTILES.values()))
    return {
        "mean": float(durations.mean()),
        **dict(zip(PERCENTILES, map(float, values), strict=True)),
    }


# --- k6 ---------------------------------------------------------------------------------------


def _k6_figure(stats: dict[str, Any], key: str, path: str | Path) -> float:
    """A figure of a k6 summary: a finite number, 0 or more (a count, a rate, milliseconds)."""
    value = stats.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeasurementError(f"{path}: the k6 figure {key!r} is {value!r:.40}, not a number")
    if not math.isfinite(value) or value < 0 or value > 1e15:
        raise MeasurementError(
            f"{path}: the k6 figure {key!r} is {value!r:.40}; expected a finite number, 0 or more"
        )
    return float(value)


def parse_k6_summary(text: str, path: str | Path) -> LoadTest:
    """`k6 run --summary-export` (flat trend stats) or a handleSummary `data` (under `values`)."""
    document = parse_json(text, path)
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict) or "http_reqs" not in metrics:
        raise MeasurementError(
            f"{path}: a k6 summary needs metrics.http_reqs (and http_req_duration)"
        )

    def stats(name: str) -> dict[str, Any]:
        metric = metrics.get(name) or {}
        return metric.get("values", metric) if isinstance(metric, dict) else {}

    reqs, duration = stats("http_reqs"), stats("http_req_duration")
    if "count" not in reqs or "rate" not in reqs:
        raise MeasurementError(f"{path}: metrics.http_reqs needs count and rate")
    count, rate = int(_k6_figure(reqs, "count", path)), _k6_figure(reqs, "rate", path)
    latency: dict[str, float] = {}
    for key, name in (
        ("avg", "mean"),
        ("med", "p50"),
        ("p(50)", "p50"),
        ("p(95)", "p95"),
        ("p(99)", "p99"),
    ):
        if key in duration:
            latency[name] = _k6_figure(duration, key, path) / 1000.0
    failed = stats("http_req_failed")
    errors = (
        int(_k6_figure(failed, "passes", path))
        if "passes" in failed
        else round(
            _k6_figure({"rate": failed.get("rate", failed.get("value", 0.0))}, "rate", path) * count
        )
    )
    vus = _k6_figure(
        {"vus": stats("vus_max").get("value", stats("vus").get("max", 0)) or 0}, "vus", path
    )
    step = LoadStep(
        name="",
        start=0.0,
        end=count / rate if rate > 0 else 0.0,
        users=float(vus or 0),
        requests=count,
        errors=errors,
        throughput=rate,
        latency=latency,
    )
    return LoadTest(source=str(path), tool="k6", steps=[step], totals=[step])


_FRACTION = re.compile(r"\.(\d+)")


def _k6_time(value: Any, where: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    # k6 writes Go's RFC3339Nano (up to nine fraction digits); Python before 3.11 reads
    # exactly three or six.
    text = _FRACTION.sub(
        lambda m: "." + m.group(1)[:6].ljust(6, "0"),
        str(value).strip().replace("Z", "+00:00"),
        count=1,
    )
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise MeasurementError(
            f"{where}: data.time {value!r:.60} is not an RFC 3339 time"
        ) from None


def parse_k6_json(text: str, path: str | Path, class_tag: str = "name") -> LoadTest:
    """`k6 run --out json=FILE`: Point lines of http_req_duration (ms), http_req_failed and vus."""
    durations: list[tuple[float, float, str, bool]] = []
    vus: list[tuple[float, float]] = []
    skipped: list[str] = []
    usable = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            point = _k6_point(parse_json(raw, path, line_offset=number - 1), f"{path}:{number}")
        except MeasurementError as defect:
            skipped.append(str(defect))  # a truncated last line, a line another writer broke
            continue
        usable += 1
        if point is None:
            continue
        metric, time, value, tags = point
        if metric == "http_req_duration":
            status = str(tags.get("status", "200"))
            failed = not status.startswith(("2", "3"))
            durations.append((time, value / 1000.0, str(tags.get(class_tag, "")), failed))
        elif metric == "vus":
            vus.append((time, value))
    refuse_mostly_malformed(str(path), usable, skipped, "lines")
    if not durations:
        raise MeasurementError(
            f"{path}: no http_req_duration points; was it written by k6 run --out json?"
        )
    test = _steps_from_requests(str(path), "k6", durations, vus)
    return replace(test, skipped=tuple(skipped), records=usable + len(skipped))


def _k6_point(line: Any, where: str) -> tuple[str, float, float, dict[str, Any]] | None:
    """A k6 line's Point as (metric, time, value, tags); None for a Metric line."""
    if not isinstance(line, dict) or line.get("type") not in ("Point", "Metric"):
        raise MeasurementError(f"{where}: expected a k6 line with type Point or Metric")
    if line["type"] != "Point":
        return None
    data = line.get("data")
    if not isinstance(data, dict) or "time" not in data or "value" not in data:
        raise MeasurementError(f"{where}: a Point needs data.time and data.value")
    try:
        value = float(data["value"])
    except (TypeError, ValueError):
        raise MeasurementError(
            f"{where}: data.value {data['value']!r:.40} is not a number"
        ) from None
    tags = data.get("tags") or {}
    return (
        str(line.get("metric")),
        _k6_time(data["time"], where),
        value,
        tags if isinstance(tags, dict) else {},
    )


def _steps_from_requests(
    source: str,
    tool: str,
    requests: list[tuple[float, float, str, bool]],
    users: list[tuple[float, float]],
) -> LoadTest:
    requests.sort()
    times = np.array([r[0] for r in requests])
    values = np.array([r[1] for r in requests])
    names = np.array([r[2] for r in requests])
    errors = np.array([r[3] for r in requests])
    users.sort()
    level = np.zeros(times.size)
    if users:
        user_times = np.array([u[0] for u in users])
        user_values = np.array([u[1] for u in users])
        index = np.searchsorted(user_times, times, side="right") - 1
        level = np.where(index >= 0, user_values[np.clip(index, 0, None)], user_values[0])
    # A step is a run of requests completed at one number of virtual users.
    edges: list[int] = [
        0,
        *(int(k) for k in np.flatnonzero(np.diff(level) != 0) + 1),
        int(times.size),
    ]
    steps = []
    for low, high in pairwise(edges):
        if high - low < 2:
            continue
        start, end = float(times[low]), float(times[high - 1])
        span = max(end - start, 1e-9)
        steps.append(
            LoadStep(
                name="",
                start=start,
                end=end,
                users=float(level[low]),
                requests=high - low,
                errors=int(errors[low:high].sum()),
                throughput=(high - low - 1) / span,
                latency=_percentiles(values[low:high]),
            )
        )
    whole = max(float(times[-1] - times[0]), 1e-9)
    totals = []
    for name in sorted(set(names.tolist())):
        mask = names == name
        totals.append(
            LoadStep(
                name=name,
                start=float(times[0]),
                end=float(times[-1]),
                users=float(level.max()),
                requests=int(mask.sum()),
                errors=int(errors[mask].sum()),
                throughput=float(mask.sum()) / whole,
                latency=_percentiles(values[mask]),
            )
        )
    completions = {
        name: tuple(float(t) for t in times[names == name]) for name in sorted(set(names.tolist()))
    }
    return LoadTest(source=source, tool=tool, steps=steps, totals=totals, completions=completions)


# --- Locust and CSV ---------------------------------------------------------------------------


def _not_csv(path: str | Path, line: int, error: csv.Error) -> MeasurementError:
    """The csv module's refusal (a field over its 131,072-character limit, say), located."""
    return MeasurementError(
        f"{path}:{line}: not readable as CSV ({error}); a measurement CSV holds one row of "
        "short fields per line"
    )


#: A CSV row with the line it is on.
Row = tuple[int, dict[str, str]]


def _rows(
    text: str, path: str | Path, required: tuple[str, ...], numbers: tuple[str, ...] = ()
) -> tuple[list[Row], list[str]]:
    """The CSV's rows (with their line numbers) that have every field and a number (or N/A)
    in each of the `numbers` columns they have, and a defect for each other row (docs/
    calibration.md, "Malformed records"); refused unless more than half are usable."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        rows, skipped = _read_rows(reader, path, required)
    except csv.Error as error:
        raise _not_csv(path, reader.reader.line_num, error) from None
    usable = []
    for line, row in rows:
        try:
            for column in numbers:
                if column in row:
                    _number(row, column, path, line)
        except MeasurementError as defect:
            skipped.append(str(defect))
            continue
        usable.append((line, row))
    refuse_mostly_malformed(str(path), len(usable), skipped, "rows")
    return usable, skipped


def _read_rows(
    reader: csv.DictReader[str], path: str | Path, required: tuple[str, ...]
) -> tuple[list[Row], list[str]]:
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in required if c not in columns]
    if missing:
        raise MeasurementError(
            f"{path}:1: missing column(s) {', '.join(missing)}; found {', '.join(columns)}"
        )
    rows: list[Row] = []
    skipped: list[str] = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            skipped.append(
                f"{path}:{reader.line_num}: the row has the wrong number of fields (truncated?)"
            )
            continue
        rows.append((reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items()}))
    if not rows and not skipped:
        raise MeasurementError(f"{path}: the CSV has a header but no rows")
    return rows, skipped


def _number(row: dict[str, str], column: str, path: str | Path, line: int) -> float:
    text = row.get(column, "")
    if text in ("", "N/A"):
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise MeasurementError(
            f"{path}:{line}: column {column!r} holds {text!r:.40}, not a number"
        ) from None
    if math.isinf(value) or value < 0 or value > 1e15:
        raise MeasurementError(
            f"{path}:{line}: column {column!r} holds {text!r:.40}; expected a finite number, "
            "0 or more"
        )
    return value


def _locust_latency(
    row: dict[str, str], path: str | Path, line: int, prefix: str = ""
) -> dict[str, float]:
    latency = {}
    for name, column in (("p50", "50%"), ("p95", "95%"), ("p99", "99%")):
        value = _number(row, column, path, line)
        if math.isfinite(value):
            latency[name] = value / 1000.0
    average = (
        _number(row, prefix + "Average Response Time", path, line)
        if (prefix + "Average Response Time") in row
        else math.nan
    )
    if math.isfinite(average):
        latency["mean"] = average / 1000.0
    return latency


def parse_locust_stats(text: str, path: str | Path) -> LoadTest:
    """Locust `--csv PREFIX` -> PREFIX_stats.csv: one row per request name, then Aggregated."""
    required = ("Name", "Request Count", "Failure Count", "Requests/s", "50%", "95%", "99%")
    rows, skipped = _rows(text, path, required, (*required[1:], "Average Response Time"))
    totals = []
    for line, row in rows:
        count = _number(row, "Request Count", path, line)
        rate = _number(row, "Requests/s", path, line)
        name = "" if row["Name"] == "Aggregated" else row["Name"]
        totals.append(
            LoadStep(
                name=name,
                start=0.0,
                end=count / rate if rate > 0 else 0.0,
                users=0.0,
                requests=int(count),
                errors=int(_number(row, "Failure Count", path, line)),
                throughput=rate,
                latency=_locust_latency(row, path, line),
            )
        )
    aggregated = [t for t in totals if t.name == ""] or totals[-1:]
    return LoadTest(
        source=str(path),
        tool="locust",
        steps=aggregated,
        totals=[t for t in totals if t.name] or aggregated,
        skipped=tuple(skipped),
        records=len(rows) + len(skipped),
    )


def parse_locust_history(text: str, path: str | Path, settle: float = 10.0) -> LoadTest:
    """PREFIX_stats_history.csv: a row a second per name and Aggregated. A step is a run of
    rows at one User Count; its throughput is from Total Request Count, its percentiles the
    median of Locust's rolling-window percentiles after the first `settle` seconds."""
    required = ("Timestamp", "User Count", "Name", "Total Request Count", "50%", "95%", "99%")
    numbers = (*required[:2], *required[3:], "Total Failure Count", "Total Average Response Time")
    rows, skipped = _rows(text, path, required, numbers)
    aggregated = [(line, row) for line, row in rows if row["Name"] == "Aggregated"]
    if not aggregated:
        raise MeasurementError(f"{path}: no Aggregated rows; is this a Locust _stats_history.csv?")
    points = [
        (
            _number(row, "Timestamp", path, line),
            _number(row, "User Count", path, line),
            _number(row, "Total Request Count", path, line),
            _number(row, "Total Failure Count", path, line)
            if "Total Failure Count" in row
            else 0.0,
            _locust_latency(row, path, line, prefix="Total "),
        )
        for line, row in aggregated
    ]
    steps = []
    start = 0
    for k in range(1, len(points) + 1):
        if k == len(points) or points[k][1] != points[start][1]:
            group = points[start:k]
            first, last = group[0], group[-1]
            if len(group) >= 3 and last[0] > first[0] and first[1] > 0:
                settled = [p for p in group if p[0] - first[0] >= settle] or group
                latency = {
                    name: float(np.median([p[4][name] for p in settled if name in p[4]]))
                    for name in PERCENTILES
                    if any(name in p[4] for p in settled)
                }
                times = [p[0] for p in group]
                requests, seconds = counted_since(times, [p[2] for p in group])
                steps.append(
                    LoadStep(
                        name="",
                        start=first[0],
                        end=last[0],
                        users=first[1],
                        requests=int(requests),
                        errors=int(counted_since(times, [p[3] or 0.0 for p in group])[0]),
                        throughput=requests / seconds if seconds > 0 else 0.0,
                        latency=latency,
                    )
                )
            start = k
    if not steps:
        raise MeasurementError(f"{path}: no load step of at least 3 rows at a constant User Count")
    # Users spawned a few a second pass through every count on the way to the next step: a run
    # shorter than `settle` is such a ramp, whose rolling-window percentiles are still the
    # previous step's, unless no run lasts that long (a test of short steps).
    steps = [step for step in steps if step.end - step.start >= settle] or steps
    return LoadTest(
        source=str(path),
        tool="locust",
        steps=steps,
        totals=_locust_named_totals(rows, path),
        skipped=tuple(skipped),
        records=len(rows) + len(skipped),
    )


def counted_since(times: list[float], totals: list[float]) -> tuple[float, float]:
    """What a running total counted from its first row to its last, and over how many seconds:
    the sum of its rises and the time they took. An interval in which it fell (Locust's
    `--reset-stats` zeroes its totals once a step's users have spawned) is left out, count and
    time, since what it counted before the reset is not known. Rows without a number are
    skipped."""
    rows = [(t, v) for t, v in zip(times, totals, strict=True) if math.isfinite(v)]
    counted = seconds = 0.0
    for (t0, before), (t1, after) in pairwise(rows):
        if after >= before:
            counted += after - before
            seconds += t1 - t0
    return counted, seconds


def _locust_named_totals(rows: list[Row], path: str | Path) -> list[LoadStep]:
    """Per request name (the rows other than Aggregated): its requests from the first to the
    last row, and their rate; what names the class a stepped test drove."""
    by_name: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, row in rows:
        if row["Name"] != "Aggregated":
            by_name.setdefault(row["Name"], []).append((line, row))
    totals = []
    for name, named in sorted(by_name.items()):
        (first_line, first), (last_line, last) = named[0], named[-1]
        start = _number(first, "Timestamp", path, first_line)
        end = _number(last, "Timestamp", path, last_line)
        requests = _number(last, "Total Request Count", path, last_line)
        totals.append(
            LoadStep(
                name=name,
                start=start,
                end=end,
                users=max(_number(row, "User Count", path, line) for line, row in named),
                requests=int(requests) if math.isfinite(requests) else 0,
                errors=0,
                throughput=requests / (end - start) if end > start else 0.0,
                latency={},
            )
        )
    return totals


#: The most rows (load steps) of a plain USL CSV: 10,000 fit in about 8 s.
MAX_USL_STEPS = 10_000


def parse_usl_csv(text: str, path: str | Path) -> LoadTest:
    """A plain CSV: a concurrency column (concurrency, users, vus or N) and a throughput column
    (throughput, rps or X); optional p50, p95, p99 columns in seconds."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _read_usl_csv(reader, path)
    except csv.Error as error:
        raise _not_csv(path, reader.reader.line_num, error) from None


def _read_usl_csv(reader: csv.DictReader[str], path: str | Path) -> LoadTest:
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    users_column = next(columns[c] for c in ("concurrency", "users", "vus", "n") if c in columns)
    rate_column = next(columns[c] for c in ("throughput", "rps", "x") if c in columns)
    steps: list[LoadStep] = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise MeasurementError(
                f"{path}:{line}: the row has the wrong number of fields (truncated?)"
            )
        users, rate = _number(row, users_column, path, line), _number(row, rate_column, path, line)
        if not (math.isfinite(users) and math.isfinite(rate)) or users <= 0 or rate < 0:
            raise MeasurementError(f"{path}:{line}: concurrency must be > 0 and throughput >= 0")
        latency = {
            name: _number(row, columns[name], path, line) for name in PERCENTILES if name in columns
        }
        if not all(math.isfinite(value) and value >= 0 for value in latency.values()):
            raise MeasurementError(
                f"{path}:{line}: the percentiles must be finite seconds, 0 or more"
            )
        if len(steps) >= MAX_USL_STEPS:
            raise ResourceLimitError(
                f"{path}: the CSV has more than {MAX_USL_STEPS:,} load steps, the most capsim "
                "fits (the fit and its bootstrap grow with the steps); a USL curve needs tens: "
                "average the rows of each concurrency into one"
            )
        steps.append(
            LoadStep(
                name="",
                start=0.0,
                end=0.0,
                users=users,
                requests=0,
                errors=0,
                throughput=rate,
                latency=latency,
            )
        )
    if not steps:
        raise MeasurementError(f"{path}: the CSV has a header but no rows")
    return LoadTest(source=str(path), tool="csv", steps=steps, totals=[])


def load_test_warning(test: LoadTest) -> str | None:
    """The warning for a load test's malformed lines or rows (None when there are none)."""
    if not test.skipped:
        return None
    noun = "lines" if test.tool == "k6" else "rows"
    return malformed_warning(test.source, test.skipped, test.records, noun)
