"""Checks of the regions of a scenario (docs/regions.md): names that exist, a complete and
consistent round-trip-time matrix, shares that add up, writes that have a primary to go to."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from capsim.errors import Problem
from capsim.scenario.loader import PathKey
from capsim.scenario.schema import (
    SUGGEST_CUTOFF,
    AnyTier,
    CallSpec,
    ParallelCall,
    Scenario,
    TierCall,
    suggest,
)

#: Shares may miss 100% by this much (written as rounded percentages).
SHARE_SLACK = 1e-6


def check_regions(scenario: Scenario) -> list[Problem]:
    """Every problem with the scenario's regions and split entries, located in its file."""
    problems = _split_problems(scenario) + _partition_problems(scenario)
    if not scenario.regions:
        return problems + _regional_keys_without_regions(scenario)
    return problems + _region_problems(scenario)


def _region_problems(scenario: Scenario) -> list[Problem]:
    problems = _unknown_regions(scenario) + _regional_instances(scenario)
    problems.extend(_rtt_problems(scenario))
    problems.extend(_share_problems(scenario))
    problems.extend(_write_problems(scenario))
    problems.extend(_unmovable_classes(scenario))
    problems.extend(_serverless_in_a_lost_region(scenario))
    return problems


def _serverless_in_a_lost_region(scenario: Scenario) -> list[Problem]:
    """A lost region's serverless copy would start instances again for the next request (its
    instances come and go with its requests): losing one is not modelled, as for `lose:`."""
    problems = []
    for i, fault in enumerate(scenario.faults):
        if fault.region is None:
            continue
        for name, tier in scenario.tiers.items():
            if not getattr(getattr(tier, "autoscale", None), "scale_to_zero", False):
                continue
            if tier.regions is not None and fault.region not in tier.regions:
                continue
            problems.append(
                scenario.problem(
                    f"region {fault.region!r} is lost, and serverless tier {name!r} runs there: "
                    "losing a serverless tier's instances is not modelled (they come and go with "
                    "its requests); keep the tier out of that region (regions: [...]) or give "
                    "it a fixed size",
                    ("faults", i, "region"),
                )
            )
    return problems


def _uses_of_regions(scenario: Scenario) -> Iterator[tuple[str, PathKey]]:
    """(region name, where) of every key that names a region outside `regions:` itself."""
    for name, tier in scenario.tiers.items():
        for i, region in enumerate(tier.regions or {}):
            listed = ("tiers", name, "regions", i)  # `regions: [eu, us]`, else a mapping
            yield region, listed if listed in scenario.positions else (*listed[:-1], region)
        if tier.primary is not None:
            yield tier.primary, ("tiers", name, "primary")
    for name, traffic in scenario.traffic.items():
        if traffic.region is not None:
            yield traffic.region, ("traffic", name, "region")
    for i, fault in enumerate(scenario.faults):
        if fault.region is not None:
            yield fault.region, ("faults", i, "region")


def _regional_keys_without_regions(scenario: Scenario) -> list[Problem]:
    problems = [
        scenario.problem(
            f"{path[-1] if isinstance(path[-1], str) else path[-2]} names region {region!r}, "
            "but the scenario declares no regions; add regions: {eu: {rtt: {us: 70ms}}, us: {}} "
            "at the top level",
            path,
            at_key=isinstance(path[-1], str),
        )
        for region, path in _uses_of_regions(scenario)
    ]
    for call, path in _all_tier_calls(scenario):
        if call.write:
            problems.append(
                scenario.problem(
                    "write: true sends a call to the callee's primary region, but the scenario "
                    "declares no regions; remove it or add regions:",
                    (*path, "write"),
                    at_key=True,
                )
            )
    split = any(isinstance(spec.entry, dict) for spec in scenario.traffic.values())
    if "routing" in scenario.model_fields_set and not split:
        problems.append(
            scenario.problem(
                "routing: says how DNS spreads traffic over regions or split entries, but the "
                "scenario declares no regions and no class splits its entry; remove it",
                ("routing",),
                at_key=True,
            )
        )
    return problems


def _unknown_regions(scenario: Scenario) -> list[Problem]:
    valid = list(scenario.regions)
    problems = []
    uses = list(_uses_of_regions(scenario))
    for name, spec in scenario.regions.items():
        uses.extend((other, ("regions", name, "rtt", other)) for other in spec.rtt)
    for used, path in uses:
        if used not in scenario.regions:
            problems.append(
                scenario.problem(
                    f"unknown region {used!r}{suggest(used, valid)} (regions: {', '.join(valid)})",
                    path,
                    at_key=path[-2] == "rtt",
                )
            )
    return problems


