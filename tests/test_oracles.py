"""Theory against simulation: capsim reproduces the exact queueing answers of tests/oracles/ORACLES.md.

Every case is a scenario file in tests/oracles/, run through the public API
(`capsim.load_scenario` -> `capsim.build_model` -> `capsim.simulate`) on both engine paths
("auto", which picks the vectorised path when it can, and "events"), and compared with the
full-precision value in tests/oracles/oracles.json (made by tests/oracles/compute.py).

How the tolerances are derived (ORACLES section 12)
---------------------------------------------------
A simulation estimate is random, so each assertion allows K_SIGMA = 4 standard deviations of
the estimator (a false-failure rate of about 6e-5 per assertion), sized by the number of
customers the run measures, never fitted to one seed's output:

* mean sojourn (rule of thumb, section 12.1): for n customers at single-server load rho,
  rel SD(mean W) = sqrt((ca2 + cs2) / 2) * sqrt(2 (1 + rho) / n) / (1 - rho); for M/M/c the
  same formula at the per-server rho is conservative. Heavy-tailed lognormal service (cv = 2)
  is calibrated empirically, as section 12.1 advises (`SingleQueue.heavy_tail_factor`).
* p99: rel SD(p99) = 2.2 x rel SD(mean W), plus the 1% that the JSON result (docs/results.md) allows a reported
  percentile to differ from the exact percentile of the samples, plus the oracle's own bracket
  where it has one (lognormal M/G/1).
* utilisation: busy time over a window is a compound Poisson sum of service times, so
  rel SD = sqrt((1 + cs2) / n) for n services.
* finite systems (M/M/1/K, M/M/c/K, Erlang B) are finite birth-death chains, so the asymptotic
  variance of a time average is computed exactly from the Poisson equation of the chain
  (`_asymptotic_variance`); the blocking estimate adds the Poisson sampling of arrivals, combined
  by Minkowski's inequality (an upper bound on the SD). Non-exponential service scales the chain's
  part by sqrt((1 + cs2) / 2) (the correlation time grows with E[S^2] / 2 E[S]) and by 1.5.
* approximations (Che's LRU, JSQ(d) mean field) add the approximation error ORACLES measured.
* invariants (section 11) are sample-path identities and are checked against a deterministic
  bound on the edge effects of the measurement window, not against a statistical tolerance.

Times: the single-queue oracles are in units of the mean service time; the scenarios use a
mean service time of 10 ms (E_S), so every oracle time is multiplied by E_S.

Heavy variants (rho >= 0.9, millions of customers, 100 instances) are marked slow and run in
the separate long job (`pytest -m slow`). Set CAPSIM_ORACLE_TABLE=FILE to append every
comparison as a JSON line to FILE (for the report of an oracle run).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import capsim

ORACLES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "oracles" / "oracles.json").read_text()
)
SCENARIOS = Path(__file__).parent / "oracles"

K_SIGMA = 4.0
P99_OVER_MEAN_SD = ORACLES["tolerance_rules"]["p99_rel_sd_over_mean_rel_sd"]  # 2.2
PERCENTILE_ALLOWANCE = 0.01  # docs/results.md: a reported percentile is within 1% of the sample's
HEAVY_TAIL_FACTOR = 1.5  # section 12.1: the rule of thumb is not conservative for lognormal cv=2
E_S = 0.010  # seconds: the mean service time of every single-queue scenario
ENGINES = ["auto", "events"]


# ---- running scenarios --------------------------------------------------------------------


@cache
def _run(scenario: str, path: str, duration: float, overrides: tuple[str, ...], seed: int) -> dict:
    """Run one scenario once per resolved engine path (auto and events may be the same run)."""
    all_overrides = [*overrides, f"seed={seed}", f"simulation.duration={duration!r}"]
    model = capsim.build_model(capsim.load_scenario(SCENARIOS / f"{scenario}.yaml", all_overrides))
    started = time.perf_counter()
    report = capsim.simulate(model, engine=path, replications=1, max_requests=1e9)
    data = report.data
    data["_wall_seconds"] = time.perf_counter() - started
    data["_path"] = path
    return data


def simulate(
    scenario: str,
    engine: str,
    *,
    customers: float,
    rate: float,
    overrides: tuple[str, ...] = (),
    seed: int = 20240601,
) -> dict:
    """the JSON result (docs/results.md) data of `scenario` run long enough to measure about `customers` requests.

    `rate` is the class's request rate (or throughput, for a closed class) that turns the
    number of customers into a measured duration; the warm-up is capsim's default 10% of it,
    far beyond the 5-10 relaxation times section 12.2 asks for at these loads.
    """
    from capsim.engine.runner import choose_path

    model = capsim.build_model(capsim.load_scenario(SCENARIOS / f"{scenario}.yaml", overrides))
    path, _ = choose_path(model, engine)  # type: ignore[arg-type]
    return _run(scenario, path, round(customers / rate, 3), tuple(overrides), seed)


# ---- tolerances (ORACLES section 12) ------------------------------------------------------


def rel_sd_mean(rho: float, customers: float, scv_a: float = 1.0, scv_s: float = 1.0) -> float:
    """Section 12.1 rule of thumb: relative SD of a mean sojourn over `customers` customers."""
    return math.sqrt((scv_a + scv_s) / 2) * math.sqrt(2 * (1 + rho) / customers) / (1 - rho)


def mean_tolerance(rho: float, customers: float, scv_a: float = 1.0, scv_s: float = 1.0) -> float:
    return K_SIGMA * rel_sd_mean(rho, customers, scv_a, scv_s)


def p99_tolerance(rho: float, customers: float, scv_a: float = 1.0, scv_s: float = 1.0) -> float:
    spread = K_SIGMA * P99_OVER_MEAN_SD * rel_sd_mean(rho, customers, scv_a, scv_s)
    return spread + PERCENTILE_ALLOWANCE


def utilisation_tolerance(services: float, scv_s: float = 1.0) -> float:
    """Busy time is a compound Poisson sum of service times: rel SD = sqrt((1 + cs2) / n)."""
    return K_SIGMA * math.sqrt((1 + scv_s) / services)


def birth_death(
    arrival_rate: float, service_rate: float, servers: int, capacity: int
) -> np.ndarray:
    """Generator matrix of the M/M/c/K chain on states 0..capacity."""
    q = np.zeros((capacity + 1, capacity + 1))
    for n in range(capacity + 1):
        if n < capacity:
            q[n, n + 1] = arrival_rate
        if n > 0:
            q[n, n - 1] = min(n, servers) * service_rate
        q[n, n] = -q[n].sum()
    return q


def _stationary(q: np.ndarray) -> np.ndarray:
    a = np.vstack([q.T, np.ones(len(q))])
    b = np.zeros(len(q) + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _asymptotic_variance(q: np.ndarray, f: np.ndarray) -> float:
    """lim T Var(time average of f(X) over [0, T]) for an ergodic CTMC with generator q.

    sigma^2 = 2 sum_i pi_i (f_i - pi f) g_i, where q g = -(f - pi f) (the Poisson equation).
    """
    pi = _stationary(q)
    centred = f - pi @ f
    g = np.linalg.lstsq(q, -centred, rcond=None)[0]
    return float(2 * pi @ (centred * g))


@dataclass(frozen=True)
class FiniteQueue:
    """Exact figures and estimator spreads of an M/M/c/K queue (service rate mu per worker)."""

    arrival_rate: float
    service_rate: float
    servers: int
    capacity: int

    @property
    def generator(self) -> np.ndarray:
        return birth_death(self.arrival_rate, self.service_rate, self.servers, self.capacity)

    def blocking_sd(self, duration: float, scv_s: float = 1.0) -> float:
        """Upper bound on the SD of the blocked fraction of arrivals over `duration` seconds.

        blocked/arrivals - P_K ~ [M_B + lam * int(1{X=K} - P_K) dt - P_K * M_A] / (lam T), with
        M_B, M_A the arrival martingales; Minkowski's inequality bounds the SD of the sum.
        """
        q = self.generator
        pi = _stationary(q)
        full = np.zeros(len(q))
        full[-1] = 1.0
        chain = math.sqrt(_asymptotic_variance(q, full) / duration)
        chain *= 1.0 if scv_s == 1.0 else HEAVY_TAIL_FACTOR * math.sqrt((1 + scv_s) / 2)
        arrivals = self.arrival_rate * duration
        return math.sqrt(pi[-1] / arrivals) + chain + pi[-1] / math.sqrt(arrivals)

    def rel_sd_mean_sojourn(self, duration: float) -> float:
        """Relative SD of the admitted mean sojourn, taken as that of the time-average L.

        (Section 12.1 measured rel SD(mean W) <= rel SD(time-average L) at every load.)
        """
        q = self.generator
        pi = _stationary(q)
        n = np.arange(len(q), dtype=float)
        return math.sqrt(_asymptotic_variance(q, n) / duration) / float(pi @ n)


# ---- comparing ----------------------------------------------------------------------------


@dataclass
class Comparison:
    """Collects observed-vs-expected checks of one case and fails with all of them at once."""

    case: str
    engine: str
    data: dict
    rows: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def relative(self, what: str, observed: float, expected: float, tolerance: float) -> None:
        error = (observed - expected) / expected
        self._record(what, observed, expected, error, tolerance, "rel")

    def absolute(self, what: str, observed: float, expected: float, tolerance: float) -> None:
        self._record(what, observed, expected, observed - expected, tolerance, "abs")

    def _record(
        self, what: str, observed: float, expected: float, error: float, tol: float, kind: str
    ) -> None:
        observed, expected, error, tol = map(float, (observed, expected, error, tol))
        ok = math.isfinite(observed) and abs(error) <= tol
        line = (
            f"{self.case} [{self.engine}] {what}: observed {observed:.6g}, expected {expected:.6g},"
            f" {kind} error {error:+.4g}, tolerance {tol:.4g}{'' if ok else '  <-- FAIL'}"
        )
        self.rows.append(line)
        if not ok:
            self.failures.append(line)
        table = os.environ.get("CAPSIM_ORACLE_TABLE")
        if table:
            with open(table, "a") as out:
                row = {
                    "case": self.case,
                    "engine": self.engine,
                    "path": self.data.get("_path"),
                    "metric": what,
                    "expected": expected,
                    "observed": observed,
                    "error": error,
                    "kind": kind,
                    "tolerance": tol,
                    "ok": ok,
                    "wall_s": self.data.get("_wall_seconds"),
                }
                out.write(json.dumps(row) + "\n")

    def verify(self) -> None:
        assert not self.failures, "\n".join(self.rows)


def latency(data: dict, cls: str = "requests") -> dict:
    return data["classes"][cls]["latency"]


def blocked_fraction(data: dict, cls: str = "requests") -> float:
    figures = data["classes"][cls]
    return figures["errors"] / (figures["completed"] + figures["errors"])


# ---- M/M/1, M/M/c, M/D/1, M/G/1: one FIFO queue --------------------------------------------


@dataclass(frozen=True)
class SingleQueue:
    scenario: str
    family: str  # key in oracles.json
    index: int  # row in that family
    workers: int
    customers: float
    scv_s: float = 1.0  # squared coefficient of variation of the service time
    # Heavy-tailed service makes the rule of thumb optimistic (section 12.1: "calibrate such
    # cases empirically"): the factor multiplies its SD. Lognormal cv = 2 at rho = 0.8: 1.5
    # (ORACLES measured 1.9% against the rule's 1.5% at 1e6 customers, before the cs2 scaling
    # about 1.27x). At rho = 0.5: 4.0 (30 independent runs of 1e6 customers on the vectorised
    # path, whose mean was unbiased at 1.0047 +- 0.004, spread 2.1% against the rule's 0.55%).
    heavy_tail_factor: float = 1.0

    @property
    def oracle(self) -> dict:
        return ORACLES[self.family][self.index]

    @property
    def rate(self) -> float:
        return self.oracle["lam"] / E_S

    @property
    def rho(self) -> float:
        return self.oracle["rho"]


SINGLE_QUEUES = [
    SingleQueue("mm1-rho050", "mm1", 0, 1, 5e5),
    SingleQueue("mm1-rho080", "mm1", 1, 1, 1e6),
    SingleQueue("mmc4-rho050", "mmc", 0, 4, 5e5),
    SingleQueue("mmc4-rho080", "mmc", 1, 4, 1e6),
    SingleQueue("mmc2-rho075", "mmc", 4, 2, 1e6),
    SingleQueue("md1-rho050", "md1", 0, 1, 5e5, scv_s=0.0),
    SingleQueue("mg1-lognormal-cv05-rho050", "mg1_lognormal", 0, 1, 5e5, scv_s=0.25),
    SingleQueue("mg1-lognormal-cv1-rho050", "mg1_lognormal", 3, 1, 5e5, scv_s=1.0),
    SingleQueue("mg1-lognormal-cv2-rho050", "mg1_lognormal", 6, 1, 1e6, 4.0, heavy_tail_factor=4.0),
]
SLOW_SINGLE_QUEUES = [
    SingleQueue("mm1-rho080", "mm1", 1, 1, 1e7),
    SingleQueue("mm1-rho090", "mm1", 2, 1, 5e6),
    SingleQueue("mmc4-rho080", "mmc", 1, 4, 1e7),
    SingleQueue("mmc16-rho090", "mmc", 3, 16, 5e6),
    SingleQueue("md1-rho080", "md1", 1, 1, 5e6, scv_s=0.0),
    SingleQueue("mg1-lognormal-cv2-rho080", "mg1_lognormal", 7, 1, 1e7, 4.0, heavy_tail_factor=1.5),
]


def check_single_queue(case: SingleQueue, engine: str) -> None:
    data = simulate(case.scenario, engine, customers=case.customers, rate=case.rate)
    oracle = case.oracle
    factor = case.heavy_tail_factor
    mean_tol = factor * mean_tolerance(case.rho, case.customers, scv_s=case.scv_s)
    p99_tol = factor * p99_tolerance(case.rho, case.customers, scv_s=case.scv_s)
    # The lognormal percentiles are an FFT bracket: its half-width widens the tolerance.
    p99_expected = oracle["sojourn_pct"]["p99"]
    p99_tol += oracle.get("pct_abs_error_bound", 0.0) / p99_expected

    check = Comparison(case.scenario, engine, data)
    check.relative("latency.mean", latency(data)["mean"], oracle["W"] * E_S, mean_tol)
    check.relative("latency.p99", latency(data)["p99"], p99_expected * E_S, p99_tol)
    check.relative(
        "server utilisation",
        data["tiers"]["server"]["utilization"],
        case.rho,
        utilisation_tolerance(case.customers, case.scv_s),
    )
    check.verify()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SINGLE_QUEUES, ids=lambda case: case.scenario)
def test_a_single_fifo_queue_waits_as_queueing_theory_says(case: SingleQueue, engine: str) -> None:
    """M/M/1, Erlang C (M/M/c), M/D/1 and Pollaczek-Khinchine M/G/1: mean and p99 sojourn."""
    check_single_queue(case, engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SLOW_SINGLE_QUEUES, ids=lambda case: case.scenario)
def test_heavy_single_queues_match_theory_tightly(case: SingleQueue, engine: str) -> None:
    """The same families near saturation, or with millions of customers for tight tolerances."""
    check_single_queue(case, engine)


# ---- finite capacity: M/M/1/K, M/M/c/K (pool with waiters), Erlang B -----------------------


@dataclass(frozen=True)
class LossCase:
    scenario: str
    family: str
    index: int
    workers: int
    waiting_room: int
    customers: float
    tier: str = "server"
    scv_s: float = 1.0

    @property
    def oracle(self) -> dict:
        return ORACLES[self.family][self.index]

    @property
    def rate(self) -> float:
        oracle = self.oracle
        return oracle.get("lam", oracle.get("offered_load_a", 0.0)) / E_S

    @property
    def queue(self) -> FiniteQueue:
        return FiniteQueue(self.rate, 1 / E_S, self.workers, self.workers + self.waiting_room)


FINITE_QUEUES = [
    LossCase("mm1k-rho080", "mm1k", 1, 1, 9, 5e5),
    LossCase("mm1k-rho150", "mm1k", 4, 1, 9, 5e5),
    LossCase("mmck-pool-rho095", "mmck_conn_pool", 2, 10, 20, 5e5),
    LossCase("mmck-pool-rho120", "mmck_conn_pool", 3, 10, 20, 5e5),
    LossCase("db-pool-rho095", "mmck_conn_pool", 2, 10, 20, 5e5, tier="db"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", FINITE_QUEUES, ids=lambda case: case.scenario)
def test_a_full_queue_turns_arrivals_away_as_mmck_says(case: LossCase, engine: str) -> None:
    """A finite waiting room rejects P_block of arrivals; the admitted ones wait as M/M/c/K.

    Overloaded cases (offered rho 1.2, 1.5) are stable and exact too.
    """
    data = simulate(case.scenario, engine, customers=case.customers, rate=case.rate)
    oracle = case.oracle
    duration = case.customers / case.rate
    queue = case.queue
    rel_sd_w = queue.rel_sd_mean_sojourn(duration)

    check = Comparison(case.scenario, engine, data)
    check.absolute(
        "rejected fraction",
        blocked_fraction(data),
        oracle["P_block"],
        K_SIGMA * queue.blocking_sd(duration),
    )
    check.relative(
        "admitted latency.mean",
        latency(data)["mean"],
        oracle["W_admitted"] * E_S,
        K_SIGMA * rel_sd_w,
    )
    check.relative(
        "admitted latency.p99",
        latency(data)["p99"],
        oracle["sojourn_pct_admitted"]["p99"] * E_S,
        K_SIGMA * P99_OVER_MEAN_SD * rel_sd_w + PERCENTILE_ALLOWANCE,
    )
    carried = oracle["server_util"]
    served = case.customers * (1 - oracle["P_block"])
    check.relative(
        f"{case.tier} utilisation",
        data["tiers"][case.tier]["utilization"],
        carried,
        utilisation_tolerance(served)
        + K_SIGMA * queue.blocking_sd(duration) / (1 - oracle["P_block"]),
    )
    check.verify()


ERLANG_B = [
    LossCase("erlang-b-exponential", "erlang_b", 1, 10, 0, 5e5),
    LossCase("erlang-b-lognormal-cv2", "erlang_b", 1, 10, 0, 5e5, scv_s=4.0),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", ERLANG_B, ids=lambda case: case.scenario)
def test_a_loss_system_blocks_as_erlang_b_says_whatever_the_service_shape(
    case: LossCase, engine: str
) -> None:
    """Ten workers and no waiting room at 8 Erlang block 12.17%, for exponential and for
    lognormal cv = 2 service alike (Erlang B is insensitive)."""
    data = simulate(case.scenario, engine, customers=case.customers, rate=case.rate)
    oracle = case.oracle
    duration = case.customers / case.rate
    block_tol = K_SIGMA * case.queue.blocking_sd(duration, scv_s=case.scv_s)
    check = Comparison(case.scenario, engine, data)
    check.absolute("rejected fraction", blocked_fraction(data), oracle["P_block"], block_tol)
    check.relative(
        "server utilisation (carried load / c)",
        data["tiers"]["server"]["utilization"],
        oracle["carried_load"] / case.workers,
        utilisation_tolerance(case.customers * (1 - oracle["P_block"]), case.scv_s)
        + block_tol / (1 - oracle["P_block"]),
    )
    check.relative(
        "latency.mean (no wait: the service time)",
        latency(data)["mean"],
        E_S,
        utilisation_tolerance(case.customers * (1 - oracle["P_block"]), case.scv_s),
    )
    check.verify()


# ---- open Jackson network ------------------------------------------------------------------


def jackson_oracle(name: str) -> dict:
    return next(case for case in ORACLES["jackson"] if case["name"] == name)


@dataclass(frozen=True)
class JacksonCase:
    scenario: str
    oracle_name: str
    customers: float

    @property
    def oracle(self) -> dict:
        return jackson_oracle(self.oracle_name)


JACKSON = [
    JacksonCase("jackson-feed-forward-240", "feed-forward lam0=240.0", 5e5),
    JacksonCase("jackson-feed-forward-384", "feed-forward lam0=384.0", 5e5),
    JacksonCase("jackson-loop-240", "app<->db loop lam0=240.0", 5e5),
]
SLOW_JACKSON = [
    JacksonCase("jackson-feed-forward-456", "feed-forward lam0=456.0", 5e6),
    JacksonCase("jackson-loop-360", "app<->db loop lam0=360.0", 5e6),
]


def check_jackson(case: JacksonCase, engine: str) -> None:
    oracle = case.oracle
    gamma = oracle["external_rate"]
    data = simulate(case.scenario, engine, customers=case.customers, rate=gamma)
    # The end-to-end mean is dominated by the busiest station; the rule of thumb at its
    # per-server load, over the requests measured, bounds the spread of the sum.
    rho = max(station["utilisation"] for station in oracle["stations"])
    check = Comparison(case.scenario, engine, data)
    check.relative(
        "end-to-end latency.mean",
        latency(data)["mean"],
        oracle["end_to_end_mean_sojourn"],
        mean_tolerance(rho, case.customers),
    )
    for station in oracle["stations"]:
        services = case.customers * station["visit_ratio"]
        check.relative(
            f"{station['name']} utilisation",
            data["tiers"][station["name"]]["utilization"],
            station["utilisation"],
            utilisation_tolerance(services),
        )
        check.relative(
            f"{station['name']} throughput",
            data["tiers"][station["name"]]["throughput"],
            station["arrival_rate"],
            K_SIGMA / math.sqrt(services),
        )
    check.verify()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", JACKSON, ids=lambda case: case.scenario)
def test_a_three_tier_stack_with_async_workers_is_a_jackson_network(
    case: JacksonCase, engine: str
) -> None:
    """LB -> app (8 workers) -> db (4 workers, 20% of requests): each tier an M/M/c at its
    traffic-equation rate; with the db calling app back, v_app = 1.25 and v_db = 0.25."""
    check_jackson(case, engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", SLOW_JACKSON, ids=lambda case: case.scenario)
def test_a_jackson_network_near_saturation(case: JacksonCase, engine: str) -> None:
    check_jackson(case, engine)


# ---- closed network vs exact MVA -----------------------------------------------------------


CLOSED = [
    ("closed-mva-a", 0, 1, 3e4),
    ("closed-mva-a", 0, 10, 1e5),
    ("closed-mva-a", 0, 27, 1.5e5),
    ("closed-mva-b", 1, 10, 1e5),
    ("closed-mva-b", 1, 27, 1.5e5),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("scenario", "index", "users", "cycles"),
    CLOSED,
    ids=[f"{scenario}-N{users}" for scenario, _, users, _ in CLOSED],
)
def test_n_thinking_users_get_the_throughput_and_response_time_mva_gives(
    scenario: str, index: int, users: int, cycles: float, engine: str
) -> None:
    """N users with exponential think time Z = 1 s against app (non-blocking) -> db: a product
    form closed network, solved exactly by MVA (case A) and Buzen's convolution (case B)."""
    oracle = ORACLES["closed"][index]
    row = oracle["rows"][users - 1]
    assert row["N"] == users
    data = simulate(
        scenario,
        engine,
        customers=cycles,
        rate=row["X"],
        overrides=(f"traffic.users.users={users}",),
    )
    # A closed network is less variable than an open one at the same bottleneck load, so the
    # open rule of thumb at the bottleneck's utilisation is a conservative spread for R. The
    # interactive response-time law N = X (R + Z) holds for the realised means, so the spread
    # of X comes from R and from the sampled think times (cv 1: rel SD 1/sqrt(n) of the mean
    # think); Minkowski's inequality adds the two SDs.
    rel_sd_r = rel_sd_mean(max(row["U"]), cycles)
    think = oracle["think_time_s"]
    rel_sd_x = (rel_sd_r * row["R"] + think / math.sqrt(cycles)) / (row["R"] + think)
    figures = data["classes"]["users"]
    check = Comparison(f"{scenario} N={users}", engine, data)
    check.relative("throughput X", figures["throughput"], row["X"], K_SIGMA * rel_sd_x)
    check.relative("response time R", figures["latency"]["mean"], row["R"], K_SIGMA * rel_sd_r)
    # U is the mean fraction of a station's workers that are busy (X D / c); each cycle visits
    # each station once, so busy time is a sum of `cycles` service times, and X varies too.
    for tier, utilisation in zip(("app", "db"), row["U"], strict=True):
        check.relative(
            f"{tier} utilisation",
            data["tiers"][tier]["utilization"],
            utilisation,
            utilisation_tolerance(cycles) + K_SIGMA * rel_sd_x,
        )
    check.verify()


