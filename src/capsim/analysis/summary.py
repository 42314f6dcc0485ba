"""summarise: pools replications' measurements into the JSON result of docs/results.md.

Across replications:
* counts (`completed`, `errors`, `rejected`, `arrivals`, `timed_out`) are per replication: the
  total over all replications divided by their number, rounded (so that `completed` =
  `throughput` x `duration`, as in docs/results.md's example); `error_rate` is from the totals;
* rates (`offered_rate`, `throughput`) are per second of measured time: total / (replications x
  duration), i.e. the mean over replications;
* percentiles, means and maxima of times come from the merged histograms of every replication;
* time averages (`utilization`, `occupancy`, `queue_length.mean`) are the mean over replications;
* `ci95` is a Student t interval across replications of each replication's own estimate.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from capsim.analysis.report import Report
from capsim.analysis.stats import (
    net_growth_is_clear,
    queue_trend,
    sanitise,
    t_interval,
)
from capsim.engine.histogram import Histogram
from capsim.engine.limits import waiting_limit
from capsim.engine.result import RunResult, TierRun
from capsim.engine.timeseries import TierSeries, quantile_per_bucket
from capsim.errors import CapsimError
from capsim.model.types import PERCENTILES, STATISTICS, Call, Model, Parallel, Slo, Step, Tier

#: The class estimates that get a confidence interval when there is more than one replication.
CLASS_CI_KEYS: tuple[str, ...] = (
    "latency.mean",
    "latency.p50",
    "latency.p95",
    "latency.p99",
    "throughput",
    "error_rate",
)
#: The tier estimates that get a confidence interval.
TIER_CI_KEYS: tuple[str, ...] = ("utilization",)


def time_statistics(histogram: Histogram) -> dict[str, float | None]:
    """mean, p50 ... p999 and max of a histogram of times; every value None when it is empty."""
    if histogram.n == 0:
        return dict.fromkeys(STATISTICS)
    stats: dict[str, float | None] = {"mean": histogram.total / histogram.n}
    for name, q in PERCENTILES.items():
        stats[name] = histogram.quantile(q)
    stats["max"] = histogram.max
    return stats


def _statistic(histogram: Histogram, name: str) -> float:
    """One statistic of a histogram as a float (NaN when empty), for per-replication estimates."""
    if histogram.n == 0:
        return math.nan
    if name == "mean":
        return histogram.total / histogram.n
    if name == "max":
        return histogram.max
    return histogram.quantile(PERCENTILES[name])


def _error_rate(completed: int, errors: int) -> float:
    """errors / (completed + errors); 0 when nothing finished (no evidence of any error)."""
    finished = completed + errors
    return errors / finished if finished else 0.0


def _interval(estimates: list[float]) -> list[float] | None:
    interval = t_interval(estimates)
    return None if interval is None else [interval[0], interval[1]]


def _summarise_classes(model: Model, runs: list[RunResult]) -> dict[str, Any]:
    replications = len(runs)
    measured = sum(run.duration for run in runs)
    classes: dict[str, Any] = {}
    for traffic in model.classes:
        per_run = [run.classes[traffic.index] for run in runs]
        arrivals = sum(c.arrivals for c in per_run)
        completed = sum(c.completed for c in per_run)
        errors = sum(c.errors for c in per_run)
        latency = Histogram.merged([c.latency for c in per_run])
        entry: dict[str, Any] = {
            "offered_rate": arrivals / measured,
            "throughput": completed / measured,
            "completed": round(completed / replications),
            "errors": round(errors / replications),
            "error_rate": _error_rate(completed, errors),
            "latency": time_statistics(latency),
        }
        if replications > 1:
            estimates: dict[str, list[float]] = {
                "throughput": [
                    c.completed / run.duration for c, run in zip(per_run, runs, strict=True)
                ],
                "error_rate": [_error_rate(c.completed, c.errors) for c in per_run],
            }
            for stat in ("mean", "p50", "p95", "p99"):
                estimates[f"latency.{stat}"] = [_statistic(c.latency, stat) for c in per_run]
            entry["ci95"] = {key: _interval(estimates[key]) for key in CLASS_CI_KEYS}
        entry["arrivals"] = round(arrivals / replications)
        classes[traffic.name] = entry
    return classes


@dataclass(frozen=True)
class Stability:
    """Whether a tier's queue kept growing, and how fast (requests per second)."""

    stable: bool
    growth_rate: float


