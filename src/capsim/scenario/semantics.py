"""Checks of meaning: references resolve, every request finishes, SLOs name real things."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from capsim import graphs
from capsim.errors import Problem
from capsim.scenario.loader import PathKey
from capsim.scenario.regions import check_regions
from capsim.scenario.schema import (
    QUEUE_SLO_STATISTICS,
    AnyTier,
    CacheTier,
    CallSpec,
    CdnTier,
    ForwardCall,
    LoadBalancerTier,
    LruModel,
    OneOfCall,
    ParallelCall,
    QueueTier,
    Scenario,
    TierCall,
    TtlModel,
    forward_target,
    suggest,
)

MissRatio = Callable[[float | LruModel | TtlModel], float]


def bounded_miss_ratio(hit_ratio: float | LruModel | TtlModel) -> float:
    """Miss ratio of a hit-ratio setting; for an LRU model an upper bound, 1 - capacity/keys.

    Under Zipf popularity an LRU cache hits at least as often as its share of the catalogue, so
    the bound is safe for checks that need the miss ratio to be small enough.
    """
    if isinstance(hit_ratio, TtlModel):
        return 1.0  # depends on the request rate: assume every request may miss
    if isinstance(hit_ratio, LruModel):
        return max(0.0, 1.0 - hit_ratio.capacity / hit_ratio.keys)
    return 1.0 - hit_ratio


@dataclass(frozen=True)
class Edge:
    """Calls from one visit of a tier to `target`: `expected` calls on average."""

    target: str
    expected: float
    certain: bool
    path: PathKey


def call_edges(calls: list[CallSpec], base: PathKey) -> Iterator[Edge]:
    """The edges of a list of calls, each with the key path that makes it."""
    for i, call in enumerate(calls):
        here = (*base, i)
        if isinstance(call, str):
            yield Edge(target=call, expected=1.0, certain=True, path=here)
        elif isinstance(call, TierCall):
            yield Edge(
                target=call.tier,
                expected=call.probability * call.repeat,
                certain=call.probability == 1.0,
                path=(*here, "tier"),
            )
        elif isinstance(call, OneOfCall):
            for name, weight in call.one_of.items():
                yield Edge(
                    target=name,
                    expected=weight,
                    certain=weight == 1.0,
                    path=(*here, "one_of", name),
                )
        elif isinstance(call, ParallelCall):
            yield from call_edges(call.parallel, (*here, "parallel"))


def miss_to_origin(tier: CacheTier | CdnTier, miss_ratio: MissRatio) -> float:
    """Share of requests to a cache or cdn that go on to `on_miss` (through any origin shield)."""
    miss = miss_ratio(tier.hit_ratio)
    if isinstance(tier, CdnTier) and tier.origin_shield is not None:
        miss *= miss_ratio(tier.origin_shield.hit_ratio)
    return miss


def forward_path(name: str, key: str, forward: str | ForwardCall) -> PathKey:
    """Where a forwarding setting names its tier: the key itself, or its mapping's `tier`."""
    return ("tiers", name, key) if isinstance(forward, str) else ("tiers", name, key, "tier")


def tier_edges(name: str, tier: AnyTier, class_name: str, miss_ratio: MissRatio) -> list[Edge]:
    """What one visit of `tier` by a request of `class_name` calls."""
    edges: list[Edge] = []
    if isinstance(tier, LoadBalancerTier):
        edges.append(
            Edge(
                target=tier.backends if isinstance(tier.backends, str) else tier.backends.tier,
                expected=1.0,
                certain=True,
                path=forward_path(name, "backends", tier.backends),
            )
        )
    if isinstance(tier, (CacheTier, CdnTier)) and tier.on_miss is not None:
        miss = miss_to_origin(tier, miss_ratio)
        if miss > 0:
            edges.append(
                Edge(
                    target=tier.on_miss if isinstance(tier.on_miss, str) else tier.on_miss.tier,
                    expected=miss,
                    certain=miss >= 1.0,
                    path=forward_path(name, "on_miss", tier.on_miss),
                )
            )
    override = tier.classes.get(class_name)
    own = getattr(override, "calls", None)
    if own is not None:
        edges.extend(call_edges(own, ("tiers", name, "classes", class_name, "calls")))
    else:
        edges.extend(call_edges(getattr(tier, "calls", []), ("tiers", name, "calls")))
    return edges