# ---- load balancing ------------------------------------------------------------------------


def round_robin_oracle(rate: float, servers: int) -> dict:
    return next(
        row
        for row in ORACLES["lb_round_robin"]
        if row["lam_per_server"] == rate and row["n_servers"] == servers
    )


BALANCING = [
    ("balancing-random-rho080", 0.8, "random", 1e6),
    ("balancing-round-robin-rho080", 0.8, "round_robin", 1e6),
]
SLOW_BALANCING = [("balancing-round-robin-rho090", 0.9, "round_robin", 5e6)]


def check_balancing(
    scenario: str, rho: float, algorithm: str, customers: float, engine: str
) -> None:
    data = simulate(scenario, engine, customers=customers, rate=10 * rho / E_S)
    if algorithm == "random":
        mean, p99 = 1 / (1 - rho), -math.log(0.01) / (1 - rho)  # each instance is an M/M/1
    else:
        oracle = round_robin_oracle(rho, 10)  # each instance is an E10/M/1
        mean, p99 = oracle["mean_sojourn"], oracle["sojourn_pct"]["p99"]
    # Ten instances share the customers; arrival variability ca2 = 1 (Poisson) is kept for
    # round robin too (its Erlang-10 gaps are less variable), so the tolerance is conservative.
    check = Comparison(scenario, engine, data)
    check.relative(
        "latency.mean", latency(data)["mean"], mean * E_S, mean_tolerance(rho, customers)
    )
    check.relative("latency.p99", latency(data)["p99"], p99 * E_S, p99_tolerance(rho, customers))
    check.verify()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("scenario", "rho", "algorithm", "customers"), BALANCING)
