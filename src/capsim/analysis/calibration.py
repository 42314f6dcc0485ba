"""Calibration: a scenario from measurements (traces for the structure and service times,
Prometheus aggregates for demands), every figure with where it came from.

The result is plain data: `Calibration.scenario` is the scenario as a dict (times in seconds),
`Calibration.notes` maps a key path of it to the sentence that says where its figure came from
(the YAML writer turns them into comments), and `Calibration.summary` holds the tables.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capsim.analysis.fitting import DistributionFit, fit_service_time, mean_interval
from capsim.measurements import LoadTest, Measurement, MeasurementError, MetricsFile, Span, Traces

Path_ = tuple[str | int, ...]

#: A rate is written as a `profile` when its per-bucket counts are over-dispersed for a
#: Poisson process at this level (chi-square dispersion test).
PROFILE_LEVEL = 0.001
PROFILE_BUCKETS = 20


@dataclass
class Calibration:
    scenario: dict[str, Any]
    notes: dict[Path_, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# --- traces -----------------------------------------------------------------------------------


@dataclass
class Visit:
    """Work at one tier for one request: a server (or consumer) span, or a client span whose
    callee is not traced. `calls` are (target tier, start, end, asynchronous)."""

    tier: str
    span: Span
    cls: str
    self_time: float = 0.0
    calls: list[tuple[str, float, float, bool]] = field(default_factory=list)


@dataclass
class TraceAnalysis:
    visits: list[Visit]
    classes: dict[str, dict[str, Any]]  # class -> entry tier, arrival times
    tier_types: dict[str, str]
    window: tuple[float, float]
    orphans: int = 0  # spans whose parent is not in the files (cut traces), left out


@functools.lru_cache(maxsize=4096)
def scenario_name(text: str) -> str:
    """`text` as a scenario name: letters, digits, '_' and '-' (runs of anything else become '_')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "requests"


def _uninstrumented_tier(span: Span) -> str:
    attributes = span.attributes
    for key in ("peer.service", "db.system", "db.system.name", "server.address", "net.peer.name"):
        if attributes.get(key):
            return scenario_name(str(attributes[key]))
    return scenario_name(f"{span.service}-{span.name}")


def _queue_tier(span: Span) -> str:
    for key in (
        "messaging.destination.name",
        "messaging.destination",
        "messaging.destination_name",
    ):
        if span.attributes.get(key):
            return scenario_name(str(span.attributes[key]))
    return scenario_name(f"{span.service}-queue")


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def analyse_traces(traces: Sequence[Traces], class_by: str | None = None) -> TraceAnalysis:
    spans = [span for t in traces for span in t.spans]
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    children: dict[tuple[str, str], list[Span]] = defaultdict(list)
    roots: dict[str, Span] = {}
    orphans = 0
    for span in spans:
        parent = (span.trace_id, span.parent_id) if span.parent_id else None
        if parent is None:
            if span.trace_id not in roots or span.start < roots[span.trace_id].start:
                roots[span.trace_id] = span
        elif parent in by_id:
            children[parent].append(span)
        else:
            orphans += 1
    if not roots:
        raise MeasurementError("the traces hold no root span (a span without a parent)")
    classes: dict[str, dict[str, Any]] = {}
    trace_class: dict[str, str] = {}
    entries: dict[str, Span] = {}
    for trace_id, root in roots.items():
        name = str(root.attributes.get(class_by, root.name)) if class_by else root.name
        name = scenario_name(name)
        trace_class[trace_id] = name
        entry = classes.setdefault(name, {"entry": {}, "arrivals": [], "latency": []})
        entry["arrivals"].append(root.start)
        entry["latency"].append(root.duration)
        # A client root (a load generator's or a browser's span) is the user's view of the
        # request; the first server span under it is the entry tier's visit.
        first = root
        if root.kind == "client":
            served = [
                c for c in children.get((root.trace_id, root.span_id), []) if c.kind == "server"
            ]
            if served:
                first = min(served, key=lambda s: s.start)
        entries[trace_id] = first
        tier = _visit_tier(first)
        entry["entry"][tier] = entry["entry"].get(tier, 0) + 1
    visits: list[Visit] = []
    tier_types: dict[str, str] = {}

    def visit(span: Span, tier: str) -> None:
        record = Visit(tier, span, trace_class[span.trace_id])
        if tier_types.get(tier, "service") == "service":
            tier_types[tier] = _tier_type(span)
        synchronous: list[tuple[float, float]] = []
        stack = list(children.get((span.trace_id, span.span_id), []))
        while stack:
            child = stack.pop()
            if (
                child.kind in ("server", "consumer")
                and child.service != span.service
                and span.kind != "client"
            ):
                record.calls.append((_visit_tier(child), child.start, child.end, False))
                synchronous.append((child.start, child.end))
                visit(child, _visit_tier(child))
            elif child.kind == "client" and span.kind != "client":
                callees = [
                    c
                    for c in children.get((child.trace_id, child.span_id), [])
                    if c.kind == "server"
                ]
                target = _visit_tier(callees[0]) if callees else _uninstrumented_tier(child)
                record.calls.append((target, child.start, child.end, False))
                synchronous.append((child.start, child.end))
                if callees:
                    visit(callees[0], target)
                else:
                    visit(child, target)
            elif child.kind == "producer":
                target = _queue_tier(child)
                record.calls.append((target, child.start, child.end, True))
                for consumer in children.get((child.trace_id, child.span_id), []):
                    if consumer.kind == "consumer":
                        visit(consumer, target)
                        tier_types[target] = "queue"
            else:
                stack.extend(children.get((child.trace_id, child.span_id), []))
        start, end = span.start, span.end
        clipped = [
            (max(a, start), min(b, end)) for a, b in synchronous if min(b, end) > max(a, start)
        ]
        record.self_time = max(span.duration - _union_length(clipped), 0.0)
        visits.append(record)

    for first in entries.values():
        visit(first, _visit_tier(first))
    starts = [root.start for root in roots.values()]
    return TraceAnalysis(visits, classes, tier_types, (min(starts), max(starts)), orphans)


