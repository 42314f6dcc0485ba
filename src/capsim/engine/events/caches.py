"""Cold caches: an LRU per edge location that starts empty and is simulated key by key."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from capsim.engine import streams
from capsim.engine.events.draws import (
    _buffered,
)
from capsim.engine.events.signatures import Draw
from capsim.engine.timeseries import bucket_at

if TYPE_CHECKING:
    from capsim.engine.events.tier import _TierSim


def cold_cache(sim: _TierSim) -> Draw:
    """A cold LRU's lookup per request: 1.0 on a hit, 0.0 on a miss (then the key is stored).

    Keys are Zipf ranks drawn by inverting a table of the cumulative popularity.
    """
    cache = sim.tier.cold_lru
    assert cache is not None
    weights = np.arange(1, cache.keys + 1, dtype=float) ** -cache.zipf
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    rng = sim._window.tier_rng(sim.tier.name, streams.CACHE_KEYS)
    key = _buffered(lambda n: np.searchsorted(cdf, rng.random(n), side="right"))
    # One LRU per edge location (a cdn's `edges`); requests reach them in turn.
    caches: list[OrderedDict[float, None]] = [OrderedDict() for _ in range(sim.tier.edges)]
    turn = itertools.cycle(caches).__next__
    capacity = cache.capacity
    env = sim.env
    window = sim._window
    warmup = window.warmup
    series = window.series
    inverse = 1.0 / series.bucket if series is not None else 0.0
    last = series.edges.size - 2 if series is not None else 0
    per_bucket = ([0] * (last + 1), [0] * (last + 1))
    if series is not None:
        sim.cache_series = per_bucket
    lookups, hits = per_bucket

    def lookup() -> float:
        k = key()
        now = env._now
        lru = turn()
        hit = k in lru
        if hit:
            lru.move_to_end(k)
        else:
            lru[k] = None
            if len(lru) > capacity:
                lru.popitem(last=False)
        if now >= warmup:
            sim.cache_lookups += 1
            sim.cache_hits += hit
        if series is not None:
            b = bucket_at(now, inverse, last)
            lookups[b] += 1
            hits[b] += hit
        return 1.0 if hit else 0.0

    return lookup
