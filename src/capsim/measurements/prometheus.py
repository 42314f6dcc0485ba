"""Prometheus `/api/v1/query_range` results (resultType matrix) as metric series."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from capsim.measurements.reading import (
    MeasurementError,
    malformed_warning,
    parse_json,
    refuse_mostly_malformed,
)
from capsim.measurements.types import MetricSeries, MetricsFile


def parse_prometheus(text: str, path: str | Path) -> MetricsFile:
    document = parse_json(text, path)
    if not isinstance(document, dict):
        raise MeasurementError(f"{path}: a Prometheus result is a JSON object with status and data")
    if document.get("status") != "success":
        error = document.get("error", "")
        raise MeasurementError(
            f"{path}: the query did not succeed (status {document.get('status')!r}"
            + (f", error {str(error)[:200]!r}" if error else "")
            + "); save the result of a successful /api/v1/query_range call"
        )
    data = document.get("data")
    if not isinstance(data, dict) or "result" not in data:
        raise MeasurementError(f"{path}: 'data' must hold 'resultType' and 'result'")
    if data.get("resultType") != "matrix":
        raise MeasurementError(
            f"{path}: resultType is {data.get('resultType')!r}; capsim reads range queries "
            "(/api/v1/query_range, resultType matrix), which give a value per step"
        )
    result = data["result"]
    if not isinstance(result, list):
        raise MeasurementError(f"{path}: data.result must be a list of series")
    skipped: list[str] = []
    series = [_series(item, f"{path}: data.result[{n}]", skipped) for n, item in enumerate(result)]
    samples = sum(len(item.get("values") or []) for item in result if isinstance(item, dict))
    refuse_mostly_malformed(str(path), samples - len(skipped), skipped, "samples")
    if not series:
        raise MeasurementError(f"{path}: the query returned no series")
    if not any(item.values for item in series):
        raise MeasurementError(
            f"{path}: none of its {samples:,} samples in {len(series)} series is a finite "
            'number (every one is "NaN" or "+Inf"/"-Inf", or there are none): nothing was '
            "measured; check the query (a rate of a missing counter, a division by zero) and "
            "its range"
        )
    warnings = document.get("warnings") or []
    return MetricsFile(
        source=str(path),
        series=series,
        warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
        malformed=malformed_warning(str(path), skipped, samples, "samples") if skipped else None,
    )


def _series(item: Any, where: str, skipped: list[str]) -> MetricSeries:
    """One series; a malformed sample (not a [timestamp, "value"] pair, a value that is not a
    number, a timestamp that is not finite) is left out and described in `skipped`."""
    if isinstance(item, dict) and "values" not in item and "histograms" in item:
        raise MeasurementError(
            f"{where}: the series holds native histograms ('histograms'), which capsim does "
            "not read; save a classic histogram's buckets instead (sum by (le, route) "
            "(rate(..._bucket[1m])), a series per 'le'), or leave the latency file out"
        )
    if not isinstance(item, dict) or "values" not in item:
        raise MeasurementError(f"{where}: a matrix series needs 'metric' and 'values'")
    labels = item.get("metric") or {}
    if not isinstance(labels, dict):
        raise MeasurementError(f"{where}: 'metric' must be an object of labels")
    times: list[float] = []
    values: list[float] = []
    for k, pair in enumerate(item["values"] or []):
        if not isinstance(pair, list) or len(pair) != 2:
            skipped.append(f'{where}.values[{k}]: expected [timestamp, "value"]')
            continue
        try:
            time, value = float(pair[0]), float(pair[1])
        except (TypeError, ValueError):
            skipped.append(
                f"{where}.values[{k}]: expected a number timestamp and a numeric string, "
                f"found {pair!r:.80}"
            )
            continue
        if not math.isfinite(time):
            skipped.append(
                f"{where}.values[{k}]: the timestamp {pair[0]!r:.40} is not a finite number of "
                "seconds since the epoch"
            )
            continue
        if math.isfinite(value):
            # Prometheus times are in milliseconds: rounding to them matches the samples of
            # files queried over the same range and step despite float noise in the JSON.
            times.append(round(time, 3))
            values.append(value)
    return MetricSeries(
        labels={str(k): str(v) for k, v in labels.items()}, times=tuple(times), values=tuple(values)
    )
