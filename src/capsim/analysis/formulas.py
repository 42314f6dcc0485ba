"""Queueing formulas: exact where theory gives an answer, named approximations elsewhere.

Every time is in the caller's unit (seconds in capsim); `lam` is an arrival rate, `mean_service`
a mean service time. Functions raise ValueError for an unstable open queue (rho >= 1).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np


def erlang_b(servers: int, offered: float) -> float:
    """Blocking probability of M/G/c/c with offered load a = lam * E[S] (insensitive)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def erlang_c(servers: int, offered: float) -> float:
    """Probability of waiting in M/M/c with offered load a = lam * E[S] < c."""
    rho = offered / servers
    if rho >= 1.0:
        raise ValueError(f"unstable: rho={rho:.3g} >= 1")
    b = erlang_b(servers, offered)
    return b / (1.0 - rho * (1.0 - b))


def _bisect(survival: Callable[[float], float], q: float, scale: float) -> float:
    """Smallest t with survival(t) <= 1 - q, by bisection."""
    target = 1.0 - q
    if survival(0.0) <= target:
        return 0.0
    hi = max(scale, 1e-12)
    while survival(hi) > target:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if survival(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class QueueFigures:
    """Steady-state figures of one station (per instance), with the method that produced them.

    `wait_survival(t)` = P(Wq > t) when a formula for the waiting-time distribution is known.
    """

    utilization: float
    p_wait: float
    mean_wait: float
    mean_sojourn: float
    method: str
    exact: bool
    p_block: float = 0.0
    throughput: float = 0.0
    wait_survival: Callable[[float], float] | None = None
    sojourn_survival: Callable[[float], float] | None = None

    def wait_quantile(self, q: float) -> float | None:
        if self.wait_survival is None:
            return None
        return _bisect(self.wait_survival, q, max(self.mean_wait, 1e-9))

    def sojourn_quantile(self, q: float) -> float | None:
        if self.sojourn_survival is None:
            return None
        return _bisect(self.sojourn_survival, q, max(self.mean_sojourn, 1e-9))


def mmc(servers: int, lam: float, mean_service: float) -> QueueFigures:
    """M/M/c (Erlang C): exact means and waiting/sojourn distributions."""
    mu = 1.0 / mean_service
    offered = lam * mean_service
    c_prob = erlang_c(servers, offered)
    theta = servers * mu - lam
    mean_wait = c_prob / theta

    def wait_sf(t: float) -> float:
        return c_prob * math.exp(-theta * t)

    def sojourn_sf(t: float) -> float:
        if abs(theta - mu) < 1e-12 * mu:
            bracket = (1.0 + mu * t) * math.exp(-mu * t)
        else:
            bracket = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
        return (1.0 - c_prob) * math.exp(-mu * t) + c_prob * bracket

    return QueueFigures(
        utilization=offered / servers,
        p_wait=c_prob,
        mean_wait=mean_wait,
        mean_sojourn=mean_wait + mean_service,
        method="M/M/c (Erlang C)" if servers > 1 else "M/M/1",
        exact=True,
        throughput=lam,
        wait_survival=wait_sf,
        sojourn_survival=sojourn_sf,
    )


def mgc_approx(
    servers: int, lam: float, mean_service: float, scv_service: float, scv_arrival: float = 1.0
) -> QueueFigures:
    """G/G/c by Allen–Cunneen (exact P-K mean for M/G/1): Wq = Wq(M/M/c) (ca² + cs²) / 2.

    The waiting time is approximated as an atom at zero (1 - P(wait)) and an exponential tail
    with the same mean, which is exact for M/M/c and a documented approximation otherwise.
    """
    base = mmc(servers, lam, mean_service)
    factor = (scv_arrival + scv_service) / 2.0
    mean_wait = base.mean_wait * factor
    p_wait = base.p_wait
    exact = servers == 1 and scv_arrival == 1.0
    if servers == 1 and scv_arrival == 1.0:
        method = "M/G/1 (Pollaczek–Khinchine)" if scv_service != 1.0 else base.method
    else:
        method = "G/G/c (Allen–Cunneen approximation)"
    if scv_service == 1.0 and scv_arrival == 1.0:
        return base
    rate = p_wait / mean_wait if mean_wait > 0 else math.inf

    def wait_sf(t: float) -> float:
        return p_wait * math.exp(-rate * t) if rate < math.inf else 0.0

    return QueueFigures(
        utilization=base.utilization,
        p_wait=p_wait,
        mean_wait=mean_wait,
        mean_sojourn=mean_wait + mean_service,
        method=method,
        exact=exact,
        throughput=lam,
        wait_survival=wait_sf,
    )


#: Up to this n, scipy's `gammaln(n + 1)` is the logarithm of n! computed as a float from the
#: exact product of the factors: the same bits as `math.log(math.factorial(n))`, which a test
#: checks against scipy. So a station of up to this many servers needs no scipy for its
#: probabilities (scipy's import is ~0.17 s of CPU, more than a short `capsim run` simulates).
EXACT_LOG_FACTORIALS = 11


def log_factorials(count: int) -> np.ndarray:
    """log(n!) for n = 0 .. count - 1, exactly as `scipy.special.gammaln(n + 1)` gives them."""
    if count <= EXACT_LOG_FACTORIALS + 1:
        return np.array([math.log(math.factorial(n)) for n in range(count)], dtype=float)
    from scipy.special import gammaln  # imported here: only where a formula needs it

    return np.asarray(gammaln(np.arange(count) + 1.0), dtype=float)


def mmck(servers: int, capacity: int, lam: float, mean_service: float) -> QueueFigures:
    """M/M/c/K with K = servers + waiting room: exact blocking, means and admitted sojourn."""
    mu = 1.0 / mean_service
    a = lam / mu
    # log of a^n / n! up to the servers, then a^c / c! (a / c)^(n - c): whole arrays at once (a
    # waiting room of 500,000 is half a million terms).
    n = np.arange(capacity + 1)
    if a > 0:
        # log n! where it is used (n <= servers); the other branch of `where` ignores the rest.
        used = min(servers, capacity) + 1
        log_factorial = np.zeros(capacity + 1)
        log_factorial[:used] = log_factorials(used)
        log_terms = np.where(
            n <= servers,
            n * math.log(a) - log_factorial,
            servers * math.log(a)
            - math.lgamma(servers + 1)
            + (n - servers) * math.log(a / servers),
        )
    else:
        log_terms = np.where(n == 0, 0.0, -np.inf)
    log_terms -= log_terms.max()
    pi = np.exp(log_terms)
    pi /= pi.sum()
    p_block = float(pi[capacity])
    throughput = lam * (1.0 - p_block)
    population = np.arange(capacity + 1)
    queue = float(np.sum(np.maximum(population - servers, 0) * pi))
    mean_wait = queue / throughput if throughput > 0 else 0.0
    admitted = pi[:capacity] / pi[:capacity].sum() if capacity > 0 else np.zeros(0)
    p_wait = float(admitted[servers:].sum()) if capacity > servers else 0.0

    # An admitted arrival that finds n >= c waits Erlang(n - c + 1, c mu), whose survival at t is
    # the Poisson(c mu t) CDF at n - c: one cumulative sum gives every term at once.
    waiting_weights = admitted[servers:capacity] if capacity > servers else np.zeros(0)
    stages = np.arange(waiting_weights.size)
    # log k! of every stage, made when a percentile is first asked for (not for the means).
    remembered: list[np.ndarray] = []

    def stage_log_factorials() -> np.ndarray:
        if not remembered:
            remembered.append(log_factorials(stages.size))
        return remembered[0]

    def wait_sf(t: float) -> float:
        if waiting_weights.size == 0:
            return 0.0
        x = servers * mu * t
        if x <= 0.0:
            return float(waiting_weights.sum())
        pmf = np.exp(stages * math.log(x) - x - stage_log_factorials())
        return float(np.sum(waiting_weights * np.cumsum(pmf)))

    immediate = float(admitted[:servers].sum()) if capacity > 0 else 0.0
    theta = servers * mu

    def sojourn_sf(t: float) -> float:
        # T = Wq + S with S ~ Exp(mu) independent: P(T > t) = sum over what an arrival finds of
        # P(Wq > t) + E[exp(-mu (t - Wq)); Wq <= t], closed-form for an Erlang(k, c mu) wait.
        survival = immediate * math.exp(-mu * t)
        if waiting_weights.size == 0:
            return survival
        k = stages + 1
        if servers == 1:
            # c mu = mu: exp(-mu t) E[exp(mu W); W <= t] is the Poisson(mu t) pmf at k.
            x = mu * t
            if x > 0:
                below = np.exp(k * math.log(x) - x - (stage_log_factorials() + np.log(k)))
            else:
                below = np.zeros(k.size)
        else:
            y = (theta - mu) * t
            if y > 0:
                pmf = np.exp(stages * math.log(y) - y - stage_log_factorials())
                reached = np.clip(1.0 - np.cumsum(pmf), 0.0, 1.0)  # P(Erlang(k, theta - mu) <= t)
            else:
                reached = np.zeros(k.size)
            with np.errstate(divide="ignore"):
                log_terms = k * math.log(theta / (theta - mu)) - mu * t + np.log(reached)
            below = np.exp(log_terms)
        return survival + float(np.sum(waiting_weights * (wait_tail(t) + below)))

    def wait_tail(t: float) -> np.ndarray:
        x = theta * t
        if x <= 0.0:
            return np.ones(waiting_weights.size)
        return np.cumsum(np.exp(stages * math.log(x) - x - stage_log_factorials()))

    loss = capacity == servers
    return QueueFigures(
        utilization=throughput * mean_service / servers,
        p_wait=p_wait,
        mean_wait=mean_wait,
        mean_sojourn=mean_wait + mean_service,
        method="Erlang B (M/G/c/c, insensitive)" if loss else "M/M/c/K",
        exact=True,
        p_block=p_block,
        throughput=throughput,
        wait_survival=wait_sf,
        sojourn_survival=sojourn_sf,
    )


def round_robin_sigma(instances: int, lam_per_instance: float, mean_service: float) -> float:
    """GI/M/1 root sigma = A*(mu (1 - sigma)) for Erlang-n inter-arrival times (round robin)."""
    mu = 1.0 / mean_service
    total = lam_per_instance * instances
    sigma = lam_per_instance * mean_service
    for _ in range(10_000):
        new = (total / (total + mu * (1.0 - sigma))) ** instances
        if abs(new - sigma) < 1e-15:
            break
        sigma = new
    return sigma


def jsq_d_mean_sojourn(lam_per_server: float, d: int, mean_service: float) -> float:
    """Mean sojourn of JSQ(d) (power of d choices), mean-field limit, single-worker servers."""
    total, i = 0.0, 1
    while True:
        term = lam_per_server ** ((d**i - d) / (d - 1))
        total += term
        if term < 1e-15 or i > 200:
            break
        i += 1
    return total * mean_service


@dataclass(frozen=True)
class ClosedFigures:
    """Solution of a single-class closed network with a delay (think) station: exact, or for
    a population beyond `CLOSED_EXACT_USERS` the large-population approximation (`exact`)."""

    throughput: float
    response_time: float
    queue: list[float]  # mean number at each station (waiting + in service)
    utilization: list[float]  # mean fraction of each station's servers busy
    exact: bool = True
    #: Solved as a loop through blocking callers (solve.py `_closed_loop`), not product form.
    loop: bool = False


#: Populations up to this many users are solved exactly (`_closed_network`: its work grows
#: with the square of the users, 0.15 s for 1,000 users at three stations, hours for 100,000);
#: larger ones by the large-population approximation (`closed_network_large`).
CLOSED_EXACT_USERS = 1000


def closed_network(
    demands: Sequence[float], servers: Sequence[int], think_time: float, users: int
) -> ClosedFigures:
    """Exact product-form solution by Buzen's convolution with load-dependent stations.

    Station i has `servers[i]` servers and service demand D_i (visits x mean service); its
    factor is f_i(n) = D_i^n / prod_{k<=n} min(k, c_i). The think station is a delay station.
    Values are scaled per step to stay finite for large populations.

    The work grows with the square of the users, and the capacity searches ask for the same
    network thousands of times (a `capsim run` footer of a closed class of 50 users: 18,810
    solutions of 10 distinct networks, 2 minutes; of 400 users, hours), so solutions are kept.
    Beyond `CLOSED_EXACT_USERS` users: `closed_network_large`.
    """
    if users > CLOSED_EXACT_USERS:
        return closed_network_large(demands, servers, think_time, users)
    solved = _closed_network(
        tuple(float(d) for d in demands),
        tuple(int(c) for c in servers),
        float(think_time),
        int(users),
    )
    return ClosedFigures(
        throughput=solved.throughput,
        response_time=solved.response_time,
        queue=list(solved.queue),
        utilization=list(solved.utilization),
    )


@functools.lru_cache(maxsize=1024)
def _closed_network(
    demands: tuple[float, ...], servers: tuple[int, ...], think_time: float, users: int
) -> ClosedFigures:
    if users == 0:
        return ClosedFigures(
            throughput=0.0,
            response_time=0.0,
            queue=[0.0] * len(demands),
            utilization=[0.0] * len(demands),
        )
    visited = [i for i, demand in enumerate(demands) if demand > 0]
    if len(visited) < len(demands):
        return _with_unvisited_stations(
            closed_network([demands[i] for i in visited], [servers[i] for i in visited],
                           think_time, users),
            visited, len(demands),
        )  # fmt: skip
    n = np.arange(users + 1)

    def log_factors(demand: float, count: int | None) -> np.ndarray:
        divisors = n[1:] if count is None else np.minimum(n[1:], count)
        with np.errstate(divide="ignore"):
            steps = math.log(demand) - np.log(divisors) if demand > 0 else np.full(users, -np.inf)
        return np.concatenate(([0.0], np.cumsum(steps)))

    def log_convolve(parts: list[np.ndarray]) -> np.ndarray:
        # Convolution in the log domain, so that populations of thousands stay finite.
        g = np.full(users + 1, -np.inf)
        g[0] = 0.0
        for f in parts:
            out = np.empty(users + 1)
            for m in range(users + 1):
                terms = g[: m + 1] + f[m::-1]
                top = terms.max()
                out[m] = top + math.log(np.exp(terms - top).sum()) if top > -np.inf else -np.inf
            g = out
        return g

    stations = [log_factors(d, c) for d, c in zip(demands, servers, strict=True)]
    delay = log_factors(think_time, None)
    everything = log_convolve([*stations, delay])
    throughput = math.exp(everything[users - 1] - everything[users])
    queue, utilization = [], []
    for i, f in enumerate(stations):
        others = log_convolve([*stations[:i], *stations[i + 1 :], delay])
        marginal = np.exp(f + others[::-1] - everything[users])  # P(n at station i)
        queue.append(float(np.sum(n * marginal)))
        utilization.append(float(np.sum(np.minimum(n, servers[i]) * marginal)) / servers[i])
    response = users / throughput - think_time
    return ClosedFigures(
        throughput=throughput, response_time=response, queue=queue, utilization=utilization
    )


def closed_network_large(
    demands: Sequence[float], servers: Sequence[int], think_time: float, users: int
) -> ClosedFigures:
    """The large-population approximation of a single-class closed network (docs/cli.md, "A
    closed class of more than 1,000 users"): each station an M/M/c queue (c = its servers)
    fed at the class's throughput X, and X the fixed point of Little's law over the whole
    loop, users = X (think time + sum of the stations' response times R_i(X)), found by
    bisection on [0, the bottleneck's capacity).

    With many users, most of them thinking, the requests reaching a station are close to a
    Poisson stream, so the open formulas fit; the population's own limit is kept by the loop.
    Against the exact solution (500 to 3,000 users, tests/test_solve_large_closed.py): the
    throughput within 1%, the response time within 4% for populations at least 20% away from
    the knee N* = (sum of demands + think time) / the bottleneck's demand per server, and up to
    27% at the knee itself (where the exact response time grows as the square root of N*).
    Work: a bisection of some 100 steps, whatever the population."""
    if users <= 0:
        return ClosedFigures(0.0, 0.0, [0.0] * len(demands), [0.0] * len(demands), exact=False)
    stations = [(float(d), int(c)) for d, c in zip(demands, servers, strict=True)]
    capacity = min((c / d for d, c in stations if d > 0), default=math.inf)

    def response(x: float) -> list[float]:
        return [d + _mmc_wait(c, x * d, d) if d > 0 else 0.0 for d, c in stations]

    def population(x: float) -> float:
        return x * (think_time + sum(response(x)))

    if math.isinf(capacity):  # no station does any work: every user is thinking
        throughput = users / think_time if think_time > 0 else math.inf
    else:
        low, high = 0.0, capacity
        for _ in range(200):
            middle = 0.5 * (low + high)
            if population(middle) < users:
                low = middle
            else:
                high = middle
            if high - low <= 1e-13 * high:
                break
        throughput = 0.5 * (low + high)
    times = response(throughput)
    return ClosedFigures(
        throughput=throughput,
        response_time=users / throughput - think_time,
        queue=[throughput * r for r in times],
        utilization=[throughput * d / c if d > 0 else 0.0 for d, c in stations],
        exact=False,
    )


def _mmc_wait(servers: int, offered: float, mean_service: float) -> float:
    """Mean wait in M/M/c with offered load `offered` (infinite at or beyond `servers`)."""
    if offered >= servers:
        return math.inf
    return erlang_c(servers, offered) * mean_service / (servers - offered)


def _with_unvisited_stations(
    figures: ClosedFigures, visited: list[int], stations: int
) -> ClosedFigures:
    """`figures` of the visited stations, with the stations of zero demand put back empty.

    A station without demand has the factor 1, 0, 0, ... (no customer ever there), the identity
    of the convolution: leaving it out changes no figure, and saves the convolutions over it
    (each O(users^2)), which made a 300-user class on a 15-tier scenario take seconds."""
    queue, utilization = [0.0] * stations, [0.0] * stations
    for position, index in enumerate(visited):
        queue[index] = figures.queue[position]
        utilization[index] = figures.utilization[position]
    return replace(figures, queue=queue, utilization=utilization)


def batch_poisson_mg1(
    batch_rate: float,
    size_mean: float,
    size_second: float,
    mean_service: float,
    second_service: float,
) -> QueueFigures:
    """M^X/G/1: batches at Poisson rate `batch_rate`, batch size X (E[X], E[X^2]), one FIFO
    server, service S (E[S], E[S^2]) per request. Exact mean wait of a request:

        Wq = lam E[B^2] / (2 (1 - rho)) + E[S] (E[X^2] - E[X]) / (2 E[X])

    with B the work of a batch (E[B^2] = E[X] Var S + E[X^2] E[S]^2) and rho = lam E[X] E[S]:
    the first term is the batch's own P-K wait, the second the requests ahead of it in its
    batch (the size-biased count). Gross, Shortle, Thompson & Harris, Fundamentals of Queueing
    Theory (4th ed.), section 3.2 (M^[X]/M/1) and section 5.1 (M^[X]/G/1); for exponential
    service it reduces to L = rho (E[X^2] + E[X]) / (2 E[X] (1 - rho))."""
    rho = batch_rate * size_mean * mean_service
    if rho >= 1.0:
        raise ValueError(f"unstable: rho={rho:.3g} >= 1")
    variance = second_service - mean_service * mean_service
    batch_work_second = size_mean * variance + size_second * mean_service * mean_service
    mean_wait = batch_rate * batch_work_second / (2.0 * (1.0 - rho)) + mean_service * (
        size_second - size_mean
    ) / (2.0 * size_mean)
    return QueueFigures(
        utilization=rho,
        p_wait=1.0 - (1.0 - rho) / size_mean,
        mean_wait=mean_wait,
        mean_sojourn=mean_wait + mean_service,
        method="M^X/G/1 (batch Poisson arrivals)",
        exact=True,
        throughput=batch_rate * size_mean,
    )


def mmpp2_m1(
    rates: tuple[float, float], mean_sojourn: tuple[float, float], mean_service: float
) -> QueueFigures:
    """MMPP(2)/M/1: a two-state MMPP into one FIFO server with exponential service, exactly.

    (requests present, MMPP state) is a quasi-birth-death process; its stationary law is
    matrix-geometric (Neuts 1981): pi_n = pi_0 R^n, R the minimal solution of
    A0 + R A1 + R^2 A2 = 0 with A0 = Lambda, A1 = Q - Lambda - mu I, A2 = mu I, found by
    iterating R <- -(A0 + R^2 A2) A1^-1; pi_0 (Q - Lambda + R A2) = 0, pi_0 (I - R)^-1 1 = 1.
    The mean number present L = pi_0 R (I - R)^-2 1, and W = L / lambda (Little)."""
    a, b = 1.0 / mean_sojourn[0], 1.0 / mean_sojourn[1]
    mu = 1.0 / mean_service
    lam = (rates[0] * mean_sojourn[0] + rates[1] * mean_sojourn[1]) / sum(mean_sojourn)
    rho = lam * mean_service
    if rho >= 1.0:
        raise ValueError(f"unstable: rho={rho:.3g} >= 1")
    phases = np.array([[-a, a], [b, -b]])
    arrivals = np.diag(rates)
    eye = np.eye(2)
    local_inverse = np.linalg.inv(phases - arrivals - mu * eye)
    r = np.zeros((2, 2))
    for _ in range(1_000_000):
        following = -(arrivals + mu * (r @ r)) @ local_inverse
        if np.abs(following - r).max() < 1e-14:
            r = following
            break
        r = following
    else:
        raise ValueError("the matrix-geometric iteration did not converge")
    inverse = np.linalg.inv(eye - r)
    system = np.column_stack([phases - arrivals + mu * r, inverse @ np.ones(2)])
    pi0 = np.linalg.lstsq(system.T, np.array([0.0, 0.0, 1.0]), rcond=None)[0]
    present = float(pi0 @ r @ inverse @ inverse @ np.ones(2))
    sojourn = present / lam
    return QueueFigures(
        utilization=rho,
        # Arrivals see the system as the rates weight it (not PASTA): empty with pi_0 Lambda 1 / lam.
        p_wait=1.0 - float(pi0 @ arrivals @ np.ones(2)) / lam,
        mean_wait=sojourn - mean_service,
        mean_sojourn=sojourn,
        method="MMPP(2)/M/1 (matrix-geometric)",
        exact=True,
        throughput=lam,
    )
