"""Regions compiled into the model (docs/regions.md): copies of tiers, calls that pay a round
trip, classes split by DNS, and a lost region's traffic moved after the DNS delay.

Nothing here is an engine feature. A tier placed in several regions becomes one tier per region
(`app@eu`, `app@us`); a call goes to the caller's own region's copy when there is one, else to
the nearest region's (a write: to the callee's primary region), with the round-trip time as
its `network_delay`. A class becomes one class per (clients' region, serving region) pair with
a share of its rate (`browse@eu`; clients served from another region: `browse@eu->us`, paying
that round trip). A lost region loses every instance of its copies, and DNS moves its clients
evenly over `dns_ttl` once `health_check` has noticed: the moved traffic is a rate profile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from capsim.model.types import (
    Call,
    Fault,
    LoseRule,
    Model,
    OneOf,
    Parallel,
    ProfilePoint,
    Slo,
    Step,
    Tier,
    TrafficClass,
    Work,
)
from capsim.scenario.schema import Scenario
from capsim.units import format_duration

#: Points added inside a DNS ramp that overlaps a class's own profile: the product of two
#: linear pieces is a parabola, drawn as this many chords.
RAMP_CHORDS = 8

Pair = tuple[str | None, str]  # (clients' region or None for weighted DNS, serving region)


@dataclass(frozen=True)
class Geography:
    """The regions of a scenario: order, round trips, shares of clients, standbys, routing."""

    names: tuple[str, ...]
    rtt: dict[tuple[str, str], float]
    shares: dict[str, float]  # active regions only
    standby: frozenset[str]
    policy: str
    health_check: float
    dns_ttl: float

    def round_trip(self, a: str, b: str) -> float:
        return 0.0 if a == b else self.rtt[(a, b)]

    def nearest(self, origin: str, among: tuple[str, ...]) -> str:
        """The region of `among` closest to `origin` (itself when it is one of them); ties go
        to the one declared first."""
        if origin in among:
            return origin
        return min(among, key=lambda r: (self.round_trip(origin, r), self.names.index(r)))


def geography(scenario: Scenario) -> Geography:
    names = tuple(scenario.regions)
    rtt: dict[tuple[str, str], float] = {}
    for a, spec in scenario.regions.items():
        for b, value in spec.rtt.items():
            rtt[(a, b)] = rtt[(b, a)] = value
    active = [n for n in names if not scenario.regions[n].standby]
    given = {n: scenario.regions[n].share for n in active}
    if all(share is None for share in given.values()):
        shares = {n: 1.0 / len(active) for n in active}
    else:
        shares = {n: float(share or 0.0) for n, share in given.items()}
    routing = scenario.routing
    return Geography(
        names=names,
        rtt=rtt,
        shares=shares,
        standby=frozenset(n for n in names if scenario.regions[n].standby),
        policy=routing.policy,
        health_check=routing.health_check,
        dns_ttl=routing.dns_ttl,
    )


# ---- tiers and calls ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where each model tier runs: its regions (in declaration order) and its primary."""

    regions: tuple[tuple[str, ...], ...]  # by model tier index
    primary: tuple[str | None, ...]
    copies: dict[tuple[int, str], int]  # (model tier, region) -> index of the copy
    instances: dict[tuple[int, str], int]  # a copy's own instances, when the scenario says

    def target(self, geo: Geography, caller_region: str, tier: int, write: bool) -> str:
        """The region whose copy of `tier` a call from `caller_region` reaches."""
        primary = self.primary[tier]
        if write and primary is not None:
            return primary
        return geo.nearest(caller_region, self.regions[tier])


