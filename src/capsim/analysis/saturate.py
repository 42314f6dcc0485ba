"""`capsim saturate`: how much load the architecture takes, which tier gives out first, and where.

Every open class's rate is scaled by one factor (the mix stays as written; closed classes stay
as written). The analytic light-load bounds give the starting bracket; simulation with
replications and common random numbers measures the curve and refines three rates:
the saturation rate (utilization law on the bottleneck, moved when its confirmation fails), the
knee of p99 and the highest rate at which every SLO holds (never above any tier's saturation
lower bound, and only a rate verified at the scenario's run length). A point runs longer only
where that decides: near saturation when its stability decides (the confirmation's stable side,
a move's bisection), and for the samples of a percentile objective near its limit. Autoscaled
tiers are evaluated at their max replicas. docs/capacity.md states each decision rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from capsim.analysis.busiest_group import scaled_to_group
from capsim.analysis.peak_window import peak_window
from capsim.analysis.points import (
    RERUN_FACTOR,
    SAMPLE_MARGIN,
    Point,
    Progress,
    ReplicationStore,
    SloCheck,
    asked_figures,
    at_max_replicas,
    expected_requests,
    headline,
    light_load_solution,
    measure_all,
    open_rate,
    percentile_needs_by_slo,
    sampled_duration,
    scale_open_traffic,
    simulated_requests,
    with_run_length,
)
from capsim.analysis.stats import NOISE_FACTOR, student_t_quantile
from capsim.analysis.summary import fewest_samples
from capsim.engine.executors import Executor
from capsim.engine.runner import DEFAULT_MAX_REQUESTS
from capsim.errors import Interrupted, UsageError
from capsim.model.features import conditions_change
from capsim.model.types import Model, Tier
from capsim.units import format_duration

#: Fractions of the analytic saturation rate measured first (one batch).
GRID: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 1.1)
#: Steps of x GROWTH_FACTOR past the grid while no tier saturates (up to 6.55x the analytic rate).
GROWTH_STEPS, GROWTH_FACTOR = 8, 1.25
#: The confirmation measures 0.9x (stable, stretched near saturation) and 1.1x the estimate ...
CONFIRM_BELOW, CONFIRM_ABOVE = 0.9, 1.1
#: ... or a point already measured within this fraction of those rates (as long).
CONFIRM_REUSE = 0.03
#: A tier at or above this occupancy (of its usable workers) counts as saturated.
SATURATED_OCCUPANCY = 0.97
#: The secant may extrapolate the share held at most this many times the rise it is measured
#: on; a tier further from saturation (its share barely rising between the two highest points)
#: gets the line through the origin instead (docs/capacity.md, step 3).
SECANT_LEVERAGE = 10.0
#: Requests per replication a search point aims at, at the analytic saturation rate.
REQUESTS_PER_POINT = 30_000
#: Shortest search-point duration (seconds of simulated time) chosen automatically.
MIN_SEARCH_DURATION = 5.0
#: A point within this fraction of the saturation estimate (either side) is "near saturation".
NEAR_SATURATION = 0.2
#: Near saturation a point runs for at least this many relaxation times of the bottleneck ...
RELAXATION_TIMES = 20.0
#: ... but at most this many times the search duration.
MAX_STRETCH = 4.0
#: Each failed verification moves the candidate rate down by this fraction.
VERIFY_STEP = 0.05
#: Verifications tried before max_rate_meeting_slos is given up as unknown.
MAX_VERIFICATIONS = 8
#: Times a failed confirmation below the estimate may move it.
MAX_MOVES = 3
#: Rounds of a pair of points around the interpolated crossing before plain bisection.
STRADDLES = 2
#: Replications (at least) of the lightest point measured again when it failed only by noise.
NOISE_RERUN_REPLICATIONS = 5
#: Times at most such a point is measured again, each time with RERUN_FACTOR x the replications
#: and the run length of the last, until its interval decides (or the request limit stops it).
NOISE_RERUN_ROUNDS = 3
#: A percentile objective decides the answer once its pooled figure reaches this share of its
#: limit at a stable point, or fails there; only then are points stretched for its samples
#: (docs/capacity.md, "Enough samples for every percentile": in saturate, only for the
#: objectives that decide).
DECIDING_SHARE = 0.5


def _busiest_minute_held(entry: dict[str, Any]) -> float:
    """The share held in the tier's busiest minute (`peak`, present when load or capacity
    changes during the run): the rate axis of a profiled scenario is its peak, so the share
    held over the whole window (calm minutes included) would put its saturation too high by
    the peak-to-mean ratio of the load (1.37x for a 20x spike of 5 minutes in a 7-minute window)."""
    peak = entry.get("peak") or {}
    return max(
        ((peak.get(key) or {}).get("value") or 0.0 for key in ("occupancy", "utilization")),
        default=0.0,
    )


def _held(entry: dict[str, Any]) -> float:
    """The share of a tier's (or a group's) workers held over the window."""
    return max(entry.get("occupancy") or 0.0, entry.get("utilization") or 0.0)


@dataclass
class CurvePoint:
    """One measured rate of the curve."""

    rate: float
    factor: float
    point: Point
    near: bool = False  # run as long as the rule near saturation asks (docs/capacity.md)

    def occupancy(self, tier: str, usable: float) -> float:
        """The share of the tier's usable workers held; for a database with replicas, of its
        busiest group's (reads on the replicas saturate them while the primary idles: the
        pooled share would put its saturation up to twice too high)."""
        entry = self.point.report.data["tiers"][tier]
        pooled = _held(entry)
        peak = _busiest_minute_held(entry)
        held = max(pooled, peak)
        for group in (entry.get("groups") or {}).values():
            # A group's busiest minute is not recorded: the tier's, scaled by the group's share
            # of the window's work (a write primary held 41% over a window whose mean load is
            # 2/3 of its peak saturated near 294/s, not 440/s).
            in_group = _held(group)
            held = max(held, scaled_to_group(peak, in_group, pooled) if peak > 0 else in_group)
        return held * usable

    def occupancy_upper(self, tier: str, usable: float) -> float:
        """The upper end of the 95% interval of the share held (the estimate without one)."""
        entry = self.point.report.data["tiers"][tier]
        intervals = entry.get("ci95") or {}
        highs = [
            interval[1]
            for key in ("occupancy", "utilization")
            if (interval := intervals.get(key)) is not None and interval[1] is not None
        ]
        return max(self.occupancy(tier, usable), max(highs, default=0.0) * usable)

    def occupancy_lower(self, tier: str, usable: float) -> float:
        """The share held less the lower half of its 95% interval (the estimate without one)."""
        entry = self.point.report.data["tiers"][tier]
        intervals = entry.get("ci95") or {}
        # The lower half of the interval of the figure that is the share held: the utilization
        # of a tier whose workers also hold while waiting (0.17 against an occupancy of 0.69)
        # tells nothing of where the occupancy lies.
        held = _held(entry)
        below = [
            held - interval[0]
            for key in ("occupancy", "utilization")
            if (entry.get(key) or 0.0) == held
            and (interval := intervals.get(key)) is not None
            and interval[0] is not None
        ]
        return max(self.occupancy(tier, usable) - max(below, default=0.0) * usable, 0.0)

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
            "duration": self.point.model.simulation.duration,
            "replications": self.point.model.simulation.replications,
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
                    **asked_figures(c),
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


def relaxation_time(rate: float, saturation_rate: float, bottleneck_rate: float) -> float:
    """How long the bottleneck's queue takes to forget where it started, at `rate`.

    Morse's M/M/1 relaxation time 1 / (lambda (1 - sqrt(rho))^2), with lambda the bottleneck's
    arrival rate at saturation and rho = min(rate / saturation, saturation / rate): the distance
    from saturation on either side (above it, the growth must stand out from the same noise).
    """
    if saturation_rate <= 0 or rate <= 0 or bottleneck_rate <= 0:
        return 0.0
    rho = min(rate / saturation_rate, saturation_rate / rate, 0.999)
    return 1.0 / (bottleneck_rate * (1.0 - math.sqrt(rho)) ** 2)


def near_saturation_duration(
    base: float,
    rate: float,
    saturation_rate: float | None,
    bottleneck_rate: float,
    cap: float = math.inf,
) -> float:
    """The run length of a point (docs/capacity.md, "Near saturation"): `base`, stretched
    within NEAR_SATURATION of the saturation estimate to RELAXATION_TIMES relaxation times, at
    most MAX_STRETCH x `base` and at most `cap` (the request limit's share)."""
    if saturation_rate is None or not math.isfinite(saturation_rate) or saturation_rate <= 0:
        return base
    if abs(rate / saturation_rate - 1.0) > NEAR_SATURATION:
        return base
    wanted = RELAXATION_TIMES * relaxation_time(rate, saturation_rate, bottleneck_rate)
    return max(base, min(wanted, MAX_STRETCH * base, cap))


def stability_resolution(point: CurvePoint, share: float) -> float:
    """The slowest overload (in open requests per second) the stability rule tells apart from
    a steady state at this point: growth must stand NOISE_FACTOR standard deviations above the
    counting noise of arrivals and departures, sqrt(2 lambda T) over a window T, so
    NOISE_FACTOR x sqrt(2 lambda / T) per second at the bottleneck, lambda its arrival rate."""
    window = point.point.model.simulation.duration
    arrivals = point.rate * max(share, 1e-12)
    if window <= 0 or arrivals <= 0:
        return 0.0
    return NOISE_FACTOR * math.sqrt(2.0 * arrivals / window) / max(share, 1e-12)


class _Searcher:
    """Measures scaled copies of one model, with a running count for the progress bar.

    `saturation_rate` and `bottleneck_share` (the bottleneck's arrivals per open request) are
    the current saturation estimate, which decides how long a point near it runs.
    """

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
        self.saturation_rate: float | None = None
        self.bottleneck_share = 1.0
        # Every percentile objective's visit share and the values it needs (percentile_needs);
        # points are stretched only for those that decide (`deciding`, DECIDING_SHARE).
        self.all_needs: dict[str, tuple[float, int]] = {}
        self.deciding: set[str] = set()
        # Load or capacity changing during the run: a time-averaged occupancy does not
        # extrapolate to the peak, so every point's stability decides (docs/capacity.md).
        self.always_near = conditions_change(model)
        self.floors: dict[float, float] = {}  # a rate's shortest run length, when longer
        self.phase = "curve"  # what the points measured now are for (docs/capacity.md)
        self.runs: dict[str, int] = {}  # simulated points per phase, verifications included
        self.requests = 0.0  # open requests simulated (warm-up and re-runs included)
        self.again: set[float] = set()  # rates measured again longer (`measured_longer`)
        # Rates whose rounds stopped, not settled, before the last (`_measured_until_decided`).
        self.stopped_early: set[float] = set()
        # Replications simulated so far, reused by a measurement that asks for them again (a
        # verification run again with more replications runs only the new ones).
        self.store = ReplicationStore()

    @property
    def needs(self) -> list[tuple[float, int]]:
        """The visit shares and values needed of the objectives that decide (in SLO order)."""
        return [need for slo, need in self.all_needs.items() if slo in self.deciding]

    def _cap(self, rate: float, model: Model) -> float:
        """The longest run of `model` at `rate` within half of the request limit."""
        simulation = model.simulation
        per_second = rate * simulation.replications * (1 + simulation.warmup / simulation.duration)
        return 0.5 * self.max_requests / per_second if per_second > 0 else math.inf

    def duration_at(self, rate: float, model: Model, near: bool = False) -> float:
        """`model`'s run length, stretched (with `near`) near the saturation estimate and until
        every deciding percentile objective expects enough values per replication
        (docs/capacity.md)."""
        cap = self._cap(rate, model)
        length = max(model.simulation.duration, min(self.floors.get(round(rate, 9), 0.0), cap))
        if near or self.always_near:
            length = near_saturation_duration(
                length,
                rate,
                self.saturation_rate,
                (self.saturation_rate or 0.0) * self.bottleneck_share,
                cap,
            )
        return sampled_duration(length, rate, self.needs, cap)

    def at(self, rate: float, what: str, near: bool = False) -> CurvePoint:
        return self.at_all([rate], what, near)[0]

    def at_all(
        self, rates: list[float], what: str, near: bool | list[bool] = False
    ) -> list[CurvePoint]:
        """The points at `rates`, the ones not measured yet measured together (one batch).

        With `near` (for each rate, or for all: a point whose stability decides,
        docs/capacity.md, "Near saturation"), a point measured shorter than the stretch near
        saturation asks is measured again."""
        nears = near if isinstance(near, list) else [near] * len(rates)
        keys = [round(rate, 9) for rate in rates]
        new: dict[float, tuple[float, bool]] = {}
        for key, rate, stretch in zip(keys, rates, nears, strict=True):
            if key not in self.cache or (
                stretch and self._shorter_than_asked(self.cache[key], rate)
            ):
                new.setdefault(key, (rate, stretch))
        if new:
            self._measure([rate for rate, _ in new.values()], what,
                          [stretch for _, stretch in new.values()])  # fmt: skip
        return [self.cache[key] for key in keys]

    def nearby(self, rate: float, tolerance: float, near: bool) -> float | None:
        """The measured rate closest to `rate`, within `tolerance` of it (relative) and, with
        `near`, measured as long as the stretch near saturation asks at `rate` (the point it
        stands for), within the same `tolerance`; None when there is none. (A point measured
        for the estimate solve gave stands for one of an estimate 1% lower, which asks a run
        1% longer.)"""
        close = [
            point
            for point in self.cache.values()
            if abs(point.rate / rate - 1.0) <= tolerance
            and not (near and self._shorter_than_asked(point, rate, tolerance))
        ]
        if not close:
            return None
        return min(close, key=lambda point: (abs(point.rate - rate), point.rate)).rate

    def _shorter_than_asked(self, point: CurvePoint, rate: float, tolerance: float = 0.0) -> bool:
        asked = with_run_length(self.model, self.duration_at(rate, self.model, True), None)
        wanted = asked.simulation.duration * (1.0 - tolerance)
        return point.point.model.simulation.duration < wanted - 1e-9

    def _measure(self, rates: list[float], what: str, nears: list[bool]) -> None:
        done, budget = self.done, max(self.budget, self.done + len(rates))

        def part(fraction: float, label: str) -> None:
            if self.progress:
                whole = min((done + fraction * len(rates)) / budget, 0.999)
                self.progress(whole, label)

        labels = [f"point {done + i + 1}: {what} at {rate:.4g}/s" for i, rate in enumerate(rates)]
        # Each point's run length is decided now, from the current saturation estimate: a batch
        # is measured exactly as its points one after another would be.
        models = [
            scale_open_traffic(
                with_run_length(self.model, self.duration_at(rate, self.model, near), None),
                rate / self.base_rate,
            )
            for rate, near in zip(rates, nears, strict=True)
        ]
        try:
            points = self.measured(models, rates, labels, part)
        except Interrupted as stop:
            for i, point in stop.completed_models.items():
                self._keep(rates[i], point, nears[i])
            stop.completed_points = [_describe(p) for p in self.curve()]
            raise
        for rate, point, near in zip(rates, points, nears, strict=True):
            self._keep(rate, point, near)

    def measured(
        self,
        models: list[Model],
        rates: list[float],
        labels: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Point]:
        """`models` (at `rates`) measured together; then the points whose objectives turned out
        to decide, and that are short of their samples, measured again stretched for them."""
        points = self._measure_counted(models, labels, progress)
        self._note_deciding(points)
        again = {
            i: with_run_length(point.model, longer, None)
            for i, (rate, point) in enumerate(zip(rates, points, strict=True))
            if self._short_of_samples(point)
            and (longer := self._sampled_length(rate, point.model))
            > point.model.simulation.duration
        }
        if again:
            try:
                longer_points = self._measure_counted(
                    list(again.values()),
                    [labels[i] for i in again] if labels is not None else None,
                    progress,
                )
            except Interrupted as stop:
                # Stopped while stretching some points for their samples: every point was
                # measured in full at its first run length already (and the batch's indices
                # are not `models`'); the stretched ones that completed replace theirs.
                stretched = list(again)
                kept = dict(enumerate(points))
                kept |= {stretched[j]: point for j, point in stop.completed_models.items()}
                stop.completed_models = kept
                raise
            for i, point in zip(again, longer_points, strict=True):
                points[i] = point
        return points

    def _measure_counted(
        self, models: list[Model], labels: list[str] | None, progress: Progress | None
    ) -> list[Point]:
        """`measure_all` of `models`, their simulated requests counted (re-runs included).

        The longest models are handed to the executor first (results do not depend on the
        order: every model keeps its own random streams), so that a long point does not start
        last and keep one worker busy while the others idle."""
        order = sorted(range(len(models)), key=lambda i: (-expected_requests(models[i]), i))
        try:
            measured = measure_all(
                [models[i] for i in order],
                capsim_version=self.capsim_version,
                progress=progress,
                labels=[labels[i] for i in order] if labels is not None else None,
                max_requests=self.max_requests,
                executor=self.executor,
                store=self.store,
            )
        except Interrupted as stop:
            stop.completed_models = {order[i]: p for i, p in stop.completed_models.items()}
            raise
        points = [measured[order.index(i)] for i in range(len(models))]
        for model, point in zip(models, points, strict=True):
            # One more simulated point in the current phase, two when it was re-run for noise
            # (measure_all). Not judged by its replications: a point of a scenario whose load
            # changes during the run gets more of them for a longer run (with_run_length).
            rerun = point.model is not model
            self.runs[self.phase] = self.runs.get(self.phase, 0) + 1 + int(rerun)
            self.requests += simulated_requests(point)  # replications reused not counted
        return points

    def _note_deciding(self, points: list[Point]) -> None:
        """Percentile objectives that failed, or whose pooled figure reached DECIDING_SHARE of
        their limit, at a stable point decide from now on. (The pooled figure, not the upper
        end of its interval: from a handful of values that interval is noise, and a failure by
        it alone counts as a failure.)"""
        for point in points:
            if not point.stable:
                continue
            for check in point.checks:
                if check.slo not in self.all_needs or check.slo in self.deciding:
                    continue
                if _near_its_limit(check):
                    self.deciding.add(check.slo)

    def _short_of_samples(self, point: Point) -> bool:
        """A deciding objective estimated from too few values where it is near its limit
        (failing, or its figure at least DECIDING_SHARE of it): a point not yet stretched for
        it has not had the samples its verdict needs. Far below its limit the verdict stands."""
        return point.stable and any(
            check.slo in self.deciding and check.low_sample and _near_its_limit(check)
            for check in point.checks
        )

    def _sampled_length(self, rate: float, model: Model) -> float:
        """The run length `model` (at `rate`) needs for the deciding objectives' samples."""
        simulation = model.simulation
        return sampled_duration(simulation.duration, rate, self.needs, self._cap(rate, model))

    def measured_longer(self, rate: float, what: str) -> CurvePoint | None:
        """The point at `rate` measured again with RERUN_FACTOR x its duration and at least
        NOISE_RERUN_REPLICATIONS replications (docs/capacity.md, "The lightest point"), which
        then stands for that rate; None when that would exceed half the request limit."""
        measured = self.cache[round(rate, 9)].point.model
        simulation = measured.simulation
        longer = with_run_length(
            measured,
            simulation.duration * RERUN_FACTOR,
            max(simulation.replications * RERUN_FACTOR, NOISE_RERUN_REPLICATIONS),
        )
        if expected_requests(longer) > 0.5 * self.max_requests:
            return None
        label, done, budget = f"{what} at {rate:.4g}/s", self.done, max(self.budget, 1)

        def part(fraction: float, text: str) -> None:
            # Its replications report as they go: a re-run of a few minutes was silent in a
            # CI log (100 s and more between two progress lines).
            if self.progress:
                self.progress(min((done + fraction) / budget, 0.999), text)

        part(0.0, label)
        (point,) = self._measure_counted([longer], [label], part)
        self.again.add(round(rate, 9))
        self.done += 1
        self.cache[round(rate, 9)] = CurvePoint(rate, rate / self.base_rate, point)
        return self.cache[round(rate, 9)]

    def _keep(self, rate: float, point: Point, near: bool = False) -> None:
        self.done += 1
        self.cache[round(rate, 9)] = CurvePoint(
            rate, rate / self.base_rate, point, near or self.always_near
        )

    def curve(self) -> list[CurvePoint]:
        return [self.cache[k] for k in sorted(self.cache)]


def _near_its_limit(check: SloCheck) -> bool:
    """Failed (by its figure or its interval), or its pooled figure at least DECIDING_SHARE of
    its limit."""
    return not check.passed or (
        check.observed is not None and check.observed >= DECIDING_SHARE * check.limit
    )


def _describe(point: CurvePoint) -> str:
    """One measured point in words, for what an interrupted search completed."""
    figures = headline(point.point.report.data)
    p99 = "—" if figures["p99"] is None else f"{figures['p99'] * 1e3:.4g}ms"
    state = "stable" if point.point.stable else "overloaded"
    return f"rate {point.rate:.4g}/s: p99 {p99}, errors {figures['error_rate']:.3%}, {state}"


def _knee_classes(low: CurvePoint) -> list[str]:
    """The classes whose p99 at the lightest point is estimated from enough values (not
    `low_sample`): a p99 from fewer is a noisy baseline that would put a knee anywhere."""
    return [
        name
        for name, entry in low.point.report.data["classes"].items()
        if "latency.p99" not in entry.get("low_sample", ())
    ]


def _knee_ratio(point: CurvePoint, low: CurvePoint) -> float:
    """The highest p99(rate) / p99(low load) over the classes `_knee_classes` counts (infinite
    when such a class has no p99)."""
    ratios = []
    low_classes = low.point.report.data["classes"]
    counted = set(_knee_classes(low))
    for name, entry in point.point.report.data["classes"].items():
        if name not in counted:
            continue
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
    passes: Callable[[CurvePoint], bool],
    precision: float,
    what: str,
    guess: Callable[[CurvePoint, CurvePoint], float | None] | None = None,
) -> tuple[float, float]:
    """Narrow [low, high] (low passes, high fails) until (high - low) / high <= precision.

    With a `guess` (where the figure, interpolated between the bracket's points, crosses its
    limit), each of up to STRADDLES rounds measures a pair of rates `precision` apart around it
    together: when they straddle the limit the bracket is narrow enough (two points instead of
    about log2 of the bracket's width over `precision`); otherwise they narrow it, the next
    guess comes from the narrower bracket, and bisection finishes what the rounds leave.
    """
    for _ in range(STRADDLES):
        if guess is None or (high - low) / high <= precision:
            break
        narrowed = _straddle(searcher, low, high, passes, precision, what, guess)
        if narrowed == (low, high):
            break
        low, high = narrowed
    while (high - low) / high > precision:
        middle = 0.5 * (low + high)
        if passes(searcher.at(middle, what)):
            low = middle
        else:
            high = middle
    return low, high