def test_round_robin_beats_random_balancing_as_e10_m_1_beats_m_m_1(
    scenario: str, rho: float, algorithm: str, customers: float, engine: str
) -> None:
    """Ten single-worker instances at 80% load: random splitting makes each an M/M/1 (T = 5 E[S]),
    round robin an E10/M/1 (T = 2.92 E[S])."""
    check_balancing(scenario, rho, algorithm, customers, engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("scenario", "rho", "algorithm", "customers"), SLOW_BALANCING)
def test_round_robin_at_90_percent_is_e10_m_1(
    scenario: str, rho: float, algorithm: str, customers: float, engine: str
) -> None:
    check_balancing(scenario, rho, algorithm, customers, engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_power_of_two_choices_over_100_instances_approaches_the_mean_field_limit(
    engine: str,
) -> None:
    """JSQ(2) at 90% load over 100 instances: T close to the mean-field 2.61406 E[S].

    The mean field is the n -> infinity limit; ORACLES measured n = 100 at +0.6..+2.3% above it,
    so 3% covers the approximation. The statistical spread adds the rule of thumb for an M/M/1
    with the same mean sojourn (rho_eff = 1 - 1/T), since JSQ(2) queues are short and
    fast-mixing compared with the M/M/1 at the same load.
    """
    customers = 1e6
    oracle = next(
        row
        for row in ORACLES["lb_jsq_d_meanfield"]
        if row["lam_per_server"] == 0.9 and row["d"] == 2
    )
    data = simulate(
        "balancing-power-of-two-n100", engine, customers=customers, rate=100 * 0.9 / E_S
    )
    rho_eff = 1 - 1 / oracle["mean_sojourn"]
    check = Comparison("balancing-power-of-two-n100", engine, data)
    check.relative(
        "latency.mean",
        latency(data)["mean"],
        oracle["mean_sojourn"] * E_S,
        0.03 + mean_tolerance(rho_eff, customers),
    )
    check.verify()


# ---- caches --------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_an_lru_cache_misses_as_ches_approximation_says(engine: str) -> None:
    """Zipf(1.0) over 10,000 keys, room for 1,000: hit ratio 0.6756 (Che), so the backend sees
    32.44% of the cache's requests.

    Tolerance: Che is within about 1% of an exact LRU for C >= 100 (section 7), plus 4 binomial
    SDs inflated 3x, since an honest LRU simulation's hits are autocorrelated (the measured noise
    of 1.8e6 requests was 0.1-0.2%, about 3x the binomial figure).
    """
    customers = 5e5
    oracle = next(
        row for row in ORACLES["cache_lru_che"] if row["alpha"] == 1.0 and row["C"] == 1000
    )
    hit = oracle["lru_hit_ratio_che"]
    data = simulate("cache-lru-che", engine, customers=customers, rate=1000.0)
    cache_throughput = data["tiers"]["cache"]["throughput"]
    backend_throughput = data["tiers"]["backend"]["throughput"]
    noise = K_SIGMA * 3 * math.sqrt(hit * (1 - hit) / customers)
    check = Comparison("cache-lru-che", engine, data)
    check.absolute(
        "miss fraction (backend / cache throughput)",
        backend_throughput / cache_throughput,
        1 - hit,
        0.01 * hit + noise,
    )
    check.verify()


# ---- invariants (ORACLES section 11) -------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("scenario", "rate", "customers", "capacity"),
    [
        ("mmck-pool-rho120", 1200.0, 5e5, 30),
        ("mm1k-rho150", 150.0, 5e5, 10),
        ("jackson-feed-forward-384", 384.0, 5e5, None),
    ],
)
def test_every_request_that_arrives_is_completed_failed_or_still_in_flight(
    scenario: str, rate: float, customers: float, capacity: int | None, engine: str
) -> None:
    """Flow conservation per class: arrivals in the window = completed + errors + in flight at
    the end. A finite system holds at most K requests, so 0 <= in flight <= K exactly."""
    data = simulate(scenario, engine, customers=customers, rate=rate)
    figures = data["classes"]["requests"]
    arrivals = round(figures["offered_rate"] * data["duration"])
    in_flight = arrivals - figures["completed"] - figures["errors"]
    # Without a capacity, in flight at the end is the number in system, L = 12 on average
    # here; 20 L is a bound it exceeds with negligible probability.
    bound = capacity if capacity is not None else 20 * 12.0191
    assert 0 <= in_flight <= bound, (
        f"{scenario} [{engine}]: {arrivals} arrivals, {figures['completed']} completed, "
        f"{figures['errors']} errors leaves {in_flight} in flight (expected 0..{bound})"
    )
    error_rate = figures["errors"] / max(figures["completed"] + figures["errors"], 1)
    assert figures["error_rate"] == pytest.approx(error_rate, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("scenario", "rate", "customers", "workers"),
    [
        ("jackson-feed-forward-384", 384.0, 5e5, {"lb": 1, "app": 8, "db": 4}),
        ("mmck-pool-rho095", 950.0, 5e5, {"server": 10}),
    ],
)
def test_littles_law_holds_for_the_queue_of_every_tier(
    scenario: str, rate: float, customers: float, workers: dict[str, int], engine: str
) -> None:
    """Lq = X Wq per tier: the time-average queue length equals throughput x mean wait.

    On a sample path the two sides differ only by the requests waiting at the edges of the
    window: at most queue_length.max of them, each counted for at most wait.max, at each edge,
    and by the at most `workers` requests whose wait and whose completion fall on different
    sides of an edge.
    """
    data = simulate(scenario, engine, customers=customers, rate=rate)
    duration = data["duration"]
    for name, tier_workers in workers.items():
        tier = data["tiers"][name]
        queue_area = tier["queue_length"]["mean"] * duration
        wait_total = tier["wait"]["mean"] * tier["throughput"] * duration
        edge = 2 * tier["queue_length"]["max"] * tier["wait"]["max"]
        edge += 2 * tier_workers * tier["wait"]["max"]
        assert abs(queue_area - wait_total) <= edge + 1e-9 * queue_area, (
            f"{scenario} [{engine}] tier {name}: integral of queue length {queue_area:.6g} s "
            f"vs throughput x mean wait x duration {wait_total:.6g} s (edge bound {edge:.3g})"
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_the_utilisation_law_holds_for_every_tier(engine: str) -> None:
    """U = X E[S] / workers per tier: busy fraction equals throughput x mean service time.

    The two sides differ by the sampling noise of the service times drawn in the window
    (rel SD sqrt(cs2 / n), cs2 = 1 for exponential) and by at most `workers` services cut by the
    window's edges.
    """
    data = simulate("jackson-feed-forward-384", engine, customers=5e5, rate=384.0)
    duration = data["duration"]
    for name, mean_service, workers in (("lb", 0.001, 1), ("app", 1 / 60, 8), ("db", 1 / 30, 4)):
        tier = data["tiers"][name]
        services = tier["throughput"] * duration
        expected = tier["throughput"] * mean_service / workers
        tolerance = K_SIGMA / math.sqrt(services) + 2 * workers * 20 * mean_service / (
            workers * duration * expected
        )
        error = tier["utilization"] / expected - 1
        assert abs(error) <= tolerance, (
            f"[{engine}] tier {name}: utilisation {tier['utilization']:.6g} vs "
            f"X E[S] / c = {expected:.6g} ({error:+.3%}, tolerance {tolerance:.3%})"
        )
