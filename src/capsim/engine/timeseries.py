"""Figures per time bucket (the result's `timeseries`, docs/results.md), in memory fixed by the bucket count.

Buckets are counted from the start of warm-up (t = 0) and cover the whole run, warm-up included;
the last bucket may be shorter than the others when the bucket does not divide the run. Nothing
here grows with the number of requests: counts are per bucket, time integrals are per bucket, and
latencies go into one small log-linear histogram per bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from capsim.errors import ResourceLimitError
from capsim.model.types import Model

#: The automatic bucket aims at this many buckets over the measured duration.
TARGET_BUCKETS = 120
#: A run may have at most this many buckets, warm-up included: a chosen `timeseries` bucket finer
#: than this is refused, and the automatic bucket is widened to stay within it.
MAX_BUCKETS = 2000
#: Sub-buckets per power of two of the per-bucket latency histograms: a value is represented
#: within sqrt(1 + 1/32) - 1 = 1.6% (the whole-run percentiles keep their 0.4% histograms).
SUB_BITS = 5
_LOW_EXPONENT, _HIGH_EXPONENT = -20, 16  # about 1 us to 18 h; outside: the edge bins
N_BINS = (_HIGH_EXPONENT - _LOW_EXPONENT) << SUB_BITS
_SHIFT = 52 - SUB_BITS
_OFFSET = (1023 + _LOW_EXPONENT) << SUB_BITS


def _midpoints() -> np.ndarray:
    bins = np.arange(N_BINS)
    exponent = bins >> SUB_BITS
    mantissa = (bins & ((1 << SUB_BITS) - 1)).astype(np.float64)
    low = np.ldexp(1.0 + mantissa / (1 << SUB_BITS), exponent + _LOW_EXPONENT)
    high = np.ldexp(1.0 + (mantissa + 1.0) / (1 << SUB_BITS), exponent + _LOW_EXPONENT)
    return np.sqrt(low * high)


_MIDPOINTS = _midpoints()


def readable_bucket(duration: float) -> float:
    """duration / 120 rounded (in log scale) to the nearest 1, 2 or 5 x 10^k seconds."""
    raw = duration / TARGET_BUCKETS
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    exponent = math.floor(math.log10(raw))
    candidates = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 5)]
    best = min(candidates, key=lambda c: abs(math.log(c / raw)))
    return float(f"{best:.6g}")


def _readable_at_least(width: float) -> float:
    """The smallest 1, 2 or 5 x 10^k seconds that is at least `width`."""
    exponent = math.floor(math.log10(width))
    for e in (exponent, exponent + 1):
        for m in (1, 2, 5):
            candidate = float(f"{m * 10.0**e:.6g}")
            if candidate >= width:
                return candidate
    return float(f"{10.0 ** (exponent + 2):.6g}")


def series_bucket(model: Model) -> float:
    """The bucket of `model`'s time series: the chosen one, else `readable_bucket` of the duration
    widened (to 1, 2 or 5 x 10^k s) until the whole run, warm-up included, has at most
    MAX_BUCKETS buckets."""
    if model.timeseries_bucket:
        return model.timeseries_bucket
    bucket = readable_bucket(model.simulation.duration)
    horizon = model.horizon
    if math.isfinite(horizon) and horizon / bucket > MAX_BUCKETS:
        bucket = _readable_at_least(horizon / MAX_BUCKETS)
    return bucket


def bucket_count(bucket: float, horizon: float) -> float:
    """How many buckets of `bucket` seconds cover [0, horizon] (a float: may be huge or inf)."""
    if not math.isfinite(horizon) or bucket <= 0:
        return math.inf
    return float(max(1, math.ceil(horizon / bucket - 1e-9)))


def series_bytes(model: Model) -> float:
    """Bytes of one replication's time series (0 when the model asks for none): per bucket, three
    counts and a latency histogram per class, five time integrals and four counts per tier (two
    more for a cold cache), and a message-age histogram, sum and max per queue tier."""
    if not model.timeseries:
        return 0.0
    count = bucket_count(series_bucket(model), model.horizon)
    queues = sum(1 for tier in model.tiers if tier.is_async)
    per_bucket = 8 * (
        len(model.classes) * (3 + N_BINS) + len(model.tiers) * 11 + queues * (N_BINS + 2) + 1
    )
    return count * per_bucket


def bucket_edges(bucket: float, horizon: float) -> np.ndarray:
    """Bucket boundaries from 0 to `horizon` (the last bucket may be shorter)."""
    count = max(1, math.ceil(horizon / bucket - 1e-9))
    edges = np.arange(count + 1, dtype=np.float64) * bucket
    edges[-1] = horizon
    return edges


def interval_mass(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per bucket, the total length of the intervals [start, end) inside it (exact).

    F(x) = sum_i |[s_i, e_i) ∩ (-inf, x)| = sum_{s_i < x} (x - s_i) - sum_{e_i < x} (x - e_i),
    evaluated at every edge with sorted starts, sorted ends and their prefix sums.
    """
    if starts.size == 0:
        return np.zeros(edges.size - 1)
    s = np.sort(starts)
    e = np.sort(ends)
    s_sum = np.concatenate(([0.0], np.cumsum(s)))
    e_sum = np.concatenate(([0.0], np.cumsum(e)))
    ns = np.searchsorted(s, edges, side="left")
    ne = np.searchsorted(e, edges, side="left")
    mass = (ns * edges - s_sum[ns]) - (ne * edges - e_sum[ne])
    return np.diff(mass)


