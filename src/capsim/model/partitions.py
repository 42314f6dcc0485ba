"""Affinity and shards compiled into the model (docs/regions.md#affinity-and-shards).

A tier whose requests are tied to one instance by who sends them (`affinity`: IP hash or
sticky sessions) or to one shard by their key (a database's `shards`) does not spread its load
evenly: each instance or shard gets the popularity of the clients or keys hashed to it. The
tier becomes a router that keeps its name (no work of its own: the client library or load
balancer choosing) and one tier per part, `TIER.node-I` (one instance each) or `TIER.shard-I`
(a copy of the whole database), which the router calls by `one_of` with each part's share.
So each part has its own queue, utilization and verdict, and the hottest saturates first.

Clients and keys have Zipf popularity (key k in proportion to k^-zipf). A key (or an IP) goes
to part floor(h(k) x parts / 2^32), h the multiplicative hash k x 2654435761 mod 2^32 of the key
offset by a salt from the tier's name; a session goes to the parts in turn, in an order of
first arrival drawn once from the same salt. The shares depend only on the scenario.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from capsim.model.distributions import Distribution
from capsim.model.types import Call, Fault, Model, OneOf, Parallel, Sizing, Slo, Step, Tier, Work
from capsim.scenario.schema import AffinitySpec, Scenario, ShardsSpec

_GOLDEN = np.uint64(2654435761)  # Knuth's multiplicative hash constant
_WORD = np.uint64(1 << 32)


def zipf_popularity(items: int, zipf: float) -> np.ndarray:
    """p_k proportional to k^-zipf, k = 1 .. items."""
    weights = np.arange(1, items + 1, dtype=np.float64) ** -zipf
    return weights / weights.sum()


def _salt(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def hashed_shares(items: int, zipf: float, parts: int, salt: int) -> np.ndarray:
    """The popularity hashed to each of `parts` (multiplicative hash, multiply-shift)."""
    keys = np.arange(1, items + 1, dtype=np.uint64) + np.uint64(salt)
    hashed = (keys * _GOLDEN) % _WORD
    part = ((hashed * np.uint64(parts)) >> np.uint64(32)).astype(np.int64)
    return np.bincount(part, weights=zipf_popularity(items, zipf), minlength=parts)


def session_shares(items: int, zipf: float, parts: int, salt: int) -> np.ndarray:
    """Sticky sessions: sessions assigned to the parts in turn, in a random order of arrival."""
    order = np.random.default_rng(salt).permutation(items)
    part = np.arange(items) % parts
    shares = np.zeros(parts)
    np.add.at(shares, part, zipf_popularity(items, zipf)[order])
    return shares


def part_shares(spec: AffinitySpec | ShardsSpec, parts: int, name: str) -> np.ndarray:
    if isinstance(spec, ShardsSpec):
        return hashed_shares(spec.keys, spec.zipf, parts, _salt(name))
    if spec.by == "session":
        return session_shares(spec.clients, spec.zipf, parts, _salt(name))
    return hashed_shares(spec.clients, spec.zipf, parts, _salt(name))


def _setting(scenario: Scenario, tier: Tier) -> AffinitySpec | ShardsSpec | None:
    spec = scenario.tiers.get(tier.name)
    if spec is None:
        return None
    shards = getattr(spec, "shards", None)
    return shards if shards is not None else getattr(spec, "affinity", None)


def _remap(step: Step, index: list[int]) -> Step:
    if isinstance(step, Call):
        return replace(step, tier=index[step.tier])
    if isinstance(step, OneOf):
        return replace(step, options=tuple((index[t], p) for t, p in step.options))
    assert isinstance(step, Parallel)
    return Parallel(tuple(_remap(b, index) for b in step.branches))


def _remapped(tier: Tier, index: list[int]) -> Tier:
    works = tuple(replace(w, calls=tuple(_remap(s, index) for s in w.calls)) for w in tier.work)
    on_miss = None if tier.on_miss is None else index[tier.on_miss]
    return replace(tier, index=index[tier.index], work=works, on_miss=on_miss)


def _router(tier: Tier, parts: list[Tier], shares: np.ndarray) -> Tier:
    """The tier's name, no work: a one_of to its parts by their shares. A cache cluster's
    node that refuses (lost) sends its keys to the origin: they miss."""
    options = tuple((part.index, float(share)) for part, share in zip(parts, shares, strict=True))
    fallbacks = (tier.on_miss,) * len(parts) if _is_cache_cluster(tier, parts) else ()
    work = Work(Distribution.constant(0.0), (OneOf(options, fallbacks=fallbacks),))
    return replace(
        tier,
        kind="load_balancer",
        instances=1,
        concurrency=1,  # no work: nothing ever waits
        replicas=0,
        blocking=False,
        balancing="round_robin",
        work=(work,) * len(tier.work),
        max_queue=None,
        timeout=None,
        pool=None,
        cost_per_instance_hour=None,
        sizing=Sizing(fixed=True),
        zones=(),
        health_check=None,
        rate_limit=None,
        priorities=(),
    )


def _parts(tier: Tier, spec: AffinitySpec | ShardsSpec, first: int) -> list[Tier]:
    if isinstance(spec, ShardsSpec):
        return [
            replace(tier, name=f"{tier.name}.shard-{i}", index=first + i) for i in range(spec.count)
        ]
    return [
        replace(
            tier,
            name=f"{tier.name}.node-{i}",
            index=first + i,
            instances=1,
            zones=(tier.zones[i % len(tier.zones)],) if tier.zones else (),
            sizing=Sizing(of="concurrency", fixed=tier.sizing.fixed if tier.sizing else False),
        )
        for i in range(tier.instances)
    ]


def _is_cache_cluster(tier: Tier, parts: list[Tier]) -> bool:
    return tier.kind in ("cache", "cdn") and parts[0].name.endswith(".shard-0")


def _faults(model: Model, index: list[int], parts_of: dict[int, list[Tier]]) -> list[Fault]:
    """A fault on a partitioned tier hits its parts: lost instances of an affinity tier are
    its nodes, a cache cluster loses whole nodes (`lose: 1`: the last one); anything else hits
    every part."""
    faults: list[Fault] = []
    for fault in model.faults:
        parts = parts_of.get(fault.tier)
        if parts is None:
            faults.append(replace(fault, tier=index[fault.tier]))
        elif fault.lose and _is_cache_cluster(model.tiers[fault.tier], parts):
            faults.extend(
                replace(fault, tier=part.index, lose=tuple(range(part.servers)))
                for part in parts[len(parts) - len(fault.lose) :]
            )
        elif fault.lose and parts[0].name.rsplit(".", 1)[1].startswith("node"):
            faults.extend(replace(fault, tier=parts[i].index, lose=(0,)) for i in fault.lose)
        else:
            faults.extend(replace(fault, tier=part.index) for part in parts)
    return faults


def _slos(model: Model, index: list[int], parts_of: dict[int, list[Tier]]) -> list[Slo]:
    slos: list[Slo] = []
    for slo in model.slos:
        if slo.tier_index is None:
            slos.append(slo)
            continue
        parts = parts_of.get(slo.tier_index)
        if parts is None:
            slos.append(replace(slo, tier_index=index[slo.tier_index]))
            continue
        name = model.tiers[slo.tier_index].name
        slos.extend(
            replace(slo, text=part.name + slo.text[len(name) :], tier_index=part.index)
            for part in parts
        )
    return slos


def partition_tiers(model: Model, scenario: Scenario) -> Model:
    """The model with every affinity tier and sharded database split into its parts."""
    settings = {t.index: s for t in model.tiers if (s := _setting(scenario, t)) is not None}
    if not settings:
        return model
    index: list[int] = []
    offset = 0  # parts of the partitioned tiers before this one
    for tier in model.tiers:
        index.append(tier.index + offset)
        if tier.index in settings:
            offset += _part_count(tier, settings[tier.index])
    tiers: list[Tier] = []
    parts_of: dict[int, list[Tier]] = {}
    for tier in model.tiers:
        moved = _remapped(tier, index)
        spec = settings.get(tier.index)
        if spec is None:
            tiers.append(moved)
            continue
        parts = _parts(moved, spec, moved.index + 1)
        shares = part_shares(spec, len(parts), tier.name)
        tiers.append(_router(moved, parts, shares))
        tiers.extend(parts)
        parts_of[tier.index] = parts
    classes = tuple(replace(c, entry=index[c.entry]) for c in model.classes)
    return replace(
        model,
        tiers=tuple(tiers),
        classes=classes,
        faults=tuple(_faults(model, index, parts_of)),
        slos=tuple(_slos(model, index, parts_of)),
        tier_index={tier.name: tier.index for tier in tiers},
    )


def _part_count(tier: Tier, spec: AffinitySpec | ShardsSpec) -> int:
    return spec.count if isinstance(spec, ShardsSpec) else tier.instances
