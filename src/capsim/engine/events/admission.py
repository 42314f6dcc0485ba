"""Admission in front of a tier's instances (`arrive`): a rate limit, a database's connection
pool, a queue tier's publishing and its redelivered messages (`max_retries`).

`install` is the last feature installed (the Station's contract): it sets the station's first
`enter` (count the arrival, pick the instance, `arrive`), then wraps it with the pool or the
publishing and, outermost, the rate limit. Each appends its `record(run)` to the station's `recorders`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from capsim.engine import streams
from capsim.engine.events.balancing import fixed_instance, least_connections_of
from capsim.engine.events.clock import Clock, _scheduler, _Timer
from capsim.engine.events.draws import _distribution_draw
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick, Runner
from capsim.engine.events.station import Arrive, Station
from capsim.engine.events.windows import _add_zeros
from capsim.engine.histogram import Histogram, Recorder, censored
from capsim.engine.limits import waiting_limit
from capsim.engine.result import TierRun
from capsim.engine.timeseries import AgeLog
from capsim.model.types import RateLimit

#: False: no caller runs a callee's plain enter inline (`inline_target`) and no direct call
#: picks by least connections inline: every such call goes through its runner and chooser, as
#: before they were fused. tests/test_event_inlining.py runs scenarios both ways, figure for figure.
INLINE = True


def install(st: Station) -> None:
    """The tier's `enter`: the plain one, then the pool or publishing, then the rate limit."""
    tier = st.tier
    st.enter = st.plain_enter = _counted(st)
    if tier.pool is not None:
        st.enter = pooled(st, st.arrive)
    if tier.is_async:
        st.enter = published(st, st.arrive)
    if tier.rate_limit is not None:
        st.enter = rate_limited(st, st.enter, tier.rate_limit)


def _counted(st: Station) -> Enter:
    """The plain `enter`: count the arrival (in the window), pick the instance, `arrive`."""
    env, warmup, arrive = st.env, st.warmup, st.arrive

    def enter(k: int, pick: Pick, cont: Cont) -> bool:
        now = env._now
        if now >= warmup:
            st.arrivals += 1
        return arrive(pick(k), k, now, cont)

    return enter


# -- the plain enter, fused into its caller (hot path) ------------------------------------------
#
# Most calls go to a tier with nothing in front of `arrive`. For those, the caller's runner and
# an entry class do what `_counted` does themselves (count the arrival, pick, `arrive`), with
# the probability draw of the call and, for a tier of one instance, the pick folded in: one
# Python call per visit instead of three or four (`runner` -> `enter` -> `pick` -> `arrive`).
# Measured on web-shop and the W3 variant (CPU time, interleaved rounds): see
# docs/performance.md. The draws are made in the same order as by the general path.


def direct_runner(st: Station, pick: Pick, probability: float, uniform: Draw) -> Runner | None:
    """A runner making one call to this tier (made when `uniform() < probability`), with the
    plain enter inlined; None when something stands in front of `arrive`."""
    if st.enter is not st.plain_enter:
        return None
    env, warmup, arrive = st.env, st.warmup, st.arrive
    instance = fixed_instance(pick)
    if probability >= 1.0:
        if instance is not None:

            def call_one(k: int, done: Cont) -> None:
                now = env._now
                if now >= warmup:
                    st.arrivals += 1
                if not arrive(instance, k, now, done):
                    done(False)

            return call_one

        at = least_connections_of(pick) if INLINE else None
        if at is not None:
            least = min  # a local: the compiled path looks a builtin up at each use

            def call_least(k: int, done: Cont) -> None:
                # `call` with the least-connections pick inlined (the same instance)
                now = env._now
                if now >= warmup:
                    st.arrivals += 1
                if not arrive(at.index(least(at)), k, now, done):
                    done(False)

            return call_least

        def call(k: int, done: Cont) -> None:
            now = env._now
            if now >= warmup:
                st.arrivals += 1
            if not arrive(pick(k), k, now, done):
                done(False)

        return call

    def maybe(k: int, done: Cont) -> None:
        if uniform() >= probability:
            done(True)
            return
        now = env._now
        if now >= warmup:
            st.arrivals += 1
        if not arrive(pick(k) if instance is None else instance, k, now, done):
            done(False)

    return maybe


def inline_target(st: Station, pick: Pick) -> tuple[Station, Clock, float, Arrive, int] | None:
    """(station, env, warmup, arrive, instance) for a caller that runs `call_one` of
    `direct_runner` inline: the callee has nothing in front of `arrive` and `pick` always picks
    one instance; None otherwise."""
    instance = fixed_instance(pick)
    if not INLINE or st.enter is not st.plain_enter or instance is None:
        return None
    return st, st.env, st.warmup, st.arrive, instance


