"""Calibration from Prometheus aggregates: rates, busy CPU and histograms; service demands by
non-negative least squares over intervals."""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capsim.analysis.calibration_common import (
    Calibration,
    Path_,
    duration_text,
    rate_text,
    scenario_name,
)
from capsim.analysis.fitting import mean_interval
from capsim.measurements import MeasurementError, MetricSeries, MetricsFile
from capsim.textsafe import visible


@dataclass(frozen=True)
class MetricNames:
    """How Prometheus series are told apart (docs/calibration.md#prometheus): a series' name is
    its `__name__` label, else its file's name; patterns are regular expressions searched in it."""

    rate: str = r"request|_total|_count|rate|throughput|rps|qps"
    cpu: str = r"cpu|busy|utili[sz]ation"
    latency: str = r"_bucket"
    tier_labels: tuple[str, ...] = (
        "tier",
        "service",
        "service_name",
        "job",
        "container",
        "app",
    )
    class_labels: tuple[str, ...] = (
        "class",
        "route",
        "http_route",
        "handler",
        "endpoint",
        "name",
        "uri",
        "path",
        "operation",
    )
    #: The CPU series are utilizations (busy fraction of the tier's workers) rather than busy
    #: cores; they are multiplied by the tier's workers (`workers`, default 1).
    cpu_utilization: bool = False
    workers: tuple[tuple[str, int], ...] = ()


@dataclass
class Aggregates:
    rates: dict[str, dict[float, float]]  # class -> time -> requests/s
    entries: dict[str, str]
    busy: dict[str, dict[float, float]]  # tier -> time -> busy cores (CPU seconds per second)
    histograms: dict[str, dict[float, float]]  # class -> le -> summed bucket rate
    sources: list[str]
    #: What the reading changed and the user should know (raw counters read as rates, a
    #: histogram without a class given to the only class).
    warnings: list[str] = field(default_factory=list)


#: A series that keeps a counter's name (rate() and the other range functions drop
#: `__name__`) is the counter itself when its values never fall but at resets.
_COUNTER_NAME = re.compile(r"(_total|_count|_bucket)$")


