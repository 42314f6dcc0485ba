"""The discrete-event path: runs any Model on SimPy's event loop, with callbacks, not processes.

A request never becomes a SimPy process. Each tier keeps its own per-instance FIFO (a deque of
waiting entries and a free-worker count), and the only events are timers on SimPy's schedule,
stepped by ``Environment.run``: an arrival, the end of a worker's own work, a publish, a think, a
queue or pool timeout. A request's path is a chain of continuations ``cont(ok)``; an error is
simply ``cont(False)`` travelling back up.

Random numbers are drawn in batches of `BATCH` per stream and handed out one at a time by a
generator, so no request makes a numpy call.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from heapq import heappush
from typing import Any

import numpy as np
import simpy

from capsim.engine import streams
from capsim.engine.arrivals import ArrivalEpochs
from capsim.engine.histogram import Histogram, Recorder
from capsim.engine.limits import waiting_limit
from capsim.engine.result import ClassRun, RunResult, TierRun
from capsim.engine.timeseries import (
    CompletionLog,
    IntervalLog,
    new_series,
)
from capsim.errors import SimulationError
from capsim.model.distributions import Distribution
from capsim.model.types import (
    Autoscale,
    Call,
    CircuitBreaker,
    Fault,
    HealthCheck,
    Model,
    OneOf,
    Parallel,
    RateLimit,
    Retry,
    Step,
    Tier,
    TrafficClass,
)

#: Draws per refill of a buffered random stream.
BATCH = 8192
#: Samples of the number waiting per tier over the window (to tell a growing queue).
TRACE_POINTS = 50
#: Progress is reported this many times over the simulated time.
PROGRESS_STEPS = 100

Cont = Callable[[bool], None]
Pick = Callable[[int], int]
Draw = Callable[[], float]
# enter(class, pick, cont) -> admitted. False: refused on the spot, `cont` is never called.
# True: `cont(ok)` is called exactly once, possibly before enter returns.
Enter = Callable[[int, Pick, Cont], bool]
# run(class, done): a tier's calls for one request, then done(ok).
Runner = Callable[[int, Cont], None]

_CALL, _ONE_OF, _PARALLEL = 0, 1, 2
_NORMAL = 1  # simpy.events.NORMAL: the priority of an ordinary timeout


class _Timer:
    """The least a SimPy event needs to be stepped by Environment.step: callbacks, _ok, _value.

    A Timeout would do, but builds a full Event and makes two more Python calls; the engine
    schedules millions of these, so they go straight onto the environment's heap instead.
    """

    __slots__ = ("_value", "callbacks")
    _ok = True
    _value: Any
    callbacks: tuple[Callable[[Any], None], ...] | None


def _scheduler(
    env: simpy.Environment,
) -> Callable[[float, tuple[Callable[[Any], None]], Any], None]:
    """later(delay, callbacks, value): run each callback with the timer after `delay`."""
    heap: list[Any] = env._queue  # holds _Timer objects too: duck-typed events
    eid = env._eid

    def later(delay: float, callbacks: tuple[Callable[[Any], None]], value: Any) -> None:
        timer = _Timer()
        timer.callbacks = callbacks
        timer._value = value
        heappush(heap, (env._now + delay, _NORMAL, next(eid), timer))

    return later


def _scheduler_at(
    env: simpy.Environment,
) -> Callable[[float, tuple[Callable[[Any], None]], Any], None]:
    """at(when, callbacks, value): like `_scheduler`'s later, at the absolute time `when`."""
    heap: list[Any] = env._queue
    eid = env._eid

    def at(when: float, callbacks: tuple[Callable[[Any], None]], value: Any) -> None:
        timer = _Timer()
        timer.callbacks = callbacks
        timer._value = value
        heappush(heap, (when, _NORMAL, next(eid), timer))

    return at


def _epoch_times(epochs: ArrivalEpochs) -> Draw:
    """The next arrival time per call, inf once the arrivals have ended."""

    def times() -> Iterator[float]:
        while True:
            block = epochs.next_block()
            if block.size == 0:
                return
            yield from block.tolist()

    following = times()
    return lambda: next(following, math.inf)


def _buffered(sample: Callable[[int], np.ndarray]) -> Draw:
    """One value per call from batches of `sample(BATCH)`."""

    def forever() -> Iterator[float]:
        while True:
            yield from sample(BATCH).tolist()

    return forever().__next__


def _distribution_draw(dist: Distribution, rng: np.random.Generator) -> Draw:
    if dist.is_constant:
        return itertools.repeat(float(dist.params[0])).__next__
    return _buffered(lambda n: dist.sample(rng, n))


def _add_zeros(histogram: Histogram, zeros: int) -> None:
    """Count `zeros` exact zeros without materialising them."""
    if zeros:
        histogram.counts[0] += zeros
        histogram.n += zeros
        histogram.min = 0.0


# ---- calls: sequences, parallel groups ------------------------------------------------------


class _Sequence:
    """Runs a tier's call steps one after another for one request; stops at the first error."""

    __slots__ = ("done", "k", "left", "position", "steps")

    def __init__(self, steps: tuple[Any, ...], k: int, done: Cont) -> None:
        self.steps = steps
        self.k = k
        self.done = done
        self.position = 0
        self.left = 0

    def resume(self, ok: bool) -> None:
        if not ok:
            self.done(False)
            return
        if self.left:
            self.left -= 1
            step = self.steps[self.position]
            if not step[1](self.k, step[2], self.resume):
                self.done(False)
            return
        self.position += 1
        self.advance()

    def advance(self) -> None:
        steps = self.steps
        j = self.position
        k = self.k
        while j < len(steps):
            step = steps[j]
            kind = step[0]
            if kind == _CALL:
                # (kind, enter, pick, probability, repeat, uniform)
                if step[3] < 1.0 and step[5]() >= step[3]:
                    j += 1
                    continue
                self.position = j
                self.left = step[4] - 1
                if not step[1](k, step[2], self.resume):
                    self.done(False)
                return
            if kind == _ONE_OF:
                # (kind, cumulative probabilities, ((enter, pick), ...), uniform)
                x = step[3]()
                for bound, (enter, pick) in zip(step[1], step[2], strict=True):
                    if x < bound:
                        self.position = j
                        self.left = 0
                        if not enter(k, pick, self.resume):
                            self.done(False)
                        return
                j += 1
                continue
            # (kind, branches): every branch at once, one join.
            self.position = j
            self.left = 0
            branches = step[1]
            join = _Join(len(branches), self.resume)
            for branch in branches:
                _Sequence((branch,), k, join.branch_done).advance()
            return
        self.done(True)


class _Join:
    """Waits for every branch of a parallel group; fails if any branch failed."""

    __slots__ = ("done", "left", "ok")

    def __init__(self, count: int, done: Cont) -> None:
        self.left = count
        self.ok = True
        self.done = done

    def branch_done(self, ok: bool) -> None:
        if not ok:
            self.ok = False
        self.left -= 1
        if self.left == 0:
            self.done(self.ok)


# ---- arrivals with a rate profile -----------------------------------------------------------


class _RateProfile:
    """Inverts the integrated piecewise-linear rate: the time at which Lambda(t) reaches a target.

    Used as a time change: unit-rate arrival epochs (Exp(1) gaps, or 1 for constant arrivals)
    mapped through Lambda^-1 give a non-homogeneous process with the profile's rate.
    """

    def __init__(self, traffic: TrafficClass) -> None:
        points = traffic.profile
        segments: list[tuple[float, float, float, float]] = []
        if points[0].at > 0:
            segments.append((0.0, points[0].at, points[0].rate, points[0].rate))
        for a, b in itertools.pairwise(points):
            if b.at > a.at:
                segments.append((a.at, b.at, a.rate, b.rate))
        segments.append((max(points[-1].at, 0.0), math.inf, points[-1].rate, points[-1].rate))
        self.segments = segments
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


# ---- the simulation -------------------------------------------------------------------------


class _Window:
    """The measurement window, the time buckets (if any) and the RNG tree address of a run."""

    def __init__(self, model: Model, replication: int) -> None:
        self.warmup = model.simulation.warmup
        self.horizon = model.horizon
        self.seed = model.seed
        self.replication = replication
        self.series = new_series(model)
        self.faults = model.faults

    def tier_rng(self, tier: int, role: int) -> np.random.Generator:
        return streams.tier_stream(self.seed, self.replication, tier, role)

    def class_rng(self, k: int, role: int) -> np.random.Generator:
        return streams.class_stream(self.seed, self.replication, k, role)


