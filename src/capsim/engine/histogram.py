"""Streaming log-linear histograms: percentiles within 0.4% in bounded memory."""

from __future__ import annotations

import math

import numpy as np

#: Sub-buckets per power of two. A bin spans [m, m * (1 + 1/128)) at worst, so the geometric
#: midpoint that stands for it is within sqrt(1 + 1/128) - 1 = 0.39% of every value in it.
SUB_BITS = 7
#: Binned range, as powers of two: [2^-30 s, 2^24 s), about 0.93 ns to 194 days.
_LOW_EXPONENT, _HIGH_EXPONENT = -30, 24
#: Values below this are counted as exactly zero (an immediate start, a zero wait).
ZERO_BELOW = 2.0**_LOW_EXPONENT
#: Upper edge of the binned range; larger values go to an overflow bin represented by `max`.
TOP = 2.0**_HIGH_EXPONENT
N_BINS = (_HIGH_EXPONENT - _LOW_EXPONENT) << SUB_BITS
# counts[0] is the zero bin, counts[1..N_BINS] the log-linear bins, counts[N_BINS + 1] the overflow.
_SIZE = N_BINS + 2
# The bin of a positive double is read off its bits (IEEE 754 orders non-negative doubles like
# their bit patterns as integers): exponent and top SUB_BITS mantissa bits, shifted so that
# ZERO_BELOW lands in bin 1. Negative doubles have negative patterns and land in the zero bin.
_SHIFT = 52 - SUB_BITS
_OFFSET = ((1023 + _LOW_EXPONENT) << SUB_BITS) - 1


def _midpoints() -> np.ndarray:
    bins = np.arange(N_BINS)
    exponent = bins >> SUB_BITS
    mantissa = (bins & ((1 << SUB_BITS) - 1)).astype(np.float64)
    low = np.ldexp(1.0 + mantissa / (1 << SUB_BITS), exponent + _LOW_EXPONENT)
    high = np.ldexp(1.0 + (mantissa + 1.0) / (1 << SUB_BITS), exponent + _LOW_EXPONENT)
    return np.concatenate(([0.0], np.sqrt(low * high), [math.inf]))


_MIDPOINTS = _midpoints()


