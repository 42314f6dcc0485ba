"""Measurements in: traces, metrics and load-test results read into plain data (no fitting here).

Sits at the bottom of the layers beside `capsim.scenario`: it reads files and knows their
formats; `capsim.analysis.calibration` turns what it reads into figures and scenarios.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from capsim.measurements.reading import (
    DEFAULT_MAX_INPUT,
    FORMATS,
    MeasurementError,
    decode_text,
    detect_format,
    gunzipped,
    read_capped,
)
from capsim.measurements.types import (
    LoadStep,
    LoadTest,
    Measurement,
    MetricSeries,
    MetricsFile,
    Span,
    Traces,
)

__all__ = [
    "DEFAULT_MAX_INPUT",
    "FORMATS",
    "LoadStep",
    "LoadTest",
    "Measurement",
    "MeasurementError",
    "MetricSeries",
    "MetricsFile",
    "Span",
    "Traces",
    "read_measurement",
    "read_measurements",
]


def read_measurement(
    path: str | Path, input_format: str | None = None, cap: int = DEFAULT_MAX_INPUT
) -> Measurement:
    """One measurement file, its format told from the content unless `input_format` forces it."""
    from capsim.measurements import loadtests, otlp, prometheus

    data = gunzipped(read_capped(path, cap), path, cap)
    kind = input_format or detect_format(data, path)
    if kind not in FORMATS:
        raise MeasurementError(
            f"unknown input format {kind!r}; expected one of {', '.join(FORMATS)}"
        )
    if kind == "otlp-proto":
        return otlp.parse_otlp_proto(data, path)
    text = decode_text(data, path)
    parsers: dict[str, Callable[[str, str | Path], Measurement]] = {
        "otlp-json": otlp.parse_otlp_json,
        "prometheus": prometheus.parse_prometheus,
        "k6-summary": loadtests.parse_k6_summary,
        "k6-json": loadtests.parse_k6_json,
        "locust-stats": loadtests.parse_locust_stats,
        "locust-history": loadtests.parse_locust_history,
        "csv": loadtests.parse_usl_csv,
    }
    try:
        return parsers[kind](text, path)
    except (KeyError, TypeError, AttributeError, StopIteration) as error:
        # A forced format the content does not follow, or a missing field deep in a document.
        raise MeasurementError(
            f"{path}: not a valid {kind} file: missing or wrong field ({error!r:.120})"
        ) from None


def read_measurements(
    paths: Sequence[str | Path], input_format: str | None = None, cap: int = DEFAULT_MAX_INPUT
) -> list[Measurement]:
    return [read_measurement(path, input_format, cap) for path in paths]
