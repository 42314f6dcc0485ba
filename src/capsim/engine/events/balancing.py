"""Balancing between a tier's instances: round robin, random, least connections, power of two
(healthy instances only when instances can die), read replicas, and health checks.

`install` gives the station its `pick(algorithm)`: the chooser for requests balanced by an
algorithm (None: the tier's own), made at its first use (when the callers' steps are compiled,
after every feature has said whether instances can die) and kept. It also starts the health
checks of a tier with faults and a `health_check`. Balancing draws from the tier's BALANCING
stream; read replicas from the tier's ROUTING stream.
"""

from __future__ import annotations

import itertools

import simpy

from capsim.engine import streams
from capsim.engine.events.clock import after
from capsim.engine.events.draws import _buffered
from capsim.engine.events.signatures import Draw, Pick
from capsim.engine.events.station import Station
from capsim.model.types import HealthCheck


def install(st: Station) -> None:
    """Set the station's `pick`; start health checks if its instances can fail them."""
    st.pick = _Balancer(st).pick
    if st.faults and st.tier.health_check is not None:
        health_checks(st, st.tier.health_check)


class _Balancer:
    """A tier's instance choosers, one per algorithm, and the uniforms they share."""

    def __init__(self, st: Station) -> None:
        self.st = st
        self.choosers: dict[str, Pick] = {}
        self.uniforms: Draw | None = None

    def pick(self, algorithm: str | None) -> Pick:
        """The instance chooser for requests balanced by `algorithm` (None: the tier's own)."""
        name = algorithm or self.st.tier.balancing
        chooser = self.choosers.get(name)
        if chooser is None:
            chooser = self.choosers[name] = _make_pick(self, name)
        return chooser

    def uniform(self) -> Draw:
        if self.uniforms is None:
            rng = self.st.window.tier_rng(self.st.tier.name, streams.BALANCING)
            self.uniforms = _buffered(rng.random)
        return self.uniforms


def health_checks(st: Station, check: HealthCheck) -> None:
    """Every `interval`, each instance passes (alive) or fails; balancing follows the counts."""
    env, horizon = st.env, st.horizon
    routable = st.sim.routable
    alive = st.alive
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
            after(env, check.interval).callbacks.append(probe)

    after(env, check.interval).callbacks.append(probe)


def fixed(i: int) -> Pick:
    """The chooser that always picks instance i; `fixed_instance` recognises it."""

    def only(k: int) -> int:
        return i

    only.instance = i  # type: ignore[attr-defined]
    return only


def fixed_instance(pick: Pick) -> int | None:
    """The instance a chooser always picks (a tier with one instance), or None."""
    instance = getattr(pick, "instance", None)
    return instance if isinstance(instance, int) else None


def least_connections_of(pick: Pick) -> list[int] | None:
    """The counts of requests per instance a chooser picks the first least of, when it is
    least connections over all of a tier's instances (`at.index(min(at))`), else None: a hot
    path may then pick inline, the same instance."""
    counts = getattr(pick, "counts", None)
    return counts if isinstance(counts, list) else None


def _choose(balancer: _Balancer, algorithm: str, low: int, high: int) -> Pick:
    """A chooser among instances low..high-1; it takes (and ignores) the class index."""
    if balancer.st.sim.routable is not None:
        return _choose_routable(balancer, algorithm, low, high)
    count = high - low
    if count == 1:
        return fixed(low)
    at = balancer.st.at
    if algorithm == "random":
        u = balancer.uniform()
        return lambda k: low + int(u() * count)
    if algorithm == "least_connections":
        if low == 0 and high == len(at):

            def least_of_all(k: int) -> int:
                return at.index(min(at))

            least_of_all.counts = at  # type: ignore[attr-defined]  # see `least_connections_of`
            return least_of_all

        def least(k: int) -> int:
            part = at[low:high]
            return low + part.index(min(part))

        return least
    if algorithm == "power_of_two":
        u = balancer.uniform()

        def two(k: int) -> int:
            a = int(u() * count)
            b = int(u() * (count - 1))
            if b >= a:
                b += 1
            return low + b if at[low + b] < at[low + a] else low + a

        return two
    turn = itertools.count()
    return lambda k: low + next(turn) % count


def _choose_routable(balancer: _Balancer, algorithm: str, low: int, high: int) -> Pick:
    """`_choose` for a tier whose instances can die: only instances balancing sees as healthy
    (all of them, dead ones included, when none is)."""
    routable = balancer.st.sim.routable
    assert routable is not None
    if high - low == 1:
        return fixed(low)  # no choice, so no draw: the group's other choosers keep their draws
    at = balancer.st.at
    members = range(low, high)
    turn = itertools.count()
    u = balancer.uniform() if algorithm in ("random", "power_of_two") else None

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


def _make_pick(balancer: _Balancer, algorithm: str) -> Pick:
    """Primaries only, or, on a database with replicas, reads by `read_ratio` to the replicas."""
    st = balancer.st
    tier = st.tier
    primaries = _choose(balancer, algorithm, 0, st.servers - tier.replicas)
    if tier.kind != "database" or tier.replicas == 0:
        return primaries
    replicas = _choose(balancer, algorithm, tier.instances, tier.servers)
    read_ratio = [work.read_ratio for work in tier.work]
    u = st.sim.routing_draw

    def route(k: int) -> int:
        r = read_ratio[k]
        if r >= 1.0 or (r > 0.0 and u() < r):
            return replicas(k)
        return primaries(k)

    return route