def _straddle(
    searcher: _Searcher,
    low: float,
    high: float,
    passes: Callable[[CurvePoint], bool],
    precision: float,
    what: str,
    guess: Callable[[CurvePoint, CurvePoint], float | None],
) -> tuple[float, float]:
    """[low, high] narrowed by a pair of points around the guessed crossing, measured together."""
    crossing = guess(searcher.at(low, what), searcher.at(high, what))
    if crossing is None or not low < crossing < high:
        return low, high
    pair = [
        rate
        for rate in (crossing * (1 - 0.5 * precision), crossing * (1 + 0.5 * precision))
        if low < rate < high
    ]
    for point in searcher.at_all(pair, what):
        if not passes(point):
            return low, point.rate
        low = point.rate
    return low, high


def _crossing(low: float, high: float, at_low: float, at_high: float, limit: float) -> float | None:
    """Where a figure growing from `at_low` (at rate `low`) to `at_high` (at `high`) reaches
    `limit`, its reciprocal taken as linear in the rate: a queue's waits and percentiles grow
    as 1 / (1 - rho), whose reciprocal falls linearly to saturation."""
    finite = all(math.isfinite(v) and v > 0 for v in (at_low, at_high, limit))
    if not finite or at_high <= at_low:
        return None
    return low + (high - low) * (1 / at_low - 1 / limit) / (1 / at_low - 1 / at_high)


