"""Random draws: numpy batches handed out one value at a time, and draws that log or scale."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np

from capsim.engine.arrivals import ArrivalEpochs
from capsim.engine.events.clock import Clock
from capsim.engine.events.signatures import Draw
from capsim.engine.timeseries import (
    IntervalLog,
)
from capsim.model.distributions import Distribution

#: Draws per refill of a buffered random stream.
BATCH = 8192


def _epoch_times(epochs: ArrivalEpochs) -> Draw:
    """The next arrival time per call, inf once the arrivals have ended."""

    def times() -> Iterator[float]:
        while True:
            block = epochs.next_block()
            if block.size == 0:
                return
            yield from block.tolist()

    following = times()
    return lambda: next(following, math.inf)


def _buffered(sample: Callable[[int], np.ndarray]) -> Draw:
    """One value per call from batches of `sample(BATCH)`.

    The iterator is itertools' (a chain over a map of the batches), so a draw is a call into C
    with no Python frame; only a refill, every BATCH draws, runs Python (`sample`). Measured:
    a generator resumed per draw instead made the W3 variant's run about 3% slower (CPU time,
    interleaved rounds)."""

    def batch(_: object) -> list[float]:
        return sample(BATCH).tolist()

    return itertools.chain.from_iterable(map(batch, itertools.repeat(None))).__next__


def _distribution_draw(dist: Distribution, rng: np.random.Generator) -> Draw:
    if dist.is_constant:
        return itertools.repeat(float(dist.params[0])).__next__
    return _buffered(lambda n: dist.sample(rng, n))


def _counted_draw(draw: Draw, total: list[float]) -> Draw:
    """`draw`, adding each value to `total[0]`."""

    def counted() -> float:
        value = draw()
        total[0] += value
        return value

    return counted


def _slowed_draw(draw: Draw, factor: list[float]) -> Draw:
    """`draw` times the current `factor[0]` (a slowdown fault)."""

    def slowed() -> float:
        return draw() * factor[0]

    return slowed


def _logged_draw(draw: Draw, env: Clock, log: IntervalLog) -> Draw:
    """`draw`, logging each value as busy time starting now."""
    record = log.record

    def logged() -> float:
        value = draw()
        record(env._now, value)
        return value

    return logged
