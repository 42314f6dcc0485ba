"""Internal bounds of a run: how many requests a tier may hold waiting, and what a run costs in memory.

Nothing here depends on the machine: a queue under overload is bounded by `waiting_limit`, not by
the RAM, and `estimate_memory` is the pre-flight's upper bound on the engine's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from capsim.engine.histogram import N_BINS as HISTOGRAM_BINS
from capsim.engine.timeseries import series_bytes
from capsim.model.types import Model, Tier

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
    """The most requests `tier` holds waiting before it turns new ones away (overflow)."""
    return max(MAX_WAITING, WAITING_PER_WORKER * tier.workers)


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

    @property
    def total(self) -> float:
        return self.engine + self.series + self.results


def estimate_run_memory(model: Model, requests: float, replications: int) -> MemoryEstimate:
    """The memory of a whole run: one replication running (`requests` is its requests) and the
    results of all `replications` held until the summary."""
    return MemoryEstimate(
        engine=estimate_memory(model, requests),
        series=series_bytes(model),
        results=float(replications) * result_bytes(model),
        replications=replications,
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
        held_bound += max(MAX_WAITING, WAITING_PER_WORKER * workers) + workers
    held = min(requests * max(len(model.tiers), 1), held_bound)
    return state + held * BYTES_PER_REQUEST
