"""`capsim size`: the cheapest instance counts (or pool sizes) per tier that meet every SLO.

The search runs on the model (copies with other capacities, common random numbers throughout):
analytic lower bounds, then greedy growth by SLO improvement per unit of cost until every
objective holds, then shrinking until one unit fewer in any sized tier breaks an objective,
then a verification at the scenario's own run length. docs/capacity.md states the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from capsim.analysis.points import (
    Point,
    Progress,
    at_max_replicas,
    light_load_solution,
    measure_all,
    open_rate,
    percentile_needs,
    sampled_duration,
    scale_open_traffic,
    with_run_length,
)
from capsim.engine.executors import Executor
from capsim.engine.runner import DEFAULT_MAX_REQUESTS, estimate_requests
from capsim.errors import CapsimError, ResourceLimitError, UsageError
from capsim.model.types import Model, Pool, Sizing, Slo, Tier
from capsim.units import (
    UnitError,
    format_count,
    format_ratio,
    option_count,
    parse_rate,
    parse_ratio,
)

#: Requests per replication a search point aims at.
REQUESTS_PER_POINT = 30_000
MIN_SEARCH_DURATION = 5.0
#: Upper bound on measured configurations before the search gives up (exit 3: a search limit).
MAX_EVALUATIONS = 400
#: Growth moves over which some failing objective must improve by STALL_GAIN (observed figure)
#: for the growth to go on; otherwise no sized quantity moves it (docs/capacity.md, "Stalled").
STALL_MOVES = 4
STALL_GAIN = 0.05
#: Share of every sized tier's workers kept spare unless --headroom says otherwise
#: (docs/capacity.md, "Headroom"): the answer keeps occupancy at or below 90%.
DEFAULT_HEADROOM = 0.10
#: Above this occupancy a tier of the answer gets a warning (with --headroom below 10%).
WARN_OCCUPANCY = 0.90
#: A tier sized beyond this many units shrinks in halving steps (an eighth of it first, then
#: half that, ... down to one), so a search near 100,000 instances takes tens of measurements,
#: not thousands. Below it the search removes one unit at a time, as it always did.
GALLOP_ABOVE = 256
#: A search estimated to simulate more requests than this is announced before it starts.
ANNOUNCE_REQUESTS = 10_000_000


class SizingError(CapsimError):
    """No capacity within the tiers' sizing limits meets every SLO."""

    exit_code = 1


class SearchLimitError(ResourceLimitError):
    """The search reached its budget of measurements without settling (a search limit, not a
    verdict on the SLOs)."""


# ---- option values ---------------------------------------------------------------------------
_FACTOR_RE = re.compile(r"^\s*([+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*[xX×]\s*$")


def parse_load(text: str, base_rate: float | None = None) -> float:
    """A load factor from `2x`, `1.5`, `150%` or a total open rate such as `3000/s`.

    A rate needs `base_rate` (the scenario's total open rate) to become a factor.
    """
    value = text.strip()
    match = _FACTOR_RE.match(value)
    try:
        if match:
            factor = float(match.group(1))
        elif value.endswith("%"):
            factor = float(value[:-1]) / 100.0
        elif "/" in value:
            if not base_rate:
                raise UsageError(
                    f"--load {text}: a rate needs open traffic to scale; use a factor such as 2x"
                )
            factor = parse_rate(value) / base_rate
        else:
            factor = float(value)
    except (ValueError, UnitError):
        raise UsageError(
            f"--load {text!r} is not a load; write a factor (2x, 1.5, 150%) or a total open "
            "rate (3000/s)"
        ) from None
    if not math.isfinite(factor) or factor <= 0:
        raise UsageError(f"--load {text!r} must be greater than 0")
    return factor


def parse_headroom(text: str) -> float:
    """A headroom ratio in [0, 1) from `30%` or `0.3`."""
    try:
        value = parse_ratio(text.strip() if isinstance(text, str) else text)
    except UnitError as error:
        raise UsageError(f"--headroom: {error}") from None
    if value >= 1.0:
        raise UsageError(f"--headroom {text!r} leaves no capacity to use; write e.g. 30%")
    return value


