"""Both engine paths answer the same scenario the same way, within noise.

Each model here is vectorisable; it runs through the event path (`run_events`) and the
vectorised path (`run_vectorised`) with independent random numbers, and the two answers are
compared. The tolerance is 4 standard deviations of the difference of two independent runs:
sqrt(2) x the rel SD of one run (ORACLES.md section 12.1, at the model's busiest tier), with
p99 at 2.2x the mean's and utilisation at the compound-Poisson sqrt((1 + cs2) / n).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

import modelkit
from capsim.engine.events import run_events
from capsim.engine.result import RunResult
from capsim.engine.vectorised import can_vectorise, run_vectorised
from capsim.model.types import Model
from modelkit import Call, Distribution, Parallel, exp, model, open_class, tier

K_SIGMA = 4.0


def rel_sd_mean(rho: float, n: float, cs2: float = 1.0) -> float:
    return math.sqrt((1.0 + cs2) / 2.0) * math.sqrt(2.0 * (1.0 + rho) / n) / (1.0 - rho)


def w3(duration: float) -> Model:
    return modelkit.w3(duration, warmup=5.0)


def balanced_instances(duration: float) -> Model:
    # Round robin over 4 single-worker instances, then random over 3 instances of 2 workers.
    return model(
        [
            tier("front", exp(0.004), instances=4, blocking=False, calls=(Call(1),)),
            tier("app", exp(0.010), instances=3, concurrency=2, balancing="random"),
        ],
        [open_class("c", 0, 400.0)],
        duration=duration,
        warmup=5.0,
    )


def fan_out(duration: float) -> Model:
    # Parallel fan-out joined by the slowest branch, then a sequential call and an async publish.
    return model(
        [
            tier(
                "api",
                Distribution.lognormal(0.005, 1.0),
                concurrency=4,
                blocking=False,
                calls=(
                    Parallel((Call(1), Call(2, probability=0.5))),
                    Call(3),
                    Call(4),
                ),
            ),
            tier("profile", exp(0.006), concurrency=2),
            tier("recs", exp(0.008), concurrency=2),
            tier("db", exp(0.004), kind="database", concurrency=2, replicas=1, read_ratio=0.8),
            tier("events", exp(0.010), kind="queue", concurrency=2, publish_time=exp(0.001)),
        ],
        [open_class("c", 0, 150.0)],
        duration=duration,
        warmup=5.0,
    )


def two_classes(duration: float) -> Model:
    return model(
        [tier("app", exp(0.010), concurrency=2)],
        [open_class("a", 0, 60.0), open_class("b", 0, 40.0, arrivals="constant")],
        duration=duration,
        warmup=5.0,
    )


# (builder, simulated seconds, busiest tier's per-worker rho, its service cv^2)
CASES: dict[str, tuple[Callable[[float], Model], float, float, float]] = {
    "w3": (w3, 150.0, 0.75, 1.0),
    "balanced-instances": (balanced_instances, 300.0, 0.67, 1.0),
    "fan-out": (fan_out, 300.0, 0.6, 1.0),
    "two-classes": (two_classes, 900.0, 0.5, 1.0),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def both(request: pytest.FixtureRequest) -> tuple[Model, RunResult, RunResult, float, float]:
    build, duration, rho, cs2 = CASES[request.param]
    m = build(duration)
    assert can_vectorise(m)[0]
    return m, run_events(m, 0), run_vectorised(m, 0), rho, cs2


def test_every_class_sees_the_same_latency(both: tuple[Model, RunResult, RunResult, float, float]):
    m, events, vectorised, rho, cs2 = both
    for k, traffic in enumerate(m.classes):
        a, b = events.classes[k], vectorised.classes[k]
        n = min(a.completed, b.completed)
        sd = math.sqrt(2.0) * rel_sd_mean(rho, n, cs2)
        assert abs(a.latency.mean / b.latency.mean - 1.0) <= K_SIGMA * sd, traffic.name
        p99 = K_SIGMA * 2.2 * sd + 0.02  # + the histograms' percentile resolution, both sides
        assert abs(a.latency.quantile(0.99) / b.latency.quantile(0.99) - 1.0) <= p99
        offered = a.arrivals
        assert abs(a.arrivals - b.arrivals) <= K_SIGMA * math.sqrt(2.0 * offered)
        assert a.errors == b.errors == 0


def test_every_tier_is_as_busy_and_waits_alike(
    both: tuple[Model, RunResult, RunResult, float, float],
):
    m, events, vectorised, rho, cs2 = both
    for i, t in enumerate(m.tiers):
        a, b = events.tiers[i], vectorised.tiers[i]
        assert a.workers == b.workers
        n = max(1, min(a.completed, b.completed))
        sd = math.sqrt(2.0) * math.sqrt((1.0 + max(cs2, t.work[0].service_time.cv ** 2)) / n)
        assert abs(a.busy_time / b.busy_time - 1.0) <= K_SIGMA * sd + 1e-3, t.name
        assert abs(a.arrivals - b.arrivals) <= K_SIGMA * math.sqrt(2.0 * max(a.arrivals, 1))
        # Mean wait in units of the tier's mean service time (waits are often near zero).
        scale = t.work[0].service_time.mean
        wait_sd = math.sqrt(2.0) * rel_sd_mean(rho, n, cs2) * max(a.wait.mean, b.wait.mean)
        assert abs(a.wait.mean - b.wait.mean) <= K_SIGMA * wait_sd + 0.05 * scale, t.name


def test_both_paths_say_which_path_ran(both: tuple[Model, RunResult, RunResult, float, float]):
    _, events, vectorised, _, _ = both
    assert events.engine_path == "events"
    assert vectorised.engine_path == "vectorised"
