"""Runs replications of a model: chooses the engine path and hands work to an executor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from capsim.engine.executors import (
    KILL_WORKER_ENV,  # noqa: F401  (re-exported: tests import the hook from here)
    Executor,
    SerialExecutor,
    Task,
    open_executor,
)
from capsim.engine.limits import (
    DEFAULT_MAX_MEMORY,
    MAX_TIMER_FIRINGS,
    MAX_VISITS_PER_REQUEST,
    estimate_run_memory,
    estimate_work,
    explicit_waiting,
    step_fan_out,
    waiting_limit_default,
)
from capsim.engine.result import RunResult
from capsim.engine.timeseries import bucket_count, series_bucket
from capsim.errors import Interrupted, ResourceLimitError
from capsim.model.types import MmppArrivals, Model, TraceArrivals, TrafficClass
from capsim.model.visits import expected_visits, mean_work
from capsim.units import format_count, format_duration, option_count

EnginePath = Literal["auto", "vectorised", "events"]
ProgressCallback = Callable[[float, str], None]  # (fraction done in [0, 1], what is running)


#: Default cap on the requests one command may simulate (over all replications). At the event
#: path's speed this is minutes of work; `--max-requests` raises it.
DEFAULT_MAX_REQUESTS = 100_000_000


def _open_requests(traffic: TrafficClass, horizon: float) -> float:
    """Expected arrivals of an open class over [0, horizon] (the profile integrated exactly)."""
    trace = traffic.process
    if isinstance(trace, TraceArrivals) and not trace.loop:
        return float(np.count_nonzero(trace.times < horizon))
    return traffic.arrivals_until(horizon)


def _class_requests(model: Model, replications: int) -> list[float]:
    """Expected requests of each class over all replications (closed classes bounded above by
    users x horizon / (think time + service demand))."""
    horizon = model.horizon
    demand = mean_work(model).sum(axis=1) if model.tiers else None
    per_class = []
    for traffic in model.classes:
        if traffic.is_closed:
            think = traffic.think_time.mean if traffic.think_time is not None else 0.0
            cycle = think + (float(demand[traffic.index]) if demand is not None else 0.0)
            per_class.append(float(traffic.users or 0) * horizon / max(cycle, 1e-9))
        else:
            per_class.append(_open_requests(traffic, horizon))
    return [requests * replications for requests in per_class]


def estimate_requests(model: Model, replications: int | None = None) -> float:
    """Expected number of requests (class arrivals) a run simulates, over all replications.

    Closed classes are bounded above by users x horizon / (think time + service demand).
    """
    count = replications if replications is not None else model.simulation.replications
    return sum(_class_requests(model, count))


def check_run_size(
    model: Model,
    replications: int | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    max_memory: float = DEFAULT_MAX_MEMORY,
    processes: int = 1,
) -> float:
    """Raise ResourceLimitError before a run beyond `max_requests` requests, tier visits, timer
    events or MMPP state changes, beyond `max_memory` bytes (with `processes` replications
    running at once), or with requests that each make more than MAX_VISITS_PER_REQUEST tier
    visits; return the requests estimate."""
    count = replications if replications is not None else model.simulation.replications
    per_class = _class_requests(model, count)
    requests = sum(per_class)
    _check_state_changes(model, count, max_requests)
    _check_memory(model, requests / max(count, 1), count, max_memory, max(1, processes))
    if requests > max_requests:
        raise ResourceLimitError(
            f"this run would simulate about {format_count(requests)} requests over {count} "
            f"replication(s), more than the limit of {format_count(max_requests)}. Shorten "
            "simulation.duration, lower the replications, or allow it with "
            f"--max-requests {option_count(requests * 1.1)}."
        )
    _check_work(model, per_class, count, max_requests)
    return requests


def _check_state_changes(model: Model, replications: int, max_requests: float) -> None:
    """An MMPP's state changes are work too, however few requests it sends: bound them."""
    for traffic in model.classes:
        mmpp = traffic.process
        if not isinstance(mmpp, MmppArrivals):
            continue
        changes = 2.0 * model.horizon / sum(mmpp.mean_sojourn) * replications
        if changes > max_requests:
            raise ResourceLimitError(
                f"class '{traffic.name}': its MMPP would change state about {format_count(changes)} times "
                f"over {replications} replication(s), more than the limit of {format_count(max_requests)}; "
                "lengthen its mean_sojourn, shorten simulation.duration, or allow it with "
                f"--max-requests {option_count(changes * 1.1)}."
            )


