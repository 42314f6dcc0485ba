"""The event path's fused hot paths (issue 15) compute exactly what the general path computes.

A direct call to a tier balanced by least connections over all its instances picks inline, and a
`one_of` of two options runs a first option with one plain instance inline
(`engine/events/admission.py`, `calls._one_of_two`); `admission.INLINE = False` sends every such
call through its runner and chooser, as before they were fused. Same scenario, same seed, both
ways: every figure of every class and tier must be the same, bit for bit. The fast lane keeps
the end times of its held workers sorted and gives back all that have ended at once
(`lanes.HeldUntil`): the stories below pin which workers it gives back.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from capsim.engine.events import admission, run_events
from capsim.engine.events.clock import Clock
from capsim.engine.events.lanes import HeldUntil
from capsim.engine.result import RunResult
from capsim.model.build import build_model
from capsim.model.types import Model
from capsim.scenario import load_scenario
from fingerprintkit import fingerprint
from modelkit import Call, OneOf, Pool, exp, model, open_class, tier

ROOT = Path(__file__).resolve().parent.parent


def both_ways(m: Model, replication: int = 0) -> tuple[RunResult, RunResult]:
    """(fused, general): the same model and replication with the inlining on, then off."""
    fused = run_events(m, replication)
    admission.INLINE = False
    try:
        general = run_events(m, replication)
    finally:
        admission.INLINE = True
    return fused, general


@pytest.fixture(autouse=True)
def inlining_restored() -> Iterator[None]:
    yield
    admission.INLINE = True


def w3_variant(seed: int, *, instances: int = 4, cache_share: float = 0.8) -> Model:
    """The W3 variant of the benchmarks, 20 simulated seconds: an app of blocking instances
    chosen by least connections, calling a one-instance cache or a pooled database."""
    return model(
        [
            tier("edge", exp(0.002), concurrency=32, blocking=False, calls=(Call(1),)),
            tier("lb", exp(0.0005), concurrency=4, blocking=False, calls=(Call(2),)),
            tier(
                "app",
                exp(0.020),
                instances=instances,
                concurrency=4,
                blocking=True,
                balancing="least_connections",
                calls=(OneOf(((3, cache_share), (4, 1.0 - cache_share))),),
            ),
            tier("cache", exp(0.001), concurrency=8, blocking=False),
            tier(
                "db",
                exp(0.010),
                kind="database",
                concurrency=4,
                blocking=False,
                pool=Pool(8, max_waiting=100, timeout=1.0),
            ),
        ],
        [open_class("web", 0, 600.0)],
        duration=20.0,
        warmup=2.0,
        seed=seed,
    )


def test_the_fused_paths_run_in_the_w3_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a vacuous comparison: the W3 variant takes both fused paths."""
    picked, inlined = [], []
    least_of, inline_target = admission.least_connections_of, admission.inline_target
    monkeypatch.setattr(admission, "least_connections_of", lambda p: picked.append(least_of(p)))
    monkeypatch.setattr(
        admission, "inline_target", lambda st, p: inlined.append(inline_target(st, p))
    )
    run_events(w3_variant(1), 0)
    assert any(found is not None for found in picked)  # lb -> app, by least connections
    assert any(found is not None for found in inlined)  # app -> cache, one instance


@pytest.mark.parametrize("seed", range(1, 9))
def test_the_w3_variant_gives_the_same_figures_either_way(seed: int) -> None:
    fused, general = both_ways(w3_variant(seed, instances=2 + seed % 3, cache_share=0.6))
    assert fingerprint(fused) == fingerprint(general)
    assert fused.events == general.events
    assert fused.classes[0].completed > 5_000  # some seeds overload the app: waits too


@pytest.mark.parametrize(
    "name", ["web-shop", "load-balancer", "ticketing", "cache", "tail-at-scale", "retry-storm"]
)
def test_bundled_scenarios_give_the_same_figures_either_way(name: str) -> None:
    path = ROOT / "scenarios" / f"{name}.yaml"
    m = build_model(load_scenario(path, ["simulation.duration=8s", "simulation.warmup=1s"]))
    for replication in (0, 1):
        fused, general = both_ways(m, replication)
        assert fingerprint(fused) == fingerprint(general), f"{name} replication {replication}"


def _held(servers: int = 1) -> HeldUntil:
    """Lane-held workers of a stub station: a plain tier of `servers` busy instances."""
    tier_ = SimpleNamespace(autoscale=None, is_async=False)
    st = SimpleNamespace(
        servers=servers,
        env=Clock(),
        free=[0] * servers,
        tier=tier_,
        blocking=False,
        series=None,
        faults=[],
    )
    return HeldUntil(st)  # type: ignore[arg-type]


def test_reclaim_gives_back_every_worker_whose_work_has_ended_and_keeps_the_rest() -> None:
    held = _held()
    for end in (3.0, 1.0, 2.0, 5.0):
        insort(held.times[0], end)
    assert not held.reclaim(0, 0.5)  # nothing has ended yet
    assert held.st.free == [0]
    assert held.reclaim(0, 2.0)  # 1.0 and 2.0 (ending exactly now) are back
    assert held.st.free == [2]
    assert held.times[0] == [3.0, 5.0]
    assert held.reclaim(0, 10.0)
    assert held.st.free == [4]
    assert held.times[0] == []


def test_reclaim_counts_the_free_workers_of_its_own_instance_only() -> None:
    held = _held(servers=2)
    insort(held.times[1], 1.0)
    held.st.free[0] = 1
    assert held.reclaim(0, 5.0)  # already free: a worker of its own
    assert not held.reclaim(1, 0.5)
    assert held.reclaim(1, 1.0)
    assert held.st.free == [1, 1]