def _trace_times(tier_run: TierRun, run: RunResult) -> np.ndarray:
    trace = np.asarray(tier_run.queue_trace, dtype=np.float64)
    times = np.asarray(tier_run.trace_times, dtype=np.float64)
    if times.size == trace.size:
        return times
    # No sample times recorded: the trace is evenly spaced over the window.
    return np.linspace(run.warmup, run.warmup + run.duration, trace.size)


def _refused(tier_run: TierRun) -> int:
    """Requests the tier refused in the window. The engine's `rejected` is already the total:
    `timed_out` and `pool_rejected` are parts of it, reported separately as a breakdown."""
    return tier_run.rejected


def assess_stability(tier_runs: list[TierRun], runs: list[RunResult], workers: int) -> Stability:
    """The stability rule (docs/results.md, "Stable or overloaded").

    A replication's queue is *growing* when either
    * its queue trace shows a clear sustained rise: the robust (Theil-Sen) growth over the
      window is at least 5 requests, at least 4x the scatter around the trend, at least half
      the trace's median level, and the last quarter of the trace is above the first quarter
      by at least half of that growth; or
    * the work admitted is at or beyond capacity (admitted requests x mean time a worker is held
      per request >= workers x duration) and admitted requests outran completed ones by more
      than 4 Poisson standard deviations.
    The tier is unstable when at least half of the replications are growing; its growth rate
    is the median over those replications of the trend slope (or of the net growth per second
    when the trace is too short for a trend).
    """
    rates: list[float] = []
    for tier_run, run in zip(tier_runs, runs, strict=True):
        trend = queue_trend(_trace_times(tier_run, run), tier_run.queue_trace)
        admitted = tier_run.arrivals - _refused(tier_run)
        net_rate = (admitted - tier_run.completed) / run.duration
        held = max(tier_run.occupied_time, tier_run.busy_time)
        capacity = max(tier_run.workers or workers, 1) * run.duration
        if tier_run.completed:
            offered_work = admitted * held / tier_run.completed
            at_capacity = offered_work >= capacity
        else:
            at_capacity = admitted > 0
        if tier_run.overflow:
            # The backlog hit the engine's bound: count what it would have grown by.
            rates.append((admitted + tier_run.overflow - tier_run.completed) / run.duration)
        elif trend is not None and trend.growing:
            rates.append(trend.slope)
        elif at_capacity and net_growth_is_clear(admitted, tier_run.completed):
            rates.append(net_rate)
    if rates and 2 * len(rates) >= len(runs):
        return Stability(stable=False, growth_rate=max(float(np.median(rates)), 0.0))
    return Stability(stable=True, growth_rate=0.0)


def _retried_tiers(model: Model) -> set[int]:
    """Tiers called with a timeout, retries, a breaker or a bulkhead somewhere (their entries
    count retries, timeouts, short-circuited and bulkhead-refused calls)."""
    found: set[int] = set()

    def visit(steps: tuple[Step, ...]) -> None:
        for step in steps:
            if isinstance(step, Call) and (
                step.timeout is not None
                or step.retry is not None
                or step.circuit_breaker is not None
                or step.bulkhead is not None
            ):
                found.add(step.tier)
            elif isinstance(step, Parallel):
                visit(step.branches)

    for tier in model.tiers:
        for work in tier.work:
            visit(work.calls)
    return found


