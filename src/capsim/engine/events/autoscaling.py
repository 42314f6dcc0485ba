"""Autoscaling: the Kubernetes HPA's recommendation rule and an instance's states."""

from __future__ import annotations

import math

from capsim.model.types import (
    Autoscale,
)

_OFF, _STARTING, _READY, _DRAINING = range(4)  # an autoscaled instance's states


def _hpa_recommendation(
    scaler: Autoscale, total: float, ready: int, starting: int, current: int
) -> int:
    """The HPA's desired count from the metric's total over ready instances (replica_calculator).

    desired = ceil(ready x average / target), unless the ratio is within the tolerance of 1.
    When scaling up with instances still starting, those count as using nothing, which damps
    the step; if that reverses the direction or lands within the tolerance, nothing changes.
    """
    if ready == 0:
        return current  # no metrics yet: the HPA leaves the count alone
    ratio = total / (ready * scaler.target)
    if starting and ratio > 1.0:
        damped = total / ((ready + starting) * scaler.target)
        if damped < 1.0 or abs(damped - 1.0) <= scaler.tolerance:
            return current
        return max(math.ceil(damped * (ready + starting) - 1e-9), current)
    if abs(ratio - 1.0) <= scaler.tolerance:
        return current
    return math.ceil(ratio * ready - 1e-9)
