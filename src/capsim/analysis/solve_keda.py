"""The consumers a KEDA scaler runs at a queue's steady load, for `capsim solve` (docs/cli.md,
"A queue whose consumers KEDA scales"). At each poll the HPA rule asks for ceil(metric /
target) consumers within [max(min, 1), max] and changes nothing within its tolerance; a
scale-up applies at once, a scale-down only when no poll of its stabilization window asked for
more. Solve follows that rule on the mean metric of each count's steady state, from the
consumers the queue starts with: it ends on a count the rule keeps, or in a cycle (a backlog
target is a level, not a rate: with too few consumers the backlog grows, with enough of them
it is near 0 and asks for fewer), and the scaler spends most of a cycle at its highest count,
which it holds for a whole stabilization window while the lower ones last about a poll.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from capsim.model.types import ConsumerScaling, Model, Tier

#: Counts the HPA rule is followed through at most (each a solve of the network); it ends on a
#: count or a cycle in a handful of steps in practice.
MOST_STEPS = 64


@dataclass(frozen=True)
class QueueState:
    """A queue's steady state at some consumer count, as its scaler sees it."""

    stable: bool
    metric: float  # the mean backlog (messages waiting) or lag (waiting or being consumed)
    arrival_rate: float  # messages per second
    highest: float  # the highest metric the polls of a stabilization window read (typically)


#: The queue (tier index) of this model, solved.
QueueMetric = Callable[[Model, int], QueueState]


@dataclass(frozen=True)
class SettledConsumers:
    """Where a queue's scaler settles at the solved load."""

    tier: str
    consumers: int
    metric: float | None  # the scaler's metric there (None: no steady state even at max)
    scaling: ConsumerScaling
    cycle: tuple[int, ...]  # the counts the rule goes round, in order (one: a count it keeps)


def with_consumers(model: Model, index: int, consumers: int) -> Model:
    """`model` with the KEDA queue at `index` running `consumers` consumers."""
    tier = model.tiers[index]
    assert tier.consumer_scaling is not None
    workers = consumers * tier.consumer_scaling.per_consumer
    tiers = list(model.tiers)
    tiers[index] = replace(tier, concurrency=workers, consumers=consumers)
    return replace(model, tiers=tuple(tiers))


def polls_per_window(scaling: ConsumerScaling) -> int:
    """The polls of one scale-down stabilization window (at least one)."""
    return max(1, math.floor(scaling.scale_down_stabilization / scaling.polling_interval))


def next_count(scaling: ConsumerScaling, consumers: int, state: QueueState) -> int:
    """The HPA rule on this steady state: the count the highest recommendation of a
    stabilization window asks for (a scale-up applies at the first poll that asks for more, a
    scale-down takes the window's highest), no change within the tolerance, within [max(min,
    1), max]; a growing backlog asks for the max."""
    low = max(scaling.min, 1)
    if not state.stable:
        return scaling.max
    ratio = state.highest / (scaling.target * consumers)
    if abs(ratio - 1.0) <= scaling.tolerance:
        return consumers
    return min(max(math.ceil(state.highest / scaling.target - 1e-12), low), scaling.max)


def settle_consumers(
    model: Model, queue_metric: QueueMetric
) -> tuple[Model, list[SettledConsumers]]:
    """`model` with every KEDA queue at the consumers its scaler settles on (one queue at a
    time, in tier order; a queue's consumer count changes no other tier's arrivals), and where
    each settled. A queue that no count up to `max` keeps in steady state stays at `max`."""
    settled: list[SettledConsumers] = []
    for tier in model.tiers:
        scaling = tier.consumer_scaling
        if scaling is None:
            continue
        count, metric, cycle = _where_it_settles(model, tier, scaling, queue_metric)
        model = with_consumers(model, tier.index, max(count, 1))  # idle at 0: no work to solve
        settled.append(SettledConsumers(tier.name, count, metric, scaling, cycle))
    return model, settled


def _where_it_settles(
    model: Model, tier: Tier, scaling: ConsumerScaling, queue_metric: QueueMetric
) -> tuple[int, float | None, tuple[int, ...]]:
    """The highest count of the cycle the rule ends in from the queue's first consumers (a
    count it keeps is a cycle of one), the metric there, and the cycle; with no message at all,
    `min` (the scaler is never active)."""
    states: dict[int, QueueState] = {}

    def judged(count: int) -> QueueState:
        if count not in states:
            states[count] = queue_metric(with_consumers(model, tier.index, count), tier.index)
        return states[count]

    count = min(max(scaling.initial, scaling.min, 1), scaling.max)
    if judged(count).arrival_rate == 0.0:
        return scaling.min, 0.0, (scaling.min,)
    visited: list[int] = []
    while count not in visited and len(visited) < MOST_STEPS:
        visited.append(count)
        count = next_count(scaling, count, judged(count))
    # A rule still wandering after MOST_STEPS counts: its last ones stand for the cycle.
    cycle = tuple(visited[visited.index(count) :] if count in visited else visited[-2:])
    held = max(cycle)
    state = judged(held)
    return held, state.metric if state.stable else None, cycle
