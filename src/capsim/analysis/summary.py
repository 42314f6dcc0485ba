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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from capsim.analysis import cost, unfinished
from capsim.analysis.busiest_group import busiest_group, scaled_to_group
from capsim.analysis.deadlock import deadlocks_in_run
from capsim.analysis.peak import peak_arrival_rate, peak_figures
from capsim.analysis.phases import broke_sentence, judge_by_phase, whole_window_sentence
from capsim.analysis.report import Report
from capsim.analysis.stats import (
    Trend,
    clamped,
    falling_at_end,
    final_quarter_trend,
    net_growth_is_clear,
    queue_trend,
    rising_at_end,
    sanitise,
    settled_at_end,
    slow_growth,
    t_interval,
    trace_rise,
)
from capsim.engine import accelerator
from capsim.engine.histogram import Histogram
from capsim.engine.limits import waiting_limit
from capsim.engine.result import ClassRun, RunResult, TierRun
from capsim.engine.timeseries import TierSeries, quantile_per_bucket
from capsim.errors import CapsimError
from capsim.model import features
from capsim.model.types import (
    PERCENTILES,
    STATISTICS,
    Model,
    Slo,
    Tier,
    TraceArrivals,
)
from capsim.units import format_duration, percentile_key

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
TIER_CI_KEYS: tuple[str, ...] = ("utilization", "occupancy")


#: A q-quantile estimated from fewer than LOW_SAMPLE_FACTOR / (1 - q) values is flagged
#: `low_sample` (p99 from fewer than 1,000, p999 from fewer than 10,000): below that the
#: estimate rests on fewer than 10 values beyond it.
LOW_SAMPLE_FACTOR = 10.0


def percentile_table(model: Model) -> dict[str, float]:
    """Every percentile the result reports, name -> quantile, lowest first: SPEC's p50 ... p999
    and those asked for with `simulation.percentiles` / `--percentiles` (named by
    `capsim.units.percentile_key`)."""
    table = dict(PERCENTILES)
    for percent in model.percentiles:
        table.setdefault(percentile_key(percent), percent / 100.0)
    return dict(sorted(table.items(), key=lambda item: item[1]))


def fewest_samples(q: float) -> int:
    """The fewest values from which a q-quantile is not flagged `low_sample`."""
    return round(LOW_SAMPLE_FACTOR / (1.0 - q))


def low_sample(histogram: Histogram, percentiles: dict[str, float], figure: str) -> list[str]:
    """`figure.pXX` for every percentile estimated from too few values (none when empty)."""
    n = histogram.n
    return [f"{figure}.{name}" for name, q in percentiles.items() if 0 < n < fewest_samples(q)]


def time_statistics(
    histogram: Histogram, percentiles: dict[str, float] = PERCENTILES
) -> dict[str, float | None]:
    """mean, the percentiles (p50 ... p999 unless told) and max of a histogram of times; every
    value None when it is empty."""
    if histogram.n == 0:
        return dict.fromkeys(("mean", *percentiles, "max"))
    stats: dict[str, float | None] = {"mean": histogram.total / histogram.n}
    for name, q in percentiles.items():
        stats[name] = histogram.quantile(q)
    stats["max"] = histogram.max
    return stats


def share_key(limit: float) -> str:
    """The key of a latency limit in `classes.<c>.share_over`: its seconds, as Python's repr
    writes them (0.3, 1.0, 0.0005)."""
    return repr(float(limit))


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


def _interval(estimates: list[float], high: float = math.inf) -> list[float] | None:
    """The 95% t interval of the estimates, within the figure's possible values: [0, high]
    (a share's high is 1; times and rates have none)."""
    interval = clamped(t_interval(estimates), 0.0, high)
    return None if interval is None else [interval[0], interval[1]]


#: A queue's message-age statistics that carry a 95% interval across replications (what
#: `capsim check` compares against a baseline).
AGE_CI_KEYS = ("mean", "p99")


def age_estimates(per_run: list[TierRun]) -> dict[str, list[float]]:
    """A queue's mean and p99 message age, one estimate per replication (NaN when empty)."""
    empty = Histogram()
    ages = [t.age if t.age is not None else empty for t in per_run]
    return {f"age.{stat}": [_statistic(age, stat) for age in ages] for stat in AGE_CI_KEYS}


def _age_intervals(per_run: list[TierRun]) -> dict[str, list[float] | None]:
    """ci95 of a queue's mean and p99 message age, from each replication's own histogram
    (null when a replication had no message done)."""
    return {
        key: None if any(math.isnan(v) for v in values) else _interval(values)
        for key, values in age_estimates(per_run).items()
    }


def class_estimates(per_run: list[ClassRun], runs: list[RunResult]) -> dict[str, list[float]]:
    """A class's figures of CLASS_CI_KEYS, one estimate per replication (NaN: none measured)."""
    estimates: dict[str, list[float]] = {
        "throughput": [c.completed / run.duration for c, run in zip(per_run, runs, strict=True)],
        "error_rate": [_error_rate(c.completed, c.errors) for c in per_run],
    }
    for stat in ("mean", "p50", "p95", "p99"):
        estimates[f"latency.{stat}"] = [_statistic(c.latency, stat) for c in per_run]
    return estimates


def _fraction_busy(tier: Tier, time: float, tier_run: TierRun, run: RunResult) -> float:
    """Worker-seconds `time` over the tier's usable worker-seconds (its live ones when
    instances died) in one replication."""
    if tier_run.live_worker_time is not None:  # instances died: over the live ones
        return time / tier_run.live_worker_time if tier_run.live_worker_time > 0 else 0.0
    usable = min(tier_run.workers or tier.workers, tier.usable_workers)
    return time / (max(usable, 1) * run.duration)


def tier_estimates(tier: Tier, runs: list[RunResult]) -> dict[str, list[float]]:
    """A tier's `utilization` and `occupancy` (a queue's also `age.mean` and `age.p99`), one
    estimate per replication: what its ci95 is taken from."""
    per_run = [run.tiers[tier.index] for run in runs]
    pairs = list(zip(per_run, runs, strict=True))
    estimates = {
        "utilization": [_fraction_busy(tier, t.busy_time, t, run) for t, run in pairs],
        "occupancy": [
            _fraction_busy(tier, max(t.occupied_time, t.busy_time), t, run) for t, run in pairs
        ],
    }
    if tier.kind == "queue":
        estimates.update(age_estimates(per_run))
    return estimates


def per_replication_figures(model: Model, runs: list[RunResult]) -> dict[str, Any]:
    """The result's `per_replication`: each figure `capsim check` compares against a baseline,
    one value per replication (null: none measured), so that a later check run with the same
    seed can pair its replications with these (common random numbers: docs/ci.md)."""

    def listed(estimates: dict[str, list[float]]) -> dict[str, list[float | None]]:
        return {
            key: [v if math.isfinite(v) else None for v in values]
            for key, values in estimates.items()
        }

    return {
        "classes": {
            traffic.name: listed(
                class_estimates([run.classes[traffic.index] for run in runs], runs)
            )
            for traffic in model.classes
        },
        "tiers": {tier.name: listed(tier_estimates(tier, runs)) for tier in model.tiers},
    }


def _summarise_classes(model: Model, runs: list[RunResult]) -> dict[str, Any]:
    replications = len(runs)
    measured = sum(run.duration for run in runs)
    percentiles = percentile_table(model)
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
            "latency": time_statistics(latency, percentiles),
            "low_sample": low_sample(latency, percentiles, "latency"),
            **unfinished.class_figures(per_run),
        }
        if model.share_over:
            entry["share_over"] = {
                share_key(limit): latency.share_over(limit) for limit in model.share_over
            }
        if replications > 1:
            estimates = class_estimates(per_run, runs)
            entry["ci95"] = {
                key: _interval(estimates[key], 1.0 if key == "error_rate" else math.inf)
                for key in CLASS_CI_KEYS
            }
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