def _check_memory(
    model: Model, requests: float, replications: int, max_memory: float, processes: int
) -> None:
    memory = estimate_run_memory(model, requests, replications, min(processes, replications))
    if memory.total <= max_memory:
        return
    total, allow = _bytes(memory.total), _bytes(memory.total * 1.1).replace(" ", "")
    engine, series = memory.running * memory.engine, memory.running * memory.series
    largest_part = max(engine, series, memory.results)
    if largest_part == memory.results:
        total += " of memory"
        reason = (
            f"the results of {replications:,} replication(s), about "
            f"{_bytes(memory.results / replications)} each, are kept until they are summarised"
        )
        remedy = "Lower the replications (or make each one longer)"
    elif largest_part == series:
        total += " of memory" if memory.running > 1 else " of memory per replication"
        bucket = series_bucket(model)
        reason = (
            f"its time series has {format_count(bucket_count(bucket, model.horizon))} buckets of "
            f"{bucket:g}s for {len(model.classes)} class(es) and {len(model.tiers)} tier(s)"
        )
        remedy = "Choose a wider bucket (simulation.timeseries: 10s) or turn it off"
    else:
        total += " of memory" if memory.running > 1 else " of memory per replication"
        largest = max(model.tiers, key=lambda tier: float(tier.servers) * float(tier.concurrency))
        reason = (
            f"tier '{largest.name}' alone has {format_count(float(largest.servers))} instance(s) x "
            f"{format_count(float(largest.concurrency))} worker(s)"
        )
        remedy = "Lower the instances or concurrency"
        deepest = _deepest_explicit_waiting(model)
        if deepest is not None:
            reason, remedy = deepest
        if memory.running > 1:
            reason += f"; {memory.running} replications run at once on the process pool"
            remedy += " or the --workers"
    raise ResourceLimitError(
        f"this run would need about {total} ({reason}), more than the limit of "
        f"{_bytes(max_memory)}. {remedy}, or allow it with --max-memory {allow}."
    )


def _check_work(model: Model, per_class: list[float], replications: int, limit: float) -> None:
    """Tier visits and timer events, counted against the same limit as requests."""
    visits = expected_visits(model) if model.tiers else None
    work = estimate_work(model, per_class, replications, visits)
    if visits is not None:
        for traffic in model.classes:
            per_request = float(visits[traffic.index].sum())
            if per_request > MAX_VISITS_PER_REQUEST:
                raise ResourceLimitError(
                    f"one request of class '{traffic.name}' would make about {format_count(per_request)} "
                    f"tier visits ({_busiest_step(model, traffic.index)}); capsim simulates at "
                    f"most {MAX_VISITS_PER_REQUEST:,} per request. Model repeated or fanned-out "
                    "calls as fewer calls with a longer service time."
                )
    fan_out, where = _busiest_tier(model)
    if fan_out > MAX_VISITS_PER_REQUEST:
        raise ResourceLimitError(
            f"one visit of tier '{where}' may make up to {format_count(fan_out)} calls (repeats, parallel "
            f"branches and every retry allowed); capsim simulates at most "
            f"{MAX_VISITS_PER_REQUEST:,} tier visits per request. Lower the repeats, the "
            "branches or retries.max."
        )
    if work.fastest_firings > MAX_TIMER_FIRINGS:
        raise ResourceLimitError(
            f"{work.fastest_timer} fires about {format_count(work.fastest_firings)} times in the "
            f"{model.horizon:g}s of a replication; capsim lets a periodic timer fire at most "
            f"{MAX_TIMER_FIRINGS:,} times. Lengthen it to at least "
            f"{format_duration(model.horizon / MAX_TIMER_FIRINGS)}."
        )
    if work.total > limit:
        raise ResourceLimitError(
            f"this run would simulate about {format_count(work.total)} tier visits and timer events "
            f"({work.describe()}) over {replications} replication(s), more than the limit of "
            f"{format_count(limit)}. {work.remedy()}, or allow it with --max-requests "
            f"{option_count(work.total * 1.1)}."
        )


def _busiest_tier(model: Model, class_index: int | None = None) -> tuple[float, str]:
    """The most attempts one visit of a tier may make (for one class, or any), and that tier."""
    best, where = 0.0, ""
    for tier in model.tiers:
        works = tier.work if class_index is None else (tier.work[class_index],)
        for work in works:
            fanned = float(sum(step_fan_out(step) for step in work.calls))
            if fanned > best:
                best, where = fanned, tier.name
    return best, where


def _busiest_step(model: Model, class_index: int) -> str:
    """The tier's calls that fan out most for one class, in words."""
    best, where = _busiest_tier(model, class_index)
    if not where:
        return "through loops of calls"
    return f"tier '{where}' makes up to {format_count(best)} calls per visit"


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


