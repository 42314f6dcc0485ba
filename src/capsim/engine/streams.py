"""The RNG tree: one SeedSequence per scenario seed, one stream per replication, owner and role.

Streams are addressed by spawn keys, not by the order in which they are created, so the same
(seed, replication, owner, role) gives the same numbers on any executor and in any order.

An owner is a tier or a class, named by its full model name (`app@eu-west`, a partition's or a
replica's generated name), never by its position in the scenario: inserting a tier nobody
calls, or reordering `tiers:` or `traffic:`, leaves every other tier's and class's numbers as
they were. A name enters the key as two 32-bit words of its BLAKE2b digest (stable across
processes and Python versions, unlike the salted `hash()`), after a word for its kind, so a
tier and a class of the same name never share a stream. A renamed tier or class draws other
numbers.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

# Roles of a stream. A tier's streams are keyed (replication, TIER, name, role); a class's
# (replication, CLASS, name, role); a tier's per-class service stream (…, SERVICE, CLASS,
# class name) and per-publish stream (…, PUBLISH, CLASS, class name, TIER, callee, occurrence).
SERVICE, ROUTING, BALANCING, PUBLISH, ARRIVALS, THINK, HIT = range(7)
RETRY = 7  # a caller tier's retry jitter
FAULT = 8  # a tier's fault draws (error_rate)
CACHE_KEYS = 9  # a cold cache's requested keys
SPOT = 10  # a tier's spot interruption times
# The kind of an owner, the word before its name.
TIER = 0
CLASS = 1


@functools.lru_cache(maxsize=4096)
def name_words(name: str) -> tuple[int, int]:
    """Two 32-bit words of the name's BLAKE2b digest: each below 2**32, so each is exactly one
    word of the SeedSequence's spawn key and no two keys of different shapes run together."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=b"capsim-stream").digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def owner_key(kind: int, name: str) -> tuple[int, int, int]:
    """The part of a spawn key that names a tier (`TIER`) or a class (`CLASS`)."""
    return (kind, *name_words(name))


def stream(seed: int, key: tuple[int, ...]) -> np.random.Generator:
    """An independent generator for one address `key` (replication first) of the seed's tree."""
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=key)
    return np.random.Generator(np.random.PCG64(sequence))


def tier_stream(seed: int, replication: int, tier: str, role: int) -> np.random.Generator:
    """The stream of tier `tier` (its model name) for `role`."""
    return stream(seed, (replication, *owner_key(TIER, tier), role))


def class_stream(seed: int, replication: int, name: str, role: int) -> np.random.Generator:
    """The stream of traffic class `name` for `role`."""
    return stream(seed, (replication, *owner_key(CLASS, name), role))


def tier_class_stream(
    seed: int, replication: int, tier: str, role: int, name: str
) -> np.random.Generator:
    """Tier `tier`'s stream for `role` kept apart for class `name` (its own sub-stream)."""
    return stream(seed, (replication, *owner_key(TIER, tier), role, *owner_key(CLASS, name)))


def publish_stream(
    seed: int, replication: int, tier: str, name: str, callee: str, occurrence: int
) -> np.random.Generator:
    """Tier `tier`'s stream for class `name`'s `occurrence`-th publish to queue `callee`."""
    return stream(
        seed,
        (
            replication,
            *owner_key(TIER, tier),
            PUBLISH,
            *owner_key(CLASS, name),
            *owner_key(TIER, callee),
            occurrence,
        ),
    )
