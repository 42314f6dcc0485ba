"""A calibrated tier that calls itself back: what `capsim run` and `capsim solve` will say.

Traces of a service that calls itself (through its own load balancer) are written as a call of
the tier to itself with the share of visits that make it, which nests geometrically: blocking
workers at the count written can then deadlock (`capsim.analysis.deadlock`). calibrate says so
with the same figures as `solve` and `run`, beside the deepest nesting the traces showed.
"""

from __future__ import annotations

from typing import Any

from capsim.analysis.calibration_common import Calibration
from capsim.analysis.deadlock import deadlock_risks, run_seconds, worth_a_word
from capsim.errors import CapsimError
from capsim.model.build import build_model
from capsim.model.visits import expected_visits
from capsim.scenario.schema import Scenario


def self_call_findings(result: Calibration) -> list[dict[str, Any]]:
    """Each deadlock risk of the calibrated scenario at its measured rates (`DeadlockRisk`'s
    figures, its `sentence`, and `deepest_nesting`: the longest chain of nested visits to the
    tier the traces showed). Empty when the scenario does not build (its own validation says
    why) or has no open class."""
    try:
        model = build_model(Scenario.model_validate(result.scenario))
    except (CapsimError, ValueError):
        return []
    rates = [traffic.rate_at(0.0) if not traffic.is_closed else 0.0 for traffic in model.classes]
    visits = expected_visits(model)
    found = []
    for risk in deadlock_risks(model):
        index = model.tier_index[risk.tier]
        rate = float(sum(r * visits[k, index] for k, r in enumerate(rates)))
        if not worth_a_word(risk, rate):
            continue
        tier_summary = result.summary.get("tiers", {}).get(risk.tier, {})
        figures = risk.as_dict(rate, run_seconds(model))
        figures["deepest_nesting"] = tier_summary.get("deepest_nesting")
        figures["workers_for_a_year"] = risk.workers_for(rate, _YEAR)
        figures["sentence"] = _sentence(risk.sentence(rate, run_seconds(model)), figures)
        found.append({"tier": risk.tier, **figures})
    return found


#: Seconds in a year: the horizon of `workers_for_a_year`.
_YEAR = 365 * 86400.0


def _sentence(risk: str, figures: dict[str, Any]) -> str:
    deepest = figures.get("deepest_nesting")
    seen = (
        f"; the traces' chains of nested visits were at most {deepest} deep, but the scenario "
        "format writes the call back with one probability at every depth, so the model nests "
        "deeper than the measured system did"
        if deepest
        else ""
    )
    enough = figures.get("workers_for_a_year")
    if enough:
        seen += (
            f"; with {enough} workers or more a lone request would deadlock the model less than "
            "once a year at the measured rate"
        )
    return (
        f"calibrated model: {risk}{seen}. capsim solve and capsim run report it the same way; "
        "give the real pool with --workers TIER=N (docs/calibration.md, 'A service that calls "
        "itself')"
    )