def parse_redundancy(text: str) -> int:
    """`n` (none) or `n+1`: how many instances of each instance-sized tier may be lost."""
    value = text.strip().lower().replace(" ", "")
    if value in ("n", "n+0", "none", "0"):
        return 0
    if value in ("n+1", "1"):
        return 1
    raise UsageError(f"--redundancy {text!r} is not supported; write n+1 (or n for none)")


# ---- capacity on the model -------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """One sized quantity: tier `tier` (an index), `of` between `low` and `high`."""

    tier: int
    name: str
    of: str
    low: int
    high: int
    unit_cost: float  # per hour, of one more unit

    @property
    def loses_instances(self) -> bool:
        """n+1 applies to instance counts (instances, replicas, consumers), not to workers."""
        return self.of != "concurrency"


def capacity_of(tier: Tier, of: str) -> int:
    """The current value of a sized quantity."""
    if of == "instances":
        return tier.instances
    if of == "replicas":
        return tier.replicas
    if of == "consumers":
        return tier.consumers
    if tier.pool is not None:
        return tier.pool.size
    return tier.concurrency // tier.consumers if tier.kind == "queue" else tier.concurrency


def _with_capacity(tier: Tier, of: str, value: int) -> Tier:
    if of == "instances":
        return replace(tier, instances=value)
    if of == "replicas":
        return replace(tier, replicas=value)
    if of == "consumers":
        per_consumer = tier.concurrency // tier.consumers
        return replace(tier, consumers=value, concurrency=value * per_consumer)
    if tier.pool is not None:
        pool: Pool = replace(tier.pool, size=value)
        return replace(tier, pool=pool)
    if tier.kind == "queue":
        return replace(tier, concurrency=value * tier.consumers)
    return replace(tier, concurrency=value)


def apply_capacity(model: Model, values: dict[str, int], dims: list[Dimension]) -> Model:
    """`model` with each dimension set to `values[name]` (a cdn's origin shield follows it)."""
    tiers = list(model.tiers)
    for dim in dims:
        value = values[dim.name]
        tiers[dim.tier] = _with_capacity(tiers[dim.tier], dim.of, value)
        shield = model.tier_index.get(f"{dim.name}.origin_shield")
        if shield is not None and dim.of in ("instances", "concurrency"):
            tiers[shield] = _with_capacity(tiers[shield], dim.of, value)
    return replace(model, tiers=tuple(tiers))


def billed_units(tier: Tier) -> int:
    """Instances the tier pays for: a database's primaries and replicas, a queue's consumers."""
    if tier.kind == "queue":
        return tier.consumers
    return tier.instances + tier.replicas


def scenario_path(tier: Tier, of: str) -> str:
    """The scenario key that holds a sized quantity (for --write)."""
    if of == "concurrency" and tier.pool is not None:
        return f"tiers.{tier.name}.pool.size"
    return f"tiers.{tier.name}.{of}"


def dimensions(model: Model, redundancy: int) -> list[Dimension]:
    """Every sized quantity; a tier without a `sizing` key is sized by instances (1..1000)."""
    dims = []
    for tier in model.tiers:
        if tier.synthetic:
            continue
        sizing = tier.sizing or Sizing(of="consumers" if tier.kind == "queue" else "instances")
        if sizing.fixed:
            continue
        unit_cost = tier.cost_per_instance_hour or 0.0
        if sizing.of == "concurrency":
            unit_cost = 0.0  # workers of an instance are not priced separately
        low, high = sizing.min, sizing.max
        if sizing.of != "concurrency" and redundancy:
            # The search runs on what is left after the loss; the answer adds it back.
            low, high = (
                max(low - redundancy, 0 if sizing.of == "replicas" else 1),
                high - redundancy,
            )
            if high < low:
                raise UsageError(
                    f"tier {tier.name}: sizing.max {sizing.max} leaves no room for "
                    f"--redundancy n+{redundancy}; raise sizing.max"
                )
        high = partition_cap(tier, sizing.of, high)
        dims.append(Dimension(tier.index, tier.name, sizing.of, min(low, high), high, unit_cost))
    return dims


