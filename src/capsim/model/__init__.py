"""The resolved model: what a scenario means, as frozen data the engine can run."""

from capsim.model.distributions import Distribution
from capsim.model.types import (
    Call,
    Model,
    OneOf,
    Parallel,
    Pool,
    ProfilePoint,
    Simulation,
    Slo,
    Step,
    Tier,
    TrafficClass,
    Work,
)

__all__ = [
    "Call",
    "Distribution",
    "Model",
    "OneOf",
    "Parallel",
    "Pool",
    "ProfilePoint",
    "Simulation",
    "Slo",
    "Step",
    "Tier",
    "TrafficClass",
    "Work",
]