def _rtt_problems(scenario: Scenario) -> list[Problem]:
    """Every pair of regions has one round-trip time, written on one side or equal on both."""
    regions = scenario.regions
    names = list(regions)
    problems = []
    for a, spec in regions.items():
        if a in spec.rtt:
            problems.append(
                scenario.problem(
                    f"region {a!r} lists an rtt to itself; the round trip inside a region is "
                    "not modelled (0), remove it",
                    ("regions", a, "rtt", a),
                    at_key=True,
                )
            )
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            there, back = regions[a].rtt.get(b), regions[b].rtt.get(a)
            if there is None and back is None and not _misspelt_rtt(scenario, a, b):
                problems.append(
                    scenario.problem(
                        f"no round-trip time between regions {a!r} and {b!r}; add rtt: "
                        f"{{{b}: 70ms}} to region {a} (or rtt: {{{a}: ...}} to {b})",
                        ("regions", a),
                        at_key=True,
                    )
                )
            elif there is not None and back is not None and there != back:
                problems.append(
                    scenario.problem(
                        f"the round trip between {a!r} and {b!r} is {there:g}s one way and "
                        f"{back:g}s the other; a round trip is one figure: write it on one side",
                        ("regions", b, "rtt", a),
                    )
                )
    return problems


def _misspelt_rtt(scenario: Scenario, a: str, b: str) -> bool:
    """Whether a or b lists an rtt to an unknown region whose did-you-mean is the other: the
    round trip is there, misspelt, and the unknown-region problem says how to fix it."""
    names = list(scenario.regions)
    return any(
        key not in scenario.regions
        and difflib.get_close_matches(key, names, n=1, cutoff=SUGGEST_CUTOFF) == [other]
        for region, other in ((a, b), (b, a))
        for key in scenario.regions[region].rtt
    )


def _share_problems(scenario: Scenario) -> list[Problem]:
    """Standby regions have no share; the active ones have none or all, adding up to 100%."""
    regions = scenario.regions
    problems = []
    active = [name for name, spec in regions.items() if not spec.standby]
    for name, spec in regions.items():
        if spec.standby and spec.share is not None:
            problems.append(
                scenario.problem(
                    f"region {name!r} is a standby: it takes traffic only when a region is lost, "
                    "so it has no share; remove share (or standby)",
                    ("regions", name, "share"),
                    at_key=True,
                )
            )
    if not active:
        problems.append(
            scenario.problem(
                "every region is a standby: at least one must take traffic (remove standby)",
                ("regions",),
                at_key=True,
            )
        )
        return problems
    given = [name for name in active if regions[name].share is not None]
    if not given:
        return problems
    missing = [name for name in active if regions[name].share is None]
    if missing:
        problems.append(
            scenario.problem(
                f"region {missing[0]!r} has no share while {given[0]!r} has one; give every "
                "active region a share (they add up to 100%), or none (equal shares)",
                ("regions", missing[0]),
                at_key=True,
            )
        )
        return problems
    total = sum(float(regions[name].share or 0.0) for name in active)
    if abs(total - 1.0) > SHARE_SLACK:
        problems.append(
            scenario.problem(
                f"the regions' shares add up to {total * 100:.6g}%; they must add up to 100%",
                ("regions", given[-1], "share"),
            )
        )
    return problems


def _tier_calls(calls: list[CallSpec], base: PathKey) -> Iterator[tuple[TierCall, PathKey]]:
    for i, call in enumerate(calls):
        if isinstance(call, TierCall):
            yield call, (*base, i)
        elif isinstance(call, ParallelCall):
            yield from _tier_calls(call.parallel, (*base, i, "parallel"))


def _all_tier_calls(scenario: Scenario) -> Iterator[tuple[TierCall, PathKey]]:
    for name, tier in scenario.tiers.items():
        yield from _tier_calls(getattr(tier, "calls", []), ("tiers", name, "calls"))
        for class_name, override in tier.classes.items():
            calls = getattr(override, "calls", None)
            if calls:
                yield from _tier_calls(calls, ("tiers", name, "classes", class_name, "calls"))


def _write_problems(scenario: Scenario) -> list[Problem]:
    """A write goes to the callee's primary region: the callee must have one."""
    tiers: dict[str, AnyTier] = scenario.tier_specs()
    problems = []
    for call, path in _all_tier_calls(scenario):
        callee = tiers.get(call.tier)
        if call.write and callee is not None and callee.primary is None:
            problems.append(
                scenario.problem(
                    f"write: true sends the call to {call.tier}'s primary region, but "
                    f"{call.tier} has no primary; add primary: REGION to tier {call.tier}",
                    (*path, "write"),
                    at_key=True,
                )
            )
    return problems


def _unmovable_classes(scenario: Scenario) -> list[Problem]:
    """Classes that cannot be split over regions by a share, or moved by a region fault."""
    problems = []
    several = sum(1 for spec in scenario.regions.values() if not spec.standby) > 1
    region_fault = any(fault.region is not None for fault in scenario.faults)
    for name, traffic in scenario.traffic.items():
        kind = "users" if traffic.users is not None else traffic.arrival_kind
        if kind not in ("trace", "mmpp", "batch", "users"):
            continue
        what = "a closed class (users)" if kind == "users" else f"a class with {kind} arrivals"
        if region_fault:
            problems.append(
                scenario.problem(
                    f"class {name!r} is {what}: a region fault moves traffic with a rate "
                    "profile, which only poisson or constant arrivals take; use those arrivals "
                    "or drop the region fault",
                    ("traffic", name),
                    at_key=True,
                )
            )
        elif kind in ("trace", "users") and several and traffic.region is None:
            problems.append(
                scenario.problem(
                    f"class {name!r} is {what}, which cannot be split over regions by a share; "
                    "put all its clients in one region with region: NAME",
                    ("traffic", name),
                    at_key=True,
                )
            )
    return problems


