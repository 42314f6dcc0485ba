"""The measurement window, the time buckets and the RNG tree address of one replication."""

from __future__ import annotations

import numpy as np

from capsim.engine import streams
from capsim.engine.histogram import Histogram
from capsim.engine.timeseries import (
    new_series,
)
from capsim.model.types import (
    Model,
)

#: Samples of the number waiting per tier over the window (to tell a growing queue).
TRACE_POINTS = 50


def _add_zeros(histogram: Histogram, zeros: int) -> None:
    """Count `zeros` exact zeros without materialising them."""
    if zeros:
        histogram.counts[0] += zeros
        histogram.n += zeros
        histogram.min = 0.0


# ---- the simulation -------------------------------------------------------------------------


class _Window:
    """The measurement window, the time buckets (if any) and the RNG tree address of a run."""

    def __init__(self, model: Model, replication: int) -> None:
        self.warmup = model.simulation.warmup
        self.horizon = model.horizon
        self.seed = model.seed
        self.replication = replication
        self.series = new_series(model)
        self.faults = model.faults

    def tier_rng(self, tier: str, role: int) -> np.random.Generator:
        """Tier `tier`'s stream for `role`, keyed by the tier's model name."""
        return streams.tier_stream(self.seed, self.replication, tier, role)

    def class_rng(self, name: str, role: int) -> np.random.Generator:
        """Class `name`'s stream for `role`, keyed by the class's name."""
        return streams.class_stream(self.seed, self.replication, name, role)
