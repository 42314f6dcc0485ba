"""The fast lane: a class's own arrival answered in one step when nothing can observe its visit.

A request that arrives at its entry tier, finds a free worker there and whose work at that tier
makes no call (the tier has none for its class, or its one call is skipped by the call's
probability, drawn at once) has a known answer: its worker is busy from now to `now + service`,
then the request answers its class. Nothing that happens meanwhile can change that, so the lane
answers it now (counts and latency included) and schedules no event for the end of its work:
the worker stays held until that time in `HeldUntil`, and whoever needs a worker at that
instance first takes back the workers whose work has ended (`HeldUntil.reclaim`); a request
that has to wait while lane-held workers are busy is woken when the first of them frees
(`HeldUntil.wake_when_free`). One event and about five Python calls fewer per such request.
When the call is made, its timer is set at once for the end of the work (the worker is held in
`HeldUntil` all the same), and it runs the call without drawing again.

Arrivals ahead of their time. Where only this class's arrivals reach the tier (no other class
enters it, no tier calls it: `sole_entries`) and it has one instance, the tier's workers change
only through those arrivals, in order; so an arrival due later that will find a free worker
then can be run now, before the events due in between, while no request of the ordinary path is
at the tier (waiting or at work): it touches nothing they read, they touch nothing it reads,
and every draw it makes comes in the same place in its stream. The arrival callback runs up to `AHEAD` of them
(`classes._lane_arrivals`): no timer per arrival. Not for arrivals whose next time is computed
from the clock (constant arrivals, rate profiles).

What it changes. The numbers a run computes are drawn from the same streams with the same
distributions, but (1) a skipped call's uniform is drawn at the request's arrival, not at the
end of its work, so the routing stream's values go to the tier's requests in arrival order
rather than end-of-work order; (2) simultaneous events can run in another order (a worker held
by the lane is free to a request arriving at exactly its end time; an arrival run ahead sets
its call's timer before the events scheduled between its run and its time); (3) latencies are added up in
another order. So results differ from the event-by-event way in their draws, not in their law:
`tests/test_lanes.py` runs both ways over many seeds and checks that they agree within noise,
and against queueing theory. `ENABLED = False` restores the event-by-event way (the tests'
reference). The run's `events` counts an arrival run ahead as one event, as before.

When it runs (`lane_tier`, `entry_lane`): the class is open and reaches the tier directly (no
network delay), the time series are off, and the entry tier is the plain tier of `instances`
with nothing installed that observes a worker between the start and the end of its work: no
hook wrapped (`Station.base_hooks`: no faults, spot interruptions, autoscaling, serverless,
consumers, replica groups), no admission in front of `arrive` (pool, publishing, rate limit),
not a queue, no cold cache (its lookups are stateful), and an instance chooser that does not
count requests per instance (one instance, `round_robin` or `random`, no health checks). A
blocking tier qualifies for requests that make no call there (a worker is then held exactly
while it works: the lane adds that time to `Station.lane_held`, the tier's occupied time).
Everything else, and every request of such a tier that does not meet a free worker, takes the
ordinary path unchanged.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from capsim.engine.events import admission, calls
from capsim.engine.events.balancing import fixed_instance
from capsim.engine.events.calls import _ignore
from capsim.engine.events.clock import _NORMAL, _scheduler_at, _Timer, push_entry, schedule_of
from capsim.engine.events.instances import held_is_read
from capsim.engine.events.signatures import Cont, Draw, Pick, Runner
from capsim.engine.histogram import Recorder
from capsim.model.types import Call, Model, OneOf, Parallel, Step

if TYPE_CHECKING:
    from capsim.engine.events.classes import Counts
    from capsim.engine.events.station import Station

#: False: every request takes the event-by-event path (the reference the lane is tested against).
ENABLED = True
#: Arrivals an arrival callback runs ahead of their time at most (a tier only one class reaches):
#: each may schedule its call, so this bounds how much the schedule grows.
AHEAD = 64


class Decision(NamedTuple):
    """A class's calls at a tier as the lane can decide them at once: none (`uniform` and
    `sure` None), or one call made when `uniform() < chance`, run by `sure` (with no draw of
    its own)."""

    chance: float
    uniform: Draw | None
    sure: Runner | None


class HeldUntil:
    """Workers held by requests the lane answered: per instance, a sorted list of when each
    frees. Sorted, not a heap: `reclaim` frees all that have ended with one bisection and one
    slice, in C (a heap popped them one by one in Python: ~5% of web-shop's event path, whose
    CDN holds up to 1,000 workers this way); `insort` costs what `heappush` did."""

    __slots__ = ("later", "on_wake", "st", "times", "track_held", "wake_at")

    def __init__(self, st: Station) -> None:
        self.st = st
        self.track_held = held_is_read(st)  # `instances` keeps the integral of held workers
        self.times: list[list[float]] = [[] for _ in range(st.servers)]
        # The earliest wake-up on the schedule for each instance (inf: none).
        self.wake_at = [math.inf] * st.servers
        self.later = _scheduler_at(st.env)
        self.on_wake = (self._woken,)

    def reclaim(self, i: int, now: float) -> bool:
        """Free instance i's lane-held workers whose work has ended by `now`; whether i now
        has a free worker."""
        times, free = self.times[i], self.st.free
        if times and times[0] <= now:
            ended = bisect_right(times, now)
            del times[:ended]
            free[i] += ended
        return free[i] > 0

    def wake_when_free(self, i: int) -> None:
        """A request waits at instance i: release the first lane-held worker to it when its
        work ends (the event the lane did not schedule). A wake-up already on the schedule for
        a later time (set for a request a released worker took since) does not do: another is
        set; the later one finds nothing more to do than what has ended by then."""
        times = self.times[i]
        if times and times[0] < self.wake_at[i]:
            self.wake_at[i] = times[0]
            self.later(times[0], self.on_wake, i)

    def _woken(self, event: _Timer) -> None:
        i = event._value
        st, times = self.st, self.times[i]
        now = st.env._now
        if now >= self.wake_at[i]:
            self.wake_at[i] = math.inf  # the earliest one: none is due before the next set
        while times and times[0] <= now:
            del times[0]
            # `release` counts a request off the instance and frees a held worker: the lane
            # counted neither (it keeps its held time in `lane_held`), so count them on first.
            st.at[i] += 1
            if self.track_held:
                st.held_moved(now, +1)
            st.release(i)
        if st.live[i]:  # still someone waiting: the next lane-held worker to free is theirs
            self.wake_when_free(i)


def decision(steps: tuple[Any, ...], runner: Runner | None) -> Decision | None:
    """How the lane decides a tier's calls for a class (compiled `steps`; `runner` runs them),
    or None when it cannot (several steps, a repeat, a one_of, a parallel group) or would save
    nothing (a call always made: the end of the work needs its event all the same)."""
    if not steps:
        return Decision(0.0, None, None)
    if len(steps) > 1 or type(steps[0]) is not calls.CallStep:
        return None
    step = steps[0]
    if step.repeat != 1 or runner is None:
        return None
    if step.probability >= 1.0:
        return None  # always made: the lane would save no event (measured on the W3 variant)
    sure = None
    if step.target is not None:
        sure = admission.direct_runner(step.target, step.pick, 1.0, step.uniform)
    if sure is None:
        sure = calls._plain_call(step.enter, step.pick)
    return Decision(step.probability, step.uniform, sure)


def sole_entries(model: Model) -> set[int]:
    """The tiers that only one class's arrivals reach: its entry, entered by no other class and
    called by no tier (a call, a one_of option or fallback, in a parallel group or not)."""
    entered = Counter(c.entry for c in model.classes)
    called: set[int] = set()

    def walk(step: Step) -> None:
        if isinstance(step, Call):
            called.add(step.tier)
        elif isinstance(step, OneOf):
            called.update(t for t, _ in step.options)
            called.update(t for t in step.fallbacks if t is not None)
        elif isinstance(step, Parallel):
            for branch in step.branches:
                walk(branch)

    for tier in model.tiers:
        for work in tier.work:
            for step in work.calls:
                walk(step)
    return {t for t, n in entered.items() if n == 1 and t not in called}


def lane_tier(st: Station, pick: Pick) -> bool:
    """Whether requests balanced by `pick` may take the lane at this tier (see the module)."""
    tier = st.tier
    return bool(
        ENABLED
        and st.base_hooks == (st.arrive, st.release, st.start, st.on_work_done)
        and st.enter is st.plain_enter
        and tier.autoscale is None
        and st.series is None
        and not st.faults
        and not tier.is_async
        and tier.cold_lru is None
        and st.sim.routable is None
        and (fixed_instance(pick) is not None or tier.balancing in ("round_robin", "random"))
    )


def entry_arrivals(
    st: Station,
    pick: Pick,
    k: int,
    gap: Draw,
    absolute: bool,
    steady: bool,
    counts: Counts,
    latency: Recorder,
    pending: dict[int, float],
) -> tuple[Callable[[_Timer], None]] | None:
    """The callbacks of open class k's arrival timer when its entry tier `st` (instances chosen
    by `pick`) has a lane for it, or None when the tier or the class's calls there do not
    qualify. `gap()` gives the next arrival's delay (its time if `absolute`); `steady`: it
    does not read the clock, so arrivals may run ahead of their time. `pending` holds the
    arrival time of each counted request not yet answered (by its timer id), as `classes` keeps
    it; one the lane answers at once after the window's end is counted unfinished here.

    Each arrival takes the lane when it meets a free worker (answered now, or its call's timer
    set for the end of its work), else the ordinary path (`arrive`) with a continuation made
    here: the same arrivals, counts and latencies as `classes`' ordinary arrival. The class's
    next arrival runs in the same callback when nothing else is due before it (as there), or,
    where nobody else reaches the tier, when it will take the lane (up to `AHEAD` of them, the
    clock left where it is). One function, not a lane called by the arrival: two Python calls
    fewer per arrival (measured)."""
    plan = st.decisions[k] if st.decisions is not None else None
    if plan is None or not lane_tier(st, pick):
        return None
    chance, uniform, sure = plan
    if st.blocking and sure is not None:
        return None  # its worker would be held while the call is out: not a plain visit
    instance = fixed_instance(pick)
    only = instance if instance is not None and st.sole_entry and steady else -1
    if st.held_until is None:
        st.held_until = HeldUntil(st)
    held = st.held_until
    env, warmup, horizon, blocking = st.env, st.warmup, st.horizon, st.blocking
    free, at, times, arrive = st.free, st.at, held.times, st.arrive
    draw_service = st.service[k]
    heap, eid = schedule_of(env)
    new_id = eid.__next__
    push = push_entry  # a local: see `instances`
    record_latency = latency.record
    # The latencies answered in the loop go straight into the recorder's buffer (flushed in
    # place at the same count as `Recorder.record` flushes it: the same batches, the same sums).
    latencies, limit, flush = latency.buffer, latency.limit, latency.flush

    def called(cont: Cont) -> None:
        # The end of the work of a request whose call the lane decided: the call, made without
        # a draw (the worker is held until now in `HeldUntil`, the work counted by the lane).
        assert sure is not None
        sure(k, cont)

    def answer_to(now: float, ident: int) -> Cont:
        pending[ident] = now

        def finish(ok: bool) -> None:
            pending.pop(ident, None)
            if ok:
                counts.completed += 1
                record_latency(env._now - now)
            else:
                counts.errors += 1

        return finish

    def arrival(_: object) -> None:
        now = env._now
        went_ahead = 0
        # The counters and sums this loop adds to, kept in locals and written back when it
        # ends or calls out (`arrive`): the same additions in the same order (measured: ~5%
        # of web-shop's event path).
        arrived = zero_waits = completed = answered = 0
        busy, lane_held = st.busy, st.lane_held
        while True:
            step = gap()  # the next arrival, its time and id taken as `classes` takes them
            when = step if absolute or step == math.inf else now + step
            ident = new_id()
            counted = now >= warmup
            if counted:
                arrived += 1
            i = pick(k) if instance is None else instance
            if not free[i] and not held.reclaim(i, now):  # no free worker: the ordinary path
                st.busy, st.lane_held = busy, lane_held
                if not arrive(i, k, now, answer_to(now, ident) if counted else _ignore) and counted:
                    counts.errors += 1
                    pending.pop(ident, None)
                busy, lane_held = st.busy, st.lane_held
            else:  # the lane
                free[i] -= 1
                end = now + draw_service()
                if counted:
                    zero_waits += 1
                if end > warmup:
                    worked = (end if end < horizon else horizon) - (now if counted else warmup)
                    busy += worked
                    if blocking:  # held while it works, and only then (it makes no call)
                        lane_held += worked
                insort(times[i], end)  # held until `end`
                if warmup <= end < horizon:
                    completed += 1
                if uniform is not None and uniform() < chance:
                    answer = answer_to(now, ident) if counted else _ignore
                    push(heap, (end, _NORMAL, new_id(), called, answer))  # when it ends
                elif counted and end < horizon:  # answered now
                    answered += 1
                    latencies.append(end - now)  # `record_latency`, inlined
                    if len(latencies) >= limit:
                        flush()
                elif counted:  # its answer would come after the window's end
                    pending[ident] = now
            if when < heap[0][0]:  # nothing else is due first: as `classes`' arrival
                env._now = now = when
            elif (
                only >= 0  # nobody else reaches the tier: see the module
                and went_ahead < AHEAD
                and when < horizon
                and not at[only]
                and (free[only] > 0 or held.reclaim(only, when))
            ):
                went_ahead += 1
                now = when  # run ahead of its time: nothing here reads the clock
            else:
                break
        counts.arrivals += arrived
        st.arrivals += arrived
        st.zero_waits += zero_waits
        st.completed += completed
        counts.completed += answered
        st.busy, st.lane_held = busy, lane_held
        if when < math.inf:
            push(heap, (when, _NORMAL, ident, arrival, None))

    on_arrival = (arrival,)
    return on_arrival