def _names_list(names: list[str]) -> str:
    return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")


#: Problems after which unknown names get no "did you mean" (each costs a pass over every name).
MAX_SUGGESTIONS = 50
#: The most tiers a scenario may have, and the most (tier, class) pairs: every tier describes
#: its work for every class, so the model, its validation and the engine's set-up grow with
#: tiers x classes (2,000 x 2,000 took minutes before the first event).
MAX_TIERS = 10_000
MAX_TIER_CLASS_PAIRS = 200_000


def _too_large(scenario: Scenario, tiers: int, classes: int) -> list[Problem]:
    if tiers > MAX_TIERS:
        return [
            scenario.problem(
                f"the scenario has {tiers:,} tiers; capsim models at most {MAX_TIERS:,}",
                ("tiers",),
                True,
            )
        ]
    if tiers * classes > MAX_TIER_CLASS_PAIRS:
        return [
            scenario.problem(
                f"the scenario has {tiers:,} tiers and {classes:,} classes: every tier's work is "
                f"described per class, {tiers * classes:,} pairs; capsim models at most "
                f"{MAX_TIER_CLASS_PAIRS:,}. Merge classes that behave alike",
                ("traffic",),
                True,
            )
        ]
    return []


def check_scenario(scenario: Scenario, miss_ratio: MissRatio = bounded_miss_ratio) -> list[Problem]:
    """Every problem of meaning in a schema-valid scenario, located in its file."""
    problems: list[Problem] = []
    tiers = scenario.tier_specs()
    tier_names = list(tiers)
    class_names = list(scenario.traffic)
    known = {"tier": set(tier_names), "class": set(class_names)}
    too_large = _too_large(scenario, len(tier_names), len(class_names))
    if too_large:
        return too_large

    def reference(name: str, path: PathKey, what: str = "tier", at_key: bool = False) -> bool:
        if name in known["tier" if what == "tier" else "class"]:
            return True
        valid = tier_names if what == "tier" else class_names
        # A suggestion compares the name with every valid one: only for the first problems,
        # so that thousands of unknown names among thousands of tiers stay quick.
        hint = suggest(name, valid) if len(problems) < MAX_SUGGESTIONS else ""
        problems.append(
            scenario.problem(
                f"unknown {what} {name!r}{hint} "
                f"({'tiers' if what == 'tier' else 'classes'}: {_names_list(valid)})",
                path,
                at_key,
            )
        )
        return False

    for class_name, traffic in scenario.traffic.items():
        if isinstance(traffic.entry, dict):
            for name in traffic.entry:
                reference(name, ("traffic", class_name, "entry", name), at_key=True)
        else:
            reference(traffic.entry, ("traffic", class_name, "entry"))

    for name, tier in tiers.items():
        for class_name in tier.classes:
            reference(class_name, ("tiers", name, "classes", class_name), "class", at_key=True)
        for i, class_name in enumerate(getattr(tier, "priorities", None) or []):
            reference(class_name, ("tiers", name, "priorities", i), "class")
        for class_name in ["", *tier.classes]:
            for edge in tier_edges(name, tier, class_name, miss_ratio):
                if class_name and edge.path[:4] != ("tiers", name, "classes", class_name):
                    continue  # already checked with the tier's own calls
                if edge.path[2] == "on_miss":
                    continue  # checked below, whatever the hit ratio
                reference(edge.target, edge.path, at_key=edge.path[-2] == "one_of")
        if isinstance(tier, (CacheTier, CdnTier)):
            if tier.on_miss is None and miss_to_origin(tier, miss_ratio) > 0:
                problems.append(
                    scenario.problem(
                        f"{name} misses (hit_ratio below 1) but has no on_miss; "
                        "add on_miss: TIER, the tier that answers misses",
                        ("tiers", name),
                        at_key=True,
                    )
                )
            elif tier.on_miss is not None:
                target = forward_target(tier.on_miss)
                assert target is not None
                reference(target, forward_path(name, "on_miss", tier.on_miss))

    synthetic = [
        f"{n}.origin_shield" for n, t in tiers.items() if isinstance(t, CdnTier) and t.origin_shield
    ]
    for i, slo in enumerate(scenario.slos):
        if slo.class_ is not None:
            reference(slo.class_, ("slos", i, "class"), "class")
        elif slo.tier is not None and slo.tier not in synthetic:
            if reference(slo.tier, ("slos", i, "tier")):
                problems.extend(_queue_statistics_on_queues(scenario, i, tiers[slo.tier]))
        elif slo.tier is not None:
            problems.extend(_queue_statistics_on_queues(scenario, i, None))

    problems.extend(_check_hedges(scenario, tiers))
    problems.extend(_check_faults(scenario, tiers))
    problems.extend(_check_autoscale(scenario, tiers))
    problems.extend(_check_costs(scenario, tiers))
    problems.extend(check_regions(scenario))
    if not problems:
        problems.extend(_check_termination(scenario, tiers, miss_ratio))
    return sorted(problems, key=lambda p: (p.file, p.line, p.column))


