"""RunResult: what one replication measured, as plain picklable data (numpy arrays, counters)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capsim.engine.histogram import Histogram
from capsim.engine.timeseries import Series


@dataclass
class ClassRun:
    """One request class over the measurement window [warmup, warmup + duration).

    `arrivals` counts requests that arrived in the window; `completed` those of them that
    finished successfully inside the window (their latency is in `latency`); `errors` those that
    failed (rejected, timed out, pool refused) inside the window; `unfinished` those still
    neither answered nor failed when the window ends. An unfinished request has waited at least
    its age at the end, so that age is in `latency` too, a lower bound (censored): `latency`
    holds `completed + unfinished` values. `oldest_unfinished` is the largest of those ages.
    """

    arrivals: int = 0
    completed: int = 0
    errors: int = 0
    latency: Histogram = field(default_factory=Histogram)
    unfinished: int = 0
    oldest_unfinished: float = 0.0


#: A database with replicas is two station groups: primaries (writes), replicas (reads).
GROUP_NAMES = ("primary", "replicas")


@dataclass
class TierRun:
    """One tier over the measurement window.

    Time integrals are over the window only: `busy_time` is worker-seconds spent on own work,
    `occupied_time` worker-seconds a worker was held (own work plus, for a blocking worker, the
    time it waits for its calls), `queue_time` request-seconds spent waiting for a worker (over
    all instances). `queue_trace` is the number waiting at `trace_times` (evenly spaced over the
    window), used to tell a growing queue from a stable one. `age` is a queue tier's message age
    (enqueue to done); `pool_wait` a database pool's wait for a connection.

    `backlog_at_end` counts the visits still waiting for a worker when the window ends (a
    queue's messages waiting for a consumer); each has waited at least until then, so its wait
    so far is in `wait` (and a message's age so far in `age`), a lower bound (censored).
    `oldest_waiting` is the longest of those waits.
    """

    workers: int = 0
    arrivals: int = 0
    completed: int = 0
    rejected: int = 0
    timed_out: int = 0
    busy_time: float = 0.0
    occupied_time: float = 0.0
    queue_time: float = 0.0
    queue_max: int = 0
    wait: Histogram = field(default_factory=Histogram)
    queue_trace: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trace_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    age: Histogram | None = None
    pool_wait: Histogram | None = None
    pool_rejected: int = 0
    overflow: int = 0  # turned away at the engine's bound on waiting requests (in `rejected`)
    retries: int = 0  # attempts to this tier that were retries (part of `arrivals`)
    call_timeouts: int = 0  # attempts to this tier its callers gave up on (the work went on)
    live_worker_time: float | None = None  # worker-seconds of live instances (None: all, always)
    scaling: list[tuple[float, int, int]] = field(default_factory=list)  # (time, from, to)
    rate_limited: int = 0  # refused by the tier's rate limit (part of `rejected`)
    dropped: int = 0  # dropped unstarted because the caller had given up (part of `rejected`)
    short_circuited: int = 0  # calls to this tier failed at once by an open circuit breaker
    bulkhead_rejected: int = 0  # calls to this tier refused by a caller's bulkhead
    redeliveries: int = 0  # queue with max_retries: failed messages tried again
    dead_letters: int = 0  # queue with max_retries: messages that failed every try
    hedged_calls: int = 0  # attempts to this tier made by calls with a hedge (first copies)
    hedges: int = 0  # hedge copies sent to this tier (part of `arrivals`)
    hedge_wins: int = 0  # hedged attempts whose answer came from a hedge copy
    hedges_cancelled: int = 0  # losing copies withdrawn from a queue before any work
    hedges_abandoned: int = 0  # losing copies a worker had: their work went on, answer ignored
    cold_starts: int = 0  # serverless tier: instances started for a request
    cache_lookups: int = 0  # cold cache: lookups in the window
    cache_hits: int = 0  # cold cache: hits in the window
    spot_interruptions: int = 0  # spot instances taken back in the window (docs/cost.md#spot)
    # A database with replicas: the same figures per station group ("primary", "replicas"):
    # workers, arrivals, completed, rejected, overflow, busy/occupied time, queue trace.
    groups: dict[str, TierRun] | None = None
    backlog_at_end: int = 0  # waiting for a worker at the window's end (in `wait`, censored)
    oldest_waiting: float = 0.0  # the longest wait among them, so far


@dataclass
class RunResult:
    """Everything one replication measured; `classes` and `tiers` are indexed like the model."""

    seed: int
    replication: int
    duration: float
    warmup: float
    classes: list[ClassRun]
    tiers: list[TierRun]
    engine_path: str  # "vectorised" | "events"
    engine_reason: str
    events: int = 0  # events (or requests, for the vectorised path) processed
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    series: Series | None = None  # figures per time bucket, when the model asks for them