@dataclass
class _Analytic:
    """`solve`'s light-load bounds: per tier max_rate, the bottleneck, its saturation rate and
    each tier's arrivals per open request (`shares`)."""

    solution: dict[str, Any]
    rates: dict[str, float | None]
    bottleneck: str
    saturation_rate: float
    shares: dict[str, float]


@dataclass
class _Estimate:
    """The saturation estimate as it stands: per tier figures, the bottleneck, its rate and
    lower bound, and the moves a failed confirmation made."""

    tiers: dict[str, dict[str, Any]]
    bottleneck: str
    rate: float | None
    low: float | None
    moves: list[dict[str, Any]] = field(default_factory=list)


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
    base_rate = _checked_options(model, knee_factor, precision)
    model, notes = at_max_replicas(model)
    model = with_busiest_minute(model)
    analytic = _analytic_bounds(model, capsim_version)
    searched = _searched_model(model, notes)
    search_duration = _whole_timeline(
        searched, duration or default_search_duration(searched, analytic.saturation_rate), notes
    )
    searcher = _Searcher(
        with_run_length(searched, search_duration, replications),
        base_rate,
        capsim_version,
        progress,
        max_requests,
        budget=len(GRID) + 16,
        executor=executor,
    )
    searcher.saturation_rate = analytic.saturation_rate
    searcher.bottleneck_share = analytic.shares.get(analytic.bottleneck, 1.0)
    searcher.all_needs = percentile_needs_by_slo(model, analytic.solution)
    usable = usable_share(model)
    _measure_curve(searcher, analytic.saturation_rate, usable, notes)
    searcher.phase = "saturation"
    estimate = _estimate_saturation(searcher, model, analytic, usable, precision, notes)
    _move_estimate(searcher, estimate, analytic.shares, precision, notes)
    confirmation = _confirm(searcher, estimate, usable, notes)
    searcher.phase = "knee"
    knee_rate = _at_most_saturation(
        _find_knee(searcher, knee_factor, precision, notes, estimate.rate), estimate.rate, notes
    )
    searcher.phase = "slo limit"
    ceiling = _ceiling(estimate)
    best, verification, slos = _slo_answer(
        searcher, model, ceiling, precision, verify, progress, max_requests, notes
    )
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
        "bottleneck": estimate.bottleneck,
        "saturation_rate": estimate.rate,
        "saturation_rate_low": estimate.low,
        "knee_rate": knee_rate,
        "knee_factor": knee_factor,
        "max_rate_meeting_slos": best,
        "slo_ceiling": ceiling,
        "analytic": {
            "bottleneck": analytic.bottleneck,
            "saturation_rate": analytic.saturation_rate,
        },
        "confirmation": confirmation,
        "verification": verification,
        "tiers": estimate.tiers,
        "curve": [p.as_dict(model) for p in searcher.curve()],
        "slos": slos,
        "evaluations": searcher.done,
        "search": {
            **_search_cost(searcher, model, best or estimate.rate),
            "max_points": max_search_points(precision),
        },
        "notes": notes,
    }