def _summarise_tier(
    model: Model, tier: Tier, runs: list[RunResult]
) -> tuple[dict[str, Any], Stability]:
    replications = len(runs)
    measured = sum(run.duration for run in runs)
    per_run = [run.tiers[tier.index] for run in runs]

    def fraction_busy(time: float, tier_run: TierRun, run: RunResult) -> float:
        if tier_run.live_worker_time is not None:  # instances died: over the live ones
            return time / tier_run.live_worker_time if tier_run.live_worker_time > 0 else 0.0
        return time / (max(tier_run.workers or tier.workers, 1) * run.duration)

    utilization = [fraction_busy(t.busy_time, t, run) for t, run in zip(per_run, runs, strict=True)]
    occupancy = [
        fraction_busy(max(t.occupied_time, t.busy_time), t, run)
        for t, run in zip(per_run, runs, strict=True)
    ]
    queue_mean = [t.queue_time / run.duration for t, run in zip(per_run, runs, strict=True)]
    queue_max = max(t.queue_max for t in per_run)
    arrivals = sum(t.arrivals for t in per_run)
    stability = assess_stability(per_run, runs, tier.workers)
    entry: dict[str, Any] = {
        "utilization": float(np.mean(utilization)),
        "throughput": sum(t.completed for t in per_run) / measured,
        "rejected": round(sum(_refused(t) for t in per_run) / replications),
        "stable": stability.stable,
        "queue_length": {"mean": float(np.mean(queue_mean)), "max": queue_max},
        "wait": time_statistics(Histogram.merged([t.wait for t in per_run])),
        "occupancy": float(np.mean(occupancy)),
        "arrivals": round(arrivals / replications),
        "offered_rate": arrivals / measured,
        "growth_rate": stability.growth_rate,
        "timed_out": round(sum(t.timed_out for t in per_run) / replications),
        "kind": tier.kind,
        "workers": tier.workers,
    }
    overflow = round(sum(t.overflow for t in per_run) / replications)
    if overflow:
        entry["overflow"] = overflow  # only when the engine's bound on waiting was reached
    if tier.kind == "queue":
        ends = [float(t.queue_trace[-1]) for t in per_run if len(t.queue_trace)]
        entry["backlog"] = {
            "mean": entry["queue_length"]["mean"],
            "max": queue_max,
            "end": float(np.mean(ends)) if ends else None,
        }
        ages = [t.age for t in per_run if t.age is not None]
        entry["age"] = time_statistics(Histogram.merged(ages))
        if tier.max_retries:
            entry["redeliveries"] = round(sum(t.redeliveries for t in per_run) / replications)
            entry["dead_letters"] = round(sum(t.dead_letters for t in per_run) / replications)
    if tier.pool is not None:
        waits = [t.pool_wait for t in per_run if t.pool_wait is not None]
        entry["pool"] = {
            "size": tier.pool.size,
            "rejected": round(sum(t.pool_rejected for t in per_run) / replications),
            "wait": time_statistics(Histogram.merged(waits)),
        }
    if tier.index in _retried_tiers(model):
        entry["retries"] = round(sum(t.retries for t in per_run) / replications)
        entry["call_timeouts"] = round(sum(t.call_timeouts for t in per_run) / replications)
        entry["short_circuited"] = round(sum(t.short_circuited for t in per_run) / replications)
        entry["bulkhead_rejected"] = round(sum(t.bulkhead_rejected for t in per_run) / replications)
    if tier.rate_limit is not None:
        entry["rate_limited"] = round(sum(t.rate_limited for t in per_run) / replications)
    if tier.drop_abandoned:
        entry["dropped"] = round(sum(t.dropped for t in per_run) / replications)
    if tier.cold_lru is not None:
        lookups = sum(t.cache_lookups for t in per_run)
        hits = sum(t.cache_hits for t in per_run)
        entry["cold_cache"] = {
            "lookups": round(lookups / replications),
            "hit_ratio": hits / lookups if lookups else None,
            "steady_state": tier.hit_ratio,
        }
    if tier.autoscale is not None:
        # The first replication's changes, as an example of the autoscaler at work.
        entry["autoscale"] = {
            "min": tier.autoscale.min,
            "max": tier.autoscale.max,
            "scaling": [{"t": t, "from": a, "to": b} for t, a, b in per_run[0].scaling],
        }
        if tier.autoscale.scale_to_zero:
            entry["autoscale"]["cold_starts"] = round(
                sum(t.cold_starts for t in per_run) / replications
            )
    if replications > 1:
        entry["ci95"] = {"utilization": _interval(utilization)}
    return entry, stability


