"""The resolved model: frozen, index-based, numpy-ready data that the engine runs.

Everything here is plain data. The scenario layer's pydantic objects are turned into these by
`capsim.model.build.build_model`; the engine never sees YAML or pydantic.

Conventions
-----------
* Tiers and classes are referred to by their index into `Model.tiers` / `Model.classes`.
* Every time is float seconds, every rate per second.
* A tier's behaviour for a request of class ``k`` is ``tier.work[k]``: first the tier's own
  work (one worker busy for ``service_time``), then its ``calls`` one step after another.
* Tier-type specifics are lowered into the same shape wherever possible:
  - load_balancer: ``work[k].calls`` is ``(Call(backend, algorithm=<lb algorithm>),)``;
  - cache / cdn: ``work[k].calls`` starts with ``Call(on_miss_or_shield, probability=1-hit)``;
    an origin shield is a synthetic tier named ``<cdn>.origin_shield`` of kind ``cache``;
  - queue: a call to a queue tier is asynchronous (the caller spends ``publish_time``); the
    queue's consumers are its workers (``instances=1``, ``concurrency=consumers*concurrency``),
    and ``max_queue`` holds its ``max_depth``;
  - database: ``instances`` primaries serve writes, ``replicas`` serve reads (reads go to
    primaries when there are no replicas); ``work[k].read_ratio`` is the read fraction.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from capsim.model.distributions import Distribution
from capsim.units import (
    format_duration,
    format_slo_figure,
)
from capsim.vocabulary import LATENCY_STATISTICS

#: Spelled out for the type checker; a test holds it equal to `capsim.vocabulary.TIER_TYPES`.
TierKind = Literal["service", "load_balancer", "cache", "cdn", "database", "queue"]
Balancing = Literal["round_robin", "random", "least_connections", "power_of_two"]
BALANCING_ALGORITHMS: tuple[str, ...] = (
    "round_robin",
    "random",
    "least_connections",
    "power_of_two",
)
STATISTICS: tuple[str, ...] = LATENCY_STATISTICS
PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}
#: SLO statistics judged as a share (shown as a percentage); `backlog` is a count of messages;
#: every other SLO statistic is a time.
#: A limit or an observed figure of an SLO in its own unit: `1.2s`, `75%`, `1,000`.
slo_value_text = format_slo_figure


@dataclass(frozen=True)
class Retry:
    """How a caller retries a call that failed or timed out (docs/dynamic.md).

    Retry n (1..`max`) waits `base` (constant), min(`cap`, `base` x 2^(n-1)) (exponential) or
    nothing (none); with `jitter` "full" the wait is uniform in [0, that]. `budget`, when set,
    caps retries at that share of first attempts (a token bucket per call site).
    """

    max: int = 3
    backoff: str = "exponential"  # exponential | constant | none
    base: float = 0.05
    cap: float = 2.0
    jitter: str = "full"  # full | none
    budget: float | None = None


@dataclass(frozen=True)
class CircuitBreaker:
    """Opens when `error_rate` of at least `min_calls` calls in the last `window` s failed;
    stays open `open_for` s, then lets `probes` calls through (half-open)."""

    error_rate: float = 0.5
    window: float = 10.0
    min_calls: int = 20
    open_for: float = 30.0
    probes: int = 5


@dataclass(frozen=True)
class RateLimit:
    """A token bucket in front of a tier: `rate` requests a second, bursts up to `burst`."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Hedge:
    """Hedged requests (docs/dynamic.md#hedged-requests): while no copy of a call has answered,
    copy j (1..`max`) goes to another instance j x `after` seconds after the first, or, with
    `quantile` q, j x the q-quantile of the callee's response times as the caller has seen them.
    The first successful answer is taken; the other copies are withdrawn from the queue they
    wait in, or abandoned (their work goes on) when a worker has them.
    """

    max: int = 1
    after: float | None = None  # seconds; None when `quantile` is set
    quantile: float | None = None  # 0 < q < 1

    @property
    def text(self) -> str:
        """The hedge as the scenario wrote it, for messages."""
        if self.quantile is not None:
            return f"after p{self.quantile * 100:g}"
        assert self.after is not None
        return f"after {format_duration(self.after)}"