def max_search_points(precision: float) -> int:
    """The most search points (`evaluations`) the search can measure at `precision`
    (docs/capacity.md, "The bound"). A bisection of [low, high] to `precision` ends once its
    width is at most `precision` x its upper end, which is never below `low`: at most
    B = ceil(log2((R - 1) / precision)) points, R = high / low, and the search's brackets lie
    within the curve's span (R at most GRID[-1] x GROWTH_FACTOR ** GROWTH_STEPS / GRID[0] =
    65.5: B = 12 at 2%; 4 for a bracket from 0.9x to 1.1x). Then
    * the curve: the grid and at most GROWTH_STEPS steps;
    * the saturation estimate: at most MAX_MOVES moves, each a confirmation pair and a stability
      bisection, then the final confirmation pair;
    * the knee: STRADDLES pairs, then a bisection;
    * the SLO limit: the lightest point measured again for noise, each point measured before
      it at most once more for noise (only those failing by noise alone, before the first
      that fails), the ceiling, STRADDLES pairs and a bisection.
    The verification's full-length runs (at most MAX_VERIFICATIONS and a bisection, each run
    again at most once for noise) are not search points. (When no tier saturated within the
    curve's span, a note says so and a move's bracket may reach past it, by up to the secant's
    reach: its bisection takes B for its own R.)"""
    spread = GRID[-1] * GROWTH_FACTOR**GROWTH_STEPS / GRID[0]
    bisection = math.ceil(math.log2((spread - 1.0) / precision))
    curve = len(GRID) + GROWTH_STEPS
    saturation = 2 * (MAX_MOVES + 1) + MAX_MOVES * bisection
    knee = 2 * STRADDLES + bisection
    before_slo_limit = curve + saturation + knee
    slo_limit = 1 + before_slo_limit + 1 + 2 * STRADDLES + bisection
    return before_slo_limit + slo_limit


def with_busiest_minute(model: Model) -> Model:
    """`model` recording its per-bucket time series when its load or capacity changes during
    the run, even when the caller (the report's search) or the scenario (`simulation:
    {timeseries: false}`) turned them off: the search judges a tier's share held on its busiest
    minute there (step 3, `_busiest_minute_held`), and so do the objectives on utilization and
    occupancy (docs/results.md), both from those series. Without them the share held is the
    whole window's mean, which under a profile puts saturation too high by the load's
    peak-to-mean ratio (1.24x for a morning at 40% of the peak, a ramp and a plateau): the
    confirmation at 0.9x then finds the bottleneck overloaded and the estimate is moved by a
    stability bisection, each of its points a whole timeline."""
    if model.timeseries or not conditions_change(model):
        return model
    return replace(model, timeseries=True)


def _searched_model(model: Model, notes: list[str]) -> Model:
    """What the search points run: under a daily profile whose peak is a plateau of at least a
    minute, that plateau alone, held steady (`peak_window`); otherwise `model` itself. The
    verification of the answer runs `model`, the scenario's own timeline."""
    window = peak_window(model)
    if window is None:
        return model
    notes.append(
        f"the load follows a profile whose peak of {open_rate(model):.4g}/s is held from "
        f"{format_duration(window.start)} to {format_duration(window.end)}: the search points "
        f"run that peak alone, held steady ({format_duration(window.model.simulation.warmup)} "
        "warm-up, "
        "then as long as a steady scenario's points run), so their latencies and errors are "
        "the peak's; the answer is verified on the scenario's whole timeline"
    )
    return window.model


def _search_cost(searcher: _Searcher, model: Model, answer: float | None) -> dict[str, Any]:
    """What the search simulated: points (per phase), open requests, and those requests over
    the requests of one run of the scenario (its own length and replications) at `answer`."""
    simulation = model.simulation
    one_run = (answer or 0.0) * (simulation.duration + simulation.warmup) * simulation.replications
    return {
        "runs": sum(searcher.runs.values()),
        "runs_by_phase": dict(searcher.runs),
        "requests": round(searcher.requests),
        "run_equivalents": searcher.requests / one_run if one_run > 0 else None,
    }


def _whole_timeline(model: Model, duration: float, notes: list[str]) -> float:
    """The search duration, never shorter than the scenario's own when its load or capacity
    changes during the run: a shorter point would stop before its spike or fault."""
    own = model.simulation.duration
    if duration >= own or not conditions_change(model):
        return duration
    notes.append(
        "the scenario's load or capacity changes during the run (a profile, faults or a cold "
        f"cache): every point runs its own timeline exactly ({model.simulation.warmup:.4g}s "
        f"warm-up + {own:.4g}s); where a point needs more data it gets more replications, "
        "never a shorter or longer run"
    )
    return own


#: The finest --precision: about 13 halvings of a bracket as wide as its upper end (1e-300
#: asked for about a thousand search points, and the search ran for hours).
MIN_PRECISION = 1e-4


def _checked_options(model: Model, knee_factor: float, precision: float) -> float:
    """The model's open rate, after UsageError for what saturate cannot answer."""
    base_rate = open_rate(model)
    if base_rate <= 0:
        raise UsageError(
            "capsim saturate scales the open classes' rates, and this scenario has none "
            "(every class is a closed loop of users); give a class a rate: instead"
        )
    if not 1 < knee_factor < math.inf:
        raise UsageError(
            f"--knee-factor must be a finite number greater than 1, not {knee_factor:g} (e.g. 2)"
        )
    if not MIN_PRECISION <= precision < 0.5:
        raise UsageError(
            f"--precision must be at least {MIN_PRECISION:g} and below 0.5, not {precision:g}: "
            "each halving of the bracket is another search point, and rates closer than "
            f"{MIN_PRECISION:g} are inside any simulation's noise (e.g. 0.02)"
        )
    return base_rate


def _analytic_bounds(model: Model, capsim_version: str) -> _Analytic:
    """(1) The light-load bounds of `solve` (docs/capacity.md, step 1)."""
    solution = light_load_solution(model, capsim_version)
    saturation = solution["bottleneck"]["saturation_rate"]
    if saturation is None or not math.isfinite(saturation):
        raise UsageError("no tier receives traffic, so nothing can saturate")
    solved_rate = solution["bottleneck"]["offered_rate"] or 0.0
    shares = {
        name: (t["offered_rate"] / solved_rate if solved_rate > 0 else 1.0)
        for name, t in solution["tiers"].items()
    }
    rates = {name: t["max_rate"] for name, t in solution["tiers"].items()}
    bottleneck = solution["bottleneck"]["tier"]
    for name, bound in rate_limit_bounds(solution).items():
        rates[name] = bound if rates.get(name) is None else min(rates[name], bound)
        if bound < saturation:
            bottleneck, saturation = name, bound
    return _Analytic(solution, rates, bottleneck, saturation, shares)