def _split_problems(scenario: Scenario) -> list[Problem]:
    """A split entry needs requests that can be thinned: open arrivals, not a trace; a fault
    that moves its share needs a class that takes a rate profile (poisson or constant)."""
    problems = []
    lost = {fault.tier for fault in scenario.faults if fault.tier is not None}
    for name, traffic in scenario.traffic.items():
        if not isinstance(traffic.entry, dict) or len(traffic.entry) < 2:
            continue
        kind = "users" if traffic.users is not None else traffic.arrival_kind
        moved = lost & set(traffic.entry)
        if kind in ("trace", "users") or (kind in ("mmpp", "batch") and moved):
            what = "a closed class (users)" if kind == "users" else f"a class with {kind} arrivals"
            why = (
                f"a fault on {sorted(moved)[0]} moves its share with a rate profile"
                if kind in ("mmpp", "batch")
                else "its requests cannot be split by a share"
            )
            problems.append(
                scenario.problem(
                    f"class {name!r} is {what}: {why}; give it one entry tier, or poisson or "
                    "constant arrivals",
                    ("traffic", name, "entry"),
                    at_key=True,
                )
            )
    return problems


def _partition_problems(scenario: Scenario) -> list[Problem]:
    """Affinity and shards split a tier into fixed parts: no autoscaling, no other balancing,
    and affinity needs instances to choose between (a database is split with shards)."""
    problems = []
    for name, tier in scenario.tiers.items():
        setting = getattr(tier, "shards", None) or getattr(tier, "affinity", None)
        if setting is None:
            continue
        key = "shards" if getattr(tier, "shards", None) is not None else "affinity"
        here: PathKey = ("tiers", name, key)
        if getattr(tier, "autoscale", None) is not None:
            problems.append(
                scenario.problem(
                    f"{key} ties requests to fixed parts of {name}, so it cannot autoscale; "
                    "remove autoscale (or size it with capsim size)",
                    here,
                    at_key=True,
                )
            )
        if key == "affinity" and tier.type == "database":
            problems.append(
                scenario.problem(
                    "a database is split by key with shards: {count, keys, zipf}, not affinity",
                    here,
                    at_key=True,
                )
            )
        elif key == "affinity" and getattr(tier, "instances", 1) < 2:
            problems.append(
                scenario.problem(
                    f"affinity chooses one of {name}'s instances for each client, but it has "
                    "one; give it instances: 2 or more",
                    here,
                    at_key=True,
                )
            )
        if key == "shards" and tier.type == "cache":
            problems.extend(_lost_nodes(scenario, name, setting.count))
        if key == "affinity" and "balancing" in tier.model_fields_set:
            problems.append(
                scenario.problem(
                    "affinity decides which instance serves each client; remove balancing",
                    ("tiers", name, "balancing"),
                    at_key=True,
                )
            )
    return problems


def _regional_instances(scenario: Scenario) -> list[Problem]:
    """A copy's own instances: not with zones (a zone's instances are counted on the tier)."""
    problems = []
    for name, tier in scenario.tiers.items():
        for region, copy in (tier.regions or {}).items():
            if getattr(copy, "instances", None) is None:
                continue
            if getattr(tier, "zones", None) or getattr(tier, "autoscale", None) is not None:
                what = "zones" if getattr(tier, "zones", None) else "autoscale"
                problems.append(
                    scenario.problem(
                        f"a copy's own instances do not go with {what} on {name} (every copy "
                        f"has the tier's {what}); remove instances from region {region}",
                        ("tiers", name, "regions", region, "instances"),
                        at_key=True,
                    )
                )
            elif getattr(tier, "affinity", None) is not None:
                problems.append(
                    scenario.problem(
                        f"{name}'s affinity nodes are its instances; give the tier its "
                        f"instances, not region {region}",
                        ("tiers", name, "regions", region, "instances"),
                        at_key=True,
                    )
                )
    return problems


def _lost_nodes(scenario: Scenario, name: str, nodes: int) -> list[Problem]:
    """A fault on a cache cluster loses whole nodes: a count, at most the nodes it has."""
    problems = []
    for i, fault in enumerate(scenario.faults):
        if fault.tier != name or fault.lose is None:
            continue
        if isinstance(fault.lose, bool) or not isinstance(fault.lose, int) or fault.lose > nodes:
            problems.append(
                scenario.problem(
                    f"{name} is a cluster of {nodes} nodes: a fault loses a number of them, "
                    f"from 1 to {nodes} (lose: 1 loses the last node)",
                    ("faults", i, "lose"),
                )
            )
    return problems
