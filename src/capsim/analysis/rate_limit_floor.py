"""The share of a class's requests a rate limit refuses whatever the capacity (docs/capacity.md,
"Past a rate limit"): a token bucket passes at most `burst` + `rate` x T over any stretch T, so
while the requests reaching it come faster than its rate it refuses the excess, and no instance
count, pool or replica behind it (or in front of it) changes that.

Over the measured window the rate reaching the tier is piecewise linear (the classes' profiles
are), so the refusals are integrated exactly: over each stretch where that rate is above the
token rate, the excess less one full bucket (the bucket refills between stretches).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from capsim.model.types import Call, Model, OneOf, Parallel, Step
from capsim.model.visits import expected_visits

#: Times closer than this (seconds) are one moment.
_SAME_TIME = 1e-9


@dataclass(frozen=True)
class RefusalFloor:
    """What a rate-limited tier refuses of one class over the window, whatever the capacity."""

    tier: str
    token_rate: float
    peak_reaching: float  # the highest rate of requests reaching the tier (all classes)
    varies: bool  # whether the rate reaching it changes over the window (a profile)
    share: float  # least share of the class's requests refused


def _steps_into(step: Step, target: int) -> list[Call | tuple[OneOf, int]]:
    """The calls (or one-of options, with their index) of `step` that go to tier `target`."""
    found: list[Call | tuple[OneOf, int]] = []
    pending = [step]
    while pending:
        current = pending.pop()
        if isinstance(current, Call) and current.tier == target:
            found.append(current)
        elif isinstance(current, OneOf):
            found.extend(
                (current, i) for i, (tier, _) in enumerate(current.options) if tier == target
            )
        elif isinstance(current, Parallel):
            pending.extend(current.branches)
    return found


def _plain(way: Call | tuple[OneOf, int]) -> bool:
    """A way in that sends a request at most once and loses it when refused: no repeat, retry
    or hedge (a retried or hedged attempt may pass later), no fallback to another tier."""
    if isinstance(way, Call):
        return way.repeat == 1 and way.retry is None and way.hedge is None
    one_of, i = way
    fallbacks = one_of.fallbacks or ()
    return i >= len(fallbacks) or fallbacks[i] is None


def reached_once(model: Model, class_index: int, tier_index: int, visits: np.ndarray) -> bool:
    """Whether a request of the class reaches the tier at most once, on its own (synchronous)
    path, along one chain of plain calls from its entry with no other rate limit on it: then
    each refusal there is one failed request."""
    traffic = model.classes[class_index]
    current = tier_index
    seen: set[int] = set()
    while current != traffic.entry:
        if current in seen:
            return False
        seen.add(current)
        callers = [
            (tier.index, way)
            for tier in model.tiers
            if visits[class_index, tier.index] > 0
            for step in tier.work[class_index].calls
            for way in _steps_into(step, current)
        ]
        if len(callers) != 1 or not _plain(callers[0][1]):
            return False
        caller = model.tiers[callers[0][0]]
        if caller.is_async or caller.rate_limit is not None:
            return False
        current = caller.index
    return True


def _window_pieces(model: Model) -> list[tuple[float, float]]:
    """The measured window cut at every profile point: every class's rate is linear on each."""
    start, end = model.simulation.warmup, model.horizon
    cuts = {start, end}
    for traffic in model.classes:
        cuts.update(p.at for p in traffic.profile if start < p.at < end)
    times = sorted(cuts)
    return [(a, b) for a, b in itertools.pairwise(times) if b - a > _SAME_TIME]


def _split_at_crossings(
    pieces: list[tuple[float, float]], reaching: np.ndarray, token_rate: float
) -> list[tuple[float, float]]:
    """`pieces` cut where the rate reaching the tier crosses the token rate."""
    out: list[tuple[float, float]] = []
    for (a, b), (low, high) in zip(pieces, reaching, strict=True):
        if (low - token_rate) * (high - token_rate) < 0:
            crossing = a + (token_rate - low) / (high - low) * (b - a)
            out.extend([(a, crossing), (crossing, b)])
        else:
            out.append((a, b))
    return out


def refusal_floor(model: Model, class_index: int, tier_index: int) -> RefusalFloor | None:
    """The least share of the class's requests the tier's rate limit refuses over the window
    (in expectation: a token bucket refuses whichever requests find it empty, so each class
    loses its share of the arrivals of each stretch beyond the token rate); None when the tier
    has no limit, a closed class reaches it, or the class does not reach it once and plainly
    (`reached_once`)."""
    tier = model.tiers[tier_index]
    limit = tier.rate_limit
    visits = expected_visits(model)
    if limit is None or not reached_once(model, class_index, tier_index, visits):
        return None
    if any(c.is_closed and visits[c.index, tier_index] > 0 for c in model.classes):
        return None
    per_request = visits[:, tier_index]
    pieces = _window_pieces(model)
    ends = [_rates_at_the_ends(model, a, b) for a, b in pieces]
    reaching_at_ends = np.array([[low @ per_request, high @ per_request] for low, high in ends])
    pieces = _split_at_crossings(pieces, reaching_at_ends, limit.rate)
    ends = [_rates_at_the_ends(model, a, b) for a, b in pieces]
    refused = offered = 0.0
    excess = arrivals = mine = 0.0  # of the current stretch beyond the token rate
    for (a, b), (low, high) in zip(pieces, ends, strict=True):
        reaching = (low + high) @ per_request / 2.0 * (b - a)
        beyond = reaching - limit.rate * (b - a)
        offered += (low[class_index] + high[class_index]) / 2.0 * (b - a)
        if beyond > _SAME_TIME:
            excess, arrivals = excess + beyond, arrivals + reaching
            mine += (
                (low[class_index] + high[class_index]) / 2.0 * per_request[class_index] * (b - a)
            )
            continue
        refused += _stretch_refusals(excess, arrivals, mine, limit.burst)
        excess = arrivals = mine = 0.0
    refused += _stretch_refusals(excess, arrivals, mine, limit.burst)
    reaching_at_ends = np.array([[low @ per_request, high @ per_request] for low, high in ends])
    peak, lowest = float(reaching_at_ends.max()), float(reaching_at_ends.min())
    return RefusalFloor(
        tier=tier.name,
        token_rate=limit.rate,
        peak_reaching=peak,
        varies=peak - lowest > 1e-9 * max(peak, 1.0),
        share=refused / offered if offered > 0 else 0.0,
    )


def _rates_at_the_ends(model: Model, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Every open class's rate at the two ends of [a, b], a piece on which each is linear, as
    limits from inside it (a profile's step at an end belongs to the next piece): read at the
    quarter points and extended to the ends."""

    def rates(t: float) -> np.ndarray:
        return np.array([0.0 if c.is_closed else c.rate_at(t) for c in model.classes])

    first, third = rates(a + (b - a) / 4.0), rates(a + 3.0 * (b - a) / 4.0)
    return (3.0 * first - third) / 2.0, (3.0 * third - first) / 2.0


def _stretch_refusals(excess: float, arrivals: float, mine: float, burst: float) -> float:
    """The class's requests refused in one stretch beyond the token rate: the excess less one
    full bucket, shared in proportion to the arrivals."""
    if arrivals <= 0:
        return 0.0
    return max(0.0, excess - burst) * mine / arrivals