class _TierSim:
    """One tier's runtime: instances, balancing, pool, and its figures over the window."""

    def __init__(self, env: simpy.Environment, tier: Tier, window: _Window, classes: int) -> None:
        self.tier = tier
        self.env = env
        self.runners: list[Runner | None] = [None] * classes
        self.retries = 0  # retry attempts that reached this tier in the window
        self.call_timeouts = 0  # attempts to this tier that their callers gave up on
        self.rate_limited = 0  # refused by the tier's rate limit
        self.dropped = 0  # dropped from the queue because the caller had given up
        self.short_circuited = 0  # calls to this tier an open circuit breaker failed at once
        self.bulkhead_rejected = 0  # calls to this tier refused by a caller's bulkhead
        self.redeliveries = 0  # queue: failed messages put back for another try
        self.dead_letters = 0  # queue: messages that failed their last try
        self.hedged_calls = 0  # attempts to this tier made by a call with a hedge
        self.hedges = 0  # hedge copies sent to this tier
        self.hedge_wins = 0  # hedged attempts a hedge copy answered first
        self.hedges_cancelled = 0  # losing copies withdrawn from a queue before any work
        self.hedges_abandoned = 0  # losing copies a worker had: their work went on
        # This tier as a caller: (callee, quantile) -> the callee's response times it has seen.
        self.response_times: dict[tuple[int, float], _ResponseTimes] = {}
        self._retry_draw: Draw | None = None
        self.bulkheads: dict[int, list[int]] = {}  # callee -> calls in flight to it
        self._pick_cache: dict[str, Pick] = {}
        self._window = window
        self._balancing_draw: Draw | None = None
        self.routing_draw = _buffered(window.tier_rng(tier.index, streams.ROUTING).random)
        self.cold_starts = [0]  # serverless: instances started for a request, in the window
        self.cache_lookups = self.cache_hits = 0  # cold cache, in the window
        self.cache_series: tuple[list[int], list[int]] | None = None  # lookups, hits per bucket
        self.record = self._build(env, tier, window)

    # -- balancing ---------------------------------------------------------------------------
    def pick(self, algorithm: str | None) -> Pick:
        """The instance chooser for requests balanced by `algorithm` (None: the tier's own)."""
        name = algorithm or self.tier.balancing
        cached = self._pick_cache.get(name)
        if cached is None:
            cached = self._pick_cache[name] = self._make_pick(name)
        return cached

    def _health_checks(self, env: simpy.Environment, check: HealthCheck, horizon: float) -> None:
        """Every `interval`, each instance passes (alive) or fails; balancing follows the counts."""
        routable = self.routable
        alive = self.alive
        assert routable is not None
        failures = [0] * len(alive)
        passes = [0] * len(alive)

        def probe(event: simpy.Event) -> None:
            for i, up in enumerate(alive):
                if up:
                    failures[i] = 0
                    passes[i] += 1
                    if not routable[i] and passes[i] >= check.healthy_after:
                        routable[i] = True
                else:
                    passes[i] = 0
                    failures[i] += 1
                    if routable[i] and failures[i] >= check.unhealthy_after:
                        routable[i] = False
            if env._now + check.interval < horizon:
                env.timeout(check.interval).callbacks.append(probe)

        env.timeout(check.interval).callbacks.append(probe)

    def _rate_limited(self, enter: Enter, limit: RateLimit, warmup: float) -> Enter:
        """A token bucket in front of the tier: `rate` tokens a second, at most `burst` banked."""
        env = self.env
        bucket = [float(limit.burst), 0.0]  # tokens, when last filled

        def limited(k: int, pick: Pick, cont: Cont) -> bool:
            now = env._now
            tokens = min(float(limit.burst), bucket[0] + limit.rate * (now - bucket[1]))
            bucket[1] = now
            if tokens >= 1.0 - 1e-9:  # a whole token, give or take the clock's rounding
                bucket[0] = max(tokens - 1.0, 0.0)
                return enter(k, pick, cont)
            bucket[0] = tokens
            if now >= warmup:
                self.rate_limited += 1
            return False

        return limited

    def cold_cache(self) -> Draw:
        """A cold LRU's lookup per request: 1.0 on a hit, 0.0 on a miss (then the key is stored).

        Keys are Zipf ranks drawn by inverting a table of the cumulative popularity.
        """
        cache = self.tier.cold_lru
        assert cache is not None
        weights = np.arange(1, cache.keys + 1, dtype=float) ** -cache.zipf
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        rng = self._window.tier_rng(self.tier.index, streams.CACHE_KEYS)
        key = _buffered(lambda n: np.searchsorted(cdf, rng.random(n), side="right"))
        # One LRU per edge location (a cdn's `edges`); requests reach them in turn.
        caches: list[OrderedDict[float, None]] = [OrderedDict() for _ in range(self.tier.edges)]
        turn = itertools.cycle(caches).__next__
        capacity = cache.capacity
        env = self.env
        window = self._window
        warmup = window.warmup
        series = window.series
        inverse = 1.0 / series.bucket if series is not None else 0.0
        last = series.edges.size - 2 if series is not None else 0
        per_bucket = ([0] * (last + 1), [0] * (last + 1))
        if series is not None:
            self.cache_series = per_bucket
        lookups, hits = per_bucket

        def lookup() -> float:
            k = key()
            now = env._now
            lru = turn()
            hit = k in lru
            if hit:
                lru.move_to_end(k)
            else:
                lru[k] = None
                if len(lru) > capacity:
                    lru.popitem(last=False)
            if now >= warmup:
                self.cache_lookups += 1
                self.cache_hits += hit
            if series is not None:
                b = min(int(now * inverse), last)
                lookups[b] += 1
                hits[b] += hit
            return 1.0 if hit else 0.0

        return lookup

    def retry_uniform(self) -> Draw:
        """Uniforms for the jitter of this tier's retries (its own stream)."""
        if self._retry_draw is None:
            rng = self._window.tier_rng(self.tier.index, streams.RETRY)
            self._retry_draw = _buffered(rng.random)
        return self._retry_draw

    def _uniform(self) -> Draw:
        if self._balancing_draw is None:
            rng = self._window.tier_rng(self.tier.index, streams.BALANCING)
            self._balancing_draw = _buffered(rng.random)
        return self._balancing_draw

    def _choose(self, algorithm: str, low: int, high: int) -> Pick:
        """A chooser among instances low..high-1; it takes (and ignores) the class index."""
        if self.routable is not None:
            return self._choose_routable(algorithm, low, high)
        count = high - low
        if count == 1:
            return lambda k: low
        at = self.at
        if algorithm == "random":
            u = self._uniform()
            return lambda k: low + int(u() * count)
        if algorithm == "least_connections":
            if low == 0 and high == len(at):
                return lambda k: at.index(min(at))

            def least(k: int) -> int:
                part = at[low:high]
                return low + part.index(min(part))

            return least
        if algorithm == "power_of_two":
            u = self._uniform()

            def two(k: int) -> int:
                a = int(u() * count)
                b = int(u() * (count - 1))
                if b >= a:
                    b += 1
                return low + b if at[low + b] < at[low + a] else low + a

            return two
        turn = itertools.count()
        return lambda k: low + next(turn) % count

    def _choose_routable(self, algorithm: str, low: int, high: int) -> Pick:
        """`_choose` for a tier whose instances can die: only instances balancing sees as healthy
        (all of them, dead ones included, when none is)."""
        routable = self.routable
        assert routable is not None
        at = self.at
        members = range(low, high)
        turn = itertools.count()
        u = self._uniform() if algorithm in ("random", "power_of_two") else None

        def healthy() -> list[int]:
            chosen = [i for i in members if routable[i]]
            return chosen or list(members)

        if algorithm == "round_robin":

            def next_healthy(k: int) -> int:
                for _ in members:
                    i = low + next(turn) % len(members)
                    if routable[i]:
                        return i
                return low + next(turn) % len(members)

            return next_healthy
        if algorithm == "least_connections":
            return lambda k: min(healthy(), key=at.__getitem__)
        assert u is not None
        if algorithm == "random":

            def any_healthy(k: int) -> int:
                chosen = healthy()
                return chosen[int(u() * len(chosen))]

            return any_healthy

        def two_healthy(k: int) -> int:
            chosen = healthy()
            if len(chosen) == 1:
                return chosen[0]
            a = int(u() * len(chosen))
            b = int(u() * (len(chosen) - 1))
            if b >= a:
                b += 1
            return chosen[b] if at[chosen[b]] < at[chosen[a]] else chosen[a]

        return two_healthy

    def _make_pick(self, algorithm: str) -> Pick:
        tier = self.tier
        primaries = self._choose(algorithm, 0, self.primary_slots)
        if tier.kind != "database" or tier.replicas == 0:
            return primaries
        replicas = self._choose(algorithm, tier.instances, tier.servers)
        read_ratio = [work.read_ratio for work in tier.work]
        u = self.routing_draw

        def route(k: int) -> int:
            r = read_ratio[k]
            if r >= 1.0 or (r > 0.0 and u() < r):
                return replicas(k)
            return primaries(k)

        return route

    # -- the tier's event logic ------------------------------------------------------------------
    def _build(self, env: simpy.Environment, tier: Tier, window: _Window) -> Callable[[], TierRun]:
        warmup, horizon = window.warmup, window.horizon
        servers = tier.servers
        if tier.autoscale is not None:  # a slot for every instance it may grow to
            servers = max(servers, tier.autoscale.max)
        self.primary_slots = servers - tier.replicas
        free = [tier.concurrency] * servers
        waiting: list[Any] = [deque() for _ in range(servers)]
        if tier.priorities:
            waiting = [_PriorityQueue(tier.priorities) for _ in range(servers)]
        live = [0] * servers  # waiting entries not yet dropped, per instance
        self.at = at = [0] * servers  # requests at the instance: waiting + in service + blocked
        blocking = tier.blocking
        max_queue = tier.max_queue
        queue_timeout = tier.timeout
        service_rng = window.tier_rng(tier.index, streams.SERVICE)
        draws: dict[int, Draw] = {}
        service: list[Draw] = []
        for work in tier.work:
            key = id(work.service_time)
            if key not in draws:
                draws[key] = _distribution_draw(work.service_time, service_rng)
            service.append(draws[key])
        faults = [f for f in window.faults if f.tier == tier.index]
        slow = [1.0]  # the product of the active slowdowns
        if any(f.slowdown != 1.0 for f in faults):
            service = [_slowed_draw(draw, slow) for draw in service]
        series = window.series.tiers[tier.index] if window.series is not None else None
        busy_log: IntervalLog | None = None
        if series is not None and window.series is not None:
            # Every service time is drawn at the moment its work starts: log it there, so the
            # fast path stays free of bookkeeping when no time series is asked for.
            busy_log = IntervalLog(series.busy_time, window.series.edges)
            service = [_logged_draw(draw, env, busy_log) for draw in service]

        later = _scheduler(env)
        heap: list[Any] = env._queue  # holds _Timer objects too: duck-typed events
        eid = env._eid
        runners = self.runners
        arrivals = completed = rejected = timed_out = 0
        overflow = 0  # turned away at the internal bound on waiting requests
        overflow_limit = waiting_limit(tier)
        busy = 0.0
        zero_waits = 0
        wait_recorder = Recorder()
        record_wait = wait_recorder.record
        # Time integrals of the number waiting and the number of held workers.
        waiting_now = queue_max = 0
        queue_area = 0.0
        queue_since = 0.0
        held = 0
        held_area = 0.0
        held_since = 0.0

        def start(i: int, k: int, arrived: float, now: float, cont: Cont) -> None:
            # A worker of instance i starts on a request that waited since `arrived`.
            nonlocal busy, zero_waits
            if now >= warmup:
                if now > arrived:
                    record_wait(now - arrived)
                else:
                    zero_waits += 1
            s = service[k]()
            end = now + s
            if end > warmup:
                busy += (end if end < horizon else horizon) - (now if now > warmup else warmup)
            timer = _Timer()
            timer.callbacks = on_work_done
            timer._value = (i, k, cont)
            heappush(heap, (end, _NORMAL, next(eid), timer))

        def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
            nonlocal rejected, waiting_now, queue_area, queue_since, queue_max, overflow
            nonlocal held, held_area, held_since, busy, zero_waits
            if free[i]:
                free[i] -= 1
                at[i] += 1
                held_area += held * (now - held_since)
                held_since = now
                held += 1
                # start(), inlined: this is the path most requests take.
                s = service[k]()
                end = now + s
                if now >= warmup:
                    zero_waits += 1
                if end > warmup:
                    busy += (end if end < horizon else horizon) - (now if now > warmup else warmup)
                timer = _Timer()
                timer.callbacks = on_work_done
                timer._value = (i, k, cont)
                heappush(heap, (end, _NORMAL, next(eid), timer))
                return True
            if max_queue is not None and live[i] >= max_queue:
                if now >= warmup:
                    rejected += 1
                return False
            if waiting_now >= overflow_limit:
                # Hopelessly overloaded: bound the backlog (and the memory) instead of the RAM.
                if now >= warmup:
                    rejected += 1
                    overflow += 1
                return False
            at[i] += 1
            entry = [now, k, cont, True, i]
            waiting[i].append(entry)
            live[i] += 1
            if type(cont) is _HedgeCopy:
                cont.queued(entry, withdraw)  # so that a faster copy can withdraw it
            queue_area += waiting_now * (now - queue_since)
            queue_since = now
            waiting_now += 1
            if waiting_now > queue_max:
                queue_max = waiting_now
            if queue_timeout is not None:
                later(queue_timeout, on_drop, entry)
            return True

        def release(i: int) -> None:
            nonlocal waiting_now, queue_area, queue_since, held, held_area, held_since
            at[i] -= 1
            queue = waiting[i]
            now = env._now
            while queue:
                entry = queue.popleft() if fifo else queue.pop()
                if entry[3]:
                    entry[3] = False
                    live[i] -= 1
                    queue_area += waiting_now * (now - queue_since)
                    queue_since = now
                    waiting_now -= 1
                    if drop_abandoned and _given_up(entry[2]):
                        drop_given_up(i, now)  # its caller gave up while it waited
                        continue
                    start(i, entry[1], entry[0], now, entry[2])
                    return
            free[i] += 1
            held_area += held * (now - held_since)
            held_since = now
            held -= 1

        fifo = tier.queue_discipline == "fifo"
        drop_abandoned = tier.drop_abandoned

        def drop_given_up(i: int, now: float) -> None:
            nonlocal rejected
            at[i] -= 1
            if now >= warmup:
                rejected += 1
                self.dropped += 1

        def withdraw(entry: list[Any]) -> bool:
            # A hedge's losing copy leaves the queue unserved (not an error); False if it started.
            nonlocal waiting_now, queue_area, queue_since
            if not entry[3]:
                return False
            entry[3] = False
            i = entry[4]
            live[i] -= 1
            at[i] -= 1
            now = env._now
            queue_area += waiting_now * (now - queue_since)
            queue_since = now
            waiting_now -= 1
            return True

        def drop(event: _Timer) -> None:
            nonlocal waiting_now, queue_area, queue_since, rejected, timed_out
            entry = event._value
            if not entry[3]:
                return
            entry[3] = False
            i = entry[4]
            live[i] -= 1
            at[i] -= 1
            now = env._now
            queue_area += waiting_now * (now - queue_since)
            queue_since = now
            waiting_now -= 1
            if now >= warmup:
                rejected += 1
                timed_out += 1
            entry[2](False)

        def work_done(event: _Timer) -> None:
            nonlocal completed
            i, k, cont = event._value
            if env._now >= warmup:
                completed += 1
            run_calls = runners[k]
            if run_calls is None:
                release(i)
                cont(True)
            elif blocking:

                def calls_done(ok: bool) -> None:
                    release(i)
                    cont(ok)

                run_calls(k, calls_done)
            else:
                release(i)
                run_calls(k, cont)

        on_work_done = (work_done,)
        on_drop = (drop,)

        # ---- faults: instances that die and come back, error answers, slowdowns ----
        alive = [True] * servers
        down = [0] * servers  # active faults that hold each server down
        epoch = [0] * servers  # bumped at each death: work started before it is void
        live_servers = [servers, 0.0, 0.0]  # count, its integral from t = 0, since
        cancelled = IntervalLog(np.zeros(0), np.zeros(1))
        if series is not None and window.series is not None:
            cancelled = IntervalLog(np.zeros(series.busy_time.size), window.series.edges)
        self.alive = alive
        self.routable: list[bool] | None = None  # balancing's view, when instances can die
        error_now = [0.0]

        def count_live(change: int) -> None:
            now = env._now
            live_servers[1] += live_servers[0] * (now - live_servers[2])
            live_servers[2] = now
            live_servers[0] += change

        def kill(i: int) -> None:
            # The instance dies with everything in it: its queue and its work in progress fail now.
            nonlocal waiting_now, queue_area, queue_since, held, held_area, held_since
            nonlocal busy, rejected
            now = env._now
            alive[i] = False
            epoch[i] += 1
            count_live(-1)
            failed: list[Cont] = []
            queue = waiting[i]
            while queue:
                entry = queue.popleft()
                if entry[3]:
                    entry[3] = False
                    live[i] -= 1
                    queue_area += waiting_now * (now - queue_since)
                    queue_since = now
                    waiting_now -= 1
                    failed.append(entry[2])
            for item in heap:
                timer = item[3]
                if type(timer) is _Timer and timer.callbacks is on_work_done:
                    if timer._value[0] != i:
                        continue
                    timer.callbacks = ()
                    end = item[0]
                    unworked = min(end, horizon) - max(now, warmup)
                    if unworked > 0:
                        busy -= unworked
                    if end > now:
                        cancelled.record(now, end - now)
                    failed.append(timer._value[2])
            held_area += held * (now - held_since)
            held_since = now
            held -= tier.concurrency - free[i]
            free[i] = 0
            at[i] = 0
            if self.routable is not None and tier.health_check is None:
                self.routable[i] = False
            if now >= warmup:
                rejected += len(failed)
            for cont in failed:
                cont(False)

        def revive(i: int) -> None:
            alive[i] = True
            free[i] = tier.concurrency
            count_live(+1)
            if self.routable is not None and tier.health_check is None:
                self.routable[i] = True

        if faults:
            self.routable = [True] * servers
            fault_draw = _buffered(window.tier_rng(tier.index, streams.FAULT).random)
            active: list[Fault] = []
            checked = arrive

            def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
                # A dead instance refuses at once (connection refused).
                nonlocal rejected
                if alive[i]:
                    return checked(i, k, now, cont)
                if now >= warmup:
                    rejected += 1
                return False

            def faulty_work_done(event: _Timer) -> None:
                nonlocal rejected, completed
                i, k, cont = event._value
                p = error_now[0]
                if p > 0.0 and fault_draw() < p:
                    if env._now >= warmup:
                        rejected += 1
                    release(i)
                    cont(False)
                    return
                run_calls = runners[k]
                if not blocking or run_calls is None:
                    work_done(event)
                    return
                if env._now >= warmup:
                    completed += 1
                started = epoch[i]

                def calls_done(ok: bool) -> None:
                    if epoch[i] == started:
                        release(i)
                        cont(ok)
                    else:
                        cont(False)  # the instance died while its calls were out

                run_calls(k, calls_done)

            on_work_done = (faulty_work_done,)

            def recompute() -> None:
                error_now[0] = 1.0 - math.prod(1.0 - f.error_rate for f in active)
                slow[0] = math.prod(f.slowdown for f in active)

            def begin(fault: Fault) -> None:
                active.append(fault)
                recompute()
                for i in fault.lose:
                    down[i] += 1
                    if down[i] == 1:
                        kill(i)

            def end(fault: Fault) -> None:
                active.remove(fault)
                recompute()
                for i in fault.lose:
                    down[i] -= 1
                    if down[i] == 0:
                        revive(i)

            for fault in faults:

                def on_begin(_: simpy.Event, fault: Fault = fault) -> None:
                    begin(fault)

                def on_end(_: simpy.Event, fault: Fault = fault) -> None:
                    end(fault)

                env.timeout(fault.at).callbacks.append(on_begin)
                if fault.until is not None and fault.until < horizon:
                    env.timeout(fault.until).callbacks.append(on_end)
            if tier.health_check is not None:
                self._health_checks(env, tier.health_check, horizon)

        # ---- autoscaling: the Kubernetes HPA's rule, every sync period ----
        self.scaling: list[tuple[float, int, int]] = []  # (time, from, to) of each change
        scaler = tier.autoscale
        if scaler is not None and not scaler.scale_to_zero:
            if self.routable is None:
                self.routable = [True] * servers
            routable = self.routable
            initial = min(max(tier.instances, scaler.min), scaler.max)
            state = [_READY if i < initial else _OFF for i in range(servers)]
            for i in range(initial, servers):
                alive[i] = False
                free[i] = 0
                routable[i] = False
            live_servers[0] = initial
            drawn = [0.0]  # service time drawn so far: work started, finished or not
            service = [_counted_draw(draw, drawn) for draw in service]
            offered = [0]
            admit = arrive

            def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
                nonlocal rejected
                offered[0] += 1
                if alive[i]:
                    return admit(i, k, now, cont)
                if now >= warmup:
                    rejected += 1
                return False

            free_worker = release

            def release(i: int) -> None:
                free_worker(i)
                if state[i] == _DRAINING and at[i] == 0:
                    switch_off(i)

            def switch_off(i: int) -> None:
                state[i] = _OFF
                alive[i] = False
                routable[i] = False
                free[i] = 0
                count_live(-1)

            def ready(event: simpy.Event) -> None:
                i, started = event.value  # type: ignore[misc]
                if state[i] == _STARTING and epoch[i] == started:
                    state[i] = _READY
                    routable[i] = True

            def add(count: int) -> None:
                for i in range(servers):
                    if count == 0:
                        return
                    if state[i] == _OFF:
                        count -= 1
                        state[i] = _STARTING
                        alive[i] = True
                        free[i] = tier.concurrency
                        epoch[i] += 1
                        count_live(+1)
                        env.timeout(scaler.startup_time, (i, epoch[i])).callbacks.append(ready)

            def remove(count: int) -> None:
                # Instances still starting go first (newest first), then ready ones (last first).
                for wanted in (_STARTING, _READY):
                    for i in reversed(range(servers)):
                        if count and state[i] == wanted:
                            count -= 1
                            routable[i] = False
                            if wanted == _STARTING or at[i] == 0:
                                switch_off(i)
                            else:
                                state[i] = _DRAINING

            def busy_until(now: float) -> float:
                # Work drawn so far, less what is still ahead of the work in progress.
                ahead = sum(
                    item[0] - now
                    for item in heap
                    if type(item[3]) is _Timer
                    and item[3].callbacks is on_work_done
                    and item[0] > now
                )
                return drawn[0] - ahead

            def measure(now: float) -> float:
                # The metric's total over ready instances for the period ending now.
                queue, held_total, _ = integrals(now)
                figures = (busy_until(now), held_total, queue, float(offered[0]))
                previous, last[0] = last[0], figures
                period = scaler.sync_period
                busy_delta, held_delta, queue_delta, offered_delta = (
                    a - b for a, b in zip(figures, previous, strict=True)
                )
                if scaler.metric == "utilization":
                    return busy_delta / (tier.concurrency * period)
                if scaler.metric == "occupancy":
                    return held_delta / (tier.concurrency * period)
                if scaler.metric == "queue_length":
                    return queue_delta / period
                return offered_delta / period

            last = [(0.0, 0.0, 0.0, 0.0)]
            # The recommendations of the stabilization windows, as monotone queues: the lowest
            # of the scale-up window and the highest of the scale-down window are at the front,
            # so a sync costs the same whatever the window holds (a sync every millisecond
            # over a 300 s window would otherwise scan 300,000 recommendations).
            lowest: deque[tuple[float, int]] = deque()
            highest: deque[tuple[float, int]] = deque()

            def sync(event: simpy.Event) -> None:
                now = env._now
                total = measure(now)
                ready_count = sum(1 for i in range(servers) if state[i] == _READY and alive[i])
                starting = sum(1 for s in state if s == _STARTING)
                current = ready_count + starting
                wanted = _hpa_recommendation(scaler, total, ready_count, starting, current)
                wanted = min(max(wanted, scaler.min), scaler.max)
                while lowest and lowest[-1][1] >= wanted:
                    lowest.pop()
                lowest.append((now, wanted))
                while lowest[0][0] < now - scaler.scale_up_stabilization:
                    lowest.popleft()
                while highest and highest[-1][1] <= wanted:
                    highest.pop()
                highest.append((now, wanted))
                while highest[0][0] < now - scaler.scale_down_stabilization:
                    highest.popleft()
                up, down = lowest[0][1], highest[0][1]
                result = current
                # No change at all while cooling down from the last one.
                cooling = bool(self.scaling) and now - self.scaling[-1][0] < scaler.cooldown
                if cooling:
                    result = current
                elif up > current:
                    limit = max(
                        math.ceil(current * (1.0 + scaler.max_scale_up)),
                        current + scaler.max_scale_up_instances,
                    )
                    result = min(up, limit)
                elif down < current:
                    result = down
                if result > current:
                    add(result - current)
                elif result < current:
                    remove(current - result)
                if result != current:
                    self.scaling.append((now, current, result))
                if now + scaler.sync_period < horizon:
                    env.timeout(scaler.sync_period).callbacks.append(sync)

            env.timeout(scaler.sync_period).callbacks.append(sync)

        # ---- serverless: an instance starts per request that finds no free worker ----
        if scaler is not None and scaler.scale_to_zero:
            concurrency = tier.concurrency
            initial = scaler.initial if scaler.initial is not None else tier.instances
            state = [_READY if i < initial else _OFF for i in range(servers)]
            for i in range(initial, servers):
                alive[i] = False
                free[i] = 0
            live_servers[0] = initial
            running = [initial]  # instances starting or ready
            claimed = [0] * servers  # slots of a starting instance promised to waiting requests
            pending: list[list[list[Any]]] = [[] for _ in range(servers)]
            idle_mark = [0] * servers  # bumped whenever an instance becomes idle or busy
            buffer: deque[list[Any]] = deque()  # the activator's: requests no slot could take
            cold_start, keep_warm = scaler.cold_start, scaler.keep_warm
            cold_starts = [0]
            self.cold_starts = cold_starts

            def take(i: int, entry: list[Any], now: float) -> None:
                # A waiting request [arrived, class, cont, live] takes a worker of instance i.
                nonlocal waiting_now, queue_area, queue_since, held, held_area, held_since
                entry[3] = False
                queue_area += waiting_now * (now - queue_since)
                queue_since = now
                waiting_now -= 1
                free[i] -= 1
                at[i] += 1
                idle_mark[i] += 1
                held_area += held * (now - held_since)
                held_since = now
                held += 1
                start(i, entry[1], entry[0], now, entry[2])

            def warmed(event: _Timer) -> None:
                i = event._value
                state[i] = _READY
                claimed[i] = 0
                now = env._now
                for entry in pending[i]:
                    if entry[3]:  # not given up on while the instance started
                        take(i, entry, now)
                pending[i] = []
                while free[i] and buffer:
                    entry = buffer.popleft()
                    if entry[3]:
                        take(i, entry, now)
                settle(i, now)

            on_warmed = (warmed,)

            def serverless_arrive(i: int, k: int, now: float, cont: Cont) -> bool:
                nonlocal waiting_now, queue_area, queue_since, queue_max, rejected, overflow
                nonlocal held, held_area, held_since
                for j in range(servers):
                    if state[j] == _READY and free[j]:
                        # A warm worker: start at once (the common path of start()).
                        free[j] -= 1
                        at[j] += 1
                        idle_mark[j] += 1
                        held_area += held * (now - held_since)
                        held_since = now
                        held += 1
                        start(j, k, now, now, cont)
                        return True
                entry = [now, k, cont, True]
                target = -1
                for j in range(servers):
                    if state[j] == _STARTING and claimed[j] < concurrency:
                        target = j
                        break
                if target < 0 and running[0] < servers:
                    target = state.index(_OFF)
                    state[target] = _STARTING
                    alive[target] = True
                    free[target] = concurrency
                    running[0] += 1
                    count_live(+1)
                    if now >= warmup:
                        cold_starts[0] += 1
                    later(cold_start, on_warmed, target)
                if target < 0:
                    if max_queue is not None and len(buffer) >= max_queue:
                        if now >= warmup:
                            rejected += 1
                        return False
                    if waiting_now >= overflow_limit:
                        if now >= warmup:
                            rejected += 1
                            overflow += 1
                        return False
                    buffer.append(entry)
                else:
                    claimed[target] += 1
                    pending[target].append(entry)
                queue_area += waiting_now * (now - queue_since)
                queue_since = now
                waiting_now += 1
                if waiting_now > queue_max:
                    queue_max = waiting_now
                if queue_timeout is not None:
                    later(queue_timeout, on_give_up, entry)
                return True

            def give_up(event: _Timer) -> None:
                nonlocal waiting_now, queue_area, queue_since, rejected, timed_out
                entry = event._value
                if not entry[3]:
                    return
                entry[3] = False
                now = env._now
                queue_area += waiting_now * (now - queue_since)
                queue_since = now
                waiting_now -= 1
                if now >= warmup:
                    rejected += 1
                    timed_out += 1
                entry[2](False)

            on_give_up = (give_up,)

            def serverless_release(i: int) -> None:
                nonlocal held, held_area, held_since
                now = env._now
                at[i] -= 1
                while buffer:
                    entry = buffer.popleft()
                    if entry[3]:
                        # The freed worker goes straight to the longest-buffered request.
                        held_area += held * (now - held_since)
                        held_since = now
                        held -= 1
                        free[i] += 1
                        take(i, entry, now)
                        return
                free[i] += 1
                held_area += held * (now - held_since)
                held_since = now
                held -= 1
                settle(i, now)

            def settle(i: int, now: float) -> None:
                # An instance with every worker free starts its keep-warm clock.
                if free[i] == concurrency and state[i] == _READY:
                    idle_mark[i] += 1
                    later(keep_warm, on_idle_long, (i, idle_mark[i]))

            def idle_long(event: _Timer) -> None:
                i, mark = event._value
                if state[i] == _READY and idle_mark[i] == mark and running[0] > scaler.min:
                    state[i] = _OFF
                    alive[i] = False
                    free[i] = 0
                    running[0] -= 1
                    count_live(-1)

            on_idle_long = (idle_long,)
            for i in range(initial):
                settle(i, 0.0)
            arrive = serverless_arrive
            release = serverless_release

        # ---- a queue's consumers: in batches, and at most one per partition at a time ----
        if tier.is_async and (tier.batch_size > 1 or tier.partitions is not None):
            size, linger = tier.batch_size, tier.batch_linger
            exclusive = tier.partitions is not None
            # Partitions are made when a message first lands in one and forgotten when empty, so
            # `partitions: 10000000` costs what its messages cost, not ten million queues.
            partition_count = tier.partitions or 1
            parts: dict[int, deque[list[Any]]] = {}
            part_live: dict[int, int] = {}  # messages still waiting per partition
            consuming: set[int] = set()  # partitions a consumer holds (exclusive only)
            idle = [tier.concurrency]  # free consumers
            turn = itertools.count()
            error_draw = (
                _buffered(window.tier_rng(tier.index, streams.FAULT).random) if faults else None
            )

            def head(p: int) -> list[Any] | None:
                queue = parts.get(p)
                if queue is None:
                    return None
                while queue and not queue[0][3]:
                    queue.popleft()  # given up on (timeout) while it waited
                if queue:
                    return queue[0]
                if p not in consuming:
                    del parts[p]
                    part_live.pop(p, None)
                return None

            def dispatch(event: Any = None) -> None:
                # Free consumers take the ready batch whose first message is oldest, until none.
                now = env._now
                while idle[0]:
                    best = -1
                    oldest = math.inf
                    # Ties between equally old batches go to the lowest partition.
                    for p in list(parts):
                        if p in consuming:
                            continue
                        first = head(p)
                        if first is None or first[0] > oldest or (first[0] == oldest and p > best):
                            continue
                        if part_live[p] >= size or now >= first[0] + linger - 1e-12:
                            best, oldest = p, first[0]
                    if best < 0:
                        return
                    consume(best, now)

            on_linger = (dispatch,)

            def consume(p: int, now: float) -> None:
                nonlocal waiting_now, queue_area, queue_since, held, held_area, held_since
                nonlocal busy, zero_waits
                queue = parts[p]
                batch: list[list[Any]] = []
                while queue and len(batch) < size:
                    entry = queue.popleft()
                    if entry[3]:
                        entry[3] = False
                        batch.append(entry)
                taken = len(batch)
                part_live[p] -= taken
                queue_area += waiting_now * (now - queue_since)
                queue_since = now
                waiting_now -= taken
                held_area += held * (now - held_since)
                held_since = now
                held += 1
                idle[0] -= 1
                if exclusive:
                    consuming.add(p)
                if now >= warmup:
                    for entry in batch:
                        if now > entry[0]:
                            record_wait(now - entry[0])
                        else:
                            zero_waits += 1
                k = batch[0][1]
                s = service[k]()  # per batch
                end = now + s
                if end > warmup:
                    busy += (end if end < horizon else horizon) - (now if now > warmup else warmup)
                later(s, on_batch_done, (p, batch))
                first = head(p)
                if first is not None and first[0] + linger > now:
                    later(first[0] + linger - now, on_linger, None)

            def batch_done(event: _Timer) -> None:
                nonlocal completed, rejected
                p, batch = event._value
                now = env._now
                k = batch[0][1]
                if error_draw is not None and error_now[0] > 0.0 and error_draw() < error_now[0]:
                    if now >= warmup:
                        rejected += len(batch)
                    finish(p, batch, False)
                    return
                if now >= warmup:
                    completed += len(batch)
                run_calls = runners[k]
                if run_calls is None:
                    finish(p, batch, True)
                elif blocking:
                    run_calls(k, lambda ok: finish(p, batch, ok))
                else:
                    finish(p, batch, True)  # the consumer's calls go on without it
                    run_calls(k, _ignore)

            on_batch_done = (batch_done,)

            def finish(p: int, batch: list[list[Any]], ok: bool) -> None:
                nonlocal held, held_area, held_since
                now = env._now
                held_area += held * (now - held_since)
                held_since = now
                held -= 1
                idle[0] += 1
                consuming.discard(p)
                for entry in batch:
                    entry[2](ok)
                dispatch()

            def give_up(event: _Timer) -> None:
                nonlocal waiting_now, queue_area, queue_since, rejected, timed_out
                entry = event._value
                if not entry[3]:
                    return
                entry[3] = False
                part_live[entry[4]] -= 1
                now = env._now
                queue_area += waiting_now * (now - queue_since)
                queue_since = now
                waiting_now -= 1
                if now >= warmup:
                    rejected += 1
                    timed_out += 1
                entry[2](False)

            on_give_up = (give_up,)

            def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
                nonlocal waiting_now, queue_area, queue_since, queue_max, rejected, overflow
                if max_queue is not None and waiting_now >= max_queue:
                    if now >= warmup:
                        rejected += 1
                    return False
                if waiting_now >= overflow_limit:
                    if now >= warmup:
                        rejected += 1
                        overflow += 1
                    return False
                p = next(turn) % partition_count  # round robin, as a producer without keys
                entry = [now, k, cont, True, p]
                if p not in parts:
                    parts[p] = deque()
                    part_live[p] = 0
                parts[p].append(entry)
                part_live[p] += 1
                queue_area += waiting_now * (now - queue_since)
                queue_since = now
                waiting_now += 1
                if waiting_now > queue_max:
                    queue_max = waiting_now
                if queue_timeout is not None:
                    later(queue_timeout, on_give_up, entry)
                if part_live[p] == 1 and linger > 0.0:
                    later(linger, on_linger, None)  # the new batch is due then at the latest
                dispatch()
                return True

        def enter(k: int, pick: Pick, cont: Cont) -> bool:
            nonlocal arrivals
            now = env._now
            if now >= warmup:
                arrivals += 1
            return arrive(pick(k), k, now, cont)

        self.enter: Enter = enter
        self.arrive = arrive
        self.pool_open_window: Callable[[], None] = lambda: None
        self.pool_arrivals: Callable[[], int] = lambda: 0
        self.pool_rejected: Callable[[], int] = lambda: 0
        self.pool_overflow: Callable[[], int] = lambda: 0
        self.pool_wait: Callable[[], Histogram | None] = lambda: None
        self.message_age: Callable[[], Histogram | None] = lambda: None
        if tier.pool is not None:
            self.enter = self._pooled(env, tier, window, arrive)
        if tier.is_async:
            self.enter = self._published(env, tier, window, arrive)
        if tier.rate_limit is not None:
            self.enter = self._rate_limited(self.enter, tier.rate_limit, warmup)

        # Integrals before the window opened, for the time series (which starts at t = 0).
        before_window = [0.0, 0.0, 0.0]

        def open_window() -> None:
            # Counters only count inside the window already; the time integrals restart here.
            nonlocal queue_area, queue_since, held_area, held_since, queue_max
            before_window[0] += queue_area + waiting_now * (warmup - queue_since)
            before_window[1] += held_area + held * (warmup - held_since)
            before_window[2] = live_servers[1] + live_servers[0] * (warmup - live_servers[2])
            queue_area = held_area = 0.0
            queue_since = held_since = warmup
            queue_max = waiting_now

        self.open_window = open_window
        self.waiting_now = lambda: waiting_now
        snapshots: list[tuple[float, float, float]] = []

        def live_integral(now: float) -> float:
            return live_servers[1] + live_servers[0] * (now - live_servers[2])

        def integrals(now: float) -> tuple[float, float, float]:
            # (waiting, held, live servers) integrals from t = 0 to now.
            return (
                before_window[0] + queue_area + waiting_now * (now - queue_since),
                before_window[1] + held_area + held * (now - held_since),
                live_integral(now),
            )

        def snapshot() -> None:
            snapshots.append(integrals(env._now))

        self.snapshot = snapshot

        def record_series() -> None:
            if series is None or window.series is None:
                return
            assert busy_log is not None
            busy_log.flush()
            cancelled.flush()
            series.busy_time -= cancelled.into
            cumulative = np.asarray([(0.0, 0.0, 0.0), *snapshots])
            per_bucket = np.diff(cumulative, axis=0)
            series.queue_time[:] = per_bucket[:, 0]
            series.occupied_time[:] = per_bucket[:, 1]
            series.present_time[:] = per_bucket[:, 0] + per_bucket[:, 1]
            series.instance_time[:] = per_bucket[:, 2]
            if self.cache_series is not None:
                series.lookups = np.asarray(self.cache_series[0], dtype=float)
                series.hits = np.asarray(self.cache_series[1], dtype=float)

        self.record_series = record_series
        trace: list[int] = []
        self.sample_queue = lambda: trace.append(waiting_now)

        def record() -> TierRun:
            end_queue = queue_area + waiting_now * (horizon - queue_since)
            end_held = held_area + held * (horizon - held_since)
            wait = wait_recorder.flush()
            _add_zeros(wait, zero_waits)
            run = TierRun(
                workers=tier.workers,
                arrivals=arrivals + self.pool_arrivals() + self.rate_limited,
                completed=completed,
                rejected=rejected + self.pool_rejected() + self.rate_limited,
                timed_out=timed_out,
                busy_time=busy,
                occupied_time=end_held if blocking else busy,
                queue_time=end_queue,
                queue_max=queue_max,
                wait=wait,
                queue_trace=np.asarray(trace, dtype=float),
            )
            run.pool_rejected = self.pool_rejected()
            run.overflow = overflow + self.pool_overflow()
            run.retries = self.retries
            run.call_timeouts = self.call_timeouts
            run.scaling = list(self.scaling)
            run.rate_limited = self.rate_limited
            run.dropped = self.dropped
            run.short_circuited = self.short_circuited
            run.bulkhead_rejected = self.bulkhead_rejected
            run.redeliveries = self.redeliveries
            run.dead_letters = self.dead_letters
            run.hedged_calls = self.hedged_calls
            run.hedges = self.hedges
            run.hedge_wins = self.hedge_wins
            run.hedges_cancelled = self.hedges_cancelled
            run.hedges_abandoned = self.hedges_abandoned
            run.cold_starts = self.cold_starts[0]
            run.cache_lookups = self.cache_lookups
            run.cache_hits = self.cache_hits
            if faults or tier.autoscale is not None:
                live = live_integral(horizon) - before_window[2]
                run.live_worker_time = live * tier.concurrency
            run.pool_wait = self.pool_wait()
            run.age = self.message_age()
            return run

        return record

    def _pooled(
        self,
        env: simpy.Environment,
        tier: Tier,
        window: _Window,
        arrive: Callable[[int, int, float, Cont], bool],
    ) -> Enter:
        """A database's connection pool in front of its instances: size in flight, FIFO rest."""
        assert tier.pool is not None
        size = tier.pool.size
        max_waiting = tier.pool.max_waiting
        pool_timeout = tier.pool.timeout
        warmup = window.warmup
        later = _scheduler(env)
        waiters: deque[list[Any]] = deque()
        in_use = waiting = overflow = 0
        overflow_limit = waiting_limit(tier)
        arrivals = rejected = zero_waits = 0
        wait_recorder = Recorder()

        def connected(k: int, pick: Pick, cont: Cont, now: float) -> bool:
            def query_done(ok: bool) -> None:
                give_back()
                cont(ok)

            return arrive(pick(k), k, now, query_done)

        def give_back() -> None:
            nonlocal in_use, waiting
            now = env._now
            while waiters:
                entry = waiters.popleft()
                if not entry[4]:
                    continue
                entry[4] = False
                waiting -= 1
                if now >= warmup:
                    wait_recorder.record(now - entry[0])
                if connected(entry[1], entry[2], entry[3], now):
                    return
                # refused by the instance: this waiter fails, the connection goes to the next one
                entry[3](False)
            in_use -= 1

        def expire(event: _Timer) -> None:
            nonlocal waiting, rejected
            entry = event._value
            if not entry[4]:
                return
            entry[4] = False
            waiting -= 1
            if env._now >= warmup:
                rejected += 1
            entry[3](False)

        on_expire = (expire,)

        def enter(k: int, pick: Pick, cont: Cont) -> bool:
            nonlocal in_use, waiting, arrivals, rejected, zero_waits, overflow
            now = env._now
            counted = now >= warmup
            if counted:
                arrivals += 1
            if in_use < size:
                in_use += 1
                if counted:
                    zero_waits += 1
                if connected(k, pick, cont, now):
                    return True
                give_back()
                return False
            if max_waiting is not None and waiting >= max_waiting:
                if counted:
                    rejected += 1
                return False
            if waiting >= overflow_limit:
                if counted:
                    rejected += 1
                    overflow += 1
                return False
            entry = [now, k, pick, cont, True]
            waiters.append(entry)
            waiting += 1
            if pool_timeout is not None:
                later(pool_timeout, on_expire, entry)
            return True

        def pool_wait() -> Histogram:
            histogram = wait_recorder.flush()
            _add_zeros(histogram, zero_waits)
            return histogram

        self.pool_arrivals = lambda: arrivals
        self.pool_rejected = lambda: rejected
        self.pool_overflow = lambda: overflow
        self.pool_wait = pool_wait
        return enter

    def _published(
        self,
        env: simpy.Environment,
        tier: Tier,
        window: _Window,
        arrive: Callable[[int, int, float, Cont], bool],
    ) -> Enter:
        """A queue tier: the caller spends publish_time, then the message joins the one FIFO."""
        warmup = window.warmup
        later = _scheduler(env)
        publish_time = tier.publish_time
        publish: Draw | None = None
        if publish_time is not None and not (publish_time.is_constant and publish_time.mean == 0):
            publish = _distribution_draw(publish_time, window.tier_rng(tier.index, streams.PUBLISH))
        age_recorder = Recorder()
        record_age = age_recorder.record
        arrivals = 0
        max_retries = tier.max_retries

        def enqueue(k: int) -> bool:
            nonlocal arrivals
            now = env._now
            if now >= warmup:
                arrivals += 1

            if max_retries:
                return arrive(0, k, now, _Delivery(self, k, now, max_retries, arrive, record_age))

            def consumed(ok: bool) -> None:
                if env._now >= warmup:
                    record_age(env._now - now)

            return arrive(0, k, now, consumed)

        def published(event: _Timer) -> None:
            k, cont = event._value
            cont(enqueue(k))

        on_published = (published,)

        def answered(event: _Timer) -> None:
            event._value(True)

        on_answered = (answered,)

        def enter(k: int, pick: Pick, cont: Cont) -> bool:
            delay = publish() if publish is not None else 0.0
            if delay > 0.0:
                later(delay, on_published, (k, cont))
                return True
            if not enqueue(k):
                return False
            # Answer through the schedule, not at once: a long run of free publishes (a repeat)
            # would otherwise nest one Python frame per publish.
            later(0.0, on_answered, cont)
            return True

        self.pool_arrivals = lambda: arrivals
        self.message_age = age_recorder.flush
        return enter


