"""Internal bounds of a run: how many requests a tier may hold waiting, and what a run costs in memory.

Nothing here depends on the machine: a queue under overload is bounded by `waiting_limit`, not by
the RAM, and `estimate_memory` is the pre-flight's upper bound on the engine's state.
"""

from __future__ import annotations

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
#: The interpreter, numpy, the model and the fixed-size histograms and traces.
BASE_BYTES = 150 * 1024 * 1024
#: Default cap on the estimated memory of one replication (`--max-memory`).
DEFAULT_MAX_MEMORY = 4 * 1024**3


def waiting_limit(tier: Tier) -> int:
    """The most requests `tier` holds waiting before it turns new ones away (overflow)."""
    return max(MAX_WAITING, WAITING_PER_WORKER * tier.workers)


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