def rate_limit_bounds(solution: dict[str, Any]) -> dict[str, float]:
    """Per tier with a rate limit, the total open rate at which its bucket passes all it is
    offered (`solve`'s `rate_limit.max_rate`): the limit's token rate, less what closed classes
    take, over the tier's arrivals per open request. Past it the limit refuses the excess (an
    error for its caller), so no tier behind it is offered more: the rate limit is that tier's
    saturation (docs/capacity.md, "Rate limits")."""
    bounds = {
        name: entry["rate_limit"]["max_rate"]
        for name, entry in solution["tiers"].items()
        if "rate_limit" in entry
    }
    return {
        name: bound for name, bound in bounds.items() if bound is not None and math.isfinite(bound)
    }


#: A point where a rate limit refused more than this share of its tier's arrivals is past that
#: limit: its tiers were not offered the point's rate.
REFUSING_SHARE = 0.01


def _refusing_limits(point: CurvePoint) -> list[str]:
    """The tiers whose rate limit refused more than REFUSING_SHARE of their arrivals there."""
    return [
        name
        for name, entry in point.point.report.data["tiers"].items()
        if entry.get("rate_limited")
        and entry.get("arrivals")
        and entry["rate_limited"] / entry["arrivals"] > REFUSING_SHARE
    ]


def _saturated(point: CurvePoint, usable: dict[str, float]) -> bool:
    """A tier overloaded, or held at SATURATED_OCCUPANCY or more, or a rate limit refusing."""
    return (
        not point.point.stable
        or any(point.occupancy(name, usable[name]) >= SATURATED_OCCUPANCY for name in usable)
        or bool(_refusing_limits(point))
    )


def _knee_baseline_duration(searcher: _Searcher, rate: float) -> float:
    """How long the lightest point runs so that every class it can afford gets SAMPLE_MARGIN x
    the values a p99 needs (fewest_samples(0.99), over all replications): the knee's baseline. At most as long
    as a point at the analytic saturation rate costs (1 / GRID[0] x the search duration); a
    class rarer than that is left out of the knee (`_knee_classes`)."""
    model = searcher.model
    simulation = model.simulation
    longest = simulation.duration / GRID[0]
    factor = rate / searcher.base_rate
    wanted = [
        SAMPLE_MARGIN
        * fewest_samples(0.99)
        / (c.peak_rate(model.horizon) * factor * simulation.replications)
        for c in model.classes
        if not c.is_closed and c.peak_rate(model.horizon) > 0
    ]
    return max([simulation.duration, *(w for w in wanted if w <= longest)])


def _measure_curve(
    searcher: _Searcher, analytic_saturation: float, usable: dict[str, float], notes: list[str]
) -> None:
    """(2) The grid around the analytic saturation rate (one batch), then x1.25 until a tier
    saturates."""
    lightest = GRID[0] * analytic_saturation
    searcher.floors[round(lightest, 9)] = _knee_baseline_duration(searcher, lightest)
    # The grid's 0.9x point is measured as the confirmation's stable side would be (stretched
    # near saturation), so that it can stand for it when the estimate lands near the analytic one.
    searcher.at_all(
        [fraction * analytic_saturation for fraction in GRID],
        "measuring the curve",
        [fraction == CONFIRM_BELOW for fraction in GRID],
    )
    rate = GRID[-1] * analytic_saturation
    for _ in range(GROWTH_STEPS):
        if any(_saturated(p, usable) for p in searcher.curve()):
            return
        rate *= GROWTH_FACTOR
        searcher.at(rate, "looking for saturation")
    notes.append("no tier saturated within 6x the analytic saturation rate")


def _lost_for_good(model: Model) -> dict[str, float]:
    """Tiers that lose every server to a fault lasting to the end of the run (a lost region's
    copies): name -> when they are lost."""
    end = model.simulation.warmup + model.simulation.duration
    lost: dict[str, float] = {}
    for fault in model.faults:
        tier = model.tiers[fault.tier]
        lasting = fault.at < end and (fault.until is None or fault.until >= end)
        if lasting and len(set(fault.lose)) >= tier.servers:
            lost[tier.name] = min(fault.at, lost.get(tier.name, fault.at))
    return lost


def _leave_out_lost_tiers(tiers: dict[str, dict[str, Any]], model: Model, notes: list[str]) -> None:
    """A tier lost to a fault for the rest of the run has no saturation rate: its share held
    comes from the few seconds before the loss (a lost region's API copy once got 609.5/s from
    20 s, against 775/s without the fault), and it serves nothing after. Not judged, with a
    note, so the bottleneck is among the other tiers."""
    for name, at in _lost_for_good(model).items():
        if tiers[name]["max_rate"] is None:
            continue
        tiers[name].update(max_rate=None, max_rate_low=None)
        notes.append(
            f"tier {name} is lost at {format_duration(at)} until the end of the run (a fault): "
            "its saturation is not judged (the scenario without the fault measures it)"
        )


def _estimate_saturation(
    searcher: _Searcher,
    model: Model,
    analytic: _Analytic,
    usable: dict[str, float],
    precision: float,
    notes: list[str],
) -> _Estimate:
    """(3) Per tier, occupancy(rate) = 1 solved by a secant through the two highest measured
    rates at which the system is stable and the tier below SATURATED_OCCUPANCY; the tier with
    the lowest is the bottleneck (a tier lost for the rest of the run is not judged)."""
    tiers: dict[str, dict[str, Any]] = {
        tier.name: {
            **_tier_saturation_settled(searcher.curve(), tier.name, usable[tier.name], precision),
            "max_rate_analytic": analytic.rates.get(tier.name),
            "held_by": _held_by(tier),
        }
        for tier in model.tiers
    }
    for name, bound in rate_limit_bounds(analytic.solution).items():
        entry = tiers[name]
        if entry["max_rate"] is None or bound <= entry["max_rate"]:
            entry.update(max_rate=bound, max_rate_low=bound, held_by="rate_limit")
    _leave_out_lost_tiers(tiers, model, notes)
    measured = {n: t["max_rate"] for n, t in tiers.items() if t["max_rate"] is not None}
    if not measured:
        return _Estimate(tiers, analytic.bottleneck, None, None)
    bottleneck = min(measured, key=lambda n: measured[n])
    estimate = _Estimate(tiers, bottleneck, measured[bottleneck], tiers[bottleneck]["max_rate_low"])
    searcher.saturation_rate = estimate.rate
    searcher.bottleneck_share = analytic.shares.get(bottleneck, 1.0)
    return estimate


def _move_estimate(
    searcher: _Searcher,
    estimate: _Estimate,
    shares: dict[str, float],
    precision: float,
    notes: list[str],
) -> None:
    """A confirmation below the estimate that finds a tier overloaded moves the estimate: the
    boundary between stable and overloaded is bisected below it (docs/capacity.md, step 3)."""
    while estimate.rate is not None:
        below, _ = _confirmation_points(searcher, estimate.rate)
        if below.point.stable or len(estimate.moves) >= MAX_MOVES:
            return
        stable_below = [p for p in searcher.curve() if p.rate < below.rate and p.point.stable]
        if not stable_below:
            notes.append(
                f"every measured rate up to {below.rate:.4g}/s had an overloaded tier: "
                "no saturation estimate"
            )
            estimate.rate = estimate.low = None
            return
        lo, hi = _stability_boundary(searcher, stable_below[-1].rate, below.rate, precision)
        _record_move(searcher, estimate, below, lo, hi, shares, notes)


def _stability_boundary(
    searcher: _Searcher, lo: float, hi: float, precision: float
) -> tuple[float, float]:
    """[lo, hi] (stable at lo, overloaded at hi) bisected on stability to `precision`."""
    while (hi - lo) / hi > precision:
        # Saturation lies below `hi`: points near it run long enough to tell (step 3).
        searcher.saturation_rate = hi
        middle = 0.5 * (lo + hi)
        if searcher.at(middle, "moving the saturation estimate", near=True).point.stable:
            lo = middle
        else:
            hi = middle
    return lo, hi