def assess_stability(
    tier_runs: list[TierRun],
    runs: list[RunResult],
    workers: int,
    *,
    late_onset: bool = True,
    servers_lost_at: float | None = None,
    pool_size: int | None = None,
) -> Stability:
    """The stability rule (docs/results.md, "Stable or overloaded").

    A replication's queue is *growing* when either
    * its queue trace shows a clear sustained rise: the robust (Theil-Sen) growth over the
      window is at least 5 requests, at least 4x the scatter around the trend, at least half
      the trace's median level, and the last quarter of the trace is above the first quarter
      by at least half of that growth; or
    * with `late_onset` (load or capacity changes during the run, `features.conditions_change`), the
      final quarter of its trace rises clearly (`rising_at_end`: an overload that began late in
      the window, such as a peak at its end); or
    * the work admitted is at or beyond capacity (admitted requests x mean time a worker is held
      per request >= workers x duration; with a database's `pool_size`, also admitted requests
      x mean time a connection is held >= pool_size x duration) and admitted requests outran
      completed ones by more than 4 Poisson standard deviations.
    With `late_onset`, a replication whose backlog is clearly falling over the final quarter of
    the window (`falling_at_end`: a spike that is draining) is not growing, whatever the whole
    window shows: stability is judged at the end of the measured window.
    A fault that loses servers fails their backlog at once, which empties a queue that was
    growing: with `servers_lost_at` (the first such fault on the tier), a replication whose
    backlog grew clearly before it (the same trend rule on the trace up to then, not draining
    at its end) is growing, whatever the window shows after it.
    The tier is unstable when at least half of the replications are growing; its growth rate
    is the median over those replications of the trend slope (or of the net growth per second
    when the trace is too short for a trend).
    """
    rates: list[float] = []
    for tier_run, run in zip(tier_runs, runs, strict=True):
        times = _trace_times(tier_run, run)
        before = _growth_before(times, tier_run.queue_trace, servers_lost_at)
        if before is not None:
            rates.append(before)
            continue
        if late_onset and falling_at_end(times, tier_run.queue_trace):
            # Draining after a spike: judged on the end of the window, where it recovers.
            continue
        trend = queue_trend(times, tier_run.queue_trace)
        if late_onset and trend is not None and trend.growing:
            # A step up in load (a failover's moved clients, a profile's plateau) raises the
            # queue to a higher steady level: a rise over the window, but not growth.
            trend = None if settled_at_end(tier_run.queue_trace, trend) else trend
        late = (
            rising_at_end(times, tier_run.queue_trace)
            if late_onset and not (trend is not None and trend.growing)
            else None
        )
        admitted = tier_run.arrivals - _refused(tier_run)
        net_rate = (admitted - tier_run.completed) / run.duration
        held = max(tier_run.occupied_time, tier_run.busy_time)
        capacity = max(tier_run.workers or workers, 1) * run.duration
        if tier_run.completed:
            offered_work = admitted * held / tier_run.completed
            at_capacity = offered_work >= capacity
            if pool_size is not None:
                connected = admitted * connection_time(tier_run) / tier_run.completed
                at_capacity = at_capacity or connected >= pool_size * run.duration
        else:
            at_capacity = admitted > 0
        if tier_run.overflow:
            # The backlog hit the engine's bound: count what it would have grown by.
            rates.append((admitted + tier_run.overflow - tier_run.completed) / run.duration)
        elif trend is not None and trend.growing:
            rates.append(_slope_at_end(times, tier_run.queue_trace, trend, late_onset))
        elif late is not None:
            # Overloaded late in the window (a peak at its end): the final quarter's slope.
            rates.append(late.slope)
        elif at_capacity and net_growth_is_clear(admitted, tier_run.completed):
            rates.append(net_rate)
    if rates and 2 * len(rates) >= len(runs):
        return Stability(stable=False, growth_rate=max(float(np.median(rates)), 0.0))
    if not late_onset:
        slow = _slow_growth(tier_runs, runs, workers)
        if slow is not None:
            return Stability(stable=False, growth_rate=slow)
    return Stability(stable=True, growth_rate=0.0)


#: A queue rising slowly counts as growing only while its workers are held at least this
#: share of the window: a growing queue leaves them no idle time.
SLOW_GROWTH_HELD = 0.95


def _slow_growth(tier_runs: list[TierRun], runs: list[RunResult], workers: int) -> float | None:
    """The pooled rise rule (docs/results.md, "A slow rise"): under constant conditions, the
    replications' last thirds stand above their first thirds by more than SLOW_GROWTH_Z
    standard errors together, with the workers held at least SLOW_GROWTH_HELD of the window;
    the growth rate (requests per second), or None."""
    pairs = list(zip(tier_runs, runs, strict=True))
    held = sum(max(t.occupied_time, t.busy_time) for t in tier_runs)
    capacity = sum(_worker_time(t, r, workers) for t, r in pairs)
    if capacity <= 0 or held < SLOW_GROWTH_HELD * capacity:
        return None
    rises = [trace_rise(_trace_times(t, r), t.queue_trace) for t, r in pairs]
    if any(rise is None for rise in rises):
        return None
    return slow_growth([rise for rise in rises if rise is not None])


def _worker_time(tier_run: TierRun, run: RunResult, workers: int) -> float:
    """Worker-seconds the tier had in the window (its live instances' when instances die)."""
    if tier_run.live_worker_time is not None:
        return tier_run.live_worker_time
    return max(tier_run.workers or workers, 1) * run.duration


def _slope_at_end(times: np.ndarray, trace: np.ndarray, trend: Trend, late_onset: bool) -> float:
    """How fast a growing backlog grows at the end of the window. Under a changing load
    (`late_onset`) the whole window's trend averages the calm before a step up with the climb
    after it (a queue flat for 50 s, then climbing 56/s for 50 s, had a window trend of 27/s):
    when the final quarter climbs faster, its slope is the growth at the end."""
    if late_onset:
        late = final_quarter_trend(times, trace)
        if late is not None and late.slope > trend.slope:
            return late.slope
    return trend.slope


def connection_time(tier_run: TierRun) -> float:
    """Connection-seconds a database's pool lent in the window: a query holds its connection
    while it waits at a server and while a worker holds it (`queue_time` + held time)."""
    return max(tier_run.occupied_time, tier_run.busy_time) + tier_run.queue_time


def _changes_during_run_at(model: Model, tier: Tier) -> bool:
    """Whether load or capacity change during the run at `tier`, so that its stability is judged
    at the end of the window (`late_onset`): `features.conditions_change_at` (another tier's
    own autoscaler does not count), where a fault in force from the start to the end of the run
    changes nothing over time. Under constant conditions a backlog that falls late in the window
    is a fluctuation, as one that rises late is: the whole window decides."""
    return tier.index in _per_model(model, "changing", _tiers_changing_during_run)


def _tiers_changing_during_run(model: Model) -> set[int]:
    lasting = tuple(f for f in model.faults if not (f.at <= 0.0 and f.until is None))
    return features.tiers_where_conditions_change(replace(model, faults=lasting))


#: The last model's answers to questions asked tier by tier about the whole model (found once:
#: per tier they cost tiers x tiers, minutes for a model of thousands of tiers). Keyed by the
#: model's identity, which the entry's reference keeps from being reused.
_ANSWERS: dict[str, tuple[Model, Any]] = {}


def _per_model(model: Model, question: str, answer: Callable[[Model], Any]) -> Any:
    held = _ANSWERS.get(question)
    if held is not None and held[0] is model:
        return held[1]
    found = answer(model)
    _ANSWERS[question] = (model, found)
    return found


def _growth_before(times: np.ndarray, trace: np.ndarray, until: float | None) -> float | None:
    """The backlog's growth rate when it grew clearly (and was not draining) before `until`,
    the first fault that lost the tier's servers and emptied its queue; else None."""
    if until is None:
        return None
    trace = np.asarray(trace, dtype=np.float64)
    inside = times < until
    if not inside.any():
        return None
    trend = queue_trend(times[inside], trace[inside])
    if trend is None or not trend.growing or falling_at_end(times[inside], trace[inside]):
        return None
    return trend.slope


def _servers_lost_at(model: Model, tier: Tier) -> float | None:
    """When the first fault that loses some of `tier`'s servers begins (None: no such fault)."""
    return min((f.at for f in model.faults if f.tier == tier.index and f.lose), default=None)


def _retried_tiers(model: Model) -> set[int]:
    """Tiers called with a timeout, retries, a breaker or a bulkhead somewhere (their entries
    count retries, timeouts, short-circuited and bulkhead-refused calls)."""
    return features.callees_reporting(model, "retries")


def _hedged_tiers(model: Model) -> set[int]:
    """Tiers some caller calls with a hedge (their entries count the hedges)."""
    return features.callees_reporting(model, "hedges")


def _hedge_figures(per_run: list[TierRun]) -> dict[str, Any]:
    """`tiers.<t>.hedges` (docs/results.md#hedged-calls): per replication, and the extra load."""
    replications = len(per_run)
    calls = sum(t.hedged_calls for t in per_run)
    sent = sum(t.hedges for t in per_run)
    cancelled = sum(t.hedges_cancelled for t in per_run)
    return {
        "calls": round(calls / replications),
        "sent": round(sent / replications),
        "won": round(sum(t.hedge_wins for t in per_run) / replications),
        "cancelled": round(cancelled / replications),
        "abandoned": round(sum(t.hedges_abandoned for t in per_run) / replications),
        "share": sent / calls if calls else 0.0,
        "extra_load": (sent - cancelled) / calls if calls else 0.0,
    }