@dataclass(frozen=True)
class Call:
    """A synchronous (or, to a queue tier, asynchronous) call to another tier.

    Made with `probability`; when made, it is repeated `repeat` times one after another.
    `algorithm`, when set, overrides the callee's own balancing (a load balancer's choice).
    `timeout`: the caller gives up on an attempt after this long (the callee works on);
    `retry`: how failed and timed-out attempts are retried; `hedge`: copies of an attempt
    that has not answered in time.
    """

    tier: int
    probability: float = 1.0
    repeat: int = 1
    algorithm: str | None = None
    timeout: float | None = None
    retry: Retry | None = None
    circuit_breaker: CircuitBreaker | None = None
    bulkhead: int | None = None  # at most this many calls in flight from caller to callee
    hedge: Hedge | None = None  # more copies of a slow call to other instances
    # Round-trip time of the network between caller and callee (another region): the request
    # reaches the callee half of it later, the answer reaches the caller the other half later.
    network_delay: float = 0.0
    write: bool = False  # a write: goes to the callee's primary region (docs/regions.md)


@dataclass(frozen=True)
class OneOf:
    """Exactly one of the options, by probability; the rest of the mass (1 - sum) makes no call."""

    options: tuple[tuple[int, float], ...]
    network_delays: tuple[float, ...] = ()  # round trip to each option (() : all 0)
    # Where an option's request goes when its tier refuses it on the spot (a lost node of a
    # consistent-hash cache: its keys miss, to the origin); () or None: nowhere, an error.
    fallbacks: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class Parallel:
    """Fan-out: every branch starts at once; the step ends when the slowest branch ends."""

    branches: tuple[Step, ...]


Step = Call | OneOf | Parallel


@dataclass(frozen=True)
class Work:
    """What one tier does for one request class: its own work, then its calls in order."""

    service_time: Distribution
    calls: tuple[Step, ...] = ()
    read_ratio: float = 1.0  # database tiers only: share of calls that are reads


@dataclass(frozen=True)
class Pool:
    """A database connection pool shared by all callers (size in flight, FIFO waiting room)."""

    size: int
    max_waiting: int | None = None  # None: unbounded waiting room
    timeout: float | None = None  # seconds a call may wait for a connection


@dataclass(frozen=True)
class Sizing:
    """What `capsim size` may change on a tier: `of` between `min` and `max`, or nothing (`fixed`).

    `of` is instances | concurrency (a database with a pool: its pool size) | replicas |
    consumers (a queue's consumers, each with concurrency / consumers workers).
    """

    of: str = "instances"
    min: int = 1
    max: int = 1000
    fixed: bool = False


@dataclass(frozen=True)
class HealthCheck:
    """Balancing stops sending to an instance after `unhealthy_after` failed checks in a row, and
    starts again after `healthy_after` passed ones; checks run every `interval` from t = 0."""

    interval: float = 5.0
    unhealthy_after: int = 3
    healthy_after: int = 1


@dataclass(frozen=True)
class Fault:
    """A fault on one tier from `at` until `until` (None: to the end), times from t = 0.

    `lose`: the servers (indices) that die; `error_rate`: the share of requests the tier answers
    with an error; `slowdown`: the factor on service times of work that starts meanwhile.
    `text` says it in the user's words (for messages). `losing` is the rule `lose` came from
    (a count, a share or a zone of the tier's servers), so that a tier given another number of
    servers (capsim size's trials) loses the servers the same rule picks (`for_servers`).
    """

    at: float
    until: float | None
    tier: int
    lose: tuple[int, ...] = ()
    error_rate: float = 0.0
    slowdown: float = 1.0
    text: str = ""
    losing: LoseRule | None = None

    def for_servers(self, servers: int, zones: tuple[str, ...] = ()) -> Fault:
        """This fault on its tier with `servers` servers (the rule applied again)."""
        if self.losing is None:
            return self
        return replace(self, lose=self.losing.servers(servers, zones))


@dataclass(frozen=True)
class LoseRule:
    """Which servers a fault loses: the last `count`, the last `share` (rounded), or every
    server in `zone` (servers are spread over a tier's zones in turn), or every server (`all`)."""

    count: int | None = None
    share: float | None = None
    zone: str | None = None
    every: bool = False

    def servers(self, servers: int, zones: tuple[str, ...] = ()) -> tuple[int, ...]:
        if self.every:
            return tuple(range(servers))
        if self.zone is not None:
            return tuple(i for i in range(servers) if zones and zones[i % len(zones)] == self.zone)
        count = self.count if self.count is not None else round((self.share or 0.0) * servers)
        count = min(count, servers)
        return tuple(range(servers - count, servers))


