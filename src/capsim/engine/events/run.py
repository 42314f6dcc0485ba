"""One replication on the event path: builds the tiers and classes, runs the clock, gathers results."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import simpy

from capsim.engine.events import lanes
from capsim.engine.events.calls import CallStep, _compile_step, _runner
from capsim.engine.events.classes import _ClassSim
from capsim.engine.events.clock import Clock, after, events_processed, run_until
from capsim.engine.events.tier import _TierSim
from capsim.engine.events.windows import TRACE_POINTS, _Window
from capsim.engine.result import RunResult
from capsim.errors import SimulationError
from capsim.model.phases import cuts as phase_cuts
from capsim.model.types import (
    Model,
)

#: Progress is reported this many times over the simulated time.
PROGRESS_STEPS = 100


#: Interpreter frames one level of nested calls takes when its answer travels back up the
#: chain of continuations (measured: 3 to 4), with room to spare.
FRAMES_PER_CALL_LEVEL = 8
#: Frames beyond the model's nesting: SimPy's loop, the callbacks, numpy.
BASE_FRAMES = 2000
#: The recursion limit is never raised beyond this (about 12,000 nested tiers).
MAX_FRAMES = 100_000


@contextlib.contextmanager
def _stack_for(model: Model) -> Iterator[None]:
    """Room on the interpreter's stack for answers that travel up a chain of calls as deep as the
    model has tiers (each answer calls its caller's continuation). Since Python 3.11 such calls
    between Python functions take no C stack, so a higher recursion limit is safe. A chain that
    still runs out (a loop followed thousands of times) is a SimulationError, not a traceback."""
    previous = sys.getrecursionlimit()
    needed = min(BASE_FRAMES + FRAMES_PER_CALL_LEVEL * max(len(model.tiers), 1), MAX_FRAMES)
    sys.setrecursionlimit(max(previous, needed))
    try:
        yield
    except RecursionError:
        raise SimulationError(
            f"a request's calls nested deeper than the event path can follow ({needed:,} "
            "interpreter frames); shorten the chain of calls or lower the probability of the "
            "loop that nests them"
        ) from None
    finally:
        sys.setrecursionlimit(previous)


def run_events(
    model: Model,
    replication: int,
    progress: Callable[[float, str], None] | None = None,
) -> RunResult:
    """One replication of `model` on the discrete-event path."""
    started = time.perf_counter()
    window = _Window(model, replication)
    env = Clock()
    tiers = [_TierSim(env, tier, window, len(model.classes)) for tier in model.tiers]
    for t in lanes.sole_entries(model):
        tiers[t].station.sole_entry = True
    for sim in tiers:
        lookup = sim.cold_cache() if sim.tier.cold_lru is not None else None
        decisions: list[lanes.Decision | None] = []  # how the fast lane decides the calls
        for k, work in enumerate(sim.tier.work):
            steps = tuple(_compile_step(step, sim, tiers) for step in work.calls)
            if lookup is not None and steps and type(steps[0]) is CallStep:
                # The miss call is made when the lookup (1.0 hit, 0.0 miss) is below 0.5.
                miss = steps[0]._replace(probability=0.5, uniform=lookup)
                steps = (miss, *steps[1:])
            sim.runners[k] = _runner(steps)
            decisions.append(lanes.decision(steps, sim.runners[k]))
        sim.station.decisions = decisions
    warmup, horizon = window.warmup, window.horizon
    duration = horizon - warmup
    trace_times = warmup + duration * np.arange(TRACE_POINTS) / TRACE_POINTS

    def opened(event: simpy.Event) -> None:
        for sim in tiers:
            sim.open_window()

    after(env, warmup).callbacks.append(opened)

    def sampled(event: simpy.Event) -> None:
        for sim in tiers:
            sim.sample_queue()

    def bucket_ended(event: simpy.Event) -> None:
        for sim in tiers:
            sim.snapshot()

    if window.series is not None:
        # The last edge is the horizon: its snapshot is taken after the run.
        for t in window.series.edges[1:-1].tolist():
            after(env, t).callbacks.append(bucket_ended)

    # Events at equal times run in the order they were scheduled: the window opens first.
    for t in trace_times.tolist():
        after(env, t).callbacks.append(sampled)

    def phase_ended(event: simpy.Event) -> None:
        for sim in tiers:
            sim.station.mark_phase()

    # The moments a fault cuts the window into phases: each tier's waits are noted there, so
    # that a wait percentile can be judged per phase. Not the model's events: not counted.
    cuts = phase_cuts(model, warmup, horizon)
    for moment in cuts:
        after(env, moment).callbacks.append(phase_ended)

    # Created after the window and trace events: at equal times those run first.
    classes = [_ClassSim(env, c, tiers[c.entry], window, model.share_over) for c in model.classes]

    ticks = 0  # progress reports: events on the schedule that are not the model's
    if progress is not None:
        report = progress
        step = horizon / PROGRESS_STEPS

        def tick(event: simpy.Event) -> None:
            nonlocal ticks
            ticks += 1
            report(env._now / horizon, "simulating")
            if env._now + step < horizon:
                after(env, step).callbacks.append(tick)

        after(env, step).callbacks.append(tick)

    built = time.perf_counter()
    with _stack_for(model):
        run_until(env, horizon)
    simulated = time.perf_counter()
    if progress is not None:
        progress(1.0, "simulating")

    # Scheduled events minus those still waiting on the heap: the events SimPy processed.
    events = events_processed(env, ticks + len(cuts))
    tier_runs = [sim.record() for sim in tiers]
    for run in tier_runs:
        run.trace_times = trace_times.copy()
        for group in (run.groups or {}).values():
            group.trace_times = run.trace_times
    for c in classes:
        c.record(horizon)
        c.latency.flush()
        c.flush_series()
    if window.series is not None:
        for sim in tiers:
            sim.snapshot()
            sim.record_series()
    result = RunResult(
        seed=model.seed,
        replication=replication,
        duration=duration,
        warmup=warmup,
        classes=[c.run for c in classes],
        tiers=tier_runs,
        engine_path="events",
        engine_reason="",
        events=events,
        series=window.series,
    )
    result.timings = {
        "build": built - started,
        "simulate": simulated - built,
        "summarise": time.perf_counter() - simulated,
    }
    return result