def _summarise_tier(
    model: Model, tier: Tier, runs: list[RunResult], retried: set[int] | None = None
) -> tuple[dict[str, Any], Stability]:
    """One tier's figures; `retried` is `_retried_tiers(model)` (found once per summary: per
    tier it would cost tiers x tiers)."""
    replications = len(runs)
    measured = sum(run.duration for run in runs)
    per_run = [run.tiers[tier.index] for run in runs]
    percentiles = percentile_table(model)
    waits = Histogram.merged([t.wait for t in per_run])

    busy = tier_estimates(tier, runs)
    utilization, occupancy = busy["utilization"], busy["occupancy"]
    queue_mean = [t.queue_time / run.duration for t, run in zip(per_run, runs, strict=True)]
    queue_max = max(t.queue_max for t in per_run)
    arrivals = sum(t.arrivals for t in per_run)
    conditions_change = _per_model(model, "changes", features.conditions_change)
    stability = assess_stability(
        per_run,
        runs,
        tier.workers,
        late_onset=_changes_during_run_at(model, tier),
        servers_lost_at=_servers_lost_at(model, tier),
        pool_size=tier.pool.size if tier.pool is not None else None,
    )
    entry: dict[str, Any] = {
        "utilization": float(np.mean(utilization)),
        "throughput": sum(t.completed for t in per_run) / measured,
        "rejected": round(sum(_refused(t) for t in per_run) / replications),
        "stable": stability.stable,
        "queue_length": {"mean": float(np.mean(queue_mean)), "max": queue_max},
        "wait": time_statistics(waits, percentiles),
        "low_sample": low_sample(waits, percentiles, "wait"),
        "occupancy": float(np.mean(occupancy)),
        "arrivals": round(arrivals / replications),
        "offered_rate": arrivals / measured,
        "growth_rate": stability.growth_rate,
        "timed_out": round(sum(t.timed_out for t in per_run) / replications),
        "kind": tier.kind,
        "workers": tier.workers,
        **unfinished.tier_figures(per_run),
    }
    if stability.stable and _changes_during_run_at(model, tier):
        # Not growing at the end, maybe falling: still not recovered when the window ended?
        undrained = unfinished.assess_undrained(per_run, capacity_when_up(tier, per_run))
        if undrained is not None:
            stability = Stability(stable=False, growth_rate=0.0)
            entry["stable"] = False
            entry["undrained"] = undrained.as_dict()
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
        entry["in_service_at_end"] = round(sum(t.in_service_at_end for t in per_run) / replications)
        ages = Histogram.merged([t.age for t in per_run if t.age is not None])
        entry["age"] = time_statistics(ages, percentiles)
        entry["low_sample"] += low_sample(ages, percentiles, "age")
        if tier.max_retries:
            entry["redeliveries"] = round(sum(t.redeliveries for t in per_run) / replications)
            entry["dead_letters"] = round(sum(t.dead_letters for t in per_run) / replications)
    if tier.pool is not None:
        pool_waits = [t.pool_wait for t in per_run if t.pool_wait is not None]
        entry["pool"] = {
            "size": tier.pool.size,
            "rejected": round(sum(t.pool_rejected for t in per_run) / replications),
            "wait": time_statistics(Histogram.merged(pool_waits), percentiles),
            "backlog_at_end": round(sum(t.pool_waiting_at_end for t in per_run) / replications),
            "utilization": float(
                np.mean(
                    [
                        connection_time(t) / (tier.pool.size * run.duration)
                        for t, run in zip(per_run, runs, strict=True)
                    ]
                )
            ),
        }
    if tier.index in (_per_model(model, "retried", _retried_tiers) if retried is None else retried):
        entry["retries"] = round(sum(t.retries for t in per_run) / replications)
        entry["call_timeouts"] = round(sum(t.call_timeouts for t in per_run) / replications)
        entry["short_circuited"] = round(sum(t.short_circuited for t in per_run) / replications)
        entry["bulkhead_rejected"] = round(sum(t.bulkhead_rejected for t in per_run) / replications)
    if tier.index in _per_model(model, "hedged", _hedged_tiers):
        entry["hedges"] = _hedge_figures(per_run)
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
    consumers = tier.consumer_scaling
    if consumers is not None:
        # A queue's consumers scaled on its backlog: the first replication's changes.
        entry["autoscale"] = {
            "metric": consumers.metric,
            "target": consumers.target,
            "min": consumers.min,
            "max": consumers.max,
            "scaling": [{"t": t, "from": a, "to": b} for t, a, b in per_run[0].scaling],
        }
    if replications > 1:
        entry["ci95"] = {
            "utilization": _interval(utilization, 1.0),
            "occupancy": _interval(occupancy, 1.0),
        }
        if tier.kind == "queue":
            entry["ci95"].update(_age_intervals(per_run))
    peak = peak_figures(tier, runs) if conditions_change else None
    if peak is not None:
        entry["peak"] = peak  # what its utilization and occupancy SLOs are judged on
    groups = _summarise_groups(model, tier, runs)
    if groups:
        entry["groups"] = groups
        if stability.stable and not all(group["stable"] for group in groups.values()):
            # A saturated group makes the tier overloaded, whatever the pooled figures say.
            growth = max(group["growth_rate"] for group in groups.values())
            stability = Stability(stable=False, growth_rate=growth)
            entry["stable"], entry["growth_rate"] = False, growth
    return entry, stability


def _offered_to_groups(tier_run: TierRun) -> dict[str, TierRun]:
    """A replication's group figures, each group's arrivals counting its share of the requests
    the tier admitted but had not yet routed to a group when the window closed (waiting for a
    connection of the tier's pool): in proportion to the group's share of the routed arrivals,
    the pool's line being FIFO over the same mix of reads and writes."""
    groups = tier_run.groups or {}
    routed = sum(g.arrivals for g in groups.values())
    in_groups = sum(g.arrivals - g.rejected - g.completed for g in groups.values())
    unrouted = tier_run.arrivals - tier_run.rejected - tier_run.completed - in_groups
    if unrouted <= 0 or routed == 0:
        return dict(groups)
    return {
        name: replace(g, arrivals=g.arrivals + round(unrouted * g.arrivals / routed))
        for name, g in groups.items()
    }


def _summarise_groups(model: Model, tier: Tier, runs: list[RunResult]) -> dict[str, Any]:
    """`tiers.<db>.groups` (docs/results.md, "Database groups"): a database with replicas,
    its primaries and its replicas each with the tier's own rules; `{}` for any other tier."""
    if any(run.tiers[tier.index].groups is None for run in runs):
        return {}
    offered = [_offered_to_groups(run.tiers[tier.index]) for run in runs]
    measured = sum(run.duration for run in runs)
    out: dict[str, Any] = {}
    for name in offered[0]:
        group_runs = [groups[name] for groups in offered]
        workers = group_runs[0].workers
        capacity = max(workers, 1) * measured
        if all(g.live_worker_time is not None for g in group_runs):  # instances died
            capacity = sum(g.live_worker_time or 0.0 for g in group_runs)
        busy = sum(g.busy_time for g in group_runs)
        occupied = sum(max(g.occupied_time, g.busy_time) for g in group_runs)
        completed = sum(g.completed for g in group_runs)
        stability = assess_stability(
            group_runs,
            runs,
            workers,
            late_onset=_changes_during_run_at(model, tier),
            servers_lost_at=_servers_lost_at(model, tier),
        )
        out[name] = {
            "offered_rate": sum(g.arrivals for g in group_runs) / measured,
            "throughput": completed / measured,
            "workers": workers,
            "utilization": busy / capacity if capacity > 0 else 0.0,
            "occupancy": occupied / capacity if capacity > 0 else 0.0,
            # The utilization law's capacity: completions per second with every worker held.
            "max_rate": completed / occupied * workers if occupied > 0 else None,
            "stable": stability.stable,
            "growth_rate": stability.growth_rate,
        }
    return out


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
    # Tier counts are counted inside the window only: per second of each bucket's measured part.
    warmup = runs[0].warmup
    measured = len(series) * (
        np.maximum(first.edges[1:], warmup) - np.maximum(first.edges[:-1], warmup)
    )
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

        # Workers per instance that can be busy (a partitioned queue's are capped); a queue
        # whose consumers scale counts consumers as instances.
        per_instance = _usable_concurrency(tier)
        if tier.consumer_scaling is not None:
            per_instance = tier.consumer_scaling.per_consumer
        worker_time = total("instance_time") * max(per_instance, 1)

        def over_workers(values: np.ndarray, worker_time: np.ndarray = worker_time) -> list[float]:
            share = np.divide(values, worker_time, out=np.zeros(values.size), where=worker_time > 0)
            return share.tolist()

        tiers[tier.name] = {
            "instances": (total("instance_time") / exposure).tolist(),
            "utilization": over_workers(total("busy_time")),
            "occupancy": over_workers(total("occupied_time")),
            "queue_length": (total("queue_time") / exposure).tolist(),
            "in_flight": (total("present_time") / exposure).tolist(),
            **_tier_counts_per_second(tier, tier_runs, measured),
        }
        counted = [(t.lookups, t.hits) for t in tier_runs]
        if tier.cold_lru is not None and all(a is not None and b is not None for a, b in counted):
            lookups = np.sum(np.asarray([a for a, _ in counted], dtype=float), axis=0)
            hits = np.sum(np.asarray([b for _, b in counted], dtype=float), axis=0)
            ratio = np.divide(hits, lookups, out=np.zeros(lookups.size), where=lookups > 0)
            tiers[tier.name]["hit_ratio"] = [
                float(r) if n else None for r, n in zip(ratio, lookups, strict=True)
            ]
    starts = first.edges[:-1]
    worst = _worst_windows(classes, starts, first.bucket, runs[0].warmup)
    drain: dict[str, Any] = {}
    for name, entry in tiers.items():
        figures = _drain(np.asarray(entry["queue_length"], dtype=float), starts, runs[0].warmup)
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


