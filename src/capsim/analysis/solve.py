"""`capsim solve`: instant analytic estimates of a model, no simulation.

Each tier is decomposed into independent stations (one per instance, and for a database one
group for primaries and one for replicas) fed by the traffic equations of the call graph; each
station gets the best formula its shape allows, and says which and whether it is exact here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from capsim.analysis import formulas
from capsim.analysis.busiest_group import busiest_group
from capsim.analysis.cost import spot_notes
from capsim.analysis.deadlock import deadlock_risks, mark_deadlocks, run_seconds
from capsim.analysis.load_peaks import open_rates_at_tier_peaks, peak_open_rate
from capsim.analysis.solve_attempts import (
    CallAttempts,
    attempt_sites,
    call_attempts,
    response_tail,
    steady_errors,
)
from capsim.analysis.solve_collapse import PoolChains
from capsim.analysis.solve_faults import fault_notes, judge_after_faults, step_callees
from capsim.analysis.solve_keda import (
    QueueState,
    SettledConsumers,
    polls_per_window,
    settle_consumers,
)
from capsim.errors import CapsimError
from capsim.graphs import strongly_connected
from capsim.model.types import (
    PERCENTILES,
    BatchArrivals,
    Call,
    MmppArrivals,
    Model,
    OneOf,
    Parallel,
    Step,
    Tier,
    TrafficClass,
)
from capsim.model.visits import expected_visits, per_message
from capsim.units import format_duration


class UnstableModelError(CapsimError):
    """An open station is offered at least its capacity: no steady state exists.

    Carries its figures (None when the raiser does not know them): `tier`, the first overloaded
    tier's name; `rho`, its load; `offered_rate` and `capacity` in requests per second at that
    station; `saturation_rate`, the total rate (all classes, mix as written) at which the system
    saturates."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        tier: str | None = None,
        rho: float | None = None,
        offered_rate: float | None = None,
        capacity: float | None = None,
        saturation_rate: float | None = None,
    ) -> None:
        super().__init__(message)
        self.tier = tier
        self.rho = rho
        self.offered_rate = offered_rate
        self.capacity = capacity
        self.saturation_rate = saturation_rate


@dataclass
class StationResult:
    """One group of identical servers of a tier, solved."""

    arrival_rate: float  # into the whole group (all instances)
    instances: int
    figures: formulas.QueueFigures | None
    holding_time: float  # mean time a worker is held per request
    work_time: float  # mean own work per request
    unstable_rho: float | None = None
    notes: list[str] = field(default_factory=list)


