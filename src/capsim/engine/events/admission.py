"""Admission in front of a tier's instances (`arrive`): a rate limit, a database's connection
pool, a queue tier's publishing and its redelivered messages (`max_retries`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from capsim.engine.events.signatures import Cont

if TYPE_CHECKING:
    from capsim.engine.events.tier import _TierSim


from collections import deque

import simpy

from capsim.engine import streams
from capsim.engine.events.clock import _scheduler, _Timer
from capsim.engine.events.draws import (
    _distribution_draw,
)
from capsim.engine.events.signatures import Draw, Enter, Pick
from capsim.engine.events.windows import _add_zeros, _Window
from capsim.engine.histogram import Histogram, Recorder
from capsim.engine.limits import waiting_limit
from capsim.engine.timeseries import AgeLog
from capsim.model.types import (
    RateLimit,
    Tier,
)


def rate_limited(sim: _TierSim, enter: Enter, limit: RateLimit, warmup: float) -> Enter:
    """A token bucket in front of the tier: `rate` tokens a second, at most `burst` banked."""
    env = sim.env
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
            sim.rate_limited += 1
        return False

    return limited


def pooled(
    sim: _TierSim,
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
    waiters: deque[_PoolWaiter] = deque()
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
            if not entry.live:
                continue
            entry.live = False
            waiting -= 1
            if now >= warmup:
                wait_recorder.record(now - entry.arrived)
            if connected(entry.k, entry.pick, entry.cont, now):
                return
            # refused by the instance: this waiter fails, the connection goes to the next one
            entry.cont(False)
        in_use -= 1

    def expire(event: _Timer) -> None:
        nonlocal waiting, rejected
        entry = event._value
        if not entry.live:
            return
        entry.live = False
        waiting -= 1
        if env._now >= warmup:
            rejected += 1
        entry.cont(False)

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
        entry = _PoolWaiter(now, k, pick, cont)
        waiters.append(entry)
        waiting += 1
        if pool_timeout is not None:
            later(pool_timeout, on_expire, entry)
        return True

    def pool_wait() -> Histogram:
        histogram = wait_recorder.flush()
        _add_zeros(histogram, zero_waits)
        return histogram

    sim.pool_arrivals = lambda: arrivals
    sim.pool_rejected = lambda: rejected
    sim.pool_overflow = lambda: overflow
    sim.pool_wait = pool_wait
    return enter


def published(
    sim: _TierSim,
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
    record_age: Callable[[float], None] = age_recorder.record
    flush_age: Callable[[], Histogram | None] = age_recorder.flush
    if window.series is not None:  # message ages per bucket too (engine/timeseries.py)
        record_age, flush_age = _ages_per_bucket(env, window, tier, age_recorder)
    arrivals = 0
    max_retries = tier.max_retries

    def enqueue(k: int) -> bool:
        nonlocal arrivals
        now = env._now
        if now >= warmup:
            arrivals += 1

        if max_retries:
            return arrive(0, k, now, _Delivery(sim, k, now, max_retries, arrive, record_age))

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

    sim.pool_arrivals = lambda: arrivals
    sim.message_age = flush_age
    return enter


def _ages_per_bucket(
    env: simpy.Environment, window: _Window, tier: Tier, recorder: Recorder
) -> tuple[Callable[[float], None], Callable[[], Histogram | None]]:
    """(record an age, flush): the whole-run histogram and the per-bucket ones of the series."""
    assert window.series is not None
    ages = AgeLog(window.series.tiers[tier.index], window.series.bucket)
    record = recorder.record

    def record_age(age: float) -> None:
        record(age)
        ages.record(env._now, age)

    def flush() -> Histogram | None:
        ages.flush()
        return recorder.flush()

    return record_age, flush


class _PoolWaiter:
    """A request waiting for a pool connection: when, its class, the instance chooser, its
    continuation; `live` until it gets a connection or times out."""

    __slots__ = ("arrived", "cont", "k", "live", "pick")

    def __init__(self, arrived: float, k: int, pick: Pick, cont: Cont) -> None:
        self.arrived = arrived
        self.k = k
        self.pick = pick
        self.cont = cont
        self.live = True


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