def _worst_windows(
    classes: dict[str, Any], starts: np.ndarray, bucket: float, warmup: float
) -> dict[str, Any]:
    """Per class, the measured bucket with the highest p99 and its start: buckets of the
    warm-up are left out (the results exclude it: a cold start's worst bucket is not the
    system's), and so is one that straddles its end unless no bucket starts after it."""
    measured = starts >= warmup - 1e-9 * max(bucket, 1.0)
    if not measured.any():
        measured = starts + bucket > warmup
    worst: dict[str, Any] = {}
    for name, entry in classes.items():
        p99 = np.where(measured, np.asarray(entry["p99"], dtype=float), np.nan)
        if np.isfinite(p99).any():
            index = int(np.nanargmax(p99))
            worst[name] = {"p99": float(p99[index]), "t": float(starts[index])}
    return worst


def _tier_counts_per_second(
    tier: Tier, tier_runs: list[TierSeries], measured: np.ndarray
) -> dict[str, list[float]]:
    """A tier's `arrivals`, `throughput`, `errors` per second of each bucket's measured part
    (NaN, shown as null, for a bucket wholly in the warm-up), and a queue's `dead_letters` per
    second and `age_p99` (docs/dynamic.md#time-series)."""

    def per_second(name: str) -> list[float]:
        counts = np.sum([getattr(t, name) for t in tier_runs], axis=0)
        return np.divide(
            counts, measured, out=np.full(measured.size, np.nan), where=measured > 0
        ).tolist()

    figures = {
        "arrivals": per_second("arrivals"),
        "throughput": per_second("completed"),
        "errors": per_second("errors"),
    }
    ages = [t.age for t in tier_runs if t.age is not None]
    if tier.is_async and len(ages) == len(tier_runs):
        figures["dead_letters"] = per_second("dead_letters")
        figures["age_p99"] = quantile_per_bucket(np.sum(ages, axis=0), 0.99).tolist()
    return figures


#: A drain that did not finish is warned about when its peak was at least this many times the
#: drained threshold (a real disturbance, not the noise of a steady queue).
UNDRAINED_WARNING_FACTOR = 10.0


def _drain(backlog: np.ndarray, starts: np.ndarray, warmup: float = 0.0) -> dict[str, Any] | None:
    """How long the largest backlog took to clear (docs/dynamic.md#drain-time), or None when
    the tier never held a backlog of at least one request on average over a bucket.

    The peak is the bucket with the largest time-average backlog. The disturbance began where
    the backlog last left its quiet level before the peak: after the last earlier bucket within
    one request of the lowest earlier average (buckets of the warm-up, where queues are still
    filling from empty, count only when no measured bucket comes before the peak). The level before the disturbance is the median
    of the buckets up to that one (0 when the peak is the first bucket). The backlog has drained
    at the first bucket after the peak whose average is at most that level plus the larger of
    one request and the level's own spread (90th percentile minus median); with none before the
    end of the run, `drained` is false and `drained_at` null. Precision: one bucket.
    """
    if backlog.size == 0 or not np.isfinite(backlog).all():
        return None
    peak = int(np.argmax(backlog))
    if backlog[peak] < 1.0:
        return None
    before = backlog[:peak]
    measured = int(np.searchsorted(starts, warmup - 1e-9))  # first bucket after the warm-up
    first = measured if measured < peak else 0
    known: float | None
    if before.size:
        quiet = first + np.flatnonzero(before[first:] <= before[first:].min() + 1.0)[-1]
        calm = before[first : quiet + 1]
        level = float(np.median(calm))
        spread = float(np.quantile(calm, 0.9)) - level
        disturbed_at = float(starts[quiet + 1])
        # Rising from the first bucket considered on, with requests already waiting in it: the
        # disturbance was under way when it began, and the window shows no level before it.
        rising_from_start = quiet == first and level >= 1.0
        known = None if rising_from_start else level
        if rising_from_start:
            disturbed_at = float(starts[first])
    else:
        level, spread, disturbed_at = 0.0, 0.0, float(starts[0])
        known = level
    threshold = level + max(1.0, spread)
    after = np.flatnonzero(backlog[peak + 1 :] <= threshold)
    drained = float(starts[peak + 1 + after[0]]) if after.size else None
    return {
        "peak": float(backlog[peak]),
        "peak_at": float(starts[peak]),
        "drained": drained is not None,
        "drained_at": drained,
        "drain_time": drained - float(starts[peak]) if drained is not None else None,
        "disturbed_at": disturbed_at,
        "level_before": known,
        "threshold": threshold,
        "end": float(backlog[-1]),
    }


def _ended_trace_warnings(model: Model) -> list[str]:
    """A class whose trace (without loop) ends before the run does stops arriving: say so."""
    warnings = []
    for traffic in model.classes:
        trace = traffic.process
        if not isinstance(trace, TraceArrivals) or trace.loop or not trace.times.size:
            continue
        end = float(trace.times[-1])
        if end < model.horizon:
            warnings.append(
                f"class '{traffic.name}': its trace {trace.source!r} ends at {end:.6g}s of "
                f"simulated time, before the run ends at {model.horizon:.6g}s; the class sends "
                "no requests after that (add loop: true to repeat the trace)."
            )
    return warnings


def _rate_beside_a_profile_warnings(model: Model) -> list[str]:
    """A class with a profile and a `rate:` that is not the profile's first point: the profile
    sets the rate, so that rate (a what-if such as `--set traffic.browse.rate=500/s`) is
    ignored; say so rather than answer a question that was not asked."""
    return [
        f"class '{traffic.name}': rate: {traffic.rate:,.4g}/s is ignored: its profile sets the "
        f"rate over time, starting at {traffic.profile[0].rate:,.4g}/s; change the profile's "
        "points, or scale the class with --load."
        for traffic in model.classes
        if traffic.profile
        and traffic.rate is not None
        and not math.isclose(traffic.rate, traffic.profile[0].rate, rel_tol=1e-6)
    ]


def _profile_after_the_run_warnings(model: Model) -> list[str]:
    """A class whose profile changes after the run ends: those rates are never simulated (a
    spike written at 7 min is not in a run shortened to end at 5 min)."""
    warnings = []
    for traffic in model.classes:
        at_end = traffic.rate_at(model.horizon) if traffic.profile else 0.0
        later = [p for p in traffic.profile if p.at > model.horizon and p.rate != at_end]
        if not later:
            continue
        first = later[0]
        warnings.append(
            f"class '{traffic.name}': its profile changes after the run ends at "
            f"{format_duration(model.horizon)} (warm-up + duration), to {first.rate:,.4g}/s at "
            f"{format_duration(first.at)}; those rates are not simulated: lengthen "
            "simulation.duration (--duration) to include them."
        )
    return warnings


def tiers_undrained(tiers: dict[str, Any]) -> list[str]:
    """The tiers whose backlog had not drained by the end of the window (which fails the run)."""
    return [name for name, entry in tiers.items() if "undrained" in entry]


def _undrained_warnings(timeseries: dict[str, Any], failing: set[str]) -> list[str]:
    """A plain statement for every tier whose disturbance had not drained by the end (those
    `failing` for it already have their own, stronger warning)."""
    warnings = []
    for name, drain in timeseries.get("drain", {}).items():
        if drain["drained"] or drain["peak"] < UNDRAINED_WARNING_FACTOR * drain["threshold"]:
            continue
        if name in failing:
            continue
        if drain["level_before"] is None:
            before = (
                f"it was already rising when the window began (t = {drain['disturbed_at']:g}s: "
                "a disturbance under way from the start, with no level before it to go back to)"
            )
        else:
            before = (
                f"against {_level(drain['level_before'])} before the disturbance "
                f"(from t = {drain['disturbed_at']:g}s)"
            )
        warnings.append(
            f"tier '{name}' had not drained by the end of the run: its backlog peaked at "
            f"{drain['peak']:,.0f} (bucket from t = {drain['peak_at']:g}s) and was still "
            f"{drain['end']:,.0f} in the last bucket, {before}; run longer to see it drain."
        )
    return warnings


