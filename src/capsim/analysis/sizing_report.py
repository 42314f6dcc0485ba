"""The figures behind `capsim report`: latency CDFs, the p99-against-load curve and its knee,
the bottleneck and cost per tier, gathered into one SizingReport for the renderers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from capsim.analysis.summary import summarise
from capsim.engine.histogram import Histogram
from capsim.engine.result import RunResult
from capsim.engine.runner import DEFAULT_MAX_REQUESTS, run_replications
from capsim.model.types import Model, Tier

ProgressCallback = Callable[[float, str], None]
#: Points of the p99-against-load curve by default.
DEFAULT_LOAD_POINTS = 8
#: The curve runs from this fraction of the estimated saturation rate up to it.
LOWEST_LOAD = 0.2
#: A curve whose farthest point from its chord is closer than this (both axes scaled to [0, 1])
#: is too straight to have a knee.
KNEE_MIN_DISTANCE = 0.05
#: Hours in an average month (365.25 x 24 / 12), for monthly cost.
HOURS_PER_MONTH = 730.5


@dataclass
class SizingReport:
    """A run's result plus what the sizing report plots.

    `cdf`: per class, `latency` (seconds) and `fraction` (cumulative, in (0, 1]).
    `curve`: the p99-against-load curve (see `load_curve`), or None with `curve_note` saying why.
    `bottleneck`: the busiest tier, its occupancy and the estimated saturation rate.
    `costs`: per priced tier, units, price per unit-hour, cost per hour and per month.
    """

    result: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    cdf: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    curve: dict[str, Any] | None = None
    curve_note: str | None = None
    bottleneck: dict[str, Any] | None = None
    costs: dict[str, dict[str, float]] = field(default_factory=dict)
    scenario_path: str = ""


def latency_cdfs(model: Model, runs: Sequence[RunResult], max_points: int = 200) -> dict[str, Any]:
    """End-to-end latency CDF per class from the merged histograms of every replication."""
    cdfs: dict[str, Any] = {}
    for traffic in model.classes:
        merged = Histogram.merged([run.classes[traffic.index].latency for run in runs])
        values, fractions = merged.cdf_points(max_points)
        cdfs[traffic.name] = {
            "latency": [float(v) for v in values],
            "fraction": [float(f) for f in fractions],
        }
    return cdfs


def find_knee(rates: Sequence[float], values: Sequence[float | None]) -> float | None:
    """The knee of a rising curve: the point farthest below the chord from its first to its last
    point, with both axes scaled to [0, 1] (the Kneedle rule). None for a curve with fewer than
    three usable points or one that stays within `KNEE_MIN_DISTANCE` of its chord."""
    points = [
        (float(r), float(v))
        for r, v in zip(rates, values, strict=True)
        if v is not None and math.isfinite(v) and math.isfinite(r)
    ]
    if len(points) < 3:
        return None
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    if xs[-1] <= xs[0] or ys.max() <= ys.min():
        return None
    x_scaled = (xs - xs[0]) / (xs[-1] - xs[0])
    y_scaled = (ys - ys.min()) / (ys.max() - ys.min())
    chord = y_scaled[0] + (y_scaled[-1] - y_scaled[0]) * x_scaled
    below = chord - y_scaled
    best = int(np.argmax(below))
    if below[best] < KNEE_MIN_DISTANCE:
        return None
    return float(xs[best])


def _scaled(model: Model, factor: float) -> Model:
    """The model with every open class's rate (and profile) multiplied by `factor`."""
    classes = tuple(
        traffic
        if traffic.is_closed
        else replace(
            traffic,
            rate=None if traffic.rate is None else traffic.rate * factor,
            profile=tuple(replace(p, rate=p.rate * factor) for p in traffic.profile),
        )
        for traffic in model.classes
    )
    return replace(model, classes=classes)


def find_bottleneck(model: Model, result: dict[str, Any]) -> dict[str, Any] | None:
    """The tier whose workers are held the largest share of the time, and the open load at
    which it would be fully held if occupancy grows in proportion to the load."""
    tiers = result.get("tiers", {})
    best: tuple[float, str] | None = None
    for name, entry in tiers.items():
        held = max(entry.get("occupancy") or 0.0, entry.get("utilization") or 0.0)
        if best is None or held > best[0]:
            best = (held, name)
    if best is None:
        return None
    held, name = best
    classes = result.get("classes", {})
    open_rate = sum(
        classes.get(traffic.name, {}).get("offered_rate") or 0.0
        for traffic in model.classes
        if not traffic.is_closed
    )
    saturation = open_rate / held if held > 0 and open_rate > 0 else None
    return {
        "tier": name,
        "occupancy": held,
        "utilization": tiers[name].get("utilization"),
        "stable": tiers[name].get("stable", True),
        "offered_rate": open_rate,
        "saturation_rate": saturation,
    }


