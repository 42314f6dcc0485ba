"""When the open load peaks: the classes' rates at every moment a total can be highest, so that
the analytic figures count each client once (docs/how-the-model-works.md, "capsim solve").

Each class's rate is linear between its profile's points, so any sum of the rates peaks at a
profile point (just before or just after a step there), at the start or at the end of the run.
Summing each class's own peak instead counts a client twice when two classes take turns: a
region's clients before a region fault and the same clients served elsewhere after DNS moved
them (docs/regions.md) are two class parts that are never busy at once.
"""

from __future__ import annotations

import numpy as np

from capsim.model.types import Model, TrafficClass


def _before_and_after(traffic: TrafficClass, t: float) -> tuple[float, float]:
    """The class's rate just before and just after `t` (a step at `t`: its first and last
    points there; elsewhere the rate at `t` on both sides)."""
    if traffic.is_closed:
        return 0.0, 0.0
    here = [p.rate for p in traffic.profile if p.at == t]
    if not here:
        rate = traffic.rate_at(t)
        return rate, rate
    return here[0], here[-1]


def open_rates_at_moments(model: Model) -> np.ndarray:
    """[moment, class]: every open class's rate (closed: 0) at each moment some total of the
    rates can peak, from the start of the warm-up to the end of the run."""
    horizon = model.horizon
    moments = {0.0, horizon}
    for traffic in model.classes:
        if not traffic.is_closed:
            moments.update(p.at for p in traffic.profile if 0.0 <= p.at <= horizon)
    rows = []
    for t in sorted(moments):
        sides = [_before_and_after(traffic, t) for traffic in model.classes]
        rows.append([before for before, _ in sides])
        rows.append([after for _, after in sides])
    return np.array(rows, dtype=float).reshape(len(rows), len(model.classes))


def peak_open_rate(model: Model) -> float:
    """The highest total rate of the open classes over the run (a profile at its peak; class
    parts that take turns counted once)."""
    if not model.classes:
        return 0.0
    return float(open_rates_at_moments(model).sum(axis=1).max())


def open_rates_at_tier_peaks(model: Model, visits: np.ndarray) -> np.ndarray:
    """[class, tier]: the open classes' rates at the moment the requests reaching each tier
    (`visits` [class, tier] per request) are the most; the tier is solved at that moment."""
    rows = open_rates_at_moments(model)
    busiest = np.argmax(rows @ visits, axis=0) if rows.size else np.zeros(len(model.tiers), int)
    return rows[busiest].T.copy()
