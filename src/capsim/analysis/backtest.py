"""Backtest: the model's predictions at the measured load against the measurements.

Acceptance rule (docs/calibration.md#backtest): every compared utilization within
`utilization_tolerance` and every latency percentile within `latency_tolerance`, both as
relative errors (predicted - measured) / measured; a utilization also passes within
`UTILIZATION_SLACK` (one point) of the measured one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capsim.analysis.calibration import (
    MetricNames,
    analyse_traces,
    estimate_rate,
    histogram_bucket,
    histogram_quantile,
    latency_figures,
    read_aggregates,
)
from capsim.analysis.calibration_common import scenario_name
from capsim.analysis.calibration_traces import duplicates_warning
from capsim.analysis.summary import fewest_samples
from capsim.measurements import LoadStep, LoadTest, Measurement, MetricsFile, Traces
from capsim.measurements.loadtests import load_test_warning
from capsim.measurements.otlp import skipped_warning

PERCENTILES = ("p50", "p95", "p99")
#: A utilization also passes when predicted and measured differ by at most this (one point):
#: at 5% busy, a 10% relative tolerance is half a point, less than the noise of either figure.
UTILIZATION_SLACK = 0.01


@dataclass
class MeasuredLoad:
    """What was measured: per class its rate (and profile), latency percentiles; per tier its
    busy cores (busy time per second)."""

    rates: dict[str, float] = field(default_factory=dict)
    profiles: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    # Values a class's measured percentiles come from (root spans, a load test's requests);
    # absent where the measurements do not say (a Prometheus histogram's rates).
    samples: dict[str, int] = field(default_factory=dict)
    #: What reading the measurements changed (raw counters read as rates, and so on).
    warnings: list[str] = field(default_factory=list)
    #: Per class and percentile, the histogram bucket a percentile measured from a Prometheus
    #: histogram falls in: the measurement's resolution.
    buckets: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


def measured_load(
    measurements: Sequence[Measurement],
    class_by: str | None = None,
    metric_names: MetricNames | None = None,
    sampling: float | None = None,
) -> MeasuredLoad:
    load = MeasuredLoad()
    traces = [m for m in measurements if isinstance(m, Traces)]
    if traces:
        analysis = analyse_traces(traces, class_by, sampling)
        start, end = analysis.window
        length = max(end - start, 1e-9)
        spans = sum(len(info["arrivals"]) for info in analysis.classes.values())
        for cls, info in analysis.classes.items():
            estimate = estimate_rate(info["arrivals"], analysis.window, spans, analysis.sampling)
            load.rates[cls] = estimate.rate
            if estimate.profile:
                load.profiles[cls] = estimate.profile
            load.latency[cls] = latency_figures(np.array(info["latency"]))
            load.sources[cls] = "traces"
            load.samples[cls] = len(info["latency"])
        load.warnings.extend(filter(None, map(skipped_warning, traces)))
        if analysis.duplicates:
            load.warnings.append(duplicates_warning(analysis.duplicates))
        if analysis.sampling < 1.0:
            load.warnings.append(
                f"traces sampled at {analysis.sampling:.4g} (tracestate or --trace-sampling): "
                "measured rates and utilizations divided by it"
            )
        for v in analysis.visits:
            kept = v.self_time / analysis.sampling  # a sampled trace stands for 1 / sampling
            load.busy[v.tier] = load.busy.get(v.tier, 0.0) + kept / length
    metrics = [m for m in measurements if isinstance(m, MetricsFile)]
    if metrics:
        aggregates = read_aggregates(metrics, metric_names)
        load.warnings.extend(aggregates.warnings)
        for cls, series in aggregates.rates.items():
            load.rates.setdefault(cls, float(np.mean(list(series.values()))))
            load.sources.setdefault(cls, "prometheus")
        for cls, buckets in aggregates.histograms.items():
            if cls not in load.latency or not load.latency[cls]:
                load.latency[cls] = {
                    p: histogram_quantile(buckets, int(p[1:]) / 100) for p in PERCENTILES
                }
                load.buckets[cls] = {
                    p: bucket
                    for p in PERCENTILES
                    if (bucket := histogram_bucket(buckets, int(p[1:]) / 100)) is not None
                }
        for tier, busy in aggregates.busy.items():
            load.busy[tier] = float(np.mean(list(busy.values())))
    tests = [m for m in measurements if isinstance(m, LoadTest)]
    load.warnings.extend(filter(None, map(load_test_warning, tests)))
    for test in _single_loads(measurements, load.warnings):
        for total in test.totals or test.steps:
            cls = total.name or "*"
            _load_test_profile(load, cls, test.completions.get(total.name, ()))
            load.rates.setdefault(cls, total.throughput)
            load.latency.setdefault(cls, total.latency)
            if load.sources.setdefault(cls, test.tool) == test.tool and total.requests > 0:
                load.samples.setdefault(cls, total.requests)
    return load


def is_whole_run(test: LoadTest) -> bool:
    """Totals of a whole test with no time in them (Locust's _stats.csv, k6's summary export,
    whose users are its `vus_max`): steps of a load-test tool that start at 0."""
    return test.tool in ("k6", "locust") and all(step.start == 0 for step in test.steps)


def _single_loads(measurements: Sequence[Measurement], warnings: list[str]) -> list[LoadTest]:
    """The load tests compared as one load each: not stepped, and not the whole-run totals of a
    test whose steps another file of the same tool gives (Locust writes _stats.csv beside
    _stats_history.csv): those totals mix every step's load, so no single simulated load can
    match them, and the steps are compared instead (a note says so)."""
    tests = [m for m in measurements if isinstance(m, LoadTest)]
    stepped_tools = {t.tool: t.source for t in tests if is_stepped(t)}
    single = []
    for test in tests:
        if is_stepped(test):
            continue
        if is_whole_run(test) and test.tool in stepped_tools:
            warnings.append(
                f"{test.source} ({test.tool}): the totals of the whole test, whose load steps "
                f"{stepped_tools[test.tool]} gives: compared step by step from that file, not "
                "as one load (its rate and percentiles mix every step's)"
            )
            continue
        if is_whole_run(test) and test.tool == "locust":
            warnings.append(
                f"{test.source} (locust): the totals of the whole test, compared as one load at "
                "its mean rate: right for a test at one number of users; for a test in steps "
                "of users, give its _stats_history.csv, whose steps are compared one by one"
            )
        single.append(test)
    return single


def _load_test_profile(load: MeasuredLoad, cls: str, completions: Sequence[float]) -> None:
    """The rate and profile of a load test that records each request (k6 --out json), when its
    rate changed (an arrival-rate ramp): measured as traces measure theirs, from the requests'
    times, so the simulation follows the ramp instead of holding its mean."""
    if cls in load.rates or len(completions) < 2:
        return
    estimate = estimate_rate(completions, (min(completions), max(completions)))
    if estimate.profile:
        load.rates[cls] = estimate.rate
        load.profiles[cls] = estimate.profile


@dataclass(frozen=True)
class Comparison:
    what: str  # "class" or "tier"
    name: str
    figure: str  # p50, p95, p99, utilization
    measured: float
    predicted: float
    tolerance: float
    slack: float = 0.0  # an absolute difference that passes whatever the relative error
    samples: int | None = None  # values the measured percentile comes from, when known
    predicted_low_sample: bool = False  # the simulation's percentile is flagged low_sample
    #: The histogram bucket (lower, upper) a percentile measured from a histogram falls in:
    #: the measurement places it no closer, so a prediction within tolerance of the bucket
    #: passes (docs/calibration.md#backtest).
    bucket: tuple[float, float] | None = None

    @property
    def measured_low_sample(self) -> bool:
        """A q-percentile measured from fewer than 10 / (1 - q) values (the `low_sample` rule
        of capsim run's results)."""
        if self.samples is None or self.figure not in PERCENTILES:
            return False
        return self.samples < fewest_samples(int(self.figure[1:]) / 100)

    @property
    def low_sample(self) -> bool:
        """The measured or the simulated percentile rests on too few values: the row cannot
        confirm the model."""
        return self.measured_low_sample or self.predicted_low_sample

    @property
    def error(self) -> float:
        if self.measured == 0:
            return 0.0 if self.predicted == 0 else math.inf
        return (self.predicted - self.measured) / self.measured

    @property
    def passed(self) -> bool:
        return math.isfinite(self.predicted) and (
            abs(self.error) <= self.tolerance
            or abs(self.predicted - self.measured) <= self.slack
            or self.within_bucket
        )

    @property
    def within_bucket(self) -> bool:
        """The prediction is within tolerance of the histogram bucket the measured percentile
        falls in (the measurement cannot tell it from any value of the bucket)."""
        if self.bucket is None or not math.isfinite(self.predicted):
            return False
        low, high = self.bucket
        return low * (1 - self.tolerance) <= self.predicted <= high * (1 + self.tolerance)


#: The methods OpenTelemetry's HTTP server spans are named after (`GET /search`), which
#: `capsim calibrate` turns into classes such as `GET_search`.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def matching_class(name: str, scenario_classes: Sequence[str]) -> str | None:
    """The scenario class a measured name stands for: the same name, the name made
    scenario-safe (`/api/search` -> `api_search`), or its last path segment (a k6 URL
    `https://shop.example/search` or a Locust `/search` -> `search`); else the one class
    named by an HTTP method and one of those (`GET_search`: a class calibrated from spans
    named `GET /search`), when a single method's class matches."""
    if not name:
        return None
    path = name.split("?", 1)[0].rstrip("/")
    candidates = (name, scenario_name(name), scenario_name(path.rsplit("/", 1)[-1]))
    for candidate in candidates:
        if candidate in scenario_classes:
            return candidate
    for candidate in candidates[1:]:
        by_method = {f"{method}_{candidate}" for method in HTTP_METHODS} & set(scenario_classes)
        if len(by_method) == 1:
            return by_method.pop()
    return None


def class_mapping(
    measured: Sequence[str], scenario_classes: Sequence[str], open_classes: Sequence[str]
) -> dict[str, str]:
    """Measured class -> scenario class: the same name (`matching_class`); a single unnamed
    total, or the only measured
    class when no name matches, goes to the scenario's only open class."""
    mapping = {}
    for name in measured:
        found = matching_class(name, scenario_classes)
        if found is not None:
            mapping[name] = found
    if "*" in measured and len(open_classes) == 1:
        mapping["*"] = open_classes[0]
    if not mapping and len(measured) == 1 and len(open_classes) == 1:
        mapping[next(iter(measured))] = open_classes[0]
    return mapping


def load_overrides(load: MeasuredLoad, mapping: dict[str, str], warmup: float) -> list[str]:
    """`--set` overrides that put the measured rates (and profiles) in the scenario; a class
    measured without a profile loses the scenario's own (it is simulated at the measured
    rate)."""
    overrides = []
    for measured, cls in mapping.items():
        profile = load.profiles.get(measured)
        # with a profile, `rate` repeats its first point (the profile sets the rate)
        rate = profile[0][1] if profile else load.rates[measured]
        overrides.append(f"traffic.{cls}.rate={rate:.6g}/s")
        if profile:
            points = [f"{{at: 0s, rate: {profile[0][1]:.6g}/s}}"] + [
                f"{{at: {warmup + at:.6g}s, rate: {rate:.6g}/s}}" for at, rate in profile
            ]
            overrides.append(f"traffic.{cls}.profile=[{', '.join(points)}]")
        else:
            # measured without a profile (Prometheus, a load test's summary): the measured rate
            # is what is simulated, not the scenario's own profile, which would override it
            overrides.append(f"traffic.{cls}.profile=null")
    return overrides


def _figure(value: Any) -> float:
    """A predicted figure, NaN where the simulation has none (no request completed): the row
    then fails as 'no prediction' instead of crashing."""
    return math.nan if value is None else float(value)


def compare(
    load: MeasuredLoad,
    mapping: dict[str, str],
    report: dict[str, Any],
    workers: dict[str, int],
    latency_tolerance: float,
    utilization_tolerance: float,
) -> list[Comparison]:
    rows = []
    for measured, cls in sorted(mapping.items(), key=lambda item: item[1]):
        predicted = report["classes"].get(cls, {}).get("latency", {})
        predicted_low = set(report["classes"].get(cls, {}).get("low_sample", ()))
        for figure in PERCENTILES:
            value = load.latency.get(measured, {}).get(figure)
            if value is not None and math.isfinite(value):
                rows.append(
                    Comparison(
                        what="class",
                        name=cls,
                        figure=figure,
                        measured=value,
                        predicted=_figure(predicted.get(figure)),
                        tolerance=latency_tolerance,
                        samples=load.samples.get(measured),
                        predicted_low_sample=f"latency.{figure}" in predicted_low,
                        bucket=load.buckets.get(measured, {}).get(figure),
                    )
                )
    for tier, busy in sorted(load.busy.items()):
        if tier in report["tiers"] and tier in workers:
            rows.append(
                Comparison(
                    what="tier",
                    name=tier,
                    figure="utilization",
                    measured=busy / workers[tier],
                    predicted=_figure(report["tiers"][tier].get("utilization")),
                    tolerance=utilization_tolerance,
                    slack=UTILIZATION_SLACK,
                )
            )
    return rows


def verdict(rows: Sequence[Comparison]) -> bool:
    """The backtest passes when no row is off and at least one row can confirm the model: rows
    of low-sample percentiles do not count toward a pass (an OFF one still fails it)."""
    return all(r.passed for r in rows) and any(not r.low_sample for r in rows)


def is_stepped(test: LoadTest) -> bool:
    """A load test of two or more steps at known numbers of users: backtested step by step."""
    return sum(1 for step in test.steps if step.users > 0) >= 2


def step_class(
    test: LoadTest, scenario_classes: Sequence[str], open_classes: Sequence[str]
) -> str | None:
    """The scenario class a stepped load test drives: a request name that is a class, else the
    scenario's only open class."""
    for total in test.totals:
        found = matching_class(total.name, scenario_classes)
        if found is not None:
            return found
    return open_classes[0] if len(open_classes) == 1 else None


def step_override(cls: str, entry: str, users: float, think_time: float) -> str:
    """The class as a closed loop of the step's users (what a load generator is)."""
    return f"traffic.{cls}={{entry: {entry}, users: {max(round(users), 1)}, think_time: {think_time:.9g}s}}"


#: A step whose requests in flight (throughput x mean latency, Little's law) are below this
#: share of its users did not keep its users busy with zero think time.
BUSY_USERS = 0.8


def idle_users_note(steps: Sequence[LoadStep], think: float) -> str | None:
    """A note naming the steps whose users cannot all have been a closed loop with `think`
    seconds between requests: by Little's law such users keep throughput x (mean latency +
    think) of them busy, and in these steps that is far below their number."""
    idle = []
    for step in steps:
        latency = step.latency.get("mean", step.latency.get("p50"))
        if latency is None or not math.isfinite(latency) or step.users <= 0:
            continue
        busy = step.throughput * (latency + think)
        if busy < BUSY_USERS * step.users:
            idle.append(f"{busy:.3g} of {step.users:g}")
    if not idle:
        return None
    return (
        f"users kept busy by Little's law (throughput x (mean latency + think time)): "
        f"{', '.join(idle)} in {len(idle)} steps: the users were not a closed loop with this "
        "think time; give --think-time, or backtest an arrival-rate test (k6's VUs are then a "
        "pool) from its traces or Prometheus series"
    )


def compare_step(
    step: LoadStep,
    cls: str,
    predicted: dict[str, Any],
    latency_tolerance: float,
    throughput_tolerance: float,
) -> list[Comparison]:
    name = f"{cls} @ {step.users:g} users"
    rows = [
        Comparison(
            what="step",
            name=name,
            figure="throughput",
            measured=step.throughput,
            predicted=float(predicted.get("throughput", math.nan)),
            tolerance=throughput_tolerance,
        )
    ]
    for figure in PERCENTILES:
        value = step.latency.get(figure)
        if value is not None and math.isfinite(value):
            rows.append(
                Comparison(
                    what="step",
                    name=name,
                    figure=figure,
                    measured=value,
                    predicted=float(predicted.get("latency", {}).get(figure, math.nan)),
                    tolerance=latency_tolerance,
                    samples=step.requests if step.requests > 0 else None,
                    predicted_low_sample=f"latency.{figure}" in predicted.get("low_sample", ()),
                )
            )
    return rows