@dataclass(frozen=True)
class Autoscale:
    """The Kubernetes HPA's rule on one tier (docs/dynamic.md#autoscaling); times in seconds.

    `target` is per ready instance: a ratio (utilization, occupancy), waiting requests
    (queue_length) or requests per second (rate).
    """

    max: int
    metric: str = "utilization"
    target: float = 0.6
    min: int = 1
    sync_period: float = 15.0
    scale_up_stabilization: float = 0.0
    scale_down_stabilization: float = 300.0
    tolerance: float = 0.1
    max_scale_up: float = 1.0
    max_scale_up_instances: int = 4
    startup_time: float = 90.0
    cooldown: float = 0.0  # no scaling change within this long after the last one
    # The scale-up policies' period (None: one sync) and which policy applies (max or min).
    scale_up_period: float | None = None
    scale_up_select: str = "max"
    # Serverless (docs/dynamic.md#serverless-tiers): instances start per request, up to `max`.
    scale_to_zero: bool = False
    cold_start: float = 0.0  # an instance's start, paid by the first request it serves
    keep_warm: float = 300.0  # an instance idle this long goes away (not below `min`)
    initial: int | None = None  # serverless: warm instances at t = 0 (None: the tier's instances)


@dataclass(frozen=True)
class ConsumerScaling:
    """KEDA-style scaling of a queue's consumers on its messages
    (docs/dynamic.md#scaling-queue-consumers-on-backlog-keda); times in seconds.

    Every `polling_interval` the scaler reads `metric` (backlog: messages waiting; lag: messages
    waiting or being consumed) and asks for ceil(metric / target) consumers within [min, max]."""

    metric: str  # "backlog" | "lag"
    target: float  # messages per consumer
    min: int
    max: int
    initial: int  # consumers at t = 0
    per_consumer: int  # workers of one consumer (its `concurrency`)
    polling_interval: float = 30.0
    cooldown_period: float = 300.0  # no message this long: down to min (when min is 0)
    tolerance: float = 0.1
    scale_down_stabilization: float = 300.0
    startup_time: float = 0.0
    activation_threshold: float = 0.0  # KEDA's: active while the metric is above it
    # The HPA's scale-up policies on the consumers (None: no limit), over `scale_up_period`.
    max_scale_up: float | None = None
    max_scale_up_instances: int | None = None
    scale_up_period: float = 15.0
    scale_up_select: str = "max"


@dataclass(frozen=True)
class ColdLru:
    """An LRU cache of `capacity` entries that starts empty, over `keys` keys of Zipf(`zipf`)
    popularity, simulated request by request (docs/dynamic.md#cold-caches)."""

    capacity: int
    keys: int
    zipf: float


@dataclass(frozen=True)
class Pricing:
    """How a tier is billed (docs/cost.md), from its `cost` key; money in the model's currency.

    Instances: the first `reserved` pay (1 - `reserved_discount`) x `on_demand` per hour,
    running or not; the rest pay `on_demand`, or (1 - `spot_discount`) x `on_demand` when
    `spot_discount` is set. Spot instances are interrupted at `interruption_rate` per second
    each and replaced after `replace_after` seconds. Requests: `per_million_requests`; work:
    `per_gb_second` x `memory_gb` per second a worker is held; bytes: `per_gb` per GB (10^9
    bytes) of the responses the tier receives requests for.
    """

    on_demand: float | None = None
    reserved: int = 0
    reserved_discount: float = 0.0
    spot_discount: float | None = None
    interruption_rate: float = 0.0
    replace_after: float = 0.0
    per_million_requests: float | None = None
    per_gb_second: float | None = None
    memory_gb: float = 0.0
    per_gb: float | None = None

    @property
    def interrupts(self) -> bool:
        """Spot instances are interrupted during the run."""
        return self.spot_discount is not None and self.interruption_rate > 0

    @property
    def changes_conditions(self) -> bool:
        """Capacity changes during the run (spot interruptions): model/features.py asks."""
        return self.interrupts


@dataclass(frozen=True)
class TtlHits:
    """A TTL cache's hit-ratio model, kept so the hit ratio follows the load (`--load`, search
    points): requests over `keys` keys of Zipf(`zipf`) popularity, entries kept `ttl` seconds."""

    ttl: float
    keys: float
    zipf: float
    reset_on_hit: bool = False


