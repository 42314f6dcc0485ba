"""The figures behind `capsim report`: latency CDFs, the p99-against-load curve (from
`capsim saturate`'s search), the bottleneck and cost per tier, in one SizingReport for the
renderers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from capsim.analysis.cost import (
    HOURS_PER_MONTH,
    billed_units,
    nominal_tier_cost,
    pricing_model,
    usage_per_hour,
)
from capsim.analysis.saturate import find_saturation
from capsim.analysis.summary import summarise
from capsim.engine.executors import Executor
from capsim.engine.histogram import Histogram
from capsim.engine.result import RunResult
from capsim.engine.runner import DEFAULT_MAX_REQUESTS
from capsim.errors import UsageError
from capsim.model.types import Model

ProgressCallback = Callable[[float, str], None]
#: Hours in an average month (365.25 x 24 / 12), for monthly cost.


@dataclass
class SizingReport:
    """A run's result plus what the sizing report plots.

    `cdf`: per class, `latency` (seconds) and `fraction` (cumulative, in (0, 1]).
    `curve`: the p99-against-load curve (see `load_curve`), or None with `curve_note` saying why.
    `bottleneck`: the busiest tier, its occupancy and the estimated saturation rate.
    `costs`: per priced tier, units, price per unit-hour, cost per hour and per month, in
    `currency` (None: the scenario names none).
    `forecast`: a `capsim forecast` result for the report's forecast section, or None.
    """

    result: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    cdf: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    curve: dict[str, Any] | None = None
    curve_note: str | None = None
    bottleneck: dict[str, Any] | None = None
    costs: dict[str, dict[str, Any]] = field(default_factory=dict)
    forecast: dict[str, Any] | None = None
    scenario_path: str = ""
    currency: str | None = None  # ISO 4217 code of the prices (the scenario's `currency`)
    #: The scenario's `description` (free text, may span lines; shown under the title).
    description: str = ""
    #: `capsim report --usl`: the USL fitted to a stepped load test (capsim.analysis.usl's
    #: summary, with `saturate` beside it), or None.
    usl: dict[str, Any] | None = None


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


#: Occupancy at which a tier counts as fully held: the load offered is at or past its saturation.
FULLY_HELD = 0.99


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
    # A tier held all the time is past saturation: how far past, one run cannot say, unless the
    # run found it overloaded, whose entry's capacity (the utilization law) tells more.
    extrapolates = 0 < held < FULLY_HELD and open_rate > 0
    saturation = open_rate / held if extrapolates else None
    for failure in result.get("overloaded") or []:
        if failure.get("tier") == name and failure.get("saturation_rate"):
            saturation = failure["saturation_rate"]
    return {
        "tier": name,
        "occupancy": held,
        "utilization": tiers[name].get("utilization"),
        "stable": tiers[name].get("stable", True),
        "offered_rate": open_rate,
        "saturation_rate": saturation,
    }


def curve_from_saturation(saturation: dict[str, Any], model: Model) -> dict[str, Any]:
    """The p99-against-load curve of `capsim saturate`'s search, per class and tier.

    Points at which a tier was overloaded have no steady-state percentiles: their p50 and p99
    are None (the plot leaves a gap), and `stable` says which they were.
    """
    points = sorted(saturation["curve"], key=lambda point: point["rate"])
    curve: dict[str, Any] = {
        "rate": [point["rate"] for point in points],
        "stable": [bool(point["stable"]) for point in points],
        "classes": {},
        "tiers": {
            tier.name: {
                "utilization": [point["utilization"].get(tier.name) for point in points],
                "occupancy": [(point.get("occupancy") or {}).get(tier.name) for point in points],
            }
            for tier in model.tiers
        },
    }
    for traffic in model.classes:
        entries = [point["classes"].get(traffic.name, {}) for point in points]
        curve["classes"][traffic.name] = {
            "p50": [
                e.get("p50") if p["stable"] else None for e, p in zip(entries, points, strict=True)
            ],
            "p99": [
                e.get("p99") if p["stable"] else None for e, p in zip(entries, points, strict=True)
            ],
            "error_rate": [e.get("error_rate") for e in entries],
        }
    curve["knee"] = saturation.get("knee_rate")
    curve["knee_factor"] = saturation.get("knee_factor")
    curve["knee_class"] = _knee_class(curve, curve["knee"])
    curve["saturation_rate"] = saturation.get("saturation_rate")
    curve["bottleneck"] = saturation.get("bottleneck")
    curve["max_rate_meeting_slos"] = saturation.get("max_rate_meeting_slos")
    curve["notes"] = list(saturation.get("notes", []))
    return curve


def _knee_class(curve: dict[str, Any], knee: float | None) -> str | None:
    """The class whose p99 grew the most, relative to its lowest-load value, at the knee."""
    if knee is None or not curve["rate"]:
        return None
    at = next((i for i, rate in enumerate(curve["rate"]) if rate >= knee), len(curve["rate"]) - 1)
    best: tuple[float, str] | None = None
    for name, entry in curve["classes"].items():
        low, value = entry["p99"][0], entry["p99"][at]
        if low and value is not None and (best is None or value / low > best[0]):
            best = (value / low, name)
    return best[1] if best else None


def tier_costs(model: Model, bill: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Cost per hour and per month of every priced tier, as the run billed it (`bill`, the
    result's `cost` section, docs/cost.md: an autoscaled tier's or a KEDA queue's mean live
    units, spot instances while up, usage prices at the run's load); without a bill, its
    instances at their written counts under its pricing model."""
    costs: dict[str, dict[str, Any]] = {}
    usage = (bill or {}).get("tiers", {})
    for tier in model.tiers:
        if tier.pricing is None:
            continue
        billed = usage.get(tier.name)
        if billed is not None and billed.get("per_hour") is not None:
            costs[tier.name] = {
                "pricing": billed.get("pricing", pricing_model(tier.pricing)),
                "units": billed.get("units"),  # none for a usage-priced tier
                "per_instance_hour": float(tier.pricing.on_demand or 0.0),
                "per_hour": billed["per_hour"],
                "per_month": billed["per_month"],
            }
            continue
        hourly: float | None = nominal_tier_cost(tier) or 0.0
        used = usage.get(tier.name)
        if used is not None:
            extra = usage_per_hour(used)
            hourly = None if extra is None or hourly is None else hourly + extra
        if hourly is None:
            continue  # a price beyond a float: the result's cost shows it as null
        costs[tier.name] = {
            "pricing": pricing_model(tier.pricing),
            "units": float(billed_units(tier)),
            "per_instance_hour": float(tier.pricing.on_demand or 0.0),
            "per_hour": hourly,
            "per_month": hourly * HOURS_PER_MONTH,
        }
    return costs


