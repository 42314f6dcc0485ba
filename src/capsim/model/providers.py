"""A class's entry split between tiers (multi-CDN, docs/regions.md#multi-cdn), compiled into the
model: one class part per entry tier, `CLASS~TIER`, with its share of the requests; when a
fault takes an entry tier down (every instance lost, or half its answers errors or more), DNS
moves its share to the others in proportion to theirs, noticed `routing.health_check` after
the fault and spread evenly over `routing.dns_ttl`, as for a lost region."""

from __future__ import annotations

import math
from dataclasses import replace

from capsim.model.regions import (
    Epoch,
    Pair,
    _breakpoints,
    _profile,
    epochs_of,
    move_ends,
    pair_share,
    redistributed,
)
from capsim.model.types import Fault, Model, Slo, Tier, TrafficClass
from capsim.scenario.schema import Scenario

#: A fault answering at least this share of errors takes an entry tier out of DNS (the health
#: checks fail more often than they pass).
DOWN_ERROR_RATE = 0.5


def _takes_down(fault: Fault, tier: Tier) -> bool:
    return len(fault.lose) >= tier.servers or fault.error_rate >= DOWN_ERROR_RATE


def _outages(model: Model, entries: dict[int, float]) -> list[tuple[str, float, float]]:
    return [
        (model.tiers[fault.tier].name, fault.at, math.inf if fault.until is None else fault.until)
        for fault in model.faults
        if fault.tier in entries and _takes_down(fault, model.tiers[fault.tier])
    ]


def _parts(
    traffic: TrafficClass, entries: dict[int, float], model: Model, scenario: Scenario
) -> list[TrafficClass]:
    names = {model.tiers[t].name: t for t in entries}
    shares = {model.tiers[t].name: share for t, share in entries.items()}
    epochs: list[Epoch] = epochs_of(
        _outages(model, entries), scenario.routing.health_check, model.horizon
    )
    routes: list[dict[Pair, float]] = [
        {(None, name): s for name, s in redistributed(shares, epoch.down).items()}
        for epoch in epochs
    ]
    share = pair_share(epochs, routes, scenario.routing.dns_ttl)
    moving = len(epochs) > 1
    times = _breakpoints(traffic, epochs, scenario.routing.dns_ttl) if moving else []
    parts = []
    for name, tier in names.items():
        pair: Pair = (None, name)
        if not any(route.get(pair, 0.0) > 0 for route in routes):
            continue
        part = replace(traffic, name=f"{traffic.name}~{name}", entry=tier)
        if moving:
            profile = _profile(traffic, pair, share, times)
            parts.append(replace(part, profile=profile, rate=profile[0].rate))
        else:
            parts.append(part.scaled(routes[0][pair]))
    return parts


def split_entries(model: Model, scenario: Scenario) -> Model:
    """The model with every split entry compiled into class parts (itself when none is)."""
    if all(not isinstance(spec.entry, dict) for spec in scenario.traffic.values()):
        return model
    classes: list[TrafficClass] = []
    origin: list[int] = []
    parts_of: dict[int, list[TrafficClass]] = {}
    moves: set[float] = set(model.traffic_moves)
    for traffic in model.classes:
        shares = scenario.traffic[traffic.name].entry_shares
        entries = {model.tier_index[name]: share for name, share in shares.items()}
        if len(entries) > 1:
            epochs = epochs_of(
                _outages(model, entries), scenario.routing.health_check, model.horizon
            )
            moves.update(move_ends(epochs, scenario.routing.dns_ttl))
        parts = _parts(traffic, entries, model, scenario) if len(entries) > 1 else [traffic]
        for part in parts:
            part = replace(part, index=len(classes))
            classes.append(part)
            origin.append(traffic.index)
            parts_of.setdefault(traffic.index, []).append(part)
    tiers = tuple(
        replace(
            tier,
            work=tuple(tier.work[k] for k in origin),
            priorities=tuple(tier.priorities[k] for k in origin) if tier.priorities else (),
        )
        for tier in model.tiers
    )
    return replace(
        model,
        classes=tuple(classes),
        tiers=tiers,
        slos=tuple(_slos(model, parts_of)),
        traffic_moves=tuple(sorted(moves)),
        class_index={traffic.name: traffic.index for traffic in classes},
    )


def _slos(model: Model, parts_of: dict[int, list[TrafficClass]]) -> list[Slo]:
    slos: list[Slo] = []
    for slo in model.slos:
        if slo.class_index is None:
            slos.append(slo)
            continue
        name = model.classes[slo.class_index].name
        slos.extend(
            replace(slo, text=part.name + slo.text[len(name) :], class_index=part.index)
            for part in parts_of[slo.class_index]
        )
    return slos
