"""Runs replications of a model: chooses the engine path and hands work to an executor."""

from __future__ import annotations

import itertools
import multiprocessing
import signal
from collections.abc import Callable
from typing import Literal

from capsim.engine.limits import DEFAULT_MAX_MEMORY, estimate_memory
from capsim.engine.result import RunResult
from capsim.errors import Interrupted, ResourceLimitError
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
    model: Model,
    replications: int | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> float:
    """Raise ResourceLimitError before a run beyond `max_requests` requests or beyond
    `max_memory` bytes of engine state per replication; return the requests estimate."""
    requests = estimate_requests(model, replications)
    count = replications or model.simulation.replications
    memory = estimate_memory(model, requests / max(count, 1))
    if memory > max_memory:
        largest = max(model.tiers, key=lambda tier: float(tier.servers) * float(tier.concurrency))
        raise ResourceLimitError(
            f"this run would need about {_bytes(memory)} of memory per replication (tier "
            f"'{largest.name}' alone has {float(largest.servers):.3g} instance(s) x "
            f"{float(largest.concurrency):.3g} worker(s)), more than the limit of "
            f"{_bytes(max_memory)}. Lower the instances or concurrency, or allow it with "
            f"--max-memory {_bytes(memory * 1.1).replace(' ', '')}."
        )
    if requests > max_requests:
        visits = float(expected_visits(model).max(initial=1.0))
        raise ResourceLimitError(
            f"this run would simulate about {requests:.3g} requests (about {requests * visits:.3g} "
            f"tier visits) over {replications or model.simulation.replications} replication(s), "
            f"more than the limit of {max_requests:.3g}. Shorten simulation.duration, lower the "
            f"replications, or allow it with --max-requests {requests * 1.1:.2g}."
        )
    return requests


def _bytes(count: float) -> str:
    """A byte count in the size units of docs/scenario-reference.md (powers of 1024 spelled KiB, MiB, GiB, TiB)."""
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count / 1024:.3g} KiB"


def _overloaded_tier(model: Model) -> str | None:
    """A tier with no waiting-room limit offered more work than its workers, at peak rates."""
    demand = mean_work(model)
    for tier in model.tiers:
        if tier.max_queue is not None:
            continue
        offered = 0.0
        for traffic in model.classes:
            if traffic.is_closed:
                continue
            peak = max([p.rate for p in traffic.profile], default=float(traffic.rate or 0.0))
            offered += peak * float(demand[traffic.index, tier.index])
        if offered > tier.workers:
            return tier.name
    return None


def choose_path(model: Model, engine: EnginePath = "auto") -> tuple[str, str]:
    """(path, reason): which engine path runs this model, and why, in the user's words."""
    from capsim.engine.vectorised import can_vectorise

    if engine == "events":
        return "events", "the event path was requested (--engine events)"
    possible, reason = can_vectorise(model)
    if engine == "auto" and possible:
        overloaded = _overloaded_tier(model)
        if overloaded is not None:
            return "events", (
                f"tier '{overloaded}' is offered more work than its workers can do; the event "
                "path bounds its backlog (the vectorised path's cost grows with it)"
            )
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
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> list[RunResult]:
    """Run every replication and return their results in replication order.

    Results do not depend on the executor: each replication draws from its own streams.
    Raises ResourceLimitError before starting when the run would exceed `max_requests`.
    """
    count = replications if replications is not None else model.simulation.replications
    check_run_size(model, count, max_requests, max_memory)
    path, reason = choose_path(model, engine)
    results: list[RunResult] = []
    try:
        if executor == "process" and count > 1:
            _run_on_pool(model, count, path, workers, progress, results)
        else:
            for i in range(count):

                def part(fraction: float, what: str, i: int = i) -> None:
                    if progress:
                        progress((i + fraction) / count, f"replication {i + 1}/{count}: {what}")

                results.append(run_replication(model, i, path, progress=part))
    except KeyboardInterrupt:
        _label(results, path, reason)
        raise Interrupted(
            f"interrupted after {len(results)} of {count} replication(s)", results, count
        ) from None
    _label(results, path, reason)
    return results


def _label(results: list[RunResult], path: str, reason: str) -> None:
    for result in results:
        result.engine_path = path
        result.engine_reason = reason


def _leave_signals_to_the_parent() -> None:
    """Pool workers ignore Ctrl-C (sent to the whole process group) and die on SIGTERM: the
    parent stops them and reports what was completed, without a traceback from each worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_on_pool(
    model: Model,
    count: int,
    path: str,
    workers: int | None,
    progress: ProgressCallback | None,
    results: list[RunResult],
) -> None:
    """Replications on a process pool, appended to `results` in replication order.

    On KeyboardInterrupt the replications already collected are kept and the workers are
    terminated at once (multiprocessing's Pool is made for that; a ProcessPoolExecutor whose
    workers are killed can hang the interpreter's exit).
    """
    jobs = [(model, i, path) for i in range(count)]
    pool = multiprocessing.Pool(processes=workers, initializer=_leave_signals_to_the_parent)
    try:
        for done, result in enumerate(pool.imap(_run_one, jobs, chunksize=1)):
            results.append(result)
            if progress:
                progress((done + 1) / count, f"replication {done + 1}/{count}")
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
