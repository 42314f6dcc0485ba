"""Expected visits per request: the traffic equations of the call graph (forced-flow law)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from capsim import graphs
from capsim.model.types import Call, Model, OneOf, Parallel, Retry, Step, Tier


def _calls(
    model: Model,
    class_index: int,
    passing: Mapping[int, float],
    retry_loss: Mapping[int, float] | None = None,
    call_failing: Mapping[tuple[int, Call], float] | None = None,
) -> dict[int, dict[int, float]]:
    """calls[i][j]: expected calls from one visit of tier i to tier j, for one class (sparse);
    only the share `passing[i]` of the visits to tier i make its calls (a rate limit). A queue
    whose consumers take batches makes its calls once per batch: 1 / `batch_size` per message
    (full batches: the capacity bound; docs/dynamic.md, batch consumers). A call with a `retry`
    to a tier that fails an attempt with probability `retry_loss[j]` counts its expected
    attempts (`expected_attempts`); `call_failing[(class_index, call)]`, where given, is that
    call's own probability that an attempt fails (a timeout's share, errors), in place of it."""
    failing = {call: p for (k, call), p in (call_failing or {}).items() if k == class_index}
    calls: dict[int, dict[int, float]] = {}
    for tier in model.tiers:
        targets: dict[int, float] = {}
        for step in tier.work[class_index].calls:
            _add_sparse(
                targets,
                step,
                passing.get(tier.index, 1.0) / per_message(tier),
                retry_loss or {},
                failing,
            )
        calls[tier.index] = targets
    return calls


def expected_attempts(retry: Retry | None, failing: float) -> float:
    """Attempts per call when each fails independently with probability `failing` and the
    caller retries up to `retry.max` times: 1 + p + ... + p^max, the retries capped at the
    retry budget's share of first attempts."""
    if retry is None or failing <= 0.0:
        return 1.0
    failing = min(failing, 1.0)
    extra = sum(failing**n for n in range(1, retry.max + 1))
    if retry.budget is not None:
        extra = min(extra, retry.budget)
    return 1.0 + extra


def calls_per_visit(model: Model, class_index: int) -> dict[int, dict[int, float]]:
    """calls[i][j]: expected calls from one visit of tier i to tier j for one class (sparse),
    every visit making its calls."""
    return _calls(model, class_index, {})


def calls_reach(model: Model, start: int, target: int) -> bool:
    """Whether a visit to tier `start` leads, by calls of any class, to tier `target`."""
    for traffic in model.classes:
        rows = calls_per_visit(model, traffic.index)
        if any(target in rows.get(tier, {}) for tier in graphs.reachable(start, rows)):
            return True
    return False


def per_message(tier: Tier) -> int:
    """How many messages share one piece of the tier's work and one round of its calls: a batch
    consumer's batch size, 1 elsewhere."""
    return max(tier.batch_size, 1)


def _add_sparse(
    row: dict[int, float],
    step: Step,
    weight: float = 1.0,
    retry_loss: Mapping[int, float] | None = None,
    call_failing: Mapping[Call, float] | None = None,
) -> None:
    # A parallel step nests branches; walk them with a stack, not recursion.
    pending: list[tuple[Step, float]] = [(step, weight)]
    while pending:
        current, scale = pending.pop()
        if isinstance(current, Call):
            failing = (call_failing or {}).get(current)
            if failing is None:
                failing = (retry_loss or {}).get(current.tier, 0.0)
            attempts = expected_attempts(current.retry, failing)
            row[current.tier] = (
                row.get(current.tier, 0.0) + scale * current.probability * current.repeat * attempts
            )
        elif isinstance(current, OneOf):
            for tier, probability in current.options:
                row[tier] = row.get(tier, 0.0) + scale * probability
        elif isinstance(current, Parallel):
            pending.extend((branch, scale) for branch in current.branches)


def expected_visits(
    model: Model,
    synchronous: bool = False,
    passing: Mapping[int, float] | None = None,
    retry_loss: Mapping[int, float] | None = None,
    call_failing: Mapping[tuple[int, Call], float] | None = None,
) -> np.ndarray:
    """V[k, i]: expected visits to tier i by one request of class k (asynchronous work included;
    with `synchronous`, only the visits within the request's own response: a queue is visited
    by its publish, the work of its consumers is left out). `passing[i]`, when given, is the
    share of the visits to tier i that go on to its calls (what its rate limit lets through);
    the visits to tier i itself are all counted, refused or not. `retry_loss[j]`, when given,
    is the probability that an attempt at tier j fails: a retried call to it counts its
    expected attempts; `call_failing[(k, call)]`, where given, is one call's own (its timeout).

    Solves v = e_entry + v M one loop of tiers at a time, in call order, on the sparse calls
    (`capsim.graphs.expected_visits`); finite because validation refuses loops that are not.
    """
    visits = np.zeros((len(model.classes), len(model.tiers)))
    for traffic in model.classes:
        calls = _calls(model, traffic.index, passing or {}, retry_loss, call_failing)
        if synchronous:
            calls = {i: ({} if model.tiers[i].is_async else row) for i, row in calls.items()}
        solved = graphs.expected_visits(traffic.entry, calls)
        if solved is None:
            visits[traffic.index, :] = np.inf
            continue
        for tier, value in solved.items():
            visits[traffic.index, tier] = value
    return visits


def mean_work(model: Model) -> np.ndarray:
    """D[k, i]: expected own-work seconds at tier i per request of class k (service demand)."""
    visits = expected_visits(model)
    demand = np.zeros_like(visits)
    for tier in model.tiers:
        for k in range(len(model.classes)):
            demand[k, tier.index] = (
                visits[k, tier.index] * tier.work[k].service_time.mean / per_message(tier)
            )
    return demand
