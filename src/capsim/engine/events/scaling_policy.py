"""The HPA's scale-up policies (autoscaling/v2 `behavior.scaleUp.policies`), shared by the HPA of
a tier (`autoscaling`) and the one a queue's KEDA scaler feeds (`consumer_scaling`).

Each policy allows, over any `period` seconds, a Percent or a Pods increase counted from the
count at the period's start: that count is the current one less what scale-ups added, plus
what scale-downs removed, within the period (`calculateScaleUpLimitWithScalingRules` in the
HPA's horizontal.go); a change at `now - period` is outside it. `select` "max" takes the
policy allowing more (the HPA's default selectPolicy), "min" the stricter. The limit is never
below the current count (a limit does not scale down).
"""

from __future__ import annotations

import math


def scale_up_limit(
    changes: list[tuple[float, int, int]],
    now: float,
    current: int,
    *,
    percent: float | None,
    pods: int | None,
    period: float,
    select: str = "max",
) -> int | None:
    """The most instances a scale-up may reach now, given the past `changes` (t, from, to);
    None when neither policy is set (no limit)."""
    start = current
    for when, before, after in reversed(changes):
        if when + period <= now:
            break
        start -= after - before
    limits = []
    if percent is not None:
        limits.append(math.ceil(start * (1.0 + percent)))  # as the HPA rounds (Go math.Ceil)
    if pods is not None:
        limits.append(start + pods)
    if not limits:
        return None
    return max(max(limits) if select == "max" else min(limits), current)