def partition_cap(tier: Tier, of: str, high: int) -> int:
    """`high`, capped where a partitioned queue's quantity stops adding workers that can be
    busy: at most min(workers, partitions) consumer workers work at once (docs/capacity.md)."""
    if tier.partitions is None or of not in ("consumers", "concurrency"):
        return high
    per_unit = capacity_of(tier, "concurrency") if of == "consumers" else tier.consumers
    return max(1, min(high, -(-tier.partitions // max(per_unit, 1))))


def partition_notes(model: Model, dims: list[Dimension]) -> list[str]:
    """One sentence per sized partitioned queue whose partitions cap its sized quantity."""
    return [
        f"{dim.name}: {dim.of} sized up to {dim.high}, where its {tier.partitions} partitions "
        "are all in use (more would sit idle: raise partitions to add parallelism)"
        for dim in dims
        for tier in [model.tiers[dim.tier]]
        if tier.partitions is not None and dim.high == partition_cap(tier, dim.of, dim.high + 1)
    ]


# ---- the search ------------------------------------------------------------------------------
def _deficit(point: Point) -> float:
    """How far a point is from meeting its objectives (0 when it meets them)."""
    total = 10.0 * len(point.report.unstable_tiers)
    for check in point.checks:
        if check.upper is None or not math.isfinite(check.upper):
            total += 10.0
        elif check.upper > check.limit:
            total += math.log(check.upper / check.limit) if check.limit > 0 else 10.0
    return total


def _lower_bounds(
    model: Model, dims: list[Dimension], limit: dict[str, float], version: str
) -> dict[str, int]:
    """Per dimension, the least value at which the tier's mean load fits under its limit.

    From the light-load throughput bound: demand per request is workers / max_rate, so the
    work offered at the target load is rate x demand; it must stay below limit x workers.
    Only for quantities that scale a tier's workers plainly (not pools or database replicas).
    """
    bounds = {dim.name: dim.low for dim in dims}
    try:
        solution = light_load_solution(model, version)
    except CapsimError:
        return bounds
    rate = open_rate(model) + sum(
        c["throughput"] for name, c in solution["classes"].items()
        if model.classes[model.class_index[name]].is_closed
    )  # fmt: skip
    for dim in dims:
        tier = model.tiers[dim.tier]
        max_rate = solution["tiers"][tier.name]["max_rate"]
        if not max_rate or tier.pool is not None or tier.kind == "database":
            continue
        offered = rate * tier.workers / max_rate  # busy workers at the target load
        per_unit = tier.workers / max(capacity_of(tier, dim.of), 1)
        cap = min(limit.get(tier.name, 1.0), 1.0)
        needed = offered / (per_unit * cap)
        least = math.floor(needed) + 1 if cap >= 1.0 else math.ceil(needed - 1e-9)
        bounds[dim.name] = min(max(dim.low, least), dim.high)
    return bounds


class _Search:
    def __init__(
        self,
        target: Model,
        dims: list[Dimension],
        extra: list[Slo],
        version: str,
        progress: Progress | None,
        max_requests: float,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor
        self.target = target
        self.dims = dims
        self.extra = extra
        self.version = version
        self.progress = progress
        self.max_requests = max_requests
        self.cache: dict[tuple[float, tuple[int, ...]], Point] = {}
        self.evaluations = 0
        self.simulated = 0.0  # requests simulated so far, over every measurement

    def key(self, values: dict[str, int]) -> tuple[int, ...]:
        return tuple(values[d.name] for d in self.dims)

    def measure(self, values: dict[str, int], model: Model, what: str) -> Point:
        return self.measure_all([values], model, what)[0]

    def measure_all(self, trials: list[dict[str, int]], model: Model, what: str) -> list[Point]:
        """The points of `trials` (independent configurations), the new ones measured together."""
        keys = [(model.simulation.duration, self.key(values)) for values in trials]
        new = {
            key: values for key, values in zip(keys, trials, strict=True) if key not in self.cache
        }
        if new:
            if self.evaluations + len(new) > MAX_EVALUATIONS:
                raise SearchLimitError(
                    f"the sizing search reached its limit of {MAX_EVALUATIONS} measured "
                    "configurations without settling (a search limit, not an SLO verdict); "
                    "narrow the tiers' sizing ranges (sizing.min/max) or raise --replications"
                )
            cost = estimate_requests(model) * len(new)
            if self.simulated + cost > self.max_requests:
                raise ResourceLimitError(
                    f"the sizing search has measured {self.evaluations} configuration(s) and "
                    f"simulated about {format_count(self.simulated)} requests; the next "
                    f"{'one' if len(new) == 1 else f'{len(new)}'} ({format_count(cost)} requests) "
                    f"would pass the limit of {format_count(self.max_requests)} for the whole "
                    "search. Shorten the search points (--duration, --replications), or allow it "
                    f"with --max-requests {option_count((self.simulated + cost) * 2)}."
                )
            self.simulated += cost
            labels = [
                f"point {self.evaluations + i + 1}: {what}: "
                + ", ".join(f"{d.name}={values[d.name]}" for d in self.dims)
                for i, values in enumerate(new.values())
            ]
            first = self.evaluations

            def part(fraction: float, label: str) -> None:
                if self.progress:
                    # The number of points is not known in advance: the bar creeps to the end.
                    done = first + fraction * len(new)
                    self.progress(1.0 - 1.0 / (1.0 + done / 12.0), label)

            points = measure_all(
                [apply_capacity(model, values, self.dims) for values in new.values()],
                capsim_version=self.version,
                extra_slos=self.extra,
                progress=part,
                labels=labels,
                max_requests=self.max_requests,
                executor=self.executor,
            )
            self.cache.update(zip(new, points, strict=True))
            self.evaluations += len(new)
        return [self.cache[key] for key in keys]

    def cost(self, values: dict[str, int]) -> float:
        return sum(d.unit_cost * values[d.name] for d in self.dims)

    def grow(self, values: dict[str, int], model: Model) -> dict[str, int]:
        """Add capacity where it helps most per unit of cost until every objective holds."""
        point = self.measure(values, model, "growing")
        moves: list[Point] = [point]
        while not point.meets:
            _stop_if_stalled(moves, values, self.dims)
            open_dims = [d for d in self.dims if values[d.name] < d.high]
            if not open_dims:
                raise SizingError(
                    "no capacity within the sizing limits meets every SLO: at "
                    + ", ".join(f"{d.name}={values[d.name]}" for d in self.dims)
                    + " still "
                    + "; ".join(point.failures)
                    + ". Raise sizing.max of the tiers, or check the objectives."
                )
            unstable = set(point.report.unstable_tiers)
            overloaded = [d for d in open_dims if d.name in unstable]
            if overloaded:
                # An overloaded tier must grow whatever else happens: no comparison needed.
                for d in overloaded:
                    values = {**values, d.name: min(d.high, values[d.name] + _step(values[d.name]))}
                point = self.measure(values, model, "growing")
                moves.append(point)
                continue
            base = _deficit(point)
            best: tuple[float, float, dict[str, int], Point] | None = None
            # The one-step-larger trials are independent: measured together, compared in order.
            trials = [
                {**values, d.name: min(d.high, values[d.name] + _step(values[d.name]))}
                for d in open_dims
            ]
            for trial, measured in zip(
                trials, self.measure_all(trials, model, "growing"), strict=True
            ):
                gain = base - _deficit(measured)
                if gain <= 1e-12:
                    continue
                extra_cost = self.cost(trial) - self.cost(values)
                score = (gain / extra_cost if extra_cost > 0 else math.inf, gain)
                if best is None or score > (best[0], best[1]):
                    best = (score[0], score[1], trial, measured)
            if best is None:
                values = {
                    **values,
                    **{
                        d.name: min(d.high, values[d.name] + _step(values[d.name]))
                        for d in open_dims
                    },
                }
                point = self.measure(values, model, "growing")
            else:
                values, point = best[2], best[3]
            moves.append(point)
        return values

    def shrink(self, values: dict[str, int], model: Model) -> dict[str, int]:
        """Remove units (dearest first) and trade dear units for cheap ones while SLOs hold."""
        changed = True
        while changed:
            changed = False
            for d in sorted(self.dims, key=lambda d: -d.unit_cost):
                if values[d.name] <= d.low:
                    continue
                if values[d.name] > GALLOP_ABOVE:
                    shrunk = self.gallop(values, d, model)
                    if shrunk is not None:
                        values, changed = shrunk, True
                        break
                trial = {**values, d.name: values[d.name] - 1}
                if self.measure(trial, model, "shrinking").meets:
                    values, changed = trial, True
                    break
            if changed:
                continue
            for dear in sorted(self.dims, key=lambda d: -d.unit_cost):
                for cheap in self.dims:
                    if (
                        cheap.unit_cost >= dear.unit_cost
                        or values[dear.name] <= dear.low
                        or values[cheap.name] >= cheap.high
                    ):
                        continue
                    trial = {
                        **values,
                        dear.name: values[dear.name] - 1,
                        cheap.name: values[cheap.name] + 1,
                    }
                    if self.measure(trial, model, "trading").meets:
                        values, changed = trial, True
                        break
                if changed:
                    break
        return values

    def gallop(self, values: dict[str, int], d: Dimension, model: Model) -> dict[str, int] | None:
        """The first of `values` less an eighth, a sixteenth, ... (more than one unit) of
        dimension `d` that still meets every objective; None when none does."""
        step = _step(values[d.name])
        while step > 1:
            trial = {**values, d.name: max(d.low, values[d.name] - step)}
            if trial[d.name] < values[d.name] and self.measure(trial, model, "shrinking").meets:
                return trial
            step //= 2
        return None


def _stalled_objectives(moves: list[Point], dims: list[Dimension]) -> list[str]:
    """The objectives failing now and STALL_MOVES growth moves ago whose observed figure has not
    improved by STALL_GAIN since (empty unless every objective failing by its observed figure is
    stalled so; one failing only by the upper end of its interval is left to the data)."""
    if len(moves) <= STALL_MOVES:
        return []
    now, then = moves[-1], moves[-1 - STALL_MOVES]
    sized = {d.name for d in dims}
    if any(name in sized for name in now.report.unstable_tiers):
        return []  # an overloaded sized tier still grows; its figures mean little yet
    before = {check.slo: check.observed for check in then.checks if not check.passed}
    stalled = []
    for check in now.checks:
        if check.passed or check.fails_only_by_noise:
            continue  # within its limit: more data decides it, not more capacity
        earlier = before.get(check.slo)
        if earlier is None or check.observed is None or not math.isfinite(earlier):
            return []  # newly failing, or without data: not a stall
        if check.observed < earlier * (1.0 - STALL_GAIN):
            return []  # still improving
        stalled.append(check.describe())
    return stalled


def _stop_if_stalled(moves: list[Point], values: dict[str, int], dims: list[Dimension]) -> None:
    """SizingError (exit 1) when STALL_MOVES growth moves left every failing objective where it
    was: no sized quantity moves it, so more of them cannot meet it."""
    stalled = _stalled_objectives(moves, dims)
    if not stalled:
        return
    raise SizingError(
        f"no sized capacity moves these objectives: after {STALL_MOVES} growth steps (now at "
        + ", ".join(f"{d.name}={values[d.name]}" for d in dims)
        + ") each still fails with its figure improved by less than "
        + f"{STALL_GAIN:.0%}: "
        + "; ".join(stalled)
        + ". Something that is not sized limits them (a fixed tier, a pool, database replicas, "
        "a timeout, a service time), or no capacity can meet them: size that quantity "
        "(`sizing: {of: ...}`) or check the objectives."
    )


def _step(value: int) -> int:
    """Growth step: one unit for small tiers, about an eighth for large ones."""
    return max(1, value // 8)


def size_tiers(
    model: Model,
    *,
    capsim_version: str,
    load: float = 1.0,
    headroom: float | None = DEFAULT_HEADROOM,
    redundancy: int = 0,
    replications: int = 3,
    duration: float | None = None,
    progress: Progress | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The cheapest capacity meeting every SLO at `load` x the scenario's open traffic.

    `headroom` (default 10%): every sized tier keeps that share of its workers spare
    (occupancy <= 1 - headroom); None or 0 allows the edge, and the answer then warns about
    every tier above WARN_OCCUPANCY. Autoscaled tiers are evaluated at their `autoscale.max`
    instances and sized by it (docs/capacity.md, "Autoscaled tiers").
    Raises SizingError (exit 1) when no capacity within the sizing limits meets the SLOs, and
    ResourceLimitError when the whole search would simulate more than `max_requests` requests.
    `announce` hears, before the search starts, what a long search will cost.
    """
    autoscaled = {tier.name: tier.autoscale for tier in model.tiers if tier.autoscale is not None}
    target, notes = at_max_replicas(scale_open_traffic(model, load))
    dims = [
        replace(dim, low=min(max(dim.low, autoscaled[dim.name].min), dim.high))
        if dim.name in autoscaled and dim.of == "instances"
        else dim
        for dim in dimensions(target, redundancy)
    ]
    if not dims:
        raise UsageError("every tier is `sizing: fixed`; there is nothing to size")
    notes = [*notes, *partition_notes(target, dims)]
    extra: list[Slo] = []
    limit: dict[str, float] = {}
    for slo in model.slos:
        # The light-load bound counts held workers: an occupancy limit bounds exactly that, a
        # utilization limit (the work alone) only where workers are not held through calls.
        tier = model.tiers[slo.tier_index] if slo.tier_index is not None else None
        if tier is not None and (
            slo.statistic == "occupancy" or (slo.statistic == "utilization" and not tier.blocking)
        ):
            limit[tier.name] = min(limit.get(tier.name, 1.0), slo.limit)
    if headroom:
        for dim in dims:
            extra.append(
                Slo(
                    text=f"{dim.name} occupancy <= {format_ratio(1 - headroom)} "
                    f"(headroom {format_ratio(headroom)})",
                    statistic="occupancy",
                    limit=1.0 - headroom,
                    tier_index=dim.tier,
                )
            )
            limit[dim.name] = min(limit.get(dim.name, 1.0), 1.0 - headroom)
    start = _lower_bounds(target, dims, limit, capsim_version)
    total_rate = open_rate(target)
    if duration is None:
        duration = min(
            model.simulation.duration,
            max(REQUESTS_PER_POINT / total_rate if total_rate else 0.0, MIN_SEARCH_DURATION),
        )
    # Every point runs long enough for each percentile objective's samples (docs/capacity.md).
    needs = percentile_needs(target, light_load_solution(target, capsim_version))
    search_model = _sampled(with_run_length(target, duration, replications), needs, max_requests)
    full_model = _sampled(
        with_run_length(target, None, max(model.simulation.replications, replications)),
        needs,
        max_requests,
    )
    search = _Search(target, dims, extra, capsim_version, progress, max_requests, executor)
    plan = plan_search(start, dims, search_model, full_model)
    if plan.likely > max_requests:
        raise ResourceLimitError(
            f"this sizing would simulate about {format_count(plan.likely)} requests ({plan.describe()}), "
            f"more than the limit of {format_count(max_requests)} for the whole search. Shorten the "
            "search points (--duration 1s, --replications 1), or allow it with --max-requests "
            f"{option_count(plan.likely * 1.1)}."
        )
    if announce is not None and plan.likely > ANNOUNCE_REQUESTS:
        announce(
            f"this sizing will simulate about {format_count(plan.likely)} requests ({plan.describe()}); "
            "it may take a long time. --duration and --replications make each measurement "
            "cheaper; --max-requests caps the whole search."
        )
    values = search.shrink(search.grow(start, search_model), search_model)
    final = search.measure(values, full_model, "verifying")
    fidelity = "search"
    if not final.meets:
        # The short search runs were too optimistic: search again at the full run length.
        values = search.shrink(search.grow(values, full_model), full_model)
        final = search.measure(values, full_model, "verifying")
        fidelity = "full"
    deciding = full_model if fidelity == "full" else search_model
    answer = {d.name: values[d.name] + (redundancy if d.loses_instances else 0) for d in dims}
    sized = apply_capacity(target, answer, dims)
    intact = final
    if redundancy:
        intact = search.measure(answer, full_model, "verifying without the loss")

    # The evidence of minimality, one unit fewer per dimension: independent points, one batch.
    search.measure_all(
        [{**values, d.name: values[d.name] - 1} for d in dims if values[d.name] > d.low],
        deciding,
        "checking",
    )
    tiers_out: dict[str, Any] = {}
    total_cost = 0.0
    priced = False
    by_name = {d.name: d for d in dims}
    for tier in sized.tiers:
        if tier.synthetic:
            continue
        entry: dict[str, Any] = {
            "instances": tier.instances if tier.kind != "queue" else tier.consumers,
            "sized": None,
        }
        if tier.kind == "database":
            entry["replicas"] = tier.replicas
        original = model.tiers[tier.index]
        sized_dim = by_name.get(tier.name)
        if sized_dim is not None:
            of = sized_dim.of
            entry["sized"] = of
            entry["was"] = capacity_of(original, of)
            entry[of] = capacity_of(tier, of)
            entry["path"] = scenario_path(tier, of)
            scaler = autoscaled.get(tier.name)
            if scaler is not None and of == "instances":
                entry["was"] = scaler.max
                entry["path"] = f"tiers.{tier.name}.autoscale.max"
            entry["one_fewer"] = _one_fewer(search, values, sized_dim, deciding, redundancy)
        if tier.name in autoscaled:
            entry["autoscale"] = "evaluated at autoscale.max"
        measured = intact.report.data["tiers"].get(tier.name, {})
        entry["utilization"] = measured.get("utilization")
        entry["occupancy"] = measured.get("occupancy")
        if tier.cost_per_instance_hour is not None:
            priced = True
            entry["cost_per_hour"] = billed_units(tier) * tier.cost_per_instance_hour
            total_cost += entry["cost_per_hour"]
        else:
            entry["cost_per_hour"] = None
        tiers_out[tier.name] = entry

    requests_per_second = sum(c["offered_rate"] for c in intact.report.data["classes"].values())
    per_million = (
        total_cost / (requests_per_second * 3600.0 / 1e6)
        if priced and requests_per_second > 0
        else None
    )
    warnings = _occupancy_warnings(tiers_out, by_name, headroom)
    if progress:
        progress(1.0, "done")
    return {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "command": "size",
        "seed": model.seed,
        "load": load,
        "offered_rate": total_rate,
        "headroom": headroom,
        "redundancy": f"n+{redundancy}" if redundancy else "n",
        "tiers": tiers_out,
        "currency": model.currency,
        "total_cost_per_hour": total_cost if priced else None,
        "cost_per_million_requests": per_million,
        "slos": [c.as_dict() for c in intact.checks],
        "slos_after_loss": [c.as_dict() for c in final.checks] if redundancy else None,
        "passed": intact.meets and final.meets,
        "verified": intact.meets and final.meets,
        "verification": {
            "duration": intact.model.simulation.duration,
            "replications": intact.model.simulation.replications,
            "failures": intact.failures + (final.failures if redundancy else []),
        },
        "search": {
            "duration": search_model.simulation.duration,
            "replications": replications,
            "evaluations": search.evaluations,
            "minimality_checked_at": fidelity,
        },
        "overrides": {
            tiers_out[name]["path"]: tiers_out[name][tiers_out[name]["sized"]]
            for name in tiers_out
            if tiers_out[name]["sized"]
        },
        "notes": notes,
        "warnings": warnings,
    }


def _sampled(model: Model, needs: list[tuple[float, int]], max_requests: float) -> Model:
    """`model` run long enough for every percentile objective's samples per replication, within
    half of `max_requests` for all its replications."""
    simulation = model.simulation
    rate = open_rate(model)
    per_second = rate * simulation.replications * (1 + simulation.warmup / simulation.duration)
    cap = 0.5 * max_requests / per_second if per_second > 0 else math.inf
    return with_run_length(model, sampled_duration(simulation.duration, rate, needs, cap), None)


def _occupancy_warnings(
    tiers: dict[str, Any], sized: dict[str, Dimension], headroom: float | None
) -> list[str]:
    """A sentence per tier of the answer above WARN_OCCUPANCY (possible only with a headroom
    below 10%, or for a tier that is not sized)."""
    warnings = []
    for name, entry in tiers.items():
        held = max(entry.get("occupancy") or 0.0, entry.get("utilization") or 0.0)
        if held <= WARN_OCCUPANCY:
            continue
        why = (
            f"--headroom {format_ratio(headroom or 0.0)} allows it"
            if name in sized
            else "it is not sized (sizing: fixed)"
        )
        warnings.append(
            f"tier {name} is {held:.1%} occupied at the answer ({why}): near full occupancy "
            "a little more traffic, or variance the model does not have, makes waits explode "
            '(docs/capacity.md, "Headroom")'
        )
    return warnings


@dataclass(frozen=True)
class SearchPlan:
    """What a sizing search costs, estimated before it starts (requests over all replications)."""

    per_point: float  # one search measurement
    per_verification: float  # one measurement at the scenario's own run length
    least_points: int  # the start, one shrinking try per sized tier, the one-fewer checks
    likely_points: int  # ... plus the halving steps of the tiers sized beyond GALLOP_ABOVE

    @property
    def least(self) -> float:
        return self.least_points * self.per_point + self.per_verification

    @property
    def likely(self) -> float:
        return self.likely_points * self.per_point + self.per_verification

    def describe(self) -> str:
        return (
            f"{self.least_points} to about {self.likely_points} search measurements of "
            f"{format_count(self.per_point)} requests and a verification of {format_count(self.per_verification)}"
        )


def plan_search(
    start: dict[str, int], dims: list[Dimension], search_model: Model, full_model: Model
) -> SearchPlan:
    """The least and the likely cost of a search that starts at `start`: growth by an eighth
    overshoots by up to an eighth, and halving steps find the answer in about log2 steps each
    tried twice."""
    least = 1 + 2 * len(dims)
    likely = least + sum(
        2 * max(1, math.ceil(math.log2(max(start[d.name], 2) / 8)))
        for d in dims
        if start[d.name] > GALLOP_ABOVE
    )
    return SearchPlan(
        estimate_requests(apply_capacity(search_model, start, dims)),
        estimate_requests(apply_capacity(full_model, start, dims)),
        least,
        likely,
    )


def _one_fewer(
    search: _Search, values: dict[str, int], dim: Dimension, model: Model, redundancy: int
) -> dict[str, Any]:
    """What one unit fewer in this dimension does (the evidence that the answer is minimal)."""
    shown = values[dim.name] - 1 + (redundancy if dim.loses_instances else 0)
    if values[dim.name] <= dim.low:
        return {"value": shown, "meets_slos": None, "reason": "at sizing.min"}
    point = search.measure({**values, dim.name: values[dim.name] - 1}, model, "checking")
    reason = "; ".join(point.failures) if not point.meets else "meets the SLOs"
    return {"value": shown, "meets_slos": point.meets, "reason": reason}