def placement(model: Model, scenario: Scenario, geo: Geography) -> Placement:
    regions: list[tuple[str, ...]] = []
    primary: list[str | None] = []
    instances: dict[tuple[int, str], int] = {}
    for tier in model.tiers:
        # A tier the builder made (`cdn.origin_shield`, `db.shard-0`) runs where its own does.
        spec = scenario.tiers[tier.name.split(".")[0]]
        placed = set(spec.regions or geo.names)
        regions.append(tuple(r for r in geo.names if r in placed))
        primary.append(spec.primary)
        for region, copy in (spec.regions or {}).items():
            count = getattr(copy, "instances", None)
            if count is not None and not tier.synthetic and tier.kind != "load_balancer":
                instances[(tier.index, region)] = count
    copies: dict[tuple[int, str], int] = {}
    for tier in model.tiers:
        for region in regions[tier.index]:
            copies[(tier.index, region)] = len(copies)
    return Placement(tuple(regions), tuple(primary), copies, instances)


def _step_in(step: Step, region: str, geo: Geography, where: Placement) -> Step:
    """A call step of a copy in `region`: to the copies it reaches, with their round trips."""
    if isinstance(step, Call):
        to = where.target(geo, region, step.tier, step.write)
        return replace(
            step, tier=where.copies[(step.tier, to)], network_delay=geo.round_trip(region, to)
        )
    if isinstance(step, OneOf):
        targets = [where.target(geo, region, tier, False) for tier, _ in step.options]
        delays = tuple(geo.round_trip(region, to) for to in targets)
        options = tuple(
            (where.copies[(tier, to)], p)
            for (tier, p), to in zip(step.options, targets, strict=True)
        )
        return OneOf(options, delays if any(delays) else ())
    assert isinstance(step, Parallel)
    return Parallel(tuple(_step_in(branch, region, geo, where) for branch in step.branches))


def _copy_near(tier: int, region: str, geo: Geography, where: Placement) -> int:
    """The copy of `tier` that a copy in `region` reaches."""
    return where.copies[(tier, geo.nearest(region, where.regions[tier]))]


def _tier_copy(
    tier: Tier, region: str, geo: Geography, where: Placement, class_origin: list[int]
) -> Tier:
    reads_only = tier.kind == "database" and where.primary[tier.index] not in (None, region)
    works = []
    for origin in class_origin:
        work = tier.work[origin]
        calls = tuple(_step_in(step, region, geo, where) for step in work.calls)
        # A database's copy outside its primary region is a set of read replicas.
        works.append(Work(work.service_time, calls, 1.0 if reads_only else work.read_ratio))
    return replace(
        tier,
        name=f"{tier.name}@{region}",
        index=where.copies[(tier.index, region)],
        work=tuple(works),
        on_miss=None if tier.on_miss is None else _copy_near(tier.on_miss, region, geo, where),
        priorities=tuple(tier.priorities[k] for k in class_origin) if tier.priorities else (),
        region=region,
        instances=where.instances.get((tier.index, region), tier.instances),
    )


# ---- DNS over time -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Epoch:
    """From `start` on, DNS answers as if `down` were lost (clients move over the TTL)."""

    start: float
    down: frozenset[str]


def epochs_of(
    outages: list[tuple[str, float, float]], health_check: float, horizon: float
) -> list[Epoch]:
    """The changes of DNS's view of these (name, lost at, back at) outages: each is noticed
    `health_check` after it starts, and its end `health_check` after it ends. Changes at or
    after the run's `horizon` move nothing in it, and are left out."""
    noticed = [(name, at + health_check, back + health_check) for name, at, back in outages]
    changes = sorted(
        {t for _, start, end in noticed for t in (start, end) if t < horizon and math.isfinite(t)}
    )
    epochs = [Epoch(-math.inf, frozenset())]
    for when in changes:
        down = frozenset(name for name, start, end in noticed if start <= when < end)
        epochs.append(Epoch(when, down))
    return epochs


def move_ends(epochs: list[Epoch], ttl: float) -> tuple[float, ...]:
    """When each DNS move of these epochs is done: its clients' cached answers have all
    expired, `ttl` after the change was noticed."""
    return tuple(epoch.start + ttl for epoch in epochs[1:])


