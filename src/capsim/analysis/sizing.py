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

from capsim.analysis.busiest_group import busiest_group, scaled_to_group
from capsim.analysis.cost import (
    marginal_price,
    paid_base_entries,
    plan_costs,
    search_cost,
    with_the_paid_base,
)
from capsim.analysis.points import (
    Point,
    Progress,
    ReplicationStore,
    SloCheck,
    at_max_replicas,
    light_load_solution,
    measure_all,
    open_rate,
    percentile_needs,
    sampled_duration,
    scale_open_traffic,
    with_run_length,
)
from capsim.analysis.rate_limit_floor import RefusalFloor, refusal_floor
from capsim.analysis.sizing_groups import (
    GROUP_WORDS_OF,
    both_groups_note,
    database_groups_to_size,
    unsized_group_beyond,
)
from capsim.analysis.sizing_start import Quantity, Verdict, analytic_start, judge
from capsim.analysis.solve import served_shares
from capsim.engine.executors import Executor
from capsim.engine.runner import DEFAULT_MAX_REQUESTS, estimate_requests
from capsim.errors import CapsimError, ResourceLimitError, UsageError
from capsim.model.features import conditions_change
from capsim.model.types import Autoscale, ConsumerScaling, Model, Pool, Sizing, Slo, Tier
from capsim.model.visits import calls_reach
from capsim.units import (
    UnitError,
    format_count,
    format_rate,
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
#: The lower bounds read the tiers' throughput bounds where no tier holds more than this share
#: of its workers (the open traffic quartered up to LIGHT_LOAD_STEPS times to get there).
LIGHT_LOAD_HELD = 0.25
LIGHT_LOAD_STEPS = 8
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
    if not math.isfinite(factor):
        raise UsageError(
            f"--load {text!r} is not a finite load; write a factor (2x, 1.5, 150%) or a total "
            "open rate (3000/s)"
        )
    if factor <= 0:
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
    """One sized quantity: tier `tier` (an index), `of` between `low` and `high`; `name` keys
    its value: the tier's name, or `<tier>.<group>` for the second group of a database whose
    two groups both bind (`tier_name` is then the tier's; sizing_groups.py)."""

    tier: int
    name: str
    of: str
    low: int
    high: int
    unit_cost: float  # per hour, of one more unit
    tier_name: str = ""

    @property
    def on_tier(self) -> str:
        """The name of the tier this quantity sizes."""
        return self.tier_name or self.name

    @property
    def second_group(self) -> bool:
        """Whether this is a database's second sized group (its tier has another dimension)."""
        return bool(self.tier_name)

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
    # A fault that loses servers loses them by its rule on the tier's new count (the last one,
    # half of them, a zone's), never a server the trial does not have.
    faults = tuple(
        fault.for_servers(tiers[fault.tier].servers, tiers[fault.tier].zones)
        for fault in model.faults
    )
    return replace(model, tiers=tuple(tiers), faults=faults)


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


def dimensions(
    model: Model, redundancy: int, default_of: dict[str, str] | None = None
) -> list[Dimension]:
    """Every sized quantity; a tier without a `sizing` key is sized by instances (1..1000), a
    queue by consumers, a tier named in `default_of` by that quantity (sizing_groups.py)."""
    dims = []
    for tier in model.tiers:
        if tier.synthetic:
            continue
        sizing = tier.sizing or Sizing(of=_default_quantity(tier, default_of or {}))
        if sizing.fixed:
            continue
        unit_cost = marginal_price(tier)
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


def _default_quantity(tier: Tier, default_of: dict[str, str]) -> str:
    if tier.name in default_of:
        return default_of[tier.name]
    return "consumers" if tier.kind == "queue" else "instances"


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
        solution = _lightly_loaded_solution(model, version)
    except CapsimError:
        return bounds
    # In the unit of max_rate: the open rate, or the closed throughput without open traffic.
    rate = open_rate(model) or sum(
        c["throughput"] for name, c in solution["classes"].items()
        if model.classes[model.class_index[name]].is_closed
    )  # fmt: skip
    served = served_shares(model)  # behind a rate limit, a tier gets what it lets through
    for dim in dims:
        tier = model.tiers[dim.tier]
        max_rate = solution["tiers"][tier.name]["max_rate"]
        if not max_rate or tier.pool is not None or tier.kind == "database":
            continue
        offered = rate * served[tier.name] * tier.workers / max_rate  # busy at the target load
        per_unit = tier.workers / max(capacity_of(tier, dim.of), 1)
        cap = min(limit.get(tier.name, 1.0), 1.0)
        needed = offered / (per_unit * cap)
        least = math.floor(needed) + 1 if cap >= 1.0 else math.ceil(needed - 1e-9)
        bounds[dim.name] = min(max(dim.low, least), dim.high)
    return bounds


def _lightly_loaded_solution(model: Model, version: str) -> dict[str, Any]:
    """`solve` of `model` with its open traffic scaled down until no tier (nor database group)
    holds more than LIGHT_LOAD_HELD of its workers: the throughput bounds of a true light load.

    At the sizing load `solve` may find a steady state while a callee is all but saturated (a
    database's replicas 108% held at `--load 3x`): a blocking caller's bound then counts the
    callee's queueing in its holding time, and its "lower bound" becomes many times the answer
    (web-shop's app: 44 instances where 5 meet every objective), so the search started there
    and shrank one instance at a time until it ran out of requests."""
    factor = 1.0
    solution = light_load_solution(model, version)
    for _ in range(LIGHT_LOAD_STEPS):
        if not open_rate(model) or _held_at_most(solution, LIGHT_LOAD_HELD):
            break
        factor /= 4.0
        solution = light_load_solution(scale_open_traffic(model, factor), version)
    return solution


def _held_at_most(solution: dict[str, Any], share: float) -> bool:
    """Whether every tier and database group of `solution` holds at most `share` of its
    workers (by utilization and occupancy)."""
    for entry in solution["tiers"].values():
        figures = [entry, *(entry.get("groups") or {}).values()]
        for figure in figures:
            if not isinstance(figure, dict):
                continue
            held = max(
                float(figure.get("utilization") or 0.0), float(figure.get("occupancy") or 0.0)
            )
            if held > share:
                return False
    return True


class _Search:
    """Measures configurations of one model (each once per run length) and keeps the count of
    simulated points per phase (`runs`) and of simulated requests (`simulated`)."""

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
        self.runs: dict[str, int] = {}  # simulated points per phase (noise re-runs included)
        #: Short search points whose verdict a full-length run cannot overturn (their failure
        #: is clear: docs/capacity.md, "Search"); None where conditions change during the run.
        self.settled_by: Model | None = None
        self.stage = ""  # "at full length" once a failed verification sends the search there
        self.store = ReplicationStore()  # replications simulated so far, reused when asked again

    def key(self, values: dict[str, int]) -> tuple[int, ...]:
        return tuple(values[d.name] for d in self.dims)

    def measure(self, values: dict[str, int], model: Model, what: str) -> Point:
        return self.measure_all([values], model, what)[0]

    def measure_all(
        self, trials: list[dict[str, int]], model: Model, what: str, fewer: bool = False
    ) -> list[Point]:
        """The points of `trials` (independent configurations), the new ones measured together.

        At full length, a trial whose search point failed clearly keeps that verdict unmeasured.
        With `fewer` (trials that take units away, while shrinking), a trial with no more of
        any quantity than a configuration that failed clearly at the same run length keeps
        that verdict unmeasured too (`_dominated`).
        """
        keys = [(model.simulation.duration, self.key(values)) for values in trials]
        settled = self._settled(keys)
        if fewer:
            settled.update(self._dominated([key for key in keys if key not in settled]))
        new = {
            key: values
            for key, values in zip(keys, trials, strict=True)
            if key not in self.cache and key not in settled
        }
        if new:
            self._check_budget(new, model)
            points = self._simulate(list(new.values()), model, what)
            self.cache.update(zip(new, points, strict=True))
        return [self.cache.get(key) or settled[key] for key in keys]

    def _settled(self, keys: list[tuple[float, tuple[int, ...]]]) -> dict[Any, Point]:
        """The search points (shorter run) of `keys` that failed clearly, by key."""
        if self.settled_by is None:
            return {}
        short = self.settled_by.simulation.duration
        found = {}
        for key in keys:
            point = self.cache.get((short, key[1]))
            if key[0] != short and point is not None and fails_clearly(point):
                found[key] = point
        return found

    def _dominated(self, keys: list[tuple[float, tuple[int, ...]]]) -> dict[Any, Point]:
        """The points of `keys` not measured yet that a measured configuration of the same run
        length, with at least as much of every quantity, failed clearly (`fails_clearly`): less
        capacity everywhere does not bring a tier back from overload nor an objective back
        within its limit from beyond its whole interval (docs/capacity.md, "Search"). Shrinking
        one unit at a time after a growth step of an eighth (auth 80 -> 90 pods) otherwise
        measures every other quantity's one-unit-fewer trial again in each round, though it
        failed clearly in the round before with more of the quantity being shrunk."""
        failed = [
            (key, point)
            for key, point in self.cache.items()
            if not point.meets and fails_clearly(point)
        ]
        found = {}
        for key in keys:
            if key in self.cache:
                continue
            for (length, counts), point in failed:
                if length == key[0] and all(
                    mine <= theirs for mine, theirs in zip(key[1], counts, strict=True)
                ):
                    found[key] = point
                    break
        return found

    def _check_budget(self, new: dict[Any, dict[str, int]], model: Model) -> None:
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

    def _simulate(self, trials: list[dict[str, int]], model: Model, what: str) -> list[Point]:
        labels = [
            f"point {self.evaluations + i + 1}: {what}: "
            + ", ".join(f"{d.name}={values[d.name]}" for d in self.dims)
            for i, values in enumerate(trials)
        ]
        first = self.evaluations

        def part(fraction: float, label: str) -> None:
            if self.progress:
                # The number of points is not known in advance: the bar creeps to the end.
                done = first + fraction * len(trials)
                self.progress(1.0 - 1.0 / (1.0 + done / 12.0), label)

        models = [apply_capacity(model, values, self.dims) for values in trials]
        points = measure_all(
            models,
            capsim_version=self.version,
            extra_slos=self.extra,
            progress=part,
            labels=labels,
            max_requests=self.max_requests,
            executor=self.executor,
            store=self.store,
        )
        self.evaluations += len(trials)
        phase = what if not self.stage or what.startswith("verifying") else f"{what} {self.stage}"
        for asked, point in zip(models, points, strict=True):
            reruns = int(point.model.simulation != asked.simulation)  # re-run longer for noise
            self.runs[phase] = self.runs.get(phase, 0) + 1 + reruns
            measured_first = point.rerun_of or point  # replications reused are not counted
            self.simulated += estimate_requests(asked) * measured_first.simulated_share
            if point.rerun_of is not None:
                self.simulated += estimate_requests(point.model) * point.simulated_share
        return points

    def cost(self, values: dict[str, int]) -> float:
        return search_cost(self.target, self.dims, values)  # analysis/cost.py: pricing models

    def grow(self, values: dict[str, int], model: Model) -> dict[str, int]:
        """Add capacity where it helps most per unit of cost until every objective holds."""
        point = self.measure(values, model, "growing")
        moves: list[Point] = [point]
        while not point.meets:
            _stop_if_stalled(moves, values, self.dims, self.target)
            open_dims = [d for d in self.dims if values[d.name] < d.high]
            if not open_dims:
                raise SizingError(
                    "no capacity within the sizing limits meets every SLO: at "
                    + ", ".join(f"{d.name}={values[d.name]}" for d in self.dims)
                    + " still "
                    + "; ".join(point.failures)
                    + ". "
                    + _overloaded_at_most_hint(point, values, self.dims, self.target)
                    + "Raise sizing.max of the tiers, or check the objectives."
                )
            values, point = self._grow_once(values, point, open_dims, model)
            moves.append(point)
        return values

    def _grow_once(
        self, values: dict[str, int], point: Point, open_dims: list[Dimension], model: Model
    ) -> tuple[dict[str, int], Point]:
        """One growth move: every overloaded sized tier outright; otherwise the one-step-larger
        trial with the largest deficit reduction per unit of cost, among the tiers more of which
        can help (every such quantity at once when no single step helps)."""
        unstable = set(point.report.unstable_tiers)
        overloaded = [d for d in open_dims if d.on_tier in unstable]
        if overloaded:
            # An overloaded tier must grow whatever else happens: no comparison needed.
            grown = {**values, **{d.name: _larger(values, d) for d in overloaded}}
            return grown, self.measure(grown, model, "growing")
        base = _deficit(point)
        best: tuple[float, float, dict[str, int], Point] | None = None
        # A tier where nothing waited, was refused or timed out, and whose own objectives hold,
        # is not tried: more of it cannot shorten anything (docs/capacity.md, "Search").
        helpful = [d for d in open_dims if not self._cannot_help(point, d)]
        # The one-step-larger trials are independent: measured together, compared in order.
        trials = [{**values, d.name: _larger(values, d)} for d in helpful]
        for trial, measured in zip(trials, self.measure_all(trials, model, "growing"), strict=True):
            gain = base - _deficit(measured)
            if gain <= 1e-12:
                continue
            extra_cost = self.cost(trial) - self.cost(values)
            score = (gain / extra_cost if extra_cost > 0 else math.inf, gain)
            if best is None or score > (best[0], best[1]):
                best = (score[0], score[1], trial, measured)
        if best is not None:
            return best[2], best[3]
        grown = {**values, **{d.name: _larger(values, d) for d in helpful or open_dims}}
        return grown, self.measure(grown, model, "growing")

    def _cannot_help(self, point: Point, dim: Dimension) -> bool:
        """Whether one more unit of `dim` cannot meet a failed objective: at `point` no visit
        to its tier waited for a worker, none was refused or timed out there, the tier is
        stable, and every objective of the tier itself (utilization, occupancy, waits, the
        headroom) holds. A gain measured on such a trial is noise, and a tier priced only per
        GB (a CDN) would win every comparison with it at no instance cost (a checkout
        platform's `size --load 2x` grew its CDN trial after trial)."""
        name = self.target.tiers[dim.tier].name
        # The tier and what follows its count (a cdn's `<cdn>.origin_shield`).
        names = {
            t.name for t in self.target.tiers if t.name == name or t.name.startswith(name + ".")
        }
        reported = point.report.data["tiers"]
        if any(n not in reported or n in point.report.unstable_tiers for n in names):
            return False
        if not all(_nothing_waited(reported[n]) for n in names):
            return False
        slos = [*point.model.slos, *self.extra]
        return all(
            check.passed
            for slo, check in zip(slos, point.checks, strict=True)
            if slo.tier_index is not None and self.target.tiers[slo.tier_index].name in names
        )

    def shrink(self, values: dict[str, int], model: Model) -> dict[str, int]:
        """Remove units (dearest first) and trade dear units for cheap ones while SLOs hold."""
        while True:
            shrunk = self._one_unit_fewer(values, model)
            if shrunk is None:
                shrunk = self._one_trade(values, model)
            if shrunk is None:
                return values
            values = shrunk

    def _one_unit_fewer(self, values: dict[str, int], model: Model) -> dict[str, int] | None:
        """The first configuration, dearest tier first, with fewer units that meets every
        objective (large tiers gallop down first); None when one unit fewer fails everywhere.
        The one-unit-fewer trials are measured together: the first of them in that order that
        passes is the one a one-at-a-time search would have taken."""
        order = [d for d in sorted(self.dims, key=lambda d: -d.unit_cost) if values[d.name] > d.low]
        for d in order:
            if values[d.name] > GALLOP_ABOVE:
                galloped = self.gallop(values, d, model)
                if galloped is not None:
                    return galloped
        trials = [{**values, d.name: values[d.name] - 1} for d in order]
        measured = self.measure_all(trials, model, "shrinking", fewer=True)
        for trial, point in zip(trials, measured, strict=True):
            if point.meets:
                return trial
        return None

    def _one_trade(self, values: dict[str, int], model: Model) -> dict[str, int] | None:
        """The first trade of one dear unit for one cheaper unit that meets every objective
        (dearest first), the trades measured together; None when none does."""
        trials = [
            {**values, dear.name: values[dear.name] - 1, cheap.name: values[cheap.name] + 1}
            for dear in sorted(self.dims, key=lambda d: -d.unit_cost)
            if values[dear.name] > dear.low and not self._short_of_its_own(values, dear, model)
            for cheap in self.dims
            if cheap.unit_cost < dear.unit_cost and values[cheap.name] < cheap.high
        ]
        measured = self.measure_all(trials, model, "trading", fewer=True)
        for trial, point in zip(trials, measured, strict=True):
            if point.meets:
                return trial
        return None

    def _short_of_its_own(self, values: dict[str, int], dim: Dimension, model: Model) -> bool:
        """Whether one unit fewer of `dim` failed clearly by the tier's own work: the tier
        overloaded, or its utilization or occupancy objective beyond the limit by its whole
        interval, on a tier whose workers are not held through calls. Its load then depends on
        nothing another tier's capacity can lower (more capacity upstream only lets more
        through), so no trade of one of its units for one elsewhere can meet the SLOs."""
        tier = self.target.tiers[dim.tier]
        if tier.blocking and any(work.calls for work in tier.work):
            return False  # held through its calls: a callee's capacity shortens the hold
        key = (model.simulation.duration, self.key({**values, dim.name: values[dim.name] - 1}))
        point = (
            self.cache.get(key) or self._settled([key]).get(key) or self._dominated([key]).get(key)
        )
        if point is None:
            return False
        if dim.on_tier in point.report.unstable_tiers:
            return True
        slos = [*point.model.slos, *self.extra]
        return any(
            slo.tier_index == dim.tier
            and slo.statistic in ("utilization", "occupancy")
            and _beyond_by_its_interval(check)
            for slo, check in zip(slos, point.checks, strict=True)
        )

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


def _nothing_waited(figures: dict[str, Any]) -> bool:
    """No visit to the tier waited for a worker, was refused or timed out."""
    wait = figures.get("wait") or {}
    longest = wait.get("max")
    return (
        longest is not None
        and longest <= 0
        and not figures.get("rejected")
        and not figures.get("timed_out")
    )


def fails_clearly(point: Point) -> bool:
    """Whether a point fails far from every limit: a tier overloaded, or an objective whose
    whole 95% interval lies beyond its limit (observed − (upper − observed) > limit). A longer
    run of the same configuration narrows the interval around the same figure; it cannot pass
    it honestly (docs/capacity.md, "Search")."""
    return bool(point.report.unstable_tiers) or any(map(_beyond_by_its_interval, point.checks))


def _beyond_by_its_interval(check: SloCheck) -> bool:
    """A failed objective whose whole 95% interval lies beyond its limit (or has no finite
    figure)."""
    if check.passed:
        return False
    if check.reason is not None:  # no request of its class completed: no run length passes it
        return True
    if check.observed is None or check.upper is None:
        return False
    if not math.isfinite(check.observed) or not math.isfinite(check.upper):
        return True
    return 2.0 * check.observed - check.upper > check.limit


def _larger(values: dict[str, int], d: Dimension) -> int:
    """Dimension `d` one growth step larger, within its range."""
    return min(d.high, values[d.name] + _step(values[d.name]))


def _held_up_by_unsized_overloads(point: Point, dims: list[Dimension], model: Model) -> set[str]:
    """The sized tiers whose calls reach (directly or further down) a tier that is not sized
    and is overloaded at `point`: their workers wait on its backlog, so more of them cannot
    make them stable. An outbox whose consumers call a fixed bank offered more than its 1,000
    workers carry was grown consumer after consumer (36 to 63 in an hour of points at 3x, on
    the way to its max of 1,000) and kept the stall rule from ever judging."""
    sized = {d.on_tier for d in dims}
    unstable = set(point.report.unstable_tiers)
    unsized = [model.tier(name) for name in unstable - sized]
    return {
        name
        for name in unstable & sized
        if any(calls_reach(model, model.tier(name).index, tier.index) for tier in unsized)
    }


def _stalled_objectives(
    moves: list[Point], values: dict[str, int], dims: list[Dimension], model: Model
) -> list[str]:
    """The objectives failing now and STALL_MOVES growth moves ago whose observed figure has not
    improved by STALL_GAIN since (empty unless every objective failing by its observed figure is
    stalled so; one failing only by the upper end of its interval is left to the data)."""
    if len(moves) <= STALL_MOVES:
        return []
    now, then = moves[-1], moves[-1 - STALL_MOVES]
    growing = {d.on_tier for d in dims if values[d.name] < d.high}
    held_up = _held_up_by_unsized_overloads(now, dims, model)
    if any(name in growing and name not in held_up for name in now.report.unstable_tiers):
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


def _stop_if_stalled(
    moves: list[Point], values: dict[str, int], dims: list[Dimension], model: Model
) -> None:
    """SizingError (exit 1) when STALL_MOVES growth moves left every failing objective where it
    was: no sized quantity moves it, so more of them cannot meet it."""
    stalled = _stalled_objectives(moves, values, dims, model)
    if not stalled:
        return
    raise SizingError(
        f"no sized capacity moves these objectives: after {STALL_MOVES} growth steps (now at "
        + ", ".join(f"{d.name}={values[d.name]}" for d in dims)
        + ") each still fails with its figure improved by less than "
        + f"{STALL_GAIN:.0%}: "
        + "; ".join(stalled)
        + ". "
        + _rate_limit_hint(moves[-1])
        + _unsized_overload_hint(moves[-1], dims)
        + _overloaded_at_most_hint(moves[-1], values, dims, model)
        + "Something that is not sized limits them (a fixed tier, a pool, database replicas, "
        "a queue's partitions, a rate limit, a timeout, a service time), or no capacity can "
        "meet them: size that "
        "quantity (`sizing: {of: ...}`) or check the objectives."
    )


def _stop_at_rate_limits(model: Model) -> None:
    """SizingError (exit 1), before any simulation, when a class has an error_rate objective
    that a rate limit on its way fails alone: a token bucket passes at most burst + rate x T
    over any stretch T, whatever the capacity (docs/capacity.md, "Past a rate limit")."""
    for slo in model.slos:
        if slo.statistic != "error_rate" or slo.class_index is None:
            continue
        traffic = model.classes[slo.class_index]
        if traffic.is_closed:
            continue
        for tier in model.tiers:
            floor = refusal_floor(model, slo.class_index, tier.index)
            if floor is not None and floor.share > slo.limit:
                raise SizingError(_refused_whatever_the_capacity(slo, traffic.name, floor))


def _refused_whatever_the_capacity(slo: Slo, name: str, floor: RefusalFloor) -> str:
    at_peak = " at its peak" if floor.varies else ""
    return (
        f"no capacity meets {slo.text}: {floor.tier}'s rate_limit "
        f"({format_rate(floor.token_rate)}, one token bucket shared by its instances) lets "
        f"through at most {format_rate(floor.token_rate)} of the "
        f"{format_rate(floor.peak_reaching)} reaching it{at_peak}, so at least "
        f"{floor.share:.1%} of {name}'s requests are refused whatever the capacity: a rate "
        f"limit is configuration, not capacity, and size does not size it: raise "
        f"tiers.{floor.tier}.rate_limit.rate or lower the load."
    )


def _rate_limit_hint(point: Point) -> str:
    """The rate limits that refused requests at `point`: no capacity gets past them."""
    hints = [
        f"{name}'s rate_limit refused {entry['rate_limited'] / entry['arrivals']:.1%} of its "
        f"arrivals (no capacity passes more: raise tiers.{name}.rate_limit.rate). "
        for name, entry in point.report.data["tiers"].items()
        if entry.get("rate_limited") and entry.get("arrivals")
    ]
    return "".join(hints)


def _unsized_overload_hint(point: Point, dims: list[Dimension]) -> str:
    """The tiers `size` does not size that are overloaded at `point`: no sized capacity
    relieves them (a fixed third-party tier whose backlog fails every call to it)."""
    sized = {d.on_tier for d in dims}
    hints = []
    for failure in point.report.data.get("overloaded") or []:
        name = failure.get("tier")
        if name is None or name in sized:
            continue
        offered, capacity = failure.get("offered_rate"), failure.get("capacity")
        figures = (
            f" ({format_rate(offered)} offered, capacity {format_rate(capacity)})"
            if isinstance(offered, int | float) and isinstance(capacity, int | float)
            else ""
        )
        hints.append(
            f"{name} is not sized and is overloaded at that point{figures}: size it "
            f"(tiers.{name}.sizing) or lower its load. "
        )
    return "".join(hints)


def _overloaded_at_most_hint(
    point: Point, values: dict[str, int], dims: list[Dimension], model: Model
) -> str:
    """The sized tiers overloaded at `point` with their quantity at its most: a partitioned
    queue whose partitions are all in use (more consumers would sit idle), or sizing.max."""
    unstable = set(point.report.unstable_tiers)
    hints = []
    for dim in dims:
        if dim.on_tier not in unstable or values[dim.name] < dim.high:
            continue
        tier = model.tiers[dim.tier]
        at_partitions = (
            tier.partitions is not None and partition_cap(tier, dim.of, dim.high + 1) == dim.high
        )
        remedy = (
            f"its {tier.partitions} partitions are all in use, so more {dim.of} would sit idle: "
            f"raise tiers.{dim.name}.partitions to add parallelism"
            if at_partitions
            else f"raise tiers.{dim.name}.sizing.max"
        )
        hints.append(f"{dim.name} is overloaded at its most ({dim.of}={dim.high}): {remedy}. ")
    return "".join(hints)


def _step(value: int) -> int:
    """Growth step: one unit for small tiers, about an eighth for large ones."""
    return max(1, value // 8)


@dataclass
class _Question:
    """What `size` is asked, on the model it searches: the traffic at the load (autoscaled
    tiers at their max), the sized quantities, the headroom objectives and the notes."""

    target: Model
    dims: list[Dimension]
    extra: list[Slo]
    limit: dict[str, float]  # per tier, the least share of its workers its mean load may hold
    autoscaled: dict[str, Autoscale | ConsumerScaling]  # an HPA, or KEDA on a queue
    notes: list[str]


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
    question = _question(model, load, headroom, redundancy, capsim_version)
    target, dims = question.target, question.dims
    _stop_at_rate_limits(target)
    search_model, full_model = _run_lengths(
        model, target, duration, replications, max_requests, capsim_version
    )
    search = _Search(target, dims, question.extra, capsim_version, progress, max_requests, executor)
    if not conditions_change(target):
        search.settled_by = search_model
    lower = _lower_bounds(target, dims, question.limit, capsim_version)
    start, start_kind = _starting_point(question, lower, capsim_version)
    _check_plan(start, dims, search_model, full_model, max_requests, announce)
    values, final, fidelity = _find_answer(search, start, search_model, full_model)
    deciding = full_model if fidelity == "full" else search_model
    needed = {d.name: values[d.name] + (redundancy if d.loses_instances else 0) for d in dims}
    answer = with_the_paid_base(target, dims, needed, _most(dims, redundancy))  # analysis/cost.py
    intact = final
    if answer != values:
        intact = search.measure(answer, full_model, "verifying the answer")
    base_notes: list[str] = []
    if answer != needed and not intact.meets:
        answer, intact, base_notes = _without_the_paid_base(
            search, target, dims, needed, answer, intact, full_model
        )
    # The evidence of minimality, one unit fewer per dimension: independent points, one batch.
    search.measure_all(
        [{**values, d.name: values[d.name] - 1} for d in dims if values[d.name] > d.low],
        deciding,
        "checking",
        fewer=True,
    )
    sized = apply_capacity(target, answer, dims)
    tiers_out = _tiers_output(
        model, sized, question, intact,
        lambda d: _one_fewer(search, values, d, deciding, redundancy),
    )  # fmt: skip
    overrides = _overrides_of(tiers_out)
    paid, paid_notes = paid_base_entries(model, dims, needed, answer, tiers_out)  # cost.py
    overrides.update(paid)
    if progress:
        progress(1.0, "done")
    return {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "command": "size",
        "seed": model.seed,
        "load": load,
        "offered_rate": open_rate(target),
        "headroom": headroom,
        "redundancy": f"n+{redundancy}" if redundancy else "n",
        "tiers": tiers_out,
        "currency": model.currency,
        **plan_costs(sized, tiers_out, intact.report.data),  # analysis/cost.py
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
            **_search_cost(search, start, start_kind, answer, dims, full_model, redundancy),
        },
        "overrides": overrides,
        "notes": [*question.notes, *paid_notes, *base_notes],
        "warnings": _occupancy_warnings(tiers_out, {d.name: d for d in dims}, headroom),
    }


def _overrides_of(tiers_out: dict[str, Any]) -> dict[str, Any]:
    """`--set` paths and values of the answer: each sized tier's quantity (and a database's
    second group, `also_sized`, when both were sized)."""
    return {
        part["path"]: part[part["sized"]]
        for entry in tiers_out.values()
        for part in (entry, entry.get("also_sized") or {})
        if part.get("sized")
    }


def _question(
    model: Model, load: float, headroom: float | None, redundancy: int, capsim_version: str
) -> _Question:
    """The sizing question on the model: traffic at `load`, autoscaled tiers at their max, the
    sized quantities (an autoscaled tier's never below autoscale.min; a database's binding
    group, sizing_groups.py) and the headroom objectives (one `occupancy <= 1 - headroom` per
    sized tier)."""
    autoscaled = _scalers(model)
    target, notes = at_max_replicas(scale_open_traffic(model, load))
    groups = database_groups_to_size(target, capsim_version)
    dims = [
        replace(dim, low=min(max(dim.low, autoscaled[dim.name].min), dim.high))
        if dim.name in autoscaled and dim.of == _scaled_quantity(autoscaled[dim.name])
        else dim
        for dim in dimensions(target, redundancy, {name: g.of for name, g in groups.items()})
    ]
    if not dims:
        raise UsageError("every tier is `sizing: fixed`; there is nothing to size")
    notes = [
        *_sized_max_notes(notes, dims, autoscaled),
        *partition_notes(target, dims),
        *(groups[d.name].note for d in dims if d.name in groups),
    ]
    dims, both = _both_groups_where_they_bind(target, dims, groups, _load_limits(model), headroom)
    notes = [n for n in notes if not any(n == groups[name].note for name in both)]
    notes += [both_groups_note(target.tier(name), groups[name]) for name in both]
    limit = _load_limits(model)
    extra: list[Slo] = []
    if headroom:
        for dim in dims:
            if dim.second_group:
                continue  # the tier's headroom is judged on its busiest group once
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
    return _Question(target, dims, extra, limit, autoscaled, notes)


def _both_groups_where_they_bind(
    target: Model,
    dims: list[Dimension],
    groups: dict[str, Any],
    limit: dict[str, float],
    headroom: float | None,
) -> tuple[list[Dimension], list[str]]:
    """`dims` with a second dimension for each database whose group not sized is already beyond
    its objectives and the headroom at the sizing load (sizing_groups.py): more of the sized
    group takes no work off it, so both groups are sized in the one search (`<tier>.replicas`
    or `<tier>.primaries` beside the tier's own). A tier with a reserved or spot price still
    stops at once (SizingError, exit 1): its price counts both groups' units together."""
    added: list[Dimension] = []
    both: list[str] = []
    reasons: list[str] = []
    for dim in dims:
        if dim.name not in groups:
            continue
        tier = target.tiers[dim.tier]
        allowed = min(limit.get(dim.name, 1.0), 1.0 - headroom if headroom else 1.0)
        reason = unsized_group_beyond(tier, groups[dim.name], allowed)
        if reason is None:
            continue
        pricing = tier.pricing
        if pricing is not None and (pricing.reserved or pricing.spot_discount is not None):
            reasons.append(reason)
            continue
        of = groups[dim.name].other_of
        low = 0 if of == "replicas" else 1
        added.append(
            Dimension(
                dim.tier, f"{dim.name}.{GROUP_WORDS_OF[of]}", of, low, max(low, dim.high),
                marginal_price(tier), tier_name=dim.name,
            )
        )  # fmt: skip
        both.append(dim.name)
    if reasons:
        raise SizingError("; ".join(reasons) + ".")
    return [*dims, *added], both


def _scalers(model: Model) -> dict[str, Autoscale | ConsumerScaling]:
    """Each autoscaled tier's scaler: a tier's HPA (it scales instances) or a queue's KEDA
    scaler (it scales consumers); either way size sizes its `autoscale.max`."""
    scalers: dict[str, Autoscale | ConsumerScaling] = {}
    for tier in model.tiers:
        scaler = tier.autoscale or tier.consumer_scaling
        if scaler is not None:
            scalers[tier.name] = scaler
    return scalers


def _scaled_quantity(scaler: Autoscale | ConsumerScaling) -> str:
    """The sized quantity a scaler sets: its `max` is the answer when this one is sized."""
    return "consumers" if isinstance(scaler, ConsumerScaling) else "instances"


def _sized_max_notes(
    notes: list[str], dims: list[Dimension], autoscaled: dict[str, Autoscale | ConsumerScaling]
) -> list[str]:
    """The autoscaled-tier notes, with each tier whose scaled quantity (an HPA's instances, a
    KEDA queue's consumers) is sized told as such: the answer is its new `autoscale.max` (the
    note must not read "evaluated at its max of 8" beside an answer of 2)."""
    sized = {
        dim.name: dim.of
        for dim in dims
        if dim.name in autoscaled and dim.of == _scaled_quantity(autoscaled[dim.name])
    }
    kept = [
        n
        for n in notes
        if not any(
            n.startswith((f"tier {name} autoscales (", f"queue {name} scales its consumers "))
            for name in sized
        )
    ]
    return kept + [
        f"{'queue' if of == 'consumers' else 'tier'} {name} autoscales "
        f"({autoscaled[name].min}..{autoscaled[name].max} {of}): size sizes its autoscale.max, "
        f"so the answer is the new max (was {autoscaled[name].max}), evaluated with that many "
        f"{of} all ready (the {'scaler' if of == 'consumers' else 'autoscaler'}'s lag is not "
        "counted; see capsim run with a profile)"
        for name, of in sorted(sized.items())
    ]


def _load_limits(model: Model) -> dict[str, float]:
    """Per tier, the share of its workers its objectives let the mean load hold.

    The light-load bound counts held workers: an occupancy limit bounds exactly that, a
    utilization limit (the work alone) only where workers are not held through calls.
    """
    limit: dict[str, float] = {}
    for slo in model.slos:
        tier = model.tiers[slo.tier_index] if slo.tier_index is not None else None
        if tier is not None and (
            slo.statistic == "occupancy" or (slo.statistic == "utilization" and not tier.blocking)
        ):
            limit[tier.name] = min(limit.get(tier.name, 1.0), slo.limit)
    return limit


def _run_lengths(
    model: Model,
    target: Model,
    duration: float | None,
    replications: int,
    max_requests: float,
    capsim_version: str,
) -> tuple[Model, Model]:
    """The search points' model and the verification's (the scenario's own run length), each
    long enough for every percentile objective's samples (docs/capacity.md)."""
    total_rate = open_rate(target)
    if duration is None:
        duration = min(
            model.simulation.duration,
            max(REQUESTS_PER_POINT / total_rate if total_rate else 0.0, MIN_SEARCH_DURATION),
        )
    needs = percentile_needs(target, light_load_solution(target, capsim_version))
    search_model = _sampled(with_run_length(target, duration, replications), needs, max_requests)
    full_model = _sampled(
        with_run_length(target, None, max(model.simulation.replications, replications)),
        needs,
        max_requests,
    )
    return search_model, full_model


def _starting_point(
    question: _Question, lower: dict[str, int], capsim_version: str
) -> tuple[dict[str, int], str]:
    """Where the simulated search starts: the analytic sizing (sizing_start.py) when `solve`
    can judge the model, else the lower bounds; and which of the two it is."""
    slos = [*question.target.slos, *question.extra]
    verdicts: dict[tuple[int, ...], Verdict | None] = {}

    def verdict_of(values: dict[str, int]) -> Verdict | None:
        key = tuple(values[d.name] for d in question.dims)
        if key not in verdicts:
            sized = apply_capacity(question.target, values, question.dims)
            verdict = judge(sized, slos, capsim_version)
            if verdict is not None and verdict.grow:  # a tier's every sized quantity grows
                grow = {d.name for d in question.dims if d.on_tier in verdict.grow}
                verdict = replace(verdict, grow=frozenset(verdict.grow | grow))
            verdicts[key] = verdict
        return verdicts[key]

    quantities = [Quantity(d.name, d.low, d.high, d.unit_cost) for d in question.dims]
    start = analytic_start(quantities, lower, verdict_of)
    if start is None:
        return lower, "lower bounds"
    return {name: max(value, lower[name]) for name, value in start.items()}, "analytic"


def _most(dims: list[Dimension], redundancy: int) -> dict[str, int]:
    """Each quantity's sizing limit (the search's `high` plus the units n+r adds back)."""
    return {d.name: d.high + (redundancy if d.loses_instances else 0) for d in dims}


def _without_the_paid_base(
    search: _Search,
    model: Model,
    dims: list[Dimension],
    needed: dict[str, int],
    raised: dict[str, int],
    failed: Point,
    full_model: Model,
) -> tuple[dict[str, int], Point, list[str]]:
    """The answer when running the reserved base (`raised`) failed its verification: the
    fewest units that met the objectives (`needed`), when they pass at full length, with a
    note per tier whose paid units stay idle (docs/cost.md, `capsim size`). Running more
    units can fail where fewer passed: a point at the edge of an objective (noise, one
    replication), or more capacity upstream letting more traffic through to a fixed tier.
    Otherwise `raised` and its failed verification stand (`verified: false`)."""
    fewest = search.measure(needed, full_model, "verifying the answer")
    if not fewest.meets:
        return raised, failed, []
    why = "; ".join(failed.failures)
    notes = [
        f"tier {d.name}: running the reserved base ({raised[d.name]} {d.of}) failed the "
        f"verification ({why}), so the answer runs the {needed[d.name]} that met the "
        f"objectives; the other reserved units are paid for and idle (reserved_idle)"
        for d in dims
        if raised[d.name] != needed[d.name]
    ]
    return needed, fewest, notes


def _check_plan(
    start: dict[str, int],
    dims: list[Dimension],
    search_model: Model,
    full_model: Model,
    max_requests: float,
    announce: Callable[[str], None] | None,
) -> None:
    """ResourceLimitError when the likely search passes `max_requests`; an announcement of a
    long one."""
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


def _find_answer(
    search: _Search, start: dict[str, int], search_model: Model, full_model: Model
) -> tuple[dict[str, int], Point, str]:
    """Grow and shrink on short points from `start`, then verify at full length; a failed
    verification refines at full length from where the search stands (growing from the
    answer, then shrinking, where short points that failed clearly keep their verdict).
    Returns the answer, its verification point, and the run length minimality was checked at."""
    values = search.shrink(search.grow(start, search_model), search_model)
    final = search.measure(values, full_model, "verifying")
    if final.meets:
        return values, final, "search"
    # The short search runs were too optimistic: refine at the full run length from here.
    search.stage = "at full length"
    values = search.shrink(search.grow(values, full_model), full_model)
    return values, search.measure(values, full_model, "verifying"), "full"


def _tiers_output(
    model: Model,
    sized: Model,
    question: _Question,
    intact: Point,
    one_fewer: Callable[[Dimension], dict[str, Any]],
) -> dict[str, Any]:
    """Per tier of the answer: the sized quantity (value, was, path, evidence of minimality),
    utilization and occupancy at the answer, and its cost per hour."""
    by_name = {d.name: d for d in question.dims if not d.second_group}
    second = {d.on_tier: d for d in question.dims if d.second_group}
    tiers_out: dict[str, Any] = {}
    for tier in sized.tiers:
        if tier.synthetic:
            continue
        entry: dict[str, Any] = {
            "instances": tier.instances if tier.kind != "queue" else tier.consumers,
            "sized": None,
        }
        if tier.kind == "database":
            entry["replicas"] = tier.replicas
        sized_dim = by_name.get(tier.name)
        if sized_dim is not None:
            entry.update(_sized_entry(model.tiers[tier.index], tier, sized_dim, question))
            entry["one_fewer"] = one_fewer(sized_dim)
        other = second.get(tier.name)
        if other is not None:  # a database whose two groups bind: its second group, sized too
            entry["also_sized"] = {
                **_sized_entry(model.tiers[tier.index], tier, other, question),
                "one_fewer": one_fewer(other),
            }
        if tier.name in question.autoscaled:
            entry["autoscale"] = "evaluated at autoscale.max"
        measured = intact.report.data["tiers"].get(tier.name, {})
        entry["utilization"] = measured.get("utilization")
        entry["occupancy"] = measured.get("occupancy")
        if "peak" in measured:  # load or capacity changes: the busiest minute (results.md)
            entry["peak"] = measured["peak"]
        if "groups" in measured:  # a database with replicas: its primary and replicas groups
            entry["groups"] = measured["groups"]
        entry["cost_per_hour"] = (
            billed_units(tier) * tier.cost_per_instance_hour
            if tier.cost_per_instance_hour is not None
            else None
        )
        tiers_out[tier.name] = entry
    return tiers_out


def _sized_entry(original: Tier, tier: Tier, dim: Dimension, question: _Question) -> dict[str, Any]:
    """A sized tier's quantity: its name, the answer, what the scenario had and its key."""
    of = dim.of
    entry = {
        "sized": of,
        "was": capacity_of(original, of),
        of: capacity_of(tier, of),
        "path": scenario_path(tier, of),
    }
    scaler = question.autoscaled.get(tier.name)
    if scaler is not None and of == _scaled_quantity(scaler):
        entry["was"] = scaler.max
        entry["path"] = f"tiers.{tier.name}.autoscale.max"
    return entry


def _search_cost(
    search: _Search,
    start: dict[str, int],
    start_kind: str,
    answer: dict[str, int],
    dims: list[Dimension],
    full_model: Model,
    redundancy: int,
) -> dict[str, Any]:
    """Where the search started and what it cost (docs/capacity.md, "What a search costs")."""
    one_run = estimate_requests(apply_capacity(full_model, answer, dims))
    return {
        "start": start_kind,
        "started_at": {
            d.name: start[d.name] + (redundancy if d.loses_instances else 0) for d in dims
        },
        "runs": sum(search.runs.values()),
        "runs_by_phase": dict(search.runs),
        "run_equivalents": search.simulated / one_run if one_run > 0 else None,
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
        peak = {k: v["value"] for k, v in (entry.get("peak") or {}).items()}
        held = max(entry.get("occupancy") or 0.0, entry.get("utilization") or 0.0, *peak.values())
        group = busiest_group(entry, "occupancy")  # a database's busiest group fills first
        where = ""
        if group is not None:
            pooled = entry.get("occupancy") or 0.0
            in_group = scaled_to_group(peak.get("occupancy", pooled), group[1], pooled)
            if in_group > held:
                held, where = in_group, f" (its {group[0]} group)"
        if held <= WARN_OCCUPANCY:
            continue
        why = (
            f"--headroom {format_ratio(headroom or 0.0)} allows it"
            if name in sized
            else "it is not sized (sizing: fixed)"
        )
        warnings.append(
            f"tier {name} is {held:.1%} occupied{where} at the answer"
            + (" in its busiest minute" if peak else "")
            + f" ({why}): near full occupancy "
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
    (point,) = search.measure_all(
        [{**values, dim.name: values[dim.name] - 1}], model, "checking", fewer=True
    )
    reason = "; ".join(point.failures) if not point.meets else "meets the SLOs"
    # A short point that failed clearly is not run again at full length: its run length shows.
    return {
        "value": shown,
        "meets_slos": point.meets,
        "reason": reason,
        "duration": point.model.simulation.duration,
    }
