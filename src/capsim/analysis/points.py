"""Measured points for the capacity searches: a model run with replications, judged against SLOs.

Every search (saturate, size, sweep, compare) runs variants of one model that differ only in
rates or capacity. The engine keys each random stream by (seed, replication, tier or class,
role), so variants run with the same seed share their random numbers (common random numbers):
the differences between two points are differences of the models, not of the noise.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from capsim.analysis.busiest_group import busiest_group_share, scaled_to_group
from capsim.analysis.load_peaks import peak_open_rate
from capsim.analysis.peak import tier_peak
from capsim.analysis.phases import judge_by_phase
from capsim.analysis.report import Report
from capsim.analysis.solve import UnstableModelError, solve
from capsim.analysis.stats import clamped, t_interval
from capsim.analysis.summary import (
    evaluate_slo,
    fewest_samples,
    percentile_table,
    slo_figure,
    summarise,
    time_statistics,
)
from capsim.engine.executors import Executor
from capsim.engine.result import RunResult
from capsim.engine.runner import DEFAULT_MAX_REQUESTS, run_batch
from capsim.errors import Interrupted
from capsim.model.build import follow_load
from capsim.model.features import conditions_change
from capsim.model.types import STATISTICS, Model, Simulation, Slo, slo_value_text
from capsim.units import RATIO_STATISTICS

Progress = Callable[[float, str], None]

#: A search point is stretched until each percentile objective expects this many times the
#: values its percentile needs per replication (fewest_samples(q): p99 1,000), so that chance
#: alone rarely leaves it short (docs/capacity.md, "Enough samples for every percentile").
SAMPLE_MARGIN = 1.25
#: ... but a point stretched for samples simulates at most this many open requests per
#: replication.
SAMPLE_REQUEST_CAP = 300_000
#: A point failing only by the upper bound of a low-sample figure is measured once more with
#: this many times its replications and its duration (common random numbers: the first
#: replications are the same ones, run longer).
RERUN_FACTOR = 2


def open_rate(model: Model) -> float:
    """Total offered rate of the open classes, as `solve` counts it: the highest total over
    the run (a profile at its peak; class parts that take turns, such as a lost region's
    clients before and after DNS moved them, counted once)."""
    return peak_open_rate(model)


def scale_open_traffic(model: Model, factor: float) -> Model:
    """`model` with every open class's rate (and profile, MMPP rates, batch rate) multiplied by
    `factor`, a trace replayed `factor` times faster; mix unchanged. A TTL cache's hit ratio
    follows the new rates (`model.build.follow_load`)."""
    classes = tuple(c if c.is_closed else c.scaled(factor) for c in model.classes)
    return follow_load(replace(model, classes=classes))


def with_run_length(model: Model, duration: float | None, replications: int | None) -> Model:
    """`model` measured for `duration` seconds; the warm-up keeps its share of the duration.

    A model whose load or capacity changes during the run (a profile, faults, autoscaling, a
    cold cache: `conditions_change`) keeps its timeline exactly: its own warm-up and duration
    (the timeline counts from the start of the warm-up), so a point is always the scenario it
    is about, never stopped before its spike or fault nor run on long after it. A longer run
    asked of it becomes more replications of the same length instead: ceil(duration / its own)
    times as many (docs/capacity.md).
    """
    simulation = model.simulation
    count = simulation.replications if replications is None else replications
    if duration is not None and duration != simulation.duration:
        if conditions_change(model):
            count *= max(1, math.ceil(duration / simulation.duration - 1e-9))
            simulation = Simulation(simulation.duration, simulation.warmup, count)
        else:
            warmup = simulation.warmup * duration / simulation.duration
            simulation = Simulation(duration, warmup, count)
    elif replications is not None:
        simulation = Simulation(simulation.duration, simulation.warmup, count)
    return replace(model, simulation=simulation)


def at_max_replicas(model: Model) -> tuple[Model, list[str]]:
    """`model` with every autoscaled tier fixed at its `autoscale.max` instances (docs/capacity.md,
    "Autoscaled tiers"), and one sentence per such tier saying so.

    Capacity questions (how much load, how many instances) are about the capacity the tier can
    reach; the autoscaler's lag is a question of dynamics, for `capsim run` with a profile.
    """
    tiers = []
    notes = []
    for tier in model.tiers:
        scaling = tier.consumer_scaling
        if scaling is not None:  # the tier's workers are already those of `max` consumers
            tiers.append(replace(tier, consumer_scaling=None))
            notes.append(
                f"queue {tier.name} scales its consumers on its backlog ({scaling.min}.."
                f"{scaling.max}): evaluated at its max of {scaling.max} consumers, all running "
                "(the scaler's polling and startup are not counted; see capsim run with a profile)"
            )
            continue
        scaler = tier.autoscale
        if scaler is None:
            tiers.append(tier)
            continue
        tiers.append(replace(tier, instances=scaler.max, autoscale=None))
        notes.append(
            f"tier {tier.name} autoscales ({scaler.min}..{scaler.max} instances): evaluated at "
            f"its max of {scaler.max} instances, all ready (the autoscaler's lag is not counted; "
            "see capsim run with a profile)"
        )
    return replace(model, tiers=tuple(tiers)), notes


def light_load_solution(model: Model, capsim_version: str) -> dict[str, Any]:
    """`solve` of the model, scaled down (open classes only) until it has a steady state.

    Tier throughput bounds (`max_rate`) for the mix as written barely depend on the load for
    non-blocking tiers; for blocking tiers they are the light-load (optimistic) bounds.
    """
    factor = 1.0
    for _ in range(64):
        try:
            return solve(scale_open_traffic(model, factor), capsim_version=capsim_version)
        except UnstableModelError:
            factor /= 4.0
    raise UnstableModelError("no steady state even at a tiny fraction of the load")


def percentile_needs(model: Model, solution: dict[str, Any]) -> list[tuple[float, int]]:
    """Per percentile objective of `model`: the values its figure gets per second for each open
    request per second (from `solution`, a `solve` of the model at any load), and the values
    its percentile needs per replication (fewest_samples(q), LOW_SAMPLE_FACTOR / (1 - q)).

    A class's figure counts its completed requests, a tier's (wait, message age) its arrivals.
    """
    return list(percentile_needs_by_slo(model, solution).values())


def percentile_needs_by_slo(model: Model, solution: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """`percentile_needs`, keyed by each objective's text (in the scenario's order)."""
    open_names = [c.name for c in model.classes if not c.is_closed]
    solved_open = sum(solution["classes"][name]["offered_rate"] or 0.0 for name in open_names)
    if solved_open <= 0:
        return {}
    percentiles = percentile_table(model)
    needs: dict[str, tuple[float, int]] = {}
    for slo in model.slos:
        path = slo_figure(slo)
        q = percentiles.get(path[-1])
        if q is None or path[0] not in ("latency", "wait", "age"):
            continue
        if slo.class_index is not None:
            entry = solution["classes"].get(model.classes[slo.class_index].name) or {}
            values = entry.get("throughput") or 0.0
        else:
            assert slo.tier_index is not None
            entry = solution["tiers"].get(model.tiers[slo.tier_index].name) or {}
            values = entry.get("offered_rate") or 0.0
        if values > 0:
            needs[slo.text] = (values / solved_open, fewest_samples(q))
    return needs


def sampled_duration(
    base: float, rate: float, needs: Sequence[tuple[float, int]], cap: float = math.inf
) -> float:
    """A point's run length at `rate` open requests per second: `base`, stretched until every
    percentile objective expects SAMPLE_MARGIN x the values it needs per replication, at most
    SAMPLE_REQUEST_CAP open requests per replication and at most `cap` seconds."""
    if rate <= 0 or not needs:
        return base
    wanted = max(SAMPLE_MARGIN * needed / (share * rate) for share, needed in needs)
    return max(base, min(wanted, SAMPLE_REQUEST_CAP / rate, cap))


@dataclass(frozen=True)
class SloCheck:
    """One objective at one point: the pooled figure, its upper 95% bound, and the verdict.

    `low_sample`: a percentile that some replication estimated from fewer values than
    fewest_samples(q), so its interval across replications is wide for want of data.
    """

    slo: str
    statistic: str
    limit: float
    observed: float | None
    upper: float | None
    passed: bool
    low_sample: bool = False
    reason: str | None = None  # why it fails whatever its figure: no request of a class completed
    group: str | None = None  # a database's busiest group, whose share was judged

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "statistic": self.statistic,
            "observed": self.observed,
            "upper": self.upper,
            "limit": self.limit,
            "passed": self.passed,
            "low_sample": self.low_sample,
            **({"reason": self.reason} if self.reason is not None else {}),
            **({"group": self.group} if self.group is not None else {}),
        }

    @property
    def fails_only_by_noise(self) -> bool:
        """Failed, with its observed figure within the limit: only the upper bound fails."""
        if self.reason is not None:
            return False
        return not self.passed and self.observed is not None and self.observed <= self.limit

    def describe(self) -> str:
        seen = "no data" if self.observed is None else self._text(self.observed)
        bound = (
            ""
            if self.upper is None or self.upper == self.observed
            else f", upper {self._text(self.upper)}"
        )
        why = f": {self.reason}" if self.reason is not None else ""
        return f"{self.slo} (observed {seen}{bound}{why})"

    def _text(self, value: float) -> str:
        return slo_value_text(self.statistic, value) if math.isfinite(value) else f"{value}"


@dataclass
class Point:
    """One measured model: its report, every tier's stability, and the SLO verdicts."""

    model: Model
    report: Report
    checks: list[SloCheck]
    replication_estimates: dict[str, list[float]]
    #: Replications taken from a ReplicationStore rather than simulated for this point.
    reused: int = 0
    #: The shorter measurement this one re-ran for noise (measure_all), when it is one.
    rerun_of: Point | None = None

    @property
    def simulated_share(self) -> float:
        """The share of this point's replications simulated for it (the others were reused)."""
        count = self.model.simulation.replications
        return (count - self.reused) / count if count else 1.0

    @property
    def stable(self) -> bool:
        return not self.report.unstable_tiers

    @property
    def meets(self) -> bool:
        """Every objective met by its upper 95% bound, and every tier in steady state."""
        return self.stable and all(check.passed for check in self.checks)

    @property
    def noise_only(self) -> bool:
        """Every tier stable, and every failed objective a low-sample figure within its limit
        that fails only by the upper end of its interval: more data can tell, not the limit."""
        failed = [check for check in self.checks if not check.passed]
        return (
            self.stable
            and bool(failed)
            and all(check.fails_only_by_noise and check.low_sample for check in failed)
        )

    @property
    def failures(self) -> list[str]:
        failed = [check.describe() for check in self.checks if not check.passed]
        failed += [f"tier {name} overloaded" for name in self.report.unstable_tiers]
        return failed


