"""One tier's runtime (`_TierSim`): instances, waiting lines, features, and its figures."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import numpy as np
import simpy

from capsim.engine import streams
from capsim.engine.events.admission import _Delivery
from capsim.engine.events.autoscaling import _DRAINING, _OFF, _READY, _STARTING, _hpa_recommendation
from capsim.engine.events.calls import _ignore
from capsim.engine.events.clock import _NORMAL, _scheduler, _Timer
from capsim.engine.events.disciplines import _PriorityQueue
from capsim.engine.events.draws import (
    _buffered,
    _counted_draw,
    _distribution_draw,
    _logged_draw,
    _slowed_draw,
)
from capsim.engine.events.resilience import _given_up, _HedgeCopy, _ResponseTimes
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick, Runner
from capsim.engine.events.windows import _add_zeros, _Window
from capsim.engine.histogram import Histogram, Recorder
from capsim.engine.limits import waiting_limit
from capsim.engine.result import TierRun
from capsim.engine.timeseries import (
    IntervalLog,
)
from capsim.model.types import (
    Fault,
    HealthCheck,
    RateLimit,
    Tier,
)


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
