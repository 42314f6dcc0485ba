"""Internal bounds of a run: how many requests a tier may hold waiting, and what a run costs in memory.

Nothing here depends on the machine: a queue under overload is bounded by `waiting_limit`, not by
the RAM, and `estimate_memory` is the pre-flight's upper bound on the engine's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capsim.engine.histogram import N_BINS as HISTOGRAM_BINS
from capsim.engine.timeseries import series_bytes
from capsim.model.types import Call, Model, OneOf, Parallel, Step, Tier
from capsim.units import format_count

#: Requests a tier may hold waiting (over all its instances and its pool) before the engine turns
#: new ones away as `overflow`: far above any queue with a steady state, so only a tier that is
#: hopelessly overloaded ever reaches it.
MAX_WAITING = 100_000
#: ... unless the tier has so many workers that ten requests per worker is more.
WAITING_PER_WORKER = 10

#: Bytes of engine state per separately queued instance (its FIFO, free-worker count, balancing
#: state; measured on the event path, the larger of the two), per worker, and per request held
#: in a tier (waiting or in service, with the continuation of its path).
BYTES_PER_INSTANCE = 1024
BYTES_PER_WORKER = 16
BYTES_PER_REQUEST = 600
#: A streaming histogram's counts (its bins plus the zero and overflow bins, 8 bytes each).
BYTES_PER_HISTOGRAM = (HISTOGRAM_BINS + 2) * 8
#: What a finished replication keeps besides its histograms: counters and the queue traces, per
#: tier and per class (measured on pickled results, rounded up).
BYTES_PER_RESULT_TIER = 2048
BYTES_PER_RESULT_CLASS = 256
#: The interpreter, numpy, the model and the fixed-size histograms and traces.
BASE_BYTES = 150 * 1024 * 1024
#: Default cap on the estimated memory of one replication (`--max-memory`).
DEFAULT_MAX_MEMORY = 4 * 1024**3


def waiting_limit(tier: Tier) -> int:
    """The most requests `tier` holds waiting before it turns new ones away (overflow).

    Never below the waiting room the scenario sets itself (`max_depth`, `max_queue` on every
    instance it may have, a pool's `max_waiting`): an explicit limit is honoured, and the
    pre-flight (`estimate_memory`) counts it."""
    return max(waiting_limit_default(tier), explicit_waiting(tier))


def waiting_limit_default(tier: Tier) -> int:
    """capsim's own cap on `tier`'s waiting requests, before the scenario's limits raise it."""
    return max(MAX_WAITING, WAITING_PER_WORKER * tier.workers)


def explicit_waiting(tier: Tier) -> int:
    """The waiting room `tier`'s own limits allow in all (0 when it sets none)."""
    servers = max(tier.servers, tier.autoscale.max if tier.autoscale is not None else 0)
    rooms = tier.max_queue * servers if tier.max_queue is not None else 0
    pool = tier.pool.max_waiting if tier.pool is not None else None
    return rooms + (pool or 0)


def result_bytes(model: Model) -> float:
    """Bytes one finished replication's result keeps until the run is summarised: a latency
    histogram per class, a wait histogram per tier (plus a queue's message age and a pool's
    wait), counters and traces, and its time series."""
    histograms = len(model.classes)
    for tier in model.tiers:
        histograms += 1 + (tier.kind == "queue") + (tier.pool is not None)
    return (
        histograms * BYTES_PER_HISTOGRAM
        + len(model.tiers) * BYTES_PER_RESULT_TIER
        + len(model.classes) * BYTES_PER_RESULT_CLASS
        + series_bytes(model)
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """The pre-flight's upper bound on a run's memory, by what it is spent on (bytes)."""

    engine: float  # one replication's engine state (instances, workers, requests held)
    series: float  # one replication's time series while it runs
    results: float  # every finished replication's result, kept until they are summarised
    replications: int
    running: int = 1  # replications running at once (a process pool's workers)

    @property
    def total(self) -> float:
        return self.running * (self.engine + self.series) + self.results


def estimate_run_memory(
    model: Model, requests: float, replications: int, running: int = 1
) -> MemoryEstimate:
    """The memory of a whole run: `running` replications running at once (`requests` is the
    requests of one) and the results of all `replications` held until the summary."""
    return MemoryEstimate(
        engine=estimate_memory(model, requests),
        series=series_bytes(model),
        results=float(replications) * result_bytes(model),
        replications=replications,
        running=max(1, running),
    )


def estimate_memory(model: Model, requests: float) -> float:
    """Upper bound, in bytes, of one replication's engine state.

    Instances and workers cost their per-item state; requests held at once are bounded both by
    the requests of the run (`requests`, each visiting at most every tier) and by the tiers'
    waiting limits plus their workers. Histograms and traces are of fixed size.
    """
    state = float(BASE_BYTES)
    held_bound = 0.0
    for tier in model.tiers:
        # As floats: a fuzzed scenario may hold counts beyond any float, which then are inf.
        servers, workers = float(tier.servers), float(tier.servers) * float(tier.concurrency)
        state += servers * BYTES_PER_INSTANCE + workers * BYTES_PER_WORKER
        explicit = min(explicit_waiting(tier), 1e300)  # a fuzzed limit may exceed any float
        held_bound += max(MAX_WAITING, WAITING_PER_WORKER * workers, explicit)
        held_bound += workers
    held = min(requests * max(len(model.tiers), 1), held_bound)
    return state + held * BYTES_PER_REQUEST


#: The most tier visits one request may make on average (repeats, fan-out and loops included).
#: A request of a capacity model touches tens of tiers; ten thousand visits is a model of
#: something else, and its cost grows with the visits whatever the rate.
MAX_VISITS_PER_REQUEST = 10_000
#: What one autoscaler sync costs, in tier visits (measured on the event path: about 17 us
#: against about 5 us per visit). A health check costs one visit per instance it probes.
AUTOSCALE_SYNC_VISITS = 4
#: The most times one periodic timer (an autoscaler's sync, a tier's health checks) may fire in
#: one replication: a sync every second for a day is 86,400; a sync every microsecond for ten
#: seconds (ten million) is a model of something else.
MAX_TIMER_FIRINGS = 100_000


def step_fan_out(step: Step) -> float:
    """Attempts one step makes at most (a repeat counts each time, every retry allowed, a
    parallel step each branch)."""
    total = 0.0
    pending = [step]
    while pending:
        current = pending.pop()
        if isinstance(current, Call):
            retries = current.retry.max if current.retry is not None else 0
            total += float(current.repeat) * (1.0 + float(retries))
        elif isinstance(current, OneOf):
            total += 1.0
        elif isinstance(current, Parallel):
            pending.extend(current.branches)
    return total


@dataclass(frozen=True)
class WorkEstimate:
    """The pre-flight's estimate of a run's work, over all replications, in tier visits."""

    visits: float  # requests x expected tier visits per request
    autoscaler_syncs: float  # in tier visits (AUTOSCALE_SYNC_VISITS each)
    health_checks: float  # in tier visits (one per instance probed)
    fastest_timer: str  # the periodic timer that fires most often, in words ("" when none)
    fastest_firings: float = 0.0  # how often it fires in one replication

    @property
    def total(self) -> float:
        return self.visits + self.autoscaler_syncs + self.health_checks

    def describe(self) -> str:
        parts = [f"{format_count(self.visits)} tier visits"]
        if self.autoscaler_syncs:
            parts.append(f"autoscaler syncs worth {format_count(self.autoscaler_syncs)}")
        if self.health_checks:
            parts.append(f"health checks worth {format_count(self.health_checks)}")
        return ", ".join(parts)

    def remedy(self) -> str:
        if self.fastest_timer and self.autoscaler_syncs + self.health_checks > self.visits:
            return f"Lengthen {self.fastest_timer}"
        return "Shorten simulation.duration, lower the rate, the replications or the fan-out"


def estimate_work(
    model: Model, class_requests: list[float], replications: int, visits: np.ndarray | None
) -> WorkEstimate:
    """Tier visits (each class's requests x its expected visits) and periodic timers (autoscaler
    syncs; health checks, which run on a tier that has a fault) over all replications."""
    visit_total = 0.0
    if visits is not None:
        for traffic, requests in zip(model.classes, class_requests, strict=True):
            visit_total += requests * float(visits[traffic.index].sum())
    else:
        visit_total = float(sum(class_requests))
    horizon = model.horizon
    faulty = {fault.tier for fault in model.faults}
    syncs = checks = 0.0
    fastest, fastest_period = "", float("inf")
    for tier in model.tiers:
        if tier.autoscale is not None and not tier.autoscale.scale_to_zero:
            period = tier.autoscale.sync_period
            syncs += replications * _ticks(horizon, period) * AUTOSCALE_SYNC_VISITS
            if period < fastest_period:
                fastest = f"tiers.{tier.name}.autoscale.sync_period ({period:g}s)"
                fastest_period = period
        if tier.health_check is not None and tier.index in faulty:
            period = tier.health_check.interval
            checks += replications * _ticks(horizon, period) * float(tier.servers)
            if period < fastest_period:
                fastest = f"tiers.{tier.name}.health_check.interval ({period:g}s)"
                fastest_period = period
    firings = _ticks(horizon, fastest_period) if fastest else 0.0
    return WorkEstimate(
        visits=visit_total,
        autoscaler_syncs=syncs,
        health_checks=checks,
        fastest_timer=fastest,
        fastest_firings=firings,
    )


def _ticks(horizon: float, period: float) -> float:
    """How often a timer with this period fires over the run."""
    if period <= 0 or math.isinf(period):
        return math.inf if period <= 0 else 0.0
    return horizon / period