@dataclass(frozen=True)
class Tier:
    """One resolved tier. `work` is indexed by class index and always has one entry per class."""

    name: str
    index: int
    kind: TierKind
    instances: int
    concurrency: int
    blocking: bool
    balancing: str
    work: tuple[Work, ...]
    max_queue: int | None = None  # waiting room per instance; None unbounded, 0 loss system
    timeout: float | None = None  # a request still waiting after this is dropped (error)
    hit_ratio: float | None = None  # cache / cdn / origin shield
    on_miss: int | None = None  # cache / cdn: where misses go (the shield tier when there is one)
    replicas: int = 0  # database: read replicas (each with `concurrency` workers)
    pool: Pool | None = None  # database: connection pool
    publish_time: Distribution | None = None  # queue: what a call to this queue costs the caller
    synthetic: bool = False  # made by the model builder (an origin shield), not in the YAML
    consumers: int = 1  # queue: consumers (`concurrency` is consumers x their concurrency)
    cost_per_instance_hour: float | None = None  # `cost.per_instance_hour`, None when not given
    sizing: Sizing | None = None  # `sizing`, None when not given (capsim size's default applies)
    zones: tuple[str, ...] = ()  # servers spread over these, round robin: server i in zones[i % n]
    health_check: HealthCheck | None = None  # None: balancing sees a death at once
    autoscale: Autoscale | None = None  # instances change between min and max during the run
    rate_limit: RateLimit | None = None  # refuses requests beyond a token bucket
    queue_discipline: str = "fifo"  # fifo | lifo: which waiting request a free worker takes
    drop_abandoned: bool = False  # skip waiting requests whose caller has given up
    priorities: tuple[int, ...] = ()  # priority level per class (0 first); () all equal, FIFO
    max_retries: int = 0  # queue: redeliveries of a failed message before it is dead-lettered
    batch_size: int = 1  # queue: messages a consumer takes at once (service_time per batch)
    batch_linger: float = 0.0  # queue: how long a batch's first message waits for it to fill
    partitions: int | None = None  # queue: at most one consumer per partition at a time
    cold_lru: ColdLru | None = None  # cache / cdn / shield: hits decided by a simulated LRU
    edges: int = 1  # cdn: edge locations, each with its own cache and 1/edges of the requests
    consumer_scaling: ConsumerScaling | None = None  # queue: consumers follow the backlog (KEDA)
    pricing: Pricing | None = None  # `cost`: how the tier is billed (docs/cost.md)
    region: str | None = None  # the region this copy of a scenario tier runs in (docs/regions.md)
    ttl_hits: TtlHits | None = None  # cache / cdn / shield: a TTL model at the requests it gets

    @property
    def servers(self) -> int:
        """Number of separately queued servers (instances, plus replicas for a database)."""
        return self.instances + self.replicas

    @property
    def workers(self) -> int:
        """Total number of workers over all servers."""
        return self.servers * self.concurrency

    @property
    def usable_workers(self) -> int:
        """Workers that can be busy at once: all of them, except on a queue with `partitions`,
        where at most one consumer works on a partition at a time (min(workers, partitions)).
        Utilization, occupancy and capacity are measured against these."""
        if self.partitions is None:
            return self.workers
        return min(self.workers, self.partitions)

    @property
    def is_async(self) -> bool:
        """Calls to this tier are asynchronous (queue tiers)."""
        return self.kind == "queue"


#: A linear piece of an offered rate: (start, end, rate at start, rate at end); end may be inf.
RateSegment = tuple[float, float, float, float]


@dataclass(frozen=True)
class ProfilePoint:
    at: float
    rate: float


@dataclass(frozen=True, eq=False)
class TraceArrivals:
    """Arrivals replayed from a trace: `times` in seconds from its first timestamp, in order,
    `speedup` applied. With `loop` the trace repeats every `period` seconds."""

    times: np.ndarray = field(repr=False)
    loop: bool
    source: str

    @property
    def period(self) -> float:
        """The trace's span plus its mean gap, so a loop keeps the trace's mean rate."""
        count = int(self.times.size)
        span = float(self.times[-1]) if count else 0.0
        return span * count / (count - 1) if count > 1 else span

    @property
    def mean_rate(self) -> float:
        period = self.period
        return float(self.times.size) / period if period > 0 else 0.0

    def scaled(self, factor: float) -> TraceArrivals:
        return replace(self, times=self.times / factor)