def dns_epochs(scenario: Scenario, geo: Geography, horizon: float) -> list[Epoch]:
    """The changes of DNS's view of the regions lost by the scenario's region faults."""
    outages = [
        (fault.region, fault.at, fault.at + fault.for_ if fault.for_ is not None else math.inf)
        for fault in scenario.faults
        if fault.region is not None
    ]
    return epochs_of(outages, geo.health_check, horizon)


def _serving(geo: Geography, client: str, hosts: tuple[str, ...], down: frozenset[str]) -> str:
    """Where DNS sends clients of `client` (geo or latency routing) while `down` are lost."""
    active = tuple(r for r in hosts if r not in geo.standby)
    usual = active or hosts
    if client in usual:
        preferred = client
    elif geo.policy == "latency":
        preferred = geo.nearest(client, usual)
    else:
        preferred = usual[0]  # geo: clients of a region without the service get the default
    if preferred not in down:
        return preferred
    standby = tuple(r for r in hosts if r in geo.standby and r not in down)
    survivors = standby or tuple(r for r in active if r not in down)
    return geo.nearest(client, survivors) if survivors else preferred


def redistributed(
    shares: dict[str, float], down: frozenset[str], standby: tuple[str, ...] = ()
) -> dict[str, float]:
    """Weighted DNS: each target's share; a lost one's goes to the `standby` targets evenly,
    or else to the surviving targets in proportion to their shares. With nowhere to go the
    requests stay where they were (and fail)."""
    total = sum(shares.values()) or 1.0
    result = {name: share / total for name, share in shares.items() if name not in down}
    lost = sum(share / total for name, share in shares.items() if name in down)
    if lost == 0:
        return result
    spare = [name for name in standby if name not in down]
    if spare:
        for name in spare:
            result[name] = result.get(name, 0.0) + lost / len(spare)
        return result
    alive = sum(result.values())
    if alive == 0:
        return {name: share / total for name, share in shares.items()}
    return {name: share * (1.0 + lost / alive) for name, share in result.items()}


def _weighted(geo: Geography, hosts: tuple[str, ...], down: frozenset[str]) -> dict[Pair, float]:
    """Weighted DNS over regions (`redistributed`, the standby regions taking a lost share)."""
    shares = {r: s for r, s in geo.shares.items() if r in hosts}
    standby = tuple(r for r in hosts if r in geo.standby)
    return {(None, r): s for r, s in redistributed(shares, down, standby).items()}


def routing_at(
    geo: Geography, clients: dict[str, float], hosts: tuple[str, ...], down: frozenset[str]
) -> dict[Pair, float]:
    """The share of a class's requests on each (clients' region, serving region) pair."""
    if geo.policy == "weighted" and len(clients) > 1:
        return _weighted(geo, hosts, down)
    result: dict[Pair, float] = {}
    for client, share in clients.items():
        pair = (client, _serving(geo, client, hosts, down))
        result[pair] = result.get(pair, 0.0) + share
    return result


def _moved(epoch: Epoch, t: float, ttl: float, left: bool) -> float:
    """The share of clients that have taken `epoch`'s answer by time `t` (a left limit with
    `left`): they refresh their DNS answers evenly over the TTL."""
    if epoch.start == -math.inf:
        return 1.0
    if ttl <= 0:
        return 1.0 if (t > epoch.start if left else t >= epoch.start) else 0.0
    return min(max((t - epoch.start) / ttl, 0.0), 1.0)


def pair_share(
    epochs: list[Epoch], routes: list[dict[Pair, float]], ttl: float
) -> Callable[[Pair, float, bool], float]:
    """share(pair, t, left): the share of the class's requests on `pair` at time t."""

    def share(pair: Pair, t: float, left: bool) -> float:
        total = 0.0
        for j, epoch in enumerate(epochs):
            weight = _moved(epoch, t, ttl, left)
            if j + 1 < len(epochs):
                weight -= _moved(epochs[j + 1], t, ttl, left)
            total += weight * routes[j].get(pair, 0.0)
        return total

    return share


