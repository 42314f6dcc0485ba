"""The bottleneck of a model and its headroom to saturation, by the analytic bound (`solve`)."""

from __future__ import annotations

from dataclasses import dataclass

from capsim.analysis.points import light_load_solution, open_rate
from capsim.analysis.solve import UnstableModelError, solve
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

    @property
    def factor(self) -> float | None:
        return self.saturation_rate / self.offered_rate if self.offered_rate > 0 else None


def analytic_headroom(model: Model, capsim_version: str) -> Headroom | None:
    """The analytic bottleneck of `model` (None when no tier limits throughput).

    An overloaded model has no steady state to solve: its bottleneck and saturation rate then
    come from the same mix at a lighter load, against the open rate offered now (factor < 1).
    """
    try:
        bottleneck = solve(model, capsim_version=capsim_version)["bottleneck"]
        offered = bottleneck.get("offered_rate")
    except UnstableModelError:
        try:
            bottleneck = light_load_solution(model, capsim_version)["bottleneck"]
        except UnstableModelError:
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
    )