def _tier_calls(calls: list[CallSpec], base: PathKey) -> Iterator[tuple[TierCall, PathKey]]:
    """Every `{tier: ...}` call of a list (inside parallel groups too), with its key path."""
    for i, call in enumerate(calls):
        if isinstance(call, TierCall):
            yield call, (*base, i)
        elif isinstance(call, ParallelCall):
            yield from _tier_calls(call.parallel, (*base, i, "parallel"))


def _check_hedges(scenario: Scenario, tiers: dict[str, AnyTier]) -> list[Problem]:
    """A hedge needs a callee that answers: a queue answers a publish at once."""
    problems: list[Problem] = []
    for name, tier in tiers.items():
        lists: list[tuple[list[CallSpec], PathKey]] = [
            (getattr(tier, "calls", []), ("tiers", name, "calls"))
        ]
        for class_name, override in tier.classes.items():
            calls = getattr(override, "calls", None)
            if calls is not None:
                lists.append((calls, ("tiers", name, "classes", class_name, "calls")))
        hedged: list[tuple[TierCall | ForwardCall, PathKey]] = [
            pair for calls, base in lists for pair in _tier_calls(calls, base)
        ]
        for key in ("on_miss", "backends"):
            forward = getattr(tier, key, None)
            if isinstance(forward, ForwardCall):
                hedged.append((forward, ("tiers", name, key)))
        for call, path in hedged:
            if call.hedge is not None and isinstance(tiers.get(call.tier), QueueTier):
                problems.append(
                    scenario.problem(
                        f"{call.tier} is a queue: a publish is answered at once, so there "
                        "is nothing to hedge; remove hedge (or hedge the consumer's calls)",
                        (*path, "hedge"),
                        at_key=True,
                    )
                )
    return problems


def _queue_statistics_on_queues(
    scenario: Scenario, index: int, tier: AnyTier | None
) -> list[Problem]:
    """Message age and backlog SLOs only on queue tiers (`tier` None: a synthetic cache tier)."""
    if isinstance(tier, QueueTier):
        return []
    slo = scenario.slos[index]
    kind = "a cache" if tier is None else f"a {tier.type}"
    problems = []
    for statistic in QUEUE_SLO_STATISTICS:
        if getattr(slo, statistic) is None:
            continue
        remedy = (
            f"for the time requests wait for a worker write wait_{statistic.removeprefix('age_')}"
            if statistic.startswith("age_")
            else "for requests waiting for a worker use wait_p99 or occupancy"
        )
        problems.append(
            scenario.problem(
                f"{statistic} is a queue statistic, but {slo.tier} is {kind} tier; {remedy}",
                ("slos", index, statistic),
                True,
            )
        )
    return problems


