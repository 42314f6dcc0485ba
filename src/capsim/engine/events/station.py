"""A Station: one tier's instances at run time, as named state, and the hooks features wrap."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from capsim.engine import streams
from capsim.engine.events.clock import _scheduler
from capsim.engine.events.disciplines import taker, waiting_line
from capsim.engine.events.draws import _distribution_draw, _logged_draw, _slowed_draw
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick, Runner
from capsim.engine.events.windows import _add_zeros, _Window
from capsim.engine.histogram import Histogram, Recorder, censored
from capsim.engine.limits import waiting_limit
from capsim.engine.result import TierRun
from capsim.engine.timeseries import IntervalLog
from capsim.model.types import Fault

if TYPE_CHECKING:
    from capsim.engine.events.lanes import Decision, HeldUntil
    from capsim.engine.events.resilience import CallCounts
    from capsim.engine.events.tier import _TierSim

#: arrive(instance, class, now, cont) -> admitted (False: refused, `cont` never called).
Arrive = Callable[[int, int, float, Cont], bool]


class Waiting:
    """A request waiting for a worker: when it arrived, its class, its continuation, whether it
    still waits (`live`: False once started, withdrawn, dropped or given up on) and where it
    waits (`place`: the instance, or a queue consumer's partition)."""

    __slots__ = ("arrived", "cont", "k", "live", "place")

    def __init__(self, arrived: float, k: int, cont: Cont, place: int) -> None:
        self.arrived = arrived
        self.k = k
        self.cont = cont
        self.live = True
        self.place = place


class Station:
    """One tier's instances at run time: workers, waiting lines, live instances, counters and the
    time integrals of the number waiting, of held workers and of live instances.

    The extension contract. A feature is a module with `install(station, ...)`, called by
    `_TierSim._build` in this order: `instances` (the plain tier: workers and a waiting line per
    instance), then `faults`, `spot` (interruptions of spot instances), `balancing` (choosing
    an instance; health checks), `autoscaling`,
    `serverless`, `consumers`, `groups` (a database with replicas: its primaries and replicas
    measured apart), and, once those hooks are final, `admission` (what stands in
    front of `arrive`: the tier's `enter`). A feature may wrap or replace these hooks, reading
    the previous one first and calling it where it should:

    - `arrive(i, k, now, cont) -> bool`: a request for instance i; False refuses it at once.
    - `release(i)`: a worker of instance i is free (its work and, if blocking, its calls done).
    - `on_work_done`: the callbacks run with `(i, k, cont)` when a worker's own work ends.
    - `start(i, k, arrived, now, cont)`: a worker of instance i starts on a request.
    - `enter(k, pick, cont) -> bool`: what callers call (`admission` sets the first one: count
      the arrival, pick the instance, `arrive`; then the pool, publishing, rate limit).
    - `pick(algorithm) -> Pick`: the instance chooser for an algorithm (`balancing`).

    Hooks are called through the station (`station.release(i)`), so a wrapper installed later
    is seen by every caller; the hooks are final once every feature is installed, and the hot
    path of `instances` then holds them in its own variables (`bind`, measured).

    A feature counts only inside the measurement window (`now >= warmup`), changes the
    integrals only through `queue_moved`, `held_moved` and `count_live` (or the same update
    written inline on a hot path, with a note), and draws only from its own stream of
    `window.tier_rng(tier.name, role)`. Every request that reaches the tier's admission counts in
    the station's `arrivals`, every refusal or failure in its `rejected` (whichever feature refused
    it), so that the tier's totals can be read at any time. A feature with figures of its own
    keeps them as named attributes of its own object (or its closure) and appends its
    `record(run)` to `recorders`: `Station.record` fills the tier's own figures into a
    `TierRun`, then calls each recorder in order, which sets the feature's fields
    (`run.pool_wait = ...`). Call-level counters (retries, timeouts, breakers, bulkheads,
    hedges) are counted on the callee's station by `resilience.CallCounts`.

    The hot path keeps the integral of held workers (`held`, `held_area`: `integrals()[1]`) up
    to date only on tiers where `instances.held_is_read` says something reads it (blocking
    tiers, autoscaling, time series, faults, queues): a feature that reads it elsewhere adds
    its condition there. A call to a tier whose `enter` is still `plain_enter` (no admission
    in front of `arrive`) may be fused into its caller (`admission.direct_runner`), so a
    feature that must see every arrival wraps `arrive`, not the plain `enter`.

    The fast lane (`lanes`) is part of the contract. A class's own arrival that meets a free
    worker at a plain entry tier and makes no call there is answered at once, with no event for
    the end of its work: its worker is held in `held_until` (not counted in `at` or `held`;
    its held time of a blocking tier is in `lane_held`) until a request needing a worker takes
    it back (`held_until.reclaim`, done by `instances.arrive`). So a feature that observes a
    worker between the start and the end of its work wraps one of the hooks (the lane then
    stays off: it runs only where the four hooks are still `base_hooks`) or is excluded by
    name in `lanes.lane_tier`; code that reads `free` outside `arrive` reclaims first.

    Each instance's waiting line is of the tier's discipline (`disciplines.waiting_line`:
    FIFO, LIFO, priorities) and holds `Waiting` entries. A feature that keeps waiting entries
    in lines of its own (a queue's partitions, a serverless activator) appends a function
    giving them to `waiting_elsewhere`: what still waits at the window's end is counted from
    every line (`still_waiting`, docs/results.md#work-left-at-the-end-of-the-window). Timers go through the clock
    (`clock._scheduler`, or `clock.schedule_of` on a measured hot path).
    """

    __slots__ = (
        "alive",
        "arrivals",
        "arrive",
        "at",
        "base_hooks",
        "before_window",
        "blocking",
        "busy",
        "busy_log",
        "call_counts",
        "cancelled",
        "completed",
        "concurrency",
        "counts",
        "dead_letters",
        "decisions",
        "down",
        "drop_abandoned",
        "dropped",
        "enter",
        "env",
        "epoch",
        "error_now",
        "faults",
        "free",
        "held",
        "held_area",
        "held_since",
        "held_until",
        "horizon",
        "lane_held",
        "later",
        "left_waiting",
        "live",
        "live_area",
        "live_count",
        "live_since",
        "max_queue",
        "on_work_done",
        "overflow",
        "overflow_limit",
        "phase_marks",
        "pick",
        "plain_enter",
        "queue_area",
        "queue_max",
        "queue_since",
        "queue_timeout",
        "recorders",
        "redeliveries",
        "rejected",
        "release",
        "runners",
        "series",
        "servers",
        "service",
        "sim",
        "slow",
        "snapshots",
        "sole_entry",
        "start",
        "takes",
        "tier",
        "timed_out",
        "trace",
        "wait_recorder",
        "waiting",
        "waiting_ahead",
        "waiting_elsewhere",
        "waiting_now",
        "warmup",
        "window",
        "withdraw",
        "work_done_fn",
        "zero_waits",
    )

    # The hooks (see above); `instances.install` sets the first of each.
    arrive: Arrive
    release: Callable[[int], None]
    start: Callable[[int, int, float, float, Cont], None]
    on_work_done: tuple[Callable[[Any], None], ...]
    # What the schedule calls at the end of a worker's work: every `on_work_done` hook with the
    # work's `(i, k, cont)` (set by `instances` when the hooks are final).
    work_done_fn: Callable[[Any], None]
    withdraw: Callable[[Waiting], bool]
    enter: Enter  # `admission.install` sets it
    plain_enter: Enter  # the first `enter`: `enter is plain_enter` when nothing wraps it
    pick: Callable[[str | None], Pick]  # `balancing.install` sets it
    # (arrive, release, start, on_work_done) as `instances.install` made them: a hook that is
    # still its base one is unwrapped (the fast lane, `lanes.lane_tier`, needs all four).
    base_hooks: tuple[object, ...]

    def __init__(self, sim: _TierSim, window: _Window, runners: list[Runner | None]) -> None:
        env, tier = sim.env, sim.tier
        self.sim, self.env, self.tier, self.window = sim, env, tier, window
        self.warmup, self.horizon = window.warmup, window.horizon
        servers = tier.servers
        if tier.autoscale is not None:  # a slot for every instance it may grow to
            servers = max(servers, tier.autoscale.max)
        self.servers = servers
        self.concurrency = tier.concurrency
        self.blocking = tier.blocking
        self.max_queue = tier.max_queue
        self.queue_timeout = tier.timeout
        self.overflow_limit = waiting_limit(tier)
        self.drop_abandoned = tier.drop_abandoned
        self.runners = runners
        self.later = _scheduler(env)
        # Per instance: free workers, the waiting line, entries still waiting in it, requests at
        # it (waiting + in service + blocked), alive, faults holding it down, deaths so far.
        self.free = [tier.concurrency] * servers
        self.waiting: list[Any] = [waiting_line(tier) for _ in range(servers)]
        self.takes = [taker(tier, line) for line in self.waiting]  # the discipline, per line
        self.live = [0] * servers
        self.at = [0] * servers
        self.alive = [True] * servers
        self.down = [0] * servers
        self.epoch = [0] * servers  # bumped at each death: work started before it is void
        self.faults: list[Fault] = [f for f in window.faults if f.tier == tier.index]
        self.slow = [1.0]  # the product of the active slowdowns
        self.error_now = [0.0]  # the chance that finished work answers an error
        self.series = window.series.tiers[tier.index] if window.series is not None else None
        self.busy_log: IntervalLog | None = None
        self.cancelled = IntervalLog(np.zeros(0), np.zeros(1))
        self.service = self._service_draws()
        # Counters over the window.
        self.arrivals = self.completed = self.rejected = self.timed_out = 0
        self.overflow = 0  # turned away at the internal bound on waiting requests
        self.dropped = 0  # dropped from the line because the caller had given up
        self.redeliveries = 0  # queue with max_retries: failed messages put back for another try
        self.dead_letters = 0  # queue with max_retries: messages that failed their last try
        self.busy = 0.0
        self.zero_waits = 0
        self.wait_recorder = Recorder()
        # Time integrals (from `*_since`) of the number waiting, held workers, live instances.
        self.waiting_now = self.queue_max = 0
        self.queue_area = self.queue_since = 0.0
        self.held = 0
        self.held_area = self.held_since = 0.0
        self.live_count: float = float(servers)  # a float, compiled too
        self.live_area = self.live_since = 0.0
        self.before_window = [0.0, 0.0, 0.0]  # the three integrals before the window opened
        self.snapshots: list[tuple[float, float, float]] = []
        self.counts: list[tuple[int, int, int, int]] = []  # `counted()` at each snapshot
        self.trace: list[int] = []
        self.recorders: list[Callable[[TierRun], None]] = []  # features' record(run), in order
        self.call_counts: CallCounts | None = None  # made by the first call site to this tier
        # The fast lane (`lanes`): how each class's calls here can be decided at once (set with
        # the runners), and the workers held by requests it answered (made by the first lane).
        self.decisions: list[Decision | None] | None = None
        self.held_until: HeldUntil | None = None
        self.sole_entry = False  # only one class's arrivals reach the tier (`lanes.sole_entries`)
        self.lane_held = 0.0  # worker-seconds in the window held by requests the lane answered
        # Lines a feature keeps instead of `waiting` (a queue's partitions, a serverless tier's
        # activator): each gives its entries, to be counted at the window's end.
        self.waiting_elsewhere: list[Callable[[], Iterable[Waiting]]] = []
        self.left_waiting: list[Waiting] = []  # still waiting at the end (`record` finds them)
        # Counts of requests waiting in front of the instances (a database pool's line for a
        # connection): in the queue trace, so that a line growing there is seen as growth.
        self.waiting_ahead: list[Callable[[], int]] = []
        # The waits recorded so far at each phase cut of a run with faults (`mark_phase`).
        self.phase_marks: list[_WaitMark] = []

    def _service_draws(self) -> list[Draw]:
        """One service-time draw per class; one stream, one buffer per distinct distribution.

        The list is changed in place by features that wrap the draws (autoscaling counts them),
        so that every hook holding it sees the change."""
        tier, window = self.tier, self.window
        service_rng = window.tier_rng(tier.name, streams.SERVICE)
        draws: dict[int, Draw] = {}
        service: list[Draw] = []
        for work in tier.work:
            key = id(work.service_time)
            if key not in draws:
                draws[key] = _distribution_draw(work.service_time, service_rng)
            service.append(draws[key])
        if any(f.slowdown != 1.0 for f in self.faults):
            service = [_slowed_draw(draw, self.slow) for draw in service]
        if self.series is not None and window.series is not None:
            # Every service time is drawn at the moment its work starts: log it there, so the
            # fast path stays free of bookkeeping when no time series is asked for.
            self.busy_log = IntervalLog(self.series.busy_time, window.series.edges)
            self.cancelled = IntervalLog(np.zeros(self.series.busy_time.size), window.series.edges)
            service = [_logged_draw(draw, self.env, self.busy_log) for draw in service]
        return service

    # -- the integrals, each update written once ----------------------------------------------
    def queue_moved(self, now: float, change: int) -> None:
        """The number waiting changes by `change` at `now` (the integral first)."""
        self.queue_area += self.waiting_now * (now - self.queue_since)
        self.queue_since = now
        self.waiting_now += change
        if self.waiting_now > self.queue_max:
            self.queue_max = self.waiting_now

    def held_moved(self, now: float, change: int) -> None:
        """The number of held workers changes by `change` at `now` (the integral first)."""
        self.held_area += self.held * (now - self.held_since)
        self.held_since = now
        self.held += change

    def count_live(self, change: float) -> None:
        """The number of live instances changes by `change` now (a draining consumer of a
        scaled queue leaves a worker at a time: a fraction of an instance)."""
        now = self.env._now
        self.live_area += self.live_count * (now - self.live_since)
        self.live_since = now
        self.live_count += change

    def live_integral(self, now: float) -> float:
        return self.live_area + self.live_count * (now - self.live_since)

    def integrals(self, now: float) -> tuple[float, float, float]:
        """(waiting, held, live instances) integrals from t = 0 to now."""
        before = self.before_window
        return (
            before[0] + self.queue_area + self.waiting_now * (now - self.queue_since),
            before[1] + self.held_area + self.held * (now - self.held_since),
            self.live_integral(now),
        )

    def open_window(self) -> None:
        """Counters only count inside the window already; the time integrals restart here."""
        warmup = self.warmup
        before = self.before_window
        before[0] += self.queue_area + self.waiting_now * (warmup - self.queue_since)
        before[1] += self.held_area + self.held * (warmup - self.held_since)
        before[2] = self.live_integral(warmup)
        self.queue_area = self.held_area = 0.0
        self.queue_since = self.held_since = warmup
        self.queue_max = self.waiting_now

    def counted(self, now: float) -> bool:
        """Whether something happening at `now` is counted (inside the measurement window)."""
        return now >= self.warmup

    def refuse(self, now: float) -> bool:
        """Count a request refused at once; False, to be returned by `arrive`."""
        if now >= self.warmup:
            self.rejected += 1
        return False

    def time_out(self, entry: Waiting) -> None:
        """A waiting entry's timeout fired: it leaves the line and its request fails."""
        now = self.env._now
        self.queue_moved(now, -1)
        if now >= self.warmup:
            self.rejected += 1
            self.timed_out += 1
        entry.cont(False)

    # -- at the end of the run -----------------------------------------------------------------
    def snapshot(self) -> None:
        self.snapshots.append(self.integrals(self.env._now))
        self.counts.append(self.counted_so_far())

    def counted_so_far(self) -> tuple[int, int, int, int]:
        """(arrivals, completed, errors, dead letters) counted so far, as `record` counts them."""
        return (self.arrivals, self.completed, self.rejected, self.dead_letters)

    def sample_queue(self) -> None:
        waiting = self.waiting_now
        for ahead in self.waiting_ahead:
            waiting += ahead()
        self.trace.append(waiting)

    def record_series(self) -> None:
        series = self.series
        if series is None:
            return
        assert self.busy_log is not None
        self.busy_log.flush()
        self.cancelled.flush()
        series.busy_time -= self.cancelled.into
        cumulative = np.asarray([(0.0, 0.0, 0.0), *self.snapshots])
        per_bucket = np.diff(cumulative, axis=0)
        series.queue_time[:] = per_bucket[:, 0]
        series.occupied_time[:] = per_bucket[:, 1]
        series.present_time[:] = per_bucket[:, 0] + per_bucket[:, 1]
        series.instance_time[:] = per_bucket[:, 2]
        series.add_counts(np.diff(np.asarray([(0, 0, 0, 0), *self.counts]), axis=0))
        cache_series = self.sim.cache_series
        if cache_series is not None:
            series.lookups = np.asarray(cache_series[0], dtype=float)
            series.hits = np.asarray(cache_series[1], dtype=float)

    def still_waiting(self) -> list[Waiting]:
        """The entries waiting for a worker now, in every line (given-up ones excluded)."""
        lines = itertools.chain(
            (entry for line in self.waiting for entry in _entries(line)),
            *(source() for source in self.waiting_elsewhere),
        )
        return [entry for entry in lines if entry.live]

    def mark_phase(self) -> None:
        """A phase of the run ends now (`model.phases.cuts`): note the waits recorded so far, and
        start the next phase's max and min afresh (`record` restores the window's)."""
        wait = self.wait_recorder.flush()
        self.phase_marks.append(_WaitMark(wait, self.zero_waits))
        wait.max, wait.min = 0.0, math.inf

    def record(self) -> TierRun:
        """The tier's own figures over the window, then each feature's (`recorders`).

        Requests still waiting at the end have waited at least until then: that wait goes in
        `wait` (a lower bound), and they are counted in `backlog_at_end` (`left_waiting` keeps
        them for the recorders: a queue's message ages)."""
        tier, horizon = self.tier, self.horizon
        end_queue = self.queue_area + self.waiting_now * (horizon - self.queue_since)
        end_held = self.held_area + self.held * (horizon - self.held_since)
        wait = self.wait_recorder.flush()
        self.left_waiting = self.still_waiting()
        waited = [horizon - entry.arrived for entry in self.left_waiting]
        end_mark = _WaitMark(wait, self.zero_waits) if self.phase_marks else None
        if end_mark is not None:  # the window's max and min, over every phase
            wait.max = max(mark.max for mark in [*self.phase_marks, end_mark])
            wait.min = min(mark.min for mark in [*self.phase_marks, end_mark])
        _add_zeros(wait, self.zero_waits)
        left = censored(waited, wait)
        wait.add(left)
        run = TierRun(
            workers=tier.workers,
            arrivals=self.arrivals,
            completed=self.completed,
            rejected=self.rejected,
            timed_out=self.timed_out,
            busy_time=self.busy,
            occupied_time=end_held + self.lane_held if self.blocking else self.busy,
            queue_time=end_queue,
            queue_max=self.queue_max,
            wait=wait,
            queue_trace=np.asarray(self.trace, dtype=float),
        )
        run.overflow = self.overflow
        run.dropped = self.dropped
        run.backlog_at_end = len(waited)
        run.oldest_waiting = max(waited, default=0.0)
        if end_mark is not None:
            run.phase_waits = _phases_between([*self.phase_marks, end_mark], left)
        if self.faults or tier.autoscale is not None:
            live = self.live_integral(horizon) - self.before_window[2]
            run.live_worker_time = live * tier.concurrency
        for record in self.recorders:
            record(run)
        return run


class _WaitMark:
    """A station's waits recorded up to a phase cut (cumulative counts, sum, zero waits) and
    the largest and smallest since the previous cut."""

    __slots__ = ("counts", "max", "min", "n", "total", "zeros")

    def __init__(self, wait: Histogram, zeros: int) -> None:
        self.counts = wait.counts.copy()
        self.n, self.total, self.zeros = wait.n, wait.total, zeros
        self.max, self.min = wait.max, wait.min


def _phases_between(marks: list[_WaitMark], left: np.ndarray) -> list[Histogram]:
    """Each phase's waits: the difference of consecutive marks (the first from nothing), its
    own max and min, its zero waits; the censored waits of those still waiting at the end
    (`left`) in the last phase."""
    phases: list[Histogram] = []
    previous: _WaitMark | None = None
    for mark in marks:
        phase = Histogram()
        phase.counts = mark.counts - (previous.counts if previous is not None else 0)
        phase.n = mark.n - (previous.n if previous is not None else 0)
        phase.total = mark.total - (previous.total if previous is not None else 0.0)
        if phase.n:
            phase.max, phase.min = mark.max, mark.min
        _add_zeros(phase, mark.zeros - (previous.zeros if previous is not None else 0))
        phases.append(phase)
        previous = mark
    phases[-1].add(left)
    return phases


def _entries(line: Any) -> Iterable[Waiting]:
    """The entries of one waiting line: a deque, or a priority line's levels."""
    levels = getattr(line, "levels", None)
    return itertools.chain(*levels) if levels is not None else line