def direct_enter(st: Station, pick: Pick) -> Callable[[int, Cont], bool] | None:
    """`enter(k, pick, cont)` with `pick` bound and the plain enter inlined (for an entry
    class); None when something stands in front of `arrive`."""
    if st.enter is not st.plain_enter:
        return None
    env, warmup, arrive = st.env, st.warmup, st.arrive
    instance = fixed_instance(pick)

    if instance is not None:

        def enter_one(k: int, cont: Cont) -> bool:
            now = env._now
            if now >= warmup:
                st.arrivals += 1
            return arrive(instance, k, now, cont)

        return enter_one

    def enter(k: int, cont: Cont) -> bool:
        now = env._now
        if now >= warmup:
            st.arrivals += 1
        return arrive(pick(k), k, now, cont)

    return enter


def rate_limited(st: Station, enter: Enter, limit: RateLimit) -> Enter:
    """A token bucket in front of the tier: `rate` tokens a second, at most `burst` banked."""
    env, warmup = st.env, st.warmup
    bucket = [float(limit.burst), 0.0]  # tokens, when last filled
    refused = [0]  # by the rate limit, in the window (also in the station's arrivals, rejected)

    def record(run: TierRun) -> None:
        run.rate_limited = refused[0]

    st.recorders.append(record)

    def limited(k: int, pick: Pick, cont: Cont) -> bool:
        now = env._now
        tokens = min(float(limit.burst), bucket[0] + limit.rate * (now - bucket[1]))
        bucket[1] = now
        if tokens >= 1.0 - 1e-9:  # a whole token, give or take the clock's rounding
            bucket[0] = max(tokens - 1.0, 0.0)
            return enter(k, pick, cont)
        bucket[0] = tokens
        if now >= warmup:
            st.arrivals += 1
            st.rejected += 1
            refused[0] += 1
        return False

    return limited


def pooled(st: Station, arrive: Callable[[int, int, float, Cont], bool]) -> Enter:
    """A database's connection pool in front of its instances: size in flight, FIFO rest."""
    env, tier = st.env, st.tier
    assert tier.pool is not None
    size = tier.pool.size
    max_waiting = tier.pool.max_waiting
    pool_timeout = tier.pool.timeout
    warmup = st.warmup
    later = _scheduler(env)
    waiters: deque[_PoolWaiter] = deque()
    in_use = waiting = 0
    overflow_limit = waiting_limit(tier)
    rejected = zero_waits = 0  # refused by the pool (also in the station's `rejected`)
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
            st.rejected += 1
        entry.cont(False)

    on_expire = (expire,)

    def enter(k: int, pick: Pick, cont: Cont) -> bool:
        nonlocal in_use, waiting, rejected, zero_waits
        now = env._now
        counted = now >= warmup
        if counted:
            st.arrivals += 1
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
                st.rejected += 1
            return False
        if waiting >= overflow_limit:
            if counted:
                rejected += 1
                st.rejected += 1
                st.overflow += 1
            return False
        entry = _PoolWaiter(now, k, pick, cont)
        waiters.append(entry)
        waiting += 1
        if pool_timeout is not None:
            later(pool_timeout, on_expire, entry)
        return True

    def record(run: TierRun) -> None:
        # Requests still waiting for a connection at the end: their waits so far go in the
        # pool's wait (lower bounds), and they are part of the tier's backlog at the end.
        horizon = st.horizon
        waited = [horizon - entry.arrived for entry in waiters if entry.live]
        run.pool_rejected = rejected
        run.pool_wait = wait_recorder.flush()
        _add_zeros(run.pool_wait, zero_waits)
        run.pool_wait.add(censored(waited, run.pool_wait))
        run.pool_waiting_at_end = len(waited)
        run.backlog_at_end += len(waited)
        run.oldest_waiting = max(run.oldest_waiting, max(waited, default=0.0))

    st.recorders.append(record)
    st.waiting_ahead.append(lambda: waiting)
    return enter