def run_batch(
    models: Sequence[Model],
    *,
    engine: EnginePath = "auto",
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    labels: Sequence[str] | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    max_memory: float = DEFAULT_MAX_MEMORY,
    first: Sequence[int] | None = None,
) -> list[list[RunResult]]:
    """Every replication of every model, evaluated together on `executor` (serial by default);
    per model, its results in replication order. With `first`, model m's replications before
    first[m] are not run (the caller has them: a replication is a pure function of the model
    and its index, whatever the count) and its results start at replication first[m].

    The models are independent (the points of a search or a sweep): their replications are one
    batch, so an executor with several workers runs them at the same time. Each model is checked
    against the limits before anything runs. On Ctrl-C, raises Interrupted whose `runs` are the
    completed replications of the first model and whose `completed_models` maps the index of
    every model whose replications all completed to its results.
    """
    # The memory estimate counts the replications this machine runs at once, each with its
    # engine state (the workers of a process pool or of a local Dask cluster).
    running = executor.running_here if executor is not None else 1
    paths = []
    for model in models:
        check_run_size(model, None, max_requests, max_memory, running)
        paths.append(choose_path(model, engine))
    starts = list(first) if first is not None else [0] * len(models)
    owners = [
        (m, r)
        for m, model in enumerate(models)
        for r in range(starts[m], model.simulation.replications)
    ]
    tasks = [Task(models[m], r, paths[m][0]) for m, r in owners]
    if not tasks:
        return [[] for _ in models]
    slots: list[list[RunResult | None]] = [
        [None] * max(model.simulation.replications - start, 0)
        for model, start in zip(models, starts, strict=True)
    ]
    tracker = _BatchProgress(models, owners, progress, labels)

    def keep(index: int, result: RunResult) -> None:
        m, replication = owners[index]
        result.engine_path, result.engine_reason = paths[m]
        slots[m][replication - starts[m]] = result
        tracker.done(index)

    try:
        (executor or SerialExecutor()).run(tasks, keep, tracker.part, tracker.tick)
    except KeyboardInterrupt:
        complete = {m: [r for r in runs if r is not None] for m, runs in enumerate(slots)}
        finished = {m: runs for m, runs in complete.items() if len(runs) == len(slots[m])}
        done = sum(len(runs) for runs in complete.values())
        stop = Interrupted(
            f"interrupted after {done} of {len(tasks)} replication(s)",
            complete.get(0, []) if len(models) == 1 else [],
            len(tasks),
        )
        stop.completed_models = finished
        raise stop from None
    return [[r for r in runs if r is not None] for runs in slots]


class _BatchProgress:
    """Turns task completions (and a serial task's own progress) into one fraction and a label."""

    def __init__(
        self,
        models: Sequence[Model],
        owners: list[tuple[int, int]],
        progress: ProgressCallback | None,
        labels: Sequence[str] | None,
    ) -> None:
        self.models = models
        self.owners = owners
        self.progress = progress
        self.labels = labels
        self.finished = 0
        # What `tick` repeats while workers elsewhere have not finished anything yet.
        others = f" (and {len(owners) - 1} more)" if len(owners) > 1 else ""
        self.last: tuple[float, str] | None = (0.0, f"{self._what(0)}{others} started")

    def _what(self, index: int) -> str:
        m, replication = self.owners[index]
        count = self.models[m].simulation.replications
        own = f"replication {replication + 1}/{count}"
        if self.labels is not None:
            return f"{self.labels[m]}, {own}" if count > 1 else self.labels[m]
        return own

    def _send(self, fraction: float, what: str) -> None:
        if self.progress is not None:
            self.last = (fraction, what)
            self.progress(fraction, what)

    def part(self, index: int, fraction: float, what: str) -> None:
        self._send((self.finished + fraction) / len(self.owners), f"{self._what(index)}: {what}")

    def done(self, index: int) -> None:
        self.finished += 1
        total = len(self.owners)
        self._send(self.finished / total, f"{self._what(index)} done ({self.finished}/{total})")

    def tick(self) -> None:
        if self.last is not None and self.progress is not None:
            self.progress(*self.last)


def run_replications(
    model: Model,
    replications: int | None = None,
    engine: EnginePath = "auto",
    executor: str | Executor = "serial",
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> list[RunResult]:
    """Run every replication and return their results in replication order.

    Results do not depend on the executor: each replication draws from its own streams.
    `executor` is an open Executor, or the name of one to open for this call ("serial",
    "process", "dask"). Raises ResourceLimitError before starting when the run would exceed
    `max_requests`; Interrupted on Ctrl-C with the completed replications.
    """
    if replications is not None and replications != model.simulation.replications:
        model = replace(model, simulation=replace(model.simulation, replications=replications))
    if isinstance(executor, str):
        with open_executor(executor, workers) as opened:
            return run_replications(
                model, None, engine, opened, None, progress, max_requests, max_memory
            )
    try:
        return run_batch(
            [model],
            engine=engine,
            executor=executor,
            progress=progress,
            max_requests=max_requests,
            max_memory=max_memory,
        )[0]
    except Interrupted as stop:
        count = model.simulation.replications
        raise Interrupted(
            f"interrupted after {len(stop.runs)} of {count} replication(s)", stop.runs, count
        ) from None


def _deepest_explicit_waiting(model: Model) -> tuple[str, str] | None:
    """(reason, remedy) when a tier's own waiting room (`max_depth`, `max_queue`, a pool's
    `max_waiting`) is what the run must hold, beyond capsim's default cap: it is honoured, so
    the memory for it is counted."""
    rooms = [(explicit_waiting(tier), tier) for tier in model.tiers]
    room, tier = max(rooms, key=lambda pair: pair[0], default=(0, None))
    if tier is None or room <= waiting_limit_default(tier):
        return None
    key = "max_depth" if tier.kind == "queue" else "max_queue (or the pool's max_waiting)"
    return (
        f"tier '{tier.name}' may hold {format_count(float(room))} waiting requests, as its "
        f"{key} allows, and capsim honours it",
        f"Lower {key} on tier '{tier.name}'",
    )