def counter_rates(
    labels: dict[str, str], times: Sequence[float], values: Sequence[float]
) -> tuple[list[float], list[float], int] | None:
    """A raw counter's per-second increase between samples, as rate() reads it (a fall is a
    reset: the increase is the new value), with the number of resets; None when the series is
    not a raw counter (no counter name, negative values, or values that fall more often than
    restarts would). A flat one is a counter that did not move: no requests, not a rate."""
    name = labels.get("__name__", "")
    if not _COUNTER_NAME.search(name) or len(values) < 3:
        return None
    falls = sum(1 for a, b in itertools.pairwise(values) if b < a)
    if falls > max(1, (len(values) - 1) // 20) or min(values) < 0:
        return None
    rate_times, rates = [], []
    for (t0, v0), (t1, v1) in itertools.pairwise(zip(times, values, strict=True)):
        if t1 <= t0:
            continue
        rate_times.append(t1)
        rates.append((v1 - v0 if v1 >= v0 else v1) / (t1 - t0))
    return rate_times, rates, falls


def _first_label(labels: dict[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def _query_warnings(file: MetricsFile) -> str:
    """Prometheus' own warnings about a query it answered (a store that did not respond, a
    limit hit): its data may be partial, which nothing else in the file shows."""
    shown = "; ".join(visible(w[:200]) for w in file.warnings[:3])
    more = f" (and {len(file.warnings) - 3} more)" if len(file.warnings) > 3 else ""
    return (
        f"{visible(file.source)}: Prometheus answered the query with warnings, so its data may be "
        f"partial: {shown}{more}"
    )


def read_aggregates(files: Sequence[MetricsFile], names: MetricNames | None = None) -> Aggregates:
    from pathlib import Path

    names = names or MetricNames()
    rates: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    entry_rates: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    busy: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    histograms: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    rate_sources: set[str] = set()
    warnings: list[str] = [file.malformed for file in files if file.malformed]
    warnings += [_query_warnings(file) for file in files if file.warnings]
    #: each series' sample times, per summed figure: ("CPU", tier) or ("request rate", class)
    summed: dict[tuple[str, str], list[tuple[float, ...]]] = defaultdict(list)
    for file in files:
        for series in file.series:
            metric = series.labels.get("__name__") or Path(file.source).stem
            series = _as_rates(series, file.source, warnings)
            tier = _first_label(series.labels, names.tier_labels)
            cls = _first_label(series.labels, names.class_labels)
            tier = scenario_name(tier) if tier else None
            cls = scenario_name(cls) if cls else None
            if "le" in series.labels or re.search(names.latency, metric):
                le = _bucket_bound(series.labels.get("le", "nan"), metric)
                for value in series.values:
                    histograms[cls or "requests"][le] += value
            elif re.search(names.cpu, metric):
                if tier is None:
                    raise MeasurementError(
                        f"{file.source}: CPU series {series.labels} has none of the tier labels "
                        f"{', '.join(names.tier_labels)}; name the label with --tier-label"
                    )
                for t, value in zip(series.times, series.values, strict=True):
                    busy[tier][t] += value * (
                        dict(names.workers).get(tier, 1) if names.cpu_utilization else 1
                    )
                summed[("CPU", tier)].append(series.times)
            elif re.search(names.rate, metric):
                name = cls or "requests"
                for t, value in zip(series.times, series.values, strict=True):
                    rates[name][t] += value
                rate_sources.add(file.source)
                summed[("request rate", name)].append(series.times)
                if tier:
                    entry_rates[name][tier] += sum(series.values)
            else:
                raise MeasurementError(
                    f"{file.source}: cannot tell what series {metric!r} measures (labels {series.labels}); "
                    "its name should match --rate-metric, --cpu-metric or --latency-metric"
                )
    for (what, key), series_times in summed.items():
        partial = _partial_times(series_times)
        table = busy if what == "CPU" else rates
        for t in partial:
            table[key].pop(t, None)
        if partial:
            warnings.append(
                f"{what} of {key}: {len(partial)} of its timestamps left out: one of its "
                f"{len(series_times)} series has no sample there (a failed scrape, a NaN) but has "
                "samples before and after, so the sum there would miss it"
            )
    warnings += _ranges_apart(rates, busy)
    entries = {cls: max(tiers, key=tiers.get) for cls, tiers in entry_rates.items()}  # type: ignore[arg-type]
    only = [cls for cls in rates if cls != "requests"]
    if "requests" in histograms and len(only) == 1 and only[0] not in histograms:
        # `sum by (le)` drops the route: with one class of requests, it is that class's.
        histograms[only[0]] = histograms.pop("requests")
        warnings.append(
            f"the latency histogram has no class label; it is taken as the only class's, {only[0]}"
        )
    return Aggregates(
        rates={k: dict(v) for k, v in rates.items()},
        entries=entries,
        busy={k: dict(v) for k, v in busy.items()},
        histograms={k: dict(v) for k, v in histograms.items()},
        sources=sorted(rate_sources),
        warnings=warnings,
    )


def _ranges_apart(
    rates: dict[str, dict[float, float]], busy: dict[str, dict[float, float]]
) -> list[str]:
    """A warning when the request rates and a tier's CPU were queried over ranges that overlap
    in less than 90% of what they cover together: the demands come from the overlap only, and a
    backtest would compare means over different windows."""
    rate_times = [t for series in rates.values() for t in series]
    if not rate_times:
        return []
    first, last = min(rate_times), max(rate_times)
    apart = []
    for tier, series in sorted(busy.items()):
        if not series:
            continue
        start, end = min(series), max(series)
        union = max(last, end) - min(first, start)
        shared = max(min(last, end) - max(first, start), 0.0)
        if union > 0 and shared < 0.9 * union:
            apart.append(f"{tier} {start:.0f} to {end:.0f}")
    if not apart:
        return []
    return [
        f"the request rates cover {first:.0f} to {last:.0f} (Unix seconds) but the CPU of "
        f"{'; '.join(apart)}: query every file over the same range and step; the demands "
        "come from the timestamps they share, and their means (the backtest's rates and "
        "utilizations) are over different windows"
    ]


def _partial_times(series_times: list[tuple[float, ...]]) -> set[float]:
    """The times at which one of several summed series has no sample although it has samples
    before and after (a failed scrape of one pod, a NaN): the sum there is partial. A series
    that starts late or ends early (a pod replaced in a rollout) leaves no such gap."""
    if len(series_times) < 2:
        return set()
    every = sorted(set().union(*series_times))
    partial: set[float] = set()
    for times in (t for t in series_times if t):
        have, first, last = set(times), min(times), max(times)
        partial.update(t for t in every if first < t < last and t not in have)
    return partial


def _as_rates(series: MetricSeries, source: str, warnings: list[str]) -> MetricSeries:
    """A raw counter (its name kept, values that only rise but at resets) as its per-second
    increase; any other series as it is."""
    found = counter_rates(series.labels, series.times, series.values)
    if found is None:
        return series
    times, values, resets = found
    labels = {k: v for k, v in series.labels.items() if k != "__name__"}
    warnings.append(
        f"{source}: {series.labels['__name__']}{_label_text(labels)} is a raw counter (its name "
        "kept, its values never falling"
        + (f" but at {resets} reset{'s' if resets > 1 else ''}" if resets else "")
        + "): read as its per-second increase between samples, as rate() would; query "
        "rate(...) to choose the window yourself"
    )
    return MetricSeries(labels=series.labels, times=tuple(times), values=tuple(values))


def _label_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


#: A histogram in milliseconds (OpenTelemetry's older `http_server_duration_milliseconds`):
#: its bucket bounds are divided by 1000.
_MILLISECONDS = re.compile(r"millisecond|_ms(_|$)")


def _bucket_bound(le: str, metric: str) -> float:
    """A bucket's upper bound in seconds (`+Inf`: the total)."""
    try:
        bound = float(le)
    except ValueError:
        raise MeasurementError(
            f"series {metric!r}: le={le!r} is not a bucket bound (a number or +Inf)"
        ) from None
    return bound / 1000.0 if _MILLISECONDS.search(metric) and math.isfinite(bound) else bound


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the cumulative bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return bounds[-1]


def histogram_bucket(buckets: dict[float, float], q: float) -> tuple[float, float] | None:
    """The bucket (lower, upper bound) the q-quantile falls in: all a histogram knows of it
    (histogram_quantile's linear interpolation places it inside, as if the values were spread
    evenly). None when the histogram is empty or the quantile is in the `+Inf` bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    previous_bound = 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            return None if math.isinf(bound) else (previous_bound, bound)
        previous_bound = bound
    return None


@dataclass(frozen=True)
class DemandEstimate:
    """Service demand (busy seconds per request) of each class at one tier, by non-negative
    least squares of busy cores on class throughputs over intervals, with 95% intervals."""

    tier: str
    demands: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    background: float
    intervals_used: int
    r_squared: float
    method: str
    #: Why the 95% intervals are unknown (then each is (0, inf)): as many intervals as the
    #: fit's parameters leave no residual to estimate its error from; None when they are known.
    interval_unknown: str | None = None

    def as_summary(self) -> dict[str, Any]:
        """The summary's `demands` entry (docs/calibration.md, "The summary's figures"): an
        unknown interval is null, with the reason beside it, never a zero-width interval."""
        known = self.interval_unknown is None
        return {
            "tier": self.tier,
            "demands": self.demands,
            "intervals": {c: list(v) if known else None for c, v in self.intervals.items()},
            "interval_unknown": self.interval_unknown,
            "background": self.background,
            "intervals_used": self.intervals_used,
            "r_squared": self.r_squared,
            "method": self.method,
        }


@dataclass(frozen=True)
class _Fit:
    """Non-negative least squares of y on a design: coefficients, their standard errors, the
    residual sum of squares, the degrees of freedom and the Student t quantile for 95%."""

    coefficients: np.ndarray
    errors: np.ndarray
    residual_ss: float
    dof: int
    t: float

    def low(self, k: int) -> float:
        return float(self.coefficients[k] - self.t * self.errors[k])


def _nnls(design: np.ndarray, y: np.ndarray) -> _Fit:
    from scipy import optimize, stats

    coefficients, _ = optimize.nnls(design, y)
    residuals = y - design @ coefficients
    dof = len(y) - design.shape[1]
    if dof < 1:
        # As many intervals as parameters: the fit passes through every point, its residuals
        # are 0 whatever the noise, and its error cannot be estimated (not an exact fit).
        unknown = np.full(design.shape[1], math.inf)
        return _Fit(coefficients, unknown, float(residuals @ residuals), dof, math.inf)
    sigma2 = float(residuals @ residuals) / dof * _autocorrelation_inflation(residuals)
    try:
        covariance = sigma2 * np.linalg.inv(design.T @ design)
        errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    except np.linalg.LinAlgError:
        errors = np.full(design.shape[1], math.nan)
    return _Fit(
        coefficients, errors, float(residuals @ residuals), dof, float(stats.t.ppf(0.975, dof))
    )


#: The largest lag-1 autocorrelation of the residuals taken at face value (the inflation
#: (1 + r) / (1 - r) is 39 there): beyond it the intervals would be unbounded.
MAX_AUTOCORRELATION = 0.95


def _autocorrelation_inflation(residuals: np.ndarray) -> float:
    """The variance inflation of residuals correlated from one interval to the next (AR(1):
    (1 + r) / (1 - r), r their lag-1 autocorrelation), when r is above what independent
    residuals give at the 5% level (1.96 / sqrt(n)); else 1. Series queried as `rate(...[1m])`
    at a 15 s step overlap by three quarters: their residuals are correlated (r = 0.8 on the
    bookstore), and intervals that assume independent ones are three times too narrow (a
    0.16 ms demand of a class that never reaches the tier looked significant)."""
    if len(residuals) < 3:
        return 1.0
    centred = residuals - residuals.mean()
    scale = float(centred @ centred)
    if scale <= 0:
        return 1.0
    r = min(float(centred[:-1] @ centred[1:]) / scale, MAX_AUTOCORRELATION)
    return (1 + r) / (1 - r) if r > 1.96 / math.sqrt(len(residuals)) else 1.0


#: The regression's methods, as the summary names them.
WITH_BACKGROUND = "utilization regression (NNLS over intervals, with a background term)"
WITHOUT_BACKGROUND = (
    "utilization regression (NNLS over intervals; the background term, not distinguishable "
    "from 0, left out)"
)
UNEXPLAINED = (
    "utilization regression without a background term (NNLS over intervals): the rates do "
    "not explain the busy time's changes between intervals (F test p >= 0.01), so a "
    "background cannot be told apart"
)
DEMAND_LAW = "service demand law (busy time / completions), too few intervals for a regression"


def _regression(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[_Fit, str, bool]:
    """The fit, its method and whether its last coefficient is the background: with a
    background term, kept only when its 95% interval excludes 0 (busy time no class explains,
    such as garbage collection); else refitted without it, whose demands are then tighter."""
    if len(y) < classes + 3:
        design = x if x.shape[1] <= len(y) else x.sum(axis=1, keepdims=True)
        return _nnls(design, y), DEMAND_LAW, False
    fit = _nnls(np.column_stack([x, np.ones(len(y))]), y)
    if not _rates_explain(fit, y, classes):
        return _nnls(x, y), UNEXPLAINED, False
    if math.isfinite(fit.low(classes)) and fit.low(classes) > 0:
        return fit, WITH_BACKGROUND, True
    return _nnls(x, y), WITHOUT_BACKGROUND, False


#: The class throughputs must explain the busy time's variation across intervals at this
#: level (F test) for a background term to be told apart from the demands.
EXPLAINED_LEVEL = 0.01


def _rates_explain(fit: _Fit, y: np.ndarray, classes: int) -> bool:
    """Whether the throughputs explain the busy time's changes from interval to interval (F test
    of the regression with a background against the background alone). When they do not (a
    steady load, or rates measured over other windows than the CPU), the slope is mostly noise
    and pulled towards 0 while the background takes the busy time: the demands then come from
    the totals (no background)."""
    from scipy import stats

    total = float(((y - y.mean()) ** 2).sum())
    if total <= 0 or fit.dof < 1:
        return False
    explained = max(total - fit.residual_ss, 0.0)
    if fit.residual_ss <= 0:
        return True
    statistic = (explained / classes) / (fit.residual_ss / fit.dof)
    return float(stats.f.sf(statistic, classes, fit.dof)) < EXPLAINED_LEVEL


def estimate_demands(aggregates: Aggregates) -> list[DemandEstimate]:
    classes = sorted(aggregates.rates)
    estimates = []
    for tier, busy in sorted(aggregates.busy.items()):
        times = sorted(set(busy).intersection(*(aggregates.rates[c] for c in classes)))
        if not times:
            raise MeasurementError(
                f"no interval where both the CPU of {tier} and the request rates were measured; "
                "query them over the same range and step"
            )
        y = np.array([busy[t] for t in times])
        x = np.array([[aggregates.rates[c][t] for c in classes] for t in times])
        fit, method, has_background = _regression(x, y, len(classes))
        per_class = fit.coefficients.size >= len(classes)
        demands = {c: float(fit.coefficients[k if per_class else 0]) for k, c in enumerate(classes)}
        intervals = {
            c: (
                max(demands[c] - fit.t * float(fit.errors[k if per_class else 0]), 0.0),
                demands[c] + fit.t * float(fit.errors[k if per_class else 0]),
            )
            for k, c in enumerate(classes)
        }
        total = float(((y - y.mean()) ** 2).sum())
        unknown = None
        if fit.dof < 1:
            intervals = {c: (0.0, math.inf) for c in classes}
            unknown = (
                f"{len(times)} interval(s) for {fit.coefficients.size} parameter(s): the fit "
                "leaves no residual to estimate its error from; query a longer range or a "
                "finer step"
            )
        estimates.append(
            DemandEstimate(
                tier=tier,
                demands=demands,
                intervals=intervals,
                background=float(fit.coefficients[-1]) if has_background else 0.0,
                intervals_used=len(times),
                r_squared=1 - fit.residual_ss / total if total > 0 else 1.0,
                method=method,
                interval_unknown=unknown,
            )
        )
    return estimates


def calibrate_aggregates(
    files: Sequence[MetricsFile],
    names: MetricNames | None = None,
    workers: dict[str, int] | None = None,
    name: str = "calibrated",
) -> Calibration:
    """A scenario from aggregates alone: per class its mean rate and entry; per tier the demand
    of each class, as one visit with an exponential service time of that mean (aggregates give
    only means); tiers other than the entry are called once per request when their demand for
    the class is above zero (its interval excludes 0)."""
    aggregates = read_aggregates(files, names)
    if not aggregates.rates:
        raise MeasurementError(
            "no request-rate series in the Prometheus files; calibrating from aggregates "
            "needs request rates per class (see docs/calibration.md#prometheus)"
        )
    workers = workers or {}
    demands = estimate_demands(aggregates)
    sources = ", ".join(aggregates.sources)
    notes: dict[Path_, str] = {}
    all_times = sorted({t for series in aggregates.rates.values() for t in series})
    length = all_times[-1] - all_times[0] if len(all_times) > 1 else 60.0
    scenario: dict[str, Any] = {
        "name": name,
        "simulation": {"duration": duration_text(max(length, 1.0))},
    }
    traffic: dict[str, Any] = {}
    summary: dict[str, Any] = {
        "sources": aggregates.sources,
        "classes": {},
        "tiers": {},
        "demands": [],
    }
    for cls, series in sorted(aggregates.rates.items()):
        values = np.array(list(series.values()))
        rate = mean_interval(values)
        entry = aggregates.entries.get(cls) or (demands[0].tier if demands else "app")
        traffic[cls] = {"entry": entry, "rate": rate_text(rate.mean)}
        notes[("traffic", cls, "rate")] = (
            f"mean of {rate.count} rate samples ({sources}): "
            f"95% CI [{rate.low:.4g}, {rate.high:.4g}]/s"
        )
        latency = {}
        if cls in aggregates.histograms:
            latency = {
                p: histogram_quantile(aggregates.histograms[cls], q)
                for p, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            }
        summary["classes"][cls] = {
            "entry": entry,
            "rate": rate.mean,
            "rate_ci95": [rate.low, rate.high],
            "latency": latency,
        }
    scenario["traffic"] = traffic
    tiers: dict[str, Any] = {}
    for estimate in demands:
        peak_busy = max(aggregates.busy[estimate.tier].values())
        count = workers.get(estimate.tier, max(1, math.ceil(2 * peak_busy)))
        work: dict[str, Any] = {}
        for cls, demand in estimate.demands.items():
            low, high = estimate.intervals[cls]
            if demand <= 0:
                continue  # NNLS put it at zero: the class does no work here, so no call either
            work[cls] = {"service_time": {"dist": "exponential", "mean": duration_text(demand)}}
            interval = (
                f"95% CI [{duration_text(low)}, {duration_text(high)}]"
                if estimate.interval_unknown is None
                else f"95% CI unknown: {estimate.interval_unknown}"
            )
            notes[("tiers", estimate.tier, "classes", cls, "service_time")] = (
                f"demand {duration_text(demand)} per request ({interval}) by "
                f"{estimate.method}, {estimate.intervals_used} intervals, R² {estimate.r_squared:.3f}; "
                "exponential assumed: aggregates give only a mean"
            )
        mean_demand = float(np.mean([d for d in estimate.demands.values() if d > 0] or [1e-3]))
        tiers[estimate.tier] = {
            "type": "service",
            "concurrency": count,
            "service_time": {"dist": "exponential", "mean": duration_text(mean_demand)},
            "classes": work,
        }
        notes[("tiers", estimate.tier, "concurrency")] = (
            "given with --workers"
            if estimate.tier in workers
            else f"not measured: twice the peak busy cores ({peak_busy:.3g}); give it with --workers TIER=N"
        )
        summary["tiers"][estimate.tier] = {
            "concurrency": count,
            "busy_mean": float(np.mean(list(aggregates.busy[estimate.tier].values()))),
            "utilization": float(np.mean(list(aggregates.busy[estimate.tier].values()))) / count,
        }
        summary["demands"].append(estimate.as_summary())
    for cls, spec in traffic.items():
        entry = spec["entry"]
        if entry not in tiers:
            tiers[entry] = {
                "type": "service",
                "concurrency": workers.get(entry, 1),
                "service_time": "0ms",
            }
            notes[("tiers", entry, "service_time")] = (
                "no CPU series for this tier: no work measured"
            )
        calls = [
            t
            for t, s in sorted(tiers.items())
            if t != entry and cls in s.get("classes", {}) and _significant(demands, t, cls)
        ]
        if calls:
            tiers[entry].setdefault("classes", {}).setdefault(
                cls, {"service_time": tiers[entry]["service_time"]}
            )["calls"] = calls
            notes[("tiers", entry, "classes", cls, "calls")] = (
                "aggregates do not show the call graph: one call per request to each tier with a "
                "demand for this class above zero (its 95% interval excludes 0, or is unknown)"
            )
    scenario["tiers"] = tiers
    return Calibration(scenario, notes, summary, list(aggregates.warnings))


def _significant(demands: list[DemandEstimate], tier: str, cls: str) -> bool:
    for estimate in demands:
        if estimate.tier == tier:
            # An unknown interval cannot rule the demand out: its estimate is all there is.
            low = estimate.intervals[cls][0] if estimate.interval_unknown is None else math.inf
            return estimate.demands[cls] > 0 and low > 0
    return False