#: A time this close below a bucket's edge (in buckets) is counted in the bucket that starts
#: there: arrivals at exactly n / rate (constant arrivals, traces on a grid) fall on edges, and
#: floating point puts each an ulp to either side, which made a constant rate's series jagged
#: (10/s, 30/s, 20/s...) and the two engine paths disagree bucket by bucket.
EDGE_SNAP = 1e-9


def bucket_of(times: np.ndarray, bucket: float, count: int) -> np.ndarray:
    """The bucket index of each time (times at or past the horizon go to the last bucket).

    The same arithmetic as `bucket_at`, time by time."""
    inverse = 1.0 / bucket
    index = (np.asarray(times, dtype=np.float64) * inverse + EDGE_SNAP).astype(np.int64)
    return np.clip(index, 0, count - 1)


def bucket_at(time: float, inverse: float, last: int) -> int:
    """The bucket index of one time, `inverse` = 1 / bucket (the event path's hot path)."""
    return min(int(time * inverse + EDGE_SNAP), last)


def latency_bins(values: np.ndarray) -> np.ndarray:
    """The per-bucket histogram bin of each latency (seconds)."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    index = (x.view(np.int64) >> _SHIFT) - _OFFSET
    return np.clip(index, 0, N_BINS - 1)


def quantile_per_bucket(counts: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each row of a (buckets x bins) count array; NaN for an empty bucket."""
    totals = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    rank = np.maximum(np.ceil(q * totals - 1e-9), 1)
    index = (cumulative < rank[:, None]).sum(axis=1)
    result = _MIDPOINTS[np.minimum(index, N_BINS - 1)]
    return np.where(totals > 0, result, np.nan)


@dataclass
class ClassSeries:
    """One class per bucket: requests that arrived, that completed (by completion time) and that
    failed (by failure time), and a latency histogram of the completed ones."""

    arrivals: np.ndarray
    completed: np.ndarray
    errors: np.ndarray
    latency: np.ndarray  # (buckets, N_BINS) counts

    @staticmethod
    def empty(count: int) -> ClassSeries:
        return ClassSeries(
            np.zeros(count, dtype=np.int64),
            np.zeros(count, dtype=np.int64),
            np.zeros(count, dtype=np.int64),
            np.zeros((count, N_BINS), dtype=np.int64),
        )

    def add_completions(self, done: np.ndarray, latency: np.ndarray, bucket: float) -> None:
        """Count completions at times `done` with these latencies."""
        if done.size == 0:
            return
        rows = bucket_of(done, bucket, self.arrivals.size)
        self.completed += np.bincount(rows, minlength=self.arrivals.size)
        flat = rows * N_BINS + latency_bins(latency)
        self.latency += np.bincount(flat, minlength=self.latency.size).reshape(self.latency.shape)