def published(st: Station, arrive: Callable[[int, int, float, Cont], bool]) -> Enter:
    """A queue tier: the caller spends publish_time, then the message joins the one FIFO."""
    env, tier, warmup = st.env, st.tier, st.warmup
    later = _scheduler(env)
    publish_time = tier.publish_time
    publish: Draw | None = None
    if publish_time is not None and not (publish_time.is_constant and publish_time.mean == 0):
        publish = _distribution_draw(publish_time, st.window.tier_rng(tier.name, streams.PUBLISH))
    age_recorder = Recorder()
    record_age: Callable[[float], None] = age_recorder.record
    flush_age: Callable[[], Histogram | None] = age_recorder.flush
    age_log: AgeLog | None = None
    if st.window.series is not None:  # message ages per bucket too (engine/timeseries.py)
        age_log = AgeLog(st.window.series.tiers[tier.index], st.window.series.bucket)
        record_age, flush_age = _ages_per_bucket(env, age_log, age_recorder)
    max_retries = tier.max_retries
    # Every message published and not yet done (consumed, or failed for good): its
    # continuation -> when it was first published. What is left at the end is unfinished.
    unconsumed: dict[Cont, float] = {}
    redelivery = _Redelivery(st, arrive, record_age, unconsumed)

    def enqueue(k: int) -> bool:
        now = env._now
        if now >= warmup:
            st.arrivals += 1

        if max_retries:
            delivery = _Delivery(redelivery, k, now, max_retries)
            unconsumed[delivery] = now
            if arrive(0, k, now, delivery):
                return True
            unconsumed.pop(delivery, None)
            return False

        consumed = _Consumed(redelivery, now)
        unconsumed[consumed] = now
        if arrive(0, k, now, consumed):
            return True
        unconsumed.pop(consumed, None)
        return False

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

    def record(run: TierRun) -> None:
        # Messages still waiting for a consumer at the end, and those a consumer holds (its
        # work or its calls not done): their ages so far (lower bounds), counted at the end
        # (in the series' last bucket). A redelivered message is as old as its first publish.
        horizon = st.horizon
        ages = [
            horizon - (entry.cont.enqueued if type(entry.cont) is _Delivery else entry.arrived)
            for entry in st.left_waiting
        ]
        waiting = {id(entry.cont) for entry in st.left_waiting}
        held = [horizon - t for cont, t in unconsumed.items() if id(cont) not in waiting]
        run.in_service_at_end = len(held)
        ages += held
        for age in censored(ages, age_recorder.flush()).tolist():
            age_recorder.record(age)
            if age_log is not None:
                age_log.record(horizon, age)
        run.age = flush_age()
        run.redeliveries = st.redeliveries
        run.dead_letters = st.dead_letters

    st.recorders.append(record)
    return enter


def _ages_per_bucket(
    env: Clock, ages: AgeLog, recorder: Recorder
) -> tuple[Callable[[float], None], Callable[[], Histogram | None]]:
    """(record an age, flush): the whole-run histogram and the per-bucket ones of the series."""
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


class _Redelivery:
    """A queue tier's redelivery of failed messages (`max_retries`), counted on its station."""

    __slots__ = ("arrive", "record_age", "st", "unconsumed")

    def __init__(
        self,
        st: Station,
        arrive: Callable[[int, int, float, Cont], bool],
        record_age: Callable[[float], None],
        unconsumed: dict[Cont, float],
    ) -> None:
        self.st = st
        self.arrive = arrive
        self.record_age = record_age
        self.unconsumed = unconsumed  # messages not done yet (`published`)


class _Consumed:
    """The answer to one message of a queue tier without `max_retries`: done (either way), it
    leaves the tier's unconsumed messages and, in the window, records its age.

    An object rather than a closure: a closure that removes itself from the dict would refer to
    itself, a reference cycle per message left to the garbage collector (measured: 30% more
    CPU time on a queue of 120,000 messages)."""

    __slots__ = ("enqueued", "queue")

    def __init__(self, queue: _Redelivery, enqueued: float) -> None:
        self.queue = queue
        self.enqueued = enqueued

    def __call__(self, ok: bool) -> None:
        queue = self.queue
        queue.unconsumed.pop(self, None)
        now = queue.st.env._now
        if now >= queue.st.warmup:
            queue.record_age(now - self.enqueued)


class _Delivery:
    """One message of a queue tier with `max_retries`: a failed consumption is redelivered (to
    the back of the queue) up to `max_retries` times, then the message is dead-lettered."""

    __slots__ = ("enqueued", "k", "left", "queue")

    def __init__(self, queue: _Redelivery, k: int, enqueued: float, max_retries: int) -> None:
        self.queue = queue
        self.k = k
        self.enqueued = enqueued
        self.left = max_retries

    def __call__(self, ok: bool) -> None:
        queue = self.queue
        st = queue.st
        now = st.env._now
        counted = now >= st.warmup
        if not ok and self.left > 0:
            self.left -= 1
            if counted:
                st.redeliveries += 1
            if queue.arrive(0, self.k, now, self):
                return
        queue.unconsumed.pop(self, None)
        if not ok:
            if counted:
                st.dead_letters += 1
            return
        if counted:
            queue.record_age(now - self.enqueued)
