"""One tier's runtime (`_TierSim`): its Station with the features installed, as callers see it."""

from __future__ import annotations

from collections.abc import Callable

from capsim.engine import streams
from capsim.engine.events import (
    admission,
    autoscaling,
    balancing,
    caches,
    consumers,
    faults,
    groups,
    instances,
    serverless,
    spot,
)
from capsim.engine.events.clock import Clock
from capsim.engine.events.draws import _buffered
from capsim.engine.events.resilience import _ResponseTimes
from capsim.engine.events.signatures import Draw, Enter, Pick, Runner
from capsim.engine.events.station import Station
from capsim.engine.events.windows import _Window
from capsim.engine.result import TierRun
from capsim.model.types import Tier


class _TierSim:
    """One tier as callers and the run see it: `enter`, `pick`, its Station (`station`), and the
    state it keeps as a caller (response times for hedges, bulkheads, retry jitter)."""

    def __init__(self, env: Clock, tier: Tier, window: _Window, classes: int) -> None:
        self.tier = tier
        self.env = env
        self.runners: list[Runner | None] = [None] * classes
        # This tier as a caller: (callee, quantile) -> the callee's response times it has seen.
        self.response_times: dict[tuple[int, float], _ResponseTimes] = {}
        self._retry_draw: Draw | None = None
        self.bulkheads: dict[int, list[int]] = {}  # callee -> calls in flight to it
        self._window = window
        self.routing_draw = _buffered(window.tier_rng(tier.name, streams.ROUTING).random)
        self.scaling: list[tuple[float, int, int]] = []  # autoscaling: (time, from, to)
        self.routable: list[bool] | None = None  # balancing's view, when instances can die
        self.spot_replacement: spot.Replacement | None = None  # `spot`, read by `autoscaling`
        # Whether instance i serves again when its faults end (`autoscaling`: not when switched
        # off meanwhile); None: always.
        self.revives: Callable[[int], bool] | None = None
        # What instance i takes with it when it dies and brings back when it serves again
        # (`consumer_scaling`: a scaled queue's one instance holds all its consumers); None:
        # itself only.
        self.killed: Callable[[int], None] | None = None
        self.revived: Callable[[int], None] | None = None
        self.cache_lookups = self.cache_hits = 0  # cold cache, in the window
        self.cache_series: tuple[list[int], list[int]] | None = None  # lookups, hits per bucket
        self.station = self._build(window)

    def pick(self, algorithm: str | None) -> Pick:
        """The instance chooser for requests balanced by `algorithm` (None: the tier's own)."""
        return self.station.pick(algorithm)

    def cold_cache(self) -> Draw:
        """A cold LRU's lookup per request: 1.0 on a hit, 0.0 on a miss (`caches`)."""
        return caches.cold_cache(self)

    def retry_uniform(self) -> Draw:
        """Uniforms for the jitter of this tier's retries (its own stream)."""
        if self._retry_draw is None:
            rng = self._window.tier_rng(self.tier.name, streams.RETRY)
            self._retry_draw = _buffered(rng.random)
        return self._retry_draw

    def _build(self, window: _Window) -> Station:
        """The tier's Station with its features installed, in the Station's contract order."""
        st = Station(self, window, self.runners)
        bind_hooks = instances.install(st)
        faults.install(st)
        spot.install(st)
        balancing.install(st)
        autoscaling.install(st)
        serverless.install(st)
        consumers.install(st)
        self.groups = groups.install(st)  # a database with replicas: per-group figures
        bind_hooks()  # the hooks are final: the hot path holds them from here (`instances`)
        admission.install(st)
        st.recorders.append(self._record_scaling_and_cache)
        self.enter: Enter = st.enter
        return st

    def _record_scaling_and_cache(self, run: TierRun) -> None:
        """The figures autoscaling and cold caches count here (their modules keep them on the
        tier, as `scaling` and `cache_lookups`/`cache_hits`)."""
        run.scaling = list(self.scaling)
        run.cache_lookups = self.cache_lookups
        run.cache_hits = self.cache_hits

    # -- what the run calls on every tier ----------------------------------------------------
    def open_window(self) -> None:
        self.station.open_window()

    def snapshot(self) -> None:
        self.station.snapshot()

    def sample_queue(self) -> None:
        self.station.sample_queue()
        if self.groups is not None:
            self.groups.sample_queue()

    def record_series(self) -> None:
        self.station.record_series()

    def record(self) -> TierRun:
        return self.station.record()
