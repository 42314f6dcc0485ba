"""The RNG tree: one SeedSequence per scenario seed, one stream per replication, owner and role.

Streams are addressed by spawn keys, not by the order in which they are created, so the same
(seed, replication, owner, role) gives the same numbers on any executor and in any order.
"""

from __future__ import annotations

import numpy as np

# Roles of a stream. A tier's streams are keyed (replication, TIER_BASE + tier, role); a class's
# (replication, CLASS_BASE + class, role).
SERVICE, ROUTING, BALANCING, PUBLISH, ARRIVALS, THINK, HIT = range(7)
RETRY = 7  # a caller tier's retry jitter
FAULT = 8  # a tier's fault draws (error_rate)
CACHE_KEYS = 9  # a cold cache's requested keys
SPOT = 10  # a tier's spot interruption times
TIER_BASE = 0
CLASS_BASE = 1_000_000


def stream(seed: int, replication: int, owner: int, role: int) -> np.random.Generator:
    """An independent generator for one (replication, owner, role) of the scenario seed."""
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(replication, owner, role))
    return np.random.Generator(np.random.PCG64(sequence))


def tier_stream(seed: int, replication: int, tier: int, role: int) -> np.random.Generator:
    return stream(seed, replication, TIER_BASE + tier, role)


def class_stream(seed: int, replication: int, class_index: int, role: int) -> np.random.Generator:
    return stream(seed, replication, CLASS_BASE + class_index, role)