def _mean_response(
    model: Model,
    k: int,
    tier_response: np.ndarray,
    attempts: Attempts | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per tier: (mean response seen by a caller, mean time spent in calls), for class k.

    `tier_response[i]` is the mean wait + own work at tier i. A parallel group counts its
    slowest branch by the mean of the slowest mean (a lower bound: flagged approximate).
    """
    n = len(model.tiers)
    calls_time = np.zeros(n)
    response = tier_response.copy()
    approximate = any(
        isinstance(step, Parallel) for tier in model.tiers for step in tier.work[k].calls
    )
    # Callees before their callers: a call graph without loops settles in one pass (and a
    # second that confirms it), not in one pass per tier of its longest chain of calls.
    order = [model.tiers[i] for i in _callees_first(model, k)]
    for _ in range(10_000):
        previous = response.copy()
        for tier in order:
            calls_time[tier.index] = _calls_time(
                model, tier.work[k].calls, response, _of_class(attempts, k)
            )
            response[tier.index] = tier_response[tier.index] + calls_time[tier.index]
        if np.allclose(response, previous, rtol=1e-12, atol=1e-15):
            break
    return response, calls_time, approximate


#: Per (class, call) site, its attempts (`solve_attempts.CallAttempts`).
Attempts = dict[tuple[int, Call], CallAttempts]


def _of_class(attempts: Attempts | None, k: int) -> dict[Call, CallAttempts]:
    """The call sites of class k among `attempts`, by call."""
    return {call: found for (c, call), found in (attempts or {}).items() if c == k}


def _attempted(found: CallAttempts | None, response: float, rtt: float) -> float:
    """Mean time of one call to a callee answering in `response`: each attempt waits for the
    admitted share's response, cut at the timeout (`held`), plus the round trip; the retries'
    backoff between them (`solve_attempts`)."""
    if found is None:
        return response + rtt
    return found.attempts * (found.admitted * found.held * response + rtt) + found.backoff


def _calls_time(
    model: Model,
    calls: tuple[Step, ...],
    response: np.ndarray,
    attempts: dict[Call, CallAttempts] | None = None,
) -> float:
    """Mean time in `calls` when tier i answers a caller in `response[i]` (its wait, work and
    calls), each call site with `attempts` counting them; a parallel group counts its slowest
    branch's mean."""

    def step_time(step: Step) -> float:
        if isinstance(step, Call):
            callee = model.tiers[step.tier]
            # A call to another region adds its round trip (`network_delay`) to every call.
            if callee.is_async:
                publish = callee.publish_time.mean if callee.publish_time is not None else 0.0
                return step.probability * step.repeat * (publish + step.network_delay)
            found = (attempts or {}).get(step)
            return (
                step.probability
                * step.repeat
                * _attempted(found, float(response[step.tier]), step.network_delay)
            )
        if isinstance(step, OneOf):
            delays = step.network_delays or (0.0,) * len(step.options)
            return sum(
                p * step_time(Call(t, 1.0, network_delay=rtt))
                for (t, p), rtt in zip(step.options, delays, strict=True)
            )
        assert isinstance(step, Parallel)
        return max((step_time(b) for b in step.branches), default=0.0)

    return float(sum(step_time(step) for step in calls))


def _callees_first(model: Model, k: int) -> list[int]:
    """The tiers, each after every tier it calls for class k (but inside a loop of calls)."""
    successors = {tier.index: sorted(step_callees(tier.work[k].calls)) for tier in model.tiers}
    components = strongly_connected(range(len(model.tiers)), successors)
    return [index for component in reversed(components) for index in component]


def _pool_waiting_room(tier: Tier, servers: int, instances: int) -> int | None:
    """The waiting room of a database whose connection pool bounds the calls in the system:
    at most `pool.size + max_waiting` (per instance: shared evenly), `servers` of them served,
    so the rest wait (for a connection, or for a worker when the pool is larger than the
    workers); None without a pool or without `max_waiting`."""
    pool = tier.pool
    if pool is None or pool.max_waiting is None:
        return None
    return max(0, (pool.size + pool.max_waiting) // max(instances, 1) - servers)


def _service_mix(
    rates: np.ndarray,
    work_means: np.ndarray,
    work_second: np.ndarray,
    holding: np.ndarray,
    holding_second: np.ndarray | None = None,
) -> tuple[float, float, float, bool]:
    """The station's service as the traffic mixes it: mean work, mean holding time, squared
    coefficient of variation of service, and whether blocking workers hold beyond their work
    (then the service is the holding time, with the second moment `holding_second` of its
    parts: `_holding_seconds`; without it, taken as exponential: scv 1)."""
    share = rates / float(rates.sum())
    work = float(share @ work_means)
    hold = float(share @ holding)
    if hold > work * (1 + 1e-12):
        if holding_second is None:
            return work, hold, 1.0, True
        scv = max(float(share @ holding_second) / (hold * hold) - 1.0, 0.0)
        return work, hold, 1.0 if abs(scv - 1.0) < 1e-9 else scv, True
    second = float(share @ work_second)
    scv = second / (work * work) - 1.0 if work > 0 else 0.0
    if abs(scv - 1.0) < 1e-9:
        scv = 1.0
    return work, hold, scv, False


def _no_queueing(lam: float) -> formulas.QueueFigures:
    """A worker held for no time never makes anyone wait: a pure delay of zero."""
    return formulas.QueueFigures(
        utilization=0.0,
        p_wait=0.0,
        mean_wait=0.0,
        mean_sojourn=0.0,
        method="zero service time (no queueing)",
        exact=True,
        throughput=lam,
        wait_survival=lambda t: 0.0,
        sojourn_survival=lambda t: 0.0,
    )


def _approximate(figures: formulas.QueueFigures) -> formulas.QueueFigures:
    return formulas.QueueFigures(**{**figures.__dict__, "exact": False})


def _finite_room_figures(
    tier: Tier,
    servers: int,
    instances: int,
    lam: float,
    hold: float,
    scv: float,
    waiting_room: int,
    blocking_holds: bool,
    notes: list[str],
) -> formulas.QueueFigures:
    """M/M/c/K for a station with a bounded waiting room (max_queue, or a connection pool)."""
    capacity = servers + waiting_room
    figures = formulas.mmck(servers, capacity, lam, hold)
    if waiting_room == 0 or scv == 1.0:
        if scv != 1.0 and waiting_room > 0:
            notes.append("M/M/c/K assumes exponential service")
    else:
        figures = _approximate(figures)
        notes.append("M/M/c/K with non-exponential service (approximate)")
    if blocking_holds or (instances > 1 and waiting_room != tier.max_queue):
        figures = _approximate(figures)
    if instances > 1 and tier.balancing != "random":
        figures = _approximate(figures)
        notes.append(f"{tier.balancing} balancing treated as random splitting")
    return figures


def _open_figures(
    tier: Tier, servers: int, instances: int, total: float, hold: float, scv: float
) -> formulas.QueueFigures:
    """A stable station with an unbounded waiting room, by how its instances are balanced."""
    balancing = tier.balancing
    lam = total / instances  # per instance
    if instances > 1 and balancing == "round_robin" and servers == 1 and scv == 1.0:
        sigma = formulas.round_robin_sigma(instances, lam, hold)
        mu = 1.0 / hold
        rate = mu * (1.0 - sigma)
        return formulas.QueueFigures(
            utilization=lam * hold,
            p_wait=sigma,
            mean_wait=sigma / rate,
            mean_sojourn=1.0 / rate,
            method=f"E{instances}/M/1 (round robin, GI/M/1)",
            exact=True,
            throughput=lam,
            wait_survival=lambda t: sigma * math.exp(-rate * t),
            sojourn_survival=lambda t: math.exp(-rate * t),
        )
    if instances > 1 and balancing == "round_robin":
        return formulas.mgc_approx(servers, lam, hold, scv, scv_arrival=1.0 / instances)
    if instances > 1 and balancing == "power_of_two" and servers == 1:
        mean = formulas.jsq_d_mean_sojourn(lam * hold, 2, hold)
        return formulas.QueueFigures(
            utilization=lam * hold,
            p_wait=(lam * hold) ** 2,
            mean_wait=mean - hold,
            mean_sojourn=mean,
            method="JSQ(2) mean-field limit (approximate for few instances)",
            exact=False,
            throughput=lam,
        )
    if instances > 1 and balancing in ("least_connections", "power_of_two"):
        pooled = formulas.mgc_approx(servers * instances, total, hold, scv)
        return formulas.QueueFigures(
            **{
                **pooled.__dict__,
                "method": f"{balancing} as one pooled M/G/{servers * instances} "
                "queue (an optimistic approximation)",
                "exact": False,
            }
        )
    return formulas.mgc_approx(servers, lam, hold, scv)


def _station(
    tier: Tier,
    rates: np.ndarray,
    work_means: np.ndarray,
    work_second: np.ndarray,
    holding: np.ndarray,
    instances: int,
    capacity_cap: int | None,
    holding_second: np.ndarray | None = None,
) -> StationResult:
    """Solve `instances` identical servers of `tier` receiving `rates[k]` per class in total."""
    total = float(rates.sum())
    servers = min(tier.concurrency, tier.usable_workers)  # a partitioned queue's are capped
    if _partition_fifos(tier) is not None:
        servers = 1  # each partition is consumed by one worker at a time
    if capacity_cap is not None:
        servers = max(1, min(servers, capacity_cap // max(instances, 1)))
    if total <= 0 or instances == 0:
        return StationResult(
            arrival_rate=0.0, instances=instances, figures=None, holding_time=0.0, work_time=0.0
        )
    work, hold, scv, blocking_holds = _service_mix(
        rates, work_means, work_second, holding, holding_second
    )
    notes: list[str] = []
    if blocking_holds:
        notes.append(
            "blocking workers: service is the holding time (work + calls), its variance the sum "
            "of its parts' (work, waits and calls taken as independent)"
            if holding_second is not None
            else "blocking workers: service is the holding time (work + calls), as exponential"
        )
    if per_message(tier) > 1:
        notes.append(
            f"batch consumers: a message costs 1/{per_message(tier)} of a batch's work and calls "
            "(full batches: the capacity bound; at light load batches are partial, and the "
            "linger is not in the waits), approx."
        )
    lam = total / instances  # per instance

    def solved(figures: formulas.QueueFigures | None, **extra: Any) -> StationResult:
        return StationResult(
            arrival_rate=total,
            instances=instances,
            figures=figures,
            holding_time=hold,
            work_time=work,
            notes=notes,
            **extra,
        )

    if hold <= 0.0:
        return solved(_no_queueing(lam))
    rho = lam * hold / servers
    waiting_room = _pool_waiting_room(tier, servers, instances)
    if waiting_room is not None:
        notes.append(
            "the connection pool bounds the calls: M/M/c/K with c = min(workers, pool.size), "
            "K = pool.size + max_waiting"
        )
    else:
        waiting_room = tier.max_queue
    if waiting_room is not None:
        return solved(
            _finite_room_figures(
                tier, servers, instances, lam, hold, scv, waiting_room, blocking_holds, notes
            )
        )
    if rho >= 1.0:
        return solved(None, unstable_rho=rho)
    figures = _open_figures(tier, servers, instances, total, hold, scv)
    return solved(_approximate(figures) if blocking_holds else figures)


def _partition_fifos(tier: Tier) -> int | None:
    """The partitions of a queue whose every partition has a consumer free for it (partitions
    at most its workers, one message at a time, no `max_depth`): each partition is then its own
    FIFO with one worker, fed every N-th message (round robin), so the queue is N separate
    single-worker stations, not one M/M/c (docs/dynamic.md#partitions). None otherwise."""
    if tier.kind != "queue" or tier.partitions is None or tier.batch_size > 1:
        return None
    if tier.max_queue is not None or tier.partitions > tier.workers:
        return None
    return tier.partitions


def capacity_key(tier: Tier, group: str = "instances") -> str:
    """The scenario key that adds capacity to `tier` (to the station group `group` of a
    database): what a suggestion to add capacity names, valid for that tier type."""
    if tier.kind == "queue":
        return "consumers"
    if tier.kind == "database":
        if tier.pool is not None and tier.pool.size < tier.workers:
            return "pool.size"
        return "replicas" if group == "replicas" else "instances"
    return "instances"


def _suggestion(tier: Tier, group: str) -> str:
    """`--set tiers.orders.consumers=...`, with the value that would bring rho below 1."""
    return f"--set tiers.{tier.name}.{capacity_key(tier, group)}=..."


def _station_capacity(tier: Tier, station: StationResult) -> float:
    """Requests per second an overloaded station group completes: offered / rho."""
    if station.unstable_rho:
        return station.arrival_rate / station.unstable_rho
    return tier.usable_workers / station.holding_time if station.holding_time else math.inf


def _quote_overloaded_at_capacity(
    model: Model, overloaded: list[dict[str, Any]], tiers_out: dict[str, Any], total_open: float
) -> None:
    """An overloaded tier of one station group shows as `max_rate` its capacity in the mix's
    requests per second (capacity x open rate / the tier's offered rate), not its bound at the
    overloaded load, which counts waits with no steady state; only with open traffic alone."""
    if total_open <= 0 or any(c.is_closed for c in model.classes):
        return
    for entry in overloaded:
        figures = tiers_out[entry["tier"]]
        if figures.get("groups") or not figures["offered_rate"]:
            continue
        figures["max_rate"] = _round(entry["capacity"] * total_open / figures["offered_rate"])


#: Halvings of the load when finding an overloaded station's capacity: to 2^-14 (0.006%) of the
#: offered load, far inside the formulas' own error, at 14 solves of the network.
_CAPACITY_STEPS = 14


#: Overloaded station groups whose capacity `_capacity_when_stable` finds, the most overloaded
#: first; the others quote offered / rho at the overloaded load. The searches share their
#: solves of the network, so an overloaded chain of 1,000 blocking tiers costs at most
#: this many searches, not one per tier (181 of 300 tiers took 7 minutes).
_CAPACITY_SEARCHES = 4


def _overloaded_capacities(
    net: _Network, unstable: list[tuple[Tier, str, StationResult]]
) -> dict[tuple[int, str], float]:
    """Per overloaded station group (tier index, group label), the requests per second it
    serves at its capacity (`_capacity_when_stable` for the most overloaded, else offered /
    rho at the overloaded load)."""
    points: dict[float, _FixedPoint] = {}
    searched = _most_overloaded(unstable)
    return {
        (tier.index, label): (
            _capacity_when_stable(net, tier, label, points)
            if (tier.index, label) in searched
            else None
        )
        or _station_capacity(tier, st)
        for tier, label, st in unstable
    }


def _most_overloaded(unstable: list[tuple[Tier, str, StationResult]]) -> set[tuple[int, str]]:
    ranked = sorted(unstable, key=lambda found: -(found[2].unstable_rho or 0.0))
    return {(tier.index, label) for tier, label, _ in ranked[:_CAPACITY_SEARCHES]}


def _unsearched_note(unstable: list[tuple[Tier, str, StationResult]]) -> list[str]:
    """A note naming how many overloaded groups quote offered / rho as their capacity."""
    left = len(unstable) - len(_most_overloaded(unstable))
    if left <= 0:
        return []
    return [
        f"{left} more overloaded station groups beyond the {_CAPACITY_SEARCHES} most overloaded "
        "quote as their capacity their offered rate / load at the overloaded load (a bound "
        "counting waits that have no steady state), not the load at which they turn stable"
    ]


def _capacity_when_stable(
    net: _Network, tier: Tier, label: str, points: dict[float, _FixedPoint] | None = None
) -> float | None:
    """What the station group `label` of `tier` serves at its capacity (requests per second
    into it): its bound (arrivals / load) at the heaviest load along the mix (every open class
    scaled alike) at which it is still stable, its callees at the load it would pass them, not
    at the overloaded load, whose waits have no steady state (docs/cli.md, `capsim solve`).
    None when it is unstable at any open load (closed traffic alone overloads it)."""

    solved = {} if points is None else points  # the network at each factor, shared

    def state(factor: float) -> tuple[bool, float]:
        if factor not in solved:
            solved[factor] = _fixed_point(
                replace(net, open_rate=net.open_rate * factor, at_peak=net.at_peak * factor)
            )
        point = solved[factor]
        station = dict(point.stations[tier.index])[label]
        if station.unstable_rho is not None:
            return False, station.arrival_rate
        figures = station.figures
        # Its bound there, arrivals / load: exact at once for a tier whose holding time does
        # not grow with the load, and the bisection's limit for one whose does.
        load = figures.utilization if figures is not None else 0.0
        return True, station.arrival_rate / load if load > 0 else station.arrival_rate

    low, high, capacity = 0.0, 1.0, None
    for _ in range(_CAPACITY_STEPS):
        middle = 0.5 * (low + high)
        stable, rate = state(middle)
        if stable:
            low, capacity = middle, rate
        else:
            high = middle
    return capacity


def _loss(tier: Tier, groups: list[tuple[str, StationResult]], k: int) -> float:
    """The share of class k's visits to `tier` turned away (a full waiting room, Erlang B):
    the blocking probability of the group it goes to (a database's by the read ratio)."""
    blocked = [st.figures.p_block if st.figures is not None else 0.0 for _, st in groups]
    if len(groups) == 2:
        read = tier.work[k].read_ratio
        return (1 - read) * blocked[0] + read * blocked[1]
    return blocked[0] if blocked else 0.0


def _lone_process_station(model: Model, tier: Tier, visits: np.ndarray) -> TrafficClass | None:
    """The batch or MMPP class whose arrivals reach `tier` intact at a single FIFO server, if
    the tier's only traffic is that class's first visit (where M^X/G/1 or MMPP/M/1 is exact)."""
    visitors = [c for c in model.classes if visits[c.index, tier.index] > 0]
    if len(visitors) != 1 or not isinstance(visitors[0].process, BatchArrivals | MmppArrivals):
        return None
    traffic = visitors[0]
    single = tier.servers == 1 and tier.concurrency == 1 and tier.max_queue is None
    if traffic.entry != tier.index or visits[traffic.index, tier.index] != 1.0 or not single:
        return None
    if isinstance(traffic.process, MmppArrivals):
        service = tier.work[traffic.index].service_time
        if service.kind != "exponential":
            return None
    return traffic


def _exact_process_figures(
    traffic: TrafficClass, mean_service: float, second_service: float
) -> formulas.QueueFigures:
    process = traffic.process
    if isinstance(process, MmppArrivals):
        return formulas.mmpp2_m1(process.rates, process.mean_sojourn, mean_service)
    assert isinstance(process, BatchArrivals)
    return formulas.batch_poisson_mg1(
        process.batch_rate,
        process.size_mean,
        process.size_second_moment,
        mean_service,
        second_service,
    )


def _account_for_arrival_processes(
    model: Model,
    visits: np.ndarray,
    means: np.ndarray,
    seconds: np.ndarray,
    holding: np.ndarray,
    stations: dict[int, list[tuple[str, StationResult]]],
) -> None:
    """Batches or an MMPP alone at a single server get exact figures (M^X/G/1, MMPP/M/1);
    anywhere else a trace, an MMPP or batches are Poisson at their mean rate, said in a note."""
    for tier in model.tiers:
        groups = stations[tier.index]
        lone = _lone_process_station(model, tier, visits)
        k = lone.index if lone is not None else -1
        i = tier.index
        if lone is not None and len(groups) == 1 and holding[i, k] == means[i, k]:
            station = groups[0][1]
            if station.figures is None and station.unstable_rho is None:
                continue
            try:
                station.figures = _exact_process_figures(
                    lone, float(means[i, k]), float(seconds[i, k])
                )
                station.unstable_rho = None
            except ValueError:
                station.figures = None
            continue
        for traffic in model.classes:
            if traffic.process is None or visits[traffic.index, tier.index] <= 0:
                continue
            note = (
                f"{traffic.arrivals} arrivals of class '{traffic.name}' counted as Poisson at "
                "their mean rate (no formula for them here)"
            )
            for _, station in groups:
                if note not in station.notes:
                    station.notes.append(note)


def _arrival_process_notes(
    model: Model, stations: dict[int, list[tuple[str, StationResult]]]
) -> list[str]:
    """One sentence per class whose arrivals solve cannot model exactly."""
    notes = []
    for traffic in model.classes:
        if traffic.process is None:
            continue
        approximated = any(
            any(traffic.name in note for _, st in stations[t.index] for note in st.notes)
            for t in model.tiers
        )
        if approximated:
            notes.append(
                f"class '{traffic.name}' has {traffic.arrivals} arrivals: solve has no formula for "
                f"them here and treats them as Poisson at their mean rate "
                f"({traffic.rate or 0.0:.4g}/s), which can be far off for bursty traffic; "
                "`capsim run` simulates them"
            )
    return notes


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class _Network:
    """The model's traffic equations and per-class service moments, the input of every pass."""

    model: Model
    visits: np.ndarray  # [class, tier] mean visits per request
    open_rate: np.ndarray  # [class] requests per second of the open classes (each at its peak)
    # [class, tier] the open classes' rates at the moment the tier is busiest (load_peaks.py):
    # what the tier is solved at, so that class parts taking turns load it once
    at_peak: np.ndarray
    total_open: float  # the highest total open rate over the run
    means: np.ndarray  # [tier, class] mean own work
    seconds: np.ndarray  # [tier, class] second moment of own work
    # [class, tier] visits on the request's own (synchronous) path, of a request that gets there
    # (as if no limit refused it: the class's losses chain each tier's share)
    own_visits: np.ndarray
    # [tier] share of the requests reaching the tier that its rate limit lets through (1 without)
    passing: np.ndarray
    # [class, tier] visits as if no rate limit refused anything: the tiers' bounds (`max_rate`)
    unlimited_visits: np.ndarray
    # per (class, call) site with a timeout, retries or a callee with steady errors: its
    # attempts at the last pass's waits (`_with_attempts`)
    attempts: Attempts = field(default_factory=dict)
    # [tier] the share of its finished work a fault lasting the whole run answers with an error
    errors: dict[int, float] = field(default_factory=dict)
    # [class, tier] the variance of each tier's answer time at the last sweep
    spread: np.ndarray | None = None

    @property
    def closed(self) -> list[TrafficClass]:
        return [c for c in self.model.classes if c.is_closed]


@dataclass
class _FixedPoint:
    """Where the iteration between waits and holding times settled."""

    stations: dict[int, list[tuple[str, StationResult]]]
    holding: np.ndarray  # [tier, class] mean time a worker is held (work, plus calls if blocking)
    per_class_response: np.ndarray  # [class, tier] mean wait + own work
    closed_rate: np.ndarray  # [class] throughput of the closed classes
    closed_solutions: dict[int, formulas.ClosedFigures]


def through_rate_limits(model: Model, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(visits [class, tier], passing [tier]) at `rate` requests per second per class ([class],
    or [class, tier]: each tier's own moment): a tier's rate limit lets through at most
    `rate_limit.rate` of the requests reaching it (one token bucket shared by its instances and
    classes), refuses the rest, and only those it lets through make its calls; a limit behind
    another sees what the first lets through."""
    if rate.ndim == 1:
        rate = np.repeat(rate[:, None], len(model.tiers), axis=1)
    passing = np.ones(len(model.tiers))
    limited = [tier for tier in model.tiers if tier.rate_limit is not None]
    visits = expected_visits(model)
    for _ in range(100):  # exact after one pass per limit in a chain of limits
        shares = {tier.index: float(passing[tier.index]) for tier in limited}
        visits = expected_visits(model, passing=shares)
        new = passing.copy()
        for tier in limited:
            assert tier.rate_limit is not None
            reaching = float(rate[:, tier.index] @ visits[:, tier.index])
            new[tier.index] = min(1.0, tier.rate_limit.rate / reaching) if reaching > 0 else 1.0
        if np.allclose(new, passing, rtol=1e-12, atol=0.0):
            break
        passing = new
    return visits, passing


def _open_rates(model: Model) -> np.ndarray:
    """[class] requests per second of the open classes (at a profile's peak), 0 for closed."""
    return np.array([c.peak_rate(model.horizon) if not c.is_closed else 0.0 for c in model.classes])


def rate_limited_arrivals(model: Model) -> dict[str, float]:
    """Per rate-limited tier, the requests per second reaching it at the model's open load
    (what the limits before it let through), at its busiest moment."""
    rates = open_rates_at_tier_peaks(model, expected_visits(model))
    visits, _ = through_rate_limits(model, rates)
    return {
        tier.name: float(rates[:, tier.index] @ visits[:, tier.index])
        for tier in model.tiers
        if tier.rate_limit is not None
    }


def served_shares(model: Model) -> dict[str, float]:
    """Per tier, the share of the work it would get without rate limits that it gets through
    them at the model's open load (its own limit included; own work weighs the classes): 1
    where no limit refuses anything on the way to it."""
    unlimited = expected_visits(model)
    rates = open_rates_at_tier_peaks(model, unlimited)
    visits, passing = through_rate_limits(model, rates)
    shares: dict[str, float] = {}
    for tier in model.tiers:
        work = np.array([tier.work[k].service_time.mean for k in range(len(model.classes))])
        at_peak = rates[:, tier.index]
        offered = float(np.sum(at_peak * unlimited[:, tier.index] * work))
        served = float(np.sum(at_peak * visits[:, tier.index] * work)) * passing[tier.index]
        shares[tier.name] = min(1.0, served / offered) if offered > 0 else 1.0
    return shares


def _network(model: Model) -> _Network:
    n_classes = len(model.classes)
    open_rate = _open_rates(model)
    unlimited = expected_visits(model)
    at_peak = open_rates_at_tier_peaks(model, unlimited)
    visits, passing = through_rate_limits(model, at_peak)
    shares = {i: float(share) for i, share in enumerate(passing) if share < 1.0}
    return _Network(
        model=model,
        visits=visits,
        open_rate=open_rate,
        at_peak=at_peak,
        total_open=peak_open_rate(model),
        # Per message: a batch consumer's batch work shared by its (full) batch's messages.
        means=np.array(
            [
                [t.work[k].service_time.mean / per_message(t) for k in range(n_classes)]
                for t in model.tiers
            ]
        ),
        seconds=np.array(
            [
                [t.work[k].service_time.moment(2) / per_message(t) ** 2 for k in range(n_classes)]
                for t in model.tiers
            ]
        ),
        own_visits=expected_visits(model, synchronous=True),
        passing=passing,
        unlimited_visits=unlimited if shares else visits,
        errors=steady_errors(model),
    )


def _solve_stations(
    net: _Network, rates: np.ndarray, holding: np.ndarray
) -> dict[int, list[tuple[str, StationResult]]]:
    """Every tier's station groups (a database with replicas: primaries and replicas), solved."""
    return {tier.index: _solve_tier(net, tier, rates, holding) for tier in net.model.tiers}


def _solve_tier(
    net: _Network,
    tier: Tier,
    rates: np.ndarray,
    holding: np.ndarray,
    holding_second: np.ndarray | None = None,
) -> list[tuple[str, StationResult]]:
    """One tier's station groups, solved at `rates` [class, tier] with `holding` [tier, class]
    (and its second moment `holding_second`, [tier, class], where known)."""
    cap = tier.pool.size if tier.pool is not None else None
    if tier.kind == "database" and tier.replicas > 0:
        n_classes = len(net.model.classes)
        read = np.array([tier.work[k].read_ratio for k in range(n_classes)])
        groups = [
            ("primaries", rates[:, tier.index] * (1 - read), tier.instances),
            ("replicas", rates[:, tier.index] * read, tier.replicas),
        ]
    else:
        groups = [("instances", rates[:, tier.index], _partition_fifos(tier) or tier.servers)]
    i = tier.index
    return [
        (
            label,
            _station(
                tier,
                r,
                net.means[i],
                net.seconds[i],
                holding[i],
                count,
                cap,
                None if holding_second is None else holding_second[i],
            ),
        )
        for label, r, count in groups
    ]


def _tier_responses(
    net: _Network, stations: dict[int, list[tuple[str, StationResult]]]
) -> np.ndarray:
    """[class, tier]: wait + own work per tier and class (a database mixes its groups by read
    ratio)."""
    model = net.model
    response = np.zeros((len(model.classes), len(model.tiers)))
    for tier in model.tiers:
        response[:, tier.index] = _tier_response(net, tier, stations[tier.index])
    return response


def _tier_response(
    net: _Network, tier: Tier, groups_solved: list[tuple[str, StationResult]]
) -> np.ndarray:
    """[class]: wait + own work at one tier (a database mixes its groups by read ratio)."""
    n_classes = len(net.model.classes)
    response = np.zeros(n_classes)
    for k in range(n_classes):
        if len(groups_solved) == 2:
            r = tier.work[k].read_ratio
            weights = [1 - r, r]
        else:
            weights = [1.0]
        wait = 0.0
        for w, (_, st) in zip(weights, groups_solved, strict=True):
            if st.figures is not None:
                wait += w * st.figures.mean_wait
        response[k] = wait + net.means[tier.index, k]
    return response


def _sweep_stations(
    net: _Network, rates: np.ndarray, per_class_response: np.ndarray, order: list[int]
) -> tuple[np.ndarray, dict[int, list[tuple[str, StationResult]]]]:
    """(holding [tier, class], stations): every tier solved once, callees before their callers,
    each blocking tier's holding time taken from its callees' responses of this same pass. A
    call graph without loops then settles in one pass and a second that confirms it, where
    solving every tier on the last pass's responses took one pass per tier of the longest
    chain of blocking calls (a chain of 1,000 such tiers: 1,000 passes over 1,000 tiers)."""
    model = net.model
    n_classes = len(model.classes)
    # [class, tier] wait + work + calls
    answered = _answer_times(model, per_class_response, net.attempts)
    # [class, tier] its variance; a tier not yet solved this pass (inside a loop of calls) is
    # taken as exponential until it is
    spread = answered**2
    holding = np.zeros((len(model.tiers), n_classes))
    holding_second = np.zeros((len(model.tiers), n_classes))
    work_var = np.maximum(net.seconds - net.means**2, 0.0)  # [tier, class]
    stations: dict[int, list[tuple[str, StationResult]]] = {}
    for i in order:
        tier = model.tiers[i]
        moments = [
            _calls_moments(
                model, tier.work[k].calls, answered[k], spread[k], _of_class(net.attempts, k)
            )
            for k in range(n_classes)
        ]
        calls = np.array([mean for mean, _ in moments])
        calls_var = np.array([var for _, var in moments])
        scale = per_message(tier)
        holding[i] = net.means[i] + (calls / scale if tier.blocking else 0.0)
        held_var = work_var[i] + (calls_var / scale**2 if tier.blocking else 0.0)
        holding_second[i] = held_var + holding[i] ** 2
        stations[i] = _solve_tier(net, tier, rates, holding, holding_second)
        answered[:, i] = _tier_response(net, tier, stations[i]) + calls
        spread[:, i] = _wait_second(tier, stations[i]) + work_var[i] + calls_var
    net.spread = spread
    return holding, stations


def _wait_second(tier: Tier, groups: list[tuple[str, StationResult]]) -> np.ndarray:
    """[class] the variance of the wait at a tier (a database mixes its groups by read ratio),
    each group's wait an atom at zero and an exponential tail with its mean and P(wait): exact
    for M/M/c and E_N/M/1, the approximation the other formulas' percentiles make."""
    seconds = [_station_wait_second(st) for _, st in groups]
    means = [st.figures.mean_wait if st.figures is not None else 0.0 for _, st in groups]
    out = np.zeros(len(tier.work))
    for k, work in enumerate(tier.work):
        weights = [1 - work.read_ratio, work.read_ratio] if len(groups) == 2 else [1.0]
        second = sum(w * m2 for w, m2 in zip(weights, seconds, strict=True))
        mean = sum(w * m for w, m in zip(weights, means, strict=True))
        out[k] = max(second - mean * mean, 0.0)
    return out


def _station_wait_second(station: StationResult) -> float:
    """E[W^2] of a station's wait: 2 mean^2 / P(wait) (an atom and an exponential tail)."""
    figures = station.figures
    if figures is None or figures.mean_wait <= 0 or figures.p_wait <= 0:
        return 0.0
    return 2.0 * figures.mean_wait**2 / figures.p_wait


def _calls_moments(
    model: Model,
    calls: tuple[Step, ...],
    response: np.ndarray,
    spread: np.ndarray,
    attempts: dict[Call, CallAttempts] | None = None,
) -> tuple[float, float]:
    """(mean, variance) of the time in `calls` when tier i answers a caller in `response[i]`
    on average with variance `spread[i]`: the steps one after another, independent; a call
    made with probability p, r times in a row, has mean p r m and second moment
    p (r v + r^2 m^2); a choice mixes its options; a parallel group counts its slowest
    branch's (by the mean, as `_calls_time` does). A call site with `attempts` takes the mean
    of `_attempted` and the variance of its attempts, each cut at the timeout (`held`)."""

    def call_moments(tier: int, rtt: float, found: CallAttempts | None) -> tuple[float, float]:
        callee = model.tiers[tier]
        if callee.is_async:
            publish = callee.publish_time
            mean = publish.mean if publish is not None else 0.0
            var = publish.moment(2) - mean * mean if publish is not None else 0.0
            return mean + rtt, max(var, 0.0)
        if found is not None:
            cut = found.admitted * found.held
            return (
                _attempted(found, float(response[tier]), rtt),
                found.attempts * cut * cut * float(spread[tier]),
            )
        return float(response[tier]) + rtt, float(spread[tier])

    def step_moments(step: Step) -> tuple[float, float]:
        """(mean, second moment) of one step's time."""
        if isinstance(step, Call):
            found = (attempts or {}).get(step)
            mean, var = call_moments(step.tier, step.network_delay, found)
            p, r = step.probability, step.repeat
            return p * r * mean, p * (r * var + (r * mean) ** 2)
        if isinstance(step, OneOf):
            delays = step.network_delays or (0.0,) * len(step.options)
            parts = [
                (p, call_moments(t, rtt, None))
                for (t, p), rtt in zip(step.options, delays, strict=True)
            ]
            return (
                sum(p * m for p, (m, _) in parts),
                sum(p * (v + m * m) for p, (m, v) in parts),
            )
        assert isinstance(step, Parallel)
        return max((step_moments(b) for b in step.branches), default=(0.0, 0.0))

    total_mean = total_var = 0.0
    for step in calls:
        mean, second = step_moments(step)
        total_mean += mean
        total_var += max(second - mean * mean, 0.0)
    return total_mean, total_var


def _answer_times(
    model: Model, per_class_response: np.ndarray, attempts: Attempts | None = None
) -> np.ndarray:
    """[class, tier]: the time tier i takes to answer a caller (wait, work and calls)."""
    return np.array(
        [
            _mean_response(model, k, per_class_response[k], attempts)[0]
            for k in range(len(model.classes))
        ]
    )


def _all_callees_first(model: Model) -> list[int]:
    """The tiers, each after every tier it calls for any class (but inside a loop of calls)."""
    successors = {
        tier.index: sorted({c for work in tier.work for c in step_callees(work.calls)})
        for tier in model.tiers
    }
    components = strongly_connected(range(len(model.tiers)), successors)
    return [index for component in reversed(components) for index in component]


def _solve_closed_classes(
    net: _Network,
    stations: dict[int, list[tuple[str, StationResult]]],
    holding: np.ndarray,
    per_class_response: np.ndarray,
    closed_rate: np.ndarray,
    closed_solutions: dict[int, formulas.ClosedFigures],
) -> None:
    """Closed classes: exact single-class product form over the capacity the open traffic
    leaves (through blocking callers: `_closed_loop`); updates `closed_rate` and
    `closed_solutions` in place."""
    model, visits = net.model, net.visits
    for traffic in net.closed:
        k = traffic.index
        if _holds_through_calls(net, k):
            loop = _closed_loop(net, holding, per_class_response, closed_rate, k)
            closed_rate[k] = loop.throughput
            closed_solutions[k] = loop
            continue
        demands, servers_list = [], []
        for tier in model.tiers:
            open_util = (
                sum(
                    st.arrival_rate * st.holding_time / max(st.instances * tier.concurrency, 1)
                    for _, st in stations[tier.index]
                )
                - closed_rate[k] * visits[k, tier.index] * holding[tier.index, k] / tier.workers
            )
            demand = visits[k, tier.index] * holding[tier.index, k]
            demands.append(demand / max(1e-9, 1.0 - min(open_util, 0.999)))
            servers_list.append(tier.workers)
        think = traffic.think_time.mean if traffic.think_time is not None else 0.0
        solution = formulas.closed_network(demands, servers_list, think, int(traffic.users or 0))
        closed_rate[k] = solution.throughput
        closed_solutions[k] = solution


def _holds_through_calls(net: _Network, k: int) -> bool:
    """Whether class k visits a tier whose workers stay held through synchronous calls: its
    loop is then not a product-form network (a caller's worker and its callee's are held at
    once), and the callee's time is inside the caller's holding time."""
    model = net.model
    return any(
        tier.blocking
        and net.visits[k, tier.index] > 0
        and any(not model.tiers[c].is_async for c in step_callees(tier.work[k].calls))
        for tier in model.tiers
    )


#: Passes over the tiers within one trial rate of a closed loop (each a Gauss-Seidel sweep).
LOOP_PASSES = 100


def _closed_loop(
    net: _Network,
    holding: np.ndarray,
    per_class_response: np.ndarray,
    closed_rate: np.ndarray,
    k: int,
) -> formulas.ClosedFigures:
    """Closed class k through blocking callers: its throughput X from Little's law over the
    loop, users = X (think time + R(X)), where R(X) is the response time along the call graph
    with the class offered at X and every tier solved as the open stations are (a blocking
    worker held through its calls' responses, each callee's time counted once, inside its
    caller's). R grows with X and is infinite where a station has no steady state, so X is
    found by bisection below the first rate at which one saturates (docs/cli.md)."""
    traffic = net.model.classes[k]
    users = int(traffic.users or 0)
    think = traffic.think_time.mean if traffic.think_time is not None else 0.0
    others = (net.at_peak + closed_rate[:, None]) * net.visits * net.passing
    n_tiers = len(net.model.tiers)
    if users <= 0:
        return formulas.ClosedFigures(0.0, 0.0, [0.0] * n_tiers, [0.0] * n_tiers, exact=False)

    order = _all_callees_first(net.model)

    def response(x: float) -> tuple[float, np.ndarray]:
        rates = others.copy()
        rates[k] = x * net.visits[k] * net.passing
        answered = per_class_response.copy()
        hold = holding
        for _pass in range(LOOP_PASSES):  # a call graph without loops: two passes
            hold, stations = _sweep_stations(net, rates, answered, order)
            if any(st.unstable_rho is not None for g in stations.values() for _, st in g):
                return math.inf, hold
            new = _tier_responses(net, stations)
            settled = np.allclose(new, answered, rtol=1e-9, atol=1e-15)
            answered = new
            if settled:
                break
        total, _, _ = _mean_response(net.model, k, answered[k], net.attempts)
        return float(total[traffic.entry]), hold

    throughput = _loop_throughput(users, think, lambda x: response(x)[0], _loop_ceiling(net, k))
    _, hold = response(throughput)
    busy = throughput * net.visits[k] * hold[:, k]
    workers = np.array([max(t.workers, 1) for t in net.model.tiers], dtype=float)
    return formulas.ClosedFigures(
        throughput=throughput,
        response_time=users / throughput - think if throughput > 0 else 0.0,
        queue=list(busy),
        utilization=list(busy / workers),
        exact=False,
        loop=True,
    )


def _loop_ceiling(net: _Network, k: int) -> float:
    """A rate above which some tier visited by class k cannot keep up with its own work."""
    ceilings = [
        max(tier.workers, 1) / (net.visits[k, tier.index] * net.means[tier.index, k])
        for tier in net.model.tiers
        if net.visits[k, tier.index] * net.means[tier.index, k] > 0
    ]
    return min(ceilings, default=math.inf)


def _loop_throughput(
    users: int, think: float, response: Callable[[float], float], ceiling: float
) -> float:
    """The X at which users = X (think + response(X)), by bisection on [0, ceiling)."""
    if math.isinf(ceiling):
        ceiling = users / think if think > 0 else 1e12
    low, high = 0.0, ceiling
    for _ in range(100):
        middle = 0.5 * (low + high)
        if middle * (think + response(middle)) < users:
            low = middle
        else:
            high = middle
        if high - low <= 1e-9 * high:
            break
    return low


def _fixed_point(net: _Network) -> _FixedPoint:
    """Blocking workers hold through their calls, so waits feed back into holding times, and
    closed classes' throughput into the open stations' load: iterate to the fixed point."""
    model = net.model
    closed = net.closed
    closed_rate = np.zeros(len(model.classes))
    closed_solutions: dict[int, formulas.ClosedFigures] = {}
    per_class_response = net.means.T.copy()  # first pass: no waiting anywhere
    stations: dict[int, list[tuple[str, StationResult]]] = {}
    holding = np.zeros((len(model.tiers), len(model.classes)))
    retried = _retried_callees(model)
    sites = attempt_sites(model)
    order = _all_callees_first(model)
    for _iteration in range(200):
        if closed and any(t.rate_limit is not None for t in model.tiers):
            _limit_the_closed_traffic_too(net, closed_rate)
        # [class, tier]: what each tier serves (a rate-limited one: the requests it lets through)
        rates = (net.at_peak + closed_rate[:, None]) * net.visits * net.passing[None, :]
        holding, stations, new_response = _settled_sweep(net, rates, per_class_response, order)
        settled = np.allclose(new_response, per_class_response, rtol=1e-9, atol=1e-15)
        if (retried or sites) and _with_retried_attempts(
            net, stations, retried, sites, new_response
        ):
            settled = False
        per_class_response = new_response
        if not closed:
            if settled:
                break
            continue
        previous = closed_rate.copy()
        _solve_closed_classes(
            net, stations, holding, per_class_response, closed_rate, closed_solutions
        )
        if settled and np.allclose(previous, closed_rate, rtol=1e-10):
            break
    return _FixedPoint(stations, holding, per_class_response, closed_rate, closed_solutions)


def _settled_sweep(
    net: _Network, rates: np.ndarray, responses: np.ndarray, order: list[int]
) -> tuple[np.ndarray, dict[int, list[tuple[str, StationResult]]], np.ndarray]:
    """Holding times, stations and responses at these rates, swept until the responses settle
    (a call graph without loops: two passes; a tier calling itself back: its holding time
    includes its own response, a geometric series that one sweep per fixed-point iteration
    would creep towards for hundreds of iterations while closed classes' rates lag behind)."""
    for _pass in range(LOOP_PASSES):
        holding, stations = _sweep_stations(net, rates, responses, order)
        _account_for_arrival_processes(
            net.model, net.visits, net.means, net.seconds, holding, stations
        )
        new = _tier_responses(net, stations)
        if np.allclose(new, responses, rtol=1e-9, atol=1e-15):
            break
        if any(st.unstable_rho is not None for g in stations.values() for _, st in g):
            break
        responses = new
    return holding, stations, new


def _retried_callees(model: Model) -> set[int]:
    """The tiers some call with a `retry` goes to (in a one_of or parallel group too)."""
    retried: set[int] = set()
    pending = [step for tier in model.tiers for work in tier.work for step in work.calls]
    while pending:
        step = pending.pop()
        if isinstance(step, Call) and step.retry is not None:
            retried.add(step.tier)
        elif isinstance(step, Parallel):
            pending.extend(step.branches)
    return retried


def _attempt_loss(groups: list[tuple[str, StationResult]]) -> float:
    """The share of the attempts reaching a tier that its full waiting room turns away."""
    offered = sum(st.arrival_rate for _, st in groups)
    if offered <= 0:
        return 0.0
    blocked = sum(st.arrival_rate * st.figures.p_block for _, st in groups if st.figures)
    return blocked / offered


def _with_retried_attempts(
    net: _Network,
    stations: dict[int, list[tuple[str, StationResult]]],
    retried: set[int],
    sites: list[tuple[int, Call]],
    responses: np.ndarray,
) -> bool:
    """The visits with every retried call's expected attempts at its callee's loss now (an
    attempt turned away by a full waiting room, answered with an error or timed out is retried,
    docs/cli.md), and each call site's attempts (`net.attempts`); True when they moved."""
    loss = {i: _attempt_loss(stations[i]) for i in retried}
    table = _call_sites_attempts(net, stations, responses, sites)
    # A tier answering with an error makes no calls for that attempt (its work is done first).
    shares = {
        i: float(share) * (1.0 - net.errors.get(i, 0.0))
        for i, share in enumerate(net.passing)
        if share < 1.0 or net.errors.get(i, 0.0) > 0
    }
    visits = expected_visits(
        net.model,
        passing=shares,
        retry_loss=loss,
        call_failing={site: found.failing for site, found in table.items()},
    )
    moved = not np.allclose(visits, net.visits, rtol=1e-10, atol=1e-15) or any(
        site not in net.attempts
        or not math.isclose(
            found.attempts * found.held,
            net.attempts[site].attempts * net.attempts[site].held,
            rel_tol=1e-9,
            abs_tol=1e-15,
        )
        for site, found in table.items()
    )
    net.visits = visits
    net.attempts = table
    return moved


def _call_sites_attempts(
    net: _Network,
    stations: dict[int, list[tuple[str, StationResult]]],
    responses: np.ndarray,
    sites: list[tuple[int, Call]],
) -> Attempts:
    """Each call site's attempts at the callee's refusals, steady errors and response time
    (its tail on [0, timeout]: `_answer_tail`) now."""
    model = net.model
    answered = _answer_times(model, responses, net.attempts)
    spread = net.spread if net.spread is not None else answered**2
    table: Attempts = {}
    for k, call in sites:
        j = call.tier
        tail = None
        if call.timeout is not None:
            tail = _answer_tail(net, stations[j], k, j, answered, spread, call)
        table[k, call] = call_attempts(
            call,
            _attempt_loss(stations[j]),
            net.errors.get(j, 0.0),
            tail,
            float(answered[k, j]),
        )
    return table


def _answer_tail(
    net: _Network,
    groups: list[tuple[str, StationResult]],
    k: int,
    j: int,
    answered: np.ndarray,
    spread: np.ndarray,
    call: Call,
) -> tuple[np.ndarray, np.ndarray]:
    """(times, P(R > t)) of tier j's answer to class k on [0, timeout - round trip]: its wait
    (groups mixed by read ratio), then its own work's distribution where it makes no calls, else
    a gamma fit of work + calls."""
    model = net.model
    tier = model.tiers[j]
    work = tier.work[k]
    weights = [1 - work.read_ratio, work.read_ratio] if len(groups) == 2 else [1.0]
    p_wait = mean_wait = 0.0
    for w, (_, st) in zip(weights, groups, strict=True):
        if st.figures is not None:
            p_wait += w * st.figures.p_wait
            mean_wait += w * st.figures.mean_wait
    after = float(answered[k, j]) - mean_wait
    after_var = max(float(spread[k, j]) - _wait_second(tier, groups)[k], 0.0)
    leaf = not work.calls and per_message(tier) == 1
    assert call.timeout is not None
    return response_tail(
        max(call.timeout - call.network_delay, 0.0),
        p_wait,
        mean_wait,
        work.service_time if leaf else None,
        max(after, 0.0),
        after_var,
    )


def _call_loss(model: Model, k: int, callee: int, attempt_loss: float) -> float:
    """The share of class k's calls to `callee` that fail when each attempt fails with
    `attempt_loss`: every retry fails too (p^(1 + max)) where every call to it retries (the
    fewest retries of them counted), else the attempt's loss (independent attempts)."""
    if attempt_loss <= 0.0:
        return attempt_loss
    retries = [
        step.retry.max if step.retry is not None else 0
        for tier in model.tiers
        for step in _steps(tier.work[k].calls)
        if isinstance(step, Call) and step.tier == callee
    ]
    if not retries or min(retries) == 0:
        return attempt_loss
    return float(attempt_loss ** (1 + min(retries)))


def _retry_storm_notes(net: _Network, point: _FixedPoint) -> list[str]:
    """A sentence per tier that calls with a timeout and retries could keep overloaded: were
    every attempt to time out (a burst, a slow spell), each call would make all its attempts;
    where that is more work than the tier's workers do, the storm sustains itself (metastable,
    docs/dynamic.md), and solve's figures are the state without it."""
    model = net.model
    storm = {
        site: 1.0
        for site in net.attempts
        if site[1].timeout is not None and site[1].retry is not None
    }
    if not storm:
        return []
    visits = expected_visits(model, call_failing=storm)
    rates = (net.at_peak + point.closed_rate[:, None]) * visits
    notes = []
    for tier in sorted({model.tiers[call.tier] for _, call in storm}, key=lambda t: t.index):
        work = float(rates[:, tier.index] @ net.means[tier.index])
        if work >= tier.usable_workers:
            now = sum(st.arrival_rate for _, st in point.stations[tier.index])
            notes.append(
                f"{tier.name}: were its callers' attempts to time out (a burst, a slow spell), "
                f"their retries would offer it {float(rates[:, tier.index].sum()):,.1f}/s "
                f"(now {now:,.1f}/s), {work / tier.usable_workers:.2f} times what its workers "
                "do: a retry storm that sustains itself once started (metastable); these "
                "figures are the state without it. A retry budget or fewer retries bound it"
            )
    return notes


def _visit_failure(net: _Network, point: _FixedPoint, k: int, tier: Tier) -> float:
    """The share of class k's visits to `tier` that fail: where calls to it have timeouts,
    retries or meet its steady errors, their calls' failure (every attempt failed, weighted by
    the calls each site makes); else its refusals (`_call_loss`) and its steady errors."""
    sites = [
        (call.probability * call.repeat, found)
        for (c, call), found in net.attempts.items()
        if c == k and call.tier == tier.index
    ]
    weight = sum(w for w, _ in sites)
    if weight > 0:
        return sum(w * found.call_failure for w, found in sites) / weight
    refused = _call_loss(net.model, k, tier.index, _loss(tier, point.stations[tier.index], k))
    return 1.0 - (1.0 - refused) * (1.0 - net.errors.get(tier.index, 0.0))


def _steps(calls: tuple[Step, ...]) -> list[Step]:
    """The steps of `calls`, a parallel group's branches included."""
    found, pending = [], list(calls)
    while pending:
        step = pending.pop()
        found.append(step)
        if isinstance(step, Parallel):
            pending.extend(step.branches)
    return found


def _limit_the_closed_traffic_too(net: _Network, closed_rate: np.ndarray) -> None:
    """The rate limits' shares with the closed classes' throughput counted in (`_fixed_point`)."""
    net.visits, net.passing = through_rate_limits(net.model, net.at_peak + closed_rate[:, None])


def _mix(net: _Network, point: _FixedPoint) -> np.ndarray:
    """[class, tier]: each tier's traffic at its busiest moment, per request of the rate the
    bounds are in: the highest total open rate over the run when there is open traffic (what
    `saturate` and `--load` scale, each client counted once; a closed class is a population that
    only waits longer as a tier fills, and does not change when the open classes saturate it:
    BCMP's mixed networks), else the closed classes' throughput."""
    if net.total_open > 0:
        return net.at_peak / net.total_open
    closed = np.broadcast_to(point.closed_rate[:, None], net.at_peak.shape)
    return closed / max(float(point.closed_rate.sum()), 1e-300)


def _bounds_offered_rate(net: _Network, point: _FixedPoint) -> float:
    """The rate offered now, in the unit of the bounds (`_mix`)."""
    return net.total_open if net.total_open > 0 else float(point.closed_rate.sum())


def _max_rates(net: _Network, point: _FixedPoint) -> dict[str, float]:
    """Throughput bound of each tier, for the traffic mix as written: workers / demand per
    request (as if no rate limit refused anything: the bound of its workers)."""
    mix = _mix(net, point)
    max_rate: dict[str, float] = {}
    for tier in net.model.tiers:
        scaling = tier.consumer_scaling
        if scaling is not None:  # its scaler can add consumers up to its max as the load grows
            tier = replace(tier, concurrency=scaling.max * scaling.per_consumer)
        max_rate[tier.name] = _tier_max_rate(
            tier,
            mix[:, tier.index] * net.unlimited_visits[:, tier.index],
            point.holding[tier.index],
        )
    return max_rate


def _rate_limit_bounds(net: _Network, point: _FixedPoint) -> dict[str, float]:
    """Per rate-limited tier, the total rate (mix as written) beyond which its limit refuses
    requests: `rate_limit.rate` / visits to it per request. Beside open traffic, the closed
    classes' requests take their tokens first (a refused request is answered at once, so they
    keep coming): the open rate beyond which it refuses is what they leave."""
    mix = _mix(net, point)
    closed_rate = point.closed_rate if net.total_open > 0 else np.zeros_like(point.closed_rate)
    bounds: dict[str, float] = {}
    for tier in net.model.tiers:
        if tier.rate_limit is None:
            continue
        per_request = float(mix[:, tier.index] @ net.unlimited_visits[:, tier.index])
        taken = float(closed_rate @ net.unlimited_visits[:, tier.index])
        left = max(tier.rate_limit.rate - taken, 0.0)
        bounds[tier.name] = left / per_request if per_request > 0 else math.inf
    return bounds


def _unstable_error(
    unstable: tuple[Tier, str, StationResult], saturation: float
) -> UnstableModelError:
    tier, label, st = unstable
    capacity_rate = _station_capacity(tier, st)
    return UnstableModelError(
        f"{tier.name}: rho={st.unstable_rho:.3g} >= 1 ({st.arrival_rate:.4g}/s offered, "
        f"{capacity_rate:.4g}/s capacity); system saturates at "
        f"{saturation:.4g} req/s (requests per second over the open classes, or over the closed "
        "ones without open traffic, mix as written). "
        f"Add capacity to {tier.name} (e.g. {_suggestion(tier, label)}) or lower the load.",
        tier=tier.name,
        rho=st.unstable_rho,
        offered_rate=st.arrival_rate,
        capacity=capacity_rate,
        saturation_rate=saturation,
    )


def _tier_figures(
    tier: Tier,
    groups_solved: list[tuple[str, StationResult]],
    max_rate: float,
    stable: bool,
    refused: float = 0.0,
) -> dict[str, Any]:
    """One tier's entry of the estimates, in the shape of `capsim run`'s JSON; `refused`, the
    requests per second its rate limit turns away (offered and rejected, never served)."""
    arrival = sum(st.arrival_rate for _, st in groups_solved)
    # An overloaded station serves at its capacity: what it completes, not what it is offered.
    served = [
        st.arrival_rate if st.unstable_rho is None else _station_capacity(tier, st)
        for _, st in groups_solved
    ]
    busy = sum(r * st.work_time for r, (_, st) in zip(served, groups_solved, strict=True))
    held = sum(r * st.holding_time for r, (_, st) in zip(served, groups_solved, strict=True))
    workers = sum(st.instances for _, st in groups_solved) * tier.concurrency
    workers = min(workers, tier.usable_workers)  # a partitioned queue: the usable ones
    blocked = sum(
        st.arrival_rate * st.figures.p_block for _, st in groups_solved if st.figures is not None
    )
    shortfall = sum(st.arrival_rate for _, st in groups_solved) - sum(served)
    methods = sorted({st.figures.method for _, st in groups_solved if st.figures is not None})
    exact = all(st.figures.exact for _, st in groups_solved if st.figures is not None)
    wait_mean = (
        sum(st.arrival_rate * st.figures.mean_wait for _, st in groups_solved if st.figures)
        / arrival
        if arrival > 0
        else 0.0
    )
    wait_figures: dict[str, float | None] = {"mean": wait_mean}
    single = [st for _, st in groups_solved if st.arrival_rate > 0]
    for key, q in PERCENTILES.items():
        if len(single) == 1 and single[0].figures is not None:
            wait_figures[key] = _round(single[0].figures.wait_quantile(q))
        else:
            wait_figures[key] = None
    queue_mean = sum(
        st.arrival_rate * (1 - st.figures.p_block) * st.figures.mean_wait
        for _, st in groups_solved
        if st.figures is not None
    )
    tier_notes = sorted({note for _, st in groups_solved for note in st.notes})
    if not stable:
        wait_figures = dict.fromkeys(wait_figures)
        queue_mean = math.inf
        tier_notes.append("overloaded: offered at least its capacity, no steady state")
    return {
        "offered_rate": arrival + refused,
        "utilization": busy * (1 - (blocked / arrival if arrival else 0)) / workers
        if workers
        else 0.0,
        "occupancy": held * (1 - (blocked / arrival if arrival else 0)) / workers
        if workers
        else 0.0,
        "throughput": arrival - blocked - shortfall,
        "rejected_rate": blocked + refused,
        "stable": stable,
        "queue_length": {"mean": queue_mean},
        "wait": wait_figures,
        "max_rate": _round(max_rate),
        **_database_groups(tier, groups_solved),
        "method": {
            "formula": ", ".join(methods)
            or ("overloaded: no steady state" if not stable else "no traffic"),
            "exact": exact and not tier_notes,
            "notes": tier_notes,
        },
    }


def _class_latency(
    net: _Network, point: _FixedPoint, traffic: TrafficClass
) -> tuple[dict[str, float | None], bool, bool, formulas.QueueFigures | None]:
    """A class's mean latency (and its percentiles where the request visits its entry tier
    only, one station); whether a parallel group made it approximate, whether only the entry
    is visited, and the entry station's figures."""
    model, k = net.model, traffic.index
    response, _, parallel_approx = _mean_response(
        model, k, point.per_class_response[k], net.attempts
    )
    # Clients served from another region add their round trip to every request.
    latency: dict[str, float | None] = {
        "mean": float(response[traffic.entry]) + traffic.network_delay
    }
    only_entry = all(net.visits[k, t.index] == 0 for t in model.tiers if t.index != traffic.entry)
    entry_groups = [st for _, st in point.stations[traffic.entry] if st.arrival_rate > 0]
    for key, q in PERCENTILES.items():
        value = None
        if only_entry and len(entry_groups) == 1 and entry_groups[0].figures is not None:
            sojourn = entry_groups[0].figures.sojourn_quantile(q)
            value = None if sojourn is None else _round(sojourn + traffic.network_delay)
        latency[key] = value
    entry_figures = entry_groups[0].figures if entry_groups else None
    return latency, parallel_approx, only_entry, entry_figures


def _closed_bounds(net: _Network, holding: np.ndarray, traffic: TrafficClass) -> dict[str, Any]:
    """Asymptotic bounds of a closed class: its highest throughput, lowest response, N*."""
    k = traffic.index
    think = traffic.think_time.mean if traffic.think_time is not None else 0.0
    demand_total = float(np.sum(net.visits[k] * holding[:, k]))
    per_worker = [net.visits[k, t.index] * holding[t.index, k] / t.workers for t in net.model.tiers]
    d_max = max(per_worker, default=0.0)
    users = int(traffic.users or 0)
    return {
        "throughput_max": _round(
            min(users / (demand_total + think), 1 / d_max if d_max else math.inf)
        ),
        "response_min": float(max(demand_total, users * d_max - think)),
        "n_star": _round((demand_total + think) / d_max) if d_max else None,
    }


def _class_figures(
    net: _Network,
    point: _FixedPoint,
    traffic: TrafficClass,
    tiers_out: dict[str, Any],
    overloaded_tiers: set[str],
    notes: list[str],
) -> dict[str, Any]:
    """One class's entry of the estimates; a note when its losses are approximated."""
    model, k = net.model, traffic.index
    latency, parallel_approx, only_entry, entry_figures = _class_latency(net, point, traffic)
    path_exact = all(
        tiers_out[t.name]["method"]["exact"] for t in model.tiers if net.visits[k, t.index] > 0
    )
    rate = float(net.open_rate[k] + point.closed_rate[k])
    # Losses along the path (independent per visit); exact when one tier turns work away.
    own = net.own_visits[k]
    losses = {
        t.index: 1.0 - (1.0 - _visit_failure(net, point, k, t)) * net.passing[t.index]
        for t in model.tiers
        if own[t.index] > 0
    }
    lossy = [i for i, b in losses.items() if b > 0]
    # A rate limit's refusals thin the flow behind it in the traffic equations themselves.
    blocking = [i for i in lossy if _loss(model.tiers[i], point.stations[i], k) > 0]
    success = float(np.prod([(1 - b) ** own[i] for i, b in losses.items()]))
    # A backlog in a queue does not hold up the publisher; any other overloaded tier on the
    # request's own path does.
    through = [
        t for t in model.tiers if own[t.index] > 0 and t.name in overloaded_tiers and not t.is_async
    ]
    share = min(
        [1.0]
        + [
            tiers_out[t.name]["throughput"] / tiers_out[t.name]["offered_rate"]
            for t in through
            if tiers_out[t.name]["offered_rate"] > 0
        ]
    )
    method = "sum over the call graph of mean waits and work (Jackson-style decomposition)"
    if traffic.is_closed:
        method = _closed_method(point.closed_solutions.get(k), traffic)
    if only_entry and entry_figures is not None:
        method = entry_figures.method
    if through:
        latency = dict.fromkeys(latency)
        method = "overloaded: " + ", ".join(t.name for t in through) + " (no steady state)"
    closed = net.closed
    entry: dict[str, Any] = {
        "offered_rate": rate,
        "throughput": rate * success * share,
        "error_rate": 1.0 - success,
        "latency": latency,
        "method": {
            "formula": method,
            "exact": path_exact
            and not parallel_approx
            and len(closed) <= 1
            and not (closed and float(net.open_rate.sum()) > 0)
            and len(lossy) <= 1
            and not through
            and _solved_exactly(point, traffic),
        },
    }
    if blocking and len(losses) > 1:
        notes.append(
            f"class {traffic.name}: requests turned away at "
            + ", ".join(model.tiers[i].name for i in blocking)
            + " are counted as independent losses per visit, and the tiers after them are "
            "offered the full rate (approximate)"
        )
    if through:
        entry["overloaded"] = [t.name for t in through]
    if traffic.is_closed:
        entry["bounds"] = _closed_bounds(net, point.holding, traffic)
    return entry


def _use_exact_closed_solution(
    net: _Network, point: _FixedPoint, classes_out: dict[str, Any], tiers_out: dict[str, Any]
) -> None:
    """One closed class alone is a product-form network: its exact solution replaces the
    open-station decomposition for the waits, queues and response time."""
    traffic = net.closed[0]
    k = traffic.index
    solution = point.closed_solutions[k]
    if solution.loop:  # the stations were solved at its throughput: their figures stand
        return
    classes_out[traffic.name]["latency"]["mean"] = solution.response_time
    for tier in net.model.tiers:
        visit = net.visits[k, tier.index]
        if visit <= 0 or solution.throughput <= 0:
            continue
        i = tier.index
        in_service = solution.utilization[i] * tier.workers
        waiting = solution.queue[i] - in_service
        tiers_out[tier.name]["utilization"] = (
            solution.utilization[i] * net.means[i, k] / point.holding[i, k]
        )
        tiers_out[tier.name]["occupancy"] = solution.utilization[i]
        tiers_out[tier.name]["queue_length"]["mean"] = waiting
        tiers_out[tier.name]["wait"] = {
            "mean": waiting / (solution.throughput * visit),
            **{key: None for key in PERCENTILES},
        }
        if solution.exact:
            tiers_out[tier.name]["method"]["formula"] = "exact product-form closed network"
        else:
            tiers_out[tier.name]["method"]["formula"] = LARGE_CLOSED_FORMULA
            tiers_out[tier.name]["method"]["exact"] = False


#: The formula of a tier in a closed class too large for the exact solution.
LARGE_CLOSED_FORMULA = "large-population approximation of the closed network (M/M/c stations)"


def _solved_exactly(point: _FixedPoint, traffic: TrafficClass) -> bool:
    """False for a closed class solved by the large-population approximation."""
    solution = point.closed_solutions.get(traffic.index)
    return solution is None or solution.exact


def _closed_method(solution: formulas.ClosedFigures | None, traffic: TrafficClass) -> str:
    """How a closed class's figures were found: exactly, or (beyond
    `formulas.CLOSED_EXACT_USERS` users) by the large-population approximation."""
    if solution is None or solution.exact:
        return "exact product-form solution of the closed network (convolution / MVA)"
    if solution.loop:
        return (
            "closed loop through blocking callers: the throughput X from Little's law over the "
            "loop, users = X (think time + R(X)), R(X) the call graph's response with every "
            "tier solved at X and blocking workers held through their calls "
            "(docs/cli.md#capsim-solve-scenario)"
        )
    return (
        f"large-population approximation of the closed network ({traffic.users:,} users, more "
        f"than the {formulas.CLOSED_EXACT_USERS:,} solved exactly): M/M/c stations fed at the "
        "class's throughput, the throughput from Little's law over the loop; within 1% for the "
        "throughput, up to 27% for the response time near the saturation knee "
        "(docs/cli.md#capsim-solve-scenario)"
    )


def _slo_verdicts(
    model: Model, classes_out: dict[str, Any], tiers_out: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each SLO judged on the estimates (None where no formula gives its statistic)."""
    slos = []
    for slo in model.slos:
        observed: float | None = None
        failed_by_overload = False
        if slo.class_index is not None:
            cls = classes_out[model.classes[slo.class_index].name]
            failed_by_overload = bool(cls.get("overloaded"))
            if slo.statistic in cls["latency"]:
                observed = cls["latency"][slo.statistic]
            elif slo.statistic == "error_rate":
                observed = cls["error_rate"]
        elif slo.tier_index is not None and slo.statistic in ("utilization", "occupancy"):
            entry = tiers_out[model.tiers[slo.tier_index].name]
            group = busiest_group(entry, slo.statistic)  # a database's busiest group decides
            observed = entry[slo.statistic]
            if group is not None:
                observed = max(observed, group[1])
        elif slo.tier_index is not None and slo.statistic.startswith("wait_"):
            wait = tiers_out[model.tiers[slo.tier_index].name]["wait"]
            observed = wait.get(slo.statistic.removeprefix("wait_"))
        passed = None if observed is None else observed <= slo.limit
        not_judged = slo.not_judged_by_solve is not None and not failed_by_overload
        slos.append(
            {
                "slo": slo.text,
                "statistic": slo.statistic,
                "passed": None if not_judged else False if failed_by_overload else passed,
                "observed": observed,
                "limit": slo.limit,
                "line": slo.line,
                **_overload_reason(cls if failed_by_overload else {}),
                **({"reason": slo.not_judged_by_solve} if not_judged else {}),
            }
        )
    return slos


def solve(
    model: Model, *, capsim_version: str, mark_overload: bool = False, verdict_only: bool = False
) -> dict[str, Any]:
    """Analytic estimates in the shape of `capsim run`'s JSON, with a `method` beside each group.

    When an open station without a waiting-room limit is offered at least its capacity, raises
    UnstableModelError naming the station, its load and the rate at which the system saturates;
    with `mark_overload`, returns the full estimates instead, with that tier `stable: false`,
    its figures at saturation, the classes through it without latency, and `overloaded` and
    `passed: false` at the top (docs/how-the-model-works.md, "capsim solve").
    `verdict_only` (with `mark_overload`): an overloaded tier's `capacity` is offered / rho and
    the bottleneck's saturation rate the bound at this load, without the searches along the mix
    that find where they turn stable (seconds each for a closed class beside open traffic: the
    analytic start of `capsim size`, which asks only what is stable and what meets its limits).
    """
    model, settled = settle_consumers(model, _queue_state)
    net = _network(model)
    point = _fixed_point(net)
    closed, total_open = net.closed, net.total_open
    notes = _profile_peak_notes(model)
    notes.extend(_autoscaled_tier_notes(model))
    notes.extend(_settled_consumer_notes(settled))
    notes.extend(_arrival_process_notes(model, point.stations))
    notes.extend(spot_notes(model))
    if len(closed) > 1 or (closed and net.open_rate.sum() > 0):
        notes.append(
            "several closed classes or mixed open and closed traffic: each closed class is "
            "solved exactly on the capacity the others leave (an approximation)"
        )
    unstable = _unstable_stations(model, point)
    max_rate, limit_bounds, (bottleneck, saturation, by_rate_limit) = _bounds(net, point)
    # [tier] requests per second reaching each tier at its busiest moment
    reaching = np.sum((net.at_peak + point.closed_rate[:, None]) * net.visits, axis=0)
    refused = reaching * (1.0 - net.passing)
    notes.extend(_rate_limit_notes(model, reaching, refused))
    if unstable and not mark_overload:  # before the capacities below, which it does not need
        raise _unstable_error(unstable[0], saturation)
    capacities = (
        {(tier.index, label): _station_capacity(tier, st) for tier, label, st in unstable}
        if verdict_only
        else _overloaded_capacities(net, unstable)
    )
    overloaded = [
        {
            "tier": tier.name,
            "rho": st.unstable_rho,
            "offered_rate": st.arrival_rate,
            "capacity": capacities[tier.index, label],
            "add": capacity_key(tier, label),
        }
        for tier, label, st in unstable
    ]
    notes.extend(_unsearched_note(unstable))
    if unstable and not verdict_only:
        bottleneck, saturation, by_rate_limit = _where_the_bound_meets_the_load(
            model, capsim_version, bottleneck, saturation, by_rate_limit
        )
    overloaded_tiers = {tier.name for tier, _, _ in unstable}
    if overloaded:
        notes.append(
            "overloaded: " + ", ".join(sorted(overloaded_tiers)) + " has no steady state; it is "
            "shown serving at its capacity, and the tiers it calls at the full offered rate "
            "(what they will get once it has the capacity)"
        )
    tiers_out = {
        tier.name: _tier_figures(
            tier,
            point.stations[tier.index],
            max_rate[tier.name],
            tier.name not in overloaded_tiers,
            float(refused[tier.index]),
        )
        for tier in model.tiers
    }
    for name, bound in limit_bounds.items():
        tier_out = tiers_out[name]
        tier_out["rate_limit"] = {
            "rate": model.tier(name).rate_limit.rate,  # type: ignore[union-attr]
            "max_rate": _round(bound),
            "refused_rate": float(refused[model.tier_index[name]]),
            "refused_share": float(refused[model.tier_index[name]]) / tier_out["offered_rate"]
            if tier_out["offered_rate"] > 0
            else 0.0,
        }
    for where in settled:
        tiers_out[where.tier]["autoscale"] = _settled_entry(where)
    _quote_overloaded_at_capacity(model, overloaded, tiers_out, total_open)
    classes_out = {
        traffic.name: _class_figures(net, point, traffic, tiers_out, overloaded_tiers, notes)
        for traffic in model.classes
    }
    if len(closed) == 1 and total_open == 0:
        _use_exact_closed_solution(net, point, classes_out, tiers_out)
    slos = judge_after_faults(
        model,
        _slo_verdicts(model, classes_out, tiers_out),
        lambda survivors: solve(survivors, capsim_version=capsim_version, mark_overload=True),
    )
    notes.extend(fault_notes(model))
    notes.extend(_retry_storm_notes(net, point))
    deadlocks, collapse = mark_deadlocks(model, tiers_out)  # blocking tiers calling themselves
    notes.extend([found["sentence"] for found in deadlocks] + collapse)
    collapsing = _mark_collapses(net, point, tiers_out, notes)
    deadlocked = any(found["within_run"] for found in deadlocks) or collapsing
    collapses = {
        name: found
        for name, found in _collapses(net, point).items()
        if "collapse" in tiers_out[name]
    }
    bottleneck, saturation, by_rate_limit = _lowest_collapse(
        collapses, (bottleneck, saturation, by_rate_limit)
    )
    return {
        "capsim_version": capsim_version,
        "scenario": model.name,
        "command": "solve",
        "classes": classes_out,
        "tiers": tiers_out,
        "bottleneck": _bottleneck_entry(net, point, bottleneck, saturation, by_rate_limit),
        "slos": slos,
        "passed": all(s["passed"] is not False for s in slos) and not overloaded and not deadlocked,
        "overloaded": overloaded,
        "deadlocks": deadlocks,
        "notes": notes,
    }


def _collapses(net: _Network, point: _FixedPoint) -> dict[str, tuple[int, float, float | None]]:
    """Per stable blocking tier that calls itself back: (its workers, the expected seconds until
    the parents of concurrent requests hold all of them at its offered visits, and the open
    rate, mix as written, at which that is within the simulated run; solve_collapse.py)."""
    model = net.model
    seconds = run_seconds(model)
    found: dict[str, tuple[int, float, float | None]] = {}
    for risk in deadlock_risks(model):
        index = model.tier_index[risk.tier]
        groups = [st for _, st in point.stations[index] if st.arrival_rate > 0]
        visits = sum(st.arrival_rate for st in groups)
        if visits <= 0 or any(st.unstable_rho is not None for st in groups):
            continue
        held = sum(st.arrival_rate * st.holding_time for st in groups) / visits
        q = risk.return_probability
        chains = PoolChains(q, held * (1 - q), risk.workers)
        at = chains.collapse_rate(visits, seconds)
        rate = at * net.total_open / visits if at is not None and net.total_open > 0 else None
        found[risk.tier] = (risk.workers, chains.seconds_to_collapse(visits), rate)
    return found


def _lowest_collapse(
    collapses: dict[str, tuple[int, float, float | None]],
    bound: tuple[str | None, float, bool],
) -> tuple[str | None, float, bool]:
    """The bottleneck and its saturation rate with the collapse rates counted in."""
    for name, (_, _, rate) in sorted(collapses.items()):
        if rate is not None and rate < bound[1]:
            bound = (name, rate, False)
    return bound


def _mark_collapses(
    net: _Network, point: _FixedPoint, tiers_out: dict[str, Any], notes: list[str]
) -> bool:
    """Each stable blocking tier that calls itself back gets a `collapse` entry (`_collapses`):
    `expected_seconds`, `within_run` and `rate`, its `max_rate` at most. A collapse within the
    run makes the tier unstable. True when one does."""
    seconds = run_seconds(net.model)
    collapsing = False
    for name, (workers, expected, rate) in _collapses(net, point).items():
        entry = tiers_out[name]
        if not entry["stable"]:  # a lone request's deadlock within the run says it already
            continue
        within = expected <= seconds
        entry["collapse"] = {
            "expected_seconds": _round(expected),
            "within_run": within,
            "rate": _round(rate),
        }
        if rate is not None and (entry["max_rate"] is None or rate < entry["max_rate"]):
            entry["max_rate"] = rate
        entry["method"]["exact"] = False
        if within:
            entry["stable"] = False
            collapsing = True
        notes.append(_collapse_sentence(name, workers, expected, rate, seconds))
    return collapsing


_TEN_YEARS = 10 * 365 * 86400.0


def _collapse_sentence(
    tier: str, workers: int, expected: float, rate: float | None, seconds: float
) -> str:
    when = (
        "less than once in ten years at this load"
        if expected > _TEN_YEARS
        else f"once in about {format_duration(expected)} at this load"
    )
    text = (
        f"{tier}: the parents of concurrent requests (visits holding a worker while their call "
        f"back waits) hold all {workers} workers {when} (an upper bound: solve_collapse)"
    )
    if rate is not None:
        text += (
            f"; within the {format_duration(seconds)} simulated from about {rate:,.1f} req/s "
            "(its collapse rate, an upper bound of where the pool deadlocks)"
        )
    if expected <= seconds:
        text += ": expect the run to stall; give the tier more workers or a timeout on the call"
    return text


def _queue_state(model: Model, index: int) -> QueueState:
    """The queue at `index` solved at its consumers, as its KEDA scaler reads it: the mean
    backlog (arrivals x mean wait, Little's law) or lag (backlog plus messages being consumed),
    and the highest a stabilization window's polls typically read (`_window_high`)."""
    point = _fixed_point(_network(model))
    station = point.stations[index][0][1]
    scaling = model.tiers[index].consumer_scaling
    figures = station.figures
    if station.unstable_rho is not None or figures is None or scaling is None:
        return QueueState(False, math.inf, station.arrival_rate, math.inf)
    backlog = station.arrival_rate * figures.mean_wait
    busy = station.arrival_rate * station.holding_time
    workers = station.instances * model.tiers[index].concurrency
    share = 1.0 / (polls_per_window(scaling) + 1)  # the max of n polls: the 1 - 1/(n+1) quantile
    high = _window_high(backlog, figures.p_wait, busy, workers, share, scaling.metric == "lag")
    mean = backlog + busy if scaling.metric == "lag" else backlog
    return QueueState(True, mean, station.arrival_rate, high)


def _window_high(
    backlog: float, p_wait: float, busy: float, workers: int, share: float, lag: bool
) -> float:
    """The metric exceeded with probability `share`: messages waiting have the M/M/c tail
    P(waiting > k) = P(wait) r^(k+1), r = Lq / (P(wait) + Lq) (r = rho for M/M/c); with `lag`,
    plus the messages being consumed, Poisson(busy) below the workers (all of them busy when
    messages wait)."""
    ratio = backlog / (p_wait + backlog) if backlog > 0 and p_wait > 0 else 0.0
    waiting = 0.0
    if ratio > 0 and p_wait * ratio > share:
        waiting = math.ceil(math.log(share / p_wait) / math.log(ratio) - 1.0)
    if not lag:
        return waiting
    if p_wait * ratio > share:
        return workers + waiting
    # scipy only here, for a KEDA queue scaled on its lag: `capsim run` need not load it
    from scipy import stats

    return min(float(stats.poisson.ppf(1.0 - share, busy)), float(workers))


def _settled_consumer_notes(settled: list[SettledConsumers]) -> list[str]:
    """One sentence per KEDA queue: the consumers it is solved at, and why."""
    notes = []
    for where in settled:
        scaling = where.scaling
        text = (
            f"queue {where.tier} scales its consumers on its {scaling.metric} ({scaling.min}.."
            f"{scaling.max}, target {scaling.target:g} per consumer): solved at "
            f"{where.consumers} consumers, "
        )
        if where.metric is None:
            text += "its max, which does not keep it in steady state"
        elif len(where.cycle) == 1:
            text += (
                f"where its scaler settles at this load (mean {scaling.metric} "
                f"{where.metric:,.1f} messages: its rule keeps the count)"
            )
        else:
            others = ", ".join(str(c) for c in sorted(set(where.cycle)) if c != where.consumers)
            text += (
                f"the count its scaler holds most of the time: at this load it goes round "
                f"{' -> '.join(str(c) for c in where.cycle)} (with {others} the "
                f"{scaling.metric} asks for more, or grows; with {where.consumers} it asks for "
                f"fewer after its {scaling.scale_down_stabilization:g}s stabilization window), "
                "so the lower counts' waits are not in these figures: run the simulation"
            )
        notes.append(text + f"; its saturation rate counts all {scaling.max} it may run")
    return notes


def _settled_entry(where: SettledConsumers) -> dict[str, Any]:
    scaling = where.scaling
    return {
        "metric": scaling.metric,
        "target": scaling.target,
        "min": scaling.min,
        "max": scaling.max,
        "consumers": where.consumers,
        scaling.metric: _round(where.metric),
        "cycle": list(where.cycle),
    }


def solve_bottleneck(model: Model) -> dict[str, Any]:
    """`solve(model)["bottleneck"]` alone: the same network, fixed point and bounds, so the same
    numbers, without the figures per tier and class (the wait percentiles of an M/M/c/K
    station are most of its cost, and load scipy). Raises UnstableModelError where `solve`
    does (without `mark_overload`). For the footer of `capsim run`'s table."""
    net = _network(model)
    point = _fixed_point(net)
    unstable = _unstable_stations(model, point)
    _, _, (tier, saturation, by_rate_limit) = _bounds(net, point)
    if unstable:
        raise _unstable_error(unstable[0], saturation)
    # as solve does: a self-calling pool's collapse rate where it is lower
    tier, saturation, by_rate_limit = _lowest_collapse(
        _collapses(net, point), (tier, saturation, by_rate_limit)
    )
    return _bottleneck_entry(net, point, tier, saturation, by_rate_limit)


def _unstable_stations(model: Model, point: _FixedPoint) -> list[tuple[Tier, str, StationResult]]:
    """(tier, label, station) of every station offered at least its capacity."""
    return [
        (tier, label, st)
        for tier in model.tiers
        for label, st in point.stations[tier.index]
        if st.unstable_rho is not None
    ]


def _bounds(
    net: _Network, point: _FixedPoint
) -> tuple[dict[str, float], dict[str, float], tuple[str | None, float, bool]]:
    """(each tier's max rate, each rate limit's bound, (the bottleneck, its saturation rate,
    whether a rate limit is the bound)): the tier with the lowest max rate, unless a rate limit
    lets less through."""
    max_rate = _max_rates(net, point)
    bottleneck = min(max_rate, key=lambda name: max_rate[name]) if max_rate else None
    saturation = max_rate[bottleneck] if bottleneck else math.inf
    limit_bounds = _rate_limit_bounds(net, point)
    by_rate_limit = False
    for name, bound in limit_bounds.items():
        if bound < saturation:  # no capacity lets more through than the limit
            bottleneck, saturation, by_rate_limit = name, bound, True
    return max_rate, limit_bounds, (bottleneck, saturation, by_rate_limit)


def _bottleneck_entry(
    net: _Network, point: _FixedPoint, tier: str | None, saturation: float, by_rate_limit: bool
) -> dict[str, Any]:
    """The `bottleneck` of the estimates: its tier, saturation rate and the rate offered now."""
    return {
        "tier": tier,
        "saturation_rate": _round(saturation),
        "offered_rate": _bounds_offered_rate(net, point),
        **({"by": "rate_limit"} if by_rate_limit else {}),
    }


def _rate_limit_notes(model: Model, reaching: np.ndarray, refused: np.ndarray) -> list[str]:
    """One sentence per rate limit that refuses requests at this load."""
    return [
        f"{tier.name}'s rate_limit ({tier.rate_limit.rate:,.1f}/s, one bucket shared by its "
        f"instances) lets through {reaching[tier.index] - refused[tier.index]:,.1f}/s of the "
        f"{reaching[tier.index]:,.1f}/s reaching it and refuses "
        f"{refused[tier.index] / reaching[tier.index]:.1%} (errors for their callers); the "
        "tiers behind it are offered what it lets through"
        for tier in model.tiers
        if tier.rate_limit is not None and refused[tier.index] > 0
    ]


def _overload_reason(class_out: dict[str, Any]) -> dict[str, str]:
    """`{"reason": ...}` for an objective failed because its class crosses an overloaded tier
    (its estimate, taken in a steady state that does not exist, may look fine); else `{}`."""
    through = class_out.get("overloaded") or []
    if not through:
        return {}
    tiers = ", ".join(through)
    return {
        "reason": f"overloaded {tiers} on its path (no steady state: the estimate does not hold)"
    }


def _tier_max_rate(tier: Tier, visits_per_request: np.ndarray, holding: np.ndarray) -> float:
    """Total rate (mix as written, in the unit of `_mix`) at which `tier` saturates: workers /
    demand per request.

    A database with replicas is two station groups, as `capsim run` simulates it: its primaries
    take the writes, its replicas the reads; the tier saturates with the first group to fill.
    A pool caps the workers the tier can hold at once (over both groups).
    """
    demand = float(np.sum(visits_per_request * holding))
    usable = tier.usable_workers
    capacity = usable if tier.pool is None else min(usable, tier.pool.size)
    rates = [capacity / demand if demand > 0 else math.inf]
    if tier.kind == "database" and tier.replicas > 0:
        read = np.array([work.read_ratio for work in tier.work])
        for servers, share in ((tier.instances, 1 - read), (tier.replicas, read)):
            group = float(np.sum(visits_per_request * holding * share))
            rates.append(servers * tier.concurrency / group if group > 0 else math.inf)
    return min(rates)


def _profile_peak_notes(model: Model) -> list[str]:
    """A note for each class whose profile rises above its final rate: solve plans for its peak."""
    return [
        f"class {c.name}: solved at its profile's peak, {c.peak_rate(model.horizon):,.1f}/s "
        f"(the profile ends at {c.rate_at(model.horizon):,.1f}/s); the steady-state figures are "
        "those of a sustained peak"
        for c in model.classes
        if not c.is_closed and c.peak_rate(model.horizon) > c.rate_at(model.horizon)
    ]


def _autoscaled_tier_notes(model: Model) -> list[str]:
    """A note for each tier an HPA scales: solve answers for the instances it starts with (a
    failed objective or a bottleneck there may be what the autoscaler is for)."""
    return [
        f"tier {t.name} autoscales ({t.autoscale.min}..{t.autoscale.max} instances): solved at "
        f"the {t.instances} it starts with; capsim run simulates the autoscaler and its lag "
        "(saturate and size evaluate it at its max)"
        for t in model.tiers
        if t.autoscale is not None and t.kind != "queue" and not t.autoscale.scale_to_zero
    ]


#: JSON names of a database's station groups (solve's labels are the scaling keys' plurals).
_GROUP_NAMES = {"primaries": "primary", "replicas": "replicas"}


def _database_groups(tier: Tier, groups: list[tuple[str, StationResult]]) -> dict[str, Any]:
    """`{"groups": {"primary": ..., "replicas": ...}}` for a database with replicas: each station
    group's offered rate, utilization, occupancy (over its own workers), its own bound
    (`max_rate`, requests per second into the group) and `stable`; `{}` for any other tier."""
    if len(groups) < 2:
        return {}
    out: dict[str, Any] = {}
    for label, st in groups:
        workers = st.instances * tier.concurrency
        # An overloaded group serves at its capacity (offered / rho), as the tier's figures do;
        # a full waiting room (a pool's `max_waiting`) turns its share away (M/M/c/K).
        served = st.arrival_rate / st.unstable_rho if st.unstable_rho else st.arrival_rate
        if st.figures is not None:
            served *= 1.0 - st.figures.p_block
        out[_GROUP_NAMES.get(label, label)] = {
            "offered_rate": st.arrival_rate,
            "workers": workers,
            "utilization": served * st.work_time / workers if workers else 0.0,
            "occupancy": served * st.holding_time / workers if workers else 0.0,
            "max_rate": _round(workers / st.holding_time if st.holding_time else math.inf),
            "stable": st.unstable_rho is None,
        }
    return {"groups": out}


def _where_the_bound_meets_the_load(
    model: Model, capsim_version: str, bottleneck: str | None, saturation: float, by_limit: bool
) -> tuple[str | None, float, bool]:
    """An overloaded model's bottleneck and saturation rate as `run`'s footer and warning quote
    them (`analytic_headroom`): where the bound meets the load along the mix. The bound at the
    overloaded load itself counts a blocking tier's holding times with waits that have no steady
    state (booking at 1.6x: 1,280/s against 3,951/s); kept when no lighter load is stable."""
    from capsim.analysis.headroom import analytic_headroom

    met = analytic_headroom(model, capsim_version)
    if met is None or not math.isfinite(met.saturation_rate):
        return bottleneck, saturation, by_limit
    return met.tier, met.saturation_rate, met.rate_limit