def _check_faults(scenario: Scenario, tiers: dict[str, AnyTier]) -> list[Problem]:
    """Faults name real tiers and zones, and lose no more instances than a tier has."""
    problems: list[Problem] = []
    zones = sorted({z for t in tiers.values() for z in (getattr(t, "zones", None) or [])})
    for i, fault in enumerate(scenario.faults):
        here: PathKey = ("faults", i)
        if fault.zone is not None and fault.zone not in zones:
            known = f"zones: {_names_list(zones)}" if zones else "no tier lists zones: yet"
            problems.append(
                scenario.problem(
                    f"unknown zone {fault.zone!r}{suggest(fault.zone, zones)} ({known}); "
                    "spread a tier over zones with zones: [a, b, c]",
                    (*here, "zone"),
                )
            )
        if fault.tier is None:
            continue
        tier = tiers.get(fault.tier)
        if tier is None:
            valid = list(tiers)
            problems.append(
                scenario.problem(
                    f"unknown tier {fault.tier!r}{suggest(fault.tier, valid)} "
                    f"(tiers: {_names_list(valid)})",
                    (*here, "tier"),
                )
            )
            continue
        if fault.lose is None:
            continue
        if isinstance(tier, QueueTier):
            problems.append(
                scenario.problem(
                    f"{fault.tier} is a queue: it has no instances to lose; slow it down "
                    "(slowdown: 3x) or make it fail (error_rate: 30%) instead",
                    (*here, "lose"),
                )
            )
            continue
        scaler = getattr(tier, "autoscale", None)
        if scaler is not None and scaler.scale_to_zero:
            problems.append(
                scenario.problem(
                    f"{fault.tier} is serverless: its instances come and go with its requests, "
                    "so there is no fixed instance to lose; make it fail (error_rate: 30%) "
                    "or give the tier a fixed size",
                    (*here, "lose"),
                )
            )
            continue
        if isinstance(tier, CacheTier) and tier.shards is not None:
            continue  # a cache cluster loses nodes (scenario/regions.py)
        servers = tier.instances + getattr(tier, "replicas", 0)
        if (
            isinstance(fault.lose, int)
            and not isinstance(fault.lose, bool)
            and fault.lose > servers
        ):
            problems.append(
                scenario.problem(
                    f"{fault.tier} has {servers} instance(s); lose at most {servers}",
                    (*here, "lose"),
                )
            )
    return problems


def _check_costs(scenario: Scenario, tiers: dict[str, AnyTier]) -> list[Problem]:
    """Spot interruptions fall on instances that can be lost and replaced; a per-GB price needs
    the size of the answers it bills (docs/cost.md)."""
    problems: list[Problem] = []
    sized = any(traffic.response_size for traffic in scenario.traffic.values())
    for name, tier in tiers.items():
        cost = tier.cost
        if cost is None:
            continue
        here: PathKey = ("tiers", name, "cost")
        if (
            cost.spot is not None
            and cost.spot.interruption_rate > 0
            and isinstance(tier, QueueTier)
        ):
            problems.append(
                scenario.problem(
                    "spot interruptions are simulated on a tier's instances, not on a queue's "
                    f"consumers; give {name}'s consumers interruption_rate: 0 to price spot "
                    "capacity without interruptions",
                    (*here, "spot", "interruption_rate"),
                )
            )
        scaler = getattr(tier, "autoscale", None)
        if (
            cost.spot is not None
            and cost.spot.interruption_rate > 0
            and scaler is not None
            and scaler.scale_to_zero
        ):
            problems.append(
                scenario.problem(
                    f"{name} is serverless: its instances come and go with its requests, so "
                    "there is no spot instance to interrupt; give it interruption_rate: 0, or "
                    "autoscale without scale_to_zero",
                    (*here, "spot", "interruption_rate"),
                )
            )
        if cost.per_gb is not None and not sized:
            problems.append(
                scenario.problem(
                    "per_gb prices the bytes of the answers, and no class has a response_size; "
                    "add response_size to the traffic classes (e.g. response_size: 120KB)",
                    (*here, "per_gb"),
                )
            )
    return problems


def _check_autoscale(scenario: Scenario, tiers: dict[str, AnyTier]) -> list[Problem]:
    """An autoscaled tier starts inside its range, and has no replicas to keep in step."""
    problems: list[Problem] = []
    for name, tier in tiers.items():
        scaler = getattr(tier, "autoscale", None)
        if scaler is None or isinstance(tier, QueueTier):
            continue
        here: PathKey = ("tiers", name, "autoscale")
        given = "instances" in tier.model_fields_set
        if given and not scaler.min <= tier.instances <= scaler.max:
            problems.append(
                scenario.problem(
                    f"instances ({tier.instances}) is outside autoscale's range "
                    f"{scaler.min}..{scaler.max}; start inside it (instances: {scaler.min})",
                    ("tiers", name, "instances"),
                )
            )
        if getattr(tier, "replicas", 0):
            problems.append(
                scenario.problem(
                    f"{name} has replicas; autoscaling scales primaries only, so give a "
                    "database with replicas a fixed size",
                    here,
                    at_key=True,
                )
            )
    return problems