def summarise_timeseries(model: Model, runs: list[RunResult]) -> dict[str, Any] | None:
    """The result's `timeseries` (docs/results.md), pooled over replications (None: none recorded).

    Per bucket, counts and time integrals are summed over replications and divided by
    replications x the bucket's length (so rates and time averages are replication means);
    `error_rate` is errors / (completed + errors) from those sums; `p99` comes from the
    pooled per-bucket latency histograms; utilization and occupancy are over live instances.
    """
    series = [run.series for run in runs if run.series is not None]
    if len(series) != len(runs) or not series:
        return None
    first = series[0]
    exposure = len(series) * first.spans
    classes: dict[str, Any] = {}
    for traffic in model.classes:
        per_run = [s.classes[traffic.index] for s in series]
        arrivals = np.sum([c.arrivals for c in per_run], axis=0)
        completed = np.sum([c.completed for c in per_run], axis=0)
        errors = np.sum([c.errors for c in per_run], axis=0)
        finished = completed + errors
        latency = np.sum([c.latency for c in per_run], axis=0)
        error_rate = np.divide(errors, finished, out=np.zeros(finished.size), where=finished > 0)
        p99 = quantile_per_bucket(latency, 0.99)
        classes[traffic.name] = {
            "offered_rate": (arrivals / exposure).tolist(),
            "throughput": (completed / exposure).tolist(),
            "error_rate": error_rate.tolist(),
            "p99": p99.tolist(),
        }
    tiers: dict[str, Any] = {}
    for tier in model.tiers:
        tier_runs = [s.tiers[tier.index] for s in series]

        def total(name: str, tier_runs: list[TierSeries] = tier_runs) -> np.ndarray:
            return np.sum([getattr(t, name) for t in tier_runs], axis=0)

        worker_time = total("instance_time") * max(tier.concurrency, 1)

        def over_workers(values: np.ndarray, worker_time: np.ndarray = worker_time) -> list[float]:
            share = np.divide(values, worker_time, out=np.zeros(values.size), where=worker_time > 0)
            return share.tolist()

        tiers[tier.name] = {
            "instances": (total("instance_time") / exposure).tolist(),
            "utilization": over_workers(total("busy_time")),
            "occupancy": over_workers(total("occupied_time")),
            "queue_length": (total("queue_time") / exposure).tolist(),
            "in_flight": (total("present_time") / exposure).tolist(),
        }
        counted = [(t.lookups, t.hits) for t in tier_runs]
        if tier.cold_lru is not None and all(a is not None and b is not None for a, b in counted):
            lookups = np.sum(np.asarray([a for a, _ in counted], dtype=float), axis=0)
            hits = np.sum(np.asarray([b for _, b in counted], dtype=float), axis=0)
            ratio = np.divide(hits, lookups, out=np.zeros(lookups.size), where=lookups > 0)
            tiers[tier.name]["hit_ratio"] = [
                float(r) if n else None for r, n in zip(ratio, lookups, strict=True)
            ]
    worst: dict[str, Any] = {}
    starts = first.edges[:-1]
    for name, entry in classes.items():
        p99 = np.asarray(entry["p99"], dtype=float)
        if np.isfinite(p99).any():
            index = int(np.nanargmax(p99))
            worst[name] = {"p99": float(p99[index]), "t": float(starts[index])}
    drain: dict[str, Any] = {}
    for name, entry in tiers.items():
        figures = _drain(np.asarray(entry["queue_length"], dtype=float), starts)
        if figures is not None:
            drain[name] = figures
    return {
        "bucket": first.bucket,
        "t": starts.tolist(),
        "classes": classes,
        "tiers": tiers,
        "worst": worst,
        "drain": drain,
    }


def _drain(backlog: np.ndarray, starts: np.ndarray) -> dict[str, float | None] | None:
    """How long the largest backlog took to clear (docs/dynamic.md#drain-time), or None when
    the tier never held a backlog of at least one request on average over a bucket.

    The peak is the bucket with the largest time-average backlog; the backlog has drained at the
    first later bucket whose average is back to at most the level before the peak (its median)
    plus one request. Precision: one bucket.
    """
    if backlog.size == 0 or not np.isfinite(backlog).all():
        return None
    peak = int(np.argmax(backlog))
    if backlog[peak] < 1.0:
        return None
    baseline = float(np.median(backlog[:peak])) if peak else 0.0
    after = np.flatnonzero(backlog[peak + 1 :] <= baseline + 1.0)
    drained = float(starts[peak + 1 + after[0]]) if after.size else None
    return {
        "peak": float(backlog[peak]),
        "peak_at": float(starts[peak]),
        "drained_at": drained,
        "drain_time": drained - float(starts[peak]) if drained is not None else None,
    }


