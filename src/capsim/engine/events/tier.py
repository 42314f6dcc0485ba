"""One tier's runtime (`_TierSim`): instances, waiting lines, features, and its figures."""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from capsim.engine import streams
from capsim.engine.events import autoscaling, consumers, faults, instances, serverless
from capsim.engine.events.admission import _Delivery
from capsim.engine.events.clock import _scheduler, _Timer
from capsim.engine.events.draws import (
    _buffered,
    _distribution_draw,
)
from capsim.engine.events.resilience import _ResponseTimes
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick, Runner
from capsim.engine.events.station import Station
from capsim.engine.events.windows import _add_zeros, _Window
from capsim.engine.histogram import Histogram, Recorder
from capsim.engine.limits import waiting_limit
from capsim.engine.result import TierRun
from capsim.model.types import (
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
        """The tier's Station with its features installed (in the Station's contract order),
        and the `enter` callers use: pool, publishing and rate limit in front of `arrive`."""
        self.scaling: list[tuple[float, int, int]] = []  # (time, from, to) of each change
        self.routable: list[bool] | None = None  # balancing's view, when instances can die
        st = self.station = Station(self, window, self.runners)
        self.alive = st.alive
        self.at = st.at
        self.primary_slots = st.servers - tier.replicas
        instances.install(st)
        faults.install(st)
        autoscaling.install(st)
        serverless.install(st)
        consumers.install(st)
        warmup = window.warmup
        arrive = st.arrive

        def enter(k: int, pick: Pick, cont: Cont) -> bool:
            now = env._now
            if now >= warmup:
                st.arrivals += 1
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
        self.open_window = st.open_window
        self.snapshot = st.snapshot
        self.record_series = st.record_series
        self.sample_queue = st.sample_queue
        return st.record

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