def _level(backlog: float) -> str:
    """A time-average backlog as a count (8,450, not 8.45e+03); a small one to 3 digits."""
    return f"{backlog:,.0f}" if backlog >= 100 else f"{backlog:.3g}"


def _format_growth(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


def slo_figure(slo: Slo) -> tuple[str, ...]:
    """Where an SLO's figure sits in its class's or tier's result entry (a key path)."""
    statistic = slo.statistic
    if statistic == "share_over":
        assert slo.threshold is not None
        return ("share_over", share_key(slo.threshold))
    if statistic == "backlog":
        return ("backlog", "max")
    for prefix, figure in (("wait_", "wait"), ("age_", "age")):
        if statistic.startswith(prefix):
            return (figure, statistic.removeprefix(prefix))
    if statistic in STATISTICS:
        return ("latency" if slo.class_index is not None else "wait", statistic)
    return (statistic,)


def overload_entry(
    name: str, tier: dict[str, Any], open_offered: float, capacity: float | None = None
) -> dict[str, Any]:
    """The failure an overloaded tier adds to a run (docs/results.md, "Overload fails the run").

    `capacity`: what the tier completes per second with every worker of every instance up and
    held (`capacity_when_up`, or a database group's `max_rate`); without either, by the
    utilization law on the entry's figures: throughput / the share of its workers held (or of
    its pool's connections lent, when that gives less).
    `saturation_rate`: the open load at which the tier's arrivals would equal that capacity,
    the measured mix kept (open offered rate x capacity / the tier's offered rate); None
    without open traffic or arrivals.
    """
    throughput = float(tier.get("throughput") or 0.0)
    held = max(float(tier.get("occupancy") or 0.0), float(tier.get("utilization") or 0.0))
    if capacity is None:
        capacity = tier.get("max_rate")
    if capacity is None:
        capacity = throughput / held if held > 0 else throughput
        lent = float((tier.get("pool") or {}).get("utilization") or 0.0)
        if lent > 0:  # a database's pool: with every connection lent, if that is less
            capacity = min(capacity, throughput / lent)
    offered = float(tier.get("offered_rate") or 0.0)
    saturation = open_offered * capacity / offered if offered > 0 and open_offered > 0 else None
    return {
        "tier": name,
        "growth_rate": float(tier.get("growth_rate") or 0.0),
        "capacity": capacity,
        "offered_rate": offered,
        "saturation_rate": saturation,
    }


def capacity_when_up(tier: Tier, per_run: list[TierRun]) -> float | None:
    """Requests per second `tier` completes with every worker of every instance up and held
    (docs/results.md, "Overload fails the run"): its completions per worker-second held, pooled
    over replications, times its usable workers with all its instances up (an autoscaled tier's
    at its `max`, a queue's scaled consumers at theirs; a database's pool `size` when that is
    fewer). None when no worker was ever held.
    So a tier that was down for part of the run, or scaled in, is not diluted by that time."""
    held = sum(max(t.occupied_time, t.busy_time) for t in per_run)
    if held <= 0:
        return None
    workers = tier.usable_workers
    if tier.autoscale is not None:
        workers = tier.autoscale.max * tier.concurrency
    if tier.consumer_scaling is not None:
        workers = tier.consumer_scaling.max * tier.consumer_scaling.per_consumer
    if tier.pool is not None:
        # At most `size` queries in flight: a pool smaller than the workers is the limit.
        workers = min(workers, tier.pool.size)
    return sum(t.completed for t in per_run) / held * workers


def _overload_failure(
    name: str, tier: dict[str, Any], open_offered: float, capacity: float | None = None
) -> dict[str, Any]:
    """The tier's failure; for a database whose group is overloaded, the first such group's
    figures (its growth, capacity and offered rate), named in `group`."""
    groups = tier.get("groups") or {}
    overloaded = [group for group, figures in groups.items() if not figures["stable"]]
    if not overloaded:
        return overload_entry(name, tier, open_offered, capacity)
    group = max(overloaded, key=lambda g: groups[g]["growth_rate"])
    failure = overload_entry(name, groups[group], open_offered)
    failure["group"] = group
    return failure


def _note_autoscaler_lag(tier: Tier, first_run: TierRun, failure: dict[str, Any]) -> None:
    """An autoscaled tier overloaded below what its `max` instances carry: its `capacity` (at
    the max) exceeds what it was offered, so the overload is the autoscaler's lag, not a lack of
    capacity. `failure["autoscale"]` records the max and the instances the first replication
    ended with, for the sentence and the verdict line."""
    scaling = tier.autoscale
    if scaling is None or scaling.scale_to_zero:
        return
    if failure["capacity"] is None or failure["capacity"] <= failure["offered_rate"]:
        return
    changes = first_run.scaling
    failure["autoscale"] = {
        "max": scaling.max,
        "started_with": tier.instances,
        "instances_at_end": changes[-1][2] if changes else tier.instances,
    }


#: How far above the window's mean a tier's busiest minute of arrivals must be to be shown
#: beside it in an overload's sentence (below it the two read alike).
_PEAK_OFFERED_SHOWN = 1.01


def _note_peak_offered(tier: Tier, runs: list[RunResult], failure: dict[str, Any]) -> None:
    """Under a profile (load changing during the run) the window's mean `offered_rate` may be
    below the tier's `capacity` although the tier is overloaded at its peak: record the busiest
    minute's arrivals, `offered_peak` {value, at, span}, for the sentence and the verdict line."""
    peak = peak_arrival_rate(tier, runs)
    if peak is not None and peak.value > _PEAK_OFFERED_SHOWN * failure["offered_rate"]:
        failure["offered_peak"] = {"value": peak.value, "at": peak.at, "span": peak.span}


def _offered_text(failure: dict[str, Any]) -> str:
    """`offered X/s`, and under a profile the busiest minute's arrivals beside the mean."""
    text = f"offered {failure['offered_rate']:,.1f}/s"
    peak = failure.get("offered_peak")
    if peak:
        text += (
            f" on average, {peak['value']:,.1f}/s in its busiest {peak['span']:g}s"
            f" from t = {peak['at']:g}s"
        )
    return text


def _autoscaler_lag_text(failure: dict[str, Any]) -> str:
    """The clause of `overload_sentence` for an autoscaled tier overloaded below its max."""
    lag = failure.get("autoscale")
    if not lag:
        return ""
    started, ended = lag["started_with"], lag["instances_at_end"]
    if ended > started:
        ran = (
            f"it started with {started} and had {ended} at the end (first replication): it was "
            "overloaded while its autoscaler scaled up (syncs, then each new instance's "
            "startup_time)"
        )
    else:
        ran = (
            f"it ran the {started} it started with to the end (first replication): the run "
            "ended before its autoscaler added any (it syncs every sync_period, and a new "
            "instance takes its startup_time)"
        )
    return (
        f"; that capacity is its autoscale max of {lag['max']} instances, but {ran}, not for "
        "want of capacity at its max; its instances over time are in the time series "
        f"(--format json), and tiers.{failure['tier']}.instances sets where it starts"
    )


def _behind_another_overload(
    model: Model, classes: dict[str, Any], overloaded: list[dict[str, Any]], open_offered: float
) -> None:
    """An overloaded tier that another overloaded tier calls (directly or further down) is
    offered only what that tier's backlog lets through, so its arrivals per open request, and
    the saturation rate read from them, are too low and too high. Such a tier's
    `saturation_rate` takes its arrivals from the traffic equations at the run's class rates
    (`held_back_by` names the tier upstream) when those are more than it was offered: at 3x a
    lagging BFF held back logins, and auth, which saturates at 10,000/s, read "saturates near
    14,794.9/s". Open classes only, clients that stay where they are."""
    if len(overloaded) < 2 or model.traffic_moves or any(c.is_closed for c in model.classes):
        return
    from capsim.model.visits import calls_reach, expected_visits

    names = {failure["tier"]: failure for failure in overloaded}
    for failure in overloaded:
        tier = model.tier(failure["tier"])
        upstream = [
            name
            for name in names
            if name != tier.name and calls_reach(model, model.tier(name).index, tier.index)
        ]
        if not upstream or failure.get("saturation_rate") is None:
            continue
        visits = expected_visits(model)[:, tier.index]
        expected = sum(
            classes[traffic.name]["offered_rate"] * visits[traffic.index]
            for traffic in model.classes
        )
        if expected > failure["offered_rate"]:
            failure["saturation_rate"] = open_offered * failure["capacity"] / expected
            failure["held_back_by"] = upstream[0]


def overload_sentence(failure: dict[str, Any]) -> str:
    """One warning line for an overloaded tier: what grows, how fast, where it saturates."""
    where = f"tier '{failure['tier']}'"
    if failure.get("group"):
        where += f" (its {failure['group']} group)"
    text = (
        f"{where} is OVERLOADED, which fails the run: its backlog grew by "
        f"{_format_growth(failure['growth_rate'])} requests/s at the end of the run "
        f"({_offered_text(failure)}, capacity {failure['capacity']:,.1f}/s)"
    ) + _autoscaler_lag_text(failure)
    if failure.get("saturation_rate") and failure.get("held_back_by"):
        text += (
            f"; at this mix it saturates near {failure['saturation_rate']:,.1f}/s of open traffic"
            " (its capacity over the arrivals per open request the traffic equations give: "
            f"overloaded '{failure['held_back_by']}' upstream held back part of its arrivals)"
        )
    elif failure.get("saturation_rate"):
        text += (
            f"; at this mix it saturates near {failure['saturation_rate']:,.1f}/s of open traffic"
            " (this run's utilization-law estimate: the tier's capacity over its arrivals per "
            "open request)"
        )
    return text + "; its figures are not steady-state figures."


#: How busy a stable tier must be in the run for the formulas' overload to be taken: a tier
#: whose demand the formulas know exactly (no calls held through, so offered rate x mean
#: service time), and one whose blocking workers wait on calls (a holding time the formulas
#: approximate, so only when the run agrees it is all but full).
_BUSY_EXACT, _BUSY_APPROXIMATE = 0.85, 0.97
#: Offered work at its capacity to within what the formulas resolve: from there on they
#: overrule the run. A queue offered exactly its capacity has no steady state either (its
#: backlog wanders without bound, more slowly than a finite run can show), and one offered 0.1%
#: less has a steady state no run reaches: an enrich consumer the formulas put at 99.95% (its
#: callers' timeouts cut the calls' tail) has a mean backlog of 1,515 messages, 3.8 s of wait,
#: and takes days of simulated time to settle, while its 45 s windows passed the gate.
_AT_CAPACITY = 0.999


def _overloads_too_slow_to_see(
    model: Model, tiers: dict[str, Any], open_offered: float, duration: float, capsim_version: str
) -> list[dict[str, Any]]:
    """Tiers the run found stable although the offered work is at least their capacity
    (utilization law: offered rate x mean holding time >= workers, whatever the service
    distribution): a queue of slow jobs (transcoding, 20 s each) grows too slowly for a window
    of a few service times to show it. Their entry becomes `stable: false`, with the formulas'
    excess as `growth_rate`. Only when nothing changes the tier's load or capacity during the
    run (a profile, a fault, its own autoscaler: the formulas' one load point would be the
    wrong one; another tier's autoscaler changes only that tier), for tiers nothing caps (a
    waiting timeout, a rate limit, callers' timeouts, retries, breakers or bulkheads turn an
    overload into errors), that the run found busy and offered the formulas' rate (no loss
    upstream that the formulas do not see)."""
    busy = [
        name
        for name, entry in tiers.items()
        if entry["stable"] and _busy_enough(model, name, entry)
    ]
    # A fault in force for the whole run changes nothing over time: the formulas' one load
    # point is still the run's (the run's own offered rate is checked against it below).
    changing = _per_model(model, "changing", _tiers_changing_during_run)
    bounded = _per_model(model, "bounded", _bounded_by_their_users)
    busy = [
        name
        for name in busy
        if model.tier(name).index not in changing and model.tier(name).index not in bounded
    ]
    if not busy:
        return []

    try:
        solved = _solved(model, capsim_version)
    except (CapsimError, ArithmeticError, ValueError):
        return []
    guarded = features.callees_reporting(model, "retries")
    failures = []
    for found in [*solved["overloaded"], *_at_capacity_edge(solved)]:
        tier, entry = model.tier(found["tier"]), tiers[found["tier"]]
        capped = tier.timeout is not None or tier.rate_limit is not None or tier.index in guarded
        expected = found["offered_rate"]
        fewer = expected - float(entry.get("offered_rate") or 0.0)
        if tier.name not in busy or capped or entry.get("rejected") or found["rho"] < _AT_CAPACITY:
            continue
        if fewer > 4.0 * math.sqrt(expected / duration):  # the run was offered less
            continue
        entry["stable"] = False
        entry["growth_rate"] = max(expected - found["capacity"], 0.0)
        group = _busiest_group(entry)
        if group is not None:  # a database whose primaries or replicas are the limit
            figures = entry["groups"][group]
            figures["stable"], figures["growth_rate"] = False, entry["growth_rate"]
            failure = overload_entry(tier.name, figures, open_offered)
            failure["group"] = group
        else:
            failure = overload_entry(tier.name, entry, open_offered)
        failure["rho"] = found["rho"]
        failure["formula_offered_rate"] = expected
        failure["formula_capacity"] = found["capacity"]
        if found.get("add") == "pool.size":
            failure["pool"] = True  # the pool's connections, not the workers, are the limit
        failures.append(failure)
    return failures


def _bounded_by_their_users(model: Model) -> set[int]:
    """The tiers that only closed classes reach, within their requests' own responses (no queue
    between): at most one request of each user waits there, so a closed loop at a tier's
    capacity (4 load-test users with no think time on 2 workers: rho 1 by the formulas) is
    saturated, never overloaded. A queue, or a tier behind one, is not bounded so: a user's
    messages pile up beyond its one request."""
    from capsim.model.visits import expected_visits

    every = expected_visits(model)
    own = expected_visits(model, synchronous=True)
    bounded = set()
    for tier in model.tiers:
        reaching = [c for c in model.classes if every[c.index, tier.index] > 0]
        if tier.is_async or not reaching:
            continue
        if all(
            c.is_closed and every[c.index, tier.index] <= own[c.index, tier.index] + 1e-12
            for c in reaching
        ):
            bounded.add(tier.index)
    return bounded


def _at_capacity_edge(solved: dict[str, Any]) -> list[dict[str, Any]]:
    """The tiers the formulas call stable at `_AT_CAPACITY` of their capacity or more, as
    `solve` lists its overloaded ones (`rho` the share held, `capacity` the tier's own visits
    per second it can serve: its offered visits over `rho`)."""
    edge = []
    for name, figures in solved["tiers"].items():
        rho = max(figures.get("occupancy") or 0.0, figures.get("utilization") or 0.0)
        offered = figures.get("offered_rate")
        if figures.get("stable") and rho >= _AT_CAPACITY and offered:
            edge.append(
                {"tier": name, "rho": rho, "offered_rate": offered, "capacity": offered / rho}
            )
    return edge


#: Below this share of its capacity by the formulas, a plain tier's rising backlog is a
#: wander of a stable queue (the formulas' offered work is exact there); at or above it the run
#: judges, a margin for what the formulas round.
_WANDER_RHO = 0.99


def _solved(model: Model, capsim_version: str) -> dict[str, Any]:
    """The formulas' estimates for the model, an overloaded tier marked rather than refused
    (found once per model: both sides of the stability rule ask)."""
    from capsim.analysis.solve import solve

    return _per_model(
        model, "solved", lambda m: solve(m, capsim_version=capsim_version, mark_overload=True)
    )


def _wander_below_capacity(
    model: Model, tier: Tier, entry: dict[str, Any], runs: list[RunResult], capsim_version: str
) -> dict[str, Any] | None:
    """A tier the run's rules found growing whose offered work the formulas know exactly and
    put clearly below its capacity (docs/results.md, "A wander below capacity"): a queue close
    to its capacity relaxes more slowly than a short window lasts, so a window can catch it
    climbing. The formulas' figures `{growth_rate, rho, offered_rate, capacity}` (the run's
    rise, their offered work over capacity, their offered rate and capacity), or None when the
    formulas do not know the tier's offered work exactly, or put it at `_WANDER_RHO` or more."""
    if entry.get("undrained") or entry.get("overflow") or entry.get("rejected"):
        return None
    if not _formulas_exact_at(model, tier):
        return None
    try:
        solved = _solved(model, capsim_version)
    except (CapsimError, ArithmeticError, ValueError):
        return None
    figures = solved["tiers"].get(tier.name)
    if figures is None or not figures.get("stable") or not figures.get("max_rate"):
        return None
    expected = float(figures["offered_rate"])
    rho = max(float(figures["occupancy"]), float(figures["utilization"]))
    measured = sum(run.duration for run in runs)
    if rho >= _WANDER_RHO or rho <= 0:
        return None
    if abs(expected - float(entry["offered_rate"])) > 4.0 * math.sqrt(expected / measured):
        return None  # the run was offered another rate than the formulas'
    return {
        "growth_rate": float(entry["growth_rate"]),
        "rho": rho,
        "offered_rate": expected,
        "capacity": expected / rho,
    }


def _formulas_exact_at(model: Model, tier: Tier) -> bool:
    """Whether the formulas know the tier's offered work exactly: open Poisson or evenly spaced
    classes at constant rates, nothing failing or moving during the run, and a plain tier (its
    own service time holds its workers: no calls held through, batches, pools, replicas, caps,
    retries or hedges sent to it, scaling or simulated caches)."""
    if model.faults or model.traffic_moves:
        return False
    if any(
        c.is_closed
        or c.profile
        or c.process is not None
        or c.arrivals not in ("poisson", "constant")
        for c in model.classes
    ):
        return False
    if _changes_during_run_at(model, tier):
        return False
    plain = (
        tier.kind in ("service", "load_balancer", "queue")
        and not (tier.blocking and any(work.calls for work in tier.work))
        and tier.max_queue is None
        and tier.timeout is None
        and tier.rate_limit is None
        and tier.pool is None
        and tier.replicas == 0
        and tier.batch_size == 1
        and tier.partitions is None
        and tier.autoscale is None
        and tier.consumer_scaling is None
        and tier.max_retries == 0
        and tier.cold_lru is None
    )
    reached = features.callees_reporting(model, "retries") | features.callees_reporting(
        model, "hedges"
    )
    return plain and tier.index not in reached


def _wander_sentence(name: str, wander: dict[str, Any]) -> str:
    return (
        f"tier '{name}': its backlog rose by about {_format_growth(wander['growth_rate'])} "
        f"requests/s through the window, but the formulas put it at {wander['rho']:.1%} of its "
        f"capacity ({wander['offered_rate']:,.4g}/s offered against {wander['capacity']:,.4g}/s; "
        "utilization law, exact for this tier): a queue this close to its capacity wanders for "
        "longer than this window, so the rise is not growth and the tier is stable; its waits "
        "are noisy figures (run longer, or with more replications, to average them)."
    )


def _busy_enough(model: Model, name: str, entry: dict[str, Any]) -> bool:
    """Whether the run found the tier as busy as an overload makes it: its workers held (a
    database's pool: its connections lent, when the pool is what limits it)."""
    tier = model.tier(name)
    held_through_calls = tier.blocking and any(work.calls for work in tier.work)
    busy = max(entry.get("occupancy") or 0.0, entry["utilization"])
    if busy >= (_BUSY_APPROXIMATE if held_through_calls else _BUSY_EXACT):
        return True
    group = _busiest_group(entry)
    if group is not None:  # replicas (or primaries) saturated while the tier's mean is not
        return True
    pool = entry.get("pool") or {}
    if tier.pool is None or tier.pool.size > tier.usable_workers:
        return False  # a pool larger than the workers: the workers saturate first
    # No query waits at a server (at most `size` in flight on more workers): the connections'
    # holding time is the formulas' own, as a plain tier's.
    return float(pool.get("utilization") or 0.0) >= _BUSY_EXACT


def _busiest_group(entry: dict[str, Any]) -> str | None:
    """A database's station group ("primary", "replicas") busy enough to be overloaded (held
    at least `_BUSY_EXACT` of the time), the busiest; None when none is, or it has no groups."""
    groups = entry.get("groups") or {}
    held = {name: max(g.get("occupancy") or 0.0, g["utilization"]) for name, g in groups.items()}
    busy = [name for name, value in held.items() if value >= _BUSY_EXACT]
    return max(busy, key=lambda name: held[name]) if busy else None


def _too_slow_to_see_sentence(failure: dict[str, Any]) -> str:
    pool = failure.get("pool")
    what = "its pool's connections can carry" if pool else "its workers can do"
    per = "connections" if pool else "workers"
    where = f"tier '{failure['tier']}'"
    if failure.get("group"):
        where += f" (its {failure['group']} group)"
    offered, capacity = failure["formula_offered_rate"], failure["formula_capacity"]
    law = (
        f"({offered:,.4g}/s offered against a capacity of {capacity:,.4g}/s; utilization law: "
        f"offered rate x mean holding time / {per})"
    )
    if failure["rho"] < 1.0 + 1e-6:
        return (
            f"{where} is OVERLOADED, which fails the run: it is offered the work {what} "
            f"{law}, with no headroom: a queue at its capacity has no steady state (within "
            "0.1% of it, none that a run reaches), its backlog wanders without bound, more "
            "slowly than this run can show; its figures are not steady-state figures (give it "
            "headroom)."
        )
    return (
        f"{where} is OVERLOADED, which fails the run: it is offered "
        f"{failure['rho']:.3g} times the work {what} {law}, so its backlog grows by about "
        f"{_format_growth(failure['growth_rate'])} requests/s, too slowly for this run to show "
        "it; its figures are not steady-state figures (run longer to see the backlog grow)."
    )


def _overflow_sentence(tier: Tier, overflow: int) -> str:
    """Requests turned away at the engine's internal bound on waiting (not a modelled limit)."""
    limit = waiting_limit(tier)
    remedy = "`max_depth` on the queue" if tier.kind == "queue" else "`max_queue` on the tier"
    return (
        f"tier '{tier.name}' reached capsim's internal cap of {limit:,} waiting requests "
        f"(not part of your scenario); {overflow:,} more per replication were turned away at it "
        "(counted as errors and as `overflow`). The tier is overloaded. To model a real limit, "
        f"set {remedy}, a `timeout`, or a `rate_limit` in front of it."
    )


def _fail_backlogs_held_at_the_cap(
    verdicts: list[dict[str, Any]], data: dict[str, Any]
) -> list[str]:
    """Fail each backlog objective of a tier that reached capsim's internal waiting cap (its
    backlog was held down by the cap, not by the system: the true one is larger); one warning
    for each. The verdicts are changed in place (`passed` false, `capped` true)."""
    sentences = []
    for verdict in verdicts:
        tier = data["tiers"].get(verdict.get("tier", ""), {})
        if verdict["statistic"] != "backlog" or not tier.get("overflow"):
            continue
        verdict["passed"], verdict["capped"] = False, True
        sentences.append(
            f"SLO '{verdict['slo']}' fails: tier '{verdict['tier']}' reached capsim's internal "
            f"cap on waiting requests, so its observed backlog ({verdict['observed']:,}) is the "
            "cap's, not the system's (the true backlog is larger)."
        )
    return sentences


def _usable_concurrency(tier: Tier) -> int:
    """Workers per instance that can be busy at once (a partitioned queue's are capped)."""
    return min(tier.concurrency, tier.usable_workers)


def evaluate_slo(slo: Slo, model: Model, data: dict[str, Any]) -> dict[str, Any]:
    """One SLO verdict: the observed figure against the limit (an SLO without data fails).

    `low_sample` says the figure is a percentile estimated from too few values (LOW_SAMPLE_FACTOR).
    """
    subject: dict[str, Any]
    if slo.class_index is not None:
        name = model.classes[slo.class_index].name
        subject = {"class": name}
        figures = data["classes"][name]
    elif slo.tier_index is not None:
        name = model.tiers[slo.tier_index].name
        subject = {"tier": name}
        figures = data["tiers"][name]
    else:
        raise ValueError(f"SLO {slo.text!r} names neither a class nor a tier")
    path = slo_figure(slo)
    observed: Any = figures
    for key in path:
        if not isinstance(observed, dict) or key not in observed:
            raise ValueError(f"SLO {slo.text!r}: {name} has no figure {'.'.join(path)!r}")
        observed = observed[key]
    peak = figures.get("peak", {}).get(slo.statistic) if slo.tier_index is not None else None
    window_mean = observed
    if peak is not None:  # load or capacity changes: headroom is judged at the busiest minute
        observed = peak["value"]
    group = busiest_group(figures, slo.statistic) if slo.tier_index is not None else None
    if group is not None and group[1] > window_mean:  # a database's busiest group decides
        if peak is not None:
            observed = scaled_to_group(observed, group[1], window_mean)
        else:
            observed = group[1]
        window_mean = group[1]
    else:
        group = None
    passed = observed is not None and math.isfinite(observed) and observed <= slo.limit
    none_completed = _no_request_completed(slo, figures, path)
    return {
        "slo": slo.text,
        "passed": bool(passed) and none_completed is None,
        "observed": observed,
        "limit": slo.limit,
        "line": slo.line,
        "statistic": slo.statistic,
        "low_sample": ".".join(path) in figures.get("low_sample", ()),
        **(
            {"reason": none_completed, "none_completed": True} if none_completed is not None else {}
        ),
        **subject,
        **({"threshold": slo.threshold} if slo.threshold is not None else {}),
        **({"group": group[0]} if group is not None else {}),
        **(
            {"peak": {"at": peak["at"], "span": peak["span"]}, "window_mean": window_mean}
            if peak is not None
            else {}
        ),
    }


def _no_request_completed(slo: Slo, figures: dict[str, Any], path: tuple[str, ...]) -> str | None:
    """Why a class latency objective fails when none of the class's requests completed in the
    window (None: some did). Its latency figures are then only the ages of the requests still
    unfinished at the end, lower bounds (docs/results.md, "Work left at the end of the
    window"): a class whose every request failed after a 1 s timeout read p99 943 ms from its
    19 requests in flight at the end and passed `p99 <= 2s`."""
    if slo.class_index is None or path[0] not in ("latency", "share_over"):
        return None
    if figures.get("completed"):
        return None
    return (
        f"no request completed in the window ({figures.get('errors', 0):,} failed, "
        f"{figures.get('unfinished', 0):,} unfinished at the end): its latency is only the "
        "unfinished requests' ages so far, a lower bound"
    )


def _low_sample_warning(slo: Slo, verdict: dict[str, Any], model: Model) -> str:
    """Why a verdict on a percentile from few requests is uncertain, and how to firm it up."""
    name = slo_figure(slo)[-1]
    q = percentile_table(model)[name]
    subject = f"class '{verdict['class']}'" if "class" in verdict else f"tier '{verdict['tier']}'"
    return (
        f"SLO '{verdict['slo']}' is judged on a {name} estimated from fewer than "
        f"{fewest_samples(q):,} values at {subject} (low_sample): the verdict is uncertain; "
        "run longer (--duration) or more replications."
    )


def _saturation_hint(model: Model, capsim_version: str) -> str | None:
    """The analytic saturation point, as a warning, when the formulas agree that an open station
    is overloaded: the same figure as the footer's "the analytic bound puts its saturation near"
    (`analytic_headroom`: where the bound meets the load along the mix, not the bound at the
    overloaded load itself, whose blocking holding times have no steady state)."""
    from capsim.analysis.solve import UnstableModelError, solve

    try:
        solve(model, capsim_version=capsim_version)
    except UnstableModelError:
        return _analytic_saturation_sentence(model, capsim_version)
    except (CapsimError, ArithmeticError, ValueError):
        return None
    # The formulas find a steady state (the overload comes from a profile peak, a closed
    # class, a finite queue ...): no single saturation rate to quote.
    return None


def _analytic_saturation_sentence(model: Model, capsim_version: str) -> str | None:
    from capsim.analysis.headroom import analytic_headroom

    try:
        headroom = analytic_headroom(model, capsim_version)
    except (CapsimError, ArithmeticError, ValueError):
        return None
    if headroom is None or not math.isfinite(headroom.saturation_rate):
        return None
    rate = headroom.saturation_rate
    # Four significant digits, never an exponent: 10,000/s read "1e+04 req/s".
    shown = f"{rate:.4g}" if abs(rate) < 1e4 else f"{rate:.0f}"
    return (
        f"saturation: the system saturates at about {shown} req/s, "
        f"bottleneck {headroom.tier} (analytic bound from the queueing formulas, see capsim "
        "solve)."
    )


def _report_deadlocks(
    model: Model,
    runs: list[RunResult],
    tiers: dict[str, Any],
    overloaded: list[dict[str, Any]],
    warnings: list[str],
    open_offered: float,
) -> None:
    """Tiers whose pool deadlocked on nested calls back to itself (`deadlock.deadlocks_in_run`):
    their overload failure (added if the stability rule missed it: a closed workload's line
    stops growing) says DEADLOCKED, with the deadlock's figures, instead of an overload."""
    per_tier = {tier.name: [run.tiers[tier.index] for run in runs] for tier in model.tiers}
    for name, found in deadlocks_in_run(model, tiers, per_tier).items():
        failure = next((f for f in overloaded if f["tier"] == name), None)
        if failure is None:
            failure = overload_entry(name, tiers[name], open_offered, 0.0)
            overloaded.append(failure)
        else:
            stale = overload_sentence(failure)
            warnings[:] = [w for w in warnings if w != stale]
        failure["deadlock"] = {k: v for k, v in found.items() if k != "sentence"}
        warnings.append(found["sentence"])


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
    retried = _retried_tiers(model)
    classes = _summarise_classes(model, runs)
    open_offered = sum(
        classes[traffic.name]["offered_rate"] for traffic in model.classes if not traffic.is_closed
    )
    overloaded: list[dict[str, Any]] = []
    for tier in model.tiers:
        entry, stability = _summarise_tier(model, tier, runs, retried)
        if tier.pricing is not None and tier.pricing.interrupts:
            entry["spot"] = cost.spot_figures(tier, runs)
        tiers[tier.name] = entry
        if not stability.stable:
            wander = _wander_below_capacity(model, tier, entry, runs, capsim_version)
            if wander is not None:
                stability = Stability(stable=True, growth_rate=0.0)
                entry["stable"], entry["growth_rate"], entry["wander"] = True, 0.0, wander
                warnings.append(_wander_sentence(tier.name, wander))
        if not stability.stable:
            capacity = capacity_when_up(tier, [run.tiers[tier.index] for run in runs])
            failure = _overload_failure(tier.name, entry, open_offered, capacity)
            if model.traffic_moves:
                # DNS moved clients during the run: the window's mix is not the mix at its
                # end (a survivor's share of the traffic grows), so no estimate at this mix.
                failure["saturation_rate"] = None
            if "undrained" in entry:
                failure["undrained"] = entry["undrained"]
            _note_autoscaler_lag(tier, runs[0].tiers[tier.index], failure)
            if "peak" in entry and "group" not in failure:
                _note_peak_offered(tier, runs, failure)
            overloaded.append(failure)
        if entry.get("overflow"):
            warnings.append(_overflow_sentence(tier, entry["overflow"]))
    _behind_another_overload(model, classes, overloaded, open_offered)
    for failure in overloaded:
        warnings.append(
            unfinished.undrained_sentence(
                failure, queue=model.tier(failure["tier"]).kind == "queue"
            )
            if "undrained" in failure
            else overload_sentence(failure)
        )
    _report_deadlocks(model, runs, tiers, overloaded, warnings, open_offered)
    too_slow = _overloads_too_slow_to_see(
        model, tiers, open_offered, runs[0].duration * len(runs), capsim_version
    )
    for failure in too_slow:
        overloaded.append(failure)
        warnings.append(_too_slow_to_see_sentence(failure))
    warnings.extend(_ended_trace_warnings(model))
    warnings.extend(_profile_after_the_run_warnings(model))
    warnings.extend(_rate_beside_a_profile_warnings(model))
    data: dict[str, Any] = {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "seed": model.seed,
        "replications": len(runs),
        "duration": runs[0].duration,
        "classes": classes,
        "tiers": tiers,
    }
    timeseries = summarise_timeseries(model, runs)
    if timeseries is not None:
        data["timeseries"] = timeseries
        warnings.extend(_undrained_warnings(timeseries, failing=set(tiers_undrained(tiers))))
    data = dict(sanitise(data))  # type: ignore[call-overload]
    verdicts = [
        judge_by_phase(evaluate_slo(slo, model, data), slo, model, runs) for slo in model.slos
    ]
    for slo, verdict in zip(model.slos, verdicts, strict=True):
        if verdict["observed"] is None:
            what = (
                f"class '{verdict['class']}'" if "class" in verdict else f"tier '{verdict['tier']}'"
            )
            warnings.append(
                f"SLO '{verdict['slo']}' could not be evaluated: {what} has no measurement "
                "in the window, so it counts as failed."
            )
        elif verdict.get("none_completed"):
            warnings.append(f"SLO '{verdict['slo']}' fails: {verdict['reason']}.")
        elif verdict["low_sample"]:
            warnings.append(_low_sample_warning(slo, verdict, model))
    warnings.extend(_fail_backlogs_held_at_the_cap(verdicts, data))
    warnings.extend(filter(None, (broke_sentence(verdict) for verdict in verdicts)))
    warnings.extend(filter(None, (whole_window_sentence(slo, model) for slo in model.slos)))
    data["slos"] = verdicts
    data["passed"] = all(v["passed"] for v in verdicts) and not overloaded
    data["overloaded"] = overloaded
    data["engine"] = {
        "path": runs[0].engine_path,
        "reason": runs[0].engine_reason,
        "events": sum(run.events for run in runs),
    }
    if runs[0].engine_path == "events" and accelerator.compiled():
        data["engine"]["compiled"] = True  # the compiled event path ran (same results)
    data["warmup"] = runs[0].warmup
    if len(runs) > 1:  # what a later `capsim check` pairs its replications with
        data["per_replication"] = per_replication_figures(model, runs)
    if cost.priced(model):
        data["cost"] = cost.run_cost(model, runs, data)
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