class _Delivery:
    """One message of a queue tier with `max_retries`: a failed consumption is redelivered (to
    the back of the queue) up to `max_retries` times, then the message is dead-lettered."""

    __slots__ = ("arrive", "enqueued", "k", "left", "record_age", "sim")

    def __init__(
        self,
        sim: _TierSim,
        k: int,
        enqueued: float,
        max_retries: int,
        arrive: Callable[[int, int, float, Cont], bool],
        record_age: Callable[[float], None],
    ) -> None:
        self.sim = sim
        self.k = k
        self.enqueued = enqueued
        self.left = max_retries
        self.arrive = arrive
        self.record_age = record_age

    def __call__(self, ok: bool) -> None:
        sim = self.sim
        now = sim.env._now
        counted = now >= sim._window.warmup
        if not ok and self.left > 0:
            self.left -= 1
            if counted:
                sim.redeliveries += 1
            if self.arrive(0, self.k, now, self):
                return
        if not ok:
            if counted:
                sim.dead_letters += 1
            return
        if counted:
            self.record_age(now - self.enqueued)


class _PriorityQueue:
    """An instance's waiting room with priorities between classes: one FIFO per level.

    `popleft` takes the oldest request of the highest level that has any (non-preemptive
    priority); `pop` the newest of that level (LIFO within priorities). Entries are the
    engine's `[arrived, class, cont, live, instance]` lists.
    """

    __slots__ = ("level", "levels", "size")

    def __init__(self, priorities: tuple[int, ...]) -> None:
        self.level = priorities  # level of each class: 0 is served first
        self.levels: list[deque[list[Any]]] = [deque() for _ in range(max(priorities) + 1)]
        self.size = 0

    def append(self, entry: list[Any]) -> None:
        self.levels[self.level[entry[1]]].append(entry)
        self.size += 1

    def _first(self) -> deque[list[Any]]:
        return next(level for level in self.levels if level)

    def popleft(self) -> list[Any]:
        self.size -= 1
        return self._first().popleft()

    def pop(self) -> list[Any]:
        self.size -= 1
        return self._first().pop()

    def __bool__(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return self.size


_OFF, _STARTING, _READY, _DRAINING = range(4)  # an autoscaled instance's states


def _hpa_recommendation(
    scaler: Autoscale, total: float, ready: int, starting: int, current: int
) -> int:
    """The HPA's desired count from the metric's total over ready instances (replica_calculator).

    desired = ceil(ready x average / target), unless the ratio is within the tolerance of 1.
    When scaling up with instances still starting, those count as using nothing, which damps
    the step; if that reverses the direction or lands within the tolerance, nothing changes.
    """
    if ready == 0:
        return current  # no metrics yet: the HPA leaves the count alone
    ratio = total / (ready * scaler.target)
    if starting and ratio > 1.0:
        damped = total / ((ready + starting) * scaler.target)
        if damped < 1.0 or abs(damped - 1.0) <= scaler.tolerance:
            return current
        return max(math.ceil(damped * (ready + starting) - 1e-9), current)
    if abs(ratio - 1.0) <= scaler.tolerance:
        return current
    return math.ceil(ratio * ready - 1e-9)


def _counted_draw(draw: Draw, total: list[float]) -> Draw:
    """`draw`, adding each value to `total[0]`."""

    def counted() -> float:
        value = draw()
        total[0] += value
        return value

    return counted


def _slowed_draw(draw: Draw, factor: list[float]) -> Draw:
    """`draw` times the current `factor[0]` (a slowdown fault)."""

    def slowed() -> float:
        return draw() * factor[0]

    return slowed


def _logged_draw(draw: Draw, env: simpy.Environment, log: IntervalLog) -> Draw:
    """`draw`, logging each value as busy time starting now."""
    record = log.record

    def logged() -> float:
        value = draw()
        record(env._now, value)
        return value

    return logged


#: A retry budget banks at most this many retries (and starts with them).
RETRY_TOKENS = 10.0


class _Breaker:
    """A circuit breaker on one call site: closed, open, or half-open with a few probes.

    Closed: outcomes over the last `window` seconds are kept; once there are `min_calls` of
    them and the failed share reaches `error_rate`, it opens. Open: calls fail at once for
    `open_for`. Half-open: the next `probes` calls go through; if they all succeed it closes
    (forgetting the past), if one fails it opens again; calls beyond the probes fail at once.
    """

    CLOSED, OPEN, HALF_OPEN = range(3)

    def __init__(self, env: simpy.Environment, setting: CircuitBreaker) -> None:
        self.env = env
        self.setting = setting
        self.state = self.CLOSED
        self.outcomes: deque[tuple[float, bool]] = deque()
        self.failures = 0
        self.until = 0.0
        self.probing = 0  # probes sent in this half-open spell
        self.passed = 0  # probes that succeeded

    def allow(self) -> bool:
        """Whether a call may go through now (a half-open probe is counted as sent)."""
        if self.state == self.OPEN:
            if self.env._now < self.until:
                return False
            self.state, self.probing, self.passed = self.HALF_OPEN, 0, 0
        if self.state == self.HALF_OPEN:
            if self.probing >= self.setting.probes:
                return False
            self.probing += 1
        return True

    def record(self, ok: bool) -> None:
        setting = self.setting
        now = self.env._now
        if self.state == self.HALF_OPEN:
            if not ok:
                self._open(now)
            else:
                self.passed += 1
                if self.passed >= setting.probes:
                    self.state = self.CLOSED
                    self.outcomes.clear()
                    self.failures = 0
            return
        if self.state == self.OPEN:
            return  # an answer to a call made before it opened
        outcomes = self.outcomes
        outcomes.append((now, ok))
        if not ok:
            self.failures += 1
        while outcomes and outcomes[0][0] <= now - setting.window:
            if not outcomes.popleft()[1]:
                self.failures -= 1
        if len(outcomes) >= setting.min_calls and self.failures >= setting.error_rate * len(
            outcomes
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = self.OPEN
        self.until = now + self.setting.open_for
        self.outcomes.clear()
        self.failures = 0


class _CallSite:
    """One call with a timeout, retries, a circuit breaker or a bulkhead: each call made there
    runs an `_Attempts`."""

    def __init__(self, caller: _TierSim, target: _TierSim, call: Call) -> None:
        self.env = caller.env
        self.warmup = caller._window.warmup
        self.target = target
        self.target_enter = target.enter
        self.timeout = call.timeout
        self.retry = call.retry or Retry(max=0)
        self.later = _scheduler(caller.env)
        self.jitter = caller.retry_uniform() if self.retry.jitter == "full" else None
        self.tokens = RETRY_TOKENS
        self.breaker = (
            _Breaker(caller.env, call.circuit_breaker) if call.circuit_breaker is not None else None
        )
        self.bulkhead = call.bulkhead
        # Shared by every call site from this caller to this callee.
        self.in_flight = caller.bulkheads.setdefault(target.tier.index, [0])
        self.hedge = call.hedge
        self.response_times: _ResponseTimes | None = None
        if call.hedge is not None and call.hedge.quantile is not None:
            key = (target.tier.index, call.hedge.quantile)
            self.response_times = caller.response_times.get(key) or _ResponseTimes(
                call.hedge.quantile
            )
            caller.response_times[key] = self.response_times

    def hedge_delay(self) -> float | None:
        """Seconds between copies of a hedged attempt now (None: send no copy yet)."""
        assert self.hedge is not None
        if self.response_times is None:
            return self.hedge.after
        return self.response_times.threshold

    def enter(self, k: int, pick: Pick, cont: Cont) -> bool:
        budget = self.retry.budget
        if budget is not None:
            self.tokens = min(self.tokens + budget, RETRY_TOKENS)
        _Attempts(self, k, pick, cont).launch()
        return True

    def may_retry(self) -> bool:
        """Take a token from the budget when there is one (always yes without a budget)."""
        if self.retry.budget is None:
            return True
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def backoff(self, n: int) -> float:
        """The wait before retry n (1, 2, ...)."""
        retry = self.retry
        if retry.backoff == "none":
            return 0.0
        if retry.backoff == "constant":
            delay = retry.base
        else:
            delay = min(retry.cap, retry.base * 2.0 ** (n - 1))
        return delay * self.jitter() if self.jitter is not None else delay


class _Answer:
    """The continuation of one attempt; `live` until it is answered or given up on.

    A callee that drops abandoned requests (`drop_abandoned`) reads `live` before it starts
    on one.
    """

    __slots__ = ("attempts", "live")

    def __init__(self, attempts: _Attempts) -> None:
        self.attempts = attempts
        self.live = True

    def __call__(self, ok: bool) -> None:
        if self.live:
            self.live = False
            self.attempts.settled(ok)


def _timed_out(event: _Timer) -> None:
    answer = event._value
    if answer.live:
        answer.live = False
        site = answer.attempts.site
        if site.env._now >= site.warmup:
            site.target.call_timeouts += 1
        answer.attempts.settled(False)


def _retry_due(event: _Timer) -> None:
    event._value.launch()


_ON_TIMEOUT = (_timed_out,)
_ON_RETRY = (_retry_due,)


class _Attempts:
    """One call's attempts: launched until one succeeds, retries run out, or the budget says no.

    An attempt given up on (timed out) is not cancelled: the callee works on, and its late
    answer is ignored.
    """

    __slots__ = ("again", "cont", "k", "launching", "pick", "retried", "site")

    def __init__(self, site: _CallSite, k: int, pick: Pick, cont: Cont) -> None:
        self.site = site
        self.k = k
        self.pick = pick
        self.cont = cont
        self.retried = 0
        self.launching = False
        self.again = False

    def launch(self) -> None:
        """Attempts until one is not refused at once. A refused attempt whose retry is due at once
        asks for another through `again` instead of recursing, so any number of retries with no
        backoff needs no deeper stack; every retry was the last thing its refusal did, so the
        order of events is that of the recursion."""
        self.launching = True
        try:
            self._attempt()
            while self.again:
                self.again = False
                self._attempt()
        finally:
            self.launching = False

    def _attempt(self) -> None:
        site = self.site
        counted = site.env._now >= site.warmup
        if site.breaker is not None and not site.breaker.allow():
            if counted:
                site.target.short_circuited += 1
            self.failed()
            return
        if site.bulkhead is not None:
            if site.in_flight[0] >= site.bulkhead:
                if counted:
                    site.target.bulkhead_rejected += 1
                self.failed()
                return
            site.in_flight[0] += 1
        if self.retried and counted:
            site.target.retries += 1
        answer = _Answer(self)
        if site.timeout is not None:
            site.later(site.timeout, _ON_TIMEOUT, answer)
        if site.hedge is not None:
            _Hedged(site, self.k, self.pick, answer).send_first()
        elif not site.target_enter(self.k, self.pick, answer):
            answer(False)

    def settled(self, ok: bool) -> None:
        """The current attempt is over: answered (ok or not) or given up on."""
        site = self.site
        if site.bulkhead is not None:
            site.in_flight[0] -= 1
        if site.breaker is not None:
            site.breaker.record(ok)
        if ok:
            self.cont(True)
        else:
            self.failed()

    def failed(self) -> None:
        site = self.site
        if self.retried >= site.retry.max or not site.may_retry():
            self.cont(False)
            return
        self.retried += 1
        delay = site.backoff(self.retried)
        if delay > 0.0:
            site.later(delay, _ON_RETRY, self)
        elif self.launching:
            self.again = True
        else:
            self.launch()


#: A percentile hedge sends no copy before its caller has seen this many answers from the
#: callee, and at least 10 beyond the percentile: ceil(10 / (1 - q)) (p99: 1,000).
HEDGE_MIN_ANSWERS = 100
#: A percentile hedge's delay is recomputed after every this many new answers.
HEDGE_REFRESH = 100
#: A histogram bin's top over the value that stands for it: sqrt(1 + 1/128), rounded up.
HEDGE_BIN_TOP = 1.004
#: Added to the connection count of instances that already have a copy while a hedge picks.
_AVOID = 1 << 40


class _ResponseTimes:
    """The callee's response times as one caller has seen them, and their q-quantile.

    One per (caller, callee, quantile): every copy of a hedged call that answered successfully,
    from sending to its answer, since t = 0 (warm-up included: a client learns while it warms
    up), in a streaming histogram. `threshold` is None until enough answers have been seen.
    """

    __slots__ = ("histogram", "needed", "pending", "q", "threshold")

    def __init__(self, q: float) -> None:
        self.q = q
        self.histogram = Histogram()
        self.pending: list[float] = []
        self.needed = max(HEDGE_MIN_ANSWERS, math.ceil(10.0 / (1.0 - q) - 1e-9))
        self.threshold: float | None = None

    def record(self, seconds: float) -> None:
        pending = self.pending
        pending.append(seconds)
        if len(pending) < HEDGE_REFRESH:
            return
        self.histogram.add(pending)
        self.pending = []
        if self.histogram.n >= self.needed:
            # Up to the top of the quantile's bin, so that an answer as slow as the quantile
            # itself (a constant callee) comes before the copy; a nanosecond at least.
            self.threshold = max(self.histogram.quantile(self.q) * HEDGE_BIN_TOP, 1e-9)


class _HedgeCopy:
    """One copy of a hedged attempt: its continuation at the callee.

    `live` until the attempt no longer waits for it. A tier that queues it calls `queued`, so
    that the copy can be withdrawn from that queue when another copy answers first.
    """

    __slots__ = ("entry", "group", "live", "sent", "withdraw")

    def __init__(self, group: _Hedged, sent: float) -> None:
        self.group = group
        self.sent = sent
        self.live = True
        self.entry: list[Any] | None = None
        self.withdraw: Callable[[list[Any]], bool] | None = None

    def queued(self, entry: list[Any], withdraw: Callable[[list[Any]], bool]) -> None:
        self.entry = entry
        self.withdraw = withdraw

    def __call__(self, ok: bool) -> None:
        group = self.group
        site = group.site
        if ok and site.response_times is not None:
            site.response_times.record(site.env._now - self.sent)  # late answers too
        if self.live:
            self.live = False
            group.answered(self, ok)


class _Hedged:
    """One attempt of a hedged call: the first copy, then, while none has answered, another
    copy to another instance every `delay` seconds, up to `hedge.max` more.

    The first successful answer is the attempt's answer. A failed copy fails the attempt only
    when no other copy is out (and then no more copies are sent): hedges are for slowness,
    retries for errors. The losers are withdrawn if still waiting in a queue, else abandoned.
    """

    __slots__ = (
        "answer",
        "copies",
        "delay",
        "done",
        "k",
        "left",
        "outstanding",
        "pick",
        "site",
        "used",
    )

    def __init__(self, site: _CallSite, k: int, pick: Pick, answer: _Answer) -> None:
        assert site.hedge is not None
        self.site = site
        self.k = k
        self.pick = pick
        self.answer = answer
        self.copies: list[_HedgeCopy] = []
        self.used: list[int] = []  # instances the copies went to
        self.left = site.hedge.max
        self.outstanding = 0
        self.done = False
        self.delay = 0.0

    def send_first(self) -> None:
        site = self.site
        if site.env._now >= site.warmup:
            site.target.hedged_calls += 1
        delay = site.hedge_delay()
        if delay is not None:
            self.delay = delay
            site.later(delay, _ON_HEDGE, self)
        self._send()

    def due(self) -> None:
        """The delay has passed: send another copy unless the attempt is over."""
        if self.done or not self.answer.live:
            return
        site = self.site
        self.left -= 1
        if site.env._now >= site.warmup:
            site.target.hedges += 1
        if self.left > 0:
            site.later(self.delay, _ON_HEDGE, self)
        self._send()

    def _send(self) -> None:
        copy = _HedgeCopy(self, self.site.env._now)
        self.copies.append(copy)
        self.outstanding += 1
        if not self.site.target_enter(self.k, self._pick, copy):
            copy(False)  # refused on the spot

    def _pick(self, k: int) -> int:
        """The callee's balancing, steered away from instances that already have a copy: they
        look fully loaded to least_connections and power_of_two, and round_robin or random
        choose again, up to 2 x instances + 16 times (a tier with one instance gets every
        copy)."""
        used = self.used
        pick = self.pick
        if not used:
            i = pick(k)
            used.append(i)
            return i
        at = self.site.target.at
        for j in used:
            at[j] += _AVOID
        i = pick(k)
        tries = 2 * len(at) + 16  # random balancing may draw a used instance again
        while i in used and tries:
            i = pick(k)
            tries -= 1
        for j in used:
            at[j] -= _AVOID
        used.append(i)
        return i

    def answered(self, copy: _HedgeCopy, ok: bool) -> None:
        self.outstanding -= 1
        if self.done:
            return
        if not self.answer.live:
            self.done = True  # given up on (timed out): its copies are left to the callee
            return
        if not ok and self.outstanding > 0:
            return  # another copy may still answer
        self.done = True
        if ok:
            self._drop_losers(winner=copy)
        self.answer(ok)

    def _drop_losers(self, winner: _HedgeCopy) -> None:
        site = self.site
        target = site.target
        counted = site.env._now >= site.warmup
        if counted and winner is not self.copies[0]:
            target.hedge_wins += 1
        for other in self.copies:
            if not other.live:
                continue
            other.live = False
            if other.withdraw is not None and other.withdraw(other.entry):  # type: ignore[arg-type]
                if counted:
                    target.hedges_cancelled += 1
            elif counted:
                target.hedges_abandoned += 1


def _hedge_due(event: _Timer) -> None:
    event._value.due()


_ON_HEDGE = (_hedge_due,)


def _given_up(cont: Cont) -> bool:
    """Whether the caller no longer waits for this continuation (`drop_abandoned` drops it)."""
    kind = type(cont)
    if kind is _Answer:
        return not cont.live  # type: ignore[attr-defined]
    if kind is _HedgeCopy:
        return not cont.live or not cont.group.answer.live  # type: ignore[attr-defined]
    return False


def _guarded(call: Call) -> bool:
    """A call with a timeout, retries, a circuit breaker, a bulkhead or a hedge (an
    `_CallSite`)."""
    return (
        call.timeout is not None
        or call.retry is not None
        or call.circuit_breaker is not None
        or call.bulkhead is not None
        or call.hedge is not None
    )


def _compile_step(step: Step, caller: _TierSim, tiers: list[_TierSim]) -> tuple[Any, ...]:
    """A model Step as the flat tuple `_Sequence` runs."""
    if isinstance(step, Call):
        target = tiers[step.tier]
        enter = target.enter
        if _guarded(step):
            enter = _CallSite(caller, target, step).enter
        return (
            _CALL,
            enter,
            target.pick(step.algorithm),
            step.probability,
            max(step.repeat, 1),
            caller.routing_draw,
        )
    if isinstance(step, OneOf):
        bounds = list(itertools.accumulate(p for _, p in step.options))
        targets = tuple((tiers[t].enter, tiers[t].pick(None)) for t, _ in step.options)
        return (_ONE_OF, bounds, targets, caller.routing_draw)
    assert isinstance(step, Parallel)
    return (_PARALLEL, tuple(_compile_step(b, caller, tiers) for b in step.branches))


def _runner(steps: tuple[tuple[Any, ...], ...]) -> Runner | None:
    """The cheapest way to run these steps: none, one plain call, one one_of, or a _Sequence."""
    if not steps:
        return None
    if len(steps) == 1 and steps[0][0] == _CALL and steps[0][3] >= 1.0 and steps[0][4] == 1:
        _, enter, pick, _, _, _ = steps[0]

        def call(k: int, done: Cont) -> None:
            if not enter(k, pick, done):
                done(False)

        return call
    if len(steps) == 1 and steps[0][0] == _ONE_OF:
        _, bounds, targets, uniform = steps[0]
        options = list(zip(bounds, targets, strict=True))

        def one_of(k: int, done: Cont) -> None:
            x = uniform()
            for bound, (enter, pick) in options:
                if x < bound:
                    if not enter(k, pick, done):
                        done(False)
                    return
            done(True)

        return one_of

    def sequence(k: int, done: Cont) -> None:
        _Sequence(steps, k, done).advance()

    return sequence


class _ClassSim:
    """One request class: its arrivals (open) or users (closed), and its figures."""

    def __init__(
        self,
        env: simpy.Environment,
        traffic: TrafficClass,
        entry: _TierSim,
        window: _Window,
        share_limits: tuple[float, ...] = (),
    ) -> None:
        self.run = ClassRun(latency=Histogram(share_limits))
        self.latency = Recorder(self.run.latency)
        warmup = window.warmup
        k = traffic.index
        enter = entry.enter
        pick = entry.pick(None)
        record_latency = self.latency.record
        run = self.run
        later = _scheduler(env)
        self.flush_series: Callable[[], None] = lambda: None
        tracker = _ClassTracker(env, window, k) if window.series is not None else None
        if tracker is not None:
            self.flush_series = tracker.flush

        if traffic.is_closed:
            think_time = traffic.think_time or Distribution.constant(0.0)
            think = _distribution_draw(think_time, window.class_rng(k, streams.THINK))

            def thought(event: _Timer) -> None:
                now = env._now
                if now >= warmup:
                    run.arrivals += 1
                if tracker is not None:
                    tracker.arrived(now)

                def finish(ok: bool) -> None:
                    if now >= warmup:
                        if ok:
                            run.completed += 1
                            record_latency(env._now - now)
                        else:
                            run.errors += 1
                    if tracker is not None:
                        tracker.finished(now, ok)
                    later(think(), on_thought, None)

                if not enter(k, pick, finish):
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

        rng = window.class_rng(k, streams.ARRIVALS)
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

        def arrival(event: _Timer) -> None:
            now = env._now
            step = gap()
            if step < math.inf:
                schedule(step, on_arrival, None)
            if now < warmup:
                enter(k, pick, _ignore)
                return
            run.arrivals += 1

            def finish(ok: bool) -> None:
                if ok:
                    run.completed += 1
                    record_latency(env._now - now)
                else:
                    run.errors += 1

            if not enter(k, pick, finish):
                run.errors += 1

        if tracker is not None:
            # The same arrivals, also counted per time bucket (warm-up included).
            arrived, finished = tracker.arrived, tracker.finished

            def arrival(event: _Timer) -> None:
                now = env._now
                step = gap()
                if step < math.inf:
                    schedule(step, on_arrival, None)
                arrived(now)
                counted = now >= warmup
                if counted:
                    run.arrivals += 1

                def finish(ok: bool) -> None:
                    if counted:
                        if ok:
                            run.completed += 1
                            record_latency(env._now - now)
                        else:
                            run.errors += 1
                    finished(now, ok)

                if not enter(k, pick, finish):
                    finish(False)

        on_arrival = (arrival,)
        first = gap()
        if first < math.inf:
            schedule(first, on_arrival, None)


class _ClassTracker:
    """Counts one class's arrivals, completions, errors and latencies per time bucket."""

    def __init__(self, env: simpy.Environment, window: _Window, k: int) -> None:
        assert window.series is not None
        self.env = env
        self.series = window.series.classes[k]
        self.inverse = 1.0 / window.series.bucket
        self.last = self.series.arrivals.size - 1
        self.arrivals = [0] * (self.last + 1)
        self.errors = [0] * (self.last + 1)
        self.log = CompletionLog(self.series, window.series.bucket)

    def arrived(self, now: float) -> None:
        self.arrivals[min(int(now * self.inverse), self.last)] += 1

    def finished(self, arrived: float, ok: bool) -> None:
        now = self.env._now
        if ok:
            self.log.record(now, now - arrived)
        else:
            self.errors[min(int(now * self.inverse), self.last)] += 1

    def flush(self) -> None:
        self.log.flush()
        self.series.arrivals[:] = self.arrivals
        self.series.errors[:] = self.errors


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


def _ignore(ok: bool) -> None:
    """The continuation of a request that arrived before the window: nothing to count."""


def run_events(
    model: Model,
    replication: int,
    progress: Callable[[float, str], None] | None = None,
) -> RunResult:
    """One replication of `model` on the discrete-event path."""
    started = time.perf_counter()
    window = _Window(model, replication)
    env = simpy.Environment()
    tiers = [_TierSim(env, tier, window, len(model.classes)) for tier in model.tiers]
    for sim in tiers:
        lookup = sim.cold_cache() if sim.tier.cold_lru is not None else None
        for k, work in enumerate(sim.tier.work):
            steps = tuple(_compile_step(step, sim, tiers) for step in work.calls)
            if lookup is not None and steps and steps[0][0] == _CALL:
                # The miss call is made when the lookup (1.0 hit, 0.0 miss) is below 0.5.
                _, enter, pick, _, repeat, _ = steps[0]
                steps = ((_CALL, enter, pick, 0.5, repeat, lookup), *steps[1:])
            sim.runners[k] = _runner(steps)
    warmup, horizon = window.warmup, window.horizon
    duration = horizon - warmup
    trace_times = warmup + duration * np.arange(TRACE_POINTS) / TRACE_POINTS

    def opened(event: simpy.Event) -> None:
        for sim in tiers:
            sim.open_window()

    env.timeout(warmup).callbacks.append(opened)

    def sampled(event: simpy.Event) -> None:
        for sim in tiers:
            sim.sample_queue()

    def bucket_ended(event: simpy.Event) -> None:
        for sim in tiers:
            sim.snapshot()

    if window.series is not None:
        # The last edge is the horizon: its snapshot is taken after the run.
        for t in window.series.edges[1:-1].tolist():
            env.timeout(t).callbacks.append(bucket_ended)

    # Events at equal times run in the order they were scheduled: the window opens first.
    for t in trace_times.tolist():
        env.timeout(t).callbacks.append(sampled)

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
                env.timeout(step).callbacks.append(tick)

        env.timeout(step).callbacks.append(tick)

    built = time.perf_counter()
    with _stack_for(model):
        env.run(until=horizon)
    simulated = time.perf_counter()
    if progress is not None:
        progress(1.0, "simulating")

    # Scheduled events minus those still waiting on the heap: the events SimPy processed.
    scheduled = next(env._eid) if hasattr(env, "_eid") else 0
    events = max(scheduled - len(getattr(env, "_queue", ())) - ticks, 0)
    tier_runs = [sim.record() for sim in tiers]
    for run in tier_runs:
        run.trace_times = trace_times.copy()
    for c in classes:
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
