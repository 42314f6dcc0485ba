"""A tier's busiest minute: the utilization and occupancy its SLOs are judged on when load or
capacity changes during the run (docs/results.md, "Peak utilization and occupancy").

Under a daily profile, or while a fault has taken instances away, the mean over the whole
window mixes the quiet hours with the peak: a tier held at 89% for five minutes can average
57% and pass an `occupancy <= 85%` objective. Headroom is a question about the peak, so such a
run judges `utilization` and `occupancy` objectives on the highest mean over any PEAK_SPAN of
its time series instead (one bucket when buckets are longer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from capsim.engine.result import RunResult
from capsim.engine.timeseries import Series, TierSeries
from capsim.model.types import Tier

#: The span a peak figure averages over: a minute, as monitoring shows "peak 1-minute load".
PEAK_SPAN = 60.0


@dataclass(frozen=True)
class Peak:
    """A tier's busiest span for one figure: the figure's mean there, where the span starts
    (seconds from the start of the warm-up) and how long it is."""

    value: float
    at: float
    span: float


def workers_per_instance(tier: Tier) -> int:
    """Workers per live instance that can be busy at once, as the time series counts them (a
    partitioned queue's are capped; a queue whose consumers scale counts consumers)."""
    if tier.consumer_scaling is not None:
        return max(tier.consumer_scaling.per_consumer, 1)
    return max(min(tier.concurrency, tier.usable_workers), 1)


def _measured_buckets(edges: np.ndarray, warmup: float) -> np.ndarray:
    """Indices of the buckets that lie inside the measured window (none of the warm-up)."""
    starts = edges[:-1]
    return np.flatnonzero(starts >= warmup - 1e-9 * max(1.0, warmup))


def _pooled_series(runs: Sequence[RunResult]) -> tuple[list[Series], np.ndarray] | None:
    """Every replication's time series and the indices of the measured buckets, or None when a
    run has no series or the window no bucket."""
    series = [run.series for run in runs if run.series is not None]
    if not series or len(series) < len(runs):
        return None
    inside = _measured_buckets(series[0].edges, runs[0].warmup)
    return (series, inside) if inside.size else None


def tier_peak(tier: Tier, runs: Sequence[RunResult], figure: str) -> Peak | None:
    """The busiest PEAK_SPAN of `tier` for `figure` (`utilization` or `occupancy`), pooled over
    `runs` (one run: that replication's own), or None without time series or live workers."""
    pooled = _pooled_series(runs)
    if pooled is None:
        return None
    series, inside = pooled
    first = series[0]
    tier_runs: list[TierSeries] = [s.tiers[tier.index] for s in series]
    held = np.sum([t.busy_time[inside] for t in tier_runs], axis=0)
    if figure == "occupancy":  # held through calls, and never below the work itself
        held = np.maximum(np.sum([t.occupied_time[inside] for t in tier_runs], axis=0), held)
    worker_time = np.sum([t.instance_time[inside] for t in tier_runs], axis=0) * (
        workers_per_instance(tier)
    )
    width = min(max(1, round(PEAK_SPAN / first.bucket)), inside.size)
    window = np.ones(width)
    live = np.convolve(worker_time, window, mode="valid")
    if not np.any(live > 0):
        return None
    share = np.divide(
        np.convolve(held, window, mode="valid"), live, out=np.zeros(live.size), where=live > 0
    )
    start = int(np.argmax(share))
    starts = first.edges[:-1][inside]
    ends = first.edges[1:][inside]
    return Peak(
        value=float(share[start]),
        at=float(starts[start]),
        span=float(ends[start + width - 1] - starts[start]),
    )


def peak_arrival_rate(tier: Tier, runs: Sequence[RunResult]) -> Peak | None:
    """The busiest PEAK_SPAN of `tier`'s arrivals, as arrivals per second pooled over `runs`,
    or None without time series. Under a profile the window's mean `offered_rate` mixes the
    quiet hours with the peak: an overload that happens only at the peak then reads "offered
    1,304.0/s, capacity 1,434.1/s", which looks like no overload at all."""
    pooled = _pooled_series(runs)
    if pooled is None:
        return None
    series, inside = pooled
    first = series[0]
    arrivals = np.sum([s.tiers[tier.index].arrivals[inside] for s in series], 0)
    widths = (first.edges[1:] - first.edges[:-1])[inside]
    width = min(max(1, round(PEAK_SPAN / first.bucket)), inside.size)
    window = np.ones(width)
    seconds = np.convolve(widths, window, mode="valid") * len(series)
    rates = np.convolve(arrivals, window, mode="valid") / seconds
    start = int(np.argmax(rates))
    starts = first.edges[:-1][inside]
    return Peak(
        value=float(rates[start]), at=float(starts[start]), span=float(seconds[start]) / len(series)
    )


def peak_figures(tier: Tier, runs: Sequence[RunResult]) -> dict[str, dict[str, float]] | None:
    """`tiers.<t>.peak` of a result: {utilization, occupancy} each as {value, at, span}."""
    figures = {}
    for figure in ("utilization", "occupancy"):
        peak = tier_peak(tier, runs, figure)
        if peak is None:
            return None
        figures[figure] = {"value": peak.value, "at": peak.at, "span": peak.span}
    return figures
