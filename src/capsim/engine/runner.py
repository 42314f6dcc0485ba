"""Runs replications of a model: chooses the engine path and hands work to an executor."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from capsim.engine.limits import (
    DEFAULT_MAX_MEMORY,
    MAX_TIMER_FIRINGS,
    MAX_VISITS_PER_REQUEST,
    estimate_run_memory,
    estimate_work,
    step_fan_out,
)
from capsim.engine.result import RunResult
from capsim.engine.timeseries import bucket_count, series_bucket
from capsim.errors import Interrupted, ResourceLimitError, SimulationError
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


#: Tests only: a pool worker given this replication index kills itself with SIGKILL, as the
#: kernel's out-of-memory killer would (tests/test_limits_hostile.py).
KILL_WORKER_ENV = "CAPSIM_TEST_KILL_REPLICATION"
#: How often, in seconds, the parent looks for dead workers while it waits for a result.
POOL_POLL_S = 0.2


def _run_one(args: tuple[Model, int, str]) -> RunResult:
    model, replication, path = args
    if os.environ.get(KILL_WORKER_ENV) == str(replication):
        os.kill(os.getpid(), signal.SIGKILL)
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
    processes = (workers or os.cpu_count() or 1) if executor == "process" and count > 1 else 1
    check_run_size(model, count, max_requests, max_memory, processes)
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
    jobs = ((model, i, path) for i in range(count))
    pool = multiprocessing.Pool(processes=workers, initializer=_leave_signals_to_the_parent)
    watch = _WorkerWatch(pool)
    try:
        answers = pool.imap(_run_one, jobs, chunksize=1)
        for done in range(count):
            results.append(_next_result(answers, watch, done, count))
            if progress:
                progress((done + 1) / count, f"replication {done + 1}/{count}")
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()


class _WorkerWatch:
    """Notices a pool worker that died. multiprocessing's Pool replaces a dead worker but loses
    the task it held, so the parent would wait for that result forever. Its workers only ever
    exit when the pool is closed, so a worker that exited before, or a replacement appearing,
    is a death (the kernel's out-of-memory killer, a signal, a crash). Pool keeps its workers in
    `_pool` (not public API): the first ones are remembered at once, and every later one when
    seen, with the exit codes of the dead ones."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.first = len(getattr(pool, "_pool", ()))
        self.seen: dict[int, Any] = {}
        self.look()

    def look(self) -> None:
        for process in list(getattr(self.pool, "_pool", ())):
            self.seen.setdefault(id(process), process)

    def dead(self) -> tuple[bool, int | None]:
        """(a worker died, its exit code when known)."""
        self.look()
        for process in self.seen.values():
            if process.exitcode is not None:
                return True, process.exitcode
        return len(self.seen) > self.first, None


def _next_result(answers: Any, watch: _WorkerWatch, done: int, count: int) -> RunResult:
    """The next replication's result, or SimulationError as soon as a worker is found dead."""
    while True:
        try:
            result: RunResult = answers.next(timeout=POOL_POLL_S)
            return result
        except multiprocessing.TimeoutError:
            died, exitcode = watch.dead()
            if died:
                raise SimulationError(_death_message(exitcode, done, count)) from None


def _death_message(exitcode: int | None, done: int, count: int) -> str:
    if exitcode is None:
        how = "died"
    elif exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in _SIGNALS else str(-exitcode)
        how = f"was killed by signal {-exitcode} ({name})"
        if -exitcode == signal.SIGKILL:
            how += ", as the kernel's out-of-memory killer does"
    else:
        how = f"exited with code {exitcode}"
    return (
        f"a worker process of the pool {how} while running a replication; {done} of {count} "
        "replication(s) had completed and nothing is reported. Give each worker more memory: "
        "run fewer at once (--workers 1) or --executor serial, or lower --max-memory so that "
        "capsim refuses runs this large before they start."
    )


_SIGNALS = {int(s) for s in signal.Signals}
