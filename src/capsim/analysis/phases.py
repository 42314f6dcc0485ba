"""Tier objectives judged phase by phase in a run with faults (docs/results.md, "Verdicts after
a fault"): the whole window averages the state before a fault with the state after it, so a
tier that is overloaded for the rest of the run after losing instances can pass on the average.

A run's *phases* are the parts of its measured window between the moments its conditions change
because of a fault: each fault's start and end, and the end of each DNS move of traffic (a lost
region's clients, or a failed provider's share, done moving: `Model.traffic_moves`). A tier
objective whose figure has a per-bucket record (`utilization`, `occupancy`, `wait_mean`, a
queue's `age_*`) is judged on each phase from the time-series buckets wholly inside it, pooled
over replications; the verdict's figure is the worst of the phases and of the whole window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from capsim.engine.histogram import Histogram
from capsim.engine.result import RunResult
from capsim.engine.timeseries import quantile_per_bucket
from capsim.model import phases as model_phases
from capsim.model.types import PERCENTILES, Model, Slo

#: Boundaries closer than this (seconds) are one boundary.
_SAME_TIME = model_phases.SAME_TIME


@dataclass(frozen=True)
class Phase:
    """A part of the measured window, [start, end), and what began it (in the user's words)."""

    start: float
    end: float
    label: str


def phases(model: Model, warmup: float, horizon: float) -> list[Phase]:
    """The phases of `model`'s measured window [warmup, horizon); none without faults (the
    whole window is then the only state to judge)."""
    inside = model_phases.cuts(model, warmup, horizon)
    if not inside:
        return []
    starts = [warmup, *inside]
    ends = [*inside, horizon]
    changes = model_phases.changes(model)
    calm = all(t >= warmup + _SAME_TIME for t in changes)  # no fault began before the window
    first = "before the faults" if calm else "from the start of the window"
    labels = [first, *("; ".join(dict.fromkeys(changes[t])) for t in inside)]
    return [Phase(s, e, label) for s, e, label in zip(starts, ends, labels, strict=True)]


def judged_by_phase(slo: Slo) -> bool:
    """Whether a tier objective's figure is recorded per bucket, so it can be judged by phase.

    A `backlog` is the highest backlog at any moment, already the worst state. A wait's mean
    comes from the buckets by Little's law (request-seconds waiting over requests served); its
    percentiles and max from the engine's wait histogram of each phase (`TierRun.phase_waits`)."""
    statistic = slo.statistic
    return slo.tier_index is not None and (
        statistic in ("utilization", "occupancy", "wait_mean", "wait_max", "age_mean", "age_max")
        or (statistic.removeprefix("age_") in PERCENTILES and statistic.startswith("age_"))
        or (statistic.removeprefix("wait_") in PERCENTILES and statistic.startswith("wait_"))
    )


def _wait_statistic(
    model: Model, slo: Slo, runs: list[RunResult], phase_index: int
) -> float | None:
    """A wait percentile or max over the waits of one phase (by when the worker started; those
    still waiting at the end in the last phase), pooled over replications from the engine's
    per-phase histograms. None when the tier recorded none, or no wait began in the phase."""
    tier = model.tiers[slo.tier_index or 0]
    recorded = [run.tiers[tier.index].phase_waits for run in runs]
    if any(waits is None or len(waits) <= phase_index for waits in recorded):
        return None
    pooled = Histogram.merged([waits[phase_index] for waits in recorded if waits is not None])
    if pooled.n == 0:
        return None
    if slo.statistic == "wait_max":
        return pooled.max
    return pooled.quantile(PERCENTILES[slo.statistic.removeprefix("wait_")])


def _buckets_inside(edges: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of the buckets wholly inside [start, end)."""
    low, high = edges[:-1], edges[1:]
    return np.flatnonzero((low >= start - _SAME_TIME) & (high <= end + _SAME_TIME))


def _share_held(model: Model, slo: Slo, runs: list[RunResult], rows: np.ndarray) -> float | None:
    """Busy (or held) worker-seconds over live worker-seconds in these buckets, pooled."""
    tier = model.tiers[slo.tier_index or 0]
    per_instance = min(tier.concurrency, tier.usable_workers)
    if tier.consumer_scaling is not None:
        per_instance = tier.consumer_scaling.per_consumer
    held = worker_time = 0.0
    for run in runs:
        assert run.series is not None
        series = run.series.tiers[tier.index]
        busy = series.busy_time[rows]
        if slo.statistic == "occupancy":
            busy = np.maximum(series.occupied_time[rows], busy)
        held += float(busy.sum())
        worker_time += float(series.instance_time[rows].sum()) * max(per_instance, 1)
    return held / worker_time if worker_time > 0 else None


def _age_statistic(model: Model, slo: Slo, runs: list[RunResult], rows: np.ndarray) -> float | None:
    """A queue's message-age statistic over the messages done in these buckets, pooled: a
    percentile from the per-bucket histograms, the mean and the max exact."""
    tier = model.tiers[slo.tier_index or 0]
    series = [run.series.tiers[tier.index] for run in runs if run.series is not None]
    if len(series) != len(runs) or any(s.age is None for s in series):
        return None
    counts = np.sum([s.age[rows].sum(axis=0) for s in series if s.age is not None], axis=0)
    if counts.sum() == 0:
        return None
    if slo.statistic == "age_mean":
        return sum(float(s.age_sum[rows].sum()) for s in series if s.age_sum is not None) / float(
            counts.sum()
        )
    if slo.statistic == "age_max":
        return max(float(s.age_max[rows].max()) for s in series if s.age_max is not None)
    quantile = PERCENTILES[slo.statistic.removeprefix("age_")]
    return float(quantile_per_bucket(counts[None, :], quantile)[0])


def _mean_wait(model: Model, slo: Slo, runs: list[RunResult], rows: np.ndarray) -> float | None:
    """Little's law over these buckets, pooled: request-seconds spent waiting for a worker over
    the requests that arrived and were not turned away (None: none arrived)."""
    tier = model.tiers[slo.tier_index or 0]
    waited = served = 0.0
    for run in runs:
        assert run.series is not None
        series = run.series.tiers[tier.index]
        waited += float(series.queue_time[rows].sum())
        served += float((series.arrivals[rows] - series.errors[rows]).sum())
    return waited / served if served > 0 else None


def phase_figure(
    model: Model, slo: Slo, runs: list[RunResult], phase: Phase, index: int = 0
) -> float | None:
    """The objective's figure over one phase (the `index`-th of the run); None when no bucket
    lies wholly inside it, the tier had no live instance in it, or no message was done in it (a
    wait percentile or max: when no wait began in it)."""
    if not _needs_series(slo.statistic):
        return _wait_statistic(model, slo, runs, index)
    if any(run.series is None for run in runs):
        return None
    edges = runs[0].series.edges if runs[0].series is not None else np.zeros(1)
    rows = _buckets_inside(edges, phase.start, phase.end)
    if rows.size == 0:
        return None
    if slo.statistic.startswith("age_"):
        return _age_statistic(model, slo, runs, rows)
    if slo.statistic == "wait_mean":
        return _mean_wait(model, slo, runs, rows)
    return _share_held(model, slo, runs, rows)


def judge_by_phase(
    verdict: dict[str, Any], slo: Slo, model: Model, runs: list[RunResult]
) -> dict[str, Any]:
    """The verdict judged on the worst phase (itself when the run has no phases or the figure
    has no per-bucket record): `observed` becomes the worst of the phases' figures and the
    whole window's (`whole_window`), `phases` lists each phase's figure and verdict, and
    `broke_at` is the start of the first phase beyond the limit (None: none is)."""
    if not runs or not judged_by_phase(slo):
        return verdict
    parts = phases(model, runs[0].warmup, runs[0].warmup + runs[0].duration)
    if not parts:
        return verdict
    judged: list[dict[str, Any]] = []
    for index, phase in enumerate(parts):
        figure = phase_figure(model, slo, runs, phase, index)
        judged.append(
            {
                "from": phase.start,
                "to": phase.end,
                "label": phase.label,
                "observed": figure,
                "passed": None if figure is None else bool(figure <= slo.limit),
            }
        )
    # The verdict's own figure (the busiest minute where load or capacity changes: peak.py),
    # the phases' and the window's mean: the worst decides.
    whole = verdict.get("window_mean", verdict["observed"])
    figures: list[float] = [p["observed"] for p in judged if p["observed"] is not None]
    figures.extend(f for f in (whole, verdict["observed"]) if f is not None and math.isfinite(f))
    worst = max(figures) if figures else whole
    broke = next((p["from"] for p in judged if p["passed"] is False), None)
    passed = worst is not None and math.isfinite(worst) and worst <= slo.limit
    return {
        **verdict,
        "observed": worst,
        "passed": bool(passed),
        "whole_window": whole,
        "phases": judged,
        "broke_at": broke,
    }


def broke_sentence(verdict: dict[str, Any]) -> str | None:
    """When a phase-judged objective broke, for the run's warnings (None: it held throughout)."""
    broke = verdict.get("broke_at")
    if broke is None:
        return None
    phase = next(p for p in verdict["phases"] if p["from"] == broke)
    whole = verdict["whole_window"]
    text = (
        f"SLO '{verdict['slo']}' broke at t = {broke:g}s ({phase['label']}): "
        f"{_figure(verdict, phase['observed'])} over [{phase['from']:g}s, {phase['to']:g}s)"
    )
    if whole is not None and whole <= verdict["limit"]:
        text += (
            f", although the whole window's {_figure(verdict, whole)} is within the limit "
            "(tier objectives are judged on the worst phase of a run with faults)"
        )
    return text + "."


def _figure(verdict: dict[str, Any], value: float) -> str:
    if verdict["statistic"] in ("utilization", "occupancy"):
        return f"{value:.1%}"
    return f"{value:.4g}s"


def _needs_series(statistic: str) -> bool:
    """Whether a phase's figure comes from the time-series buckets (not from the engine's
    per-phase wait histograms)."""
    return not (statistic.startswith("wait_") and statistic != "wait_mean")


def whole_window_sentence(slo: Slo, model: Model) -> str | None:
    """For a tier objective of a run with faults that cannot be judged by phase, a warning that
    it is judged on the whole window; None otherwise. Every tier objective but `backlog` (the
    worst moment already) is judged by phase; those whose phase figure comes from the time
    series cannot be when the scenario turns the series off (`simulation.timeseries: false`)."""
    if not model.faults or slo.tier_index is None or not judged_by_phase(slo):
        return None
    if model.timeseries or not _needs_series(slo.statistic):
        return None
    return (
        f"SLO '{slo.text}' is judged on the whole window: the scenario records no time series "
        "(simulation.timeseries: false), from which its figure is taken phase by phase in a "
        "run with faults, so a state after a fault can hide in the average "
        "(docs/results.md#verdicts-after-a-fault)."
    )