def _check_termination(
    scenario: Scenario, tiers: dict[str, AnyTier], miss_ratio: MissRatio
) -> list[Problem]:
    """Per class: no loop of calls that are all certain, and a finite expected number of visits."""
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()
    for class_name, traffic in scenario.traffic.items():
        graph = {
            name: tier_edges(name, tier, class_name, miss_ratio) for name, tier in tiers.items()
        }
        entries = list(traffic.entry_shares)
        reachable = list(dict.fromkeys(n for entry in entries for n in _reachable(graph, entry)))
        certain = {n: [e for e in graph[n] if e.certain] for n in reachable}
        cycle = next(
            (found for entry in entries if (found := _find_cycle(certain, entry)) is not None),
            None,
        )
        if cycle is not None:
            names, edge = cycle
            if frozenset(names) not in reported:
                reported.add(frozenset(names))
                problems.append(
                    scenario.problem(
                        f"call cycle {' -> '.join(names)}: every call in it has probability 1, "
                        "so a request would never finish; make one call conditional "
                        "(probability < 1) or remove it",
                        edge.path,
                    )
                )
            continue
        try:
            finite = _visits_finite(graph, reachable)
        except ValueError as too_large:
            problems.append(
                scenario.problem(
                    f"the calls of class {class_name!r} form {too_large} tiers (the expected "
                    "visits inside a loop are solved exactly, in time growing with the cube of "
                    "its size); break the loop into smaller ones",
                    ("traffic", class_name, "entry"),
                )
            )
            continue
        if not finite:
            positive = {n: [e for e in graph[n] if e.expected > 0] for n in reachable}
            found = next(
                (c for entry in entries if (c := _find_cycle(positive, entry)) is not None), None
            )
            where: PathKey = ("traffic", class_name, "entry")
            text = ""
            if found is not None:
                names, edge = found
                where, text = edge.path, f" ({' -> '.join(names)})"
                if frozenset(names) in reported:
                    continue
                reported.add(frozenset(names))
            problems.append(
                scenario.problem(
                    f"the calls of class {class_name!r} loop back{text} so often that the expected "
                    "number of visits is infinite (spectral radius of the visit matrix >= 1); "
                    "lower a probability or repeat in the loop",
                    where,
                )
            )
    return problems


def _reachable(graph: dict[str, list[Edge]], start: str) -> list[str]:
    seen = {start}
    order = [start]
    stack = [start]
    while stack:
        for edge in graph.get(stack.pop(), []):
            if edge.expected > 0 and edge.target not in seen and edge.target in graph:
                seen.add(edge.target)
                order.append(edge.target)
                stack.append(edge.target)
    return order


def _find_cycle(graph: dict[str, list[Edge]], start: str) -> tuple[list[str], Edge] | None:
    """A cycle reachable from `start`, as names (first repeated at the end) and its first edge."""
    successors = {
        node: [edge.target for edge in edges if edge.target in graph]
        for node, edges in graph.items()
    }
    names = graphs.find_cycle(start, successors)
    if names is None:
        return None
    first = next(edge for edge in graph[names[0]] if edge.target == names[1])
    return names, first


def _visits_finite(graph: dict[str, list[Edge]], nodes: list[str]) -> bool:
    """True when the spectral radius of the expected-calls matrix P is below 1 (every loop of
    calls, solved on its own, gives finite visits; see `capsim.graphs.expected_visits`)."""
    calls: dict[str, dict[str, float]] = {}
    for node in nodes:
        row = calls.setdefault(node, {})
        for edge in graph[node]:
            if edge.target in graph:
                row[edge.target] = row.get(edge.target, 0.0) + edge.expected
    return graphs.expected_visits(nodes[0], calls) is not None