def _replication_short(slo: Slo, model: Model, run: RunResult) -> bool:
    """Whether one replication estimated the SLO's percentile from too few values."""
    path = slo_figure(slo)
    q = percentile_table(model).get(path[-1])
    if q is None or path[0] not in ("latency", "wait", "age"):
        return False
    if slo.class_index is not None:
        return run.classes[slo.class_index].latency.n < fewest_samples(q)
    assert slo.tier_index is not None
    tier_run = run.tiers[slo.tier_index]
    histogram = tier_run.age if path[0] == "age" else tier_run.wait
    return histogram is not None and histogram.n < fewest_samples(q)


def _per_replication(slo: Slo, model: Model, run: RunResult) -> float:
    """The SLO's statistic as measured by one replication alone (NaN when it has no data)."""
    percentiles = percentile_table(model)
    path = slo_figure(slo)
    figure, statistic = path[0], path[-1]
    if slo.class_index is not None:
        measured = run.classes[slo.class_index]
        if slo.statistic == "error_rate":
            finished = measured.completed + measured.errors
            return measured.errors / finished if finished else 0.0
        if slo.statistic == "share_over":
            assert slo.threshold is not None
            return measured.latency.share_over(slo.threshold)
        value = time_statistics(measured.latency, percentiles).get(statistic)
        return math.nan if value is None else float(value)
    assert slo.tier_index is not None
    tier_run = run.tiers[slo.tier_index]
    workers = max(tier_run.workers or model.tiers[slo.tier_index].workers, 1)
    if slo.statistic in ("utilization", "occupancy"):
        return _share_held(slo, model, run, workers)
    if slo.statistic == "backlog":
        return float(tier_run.queue_max)
    histogram = tier_run.age if figure == "age" else tier_run.wait
    if histogram is None:
        return math.nan
    value = time_statistics(histogram, percentiles).get(statistic)
    return math.nan if value is None else float(value)


