"""The peak window of a daily profile: the part of the timeline a saturation search is about.

`saturate` answers on the profile's peak (its rate axis is the highest total open rate, and a
tier's share held is read on its busiest minute). When the load is the only thing that changes
during the run (a `profile`: no faults, autoscaler, spot interruptions or cold cache) and the
peak is a plateau held for at least a minute (PEAK_SPAN) inside the measured window, the search
points run that plateau alone, held steady: each open class at its rate on the plateau, the
scenario's warm-up before it (at least a tenth of the plateau), the plateau's length as the run. The morning and the ramp before
the peak cost most of a whole-timeline point's requests and tell nothing about the peak, and a
steady model gets the search's usual run lengths (docs/capacity.md, "Under a profile: the peak
window"). The verification of `max_rate_meeting_slos` still runs the scenario's own timeline.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from capsim.analysis.load_peaks import peak_open_rate
from capsim.analysis.peak import PEAK_SPAN
from capsim.model.features import conditions_change
from capsim.model.types import Model, Simulation, TrafficClass

#: The steady model's warm-up is at least this share of the plateau (as a scenario's default
#: warm-up is of its run): a scenario without one reaches its peak already loaded.
MIN_WARMUP_SHARE = 0.1
#: Rates closer than this (relative) are one rate.
_SAME_RATE = 1e-9


@dataclass(frozen=True)
class PeakWindow:
    """The plateau [start, end) (seconds from the start of the warm-up) and the steady model
    that runs it: every open class at its plateau rate, for end - start after the warm-up."""

    start: float
    end: float
    model: Model

    @property
    def length(self) -> float:
        return self.end - self.start


def _rate_after(traffic: TrafficClass, t: float, width: float) -> float:
    return traffic.rate_at(t + 1e-6 * width)


def _rate_before(traffic: TrafficClass, t: float, width: float) -> float:
    return traffic.rate_at(t - 1e-6 * width)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME_RATE * max(abs(a), abs(b), 1e-12)


def _flat_rates(open_classes: list[TrafficClass], start: float, end: float) -> list[float] | None:
    """Every open class's rate on [start, end) when none changes there (between two of the
    profiles' points every rate is linear, so flat at both ends is flat throughout)."""
    width = end - start
    rates = []
    for traffic in open_classes:
        first, last = _rate_after(traffic, start, width), _rate_before(traffic, end, width)
        if not _same(first, last):
            return None
        rates.append(first)
    return rates


def peak_plateau(model: Model) -> tuple[float, float, list[float]] | None:
    """The longest stretch of the measured window on which every open class's rate is constant
    and their total is the run's peak: (start, end, the open classes' rates), or None."""
    open_classes = [c for c in model.classes if not c.is_closed]
    peak = peak_open_rate(model)
    warmup, horizon = model.simulation.warmup, model.horizon
    moments = {warmup, horizon}
    for traffic in open_classes:
        moments.update(p.at for p in traffic.profile if warmup < p.at < horizon)
    ordered = sorted(moments)
    best: tuple[float, float, list[float]] | None = None
    current: tuple[float, float, list[float]] | None = None
    for start, end in itertools.pairwise(ordered):
        rates = _flat_rates(open_classes, start, end)
        if rates is None or not _same(sum(rates), peak):
            current = None
            continue
        if current is not None and all(map(_same, current[2], rates)):
            current = (current[0], end, current[2])
        else:
            current = (start, end, rates)
        if best is None or current[1] - current[0] > best[1] - best[0]:
            best = current
    return best


def peak_window(model: Model) -> PeakWindow | None:
    """The steady model of `model`'s peak plateau, when the search may run it instead of the
    whole timeline: only the open classes' profiles change during the run (the steady model has
    no changing conditions), the peak is held for at least PEAK_SPAN inside the measured window,
    and no profiled class has an arrival process of its own (a trace, MMPP, batches)."""
    if not conditions_change(model):
        return None
    if any(c.profile and c.process is not None for c in model.classes):
        return None
    plateau = peak_plateau(model)
    if plateau is None or plateau[1] - plateau[0] < PEAK_SPAN - 1e-9:
        return None
    start, end, rates = plateau
    flat = iter(rates)
    classes = tuple(
        c if c.is_closed else replace(c, profile=(), rate=next(flat)) for c in model.classes
    )
    warmup = max(model.simulation.warmup, MIN_WARMUP_SHARE * (end - start))
    simulation = Simulation(end - start, warmup, model.simulation.replications)
    # Nothing changes during the steady run: no per-bucket figures to record for a peak.
    steady = replace(model, classes=classes, simulation=simulation, timeseries=False)
    if conditions_change(steady):
        return None  # faults, an autoscaler, spot interruptions or a cold cache as well
    return PeakWindow(start, end, steady)
