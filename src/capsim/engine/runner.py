"""Runs replications of a model: chooses the engine path and hands work to an executor."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

from capsim.engine.result import RunResult
from capsim.errors import ResourceLimitError
from capsim.model.types import Model, TrafficClass
from capsim.model.visits import expected_visits, mean_work

EnginePath = Literal["auto", "vectorised", "events"]
ProgressCallback = Callable[[float, str], None]  # (fraction done in [0, 1], what is running)


#: Default cap on the requests one command may simulate (over all replications). At the event
#: path's speed this is minutes of work; `--max-requests` raises it.
DEFAULT_MAX_REQUESTS = 100_000_000


def _open_requests(traffic: TrafficClass, horizon: float) -> float:
    """Expected arrivals of an open class over [0, horizon] (the profile integrated exactly)."""
    points = traffic.profile
    if not points:
        return float(traffic.rate or 0.0) * horizon
    total = points[0].rate * min(points[0].at, horizon)
    for a, b in itertools.pairwise(points):
        if a.at >= horizon:
            break
        if b.at > a.at:
            # The rate is linear between profile points, so the trapezoid rule is exact.
            end = min(b.at, horizon)
            end_rate = a.rate + (b.rate - a.rate) * (end - a.at) / (b.at - a.at)
            total += 0.5 * (a.rate + end_rate) * (end - a.at)
    if points[-1].at < horizon:
        total += points[-1].rate * (horizon - points[-1].at)
    return total


def estimate_requests(model: Model, replications: int | None = None) -> float:
    """Expected number of requests (class arrivals) a run simulates, over all replications.

    Closed classes are bounded above by users x horizon / (think time + service demand).
    """
    count = replications if replications is not None else model.simulation.replications
    horizon = model.horizon
    demand = mean_work(model).sum(axis=1) if model.tiers else None
    total = 0.0
    for traffic in model.classes:
        if traffic.is_closed:
            think = traffic.think_time.mean if traffic.think_time is not None else 0.0
            cycle = think + (float(demand[traffic.index]) if demand is not None else 0.0)
            total += float(traffic.users or 0) * horizon / max(cycle, 1e-9)
        else:
            total += _open_requests(traffic, horizon)
    return total * count


def check_run_size(
    model: Model, replications: int | None = None, max_requests: float = DEFAULT_MAX_REQUESTS
) -> float:
    """Raise ResourceLimitError before a run beyond `max_requests`; return the estimate."""
    requests = estimate_requests(model, replications)
    if requests > max_requests:
        visits = float(expected_visits(model).max(initial=1.0))
        raise ResourceLimitError(
            f"this run would simulate about {requests:.3g} requests (about {requests * visits:.3g} "
            f"tier visits) over {replications or model.simulation.replications} replication(s), "
            f"more than the limit of {max_requests:.3g}. Shorten simulation.duration, lower the "
            f"replications, or allow it with --max-requests {requests * 1.1:.2g}."
        )
    return requests


def choose_path(model: Model, engine: EnginePath = "auto") -> tuple[str, str]:
    """(path, reason): which engine path runs this model, and why, in the user's words."""
    from capsim.engine.vectorised import can_vectorise

    if engine == "events":
        return "events", "the event path was requested (--engine events)"
    possible, reason = can_vectorise(model)
    if engine == "vectorised":
        if not possible:
            from capsim.errors import UsageError

            raise UsageError(f"--engine vectorised cannot run this scenario: {reason}")
        return "vectorised", reason
    return ("vectorised" if possible else "events"), reason


def run_replication(
    model: Model,
    replication: int,
    path: str = "events",
    progress: ProgressCallback | None = None,
) -> RunResult:
    """One independent replication: a pure function of (model, replication index)."""
    if path == "vectorised":
        from capsim.engine.vectorised import run_vectorised

        return run_vectorised(model, replication, progress=progress)
    from capsim.engine.events import run_events

    return run_events(model, replication, progress=progress)


def _run_one(args: tuple[Model, int, str]) -> RunResult:
    model, replication, path = args
    return run_replication(model, replication, path)


def run_replications(
    model: Model,
    replications: int | None = None,
    engine: EnginePath = "auto",
    executor: Literal["serial", "process"] = "serial",
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
) -> list[RunResult]:
    """Run every replication and return their results in replication order.

    Results do not depend on the executor: each replication draws from its own streams.
    Raises ResourceLimitError before starting when the run would exceed `max_requests`.
    """
    count = replications if replications is not None else model.simulation.replications
    check_run_size(model, count, max_requests)
    path, reason = choose_path(model, engine)
    results: list[RunResult] = []
    if executor == "process" and count > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            jobs = [(model, i, path) for i in range(count)]
            for done, result in enumerate(pool.map(_run_one, jobs)):
                results.append(result)
                if progress:
                    progress((done + 1) / count, f"replication {done + 1}/{count}")
    else:
        for i in range(count):

            def part(fraction: float, what: str, i: int = i) -> None:
                if progress:
                    progress((i + fraction) / count, f"replication {i + 1}/{count}: {what}")

            results.append(run_replication(model, i, path, progress=part))
    for result in results:
        result.engine_path = path
        result.engine_reason = reason
    return results