def _share_held(slo: Slo, model: Model, run: RunResult, workers: int) -> float:
    """One replication's utilization or occupancy as the run's verdict judges it: at the
    busiest minute when conditions change, of a database's busiest group when that is higher."""
    assert slo.tier_index is not None
    tier_run = run.tiers[slo.tier_index]
    held = tier_run.busy_time
    if slo.statistic == "occupancy":
        held = max(tier_run.occupied_time, tier_run.busy_time)
    window = held / (workers * run.duration)
    peak = None
    if conditions_change(model):
        peak = tier_peak(model.tiers[slo.tier_index], [run], slo.statistic)
    group = busiest_group_share(tier_run, slo.statistic, run.duration)
    if peak is None:  # the window's mean, or its busiest group's
        return window if group is None else max(window, group)
    if group is None or group <= window:  # judged at the busiest minute, as the run's verdict
        return peak.value
    return scaled_to_group(peak.value, group, window)


def check_slos(
    model: Model, runs: list[RunResult], data: dict[str, Any], slos: Sequence[Slo]
) -> tuple[list[SloCheck], dict[str, list[float]]]:
    """Each objective judged by the upper end of its 95% interval across replications.

    With one replication there is no interval and the point estimate decides.
    """
    checks: list[SloCheck] = []
    estimates: dict[str, list[float]] = {}
    for slo in slos:
        verdict = judge_by_phase(evaluate_slo(slo, model, data), slo, model, runs)
        observed = verdict["observed"]
        per_run = [_per_replication(slo, model, run) for run in runs]
        estimates[slo.text] = per_run
        upper = observed
        if observed is not None and len(runs) > 1 and all(math.isfinite(v) for v in per_run):
            share = slo.statistic in RATIO_STATISTICS  # at most 1; every figure is at least 0
            interval = clamped(t_interval(per_run), 0.0, 1.0 if share else math.inf)
            if interval is not None:
                upper = max(float(observed), interval[1])
        passed = upper is not None and math.isfinite(upper) and upper <= slo.limit
        reason = verdict.get("reason") if verdict.get("none_completed") else None
        passed = passed and reason is None
        short = bool(verdict.get("low_sample")) or any(
            _replication_short(slo, model, run) for run in runs
        )
        checks.append(
            SloCheck(
                slo.text,
                slo.statistic,
                slo.limit,
                observed,
                upper,
                passed,
                short,
                reason,
                verdict.get("group"),
            )
        )
    return checks, estimates


