"""Expected visits per request: the traffic equations of the call graph (forced-flow law)."""

from __future__ import annotations

import numpy as np

from capsim.model.types import Call, Model, OneOf, Parallel, Step


def _add_step_calls(row: np.ndarray, step: Step, weight: float = 1.0) -> None:
    if isinstance(step, Call):
        row[step.tier] += weight * step.probability * step.repeat
    elif isinstance(step, OneOf):
        for tier, probability in step.options:
            row[tier] += weight * probability
    elif isinstance(step, Parallel):
        for branch in step.branches:
            _add_step_calls(row, branch, weight)


def call_matrix(model: Model, class_index: int) -> np.ndarray:
    """M[i, j]: expected calls from one visit of tier i to tier j, for requests of one class."""
    n = len(model.tiers)
    matrix = np.zeros((n, n))
    for tier in model.tiers:
        for step in tier.work[class_index].calls:
            _add_step_calls(matrix[tier.index], step)
    return matrix


def spectral_radius(matrix: np.ndarray) -> float:
    if matrix.size == 0:
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def expected_visits(model: Model) -> np.ndarray:
    """V[k, i]: expected visits to tier i by one request of class k (asynchronous work included).

    Solves v = e_entry + v M, i.e. v = e_entry (I - M)^-1; finite only when the spectral radius
    of M is below 1, which the model builder guarantees.
    """
    n = len(model.tiers)
    visits = np.zeros((len(model.classes), n))
    for traffic in model.classes:
        matrix = call_matrix(model, traffic.index)
        entry = np.zeros(n)
        entry[traffic.entry] = 1.0
        visits[traffic.index] = np.linalg.solve((np.eye(n) - matrix).T, entry)
    return visits


def mean_work(model: Model) -> np.ndarray:
    """D[k, i]: expected own-work seconds at tier i per request of class k (service demand)."""
    visits = expected_visits(model)
    demand = np.zeros_like(visits)
    for tier in model.tiers:
        for k in range(len(model.classes)):
            demand[k, tier.index] = visits[k, tier.index] * tier.work[k].service_time.mean
    return demand
