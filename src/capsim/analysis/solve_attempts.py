"""How `capsim solve` counts the attempts of a call (docs/cli.md, "Timeouts, errors and retries
in solve"): an attempt fails when the callee refuses it (a full waiting room), answers with an
error (a fault that lasts the whole run), or does not answer within the call's `timeout`; a call
with `retries` makes 1 + p + ... + p^max attempts at that failure probability p, waits its
backoff between them, and fails when every attempt fails. A timed-out attempt holds its caller
for the timeout, not for the callee's whole response.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capsim.model.distributions import Distribution
from capsim.model.types import Call, Model, Parallel, Retry, Step
from capsim.model.visits import expected_attempts

#: Points of the grid over [0, timeout] on which a response time's tail is integrated.
TAIL_POINTS = 1001


@dataclass(frozen=True)
class CallAttempts:
    """One call site's attempts, as solve counts them at the load it is solved at."""

    failing: float  # probability that one attempt fails (refused, an error, timed out)
    attempts: float  # expected attempts per call (1 + its retries)
    admitted: float  # share of the attempts the callee admits (not refused on the spot)
    held: float  # E[min(R, timeout)] / E[R]: the share of an admitted attempt's response waited
    backoff: float  # mean seconds a call waits between its attempts
    timed_out: float  # P(R > timeout) of an admitted attempt

    @property
    def call_failure(self) -> float:
        """The share of calls that fail: every attempt made failed. Attempts stop at the first
        success, so P(success) = (1 - p) x E[attempts] (Wald), budget included."""
        return min(1.0, max(0.0, 1.0 - (1.0 - self.failing) * self.attempts))


def steady_errors(model: Model) -> dict[int, float]:
    """Per tier, the share of its finished work answered with an error by the faults that last
    the whole measured run (from before the warmup ends to the end): 1 - prod(1 - error_rate).
    A fault that comes and goes has no steady state; solve leaves it out (fault_notes)."""
    start, end = model.simulation.warmup, model.horizon
    passing: dict[int, float] = {}
    for fault in model.faults:
        whole_run = fault.at <= start and (fault.until is None or fault.until >= end)
        if fault.error_rate > 0 and whole_run:
            passing[fault.tier] = passing.get(fault.tier, 1.0) * (1.0 - fault.error_rate)
    return {tier: 1.0 - share for tier, share in passing.items()}


def attempt_sites(model: Model) -> list[tuple[int, Call]]:
    """Every (class, call) whose attempts can fail beyond a full waiting room or be retried: a
    call with a `timeout` or `retries`, or to a tier with a steady error rate (synchronous
    callees only: a publish to a queue is answered at once)."""
    errors = steady_errors(model)
    sites: list[tuple[int, Call]] = []
    for k in range(len(model.classes)):
        for tier in model.tiers:
            for step in _calls_in(tier.work[k].calls):
                fails = step.timeout is not None or step.retry is not None or step.tier in errors
                if fails and not model.tiers[step.tier].is_async and (k, step) not in sites:
                    sites.append((k, step))
    return sites


def _calls_in(steps: tuple[Step, ...]) -> list[Call]:
    """The calls of `steps`, a parallel group's branches included."""
    found: list[Call] = []
    pending = list(steps)
    while pending:
        step = pending.pop()
        if isinstance(step, Call):
            found.append(step)
        elif isinstance(step, Parallel):
            pending.extend(step.branches)
    return found


def backoff_wait(retry: Retry, n: int) -> float:
    """The mean wait before retry n (1..max): min(cap, base 2^(n-1)) (exponential), base
    (constant) or 0 (none); half of it with full jitter (a uniform draw below it)."""
    if retry.backoff == "exponential":
        wait = min(retry.cap, retry.base * 2.0 ** (n - 1))
    elif retry.backoff == "constant":
        wait = retry.base
    else:
        wait = 0.0
    return wait / 2.0 if retry.jitter == "full" else wait


def mean_backoff(retry: Retry | None, failing: float, attempts: float) -> float:
    """Mean seconds a call waits between its attempts: retry n is made with probability p^n
    (scaled down alike where the budget caps the retries) and waits `backoff_wait`."""
    if retry is None or failing <= 0.0:
        return 0.0
    made = [min(failing, 1.0) ** n for n in range(1, retry.max + 1)]
    extra = sum(made)
    scale = (attempts - 1.0) / extra if extra > 0 else 0.0
    return scale * sum(m * backoff_wait(retry, n) for n, m in enumerate(made, start=1))