# ---- classes -----------------------------------------------------------------------------------
def _rate_left(traffic: TrafficClass, t: float) -> float:
    """The class's offered rate just before t (a profile's step at t not yet taken)."""
    for point in traffic.profile:
        if point.at == t:
            return point.rate
    return traffic.rate_at(t)


def _breakpoints(traffic: TrafficClass, epochs: list[Epoch], ttl: float) -> list[float]:
    points = {0.0, *(p.at for p in traffic.profile)}
    for epoch in epochs[1:]:
        points.update((epoch.start, epoch.start + ttl))
        if traffic.profile and ttl > 0:
            points.update(epoch.start + ttl * i / RAMP_CHORDS for i in range(1, RAMP_CHORDS))
    return sorted(p for p in points if p >= 0.0)


def _profile(
    traffic: TrafficClass,
    pair: Pair,
    share: Callable[[Pair, float, bool], float],
    times: list[float],
) -> tuple[ProfilePoint, ...]:
    points: list[ProfilePoint] = []
    for t in times:
        before = _rate_left(traffic, t) * share(pair, t, True)
        after = traffic.rate_at(t) * share(pair, t, False)
        if t > 0 and before != after:
            points.append(ProfilePoint(t, before))
        points.append(ProfilePoint(t, after))
    return tuple(points)


def _class_name(traffic: TrafficClass, pair: Pair) -> str:
    client, server = pair
    if client is None or client == server:
        return f"{traffic.name}@{server}"
    return f"{traffic.name}@{client}->{server}"


def split_class(
    traffic: TrafficClass,
    clients: dict[str, float],
    hosts: tuple[str, ...],
    geo: Geography,
    epochs: list[Epoch],
) -> list[tuple[Pair, TrafficClass]]:
    """The class's (pair, part) for every pair that gets some of its requests during the run."""
    routes = [routing_at(geo, clients, hosts, e.down) for e in epochs]
    pairs = sorted({p for route in routes for p, s in route.items() if s > 0}, key=_pair_order(geo))
    share = pair_share(epochs, routes, geo.dns_ttl)
    moving = len(epochs) > 1
    times = _breakpoints(traffic, epochs, geo.dns_ttl) if moving else []
    parts = []
    for pair in pairs:
        client, server = pair
        delay = geo.round_trip(client, server) if client is not None else 0.0
        named = replace(traffic, name=_class_name(traffic, pair), network_delay=delay)
        if moving:
            profile = _profile(traffic, pair, share, times)
            part = replace(named, profile=profile, rate=profile[0].rate)
        elif traffic.is_closed:
            part = named  # a closed class has all its clients in one region
        else:
            part = named.scaled(routes[0][pair])
        parts.append((pair, part))
    return parts


def _pair_order(geo: Geography) -> Callable[[Pair], tuple[int, int]]:
    def order(pair: Pair) -> tuple[int, int]:
        client, server = pair
        first = -1 if client is None else geo.names.index(client)
        return first, geo.names.index(server)

    return order


# ---- faults and SLOs ---------------------------------------------------------------------------
def _faults(model: Model, scenario: Scenario, where: Placement, tiers: list[Tier]) -> list[Fault]:
    faults = [
        _fault_copy(fault, model.tiers[fault.tier], tiers[where.copies[(fault.tier, region)]])
        for fault in model.faults
        for region in where.regions[fault.tier]
    ]
    for spec in scenario.faults:
        if spec.region is None:
            continue
        until = spec.at + spec.for_ if spec.for_ is not None else None
        span = f" for {format_duration(spec.for_)}" if spec.for_ is not None else ""
        text = f"region {spec.region} lost at {format_duration(spec.at)}{span}"
        faults.extend(
            Fault(
                spec.at,
                until,
                tier.index,
                lose=tuple(range(tier.servers)),
                text=text,
                losing=LoseRule(every=True),
            )
            for tier in tiers
            if tier.region == spec.region
        )
    return faults