def _format_growth(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


def evaluate_slo(slo: Slo, model: Model, data: dict[str, Any]) -> dict[str, Any]:
    """One SLO verdict: the observed figure against the limit (an SLO without data fails)."""
    subject: dict[str, Any]
    if slo.class_index is not None:
        name = model.classes[slo.class_index].name
        subject = {"class": name}
        figures = data["classes"][name]
        if slo.statistic in STATISTICS:
            observed = figures["latency"][slo.statistic]
        elif slo.statistic == "error_rate":
            observed = figures["error_rate"]
        else:
            raise ValueError(f"SLO {slo.text!r}: a class has no statistic {slo.statistic!r}")
    elif slo.tier_index is not None:
        name = model.tiers[slo.tier_index].name
        subject = {"tier": name}
        figures = data["tiers"][name]
        if slo.statistic in ("utilization", "occupancy"):
            observed = figures[slo.statistic]
        elif slo.statistic in STATISTICS:
            observed = figures["wait"][slo.statistic]
        else:
            raise ValueError(f"SLO {slo.text!r}: a tier has no statistic {slo.statistic!r}")
    else:
        raise ValueError(f"SLO {slo.text!r} names neither a class nor a tier")
    passed = observed is not None and math.isfinite(observed) and observed <= slo.limit
    return {
        "slo": slo.text,
        "passed": bool(passed),
        "observed": observed,
        "limit": slo.limit,
        "line": slo.line,
        "statistic": slo.statistic,
        **subject,
    }


def _saturation_hint(model: Model, capsim_version: str) -> str | None:
    """The analytic saturation point (`capsim solve`), as a warning, when the formulas agree
    that an open station is overloaded."""
    from capsim.analysis.solve import UnstableModelError, solve

    try:
        solve(model, capsim_version=capsim_version)
    except UnstableModelError as error:
        found = re.search(r"system saturates at ([0-9.eE+\-]+) req/s", str(error))
        if found is None:
            return None
        return (
            f"saturation: the system saturates at about {found.group(1)} req/s "
            "(analytic estimate, see capsim solve)."
        )
    except (CapsimError, ArithmeticError, ValueError):
        return None
    # The formulas find a steady state (the overload comes from a profile peak, a closed
    # class, a finite queue ...): no single saturation rate to quote.
    return None


def summarise(
    model: Model,
    runs: list[RunResult],
    *,
    capsim_version: str,
    requested: int | None = None,
) -> Report:
    """Pool every replication of `model` into a Report whose data follows docs/results.md.

    With `requested` replications of which fewer ran (an interrupted run), the result is marked
    `partial`."""
    if not runs:
        raise ValueError("summarise needs at least one replication's results")
    warnings: list[str] = []
    tiers: dict[str, Any] = {}
    for tier in model.tiers:
        entry, stability = _summarise_tier(model, tier, runs)
        tiers[tier.name] = entry
        if not stability.stable:
            warnings.append(
                f"tier '{tier.name}' is overloaded: its queue grew by "
                f"{_format_growth(stability.growth_rate)} requests/s through the run; "
                "its figures are not steady-state figures."
            )
        if entry.get("overflow"):
            warnings.append(
                f"tier '{tier.name}' held the most requests capsim lets a tier hold waiting "
                f"({waiting_limit(tier):,}); {entry['overflow']:,} more per replication were "
                "turned away (counted as errors and as `overflow`): the tier is overloaded."
            )
    data: dict[str, Any] = {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "seed": model.seed,
        "replications": len(runs),
        "duration": runs[0].duration,
        "classes": _summarise_classes(model, runs),
        "tiers": tiers,
    }
    timeseries = summarise_timeseries(model, runs)
    if timeseries is not None:
        data["timeseries"] = timeseries
    data = dict(sanitise(data))  # type: ignore[call-overload]
    verdicts = [evaluate_slo(slo, model, data) for slo in model.slos]
    for verdict in verdicts:
        if verdict["observed"] is None:
            what = (
                f"class '{verdict['class']}'" if "class" in verdict else f"tier '{verdict['tier']}'"
            )
            warnings.append(
                f"SLO '{verdict['slo']}' could not be evaluated: {what} has no measurement "
                "in the window, so it counts as failed."
            )
    data["slos"] = verdicts
    data["passed"] = all(v["passed"] for v in verdicts)
    data["engine"] = {
        "path": runs[0].engine_path,
        "reason": runs[0].engine_reason,
        "events": sum(run.events for run in runs),
    }
    data["warmup"] = runs[0].warmup
    if any(not entry["stable"] for entry in tiers.values()):
        hint = _saturation_hint(model, capsim_version)
        if hint:
            warnings.append(hint)
    if requested is not None and len(runs) < requested:
        data["partial"] = True
        data["replications_requested"] = requested
        warnings.append(
            f"interrupted: these are the results of the {len(runs)} replication(s) completed "
            f"out of {requested} requested (partial results)."
        )
    data["warnings"] = list(warnings)
    return Report(data=dict(sanitise(data)), warnings=warnings)  # type: ignore[call-overload]
