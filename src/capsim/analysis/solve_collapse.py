"""When a blocking pool that calls itself back collapses under load (docs/calibration.md, "A
service that calls itself", `collapse`).

A lone request deadlocks a pool of W workers when it nests W + 1 deep (deadlock.py): q^W of
requests, negligible for a deep pool. Under load the chains of concurrent requests share the
workers: a visit that has called the tier back holds its worker as a *parent* until the nested
visit (and its own nested visits) answer, and when the parents of all the requests in flight
hold every worker, the nested visits they wait for find none: the pool is deadlocked. So the
pool collapses at a load far below its bound (workers / demand), when the parents' number
reaches W often enough.

The figures count the parents as if every visit found a worker at once (an infinite pool): a
request's chain goes one stage deeper with probability q after each stage of mean length s, so
at r visits a second, r (1 - q) chains start a second and the number of requests currently
j stages deep is Poisson with mean r (1 - q) q^(j-1) s, independently for each j (each
request's path is independent of the others': M/G/infinity). The parents P = sum (j - 1) N_j
are a compound Poisson count, whose distribution the Panjer recursion gives exactly; the rate
at which P climbs to W is P(P = W - 1) times the rate at which a working visit calls back
(q / s per working visit, E[working | P = W - 1] of them, taken as its mean given the count).
Its inverse is the expected time to the collapse, an upper bound (in the real pool nested
visits also wait for workers, so parents hold longer and the collapse comes sooner), and the
*collapse rate* is the load at which that time is the simulated run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Renormalise the recursion's unnormalised probabilities beyond this (they grow as the mean).
_RESCALE = 1e200


@dataclass(frozen=True)
class PoolChains:
    """A self-calling pool's chains: `q` the chance a visit calls the tier back (the most
    likely loop), `stage` the mean seconds a visit holds its worker before its nested visit
    arrives or it answers (its own work, and the calls on the loop before the tier), `workers`
    W."""

    q: float
    stage: float
    workers: int

    def seconds_to_collapse(self, visit_rate: float) -> float:
        """Expected seconds until the parents of concurrent requests hold all W workers, at
        `visit_rate` visits a second (nested ones included); inf without traffic."""
        if visit_rate <= 0 or self.stage <= 0 or self.q <= 0 or self.workers <= 0:
            return math.inf
        if self.q >= 1:
            return 0.0
        chains = visit_rate * (1.0 - self.q)
        first = chains * self.stage  # mean requests one stage deep
        if first * self.q / (1.0 - self.q) ** 2 >= self.workers - 1:
            return 0.0  # the parents' mean alone holds every worker: collapsed at once
        if _log_tail_bound(first, self.q, self.workers - 1) < -700:
            return math.inf  # far beyond the run of any scenario (e^-700)
        log_edge = _log_parents_pmf(first, self.q, self.workers - 1)
        if log_edge == -math.inf:
            return math.inf
        # Visits at work given W - 1 parents: those not nested (independent of the parents,
        # mean r (1 - q) s), and one for each chain of parents (1 - q of a parent on average).
        working = chains * self.stage + (1.0 - self.q) * (self.workers - 1)
        rate_up = (self.q / self.stage) * working
        log_rate = log_edge + math.log(rate_up)
        return math.exp(-log_rate) if log_rate > -700 else math.inf

    def collapse_rate(self, visit_rate: float, seconds: float) -> float | None:
        """The visits a second at which the collapse is expected within `seconds` (by
        bisection on the load: the expected time falls as the load grows); None when it is not
        even at 1,000 times `visit_rate`."""
        if visit_rate <= 0 or seconds <= 0:
            return None
        low, high = 0.0, visit_rate
        while self.seconds_to_collapse(high) > seconds:
            low, high = high, 2.0 * high
            if high > 1000.0 * visit_rate:
                return None
        for _ in range(60):
            middle = 0.5 * (low + high)
            if self.seconds_to_collapse(middle) > seconds:
                low = middle
            else:
                high = middle
            if high - low <= 1e-6 * high:
                break
        return high


def _log_tail_bound(mean_first: float, q: float, count: int) -> float:
    """Chernoff's bound on log P(P >= count): min over t of log E[e^(tP)] - t count, where
    log E[e^(tP)] = a (q e^t / (1 - q e^t) - q / (1 - q)) for q e^t < 1 (a = `mean_first`)."""
    best = 0.0
    for step in range(1, 200):
        t = -math.log(q) * step / 200.0
        z = q * math.exp(t)
        value = mean_first * (z / (1.0 - z) - q / (1.0 - q)) - t * count
        best = min(best, value)
    return best


def _log_parents_pmf(mean_first: float, q: float, count: int) -> float:
    """log P(P = count) for P = sum_j (j - 1) N_j, N_j ~ Poisson(mean_first q^(j-1)): parents
    come in jumps of size i = j - 1 >= 1 at Poisson rate a q^i (a = mean_first), so Panjer's
    recursion p_h = (1/h) sum_i i a q^i p_(h-i) holds; with geometric jumps its sums follow
    A_h = q (p_(h-1) + A_(h-1)) and B_h = q (p_(h-1) + B_(h-1) + A_(h-1)), p_h = a B_h / h:
    O(count), kept in scale by renormalising (log space)."""
    if count < 0:
        return -math.inf
    total = mean_first * q / (1.0 - q)  # the mean number of jumps
    p_prev, a_sum, b_sum, log_scale = 1.0, 0.0, 0.0, -total  # p_0 = exp(-total)
    for h in range(1, count + 1):
        a_next = q * (p_prev + a_sum)
        b_next = q * (p_prev + b_sum + a_sum)
        p_prev, a_sum, b_sum = mean_first * b_next / h, a_next, b_next
        if p_prev > _RESCALE or a_sum > _RESCALE or b_sum > _RESCALE:
            p_prev, a_sum, b_sum = p_prev / _RESCALE, a_sum / _RESCALE, b_sum / _RESCALE
            log_scale += math.log(_RESCALE)
        if p_prev == 0.0 and a_sum == 0.0 and b_sum == 0.0:
            return -math.inf
    return math.log(p_prev) + log_scale if p_prev > 0 else -math.inf