def call_attempts(
    call: Call,
    refused: float,
    error: float,
    tail: tuple[np.ndarray, np.ndarray] | None,
    mean_response: float,
) -> CallAttempts:
    """A call's attempts when the callee refuses `refused` of them, answers `error` of the rest
    with an error, and answers in `mean_response` on average with P(R > t) = `tail` (times,
    survival) on [0, timeout] (None without a timeout)."""
    timed_out, held = 0.0, 1.0
    if tail is not None and mean_response > 0:
        times, survival = tail
        timed_out = float(survival[-1])
        held = min(1.0, float(np.trapezoid(survival, times)) / mean_response)
    failing = refused + (1.0 - refused) * (1.0 - (1.0 - error) * (1.0 - timed_out))
    failing = min(max(failing, 0.0), 1.0)
    attempts = expected_attempts(call.retry, failing)
    return CallAttempts(
        failing=failing,
        attempts=attempts,
        admitted=1.0 - refused,
        held=held,
        backoff=mean_backoff(call.retry, failing, attempts),
        timed_out=timed_out,
    )


def response_tail(
    timeout: float,
    p_wait: float,
    mean_wait: float,
    work: Distribution | None,
    mean: float,
    variance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(times, P(R > t)) on [0, timeout] for a response R = W + X: the wait W an atom at zero
    and an exponential tail (P(wait) `p_wait`, mean `mean_wait`), X the time after it, with the
    distribution `work` where that is all the callee does (no calls), else a gamma with X's
    `mean` and `variance` (a two-moment fit). P(R > t) = P(X > t) + p_wait
    E[exp(-r (t - X)); X <= t] with r = p_wait / mean_wait."""
    times = np.linspace(0.0, max(timeout, 0.0), TAIL_POINTS)
    cdf = distribution_cdf(work, times) if work is not None else gamma_cdf(mean, variance, times)
    survival = 1.0 - cdf
    if p_wait <= 0.0 or mean_wait <= 0.0:
        return times, survival
    rate = p_wait / mean_wait
    step = times[1] - times[0] if len(times) > 1 else 0.0
    decay = math.exp(-rate * step)
    increments = np.diff(cdf, prepend=0.0)
    # y_i = decay y_(i-1) + increment_i: a first-order recursive filter, in C
    from scipy.signal import lfilter

    convolved = np.asarray(lfilter([1.0], [1.0, -decay], increments), dtype=float)
    return times, np.clip(survival + p_wait * convolved, 0.0, 1.0)


def gamma_cdf(mean: float, variance: float, x: np.ndarray) -> np.ndarray:
    """P(X <= x) of a gamma with this mean and variance (a constant when the variance is 0)."""
    if mean <= 0.0:
        return np.ones_like(x)
    if variance <= 1e-12 * mean * mean:
        return (x >= mean).astype(float)
    from scipy.special import gammainc  # only where a timeout's tail is needed

    shape = mean * mean / variance
    return np.asarray(gammainc(shape, x * shape / mean), dtype=float)


def distribution_cdf(dist: Distribution, x: np.ndarray) -> np.ndarray:
    """P(X <= x) of one of the scenario's service time distributions."""
    kind, p = dist.kind, dist.params
    if kind == "constant":
        return (x >= p[0]).astype(float)
    if kind == "exponential":
        return 1.0 - np.exp(-x / p[0]) if p[0] > 0 else np.ones_like(x)
    if kind == "lognormal":
        from scipy.special import erfc

        mu, sigma = p
        logs = np.log(np.maximum(x, 1e-300))
        return np.where(x > 0, 0.5 * erfc(-(logs - mu) / (sigma * math.sqrt(2.0))), 0.0)
    if kind == "gamma":
        shape, scale = p
        from scipy.special import gammainc

        return np.asarray(gammainc(shape, np.maximum(x, 0.0) / scale), dtype=float)
    if kind == "uniform":
        low, high = p
        if high <= low:
            return (x >= low).astype(float)
        return np.clip((x - low) / (high - low), 0.0, 1.0)
    assert dist.samples is not None
    ordered = np.sort(dist.samples)
    return np.searchsorted(ordered, x, side="right") / ordered.size
