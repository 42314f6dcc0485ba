"""Streaming log-binned histograms: percentiles within 0.25% in bounded memory."""

from __future__ import annotations

import math

import numpy as np

#: Values below this are counted as exactly zero (an immediate start, a zero wait).
ZERO_BELOW = 1e-9
#: Upper edge of the binned range; larger values go to an overflow bin represented by `max`.
TOP = 1e7
#: Ratio of consecutive bin edges. The geometric midpoint of a bin is within
#: sqrt(GROWTH) - 1 = 0.25% of every value in it.
GROWTH = 1.005
_LOG_GROWTH = math.log(GROWTH)
N_BINS = math.ceil(math.log(TOP / ZERO_BELOW) / _LOG_GROWTH)
# counts[0] is the zero bin, counts[1..N_BINS] the log bins, counts[N_BINS + 1] the overflow.
_SIZE = N_BINS + 2
_MIDPOINTS = np.concatenate(([0.0], ZERO_BELOW * GROWTH ** (np.arange(N_BINS) + 0.5), [math.inf]))


class Histogram:
    """Counts of non-negative times (seconds) in log-spaced bins, with exact count, sum and max.

    Mergeable (`merge`) and picklable; memory is fixed (about 60 KiB) however many values arrive.
    """

    __slots__ = ("counts", "max", "min", "n", "total")

    def __init__(self) -> None:
        self.counts = np.zeros(_SIZE, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = 0.0
        self.min = math.inf

    def add(self, values: np.ndarray | list[float]) -> None:
        """Count every value of a batch."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            return
        self.n += int(x.size)
        self.total += float(x.sum())
        self.max = max(self.max, float(x.max()))
        self.min = min(self.min, float(x.min()))
        index = np.empty(x.size, dtype=np.int64)
        positive = x >= ZERO_BELOW
        index[~positive] = 0
        if positive.any():
            logs = np.log(x[positive] * (1.0 / ZERO_BELOW)) * (1.0 / _LOG_GROWTH)
            index[positive] = np.minimum(logs.astype(np.int64) + 1, N_BINS + 1)
        self.counts += np.bincount(index, minlength=_SIZE)

    def merge(self, other: Histogram) -> None:
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

    def __getstate__(self) -> tuple[np.ndarray, int, float, float, float]:
        return (self.counts, self.n, self.total, self.max, self.min)

    def __setstate__(self, state: tuple[np.ndarray, int, float, float, float]) -> None:
        self.counts, self.n, self.total, self.max, self.min = state


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
        if self.buffer:
            self.histogram.add(self.buffer)
            self.buffer = []
        return self.histogram