class Histogram:
    """Counts of non-negative times (seconds) in log-linear bins, with exact count, sum and max.

    Bins are HDR-style: 128 equal sub-buckets per power of two, so binning a batch is a shift of
    the doubles' bits and one bincount (no logarithms). Mergeable (`merge`) and picklable; memory
    is fixed (about 54 KiB) however many values arrive.

    With `limits`, the values strictly above each limit are also counted exactly (`over`), so
    the share of values above a limit (`share_over`) carries no binning error. A value within
    `ZERO_BELOW` (about 1 ns) above a limit counts as at the limit: a latency is a difference of
    clock times, rounded in their last bits differently along different sums (the two engine
    paths), and a request of exactly 5 ms of constant work must count alike on both.
    """

    __slots__ = ("counts", "limits", "max", "min", "n", "over", "total")

    def __init__(self, limits: tuple[float, ...] | list[float] = ()) -> None:
        self.counts = np.zeros(_SIZE, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = 0.0
        self.min = math.inf
        self.limits = np.asarray(sorted(set(limits)), dtype=np.float64)
        self.over = np.zeros(self.limits.size, dtype=np.int64)

    def add(self, values: np.ndarray | list[float]) -> None:
        """Count every value of a batch."""
        x = np.ascontiguousarray(values, dtype=np.float64)
        if x.size == 0:
            return
        self.n += int(x.size)
        self.total += float(x.sum())
        self.max = max(self.max, float(x.max()))
        self.min = min(self.min, float(x.min()))
        index = x.view(np.int64) >> _SHIFT
        index -= _OFFSET
        np.clip(index, 0, N_BINS + 1, out=index)
        self.counts += np.bincount(index, minlength=_SIZE)
        if self.limits.size:
            # below[i]: how many limits lie strictly below value i; a value is over limit j
            # exactly when below > j.
            below = np.searchsorted(self.limits + ZERO_BELOW, x, side="left")
            tally = np.bincount(below, minlength=self.limits.size + 1)
            self.over += np.cumsum(tally[::-1])[::-1][1:]

    def merge(self, other: Histogram) -> None:
        if not np.array_equal(self.limits, other.limits):
            if self.n == 0 and not self.limits.size:
                self.limits, self.over = other.limits.copy(), np.zeros_like(other.over)
            elif other.n:
                raise ValueError("cannot merge histograms that count different limits")
        if other.n:
            self.over += other.over
        self.counts += other.counts
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)

    @staticmethod
    def merged(histograms: list[Histogram]) -> Histogram:
        result = Histogram()
        for h in histograms:
            result.merge(h)
        return result

    def share_over(self, limit: float) -> float:
        """The exact share of values strictly above `limit` (one of `limits`); NaN when empty."""
        where = np.flatnonzero(self.limits == limit)
        if not where.size:
            raise KeyError(f"the histogram does not count values over {limit!r}")
        return float(self.over[where[0]]) / self.n if self.n else math.nan

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def quantile(self, q: float) -> float:
        """The q-quantile (0 < q < 1) of the counted values, nearest rank; NaN when empty."""
        if self.n == 0:
            return math.nan
        rank = max(1, math.ceil(q * self.n - 1e-9))
        cumulative = np.cumsum(self.counts)
        bin_index = int(np.searchsorted(cumulative, rank))
        value = float(_MIDPOINTS[bin_index])
        return min(max(value, self.min if bin_index else 0.0), self.max)

    def quantiles(self, qs: list[float]) -> list[float]:
        return [self.quantile(q) for q in qs]

    def cdf_points(self, max_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """(value, cumulative fraction) pairs of the non-empty bins, thinned to `max_points`."""
        if self.n == 0:
            return np.zeros(0), np.zeros(0)
        nonzero = np.nonzero(self.counts)[0]
        cumulative = np.cumsum(self.counts)[nonzero] / self.n
        values = np.minimum(_MIDPOINTS[nonzero], self.max)
        if nonzero.size > max_points:
            keep = np.linspace(0, nonzero.size - 1, max_points).astype(int)
            values, cumulative = values[keep], cumulative[keep]
        return values, cumulative

    def __getstate__(self) -> tuple[np.ndarray, int, float, float, float, np.ndarray, np.ndarray]:
        return (self.counts, self.n, self.total, self.max, self.min, self.limits, self.over)

    def __setstate__(
        self, state: tuple[np.ndarray, int, float, float, float, np.ndarray, np.ndarray]
    ) -> None:
        self.counts, self.n, self.total, self.max, self.min, self.limits, self.over = state


def censored(ages: np.ndarray | list[float], finished: Histogram) -> np.ndarray:
    """The figures counted for work still unfinished at the end of the window: each one's age
    then, or the shortest figure `finished` holds when that is longer (the work has taken at
    least its age, and is not expected to beat the fastest of the run). Lower bounds."""
    values = np.asarray(ages, dtype=np.float64)
    if finished.n and values.size:
        return np.maximum(values, finished.min)
    return values


class Recorder:
    """Buffers single values from the event path and flushes them to a Histogram in batches."""

    __slots__ = ("buffer", "histogram", "limit")

    def __init__(self, histogram: Histogram | None = None, limit: int = 16384) -> None:
        self.histogram = histogram if histogram is not None else Histogram()
        self.buffer: list[float] = []
        self.limit = limit

    def record(self, value: float) -> None:
        self.buffer.append(value)
        if len(self.buffer) >= self.limit:
            self.flush()

    def flush(self) -> Histogram:
        # The buffer is emptied in place: a hot path may hold it and append to it directly,
        # flushing when it reaches `limit` as `record` does (the same batches, the same sums).
        if self.buffer:
            self.histogram.add(self.buffer)
            self.buffer.clear()
        return self.histogram