def _record_move(
    searcher: _Searcher,
    estimate: _Estimate,
    below: CurvePoint,
    lo: float,
    hi: float,
    shares: dict[str, float],
    notes: list[str],
) -> None:
    """The estimate moved to the middle of [lo, hi], its lower bound lo less the slowest growth
    the stability rule resolves there; the move and a note recorded."""
    unstable = searcher.at(hi, "").point.report.unstable_tiers or below.point.report.unstable_tiers
    moved_to = 0.5 * (lo + hi)
    if unstable and unstable[0] in estimate.tiers:
        estimate.bottleneck = unstable[0]
    low = lo - stability_resolution(searcher.at(lo, ""), shares.get(estimate.bottleneck, 1.0))
    estimate.moves.append(
        {"from": estimate.rate, "to": moved_to, "unstable_at": below.rate, "tiers": unstable}
    )
    notes.append(
        f"the confirmation at {below.rate:.4g}/s ({below.rate / (estimate.rate or 1.0):.3g}x "
        f"the estimate {estimate.rate:.4g}/s) "
        f"found tier {', '.join(unstable)} overloaded, so the estimate moved below it: "
        f"stable at {lo:.4g}/s, overloaded at {hi:.4g}/s, saturation about {moved_to:.4g}/s "
        f"(at least {low:.4g}/s: slower growth than the stability rule resolves at that "
        "run length cannot be ruled out)"
    )
    if estimate.bottleneck in estimate.tiers:
        entry = estimate.tiers[estimate.bottleneck]
        entry.update(max_rate=moved_to, max_rate_low=low, max_rate_source="stability bisection")
    estimate.rate, estimate.low = moved_to, low
    searcher.saturation_rate = moved_to
    searcher.bottleneck_share = shares.get(estimate.bottleneck, 1.0)


def _confirmation_points(searcher: _Searcher, rate: float) -> tuple[CurvePoint, CurvePoint]:
    """The points at CONFIRM_BELOW (stretched near saturation: its stability decides) and
    CONFIRM_ABOVE x `rate`, measured together; a point already measured within CONFIRM_REUSE
    of either rate (and as long) stands for it."""
    wanted = [(CONFIRM_BELOW * rate, True), (CONFIRM_ABOVE * rate, False)]
    reused = [searcher.nearby(at, CONFIRM_REUSE, near) for at, near in wanted]
    rates = [found or at for found, (at, _) in zip(reused, wanted, strict=True)]
    # A reused point is as long as the wanted one asks (`nearby`): it is not stretched again
    # for its own, slightly different, distance from the estimate.
    nears = [found is None and near for found, (_, near) in zip(reused, wanted, strict=True)]
    below, above = searcher.at_all(rates, "confirming saturation", nears)
    return below, above


def _confirm(
    searcher: _Searcher,
    estimate: _Estimate,
    usable: dict[str, float],
    notes: list[str],
) -> dict[str, Any]:
    """The estimate's confirmation at 0.9x (stable) and 1.1x (the bottleneck saturated)."""
    if estimate.rate is None:
        return {}
    below, above = _confirmation_points(searcher, estimate.rate)
    name = estimate.bottleneck
    if not below.point.stable:
        notes.append(
            f"the saturation estimate could not be confirmed: at {below.rate:.4g}/s tier "
            f"{', '.join(below.point.report.unstable_tiers)} is still overloaded"
        )
    return {
        "below": {"rate": below.rate, "stable": below.point.stable, "moves": estimate.moves},
        "above": {
            "rate": above.rate,
            "saturated": _saturated(above, usable),
            "bottleneck_saturated": not above.point.report.data["tiers"][name]["stable"]
            or above.occupancy(name, usable[name]) >= SATURATED_OCCUPANCY
            or name in _refusing_limits(above),
        },
    }


def _ceiling(estimate: _Estimate) -> float | None:
    """`slo_ceiling`: the lowest lower bound of any tier's saturation rate."""
    lows = [t["max_rate_low"] for t in estimate.tiers.values() if t["max_rate_low"] is not None]
    if estimate.low is not None:
        lows.append(estimate.low)
    return min(lows) if lows else None


