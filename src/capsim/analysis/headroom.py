"""The bottleneck of a model and its headroom to saturation, by the analytic bound (`solve`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from capsim.analysis.points import open_rate, scale_open_traffic
from capsim.analysis.solve import UnstableModelError, solve_bottleneck
from capsim.model.types import Model


@dataclass(frozen=True)
class Headroom:
    """The tier that saturates first, the rate at which it does, and the rate offered now.

    Rates are totals over the classes, with the mix as written: the open rate for open traffic,
    the throughput for a closed workload. `factor` is saturation / offered (above 1: room left).
    """

    tier: str
    saturation_rate: float
    offered_rate: float
    instances: int = 1  # the tier's instances as written (the bound is for these)
    autoscale_max: int | None = None  # the most instances autoscaling may give it, if it scales
    profile_peak: float | None = (
        None  # the open rate at the profiles' peak, when one rises above its end
    )
    rate_limit: bool = False  # the bound is what the tier's rate_limit lets through

    @property
    def factor(self) -> float | None:
        return self.saturation_rate / self.offered_rate if self.offered_rate > 0 else None


def analytic_headroom(model: Model, capsim_version: str) -> Headroom | None:
    """The analytic bottleneck of `model` (None when no tier limits throughput).

    A tier that blocks on its callees holds its workers longer as the load grows, so its bound
    falls with the load. When the offered load is past the bound (no steady state, or a bound
    below the load offered), the saturation rate is where the bound meets the load, found along
    the same mix at lighter loads, against the open rate offered now (factor < 1).

    Only `solve`'s bottleneck is computed (`solve_bottleneck`: the same numbers, without the
    figures per tier and class); `capsim_version` is not needed for it.
    """
    try:
        bottleneck = solve_bottleneck(model)
        offered = bottleneck.get("offered_rate")
    except UnstableModelError:
        bottleneck, offered = None, None
    if bottleneck is None or _past_its_bound(bottleneck):
        bottleneck = _bound_where_it_meets_the_load(model)
        if bottleneck is None:
            return None
        offered = open_rate(model)
    if bottleneck.get("tier") is None or not bottleneck.get("saturation_rate"):
        return None
    tier = model.tier(bottleneck["tier"]) if bottleneck["tier"] in model.tier_index else None
    return Headroom(
        bottleneck["tier"],
        float(bottleneck["saturation_rate"]),
        float(offered or 0.0),
        instances=tier.instances if tier is not None else 1,
        autoscale_max=tier.autoscale.max if tier is not None and tier.autoscale else None,
        profile_peak=_profile_peak(model),
        rate_limit=bottleneck.get("by") == "rate_limit",
    )


def _profile_peak(model: Model) -> float | None:
    """The total open rate at which the headroom is judged when a profile peaks above its final
    rate (`open_rate` counts each profile at its peak); None without such a profile."""
    open_classes = [c for c in model.classes if not c.is_closed]
    if any(c.peak_rate(model.horizon) > c.rate_at(model.horizon) for c in open_classes):
        return open_rate(model)
    return None


def _past_its_bound(bottleneck: dict[str, Any]) -> bool:
    saturation, offered = bottleneck.get("saturation_rate"), bottleneck.get("offered_rate")
    return bool(saturation and offered and saturation < offered)


def _bottleneck_at(model: Model, factor: float) -> dict[str, Any] | None:
    """`solve`'s bottleneck at `factor` times the open traffic; None when past its bound."""
    try:
        found = solve_bottleneck(scale_open_traffic(model, factor))
    except UnstableModelError:
        return None
    return None if _past_its_bound(found) else found


def _bound_where_it_meets_the_load(model: Model) -> dict[str, Any] | None:
    """The bottleneck at the heaviest load of the mix that is within its own bound: a lighter
    load found by quartering, then bisection (in log scale) towards the load offered now."""
    light, heavy = 1.0, 1.0
    below: dict[str, Any] | None = None
    for _ in range(64):
        light /= 4.0
        below = _bottleneck_at(model, light)
        if below is not None:
            break
        heavy = light
    if below is None:
        return None
    for _ in range(_BISECTIONS):
        middle = math.sqrt(light * heavy)
        found = _bottleneck_at(model, middle)
        if found is None:
            heavy = middle
        else:
            light, below = middle, found
    return below


#: Bisection steps: the load where the bound meets it to about 1% (a factor 4 halved 7 times).
_BISECTIONS = 7
