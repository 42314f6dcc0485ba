"""One tier's runtime (`_TierSim`): instances, waiting lines, features, and its figures."""

from __future__ import annotations

from collections.abc import Callable

import simpy

from capsim.engine import streams
from capsim.engine.events import (
    admission,
    autoscaling,
    balancing,
    caches,
    consumers,
    faults,
    instances,
    serverless,
    spot,
)
from capsim.engine.events.draws import (
    _buffered,
)
from capsim.engine.events.resilience import _ResponseTimes
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick, Runner
from capsim.engine.events.station import Station
from capsim.engine.events.windows import _Window
from capsim.engine.histogram import Histogram
from capsim.engine.result import TierRun
from capsim.model.types import (
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
        return balancing.pick(self, algorithm)

    def cold_cache(self) -> Draw:
        """A cold LRU's lookup per request: 1.0 on a hit, 0.0 on a miss (`caches`)."""
        return caches.cold_cache(self)

    def retry_uniform(self) -> Draw:
        """Uniforms for the jitter of this tier's retries (its own stream)."""
        if self._retry_draw is None:
            rng = self._window.tier_rng(self.tier.index, streams.RETRY)
            self._retry_draw = _buffered(rng.random)
        return self._retry_draw

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
        bind_hooks = instances.install(st)
        faults.install(st)
        interrupted = spot.install(st)
        autoscaling.install(st)
        serverless.install(st)
        consumers.install(st)
        bind_hooks()  # the hooks are final: the hot path holds them from here (`instances`)
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
            self.enter = admission.pooled(self, env, tier, window, arrive)
        if tier.is_async:
            self.enter = admission.published(self, env, tier, window, arrive)
        if tier.rate_limit is not None:
            self.enter = admission.rate_limited(self, self.enter, tier.rate_limit, warmup)
        self.open_window = st.open_window
        self.snapshot = st.snapshot
        self.record_series = st.record_series
        self.sample_queue = st.sample_queue
        return spot.recorded(st, interrupted, st.record)
