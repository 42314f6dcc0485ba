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

What it changes. The numbers a run computes are drawn from the same streams with the same
distributions, but (1) a skipped call's uniform is drawn at the request's arrival, not at the
end of its work, so the routing stream's values go to the tier's requests in arrival order
rather than end-of-work order; (2) simultaneous events can run in another order (a worker held
by the lane is free to a request arriving at exactly its end time); (3) latencies are added up
in another order. So results differ from the event-by-event way in their draws, not in their
law: `tests/test_lanes.py` runs both ways over many seeds and checks that they agree within
noise, and against queueing theory. `ENABLED = False` restores the event-by-event way (the
tests' reference).

When it runs (`lane_tier`, `entry_lane`): the class is open and reaches the tier directly (no
network delay), the time series are off, and the entry tier is the plain tier of `instances`
with nothing installed that observes a worker between the start and the end of its work: no
hook wrapped (`Station.base_hooks`: no faults, spot interruptions, autoscaling, serverless,
consumers, replica groups), no admission in front of `arrive` (pool, publishing, rate limit),
not blocking (its integral of held workers is not kept), no cold cache (its lookups are
stateful), and an instance chooser that does not count requests per instance (one instance,
`round_robin` or `random`, no health checks). Everything else, and every request of such a tier
that does not meet a free worker or that makes its call, takes the ordinary path unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any, NamedTuple

from capsim.engine.events import admission, calls
from capsim.engine.events.balancing import fixed_instance
from capsim.engine.events.clock import _NORMAL, _scheduler_at, _Timer, schedule_of
from capsim.engine.events.instances import held_is_read
from capsim.engine.events.signatures import Cont, Draw, Pick, Runner

if TYPE_CHECKING:
    from capsim.engine.events.station import Station

#: False: every request takes the event-by-event path (the reference the lane is tested against).
ENABLED = True

#: What a lane returns when it did not answer at once: the request waits or makes its call
#: (its continuation will be called), or it was refused on the spot (it never will).
PENDING = -1.0
REFUSED = -2.0

#: lane(now, make_cont) -> the time the request is answered (>= now), PENDING or REFUSED.
#: `make_cont(now)` makes the request's continuation, only when it needs one.
Lane = Callable[[float, Callable[[float], Cont]], float]


class Decision(NamedTuple):
    """A class's calls at a tier as the lane can decide them at once: none (`uniform` None), or
    one call made when `uniform() < chance`, run by `sure` (with no draw of its own)."""

    chance: float
    uniform: Draw | None
    sure: Runner | None


class HeldUntil:
    """Workers held by requests the lane answered: per instance, a heap of when each frees."""

    __slots__ = ("on_wake", "st", "times", "track_held", "waking")

    def __init__(self, st: Station) -> None:
        self.st = st
        self.track_held = held_is_read(st)  # `instances` keeps the integral of held workers
        self.times: list[list[float]] = [[] for _ in range(st.servers)]
        self.waking = [False] * st.servers  # a wake-up is on the schedule for the instance
        self.on_wake = (self._woken,)

    def reclaim(self, i: int, now: float) -> bool:
        """Free instance i's lane-held workers whose work has ended by `now`; whether i now
        has a free worker."""
        times, free = self.times[i], self.st.free
        while times and times[0] <= now:
            heappop(times)
            free[i] += 1
        return free[i] > 0

    def wake_when_free(self, i: int) -> None:
        """A request waits at instance i: release the first lane-held worker to it when its
        work ends (the event the lane did not schedule)."""
        times = self.times[i]
        if times and not self.waking[i]:
            self.waking[i] = True
            _scheduler_at(self.st.env)(times[0], self.on_wake, i)

    def _woken(self, event: _Timer) -> None:
        i = event._value
        self.waking[i] = False
        st, times = self.st, self.times[i]
        now = st.env._now
        while times and times[0] <= now:
            heappop(times)
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
    or None when it cannot (several steps, a sure call, a repeat, a one_of, a parallel group).
    """
    if not steps:
        return Decision(0.0, None, None)
    if len(steps) > 1 or type(steps[0]) is not calls.CallStep:
        return None
    step = steps[0]
    if step.repeat != 1 or step.probability >= 1.0 or runner is None:
        return None
    sure = None
    if step.target is not None:
        sure = admission.direct_runner(step.target, step.pick, 1.0, step.uniform)
    if sure is None:
        sure = calls._plain_call(step.enter, step.pick)
    return Decision(step.probability, step.uniform, sure)


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


def entry_lane(st: Station, pick: Pick, k: int) -> Lane | None:
    """Class k's lane into its entry tier `st` (requests chosen an instance by `pick`), or None
    when the tier or the class's calls there do not qualify."""
    plan = st.decisions[k] if st.decisions is not None else None
    if plan is None or not lane_tier(st, pick):
        return None
    if st.blocking and plan.uniform is not None:
        return None  # its worker would be held while the call is out: not a plain visit
    if st.held_until is None:
        st.held_until = HeldUntil(st)
    held = st.held_until
    env, warmup, horizon, blocking = st.env, st.warmup, st.horizon, st.blocking
    free, at, times, arrive = st.free, st.at, held.times, st.arrive
    draw_service = st.service[k]
    instance = fixed_instance(pick)
    chance, uniform, sure = plan
    heap, eid = schedule_of(env)
    new_id = eid.__next__

    def called(event: _Timer) -> None:
        # The end of the work of a request whose call the lane decided: as `work_done` (the
        # tier is non-blocking and unwrapped), with the call made without a draw.
        i, cont = event._value
        if env._now >= warmup:
            st.completed += 1
        st.release(i)
        assert sure is not None
        sure(k, cont)

    on_called = (called,)

    def lane(now: float, make_cont: Callable[[float], Cont]) -> float:
        if now >= warmup:
            st.arrivals += 1
        i = pick(k) if instance is None else instance
        if not free[i] and not held.reclaim(i, now):
            return PENDING if arrive(i, k, now, make_cont(now)) else REFUSED
        free[i] -= 1
        end = now + draw_service()
        if now >= warmup:
            st.zero_waits += 1
        if end > warmup:
            worked = (end if end < horizon else horizon) - (now if now > warmup else warmup)
            st.busy += worked
            if blocking:  # held while it works, and only then (it makes no call)
                st.lane_held += worked
        if uniform is not None and uniform() < chance:  # the call is made: at the end of the work
            at[i] += 1
            timer = _Timer()
            timer.callbacks = on_called
            timer._value = (i, make_cont(now))
            heappush(heap, (end, _NORMAL, new_id(), timer))
            return PENDING
        heappush(times[i], end)  # held until `end`, answered now
        if warmup <= end < horizon:
            st.completed += 1
        return end

    return lane