def _fault_copy(fault: Fault, tier: Tier, copy: Tier) -> Fault:
    """A tier's fault on one copy; a copy with its own instances loses as many of its last
    ones as the tier would (a zone's instances only go with copies of the tier's size)."""
    if copy.servers == tier.servers or not fault.lose:
        return replace(fault, tier=copy.index)
    lost = tuple(range(max(copy.servers - len(fault.lose), 0), copy.servers))
    return replace(fault, tier=copy.index, lose=lost)


#: Why solve leaves an objective on a class part that a region fault moves or loses unjudged.
MOVED_PART_NOT_JUDGED = (
    "a region fault moves this part's requests during the run (lost, or sent to another region): "
    "solve's steady state at one rate cannot judge it; run the simulation"
)


def _moved_by_region_fault(routes: list[dict[Pair, float]], pair: Pair) -> bool:
    """Whether the pair's share of the class changes between DNS epochs (a region fault)."""
    return len({route.get(pair, 0.0) for route in routes}) > 1


def _slos(
    model: Model, class_parts: dict[int, list[TrafficClass]], where: Placement, moved: set[int]
) -> list[Slo]:
    """Each class SLO for every part of the class, each tier SLO for every copy of the tier;
    an objective on a part in `moved` carries why solve cannot judge it."""
    slos: list[Slo] = []
    for slo in model.slos:
        if slo.class_index is not None:
            name = model.classes[slo.class_index].name
            slos.extend(
                replace(
                    slo,
                    text=part.name + slo.text[len(name) :],
                    class_index=part.index,
                    not_judged_by_solve=MOVED_PART_NOT_JUDGED if part.index in moved else None,
                )
                for part in class_parts[slo.class_index]
            )
        elif slo.tier_index is not None:
            name = model.tiers[slo.tier_index].name
            slos.extend(
                replace(
                    slo,
                    text=f"{name}@{region}" + slo.text[len(name) :],
                    tier_index=where.copies[(slo.tier_index, region)],
                )
                for region in where.regions[slo.tier_index]
            )
    return slos


# ---- the whole model ---------------------------------------------------------------------------
def place_in_regions(model: Model, scenario: Scenario) -> Model:
    """The model with its regions compiled in (the model itself when there are none)."""
    if not scenario.regions:
        return model
    geo = geography(scenario)
    where = placement(model, scenario, geo)
    epochs = dns_epochs(scenario, geo, model.horizon)
    classes: list[TrafficClass] = []
    class_origin: list[int] = []
    class_parts: dict[int, list[TrafficClass]] = {}
    moved: set[int] = set()
    for traffic in model.classes:
        pinned = scenario.traffic[traffic.name.split("~")[0]].region  # a split's part: c~cdn
        clients = {pinned: 1.0} if pinned is not None else geo.shares
        hosts = where.regions[traffic.entry]
        routes = [routing_at(geo, clients, hosts, e.down) for e in epochs]
        for pair, part in split_class(traffic, clients, hosts, geo, epochs):
            entry = where.copies[(traffic.entry, pair[1])]
            part = replace(part, index=len(classes), entry=entry)
            if _moved_by_region_fault(routes, pair):
                moved.add(part.index)
            classes.append(part)
            class_origin.append(traffic.index)
            class_parts.setdefault(traffic.index, []).append(part)
    tiers = [
        _tier_copy(tier, region, geo, where, class_origin)
        for tier in model.tiers
        for region in where.regions[tier.index]
    ]
    return replace(
        model,
        classes=tuple(classes),
        tiers=tuple(tiers),
        slos=tuple(_slos(model, class_parts, where, moved)),
        faults=tuple(_faults(model, scenario, where, tiers)),
        traffic_moves=tuple(sorted({*model.traffic_moves, *move_ends(epochs, geo.dns_ttl)})),
        tier_index={tier.name: tier.index for tier in tiers},
        class_index={traffic.name: traffic.index for traffic in classes},
    )
