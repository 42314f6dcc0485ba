"""Arrival times of a class's trace, MMPP or batch arrivals, block by block, for both engine paths.

Every draw comes from the class's own ARRIVALS stream of the RNG tree, and both paths take the
same blocks in the same order, so a scenario and seed give the same arrival times on either path.
Memory is bounded: a block holds about BLOCK arrivals whatever the rates and sojourns.
"""

from __future__ import annotations

import math

import numpy as np

from capsim.model.types import ArrivalProcess, BatchArrivals, MmppArrivals, TraceArrivals

#: Arrivals per block (about: an MMPP or batch block varies around it).
BLOCK = 4096


class ArrivalEpochs:
    """The arrival times of one open class with an arrival process, in non-decreasing order.

    `next_block()` returns the next times; an empty block means the class sends no more requests
    (a trace that ended without `loop`)."""

    def __init__(self, process: ArrivalProcess, rng: np.random.Generator) -> None:
        self.next_block = _generator(process, rng).next_block


def _generator(
    process: ArrivalProcess, rng: np.random.Generator
) -> _TraceReplay | _MmppDraws | _BatchDraws:
    if isinstance(process, TraceArrivals):
        return _TraceReplay(process)
    if isinstance(process, MmppArrivals):
        return _MmppDraws(process, rng)
    return _BatchDraws(process, rng)


class _TraceReplay:
    """The trace's times, then (with `loop`) the same times shifted by one period, and so on."""

    def __init__(self, trace: TraceArrivals) -> None:
        self.times = trace.times
        self.loop = trace.loop
        self.period = trace.period
        self.position = 0
        self.shift = 0.0

    def next_block(self) -> np.ndarray:
        if self.position >= self.times.size:
            if not self.loop or self.times.size == 0:
                return np.zeros(0)
            self.position = 0
            self.shift += self.period
        block = self.times[self.position : self.position + BLOCK] + self.shift
        self.position += block.size
        return block


class _BatchDraws:
    """Batches at Poisson epochs; each epoch repeated once per request of its batch."""

    def __init__(self, batch: BatchArrivals, rng: np.random.Generator) -> None:
        self.batch = batch
        self.rng = rng
        self.epochs = max(1, int(BLOCK // max(batch.size_mean, 1.0)))
        self.samples = np.asarray(batch.size_samples, dtype=np.int64)
        self.clock = 0.0

    def next_block(self) -> np.ndarray:
        batch, rng = self.batch, self.rng
        if batch.batch_rate <= 0.0:
            return np.zeros(0)
        epochs = self.clock + np.cumsum(rng.exponential(1.0 / batch.batch_rate, self.epochs))
        self.clock = float(epochs[-1])
        if batch.size_kind == "geometric":
            sizes = rng.geometric(1.0 / batch.size_mean, self.epochs)
        elif batch.size_kind == "empirical":
            sizes = rng.choice(self.samples, self.epochs)
        else:
            sizes = np.full(self.epochs, int(batch.size_mean))
        return np.repeat(epochs, sizes)


class _MmppDraws:
    """A two-state MMPP as Poisson arrivals over the intervals of its state path.

    The state path is drawn many sojourns at a time (exponential lengths, states alternating,
    the first state from the stationary distribution). Given the path, arrivals in an interval
    of length L at rate r are Poisson(r L) uniform points; an interval is cut where a block's
    expected count reaches BLOCK, which is exact because Poisson counts of disjoint pieces are
    independent."""

    def __init__(self, mmpp: MmppArrivals, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rates = np.asarray(mmpp.rates, dtype=np.float64)
        self.means = np.asarray(mmpp.mean_sojourn, dtype=np.float64)
        self.state = int(rng.random() < mmpp.stationary[1])
        self.clock = 0.0
        per_cycle = float(np.dot(self.rates, self.means))  # expected arrivals per two sojourns
        self.silent = per_cycle <= 0.0
        self.sojourns = 2 * int(min(max(math.ceil(BLOCK / max(per_cycle, 1e-300)), 1), 2048))
        self.starts = self.lengths = self.levels = np.zeros(0)

    def _draw_sojourns(self) -> None:
        states = (self.state + np.arange(self.sojourns)) % 2
        lengths = self.rng.exponential(self.means[states])
        ends = self.clock + np.cumsum(lengths)
        self.starts = np.concatenate((self.starts, ends - lengths))
        self.lengths = np.concatenate((self.lengths, lengths))
        self.levels = np.concatenate((self.levels, self.rates[states]))
        self.clock = float(ends[-1])
        self.state = (self.state + self.sojourns) % 2

    def _take_intervals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pending intervals whose expected arrivals add up to at most BLOCK (one cut short)."""
        expected = np.cumsum(self.levels * self.lengths)
        if expected[-1] <= BLOCK:
            taken = self.starts, self.lengths, self.levels
            self.starts = self.lengths = self.levels = np.zeros(0)
            return taken
        cut = int(np.searchsorted(expected, BLOCK))
        before = float(expected[cut - 1]) if cut > 0 else 0.0
        part = min((BLOCK - before) / float(self.levels[cut]), float(self.lengths[cut]))
        starts = np.append(self.starts[:cut], self.starts[cut])
        lengths = np.append(self.lengths[:cut], part)
        levels = self.levels[: cut + 1].copy()
        self.starts = self.starts[cut:].copy()
        self.lengths = self.lengths[cut:].copy()
        self.levels = self.levels[cut:]
        self.starts[0] += part
        self.lengths[0] -= part
        return starts, lengths, levels

    def next_block(self) -> np.ndarray:
        if self.silent:
            return np.zeros(0)
        while True:
            if self.starts.size == 0:
                self._draw_sojourns()
            starts, lengths, levels = self._take_intervals()
            counts = self.rng.poisson(levels * lengths)
            total = int(counts.sum())
            if total == 0:
                continue
            interval = np.repeat(np.arange(counts.size), counts)
            times = starts[interval] + self.rng.random(total) * lengths[interval]
            return np.sort(times)