def measure(
    model: Model,
    *,
    capsim_version: str,
    extra_slos: Sequence[Slo] = (),
    progress: Progress | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
    store: ReplicationStore | None = None,
) -> Point:
    """Run every replication of `model` and judge the result against its SLOs (and `extra_slos`).

    A point that fails only by noise (Point.noise_only) is measured once more with RERUN_FACTOR
    x its replications and duration, when that stays within half of `max_requests`, and the
    longer measurement decides (docs/capacity.md, "Enough samples for every percentile"). A
    figure observed beyond its limit is never re-run: more data cannot pass it honestly.
    """
    return measure_all(
        [model],
        capsim_version=capsim_version,
        extra_slos=extra_slos,
        progress=progress,
        max_requests=max_requests,
        executor=executor,
        store=store,
    )[0]


def measure_all(
    models: Sequence[Model],
    *,
    capsim_version: str,
    extra_slos: Sequence[Slo] = (),
    progress: Progress | None = None,
    labels: Sequence[str] | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
    store: ReplicationStore | None = None,
) -> list[Point]:
    """`measure` of independent models, their replications evaluated together on `executor`;
    the points failing only by noise are re-run longer together, as `measure` says. With
    `store`, replications it holds are reused and the new ones kept there.

    On Ctrl-C, raises Interrupted whose `completed_models` holds the Points measured in full
    (by index), in place of their raw runs.
    """
    points = _measure_batch(
        models, capsim_version, extra_slos, progress, labels, max_requests, executor, store
    )
    reruns = {
        i: longer
        for i, point in enumerate(points)
        if point.noise_only
        and expected_requests(longer := _rerun_model(point.model)) <= 0.5 * max_requests
    }
    if not reruns:
        return points
    try:
        longer_points = _measure_batch(
            list(reruns.values()),
            capsim_version,
            extra_slos,
            progress,
            [labels[i] for i in reruns] if labels is not None else None,
            max_requests,
            executor,
            store,
        )
    except Interrupted as stop:
        stop.completed_models = {i: p for i, p in enumerate(points) if i not in reruns}
        raise
    for i, point in zip(reruns, longer_points, strict=True):
        point.rerun_of = points[i]
        points[i] = point
    return points


