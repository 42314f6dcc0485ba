"""Call-level resilience: timeouts, retries, retry budgets, circuit breakers, bulkheads, hedges."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from capsim.engine.events.clock import Clock, _scheduler, _Timer
from capsim.engine.events.signatures import Cont, Pick
from capsim.engine.histogram import Histogram
from capsim.engine.result import TierRun
from capsim.model.types import (
    Call,
    CircuitBreaker,
    Retry,
)

if TYPE_CHECKING:
    from capsim.engine.events.station import Station, Waiting
    from capsim.engine.events.tier import _TierSim


#: A retry budget banks at most this many retries (and starts with them).
RETRY_TOKENS = 10.0


class CallCounts:
    """What call sites did to one callee in the window: its call-level counters.

    One per callee station that some guarded call reaches (`counts_at`), registered there as a
    recorder of its `TierRun` (`record`)."""

    __slots__ = (
        "bulkhead_rejected",
        "call_timeouts",
        "hedge_wins",
        "hedged_calls",
        "hedges",
        "hedges_abandoned",
        "hedges_cancelled",
        "retries",
        "short_circuited",
    )

    def __init__(self) -> None:
        self.retries = 0  # retry attempts that reached the callee
        self.call_timeouts = 0  # attempts to the callee that their callers gave up on
        self.short_circuited = 0  # calls an open circuit breaker failed at once
        self.bulkhead_rejected = 0  # calls refused by a caller's bulkhead
        self.hedged_calls = 0  # attempts made by a call with a hedge
        self.hedges = 0  # hedge copies sent
        self.hedge_wins = 0  # hedged attempts a hedge copy answered first
        self.hedges_cancelled = 0  # losing copies withdrawn from a queue before any work
        self.hedges_abandoned = 0  # losing copies a worker had: their work went on

    def record(self, run: TierRun) -> None:
        run.retries = self.retries
        run.call_timeouts = self.call_timeouts
        run.short_circuited = self.short_circuited
        run.bulkhead_rejected = self.bulkhead_rejected
        run.hedged_calls = self.hedged_calls
        run.hedges = self.hedges
        run.hedge_wins = self.hedge_wins
        run.hedges_cancelled = self.hedges_cancelled
        run.hedges_abandoned = self.hedges_abandoned


def counts_at(callee: Station) -> CallCounts:
    """The callee's call-level counters, made and registered at the first call site to it."""
    if callee.call_counts is None:
        callee.call_counts = CallCounts()
        callee.recorders.append(callee.call_counts.record)
    return callee.call_counts


class _Breaker:
    """A circuit breaker on one call site: closed, open, or half-open with a few probes.

    Closed: outcomes over the last `window` seconds are kept; once there are `min_calls` of
    them and the failed share reaches `error_rate`, it opens. Open: calls fail at once for
    `open_for`. Half-open: the next `probes` calls go through; if they all succeed it closes
    (forgetting the past), if one fails it opens again; calls beyond the probes fail at once.
    """

    CLOSED, OPEN, HALF_OPEN = range(3)

    def __init__(self, env: Clock, setting: CircuitBreaker) -> None:
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
        self.counts = counts_at(target.station)
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
            site.counts.call_timeouts += 1
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
                site.counts.short_circuited += 1
            self.failed()
            return
        if site.bulkhead is not None:
            if site.in_flight[0] >= site.bulkhead:
                if counted:
                    site.counts.bulkhead_rejected += 1
                self.failed()
                return
            site.in_flight[0] += 1
        if self.retried and counted:
            site.counts.retries += 1
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
        self.entry: Waiting | None = None
        self.withdraw: Callable[[Waiting], bool] | None = None

    def queued(self, entry: Waiting, withdraw: Callable[[Waiting], bool]) -> None:
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
            site.counts.hedged_calls += 1
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
            site.counts.hedges += 1
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
        at = self.site.target.station.at
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
        counted = site.env._now >= site.warmup
        if counted and winner is not self.copies[0]:
            site.counts.hedge_wins += 1
        for other in self.copies:
            if not other.live:
                continue
            other.live = False
            if other.withdraw is not None and other.withdraw(other.entry):  # type: ignore[arg-type]
                if counted:
                    site.counts.hedges_cancelled += 1
            elif counted:
                site.counts.hedges_abandoned += 1


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
