"""Calibration: a scenario from measurements (traces for the structure and service times,
Prometheus aggregates for demands), every figure with where it came from.

The result is plain data (`Calibration`): the scenario as a dict, a note per figure saying where
it came from (the YAML writer turns them into comments), and the summary's tables. The work is
in `calibration_traces` and `calibration_aggregates`; this module chooses between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from capsim.analysis.calibration_aggregates import (
    MetricNames,
    calibrate_aggregates,
    estimate_demands,
    histogram_bucket,
    histogram_quantile,
    read_aggregates,
)
from capsim.analysis.calibration_common import Calibration, latency_figures, scenario_name
from capsim.analysis.calibration_selfcalls import self_call_findings
from capsim.analysis.calibration_traces import analyse_traces, calibrate_traces, estimate_rate
from capsim.measurements import LoadTest, Measurement, MeasurementError, MetricsFile, Traces
from capsim.measurements.loadtests import load_test_warning
from capsim.measurements.otlp import skipped_warning

__all__ = [
    "Calibration",
    "MetricNames",
    "analyse_traces",
    "calibrate",
    "calibrate_aggregates",
    "calibrate_traces",
    "estimate_demands",
    "estimate_rate",
    "histogram_bucket",
    "histogram_quantile",
    "latency_figures",
    "read_aggregates",
    "scenario_name",
]


def calibrate(
    measurements: Sequence[Measurement],
    *,
    class_by: str | None = None,
    sampling: float | None = None,
    workers: dict[str, int] | None = None,
    metric_names: MetricNames | None = None,
    name: str = "calibrated",
) -> Calibration:
    """A scenario from traces when there are any (aggregates then cross-check demands), else from
    Prometheus aggregates; load tests alone cannot give a scenario, only their load steps."""
    traces = [m for m in measurements if isinstance(m, Traces)]
    metrics = [m for m in measurements if isinstance(m, MetricsFile)]
    loads = [m for m in measurements if isinstance(m, LoadTest)]
    if traces:
        result = calibrate_traces(traces, class_by, workers, name, sampling)
        result.warnings[:0] = filter(None, map(skipped_warning, traces))
        if metrics:
            aggregates = read_aggregates(metrics, metric_names)
            result.warnings.extend(aggregates.warnings)
            if aggregates.busy and aggregates.rates:
                result.summary["demands"] = [e.as_summary() for e in estimate_demands(aggregates)]
    elif metrics:
        result = calibrate_aggregates(metrics, metric_names, workers, name)
    else:
        raise MeasurementError(
            "load-test results alone give no tiers or service times: calibrate needs OTLP traces or "
            "Prometheus aggregates (use load tests with `capsim backtest` and `capsim fit-usl`)"
        )
    deadlocks = self_call_findings(result)
    if deadlocks:
        result.summary["deadlocks"] = deadlocks
        result.warnings.extend(found["sentence"] for found in deadlocks)
    result.warnings.extend(filter(None, map(load_test_warning, loads)))
    if loads:
        result.summary["load_steps"] = [
            {
                "source": lt.source,
                "tool": lt.tool,
                "users": s.users,
                "throughput": s.throughput,
                "requests": s.requests,
                "latency": s.latency,
            }
            for lt in loads
            for s in lt.steps
        ]
    return result
