"""W1, W2, W3 as Models built in Python, for when the YAML loader is not importable."""

from __future__ import annotations

from capsim.model.distributions import Distribution
from capsim.model.types import Call, Model, OneOf, Simulation, Tier, TrafficClass, Work

RATES = {"W1": 0.9, "W2": 7.2, "W3": 600.0}


def build(workload: str, customers: float) -> Model:
    rate = RATES[workload]
    exp = Distribution.exponential
    if workload == "W3":
        specs = [
            ("edge", 32, 0.002, (Call(1),)),
            ("lb", 4, 0.0005, (Call(2),)),
            ("app", 16, 0.020, (OneOf(((3, 0.8), (4, 0.2))),)),
            ("cache", 8, 0.001, ()),
            ("db", 4, 0.010, ()),
        ]
    else:
        specs = [("server", 1 if workload == "W1" else 8, 1.0, ())]
    tiers = tuple(
        Tier(name, i, "service", 1, workers, not calls, "round_robin", (Work(exp(mean), calls),))
        for i, (name, workers, mean, calls) in enumerate(specs)
    )
    traffic = (TrafficClass("requests", 0, 0, rate=rate),)
    return Model(
        name=workload,
        seed=1,
        simulation=Simulation(duration=customers / rate, warmup=0.0),
        classes=traffic,
        tiers=tiers,
        tier_index={t.name: t.index for t in tiers},
        class_index={"requests": 0},
    )