def load_curve(
    model: Model,
    saturation_rate: float,
    *,
    points: int = DEFAULT_LOAD_POINTS,
    engine: str = "auto",
    progress: ProgressCallback | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
) -> dict[str, Any]:
    """p50, p99 and error rate per class and utilisation per tier at `points` open loads from
    20% to 100% of `saturation_rate` (the mix of classes as written, closed classes unchanged),
    one replication each with the scenario's duration and seed; plus the knee of each class's
    p99 curve (`find_knee`) and `knee`, the lowest of them."""
    open_rate = sum(
        traffic.rate_at(model.horizon) for traffic in model.classes if not traffic.is_closed
    )
    if open_rate <= 0:
        raise ValueError("the model has no open traffic to scale")
    targets = np.linspace(LOWEST_LOAD, 1.0, max(points, 3)) * saturation_rate
    curve: dict[str, Any] = {
        "rate": [],
        "classes": {c.name: {"p50": [], "p99": [], "error_rate": []} for c in model.classes},
        "tiers": {t.name: {"utilization": []} for t in model.tiers},
        "stable": [],
    }
    for index, target in enumerate(targets):
        factor = float(target) / open_rate
        if progress:
            progress(index / len(targets), f"load {target:.4g}/s")
        scaled = _scaled(model, factor)
        runs = run_replications(scaled, replications=1, engine=engine, max_requests=max_requests)  # type: ignore[arg-type]
        data = summarise(scaled, runs, capsim_version="").data
        curve["rate"].append(
            sum(
                data["classes"][c.name]["offered_rate"] or 0.0
                for c in model.classes
                if not c.is_closed
            )
        )
        for name, entry in data["classes"].items():
            curve["classes"][name]["p50"].append(entry["latency"]["p50"])
            curve["classes"][name]["p99"].append(entry["latency"]["p99"])
            curve["classes"][name]["error_rate"].append(entry["error_rate"])
        for name, entry in data["tiers"].items():
            curve["tiers"][name]["utilization"].append(entry["utilization"])
        curve["stable"].append(all(entry["stable"] for entry in data["tiers"].values()))
    knees = {
        name: find_knee(curve["rate"], entry["p99"]) for name, entry in curve["classes"].items()
    }
    curve["knees"] = knees
    found = [(rate, name) for name, rate in knees.items() if rate is not None]
    curve["knee"] = min(found)[0] if found else None
    curve["knee_class"] = min(found)[1] if found else None
    if progress:
        progress(1.0, "load curve done")
    return curve


def _units(tier: Tier) -> int:
    """Priced units of a tier: its servers (a database's primaries and replicas); a queue's
    consumers."""
    sizing = getattr(tier, "sizing", None)
    if tier.kind == "queue":
        per_consumer = 1
        if sizing is not None and sizing.of == "consumers":
            per_consumer = max(sizing.workers_per_unit, 1)
        return max(tier.workers // per_consumer, 1)
    return tier.servers


def tier_costs(model: Model) -> dict[str, dict[str, float]]:
    """Cost per hour and per month of every tier that has a price (`cost.per_instance_hour`)."""
    costs: dict[str, dict[str, float]] = {}
    for tier in model.tiers:
        price = getattr(tier, "cost_per_instance_hour", None)
        if price is None:
            continue
        units = _units(tier)
        costs[tier.name] = {
            "units": float(units),
            "per_instance_hour": float(price),
            "per_hour": units * float(price),
            "per_month": units * float(price) * HOURS_PER_MONTH,
        }
    return costs


def build_sizing_report(
    model: Model,
    runs: Sequence[RunResult],
    *,
    capsim_version: str,
    load_points: int = DEFAULT_LOAD_POINTS,
    engine: str = "auto",
    progress: ProgressCallback | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    curve_function: Callable[..., dict[str, Any]] | None = None,
) -> SizingReport:
    """Summarise `runs`, then add the CDFs, bottleneck, costs and (with `load_points` > 0) the
    p99-against-load curve."""
    summary = summarise(model, list(runs), capsim_version=capsim_version)
    report = SizingReport(
        result=summary.data,
        warnings=list(summary.warnings),
        cdf=latency_cdfs(model, runs),
        bottleneck=find_bottleneck(model, summary.data),
        costs=tier_costs(model),
        scenario_path=model.source,
    )
    saturation = (report.bottleneck or {}).get("saturation_rate")
    if load_points <= 0:
        report.curve_note = "The load curve was not computed (--load-points 0)."
    elif not any(not c.is_closed for c in model.classes):
        report.curve_note = "The scenario has no open traffic (rate) to scale, so no load curve."
    elif not saturation:
        report.curve_note = "No tier is busy, so there is no saturation rate to scale towards."
    else:
        make_curve = curve_function or load_curve
        report.curve = make_curve(
            model,
            float(saturation),
            points=load_points,
            engine=engine,
            progress=progress,
            max_requests=max_requests,
        )
        report.curve["current_rate"] = (report.bottleneck or {}).get("offered_rate")
    return report