@dataclass
class TierSeries:
    """One tier per bucket, as time integrals (seconds x count) over the bucket, and counts.

    `instance_time` instance-seconds live and serving, `busy_time` worker-seconds on own work,
    `occupied_time` worker-seconds held (own work or, blocking, waiting for calls),
    `queue_time` request-seconds waiting for a worker, `present_time` request-seconds at the
    tier (waiting, in service or held): its time-average is the in-flight count.

    Counted inside the measurement window only, as the tier's totals are (a bucket of the
    warm-up counts nothing): `arrivals` (by arrival time), `completed` (work done, by completion
    time), `errors` (the tier's `rejected`, by the time it happened), `dead_letters` (a queue's,
    by the time of the last failed try), and for a queue `age`, a histogram of the message ages
    (enqueue to done) of the messages done in each bucket, with their exact sum (`age_sum`)
    and largest (`age_max`), so that a phase's mean and max age are exact.
    """

    concurrency: int
    instance_time: np.ndarray
    busy_time: np.ndarray
    occupied_time: np.ndarray
    queue_time: np.ndarray
    present_time: np.ndarray
    # A cold cache's lookups and hits per bucket (None for other tiers).
    lookups: np.ndarray | None = None
    hits: np.ndarray | None = None
    # Counts per bucket, sized from `instance_time` (zeros until counted).
    arrivals: np.ndarray = field(init=False)
    completed: np.ndarray = field(init=False)
    errors: np.ndarray = field(init=False)
    dead_letters: np.ndarray = field(init=False)
    age: np.ndarray | None = field(init=False, default=None)  # queues: (buckets, N_BINS) counts
    age_sum: np.ndarray | None = field(init=False, default=None)  # queues: seconds per bucket
    age_max: np.ndarray | None = field(init=False, default=None)  # queues: seconds per bucket

    def __post_init__(self) -> None:
        count = self.instance_time.size
        self.arrivals = np.zeros(count)
        self.completed = np.zeros(count)
        self.errors = np.zeros(count)
        self.dead_letters = np.zeros(count)

    @staticmethod
    def empty(count: int, concurrency: int, queue: bool = False) -> TierSeries:
        series = TierSeries(concurrency, *(np.zeros(count) for _ in range(5)))
        if queue:
            series.age = np.zeros((count, N_BINS), dtype=np.int64)
            series.age_sum = np.zeros(count)
            series.age_max = np.zeros(count)
        return series

    def add_ages(self, done: np.ndarray, age: np.ndarray, bucket: float) -> None:
        """Count messages done at times `done` with these ages (a queue tier's)."""
        if done.size == 0 or self.age is None:
            return
        rows = bucket_of(done, bucket, self.age.shape[0])
        flat = rows * N_BINS + latency_bins(age)
        self.age += np.bincount(flat, minlength=self.age.size).reshape(self.age.shape)
        if self.age_sum is not None and self.age_max is not None:
            self.age_sum += np.bincount(rows, weights=age, minlength=self.age_sum.size)
            np.maximum.at(self.age_max, rows, age)

    def add_counts(self, counts: np.ndarray) -> None:
        """Per bucket, the (arrivals, completed, errors, dead letters) of a (buckets, 4) array."""
        self.arrivals += counts[:, 0]
        self.completed += counts[:, 1]
        self.errors += counts[:, 2]
        self.dead_letters += counts[:, 3]


@dataclass
class Series:
    """Every class's and tier's figures per bucket for one replication; indexed like the model."""

    bucket: float
    edges: np.ndarray
    classes: list[ClassSeries] = field(default_factory=list)
    tiers: list[TierSeries] = field(default_factory=list)

    @property
    def spans(self) -> np.ndarray:
        """Each bucket's length (the last one may be shorter)."""
        return np.diff(self.edges)


class CompletionLog:
    """Buffers (completion time, latency) pairs from the event path; flushes them in batches."""

    __slots__ = ("bucket", "done", "latency", "limit", "series")

    def __init__(self, series: ClassSeries, bucket: float, limit: int = 16384) -> None:
        self.series = series
        self.bucket = bucket
        self.done: list[float] = []
        self.latency: list[float] = []
        self.limit = limit

    def record(self, done: float, latency: float) -> None:
        self.done.append(done)
        self.latency.append(latency)
        if len(self.done) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.done:
            self.series.add_completions(
                np.asarray(self.done), np.asarray(self.latency), self.bucket
            )
            self.done, self.latency = [], []


class AgeLog:
    """Buffers (done time, message age) pairs of a queue tier on the event path."""

    __slots__ = ("ages", "bucket", "done", "limit", "series")

    def __init__(self, series: TierSeries, bucket: float, limit: int = 16384) -> None:
        self.series = series
        self.bucket = bucket
        self.done: list[float] = []
        self.ages: list[float] = []
        self.limit = limit

    def record(self, done: float, age: float) -> None:
        self.done.append(done)
        self.ages.append(age)
        if len(self.done) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.done:
            self.series.add_ages(np.asarray(self.done), np.asarray(self.ages), self.bucket)
            self.done, self.ages = [], []


class IntervalLog:
    """Buffers [start, end) intervals from the event path; flushes their mass into `into`."""

    __slots__ = ("edges", "ends", "into", "limit", "starts")

    def __init__(self, into: np.ndarray, edges: np.ndarray, limit: int = 16384) -> None:
        self.into = into
        self.edges = edges
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.limit = limit

    def record(self, start: float, length: float) -> None:
        self.starts.append(start)
        self.ends.append(start + length)
        if len(self.starts) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.starts:
            self.into += interval_mass(np.asarray(self.starts), np.asarray(self.ends), self.edges)
            self.starts, self.ends = [], []


def new_series(model: Model) -> Series | None:
    """Empty per-bucket figures for one replication of `model` (None: it asks for none)."""
    if not model.timeseries:
        return None
    bucket = series_bucket(model)
    if bucket_count(bucket, model.horizon) > MAX_BUCKETS:
        raise ResourceLimitError(
            f"a time-series bucket of {bucket:g}s makes more than {MAX_BUCKETS} buckets over the "
            f"{model.horizon:g}s run; choose a bucket of at least {model.horizon / MAX_BUCKETS:.3g}s"
        )
    edges = bucket_edges(bucket, model.horizon)
    count = edges.size - 1
    return Series(
        bucket,
        edges,
        [ClassSeries.empty(count) for _ in model.classes],
        [TierSeries.empty(count, tier.concurrency, tier.is_async) for tier in model.tiers],
    )