def _visit_tier(span: Span) -> str:
    if span.kind == "consumer":
        return _queue_tier(span)
    if span.kind == "client":
        return _uninstrumented_tier(span)
    return scenario_name(span.service)


def _tier_type(span: Span) -> str:
    if span.kind == "consumer":
        return "queue"
    if any(key in span.attributes for key in ("db.system", "db.system.name")):
        return "database"
    return "service"


def peak_concurrency(spans: list[Span]) -> int:
    events = sorted(
        [(s.start, 1) for s in spans] + [(s.end, -1) for s in spans], key=lambda e: (e[0], e[1])
    )
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return max(peak, 1)


@dataclass(frozen=True)
class RateEstimate:
    rate: float
    low: float
    high: float
    count: int
    window: float
    profile: list[tuple[float, float]] | None
    dispersion_p: float


def estimate_rate(arrivals: Sequence[float], window: tuple[float, float]) -> RateEstimate:
    """Arrivals per second over `window` with an exact Poisson 95% interval, and per-bucket
    rates when a chi-square dispersion test says the rate changed."""
    from scipy import stats

    times = np.sort(np.asarray(arrivals, dtype=float))
    length = max(window[1] - window[0], 1e-9)
    count = times.size
    low = stats.chi2.ppf(0.025, 2 * count) / 2 / length if count else 0.0
    high = stats.chi2.ppf(0.975, 2 * count + 2) / 2 / length
    buckets = min(PROFILE_BUCKETS, max(count // 30, 1))
    profile, p_value = None, 1.0
    if buckets >= 4:
        counts, _ = np.histogram(times, bins=buckets, range=window)
        expected = counts.mean()
        statistic = float(((counts - expected) ** 2).sum() / expected) if expected > 0 else 0.0
        p_value = float(stats.chi2.sf(statistic, buckets - 1))
        if p_value < PROFILE_LEVEL:
            width = length / buckets
            profile = [((k + 0.5) * width, float(c) / width) for k, c in enumerate(counts)]
    return RateEstimate(count / length, float(low), float(high), count, length, profile, p_value)


def _seconds(value: float) -> str:
    """A duration in the scenario's units, 4 significant figures."""
    if value == 0:
        return "0ms"
    if value < 1e-3:
        return f"{value * 1e6:.4g}us"
    if value < 1:
        return f"{value * 1e3:.4g}ms"
    return f"{value:.4g}s"


def _rate(value: float) -> str:
    return f"{value:.5g}/s"


def distribution_spec(fit: DistributionFit) -> dict[str, Any]:
    spec = dict(fit.spec)
    for key in ("mean", "value"):
        if key in spec:
            spec[key] = _seconds(spec[key])
    if "cv" in spec:
        spec["cv"] = float(f"{spec['cv']:.4g}")
    if "samples" in spec:
        spec["samples"] = [_seconds(x) for x in spec["samples"]]
    return spec


def _fit_note(fit: DistributionFit, what: str) -> str:
    mean = fit.mean
    interval = (
        f"95% CI [{_seconds(mean.low)}, {_seconds(mean.high)}]"
        if math.isfinite(mean.low)
        else "no CI (one sample)"
    )
    return (
        f"{what}: n = {mean.count}, mean {_seconds(mean.mean)} ({interval}), cv {fit.cv:.3g}; "
        f"{fit.family}: {fit.reason}"
    )


def _calls(visits: list[Visit]) -> tuple[list[Any], list[str], dict[str, Any]]:
    """The calls of one tier for one class, with probabilities, repeats and parallel groups."""
    total = len(visits)
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * total)
    offsets: dict[str, list[float]] = defaultdict(list)
    asynchronous: dict[str, bool] = {}
    overlaps: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    for k, v in enumerate(visits):
        for target, start, _end, is_async in v.calls:
            counts[target][k] += 1
            offsets[target].append(start - v.span.start)
            asynchronous[target] = is_async
        synchronous = [c for c in v.calls if not c[3]]
        for i, first in enumerate(synchronous):
            for second in synchronous[i + 1 :]:
                if first[0] == second[0]:
                    continue
                key = tuple(sorted((first[0], second[0])))
                overlaps[key][1] += 1
                if min(first[2], second[2]) > max(first[1], second[1]):
                    overlaps[key][0] += 1
    order = sorted(counts, key=lambda t: (float(np.median(offsets[t])), t))
    group_of = {t: t for t in order}

    def find(t: str) -> str:
        while group_of[t] != t:
            t = group_of[t]
        return t

    for pair, (overlapping, together) in overlaps.items():
        if together and overlapping / together > 0.5:
            group_of[find(pair[1])] = find(pair[0])
    items: list[Any] = []
    notes: list[str] = []
    figures: dict[str, Any] = {}
    placed: set[str] = set()
    for target in order:
        if target in placed:
            continue
        members = [t for t in order if find(t) == find(target)]
        placed.update(members)
        specs = []
        for member in members:
            calls = np.array(counts[member])
            made = calls[calls > 0]
            probability = made.size / total
            repeat = max(round(float(made.mean())), 1) if made.size else 1
            spec: dict[str, Any] = {"tier": member}
            if probability < 0.9995:
                spec["probability"] = float(f"{probability:.4g}")
            if repeat > 1:
                spec["repeat"] = repeat
            half = 1.96 * math.sqrt(probability * (1 - probability) / total)
            notes.append(
                f"{member}: called in {made.size} of {total} visits (p = {probability:.4f} ± {half:.4f})"
                + (f", {made.mean():.3g} times on average when called" if made.size else "")
                + (" — asynchronous (producer span)" if asynchronous.get(member) else "")
            )
            figures[member] = {
                "probability": probability,
                "probability_ci95": [probability - half, probability + half],
                "calls_when_called": float(made.mean()) if made.size else 0.0,
                "asynchronous": asynchronous.get(member, False),
            }
            specs.append(spec if len(spec) > 1 else member)
        if len(specs) > 1:
            items.append({"parallel": specs})
            notes.append(f"parallel: {', '.join(members)} overlap in time in most visits")
        else:
            items.append(specs[0])
    return items, notes, figures


def calibrate_traces(
    traces: Sequence[Traces],
    class_by: str | None = None,
    workers: dict[str, int] | None = None,
    name: str = "calibrated",
) -> Calibration:
    analysis = analyse_traces(traces, class_by)
    sources = ", ".join(t.source for t in traces)
    workers = workers or {}
    scenario: dict[str, Any] = {"name": name}
    notes: dict[Path_, str] = {}
    summary: dict[str, Any] = {"sources": [t.source for t in traces], "classes": {}, "tiers": {}}
    start, end = analysis.window
    length = end - start
    if not length > 0:
        raise MeasurementError(
            f"{sources}: every root span starts at the same instant, so no arrival rate can be "
            "measured; export traces collected over a period of time"
        )
    warmup = max(min(length * 0.1, 60.0), 1.0)
    scenario["simulation"] = {"duration": _seconds(length), "warmup": _seconds(warmup)}
    notes[("simulation", "duration")] = f"the traces' window: first to last root span ({sources})"
    notes[("simulation", "warmup")] = "10% of the window (at least 1s, at most 60s)"
    traffic: dict[str, Any] = {}
    for cls, info in sorted(analysis.classes.items()):
        entry = max(info["entry"], key=info["entry"].get)
        estimate = estimate_rate(info["arrivals"], analysis.window)
        spec: dict[str, Any] = {"entry": entry, "rate": _rate(estimate.rate)}
        notes[("traffic", cls, "rate")] = (
            f"{estimate.count} root spans in {length:.4g}s: {estimate.rate:.4g}/s "
            f"(95% CI [{estimate.low:.4g}, {estimate.high:.4g}], Poisson)"
        )
        if estimate.profile:
            spec["profile"] = [{"at": "0s", "rate": _rate(estimate.profile[0][1])}] + [
                {"at": _seconds(warmup + at), "rate": _rate(rate)} for at, rate in estimate.profile
            ]
            notes[("traffic", cls, "profile")] = (
                f"the rate changed (chi-square dispersion p = {estimate.dispersion_p:.2g} < {PROFILE_LEVEL}): "
                f"{estimate.count} arrivals in {len(estimate.profile)} buckets of "
                f"{length / len(estimate.profile):.3g}s, each rate at its bucket's midpoint after "
                "the warm-up (a bucket of n arrivals: 95% CI about n ± 1.96√n)"
            )
        traffic[cls] = spec
        summary["classes"][cls] = {
            "entry": entry,
            "rate": estimate.rate,
            "rate_ci95": [estimate.low, estimate.high],
            "requests": estimate.count,
            "profile": bool(estimate.profile),
            "latency": _root_latency(analysis, cls),
        }
    scenario["traffic"] = traffic
    tiers: dict[str, Any] = {}
    by_tier: dict[str, list[Visit]] = defaultdict(list)
    for v in analysis.visits:
        by_tier[v.tier].append(v)
    for tier in sorted(by_tier):
        tier_visits = by_tier[tier]
        kind = analysis.tier_types.get(tier, "service")
        spec = {"type": kind}
        peak = peak_concurrency([v.span for v in tier_visits])
        count_key = "consumers" if kind == "queue" else "concurrency"
        if tier in workers:
            spec[count_key] = workers[tier]
            notes[("tiers", tier, count_key)] = "given with --workers"
        else:
            spec[count_key] = peak
            notes[("tiers", tier, count_key)] = (
                f"the most {tier} spans in progress at once ({peak}): a lower bound on its workers; "
                "give the real figure with --workers TIER=N"
            )
        pooled = fit_service_time(np.array([v.self_time for v in tier_visits]))
        spec["service_time"] = distribution_spec(pooled)
        notes[("tiers", tier, "service_time")] = _fit_note(
            pooled, f"self time of every {tier} span (all classes)"
        )
        classes_here = sorted({v.cls for v in tier_visits})
        tier_summary: dict[str, Any] = {
            "type": kind,
            count_key: spec[count_key],
            "visits": len(tier_visits),
            "busy": sum(v.self_time for v in tier_visits) / max(length, 1e-9),
            "classes": {},
        }
        for cls in classes_here:
            class_visits = [v for v in tier_visits if v.cls == cls]
            fit = (
                fit_service_time(np.array([v.self_time for v in class_visits]))
                if len(classes_here) > 1
                else pooled
            )
            calls, call_notes, call_figures = _calls(class_visits)
            tier_summary["classes"][cls] = {
                "visits": len(class_visits),
                "family": fit.family,
                "mean": fit.mean.mean,
                "mean_ci95": [fit.mean.low, fit.mean.high],
                "cv": fit.cv,
                "candidates": fit.candidates,
                "calls": call_figures,
            }
            if len(classes_here) > 1:
                work: dict[str, Any] = {"service_time": distribution_spec(fit)}
                notes[("tiers", tier, "classes", cls, "service_time")] = _fit_note(
                    fit, f"self time of {tier} spans of class {cls}"
                )
                if calls:
                    work["calls"] = calls
                    notes[("tiers", tier, "classes", cls, "calls")] = "; ".join(call_notes)
                spec.setdefault("classes", {})[cls] = work
            elif calls:
                spec["calls"] = calls
                notes[("tiers", tier, "calls")] = (
                    f"from the span tree of class {cls}: " + "; ".join(call_notes)
                )
        tiers[tier] = spec
        summary["tiers"][tier] = tier_summary
    scenario["tiers"] = tiers
    warnings = []
    if analysis.orphans:
        warnings.append(
            f"{analysis.orphans} spans whose parent is not in the files were left out "
            "(traces cut at the edges of the export, or spans of uninstrumented callers)"
        )
    return Calibration(scenario, notes, summary, warnings)


def _root_latency(analysis: TraceAnalysis, cls: str) -> dict[str, float]:
    """Latency as the user sees it: the root spans' durations."""
    return latency_figures(np.array(analysis.classes[cls]["latency"]))


def latency_figures(durations: np.ndarray) -> dict[str, float]:
    if durations.size == 0:
        return {}
    p50, p95, p99 = np.percentile(durations, [50, 95, 99])
    return {
        "mean": float(durations.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "count": int(durations.size),
    }


# --- Prometheus aggregates --------------------------------------------------------------------


@dataclass(frozen=True)
class MetricNames:
    """How Prometheus series are told apart (docs/calibration.md#prometheus): a series' name is
    its `__name__` label, else its file's name; patterns are regular expressions searched in it."""

    rate: str = r"request|_total|_count|rate|throughput"
    cpu: str = r"cpu|busy|utili[sz]ation"
    latency: str = r"_bucket"
    tier_labels: tuple[str, ...] = ("tier", "service", "service_name", "job", "container")
    class_labels: tuple[str, ...] = (
        "class",
        "route",
        "handler",
        "endpoint",
        "name",
        "uri",
        "operation",
    )
    #: The CPU series are utilisations (busy fraction of the tier's workers) rather than busy
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


def _first_label(labels: dict[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def read_aggregates(files: Sequence[MetricsFile], names: MetricNames | None = None) -> Aggregates:
    from pathlib import Path

    names = names or MetricNames()
    rates: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    entry_rates: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    busy: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    histograms: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    rate_sources: set[str] = set()
    for file in files:
        for series in file.series:
            metric = series.labels.get("__name__") or Path(file.source).stem
            tier = _first_label(series.labels, names.tier_labels)
            cls = _first_label(series.labels, names.class_labels)
            tier = scenario_name(tier) if tier else None
            cls = scenario_name(cls) if cls else None
            if "le" in series.labels or re.search(names.latency, metric):
                le = (
                    math.inf
                    if series.labels.get("le") in ("+Inf", "inf")
                    else float(series.labels.get("le", "nan"))
                )
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
            elif re.search(names.rate, metric):
                name = cls or "requests"
                for t, value in zip(series.times, series.values, strict=True):
                    rates[name][t] += value
                rate_sources.add(file.source)
                if tier:
                    entry_rates[name][tier] += sum(series.values)
            else:
                raise MeasurementError(
                    f"{file.source}: cannot tell what series {metric!r} measures (labels {series.labels}); "
                    "its name should match --rate-metric, --cpu-metric or --latency-metric"
                )
    entries = {cls: max(tiers, key=tiers.get) for cls, tiers in entry_rates.items()}  # type: ignore[arg-type]
    return Aggregates(
        {k: dict(v) for k, v in rates.items()},
        entries,
        {k: dict(v) for k, v in busy.items()},
        {k: dict(v) for k, v in histograms.items()},
        sorted(rate_sources),
    )


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


def estimate_demands(aggregates: Aggregates) -> list[DemandEstimate]:
    from scipy import optimize, stats

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
        if len(times) >= len(classes) + 3:
            design = np.column_stack([x, np.ones(len(times))])
            method = "utilisation regression (NNLS over intervals, with a background term)"
        else:
            design = x
            method = (
                "service demand law (busy time / completions), too few intervals for a regression"
            )
        if design.shape[1] > len(times):
            design = x.sum(axis=1, keepdims=True)
        coefficients, _ = optimize.nnls(design, y)
        residuals = y - design @ coefficients
        dof = max(len(times) - design.shape[1], 1)
        sigma2 = float(residuals @ residuals) / dof
        try:
            covariance = sigma2 * np.linalg.inv(design.T @ design)
            errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
        except np.linalg.LinAlgError:
            errors = np.full(design.shape[1], math.nan)
        t = float(stats.t.ppf(0.975, dof))
        total = float(((y - y.mean()) ** 2).sum())
        demands = (
            {c: float(coefficients[k]) for k, c in enumerate(classes)}
            if design.shape[1] >= len(classes)
            else {c: float(coefficients[0]) for c in classes}
        )
        intervals = {
            c: (
                max(demands[c] - t * float(errors[min(k, errors.size - 1)]), 0.0),
                demands[c] + t * float(errors[min(k, errors.size - 1)]),
            )
            for k, c in enumerate(classes)
        }
        background = float(coefficients[-1]) if design.shape[1] == len(classes) + 1 else 0.0
        estimates.append(
            DemandEstimate(
                tier,
                demands,
                intervals,
                background,
                len(times),
                1 - float(residuals @ residuals) / total if total > 0 else 1.0,
                method,
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
        "simulation": {"duration": _seconds(max(length, 1.0))},
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
        traffic[cls] = {"entry": entry, "rate": _rate(rate.mean)}
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
            work[cls] = {"service_time": {"dist": "exponential", "mean": _seconds(demand)}}
            notes[("tiers", estimate.tier, "classes", cls, "service_time")] = (
                f"demand {_seconds(demand)} per request (95% CI [{_seconds(low)}, {_seconds(high)}]) by "
                f"{estimate.method}, {estimate.intervals_used} intervals, R² {estimate.r_squared:.3f}; "
                "exponential assumed: aggregates give only a mean"
            )
        mean_demand = float(np.mean([d for d in estimate.demands.values() if d > 0] or [1e-3]))
        tiers[estimate.tier] = {
            "type": "service",
            "concurrency": count,
            "service_time": {"dist": "exponential", "mean": _seconds(mean_demand)},
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
        summary["demands"].append(
            {
                "tier": estimate.tier,
                "demands": estimate.demands,
                "intervals": {c: list(v) for c, v in estimate.intervals.items()},
                "background": estimate.background,
                "intervals_used": estimate.intervals_used,
                "r_squared": estimate.r_squared,
                "method": estimate.method,
            }
        )
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
                "demand for this class above zero (its 95% interval excludes 0)"
            )
    scenario["tiers"] = tiers
    return Calibration(scenario, notes, summary)


def _significant(demands: list[DemandEstimate], tier: str, cls: str) -> bool:
    for estimate in demands:
        if estimate.tier == tier:
            return estimate.demands[cls] > 0 and estimate.intervals[cls][0] > 0
    return False


# --- everything -------------------------------------------------------------------------------


def calibrate(
    measurements: Sequence[Measurement],
    *,
    class_by: str | None = None,
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
        result = calibrate_traces(traces, class_by, workers, name)
        if metrics:
            aggregates = read_aggregates(metrics, metric_names)
            if aggregates.busy and aggregates.rates:
                result.summary["demands"] = [
                    {
                        "tier": e.tier,
                        "demands": e.demands,
                        "intervals": {c: list(v) for c, v in e.intervals.items()},
                        "background": e.background,
                        "intervals_used": e.intervals_used,
                        "r_squared": e.r_squared,
                        "method": e.method,
                    }
                    for e in estimate_demands(aggregates)
                ]
    elif metrics:
        result = calibrate_aggregates(metrics, metric_names, workers, name)
    else:
        raise MeasurementError(
            "load-test results alone give no tiers or service times: calibrate needs OTLP traces or "
            "Prometheus aggregates (use load tests with `capsim backtest` and `capsim fit-usl`)"
        )
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
