"""Request classes: open arrivals (rate, profile, arrival process) and closed users."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from capsim.engine import streams
from capsim.engine.arrivals import ArrivalEpochs
from capsim.engine.events import admission, lanes, network
from capsim.engine.events.calls import _ignore
from capsim.engine.events.clock import (
    _NORMAL,
    Clock,
    _scheduler,
    _scheduler_at,
    _Timer,
    push_entry,
    schedule_of,
)
from capsim.engine.events.draws import _buffered, _distribution_draw, _epoch_times
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick
from capsim.engine.events.windows import _Window
from capsim.engine.histogram import Histogram, Recorder, censored
from capsim.engine.result import ClassRun
from capsim.engine.timeseries import (
    CompletionLog,
    bucket_at,
)
from capsim.errors import SimulationError
from capsim.model.distributions import Distribution
from capsim.model.types import (
    TrafficClass,
)

if TYPE_CHECKING:
    from capsim.engine.events.tier import _TierSim


# ---- arrivals with a rate profile -----------------------------------------------------------


class _RateProfile:
    """Inverts the integrated piecewise-linear rate: the time at which Lambda(t) reaches a target.

    Used as a time change: unit-rate arrival epochs (Exp(1) gaps, or 1 for constant arrivals)
    mapped through Lambda^-1 give a non-homogeneous process with the profile's rate.
    """

    def __init__(self, traffic: TrafficClass) -> None:
        self.segments = traffic.rate_segments()
        self.index = 0
        self.reached = 0.0  # Lambda at the start of the current segment
        self.cumulative = 0.0  # the target so far

    def next_time(self, increment: float) -> float:
        """Advance the target by `increment`; the time Lambda reaches it (inf: never)."""
        self.cumulative += increment
        while True:
            start, end, r0, r1 = self.segments[self.index]
            need = self.cumulative - self.reached
            length = end - start
            if math.isinf(end):
                return start + need / r0 if r0 > 0 else math.inf
            total = 0.5 * (r0 + r1) * length
            if need <= total and total > 0:
                slope = 0.5 * (r1 - r0) / length
                # root of slope*x^2 + r0*x = need, written to stay stable for either sign.
                x = 2.0 * need / (r0 + math.sqrt(max(r0 * r0 + 4.0 * slope * need, 0.0)))
                return start + min(x, length)
            self.reached += total
            self.index += 1


class _ClassSim:
    """One request class: its arrivals (open) or users (closed), and its figures."""

    def __init__(
        self,
        env: Clock,
        traffic: TrafficClass,
        entry: _TierSim,
        window: _Window,
        share_limits: tuple[float, ...] = (),
    ) -> None:
        self.run = ClassRun(latency=Histogram(share_limits))
        self.latency = Recorder(self.run.latency)
        # The arrival time of every request of the window not yet answered, by a key of its
        # own: what is left at the end is counted at its age then (`record_unfinished`).
        self.pending: dict[int, float] = {}
        pending = self.pending
        ticket = itertools.count().__next__
        warmup = window.warmup
        k = traffic.index
        pick = entry.pick(None)
        if traffic.network_delay > 0:  # clients served from another region
            enter = _bound(network.delayed(env, entry.enter, traffic.network_delay), pick)
        else:
            enter = admission.direct_enter(entry.station, pick) or _bound(entry.enter, pick)
        record_latency = self.latency.record
        counts = self.counts = Counts()
        later = _scheduler(env)
        self.flush_series: Callable[[], None] = lambda: None
        tracker = _ClassTracker(env, window, k) if window.series is not None else None
        if tracker is not None:
            self.flush_series = tracker.flush

        if traffic.is_closed:
            think_time = traffic.think_time or Distribution.constant(0.0)
            think = _distribution_draw(think_time, window.class_rng(traffic.name, streams.THINK))

            def thought(event: _Timer) -> None:
                now = env._now
                key = ticket()
                if now >= warmup:
                    counts.arrivals += 1
                    pending[key] = now
                if tracker is not None:
                    tracker.arrived(now)

                def finish(ok: bool) -> None:
                    if now >= warmup:
                        pending.pop(key, None)
                        if ok:
                            counts.completed += 1
                            record_latency(env._now - now)
                        else:
                            counts.errors += 1
                    if tracker is not None:
                        tracker.finished(now, ok)
                    later(think(), on_thought, None)

                if not enter(k, finish):
                    refused_at_once(now)
                    finish(False)

            # Users refused on the spot who think for 0 s would retry forever at one instant.
            spins = [0, -1.0]
            spin_limit = 1000 * (traffic.users or 0) + 1000

            def refused_at_once(now: float) -> None:
                if now != spins[1]:
                    spins[0], spins[1] = 0, now
                spins[0] += 1
                if spins[0] > spin_limit:
                    raise SimulationError(
                        f"class {traffic.name!r}: its users are refused at once by tier "
                        f"{entry.tier.name!r} and think for 0s, so simulated time cannot advance "
                        f"(t={now:g}s); give the class a think_time > 0 or the tier a waiting room"
                    )

            on_thought = (thought,)
            for _ in range(traffic.users or 0):
                later(think(), on_thought, None)
            return

        rng = window.class_rng(traffic.name, streams.ARRIVALS)
        rate = float(traffic.rate or 0.0)
        # `gap()` gives the delay to the next arrival and `schedule` sets a timer after it; an
        # arrival process instead gives the next arrival's time and is scheduled at it, exactly.
        schedule = later
        if traffic.process is not None:
            gap = _epoch_times(ArrivalEpochs(traffic.process, rng))
            schedule = _scheduler_at(env)
        elif traffic.profile:
            unit: Draw = (
                itertools.repeat(1.0).__next__
                if traffic.arrivals == "constant"
                else _buffered(rng.standard_exponential)
            )
            profile = _RateProfile(traffic)

            def gap() -> float:
                return profile.next_time(unit()) - env._now

        elif rate <= 0.0:
            return
        elif traffic.arrivals == "constant":
            # Arrival n at exactly n / rate (as on the vectorised path), not at a running sum of
            # 1 / rate, which drifts and moves arrivals across the window's edges.
            epochs = itertools.count(1)

            def gap() -> float:
                return next(epochs) / rate - env._now

        else:
            gap = _buffered(lambda n: rng.exponential(1.0 / rate, n))

        heap, eid = schedule_of(env)
        new_id = eid.__next__
        push = push_entry  # a local: see `instances`
        absolute = traffic.process is not None  # `gap()` gives the time itself
        # `record_latency`, inlined below: the recorder's buffer, flushed in place at the same
        # count (the same batches, the same sums); one Python call less per request.
        latencies, limit, flush = self.latency.buffer, self.latency.limit, self.latency.flush

        def arrival(_: object) -> None:
            now = env._now
            while True:
                # The next arrival's time and timer id, taken before this arrival's work (as
                # when its timer is pushed first): see 'Consecutive arrivals' below.
                step = gap()
                when = step if absolute or step == math.inf else now + step
                ident = new_id()
                if now < warmup:
                    enter(k, _ignore)
                else:
                    counts.arrivals += 1
                    pending[ident] = now

                    def finish(ok: bool, started: float = now, key: int = ident) -> None:  # bound
                        pending.pop(key, None)
                        if ok:
                            counts.completed += 1
                            latencies.append(env._now - started)
                            if len(latencies) >= limit:
                                flush()
                        else:
                            counts.errors += 1

                    if not enter(k, finish):
                        counts.errors += 1
                        pending.pop(ident, None)
                if when >= heap[0][0]:  # something else is due first (see 'Consecutive arrivals')
                    break
                env._now = now = when
            if when < math.inf:  # the next arrival: its function on the schedule, no timer
                push(heap, (when, _NORMAL, ident, arrival, None))

        on_lane = None
        if tracker is None and traffic.network_delay <= 0:  # the fast lane, where it runs
            # `gap()` of constant arrivals and rate profiles reads the clock: none goes ahead.
            steady = absolute or not (traffic.profile or traffic.arrivals == "constant")
            on_lane = lanes.entry_arrivals(
                entry.station, pick, k, gap, absolute, steady, counts, self.latency, pending
            )
        if tracker is not None:
            # The same arrivals, also counted per time bucket (warm-up included).
            arrived, finished = tracker.arrived, tracker.finished

            def tracked_arrival(_: object) -> None:
                now = env._now
                step = gap()
                if step < math.inf:
                    schedule(step, on_arrival, None)
                arrived(now)
                counted = now >= warmup
                key = ticket()
                if counted:
                    counts.arrivals += 1
                    pending[key] = now

                def finish(ok: bool) -> None:
                    if counted:
                        pending.pop(key, None)
                        if ok:
                            counts.completed += 1
                            record_latency(env._now - now)
                        else:
                            counts.errors += 1
                    finished(now, ok)

                if not enter(k, finish):
                    finish(False)

        if on_lane is not None:
            on_arrival = on_lane
        else:  # (two functions, two names: the compiled event path needs it, see `accelerator`)
            on_arrival = (arrival if tracker is None else tracked_arrival,)
        first = gap()
        if first < math.inf:
            schedule(first, on_arrival, None)

    def record(self, end: float) -> None:
        """The class's figures at the window's `end`: its counts, and the requests still
        unanswered then, counted and their ages recorded as latencies (lower bounds:
        `histogram.censored`), after every completion."""
        run, counts = self.run, self.counts
        run.arrivals += counts.arrivals
        run.completed += counts.completed
        run.errors += counts.errors
        ages = [end - arrived for arrived in self.pending.values()]
        latency = self.latency.flush()
        latency.add(censored(ages, latency))
        self.run.unfinished += len(ages)
        if ages:
            self.run.oldest_unfinished = max(self.run.oldest_unfinished, max(ages))


# Consecutive arrivals. An open class's arrival callback runs the class's next arrival itself,
# at once (the clock set to its time), when it is due before every event on the schedule,
# rather than push its timer and have the loop pop it straight back. Nothing else is due before
# it (strictly: an event due at the same instant may have been scheduled first), so the events
# run in the same order; its timer id is taken all the same, before the arrival's own work as
# when the timer is pushed first, so the ids of later events, and the count of events, are the
# same too. The schedule is never empty meanwhile (the stop event at the horizon is on it).


class Counts:
    """A class's arrivals, completions and errors in the window, as the hot path counts them:
    an object of the event path's own, so that the compiled path adds to typed fields (the
    `ClassRun` they go into at the end, `_ClassSim.record`, is plain data, not compiled)."""

    __slots__ = ("arrivals", "completed", "errors")

    def __init__(self) -> None:
        self.arrivals = self.completed = self.errors = 0


def _bound(enter: Enter, pick: Pick) -> Callable[[int, Cont], bool]:
    """`enter` with the class's instance chooser bound (an entry tier with admission)."""
    return lambda k, cont: enter(k, pick, cont)


class _ClassTracker:
    """Counts one class's arrivals, completions, errors and latencies per time bucket."""

    def __init__(self, env: Clock, window: _Window, k: int) -> None:
        assert window.series is not None
        self.env = env
        self.series = window.series.classes[k]
        self.inverse = 1.0 / window.series.bucket
        self.last = self.series.arrivals.size - 1
        self.arrivals = [0] * (self.last + 1)
        self.errors = [0] * (self.last + 1)
        self.log = CompletionLog(self.series, window.series.bucket)

    def arrived(self, now: float) -> None:
        self.arrivals[bucket_at(now, self.inverse, self.last)] += 1

    def finished(self, arrived: float, ok: bool) -> None:
        now = self.env._now
        if ok:
            self.log.record(now, now - arrived)
        else:
            self.errors[bucket_at(now, self.inverse, self.last)] += 1

    def flush(self) -> None:
        self.log.flush()
        self.series.arrivals[:] = self.arrivals
        self.series.errors[:] = self.errors
