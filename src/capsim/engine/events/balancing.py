"""Balancing between a tier's instances: round robin, random, least connections, power of two
(healthy instances only when instances can die), read replicas, and health checks."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import simpy

from capsim.engine import streams
from capsim.engine.events.draws import (
    _buffered,
)
from capsim.engine.events.signatures import Draw, Pick
from capsim.model.types import (
    HealthCheck,
)

if TYPE_CHECKING:
    from capsim.engine.events.tier import _TierSim


def pick(sim: _TierSim, algorithm: str | None) -> Pick:
    """The instance chooser for requests balanced by `algorithm` (None: the tier's own)."""
    name = algorithm or sim.tier.balancing
    cached = sim._pick_cache.get(name)
    if cached is None:
        cached = sim._pick_cache[name] = _make_pick(sim, name)
    return cached


def health_checks(
    sim: _TierSim, env: simpy.Environment, check: HealthCheck, horizon: float
) -> None:
    """Every `interval`, each instance passes (alive) or fails; balancing follows the counts."""
    routable = sim.routable
    alive = sim.alive
    assert routable is not None
    failures = [0] * len(alive)
    passes = [0] * len(alive)

    def probe(event: simpy.Event) -> None:
        for i, up in enumerate(alive):
            if up:
                failures[i] = 0
                passes[i] += 1
                if not routable[i] and passes[i] >= check.healthy_after:
                    routable[i] = True
            else:
                passes[i] = 0
                failures[i] += 1
                if routable[i] and failures[i] >= check.unhealthy_after:
                    routable[i] = False
        if env._now + check.interval < horizon:
            env.timeout(check.interval).callbacks.append(probe)

    env.timeout(check.interval).callbacks.append(probe)


def _uniform(sim: _TierSim) -> Draw:
    if sim._balancing_draw is None:
        rng = sim._window.tier_rng(sim.tier.index, streams.BALANCING)
        sim._balancing_draw = _buffered(rng.random)
    return sim._balancing_draw


def _choose(sim: _TierSim, algorithm: str, low: int, high: int) -> Pick:
    """A chooser among instances low..high-1; it takes (and ignores) the class index."""
    if sim.routable is not None:
        return _choose_routable(sim, algorithm, low, high)
    count = high - low
    if count == 1:
        return lambda k: low
    at = sim.at
    if algorithm == "random":
        u = _uniform(sim)
        return lambda k: low + int(u() * count)
    if algorithm == "least_connections":
        if low == 0 and high == len(at):
            return lambda k: at.index(min(at))

        def least(k: int) -> int:
            part = at[low:high]
            return low + part.index(min(part))

        return least
    if algorithm == "power_of_two":
        u = _uniform(sim)

        def two(k: int) -> int:
            a = int(u() * count)
            b = int(u() * (count - 1))
            if b >= a:
                b += 1
            return low + b if at[low + b] < at[low + a] else low + a

        return two
    turn = itertools.count()
    return lambda k: low + next(turn) % count


def _choose_routable(sim: _TierSim, algorithm: str, low: int, high: int) -> Pick:
    """`_choose` for a tier whose instances can die: only instances balancing sees as healthy
    (all of them, dead ones included, when none is)."""
    routable = sim.routable
    assert routable is not None
    at = sim.at
    members = range(low, high)
    turn = itertools.count()
    u = _uniform(sim) if algorithm in ("random", "power_of_two") else None

    def healthy() -> list[int]:
        chosen = [i for i in members if routable[i]]
        return chosen or list(members)

    if algorithm == "round_robin":

        def next_healthy(k: int) -> int:
            for _ in members:
                i = low + next(turn) % len(members)
                if routable[i]:
                    return i
            return low + next(turn) % len(members)

        return next_healthy
    if algorithm == "least_connections":
        return lambda k: min(healthy(), key=at.__getitem__)
    assert u is not None
    if algorithm == "random":

        def any_healthy(k: int) -> int:
            chosen = healthy()
            return chosen[int(u() * len(chosen))]

        return any_healthy

    def two_healthy(k: int) -> int:
        chosen = healthy()
        if len(chosen) == 1:
            return chosen[0]
        a = int(u() * len(chosen))
        b = int(u() * (len(chosen) - 1))
        if b >= a:
            b += 1
        return chosen[b] if at[chosen[b]] < at[chosen[a]] else chosen[a]

    return two_healthy


def _make_pick(sim: _TierSim, algorithm: str) -> Pick:
    tier = sim.tier
    primaries = _choose(sim, algorithm, 0, sim.primary_slots)
    if tier.kind != "database" or tier.replicas == 0:
        return primaries
    replicas = _choose(sim, algorithm, tier.instances, tier.servers)
    read_ratio = [work.read_ratio for work in tier.work]
    u = sim.routing_draw

    def route(k: int) -> int:
        r = read_ratio[k]
        if r >= 1.0 or (r > 0.0 and u() < r):
            return replicas(k)
        return primaries(k)

    return route
