"""The moments a run's conditions change because of a fault, which cut its measured window into
phases (docs/results.md, "Verdicts after a fault").

The engine records a tier's waits per phase (a streaming histogram each) and the analysis judges
tier objectives phase by phase: both cut the window at the same moments, from here.
"""

from __future__ import annotations

from capsim.model.types import Model

#: Boundaries closer than this (seconds) are one boundary.
SAME_TIME = 1e-9


def changes(model: Model) -> dict[float, list[str]]:
    """Each moment a fault changes the conditions -> what changed then, in the user's words:
    each fault's start and end, and the end of each DNS move of traffic (`Model.traffic_moves`)."""
    found: dict[float, list[str]] = {}
    for fault in model.faults:
        name = fault.text or f"fault on tier '{model.tiers[fault.tier].name}'"
        found.setdefault(fault.at, []).append(f"fault: {name}")
        if fault.until is not None:
            found.setdefault(fault.until, []).append(f"fault over: {name}")
    for moved in model.traffic_moves:
        found.setdefault(moved, []).append("traffic moved by DNS")
    return found


def cuts(model: Model, warmup: float, horizon: float) -> list[float]:
    """The moments strictly inside the measured window [warmup, horizon) that start a new phase,
    in order; [] without faults (the whole window is then the one phase)."""
    if not model.faults:
        return []
    return sorted(t for t in changes(model) if warmup + SAME_TIME < t < horizon - SAME_TIME)