@dataclass(frozen=True)
class MmppArrivals:
    """Two-state Markov-modulated Poisson process: Poisson at `rates[i]` while in state i, whose
    sojourn is exponential with mean `mean_sojourn[i]`. A run starts in the stationary state."""

    rates: tuple[float, float]
    mean_sojourn: tuple[float, float]

    @property
    def stationary(self) -> tuple[float, float]:
        """Long-run share of time in each state."""
        total = self.mean_sojourn[0] + self.mean_sojourn[1]
        return self.mean_sojourn[0] / total, self.mean_sojourn[1] / total

    @property
    def mean_rate(self) -> float:
        pi = self.stationary
        return pi[0] * self.rates[0] + pi[1] * self.rates[1]

    def scaled(self, factor: float) -> MmppArrivals:
        return replace(self, rates=(self.rates[0] * factor, self.rates[1] * factor))


@dataclass(frozen=True)
class BatchArrivals:
    """Batches at Poisson epochs of rate `batch_rate`; every request of a batch arrives at once.

    Sizes: `size_kind` constant (`size_mean` is the size), geometric on 1, 2, ... with mean
    `size_mean`, or empirical (drawn from `size_samples`, equally likely)."""

    batch_rate: float
    size_kind: Literal["constant", "geometric", "empirical"]
    size_mean: float
    size_samples: tuple[int, ...] = ()

    @property
    def size_second_moment(self) -> float:
        """E[X^2] of the batch size."""
        if self.size_kind == "constant":
            return self.size_mean**2
        if self.size_kind == "geometric":
            p = 1.0 / self.size_mean
            return (2.0 - p) / (p * p)
        return float(np.mean(np.square(self.size_samples, dtype=np.float64)))

    @property
    def mean_rate(self) -> float:
        return self.batch_rate * self.size_mean

    def scaled(self, factor: float) -> BatchArrivals:
        return replace(self, batch_rate=self.batch_rate * factor)


ArrivalProcess = TraceArrivals | MmppArrivals | BatchArrivals
ArrivalKind = Literal["poisson", "constant", "trace", "mmpp", "batch"]


@dataclass(frozen=True)
class TrafficClass:
    """A request class: open (`rate`, optional `profile`, or an arrival `process`) or closed
    (`users`). `rate` is always in requests per second: for a process, its long-run mean."""

    name: str
    index: int
    entry: int
    rate: float | None = None
    arrivals: ArrivalKind = "poisson"
    profile: tuple[ProfilePoint, ...] = ()
    users: int | None = None
    think_time: Distribution | None = None
    process: ArrivalProcess | None = None  # trace, mmpp and batch arrivals
    response_size: float = 0.0  # bytes of each answer, for per-GB prices (docs/cost.md)
    # Round trip between the class's clients and the region serving them (docs/regions.md): a
    # request reaches `entry` half of it after it is sent, its answer the client half later.
    network_delay: float = 0.0

    @property
    def is_closed(self) -> bool:
        return self.users is not None

    def rate_segments(self) -> list[RateSegment]:
        """The offered rate over [0, inf) as linear pieces (start, end, rate at start, rate at
        end), in order: flat before the first profile point and after the last (end inf); two
        points at one time are a step between pieces. Without a profile, one flat piece.

        The one description of a profile: `rate_at`, `arrivals_until` and both engine paths'
        non-homogeneous arrivals read it."""
        if not self.profile:
            rate = float(self.rate or 0.0)
            return [(0.0, math.inf, rate, rate)]
        points = self.profile
        segments: list[RateSegment] = []
        if points[0].at > 0.0:
            segments.append((0.0, points[0].at, points[0].rate, points[0].rate))
        for a, b in itertools.pairwise(points):
            if b.at > a.at:
                segments.append((a.at, b.at, a.rate, b.rate))
        segments.append((max(points[-1].at, 0.0), math.inf, points[-1].rate, points[-1].rate))
        return segments

    def rate_at(self, t: float) -> float:
        """Offered rate at simulated time `t` (from the start of warm-up); open classes only.
        A trace, an MMPP or batches count at their long-run mean rate."""
        if not self.profile:
            return float(self.rate or 0.0)
        if t <= self.profile[0].at:
            return self.profile[0].rate
        for start, end, rate, end_rate in self.rate_segments():
            if start <= t < end:
                if math.isinf(end):
                    return rate
                return rate + (end_rate - rate) * (t - start) / (end - start)
        return self.profile[-1].rate

    def arrivals_until(self, horizon: float) -> float:
        """Expected arrivals over [0, horizon] at the offered rate (the profile integrated
        exactly: the rate is linear on each piece, so the trapezoid rule is exact)."""
        total = 0.0
        for start, end, rate, end_rate in self.rate_segments():
            if start >= horizon:
                break
            if math.isinf(end):
                total += rate * (horizon - start)
                break
            stop = min(end, horizon)
            stop_rate = rate + (end_rate - rate) * (stop - start) / (end - start)
            total += 0.5 * (rate + stop_rate) * (stop - start)
        return total

    def peak_rate(self, until: float) -> float:
        """The highest offered rate from the start of warm-up to `until` (a profile's peak;
        without a profile, `rate`). A profile is linear between its points, so the peak is
        at one of them or at `until`."""
        inside = [p.rate for p in self.profile if p.at <= until]
        return max([self.rate_at(0.0), self.rate_at(until), *inside])

    def scaled(self, factor: float) -> TrafficClass:
        """This open class with `factor` times its traffic (a trace replayed `factor` times
        faster); the mix of requests is unchanged."""
        return replace(
            self,
            rate=None if self.rate is None else self.rate * factor,
            profile=tuple(replace(p, rate=p.rate * factor) for p in self.profile),
            process=None if self.process is None else self.process.scaled(factor),
        )