def _slo_answer(
    searcher: _Searcher,
    model: Model,
    ceiling: float | None,
    precision: float,
    verify: bool,
    progress: Progress | None,
    max_requests: float,
    notes: list[str],
) -> tuple[float | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """(5) The highest rate at which every SLO holds by its upper 95% bound, never above the
    ceiling, verified at the scenario's run length: the rate, the verification, its verdicts."""
    if not model.slos:
        notes.append("the scenario has no SLOs, so max_rate_meeting_slos is not defined")
        return None, None, []
    candidate = _slo_limit(searcher, ceiling, precision, notes)
    if candidate is None:
        return None, None, []
    searcher.phase = "verification"
    checked, verification = _verify(
        searcher,
        model,
        candidate,
        precision,
        verify=verify,
        progress=progress,
        max_requests=max_requests,
        notes=notes,
    )
    if checked is None:
        return None, verification, []
    return checked.rate, verification, [check.as_dict() for check in checked.point.checks]


def _held_by(tier: Tier) -> str:
    """The figure that saturates a tier: workers held (occupancy) where they block on their
    calls or consume a queue, the work itself (utilization) elsewhere."""
    makes_calls = any(work.calls for work in tier.work)
    return "occupancy" if tier.kind == "queue" or (tier.blocking and makes_calls) else "utilization"


def _tier_saturation_settled(
    curve: list[CurvePoint], name: str, usable: float, precision: float
) -> dict[str, float | None]:
    """`_tier_saturation` through points whose occupancy has settled: a point within
    NEAR_SATURATION of the tier's first estimate counts only when it ran as long as the rule
    near saturation asks (`CurvePoint.near`). A short run there starts with an empty queue that
    is still filling (about its mean queue over lambda T below the steady occupancy: 0.87 for
    0.95 on 2 s points of the ticketing orders queue), which puts the secant too high. Without two
    such points (or one) the first estimate stands."""
    first = _tier_saturation(curve, name, usable, precision)
    around = first["max_rate"]
    if around is None:
        return first
    settled = [p for p in curve if p.near or abs(p.rate / around - 1.0) > NEAR_SATURATION]
    second = _tier_saturation(settled, name, usable, precision)
    return second if second["max_rate"] is not None else first


def _tier_saturation(
    curve: list[CurvePoint], name: str, usable: float, precision: float
) -> dict[str, float | None]:
    """One tier's simulated saturation rate (`max_rate`) and its lower bound (`max_rate_low`).

    The secant through the two highest stable points below SATURATED_OCCUPANCY (one point, or
    a secant that would extrapolate more than SECANT_LEVERAGE times its rise: through the
    origin). The lower bound solves for the upper end of the last point's 95% interval of the
    share held, on the steepest line both points' intervals allow (from the lower end of the
    point below: the slope of two noisy points is the noisier figure), and is at least
    `precision` below the estimate.
    """
    points = [
        p
        for p in curve
        if p.point.stable
        and 0.02 < p.occupancy(name, usable) < SATURATED_OCCUPANCY
        and not _refusing_limits(p)  # past a rate limit its tiers see less than the rate
    ]
    if not points:
        return {"max_rate": None, "max_rate_low": None}
    last = points[-1]
    held, held_high = last.occupancy(name, usable), last.occupancy_upper(name, usable)
    estimate = last.rate / held
    low = last.rate / min(held_high, 1.0)
    if len(points) >= 2:
        rise = held - points[-2].occupancy(name, usable)
        slope = rise / (last.rate - points[-2].rate)
        # Far from saturation the two highest points are close in rate and their share held
        # differs by little more than noise, or by a flattening (a batching queue upstream
        # fills its batches): a secant would extrapolate that to any rate at all.
        if slope > 0 and 1.0 - held <= SECANT_LEVERAGE * rise:
            estimate = last.rate + (1.0 - held) / slope
            below_low = points[-2].occupancy_lower(name, usable)
            steepest = max(held_high - below_low, rise) / (last.rate - points[-2].rate)
            low = last.rate + max(1.0 - held_high, 0.0) / steepest
    low = min(low, estimate * (1.0 - precision))
    return {"max_rate": estimate, "max_rate_low": low}


#: How saturate's note begins when p99 never reached the knee factor below saturation.
KNEE_AT_SATURATION = "p99 stayed below the knee factor up to saturation"


def _at_most_saturation(
    knee: float | None, saturation: float | None, notes: list[str]
) -> float | None:
    """The knee, never above the saturation estimate: past saturation p99 only grows with the
    run's length, so a knee measured there would be an artefact of the run."""
    if knee is None or saturation is None or knee <= saturation:
        return knee
    notes.append(
        f"{KNEE_AT_SATURATION}: the knee is put at the saturation estimate, {saturation:.4g}/s"
    )
    return saturation


def _find_knee(
    searcher: _Searcher,
    knee_factor: float,
    precision: float,
    notes: list[str],
    saturation: float | None = None,
) -> float | None:
    """(2) The lowest rate where some class's p99 reaches knee_factor x its low-load p99.

    Only points up to the `saturation` estimate are searched: the knee is never above it
    (`_at_most_saturation`), so a crossing beyond it is not narrowed, it is the estimate."""
    curve = searcher.curve()
    low = curve[0]
    previous = low
    counted = _knee_classes(low)
    left_out = [name for name in low.point.report.data["classes"] if name not in counted]
    if left_out:
        notes.append(
            f"the knee leaves out class {', '.join(left_out)}: at the lightest point "
            f"({low.rate:.4g}/s) its p99 rests on fewer than 1,000 values (low_sample)"
        )
    if not counted:
        return None

    def below_knee(p: CurvePoint) -> bool:
        # An overloaded point is past the knee whatever its p99 (its queue only grows).
        return p.point.stable and _knee_ratio(p, low) < knee_factor

    for point in curve[1:]:
        if saturation is not None and point.rate > saturation:
            return _at_most_saturation(math.inf, saturation, notes)
        if not below_knee(point):
            lo, hi = _bisect(
                searcher,
                previous.rate,
                point.rate,
                below_knee,
                precision,
                "locating the knee",
                lambda a, b: _crossing(
                    a.rate, b.rate, _knee_ratio(a, low), _knee_ratio(b, low), knee_factor
                ),
            )
            at_hi = searcher.at(hi, "")
            r_lo, r_hi = _knee_ratio(searcher.at(lo, ""), low), _knee_ratio(at_hi, low)
            if at_hi.point.stable and math.isfinite(r_hi) and r_hi > r_lo:
                return lo + (hi - lo) * (knee_factor - r_lo) / (r_hi - r_lo)
            return lo
        previous = point
    notes.append(f"p99 never reached {knee_factor:g}x its low-load value on the measured curve")
    return None


def _only_by_noise(point: CurvePoint) -> str:
    """A hint when every failed objective is within its limit and fails only by the upper end
    of its 95% interval: the interval, not the system, decides; it narrows with more data."""
    point_ = point.point
    failed = [check for check in point_.checks if not check.passed]
    if not point_.stable or not failed:
        return ""
    if any(
        check.observed is None or check.observed > check.limit or check.reason is not None
        for check in failed
    ):
        return ""
    return (
        " (within the limit, failing only by the upper end of its 95% interval across "
        "replications: a noisy estimate at this light load; more replications "
        "(--replications) or longer points (--duration) narrow it)"
    )


def _slo_limit(
    searcher: _Searcher, ceiling: float | None, precision: float, notes: list[str]
) -> float | None:
    """The highest search point meeting every SLO, at most `ceiling` (bisected to `precision`)."""

    def passes(point: CurvePoint) -> bool:
        return point.point.meets and (ceiling is None or point.rate <= ceiling * (1 + 1e-9))

    def passes_with_more_data(point: CurvePoint) -> bool:
        """`passes`, a point failing only by noise measured again first (`_decided`)."""
        return passes(_decided(searcher, point, passes, notes))

    curve = searcher.curve()
    if _only_by_noise(curve[0]):
        remeasured = _measured_until_decided(
            searcher, curve[0].rate, "re-measuring the lightest point"
        )
        if remeasured is not None and remeasured.point.meets:
            notes.append(
                f"the lightest point ({curve[0].rate:.4g}/s) failed only by the upper end of its "
                "95% interval; measured again with more replications and a longer run, it met "
                "every SLO"
            )
        curve = searcher.curve()
    if not curve[0].point.meets:
        notes.append(
            f"the SLOs fail even at {curve[0].rate:.4g}/s "
            f"({GRID[0]:.0%} of the analytic saturation rate): "
            + "; ".join(curve[0].point.failures)
            + _only_by_noise(curve[0])
        )
        return None
    passing = curve[0]
    failing: float | None = None
    for point in curve[1:]:
        point = _decided(searcher, point, passes, notes)
        if passes(point):
            passing = point
        else:
            failing = point.rate
            break
    capped = ceiling is not None and (failing is None or failing > ceiling)
    if capped and ceiling is not None and passing.rate >= ceiling * (1 - 1e-9):
        notes.append(_capped_note(ceiling))
        return passing.rate
    if ceiling is not None and passing.rate < ceiling and (failing is None or failing > ceiling):
        # The SLOs hold up to the ceiling's neighbourhood: try the ceiling itself.
        at_ceiling = searcher.at(ceiling, "searching the SLO limit")
        if passes(at_ceiling):
            notes.append(_capped_note(ceiling))
            return ceiling
        failing = ceiling
    if failing is None:
        notes.append("every measured rate met the SLOs")
        return passing.rate
    lo, _ = _bisect(
        searcher,
        passing.rate,
        failing,
        passes_with_more_data,
        precision,
        "searching the SLO limit",
        _slo_crossing,
    )
    return lo


def _decided(
    searcher: _Searcher,
    point: CurvePoint,
    passes: Callable[[CurvePoint], bool],
    notes: list[str],
) -> CurvePoint:
    """`point`, or, when it fails only by the upper end of an objective's interval and was not
    measured again yet, `_measured_again`: a curve point or a point of the bracket's narrowing
    alike, since either bounds the SLO limit when it fails. (Narrowing points had failed so
    near the limit: with 3 replications a point at 284/s, its p99 57.0 ms within 60 ms but its
    upper end 63 ms, put the answer at 280/s for an M/M/4 pool whose exact limit is 300/s.)"""
    if passes(point) or not _only_by_noise(point) or round(point.rate, 9) in searcher.again:
        return point
    return _measured_again(searcher, point, notes)


def _measured_again(searcher: _Searcher, point: CurvePoint, notes: list[str]) -> CurvePoint:
    """A curve point that failed only by the upper end of an objective's interval, measured
    again with more data (`measured_longer`) before it bounds the SLO limit: an objective that
    does not grow with the load fails so at light load by its few samples, and taken as the
    limit it put max_rate_meeting_slos at 392.6/s on a platform meeting its SLOs at 1,740/s."""
    if not _settled_by_more_data(point, NOISE_RERUN_ROUNDS):
        notes.append(
            f"the point at {point.rate:.4g}/s failed only by the upper end of its 95% interval, "
            "its figure so near its limit that even the most data measuring it again could "
            "give would not be expected to settle it: it counts as failing (the SLO limit is "
            "there, within noise)"
        )
        return point
    again = _measured_until_decided(
        searcher, point.rate, "re-measuring a point that failed only by noise", settle=True
    )
    if again is None:
        return point
    unsettled = not again.point.meets and bool(_only_by_noise(again))
    notes.append(
        f"the point at {point.rate:.4g}/s failed only by the upper end of its 95% interval; "
        "measured again with more replications and a longer run, it "
        + ("met every SLO" if again.point.meets else "still failed")
        + (
            ", its figure so near its limit that the rounds left would not be expected to "
            "settle it: it counts as failing (the SLO limit is there, within noise)"
            if unsettled and round(point.rate, 9) in searcher.stopped_early
            else ""
        )
    )
    return again


def _settled_by_more_data(point: CurvePoint, rounds: int) -> bool:
    """Whether `rounds` rounds of `measured_longer` (each RERUN_FACTOR x the replications, at
    least NOISE_RERUN_REPLICATIONS, and RERUN_FACTOR x the run length) can be expected to
    settle every objective that fails only by the upper end of its interval at `point`: the
    interval's half-width narrows with the square root of the simulated time and with the t
    quantile of the replications, and must come within the figure's margin to its limit. A
    figure within a sliver of its limit (less than about a sixteenth of the half-width at 3
    replications) is at the limit within noise, and even 64 times the data would leave its
    limit inside its interval: those rounds would cost 84 points' worth of simulation to end
    as it started (docs/capacity.md, step 5)."""
    simulation = point.point.model.simulation
    replications = simulation.replications
    if replications < 2:
        return True
    later, more_data = replications, 1.0
    for _ in range(rounds):
        later = max(later * RERUN_FACTOR, NOISE_RERUN_REPLICATIONS)
        more_data *= RERUN_FACTOR
    more_data *= later / replications
    narrowing = student_t_quantile(0.975, later - 1) / student_t_quantile(0.975, replications - 1)
    narrowing /= math.sqrt(more_data)
    for check in point.point.checks:
        if check.passed or check.observed is None or check.upper is None:
            continue
        margin, half_width = check.limit - check.observed, check.upper - check.observed
        if margin < half_width * narrowing:
            return False
    return True


def _measured_until_decided(
    searcher: _Searcher, rate: float, what: str, settle: bool = False
) -> CurvePoint | None:
    """The point at `rate` measured again longer (`measured_longer`) until it meets every SLO
    or fails by more than the upper end of an interval, at most NOISE_RERUN_ROUNDS times; None
    when the request limit leaves no room for even once. With `settle` (a point of the curve
    or of the bracket's narrowing, not the lightest), it also stops once the rounds left would
    not be expected to settle it (`_settled_by_more_data`, judged again on each round's
    figures, which estimate the margin and the interval better than the first point's: the
    third round alone costs 64 times the point's simulation). An objective within its limit by a
    few percent of it needs more than one such round: a lightest point's p99 of 51 ms against
    55 ms needed one in 5 seeds of 12, and for one of them still failed by noise with 5
    replications of twice its run (no answer); verifications measured again once stepped
    down below that point for 3 (7.5 to 9.0/s)."""
    last: CurvePoint | None = None
    for done in range(1, NOISE_RERUN_ROUNDS + 1):
        again = searcher.measured_longer(rate, what)
        if again is None:
            break
        last = again
        if again.point.meets or not _only_by_noise(again):
            break
        left = NOISE_RERUN_ROUNDS - done
        if settle and left and not _settled_by_more_data(again, left):
            searcher.stopped_early.add(round(rate, 9))
            break
    return last


def _capped_note(ceiling: float) -> str:
    return (
        f"max_rate_meeting_slos is capped at {ceiling:.4g}/s, the lower bound of the "
        "saturation estimate: no rate at or beyond saturation is a safe answer"
    )


def _slo_crossing(low: CurvePoint, high: CurvePoint) -> float | None:
    """Where the first objective to fail at `high` reaches its limit, its upper bound over the
    limit interpolated linearly from `low` (None when `high` is overloaded or has no figure)."""
    if not high.point.stable:
        return None
    below = {check.slo: check for check in low.point.checks}
    crossings = []
    for check in high.point.checks:
        before = below.get(check.slo)
        if check.passed or before is None or check.upper is None or before.upper is None:
            continue
        if check.limit <= 0:
            return None
        found = _crossing(low.rate, high.rate, before.upper, check.upper, check.limit)
        if found is None:
            return None
        crossings.append(found)
    return min(crossings, default=None)


def _verify(
    searcher: _Searcher,
    model: Model,
    candidate: float,
    precision: float,
    *,
    verify: bool,
    progress: Progress | None,
    max_requests: float,
    notes: list[str],
) -> tuple[CurvePoint | None, dict[str, Any] | None]:
    """Confirm `candidate` at the scenario's own run length; while it fails, go on below it.

    Each failure moves the candidate down by VERIFY_STEP (up to MAX_VERIFICATIONS tries); once
    one passes, the bracket between it and the lowest failed rate is bisected at full length to
    `precision`. A rate whose verification failed is never returned. Without `verify` the
    search point at `candidate` is the answer.
    """
    if not verify:
        return searcher.at(candidate, ""), None
    base_rate = searcher.base_rate
    checked: dict[float, CurvePoint] = {}
    # At least the search's replications (--replications), so that the verdict has an interval.
    verification_replications = max(
        model.simulation.replications, searcher.model.simulation.replications
    )

    def full(rate: float) -> CurvePoint:
        key = round(rate, 9)
        if key not in checked:
            if progress:
                progress(0.999, f"verifying {rate:.4g}/s at the scenario's own run length")
            lengthened = with_run_length(
                model, searcher.duration_at(rate, model), verification_replications
            )  # near saturation stretched only where every point is (_Searcher.always_near)
            (point,) = searcher.measured(
                [scale_open_traffic(lengthened, rate / base_rate)],
                [rate],
                [f"verifying {rate:.4g}/s at the scenario's own run length"],
                _verification_progress(searcher),
            )
            checked[key] = CurvePoint(rate, rate / base_rate, point)
            if _only_by_noise(checked[key]):
                checked[key] = _verified_longer(
                    searcher, lengthened, checked[key], max_requests, notes
                )
        return checked[key]

    rate = candidate
    passed: CurvePoint | None = None
    failed: float | None = None
    for _ in range(MAX_VERIFICATIONS):
        point = full(rate)
        if point.point.meets:
            passed = point
            break
        failed = rate
        rate *= 1.0 - VERIFY_STEP
    if passed is not None and failed is not None:
        low, high = passed.rate, failed
        while (high - low) / high > precision:
            middle = 0.5 * (low + high)
            if full(middle).point.meets:
                low = middle
            else:
                high = middle
        passed = full(low)
    attempts = _attempts(checked)
    if failed is not None:
        notes.append(
            f"the verification at {candidate:.4g}/s failed at the scenario's run length, so the "
            "search went on below it"
            + (f": verified at {passed.rate:.4g}/s" if passed is not None else "")
        )
    if passed is None:
        notes.append(
            f"no rate down to {rate / (1 - VERIFY_STEP):.4g}/s passed verification: "
            "max_rate_meeting_slos is unknown"
        )
        last = attempts[0] if attempts else None
        return None, {
            "rate": None,
            "duration": model.simulation.duration,
            "replications": verification_replications,
            "meets_slos": False,
            "failures": last["failures"] if last else [],
            "attempts": attempts,
        }
    return passed, {
        "rate": passed.rate,
        "duration": passed.point.model.simulation.duration,
        "replications": passed.point.model.simulation.replications,
        "meets_slos": True,
        "failures": [],
        "attempts": attempts,
    }


def _verification_progress(searcher: _Searcher) -> Progress | None:
    """The progress of a verification run: its own label and replications, at the end of the
    search's bar (a long run of the whole timeline said nothing for minutes in a CI log)."""
    report = searcher.progress
    if report is None:
        return None
    return lambda fraction, what: report(0.999, what)


def _verified_longer(
    searcher: _Searcher,
    lengthened: Model,
    failed: CurvePoint,
    max_requests: float,
    notes: list[str],
) -> CurvePoint:
    """A verification that failed only by the upper end of an objective's interval (its figure
    within the limit), run again with RERUN_FACTOR x its replications (at least
    NOISE_RERUN_REPLICATIONS) at the same run length, and again so (at most NOISE_RERUN_ROUNDS
    times) while it still fails only so; the last run then stands for its rate: a lower rate
    would not settle it (an objective that does not grow with the load, such as the share of a
    slow provider's answers, only gets fewer samples there), more data does. The run length
    stays, since a longest wait or a backlog's maximum grows with it. `failed` when that would
    exceed half the request limit. Its rounds are kept whatever the margin: a failure here
    moves the answer down, where an objective that does not grow with the load only gets
    fewer samples (stepping down put a light point's answer at 7.4/s where 16.3/s holds). Each
    round reuses the replications of the one before (`ReplicationStore`): 3, 6, 12 and 24
    replications simulate 24."""
    last, replications = failed, lengthened.simulation.replications
    for _ in range(NOISE_RERUN_ROUNDS):
        replications = max(replications * RERUN_FACTOR, NOISE_RERUN_REPLICATIONS)
        longer = with_run_length(lengthened, lengthened.simulation.duration, replications)
        scaled = scale_open_traffic(longer, failed.rate / searcher.base_rate)
        if expected_requests(scaled) > 0.5 * max_requests:
            break
        label = f"verifying {failed.rate:.4g}/s again with {replications} replications"
        (point,) = searcher.measured(
            [scaled], [failed.rate], [label], _verification_progress(searcher)
        )
        last = CurvePoint(failed.rate, failed.rate / searcher.base_rate, point)
        if point.meets or not _only_by_noise(last):
            break
    if last is not failed:
        simulation = last.point.model.simulation
        notes.append(
            f"the verification at {failed.rate:.4g}/s failed only by the upper end of its 95% "
            f"interval; measured again with {simulation.replications} replications of "
            f"{simulation.duration:.4g}s, it "
            + ("met every SLO" if last.point.meets else "still failed")
        )
    return last


def _attempts(checked: dict[float, CurvePoint]) -> list[dict[str, Any]]:
    """Every verification run, by rate: its length, replications and verdict."""
    return [
        {
            "rate": p.rate,
            "duration": p.point.model.simulation.duration,
            "replications": p.point.model.simulation.replications,
            "meets_slos": p.point.meets,
            "failures": p.point.failures,
        }
        for p in sorted(checked.values(), key=lambda p: p.rate)
    ]