def simulated_requests(point: Point) -> float:
    """Open requests simulated for `point`: its replications not reused, and those of the
    shorter measurement it re-ran for noise (warm-ups included)."""
    done = expected_requests(point.model) * point.simulated_share
    if point.rerun_of is not None:
        done += simulated_requests(point.rerun_of)
    return done


def _rerun_model(model: Model) -> Model:
    simulation = model.simulation
    return with_run_length(
        model, simulation.duration * RERUN_FACTOR, simulation.replications * RERUN_FACTOR
    )


def expected_requests(model: Model) -> float:
    """Open requests all replications of `model` offer, warm-up included."""
    simulation = model.simulation
    return open_rate(model) * (simulation.duration + simulation.warmup) * simulation.replications


def _measure_batch(
    models: Sequence[Model],
    capsim_version: str,
    extra_slos: Sequence[Slo],
    progress: Progress | None,
    labels: Sequence[str] | None,
    max_requests: float,
    executor: Executor | None,
    store: ReplicationStore | None = None,
) -> list[Point]:
    keys = [ReplicationStore.key(model) for model in models] if store is not None else []
    known = [
        store.known(key, model.simulation.replications) if store is not None else []
        for key, model in zip(keys or [b""] * len(models), models, strict=True)
    ]
    try:
        batches = run_batch(
            models,
            executor=executor,
            progress=progress,
            labels=labels,
            max_requests=max_requests,
            first=[len(runs) for runs in known],
        )
    except Interrupted as stop:
        stop.completed_models = {
            i: _judge(models[i], [*known[i], *runs], capsim_version, extra_slos)
            for i, runs in stop.completed_models.items()
        }
        raise
    complete = [[*before, *runs] for before, runs in zip(known, batches, strict=True)]
    if store is not None:
        store.reused += sum(len(runs) for runs in known)
        for key, runs in zip(keys, complete, strict=True):
            store.keep(key, runs)
    points = [
        _judge(model, runs, capsim_version, extra_slos)
        for model, runs in zip(models, complete, strict=True)
    ]
    for point, before in zip(points, known, strict=True):
        point.reused = len(before)
    return points


