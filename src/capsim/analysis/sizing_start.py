"""Where `capsim size` starts: the least capacity the analytic model (`capsim solve`) allows.

`solve` knows what a planner would work out by hand: Erlang C for pools, the holding time of
blocking workers including their calls, M/M/c/K losses, the occupancy each tier reaches. The
start is the cheapest configuration, found on that model alone (no simulation), at which every
tier is in steady state and every objective the analysis has a figure for is within its limit
(the headroom among them). Objectives it has no figure for (most class percentiles on a call
graph, message ages, backlogs) are left to the simulation.

The start is a guess, not a verdict: the simulated search measures it, grows from it when it
fails and shrinks from it when it passes, so a wrong start costs runs, never the answer
(docs/capacity.md, "Search").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from capsim.analysis.busiest_group import busiest_group
from capsim.analysis.solve import solve
from capsim.analysis.summary import slo_figure
from capsim.errors import CapsimError
from capsim.model.types import Model, Slo

#: Doubling rounds before the analysis gives up finding a configuration it calls sufficient.
MAX_DOUBLINGS = 12


@dataclass(frozen=True)
class Quantity:
    """One sized quantity as the analytic start sees it: its name, range and unit cost."""

    name: str
    low: int
    high: int
    unit_cost: float


@dataclass(frozen=True)
class Verdict:
    """`solve`'s judgement of one configuration: whether every tier is stable and every known
    figure within its limit, and the tiers to grow when not (none named: grow every one)."""

    meets: bool
    grow: frozenset[str] = frozenset()


def analytic_figure(slo: Slo, model: Model, data: dict[str, Any]) -> float | None:
    """The SLO's figure in `solve`'s estimates (None where the analysis has no formula)."""
    if slo.class_index is not None:
        entry: Any = data["classes"].get(model.classes[slo.class_index].name)
    elif slo.tier_index is not None:
        entry = data["tiers"].get(model.tiers[slo.tier_index].name)
    else:
        return None
    group = busiest_group(entry, slo.statistic) if isinstance(entry, dict) else None
    for key in slo_figure(slo):
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    if group is not None and isinstance(entry, int | float):  # a database's busiest group
        return max(float(entry), group[1])
    return float(entry) if isinstance(entry, int | float) and math.isfinite(entry) else None


def judge(model: Model, slos: Sequence[Slo], capsim_version: str) -> Verdict | None:
    """`solve`'s verdict on `model` against `slos` (None when the analysis cannot solve it)."""
    try:
        data = solve(model, capsim_version=capsim_version, mark_overload=True, verdict_only=True)
    except (CapsimError, ArithmeticError, ValueError):
        return None
    overloaded = {name for name, tier in data["tiers"].items() if tier.get("stable") is False}
    beyond = [
        slo
        for slo in slos
        if (observed := analytic_figure(slo, model, data)) is not None and observed > slo.limit
    ]
    if not overloaded and not beyond:
        return Verdict(True)
    # A tier's own figure names the tier to grow; a class's figure could be any tier's doing.
    if any(slo.tier_index is None for slo in beyond):
        return Verdict(False)
    named = {model.tiers[slo.tier_index].name for slo in beyond if slo.tier_index is not None}
    return Verdict(False, frozenset(overloaded | named))


def analytic_start(
    quantities: Sequence[Quantity],
    lower: dict[str, int],
    verdict_of: Callable[[dict[str, int]], Verdict | None],
) -> dict[str, int] | None:
    """The cheapest configuration `verdict_of` calls sufficient, from `lower` (true lower
    bounds): double the quantities of the failing tiers (every quantity when a class figure
    fails) until the analysis is satisfied, then bisect each quantity down, dearest first, to
    the least value that keeps it satisfied. None when the analysis cannot solve the model or
    no configuration within the ranges satisfies it: the simulated search then starts from
    `lower`."""
    values = _sufficient(quantities, dict(lower), verdict_of)
    if values is None:
        return None
    for quantity in sorted(quantities, key=lambda q: -q.unit_cost):
        values = _least_keeping(quantity, lower[quantity.name], values, verdict_of)
    return values


def _sufficient(
    quantities: Sequence[Quantity],
    values: dict[str, int],
    verdict_of: Callable[[dict[str, int]], Verdict | None],
) -> dict[str, int] | None:
    """`values` with the failing tiers' quantities doubled (a quantity at 0 grows to 1) until
    the analysis is satisfied."""
    for _ in range(MAX_DOUBLINGS):
        verdict = verdict_of(values)
        if verdict is None:
            return None
        if verdict.meets:
            return values
        open_ = [q for q in quantities if values[q.name] < q.high]
        # The failing tiers' own quantities; every quantity when none of them is sized (a fixed
        # caller held up by a sized callee) or a class objective fails.
        growing = [q for q in open_ if q.name in verdict.grow] or open_
        if not growing:
            return None
        for q in growing:
            values = {**values, q.name: min(q.high, max(2 * values[q.name], 1))}
    return None


def _least_keeping(
    quantity: Quantity,
    low: int,
    values: dict[str, int],
    verdict_of: Callable[[dict[str, int]], Verdict | None],
) -> dict[str, int]:
    """`values` with `quantity` bisected down to the least value in [low, now] that the analysis
    still calls sufficient (the others as they are)."""
    failing, passing = low - 1, values[quantity.name]
    while passing - failing > 1:
        middle = (failing + passing) // 2
        verdict = verdict_of({**values, quantity.name: middle})
        if verdict is not None and verdict.meets:
            passing = middle
        else:
            failing = middle
    return {**values, quantity.name: passing}