@dataclass(frozen=True)
class Slo:
    """One objective: `statistic` of a class or of a tier at most `limit`.

    Class statistics: mean, p50 ... p999, max (latency), error_rate, share_over (the share of
    requests slower than `threshold` seconds). Tier statistics: utilization, occupancy,
    wait_mean ... wait_max (time waiting for a worker), and on queues age_mean ... age_max
    (message age, enqueue to done) and backlog (the highest number of messages waiting).
    """

    text: str  # "browse p99 <= 300ms"
    statistic: str
    limit: float
    class_index: int | None = None
    tier_index: int | None = None
    line: int = 0  # line in the scenario file, for CI annotations
    threshold: float | None = None  # share_over: the latency limit whose share is bounded
    # Why `capsim solve` cannot judge this objective (a class part a region fault moves or
    # loses: docs/regions.md); None when its steady-state estimate can.
    not_judged_by_solve: str | None = None


@dataclass(frozen=True)
class Simulation:
    duration: float = 60.0
    warmup: float = 6.0
    replications: int = 1


@dataclass(frozen=True)
class Model:
    """A complete, validated scenario ready to run."""

    name: str
    seed: int
    simulation: Simulation
    classes: tuple[TrafficClass, ...]
    tiers: tuple[Tier, ...]
    slos: tuple[Slo, ...] = ()
    description: str = ""
    source: str = "<scenario>"
    tier_index: dict[str, int] = field(default_factory=dict, compare=False)
    class_index: dict[str, int] = field(default_factory=dict, compare=False)
    # Record figures per time bucket (the result's `timeseries`): asked for, or implied by a
    # profile; `timeseries_bucket` None picks duration / 120 rounded to 1, 2 or 5 x 10^k s.
    timeseries: bool = False
    timeseries_bucket: float | None = None
    faults: tuple[Fault, ...] = ()  # in the order of the scenario's `faults:`
    currency: str | None = None  # ISO 4217 code of the prices in `cost`, when the scenario says
    # Latency percentiles asked for beyond the standard ones (`simulation.percentiles`, SPEC's
    # p50 ... p999 are always there), as quantiles in (0, 1).
    percentiles: tuple[float, ...] = ()
    # Latency limits (seconds) whose share of slower requests the engine counts exactly:
    # `simulation.share_over` and the limit of every share_over SLO.
    share_over: tuple[float, ...] = ()
    # When each DNS move of traffic caused by a fault ends (a lost region's clients, a failed
    # provider's share, or their return): a phase boundary of the verdicts after a fault
    # (docs/results.md#verdicts-after-a-fault).
    traffic_moves: tuple[float, ...] = ()

    def tier(self, name: str) -> Tier:
        return self.tiers[self.tier_index[name]]

    @property
    def horizon(self) -> float:
        """Total simulated time: warm-up plus measured duration."""
        return self.simulation.warmup + self.simulation.duration
