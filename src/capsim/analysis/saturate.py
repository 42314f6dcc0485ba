"""`capsim saturate`: how much load the architecture takes, which tier gives out first, and where.

Every open class's rate is scaled by one factor (the mix stays as written; closed classes stay
as written). The analytic light-load bounds give the starting bracket; simulation with
replications and common random numbers measures the curve and refines three rates:
the saturation rate (utilisation law on the bottleneck), the knee of p99 and the highest rate
at which every SLO holds. docs/capacity.md states each decision rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from capsim.analysis.points import (
    Point,
    Progress,
    headline,
    light_load_solution,
    measure,
    measure_all,
    open_rate,
    scale_open_traffic,
    with_run_length,
)
from capsim.engine.executors import Executor
from capsim.engine.runner import DEFAULT_MAX_REQUESTS
from capsim.errors import Interrupted, UsageError
from capsim.model.types import Model

#: Fractions of the analytic saturation rate measured first.
GRID: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1)
#: A tier at or above this occupancy (of its usable workers) counts as saturated.
SATURATED_OCCUPANCY = 0.97
#: Requests per replication a search point aims at, at the analytic saturation rate.
REQUESTS_PER_POINT = 30_000
#: Shortest search-point duration (seconds of simulated time) chosen automatically.
MIN_SEARCH_DURATION = 5.0


@dataclass
class CurvePoint:
    """One measured rate of the curve."""

    rate: float
    factor: float
    point: Point

    def occupancy(self, tier: str, usable: float) -> float:
        entry = self.point.report.data["tiers"][tier]
        held = max(entry.get("occupancy") or 0.0, entry["utilization"] or 0.0)
        return held * usable

    def as_dict(self, model: Model) -> dict[str, Any]:
        data = self.point.report.data
        figures = headline(data)
        return {
            "rate": self.rate,
            "p50": figures["p50"],
            "p99": figures["p99"],
            "error_rate": figures["error_rate"],
            "utilization": {name: t["utilization"] for name, t in data["tiers"].items()},
            "occupancy": {name: t.get("occupancy") for name, t in data["tiers"].items()},
            "stable": self.point.stable,
            "meets_slos": self.point.meets if model.slos else None,
            "classes": {
                name: {
                    "offered_rate": c["offered_rate"],
                    "throughput": c["throughput"],
                    "p50": c["latency"]["p50"],
                    "p99": c["latency"]["p99"],
                    "p99_ci95": (c.get("ci95") or {}).get("latency.p99"),
                    "error_rate": c["error_rate"],
                }
                for name, c in data["classes"].items()
            },
            "unstable_tiers": self.point.report.unstable_tiers,
        }


def usable_share(model: Model) -> dict[str, float]:
    """Per tier: workers / workers that can be busy at once (a pool smaller than the workers)."""
    share = {}
    for tier in model.tiers:
        usable = tier.workers
        if tier.pool is not None:
            usable = min(usable, tier.pool.size)
        share[tier.name] = tier.workers / max(usable, 1)
    return share


def default_search_duration(model: Model, saturation_rate: float) -> float:
    """Simulated seconds per search point: about REQUESTS_PER_POINT requests at saturation."""
    if not math.isfinite(saturation_rate) or saturation_rate <= 0:
        return model.simulation.duration
    wanted = max(REQUESTS_PER_POINT / saturation_rate, MIN_SEARCH_DURATION)
    return min(model.simulation.duration, wanted)


class _Searcher:
    """Measures scaled copies of one model, with a running count for the progress bar."""

    def __init__(
        self,
        model: Model,
        base_rate: float,
        capsim_version: str,
        progress: Progress | None,
        max_requests: float,
        budget: int,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor
        self.model = model
        self.base_rate = base_rate
        self.capsim_version = capsim_version
        self.progress = progress
        self.max_requests = max_requests
        self.budget = budget
        self.done = 0
        self.cache: dict[float, CurvePoint] = {}

    def at(self, rate: float, what: str) -> CurvePoint:
        return self.at_all([rate], what)[0]

    def at_all(self, rates: list[float], what: str) -> list[CurvePoint]:
        """The points at `rates`, the ones not measured yet measured together (one batch)."""
        keys = [round(rate, 9) for rate in rates]
        new = [rate for key, rate in dict(zip(keys, rates, strict=True)).items()
               if key not in self.cache]  # fmt: skip
        if new:
            self._measure(new, what)
        return [self.cache[key] for key in keys]

    def _measure(self, rates: list[float], what: str) -> None:
        done, budget = self.done, max(self.budget, self.done + len(rates))

        def part(fraction: float, label: str) -> None:
            if self.progress:
                whole = min((done + fraction * len(rates)) / budget, 0.999)
                self.progress(whole, label)

        labels = [f"point {done + i + 1}: {what} at {rate:.4g}/s" for i, rate in enumerate(rates)]
        models = [scale_open_traffic(self.model, rate / self.base_rate) for rate in rates]
        try:
            points = measure_all(
                models,
                capsim_version=self.capsim_version,
                progress=part,
                labels=labels,
                max_requests=self.max_requests,
                executor=self.executor,
            )
        except Interrupted as stop:
            for i, point in stop.completed_models.items():
                self._keep(rates[i], point)
            stop.completed_points = [_describe(p) for p in self.curve()]
            raise
        for rate, point in zip(rates, points, strict=True):
            self._keep(rate, point)

    def _keep(self, rate: float, point: Point) -> None:
        self.done += 1
        self.cache[round(rate, 9)] = CurvePoint(rate, rate / self.base_rate, point)

    def curve(self) -> list[CurvePoint]:
        return [self.cache[k] for k in sorted(self.cache)]


def _describe(point: CurvePoint) -> str:
    """One measured point in words, for what an interrupted search completed."""
    figures = headline(point.point.report.data)
    p99 = "—" if figures["p99"] is None else f"{figures['p99'] * 1e3:.4g}ms"
    state = "stable" if point.point.stable else "overloaded"
    return f"rate {point.rate:.4g}/s: p99 {p99}, errors {figures['error_rate']:.3%}, {state}"


def _knee_ratio(point: CurvePoint, low: CurvePoint) -> float:
    """The highest p99(rate) / p99(low load) over classes (infinite when a class has no p99)."""
    ratios = []
    low_classes = low.point.report.data["classes"]
    for name, entry in point.point.report.data["classes"].items():
        base = low_classes[name]["latency"]["p99"]
        value = entry["latency"]["p99"]
        if base is None or base <= 0:
            continue
        ratios.append(math.inf if value is None else value / base)
    return max(ratios, default=1.0)


def _bisect(
    searcher: _Searcher,
    low: float,
    high: float,
    passes: Any,
    precision: float,
    what: str,
) -> tuple[float, float]:
    """Narrow [low, high] (low passes, high fails) until (high - low) / high <= precision."""
    while (high - low) / high > precision:
        middle = 0.5 * (low + high)
        if passes(searcher.at(middle, what)):
            low = middle
        else:
            high = middle
    return low, high


def find_saturation(
    model: Model,
    *,
    capsim_version: str,
    replications: int = 3,
    duration: float | None = None,
    precision: float = 0.02,
    knee_factor: float = 2.0,
    verify: bool = True,
    progress: Progress | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Saturation rate and bottleneck, knee of p99 and the highest rate meeting every SLO.

    Rates are the total offered rate of the open classes. Raises UsageError when the model has
    no open class (nothing to scale).
    """
    base_rate = open_rate(model)
    if base_rate <= 0:
        raise UsageError(
            "capsim saturate scales the open classes' rates, and this scenario has none "
            "(every class is a closed loop of users); give a class a rate: instead"
        )
    if knee_factor <= 1:
        raise UsageError(f"--knee-factor must be greater than 1, not {knee_factor:g}")
    if not 0 < precision < 0.5:
        raise UsageError(f"--precision must be between 0 and 0.5, not {precision:g}")
    analytic = light_load_solution(model, capsim_version)
    analytic_rates = {name: t["max_rate"] for name, t in analytic["tiers"].items()}
    analytic_bottleneck = analytic["bottleneck"]["tier"]
    analytic_saturation = analytic["bottleneck"]["saturation_rate"]
    if analytic_saturation is None or not math.isfinite(analytic_saturation):
        raise UsageError("no tier receives traffic, so nothing can saturate")
    search_duration = duration or default_search_duration(model, analytic_saturation)
    search_model = with_run_length(model, search_duration, replications)
    searcher = _Searcher(
        search_model,
        base_rate,
        capsim_version,
        progress,
        max_requests,
        budget=len(GRID) + 16,
        executor=executor,
    )
    usable = usable_share(model)
    notes: list[str] = []

    def saturated(point: CurvePoint) -> bool:
        return not point.point.stable or any(
            point.occupancy(name, usable[name]) >= SATURATED_OCCUPANCY for name in usable
        )

    # The grid's points are independent: one batch, so every worker has work.
    searcher.at_all([fraction * analytic_saturation for fraction in GRID], "measuring the curve")
    rate = GRID[-1] * analytic_saturation
    for _ in range(8):
        if any(saturated(p) for p in searcher.curve()):
            break
        rate *= 1.25
        searcher.at(rate, "looking for saturation")
    else:
        notes.append("no tier saturated within 6x the analytic saturation rate")

    # (1) Saturation: per tier, occupancy(rate) = 1 solved by a secant through the two highest
    # measured rates at which the system is stable and the tier below SATURATED_OCCUPANCY.
    tiers_out: dict[str, dict[str, Any]] = {}
    for tier in model.tiers:
        name = tier.name
        usable_points = [
            p
            for p in searcher.curve()
            if p.point.stable and 0.02 < p.occupancy(name, usable[name]) < SATURATED_OCCUPANCY
        ]
        estimate: float | None = None
        if len(usable_points) >= 2:
            a, b = usable_points[-2], usable_points[-1]
            occ_a, occ_b = a.occupancy(name, usable[name]), b.occupancy(name, usable[name])
            slope = (occ_b - occ_a) / (b.rate - a.rate)
            if slope > 0:
                estimate = b.rate + (1.0 - occ_b) / slope
        if estimate is None and usable_points:
            last = usable_points[-1]
            estimate = last.rate / last.occupancy(name, usable[name])
        tiers_out[name] = {
            "max_rate": estimate,
            "max_rate_analytic": analytic_rates.get(name),
        }
    measured = {n: t["max_rate"] for n, t in tiers_out.items() if t["max_rate"] is not None}
    bottleneck = min(measured, key=lambda n: measured[n]) if measured else analytic_bottleneck
    saturation_rate = measured.get(bottleneck) if measured else None

    confirmation: dict[str, Any] = {}
    if saturation_rate is not None:
        below, above = searcher.at_all(
            [0.9 * saturation_rate, 1.1 * saturation_rate], "confirming saturation"
        )
        confirmation = {
            "below": {"rate": below.rate, "stable": below.point.stable},
            "above": {
                "rate": above.rate,
                "saturated": saturated(above),
                "bottleneck_saturated": not above.point.report.data["tiers"][bottleneck]["stable"]
                or above.occupancy(bottleneck, usable[bottleneck]) >= SATURATED_OCCUPANCY,
            },
        }

    # (2) Knee: the lowest rate where some class's p99 reaches knee_factor x its low-load p99.
    curve = searcher.curve()
    low = curve[0]
    knee_rate: float | None = None
    previous = low
    for point in curve[1:]:
        if _knee_ratio(point, low) >= knee_factor:
            lo, hi = _bisect(
                searcher,
                previous.rate,
                point.rate,
                lambda p: _knee_ratio(p, low) < knee_factor,
                precision,
                "locating the knee",
            )
            r_lo, r_hi = (
                _knee_ratio(searcher.at(lo, ""), low),
                _knee_ratio(searcher.at(hi, ""), low),
            )
            if math.isfinite(r_hi) and r_hi > r_lo:
                knee_rate = lo + (hi - lo) * (knee_factor - r_lo) / (r_hi - r_lo)
            else:
                knee_rate = lo
            break
        previous = point
    if knee_rate is None:
        notes.append(f"p99 never reached {knee_factor:g}x its low-load value on the measured curve")

    # (3) The highest rate at which every SLO holds by its upper 95% bound.
    max_rate_meeting: float | None = None
    slo_point: CurvePoint | None = None
    if not model.slos:
        notes.append("the scenario has no SLOs, so max_rate_meeting_slos is not defined")
    else:
        curve = searcher.curve()
        if not curve[0].point.meets:
            notes.append(
                f"the SLOs fail even at {curve[0].rate:.4g}/s "
                f"({GRID[0]:.0%} of the analytic saturation rate): "
                + "; ".join(curve[0].point.failures)
            )
        else:
            passing = curve[0]
            failing: CurvePoint | None = None
            for point in curve[1:]:
                if point.point.meets:
                    passing = point
                else:
                    failing = point
                    break
            if failing is None:
                max_rate_meeting = passing.rate
                notes.append("every measured rate met the SLOs")
            else:
                lo, _ = _bisect(
                    searcher,
                    passing.rate,
                    failing.rate,
                    lambda p: p.point.meets,
                    precision,
                    "searching the SLO limit",
                )
                max_rate_meeting = lo
            slo_point = searcher.at(max_rate_meeting, "")

    verification: dict[str, Any] | None = None
    slos: list[dict[str, Any]] = []
    if slo_point is not None and max_rate_meeting is not None:
        checked = slo_point
        if verify:
            if progress:
                progress(0.999, "verifying at the scenario's own run length")
            full = measure(
                scale_open_traffic(model, max_rate_meeting / base_rate),
                capsim_version=capsim_version,
                max_requests=max_requests,
                executor=executor,
            )
            checked = CurvePoint(max_rate_meeting, max_rate_meeting / base_rate, full)
            verification = {
                "rate": max_rate_meeting,
                "duration": model.simulation.duration,
                "replications": model.simulation.replications,
                "meets_slos": full.meets,
                "failures": full.failures,
            }
        slos = [check.as_dict() for check in checked.point.checks]

    if progress:
        progress(1.0, "done")
    return {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "command": "saturate",
        "seed": model.seed,
        "replications": replications,
        "duration": search_duration,
        "offered_rate": base_rate,
        "bottleneck": bottleneck,
        "saturation_rate": saturation_rate,
        "knee_rate": knee_rate,
        "knee_factor": knee_factor,
        "max_rate_meeting_slos": max_rate_meeting,
        "analytic": {"bottleneck": analytic_bottleneck, "saturation_rate": analytic_saturation},
        "confirmation": confirmation,
        "verification": verification,
        "tiers": tiers_out,
        "curve": [p.as_dict(model) for p in searcher.curve()],
        "slos": slos,
        "evaluations": searcher.done,
        "notes": notes,
    }
