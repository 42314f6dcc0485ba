"""Synthetic RunResults for analysis and output tests: histograms filled with known samples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from capsim.engine.histogram import Histogram
from capsim.engine.result import ClassRun, RunResult, TierRun
from capsim.model.types import Model, Pool, Slo
from modelkit import const, exp, model, open_class, tier

DURATION = 100.0
WARMUP = 10.0


def shop_model(slos: tuple[Slo, ...] = ()) -> Model:
    """Three tiers (app -> db with a pool, and an events queue) and two classes."""
    built = model(
        [
            tier("app", exp(0.01), concurrency=4),
            tier("db", exp(0.005), kind="database", pool=Pool(size=10, max_waiting=20)),
            tier("events", const(0.002), kind="queue"),
        ],
        [open_class("browse", 0, 100.0), open_class("checkout", 0, 10.0)],
        duration=DURATION,
        warmup=WARMUP,
    )
    return replace(built, slos=slos)


def histogram(values: np.ndarray | list[float]) -> Histogram:
    h = Histogram()
    h.add(np.asarray(values, dtype=np.float64))
    return h


def flat_trace(rng: np.random.Generator, level: float = 5.0, points: int = 120) -> np.ndarray:
    return rng.poisson(level, points).astype(np.float64)


def growing_trace(
    rng: np.random.Generator, rate: float, start: float = 10.0, points: int = 120
) -> np.ndarray:
    times = np.linspace(WARMUP, WARMUP + DURATION, points)
    return np.maximum(start + rate * (times - WARMUP) + rng.normal(0, 3 * np.sqrt(rate), points), 0)


def mm1_trace(
    rng: np.random.Generator,
    rho: float,
    service_rate: float = 100.0,
    points: int = 120,
    duration: float = DURATION,
) -> np.ndarray:
    """Number in an M/M/1 system sampled at `points` evenly spaced times (a reflected walk)."""
    arrival_rate = rho * service_rate
    total = arrival_rate + service_rate
    events = int(total * (duration + WARMUP) * 1.1) + 100
    times = np.cumsum(rng.exponential(1 / total, events))
    steps = np.where(rng.random(events) < arrival_rate / total, 1, -1)
    walk = np.cumsum(steps)
    queue = walk - np.minimum(np.minimum.accumulate(walk), 0)
    sample_times = np.linspace(WARMUP, WARMUP + duration, points)
    return queue[np.searchsorted(times, sample_times)].astype(np.float64)


def class_run(latencies: np.ndarray, errors: int = 0, arrivals: int | None = None) -> ClassRun:
    completed = int(latencies.size)
    return ClassRun(
        arrivals=arrivals if arrivals is not None else completed + errors,
        completed=completed,
        errors=errors,
        latency=histogram(latencies),
    )


def tier_run(
    rng: np.random.Generator,
    *,
    workers: int,
    utilization: float,
    completed: int,
    trace: np.ndarray | None = None,
    arrivals: int | None = None,
    rejected: int = 0,
    waits: np.ndarray | None = None,
    age: Histogram | None = None,
    pool_wait: Histogram | None = None,
    pool_rejected: int = 0,
) -> TierRun:
    trace = flat_trace(rng) if trace is None else trace
    return TierRun(
        workers=workers,
        arrivals=completed + rejected if arrivals is None else arrivals,
        completed=completed,
        rejected=rejected,
        busy_time=utilization * workers * DURATION,
        occupied_time=utilization * workers * DURATION,
        queue_time=float(trace.mean()) * DURATION if trace.size else 0.0,
        queue_max=int(trace.max()) if trace.size else 0,
        wait=histogram(rng.exponential(0.002, completed) if waits is None else waits),
        queue_trace=trace,
        trace_times=np.linspace(WARMUP, WARMUP + DURATION, trace.size),
        age=age,
        pool_wait=pool_wait,
        pool_rejected=pool_rejected,
    )


def shop_run(
    replication: int,
    *,
    browse: np.ndarray | None = None,
    db_trace: np.ndarray | None = None,
    db_arrivals: int | None = None,
    db_utilization: float = 0.5,
    checkout_errors: int = 3,
) -> RunResult:
    """One replication of `shop_model` with plausible figures; override the parts a test is about."""
    rng = np.random.default_rng(1000 + replication)
    browse = rng.lognormal(np.log(0.02), 0.8, 10_000) if browse is None else browse
    checkout = rng.exponential(0.05, 1_000)
    return RunResult(
        seed=1,
        replication=replication,
        duration=DURATION,
        warmup=WARMUP,
        classes=[class_run(browse), class_run(checkout, errors=checkout_errors)],
        tiers=[
            tier_run(rng, workers=4, utilization=0.3, completed=11_000),
            tier_run(
                rng,
                workers=1,
                utilization=db_utilization,
                completed=10_000,
                trace=db_trace,
                arrivals=db_arrivals,
                rejected=2,
                pool_wait=histogram(rng.exponential(0.001, 10_000)),
                pool_rejected=2,
            ),
            tier_run(
                rng,
                workers=1,
                utilization=0.02,
                completed=1_000,
                age=histogram(rng.exponential(0.003, 1_000)),
            ),
        ],
        engine_path="events",
        engine_reason="synthetic results for a test",
        events=123_456,
    )