def _judge(
    model: Model, runs: list[RunResult], capsim_version: str, extra_slos: Sequence[Slo]
) -> Point:
    report = summarise(model, runs, capsim_version=capsim_version)
    checks, estimates = check_slos(model, runs, report.data, [*model.slos, *extra_slos])
    return Point(model, report, checks, estimates)


#: Replications a ReplicationStore keeps (the most recently simulated or reused): enough for a
#: verification extended from 12 to 24 replications, a few search points' worth besides.
STORE_REPLICATIONS = 48


class ReplicationStore:
    """Replications already simulated in one command, by model and replication index, so that a
    later measurement asking for the same ones reuses them instead of simulating them again.

    A replication is a pure function of the model and its index, whatever the model's count of
    replications (every random stream is keyed by seed, replication, tier or class, role), so a
    measurement of the same model with more replications (a verification run again with twice
    the replications) runs only the new ones, from the first index it lacks: its results are
    the ones a run from 0 gives, byte for byte. Models are told apart by their pickled form
    (their replication count left out); two models that pickle alike simulate alike. The store
    keeps at most `capacity` replications, the most recently used.
    """

    def __init__(self, capacity: int = STORE_REPLICATIONS) -> None:
        self.capacity = capacity
        self._runs: dict[tuple[bytes, int], RunResult] = {}
        self.reused = 0  # replications not simulated again, over the store's life

    @staticmethod
    def key(model: Model) -> bytes:
        once = replace(model, simulation=replace(model.simulation, replications=1))
        return hashlib.sha256(pickle.dumps(once, protocol=pickle.HIGHEST_PROTOCOL)).digest()

    def known(self, key: bytes, count: int) -> list[RunResult]:
        """The replications 0, 1, ... of the model of `key` kept here, up to the first missing
        (at most `count`)."""
        runs = []
        for replication in range(count):
            run = self._runs.pop((key, replication), None)
            if run is None:
                break
            self._runs[(key, replication)] = run  # most recently used
            runs.append(run)
        return runs

    def keep(self, key: bytes, runs: Sequence[RunResult]) -> None:
        for replication, run in enumerate(runs):
            self._runs.pop((key, replication), None)
            self._runs[(key, replication)] = run
        while len(self._runs) > self.capacity:
            del self._runs[next(iter(self._runs))]


def asked_figures(entry: dict[str, Any]) -> dict[str, Any]:
    """A class's figures asked for beyond the usual ones: extra percentiles (`--percentiles`)
    and `share_over`, for the per-class entries of a search's points."""
    extra: dict[str, Any] = {
        name: value for name, value in entry["latency"].items() if name not in STATISTICS
    }
    if "share_over" in entry:
        extra["share_over"] = entry["share_over"]
    return extra


def headline(data: dict[str, Any]) -> dict[str, float | None]:
    """p50 and p99 of the worst class (the highest of each over classes), overall error rate."""
    p50 = [c["latency"]["p50"] for c in data["classes"].values() if c["latency"]["p50"] is not None]
    p99 = [c["latency"]["p99"] for c in data["classes"].values() if c["latency"]["p99"] is not None]
    errors = sum(c["errors"] for c in data["classes"].values())
    finished = errors + sum(c["completed"] for c in data["classes"].values())
    return {
        "p50": max(p50) if p50 else None,
        "p99": max(p99) if p99 else None,
        "error_rate": errors / finished if finished else 0.0,
    }


__all__ = [
    "Point",
    "Progress",
    "ReplicationStore",
    "SloCheck",
    "asked_figures",
    "at_max_replicas",
    "check_slos",
    "expected_requests",
    "headline",
    "light_load_solution",
    "measure",
    "measure_all",
    "open_rate",
    "percentile_needs",
    "percentile_needs_by_slo",
    "sampled_duration",
    "scale_open_traffic",
    "simulated_requests",
    "with_run_length",
]