def build_sizing_report(
    model: Model,
    runs: Sequence[RunResult],
    *,
    capsim_version: str,
    curve: bool = True,
    progress: ProgressCallback | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
) -> SizingReport:
    """Summarise `runs`, then add the CDFs, bottleneck and costs and, with `curve`, the
    p99-against-load curve from `capsim saturate`'s search (`find_saturation`), whose
    bottleneck and saturation rate then replace the single run's estimate."""
    summary = summarise(model, list(runs), capsim_version=capsim_version)
    report = SizingReport(
        result=summary.data,
        warnings=list(summary.warnings),
        cdf=latency_cdfs(model, runs),
        bottleneck=find_bottleneck(model, summary.data),
        costs=tier_costs(model, summary.data.get("cost")),
        scenario_path=model.source,
        currency=model.currency,
        description=model.description,
    )
    if not curve:
        report.curve_note = "The load curve was not computed (--no-curve)."
        return report
    if not any(not c.is_closed for c in model.classes):
        report.curve_note = "The scenario has no open traffic (rate) to scale, so no load curve."
        return report
    try:
        # The search's many runs need no per-bucket figures, except where load or capacity
        # changes during the run: find_saturation records them there (`with_busiest_minute`).
        saturation = find_saturation(
            replace(model, timeseries=False),
            capsim_version=capsim_version,
            progress=progress,
            max_requests=max_requests,
            executor=executor,
        )
    except UsageError as error:
        # Nothing to saturate (no tier receives traffic): the report stands without a curve.
        report.curve_note = f"No load curve: {error}"
        return report
    report.curve = curve_from_saturation(saturation, model)
    report.curve["current_rate"] = saturation.get("offered_rate")
    tier = saturation.get("bottleneck")
    if tier in summary.data["tiers"] and saturation.get("saturation_rate"):
        entry = summary.data["tiers"][tier]
        report.bottleneck = {
            "tier": tier,
            "occupancy": max(entry.get("occupancy") or 0.0, entry.get("utilization") or 0.0),
            "utilization": entry.get("utilization"),
            "stable": entry.get("stable", True),
            "offered_rate": saturation.get("offered_rate"),
            "saturation_rate": saturation["saturation_rate"],
            "source": "capsim saturate",
            "analytic_rate": (saturation.get("analytic") or {}).get("saturation_rate"),
        }
    return report
