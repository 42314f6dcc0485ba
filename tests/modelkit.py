"""Small constructors for Models built directly from capsim.model.types (no YAML involved)."""

from __future__ import annotations

from capsim.model.build import BLOCKING_BY_DEFAULT
from capsim.model.distributions import Distribution
from capsim.model.types import (
    Call,
    Model,
    OneOf,
    Parallel,
    Pool,
    ProfilePoint,
    Simulation,
    Step,
    Tier,
    TrafficClass,
    Work,
)

__all__ = [
    "Call",
    "Distribution",
    "OneOf",
    "Parallel",
    "Pool",
    "ProfilePoint",
    "closed_class",
    "const",
    "exp",
    "model",
    "open_class",
    "tier",
]


def const(value: float) -> Distribution:
    return Distribution.constant(value)


def exp(mean: float) -> Distribution:
    return Distribution.exponential(mean)


def tier(
    name: str,
    service: Distribution,
    *,
    kind: str = "service",
    instances: int = 1,
    concurrency: int = 1,
    blocking: bool | None = None,
    balancing: str = "round_robin",
    calls: tuple[Step, ...] = (),
    max_queue: int | None = None,
    timeout: float | None = None,
    replicas: int = 0,
    read_ratio: float = 1.0,
    pool: Pool | None = None,
    publish_time: Distribution | None = None,
) -> dict[str, object]:
    """A tier description; `model` turns it into a Tier once every index is known."""
    return {
        "name": name,
        "kind": kind,
        "instances": instances,
        "concurrency": concurrency,
        "blocking": (kind in BLOCKING_BY_DEFAULT) if blocking is None else blocking,
        "balancing": balancing,
        "work": Work(service, calls, read_ratio),
        "max_queue": max_queue,
        "timeout": timeout,
        "replicas": replicas,
        "pool": pool,
        "publish_time": publish_time,
    }


def open_class(
    name: str,
    entry: int,
    rate: float,
    *,
    arrivals: str = "poisson",
    profile: tuple[ProfilePoint, ...] = (),
) -> dict[str, object]:
    return {"name": name, "entry": entry, "rate": rate, "arrivals": arrivals, "profile": profile}


def closed_class(name: str, entry: int, users: int, think: Distribution) -> dict[str, object]:
    return {"name": name, "entry": entry, "users": users, "think_time": think}


def model(
    tiers: list[dict[str, object]],
    classes: list[dict[str, object]],
    *,
    duration: float = 100.0,
    warmup: float = 0.0,
    seed: int = 1,
    work: dict[tuple[int, int], Work] | None = None,
) -> Model:
    """A Model of these tiers and classes; `work[(tier, class)]` overrides one class's work."""
    n = len(classes)
    built_tiers = []
    for index, spec in enumerate(tiers):
        spec = dict(spec)
        base = spec.pop("work")
        works = tuple((work or {}).get((index, k), base) for k in range(n))
        built_tiers.append(Tier(index=index, work=works, **spec))  # type: ignore[arg-type]
    built_classes = tuple(
        TrafficClass(index=k, **spec)  # type: ignore[arg-type]
        for k, spec in enumerate(classes)
    )
    return Model(
        name="test",
        seed=seed,
        simulation=Simulation(duration=duration, warmup=warmup, replications=1),
        classes=built_classes,
        tiers=tuple(built_tiers),
        tier_index={t.name: t.index for t in built_tiers},
        class_index={c.name: c.index for c in built_classes},
    )


def w3(duration: float, *, warmup: float = 0.0, seed: int = 1) -> Model:
    """W3 of benchmarks/peers/README.md: edge -> lb -> app -> cache 80% | db 20%, Poisson 600/s."""
    return model(
        [
            tier("edge", exp(0.002), concurrency=32, blocking=False, calls=(Call(1),)),
            tier("lb", exp(0.0005), concurrency=4, blocking=False, calls=(Call(2),)),
            tier(
                "app",
                exp(0.020),
                concurrency=16,
                blocking=False,
                calls=(OneOf(((3, 0.8), (4, 0.2))),),
            ),
            tier("cache", exp(0.001), concurrency=8),
            tier("db", exp(0.010), concurrency=4),
        ],
        [open_class("web", 0, 600.0)],
        duration=duration,
        warmup=warmup,
        seed=seed,
    )
