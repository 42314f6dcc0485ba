"""The discrete-event path: exact event stories first, then queueing theory (tests/oracles/ORACLES.md).

Statistical tolerances follow ORACLES.md §12: k = 4 standard deviations of the run's estimate,
rel SD(mean W) ~ sqrt((ca2 + cs2) / 2) * sqrt(2 (1 + rho) / n) / (1 - rho), and 2.2 times that
for a p99. Oracle values are copied from oracles.json (12 significant digits).
"""

from __future__ import annotations

import math

import pytest

from capsim.engine.events import run_events
from capsim.engine.result import RunResult
from capsim.errors import SimulationError
from capsim.model.types import Work
from modelkit import (
    Call,
    Distribution,
    OneOf,
    Parallel,
    Pool,
    ProfilePoint,
    closed_class,
    const,
    exp,
    model,
    open_class,
    tier,
)


def tolerance(rho: float, customers: float, scv: float = 1.0, k: float = 4.0) -> float:
    """ORACLES §12.1: k standard deviations of a run's relative error in mean W."""
    return k * math.sqrt(scv) * math.sqrt(2.0 * (1.0 + rho) / customers) / (1.0 - rho)


def utilization(result: RunResult, index: int) -> float:
    run = result.tiers[index]
    return run.busy_time / (result.duration * run.workers)


def occupancy(result: RunResult, index: int) -> float:
    run = result.tiers[index]
    return run.occupied_time / (result.duration * run.workers)


def close(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * abs(expected)


# ---- exact stories --------------------------------------------------------------------------


def test_dd1_never_waits_and_is_half_busy() -> None:
    # Arrivals at 2, 4, ..., 100, service 1: the window [1, 101) sees 50 arrivals and 50 busy
    # seconds; the last request ends at 101, just outside.
    m = model(
        [tier("app", const(1.0))],
        [open_class("web", 0, 0.5, arrivals="constant")],
        duration=100.0,
        warmup=1.0,
    )
    r = run_events(m, 0)
    web, app = r.classes[0], r.tiers[0]
    assert (web.arrivals, web.completed, web.errors) == (50, 49, 0)
    assert web.latency.mean == pytest.approx(1.0, rel=1e-12)
    assert web.latency.max == pytest.approx(1.0, rel=1e-12)
    assert (app.arrivals, app.completed, app.rejected) == (50, 49, 0)
    assert app.wait.n == 50 and app.wait.max == 0.0
    assert utilization(r, 0) == pytest.approx(0.5, rel=1e-12)
    assert occupancy(r, 0) == pytest.approx(0.5, rel=1e-12)
    assert app.queue_time == 0.0 and app.queue_max == 0
    assert app.workers == 1
    assert len(app.queue_trace) == len(app.trace_times) == 50
    assert app.trace_times[0] == 1.0 and app.trace_times[-1] < 101.0
    assert set(r.timings) == {"build", "simulate", "summarise"}
    assert r.events > 100
    assert r.engine_path == "events"


def test_loss_system_rejects_while_the_only_worker_is_busy() -> None:
    # Arrivals every 1 s, service 1.5 s, no waiting room: every second arrival is refused.
    m = model(
        [tier("app", const(1.5), max_queue=0)],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=20.0,
        warmup=0.5,
    )
    r = run_events(m, 0)
    web, app = r.classes[0], r.tiers[0]
    assert web.arrivals == 20  # 1 .. 20
    assert app.rejected == web.errors == 10  # 2, 4, ..., 20
    assert app.timed_out == 0
    assert web.completed == 9  # 1, 3, ..., 17; 19 ends at 20.5, where the window ends
    assert app.wait.max == 0.0


def test_timeout_drops_requests_that_waited_too_long() -> None:
    # One worker busy [1, 11) then [11, 21); arrivals every second, timeout 2.5 s in the queue.
    m = model(
        [tier("app", const(10.0), timeout=2.5)],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=20.0,
    )
    r = run_events(m, 0)
    web, app = r.classes[0], r.tiers[0]
    assert web.arrivals == app.arrivals == 19
    # 2..8 time out at 4.5..10.5; 9 starts at 11 after 2 s; 10..17 time out at 12.5..19.5.
    assert app.timed_out == app.rejected == web.errors == 15
    assert web.completed == app.completed == 1
    # Waits: 1 and 9 started at once and after 2 s; 18 and 19 still wait at 20 s, counted at
    # their waits so far (2 s and 1 s, lower bounds).
    assert app.wait.n == 4 and app.wait.max == pytest.approx(2.0)
    assert app.wait.total == pytest.approx(0.0 + 2.0 + 2.0 + 1.0)
    assert app.backlog_at_end == 2 and app.oldest_waiting == pytest.approx(2.0)
    # flow: 19 = 1 done + 15 dropped + 3 still there (9 in service, 18 and 19 waiting)
    assert app.arrivals - app.completed - app.rejected == 3
    assert web.unfinished == 3 and web.oldest_unfinished == pytest.approx(11.0)  # 9, from 9 s


def test_blocking_worker_is_occupied_while_its_call_is_outstanding() -> None:
    def run(blocking: bool) -> RunResult:
        m = model(
            [
                tier("app", const(1.0), blocking=blocking, calls=(Call(1),)),
                tier("db", const(2.0)),
            ],
            [open_class("web", 0, 0.1, arrivals="constant")],
            duration=100.0,
            warmup=5.0,
        )
        return run_events(m, 0)

    blocked = run(True)
    assert blocked.classes[0].completed == 10
    assert blocked.classes[0].latency.mean == pytest.approx(3.0)
    assert utilization(blocked, 0) == pytest.approx(0.1)
    assert occupancy(blocked, 0) == pytest.approx(0.3)
    assert utilization(blocked, 1) == pytest.approx(0.2)
    freed = run(False)
    assert freed.classes[0].latency.mean == pytest.approx(3.0)
    assert occupancy(freed, 0) == pytest.approx(utilization(freed, 0)) == pytest.approx(0.1)


def test_parallel_group_takes_as_long_as_its_slowest_branch() -> None:
    def latency(calls: tuple) -> float:  # type: ignore[type-arg]
        m = model(
            [
                tier("api", const(0.5), calls=calls),
                tier("profile", const(1.0)),
                tier("recs", const(3.0)),
            ],
            [open_class("web", 0, 0.1, arrivals="constant")],
            duration=50.0,
        )
        r = run_events(m, 0)
        assert r.classes[0].completed == 4
        return r.classes[0].latency.mean

    assert latency((Parallel((Call(1), Call(2))),)) == pytest.approx(3.5)
    assert latency((Call(1), Call(2))) == pytest.approx(4.5)
    assert latency((Call(1, repeat=3),)) == pytest.approx(3.5)


def test_a_failed_call_fails_the_caller_and_stops_its_later_calls() -> None:
    # db takes one query at a time (5 s, no waiting room); the audit call only follows successes.
    m = model(
        [
            tier("api", const(0.0), concurrency=50, calls=(Call(1), Call(2))),
            tier("db", const(5.0), max_queue=0),
            tier("audit", const(0.0)),
        ],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=20.5,
    )
    r = run_events(m, 0)
    web, db, audit = r.classes[0], r.tiers[1], r.tiers[2]
    assert web.arrivals == 20
    assert db.completed == 3  # queries at 1, 6, 11 (and 16, which ends at 21)
    assert db.rejected == web.errors == 16
    assert audit.arrivals == web.completed == 3
    # the api workers were released on error: nobody is left holding one
    assert r.tiers[0].completed == 20


def test_parallel_group_fails_if_any_branch_fails_but_runs_every_branch() -> None:
    m = model(
        [
            tier("api", const(0.0), concurrency=50, calls=(Parallel((Call(1), Call(2))),)),
            tier("db", const(5.0), max_queue=0),
            tier("search", const(1.0), concurrency=50),
        ],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=20.5,
    )
    r = run_events(m, 0)
    assert r.tiers[2].arrivals == 20  # every branch ran
    # the request at 20 fails only when its search branch ends at 21, outside the window
    assert r.classes[0].completed == 3 and r.classes[0].errors == 15


def test_pool_limits_queries_in_flight_and_refuses_beyond_its_waiting_room() -> None:
    # 2 connections, no waiting room, queries 2.5 s, one call a second: 2 of every 3 get through.
    m = model(
        [
            tier("db", const(2.5), kind="database", concurrency=10, pool=Pool(2, max_waiting=0)),
        ],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=30.0,
        warmup=0.5,
    )
    r = run_events(m, 0)
    db = r.tiers[0]
    assert db.arrivals == 30
    assert db.pool_rejected == db.rejected == r.classes[0].errors == 10
    assert db.pool_wait is not None and db.pool_wait.n == 20 and db.pool_wait.max == 0.0
    assert db.busy_time / r.duration <= 2.0 + 1e-9


def test_pool_waiters_are_served_in_order_and_wait_for_a_connection() -> None:
    # One connection, queries 1.5 s, a call every second: the n-th call waits 0.5 (n - 1) s.
    m = model(
        [tier("db", const(1.5), kind="database", concurrency=4, pool=Pool(1))],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=10.5,
    )
    r = run_events(m, 0)
    db = r.tiers[0]
    assert db.pool_wait is not None
    # calls at 1..10; connections handed over at 1, 2.5, 4, 5.5, 7, 8.5, 10
    assert db.pool_wait.n == 7
    assert db.pool_wait.total == pytest.approx(sum(0.5 * i for i in range(7)))
    assert db.wait.max == 0.0  # the instance itself never queues: the pool holds them back


def test_pool_timeout_refuses_a_call_that_waited_too_long() -> None:
    m = model(
        [tier("db", const(10.0), kind="database", pool=Pool(1, timeout=3.0))],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=9.5,
    )
    r = run_events(m, 0)
    # calls at 2..6 give up at 5..9; later ones are still waiting when the window closes
    assert r.tiers[0].pool_rejected == r.classes[0].errors == 5


def test_a_queue_costs_the_caller_only_the_publish_time() -> None:
    m = model(
        [
            tier("api", const(1.0), calls=(Call(1),)),
            tier("jobs", const(5.0), kind="queue", publish_time=const(0.1), blocking=False),
        ],
        [open_class("web", 0, 0.1, arrivals="constant")],
        duration=100.0,
    )
    r = run_events(m, 0)
    assert r.classes[0].latency.mean == pytest.approx(1.1)
    jobs = r.tiers[1]
    assert jobs.age is not None and jobs.age.n == 9  # the 10th message is consumed at 106.1
    assert jobs.age.mean == pytest.approx(5.0)


def test_a_full_queue_refuses_the_publish_and_fails_the_request() -> None:
    # one consumer busy 5 s per message, depth 1, a message a second
    m = model(
        [
            tier("api", const(0.0), concurrency=10, calls=(Call(1),)),
            tier("jobs", const(5.0), kind="queue", max_queue=1, blocking=False),
        ],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=20.5,
    )
    r = run_events(m, 0)
    web, jobs = r.classes[0], r.tiers[1]
    assert jobs.rejected == web.errors > 0
    assert web.completed + web.errors == web.arrivals == 20
    assert jobs.completed == 3  # consumed at 6, 11, 16; the next at 21 is outside
    assert jobs.queue_max == 1


def test_closed_users_think_first_then_send_one_request_at_a_time() -> None:
    m = model(
        [tier("app", const(1.0), concurrency=10)],
        [closed_class("ops", 0, 3, const(4.0))],
        duration=20.5,
    )
    r = run_events(m, 0)
    # each user: think [0,4), request [4,5), think [5,9), request [9,10), ... -> 4 per user
    ops = r.classes[0]
    assert ops.arrivals == 12 and ops.completed == 12
    assert ops.latency.mean == pytest.approx(1.0)


def test_per_class_work_overrides_the_tier_default() -> None:
    m = model(
        [tier("app", const(1.0), concurrency=10)],
        [
            open_class("a", 0, 0.5, arrivals="constant"),
            open_class("b", 0, 0.5, arrivals="constant"),
        ],
        duration=10.5,
        work={(0, 1): Work(const(3.0))},
    )
    r = run_events(m, 0)
    # Arrivals at 2, 4, ... 10 s: a's take 1 s, b's 3 s. At 10.5 s a's last is unfinished
    # (0.5 s so far), and b's last two (2.5 s and 0.5 s): each is counted at its age or its
    # class's shortest latency, whichever is longer, so at 1 s and 3 s.
    a, b = r.classes
    assert (a.completed, a.unfinished, b.completed, b.unfinished) == (4, 1, 3, 2)
    assert a.latency.mean == pytest.approx(1.0) and a.latency.n == 5
    assert b.latency.mean == pytest.approx(3.0) and b.latency.n == 5


def test_least_connections_sends_to_the_emptiest_instance() -> None:
    # 3 instances, service 10 s, an arrival a second: least connections fills them in turn.
    m = model(
        [tier("app", const(10.0), instances=3, balancing="least_connections")],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=3.5,
    )
    r = run_events(m, 0)
    assert r.tiers[0].wait.max == 0.0 and r.tiers[0].wait.n == 3


def test_round_robin_counter_is_shared_by_every_caller() -> None:
    m = model(
        [
            tier("a", const(0.0), calls=(Call(2),), concurrency=9),
            tier("b", const(0.0), calls=(Call(2),), concurrency=9),
            tier("app", const(10.0), instances=2),
        ],
        [
            open_class("x", 0, 1.0, arrivals="constant"),
            open_class("y", 1, 1.0, arrivals="constant"),
        ],
        duration=1.5,
    )
    # x and y both call app at t=1: one goes to each instance, so neither waits.
    r = run_events(m, 0)
    assert r.tiers[2].wait.n == 2 and r.tiers[2].wait.max == 0.0


def test_load_balancer_algorithm_overrides_the_backend_balancing() -> None:
    # backend would spread round-robin, but the call says least_connections: same outcome here,
    # and the call must still reach the backend.
    m = model(
        [
            tier("lb", const(0.0), kind="load_balancer", calls=(Call(1, algorithm="random"),)),
            tier("app", const(1.0), instances=4),
        ],
        [open_class("web", 0, 2.0)],
        duration=200.0,
    )
    r = run_events(m, 0)
    assert r.tiers[1].arrivals == r.tiers[0].arrivals == r.classes[0].arrivals


def test_rate_profile_changes_the_arrival_rate_over_time() -> None:
    profile = (ProfilePoint(0.0, 10.0), ProfilePoint(100.0, 10.0), ProfilePoint(100.0, 50.0))
    m = model(
        [tier("app", const(0.0), concurrency=100)],
        [open_class("web", 0, 10.0, profile=profile)],
        duration=200.0,
    )
    r = run_events(m, 0)
    expected = 10.0 * 100 + 50.0 * 100
    assert abs(r.classes[0].arrivals - expected) < 4 * math.sqrt(expected)
    constant = model(
        [tier("app", const(0.0), concurrency=100)],
        [
            open_class(
                "web",
                0,
                10.0,
                arrivals="constant",
                profile=(ProfilePoint(0, 0), ProfilePoint(10, 10)),
            )
        ],
        duration=10.0,
    )
    # Lambda(t) = t^2 / 2 over [0, 10): 50 arrivals in all, the last one exactly at t = 10.
    assert run_events(constant, 0).classes[0].arrivals == 49


def test_same_replication_gives_identical_results_and_another_differs() -> None:
    m = model(
        [
            tier(
                "app",
                exp(0.8),
                instances=2,
                balancing="power_of_two",
                calls=(Call(1, probability=0.5),),
            ),
            tier("db", exp(0.3)),
        ],
        [open_class("web", 0, 2.0)],
        duration=500.0,
    )
    a, b, c = run_events(m, 0), run_events(m, 0), run_events(m, 1)
    assert a.classes[0].latency.total == b.classes[0].latency.total
    assert a.tiers[0].busy_time == b.tiers[0].busy_time
    assert (a.tiers[1].arrivals, a.events) == (b.tiers[1].arrivals, b.events)
    assert a.classes[0].latency.total != c.classes[0].latency.total


def test_progress_is_reported_through_the_callback() -> None:
    seen: list[tuple[float, str]] = []
    m = model([tier("app", exp(0.5))], [open_class("web", 0, 1.0)], duration=100.0)
    run_events(m, 0, progress=lambda f, what: seen.append((f, what)))
    fractions = [f for f, _ in seen]
    assert 50 <= len(seen) <= 102
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {what for _, what in seen} == {"simulating"}


# ---- invariants -----------------------------------------------------------------------------


def test_flow_is_conserved_and_the_utilisation_law_holds() -> None:
    m = model(
        [
            tier(
                "api",
                exp(0.01),
                concurrency=16,
                calls=(Call(1, probability=0.6), OneOf(((2, 0.3), (3, 0.2)))),
            ),
            tier("db", exp(0.02), kind="database", replicas=1, read_ratio=0.7, concurrency=2),
            tier("cache", exp(0.001), max_queue=0),
            tier("search", exp(0.03), concurrency=2, timeout=0.05),
        ],
        [open_class("web", 0, 150.0)],
        duration=400.0,
    )
    r = run_events(m, 0)
    web = r.classes[0]
    api, db, cache, search = r.tiers
    assert web.arrivals == api.arrivals  # no warm-up: every request enters the entry tier
    in_flight = web.arrivals - web.completed - web.errors
    assert 0 <= in_flight < 30
    for run in r.tiers:
        assert 0 <= run.arrivals - run.completed - run.rejected < 30
    assert search.timed_out > 0 and cache.rejected > 0
    # visits follow the routing probabilities (binomial, 4 sigma)
    assert abs(db.arrivals - 0.6 * api.completed) < 4 * math.sqrt(api.completed * 0.24)
    # utilisation law: busy worker-seconds = completions x E[S], within noise
    for run, mean in zip(r.tiers, (0.01, 0.02, 0.001, 0.03), strict=True):
        assert close(run.busy_time, run.completed * mean, 4 / math.sqrt(run.completed) + 0.002)
    # errors travel to the entry: every dropped search or full cache failed one request
    assert web.errors == cache.rejected + search.rejected


# ---- queueing theory ------------------------------------------------------------------------


def mm1(rho: float, customers: float, warmup: float) -> RunResult:
    m = model(
        [tier("server", exp(1.0))],
        [open_class("c", 0, rho)],
        duration=customers / rho,
        warmup=warmup,
    )
    return run_events(m, 0)


@pytest.mark.parametrize(
    ("rho", "customers", "w", "p99"),
    [(0.5, 2e5, 2.0, 9.21034037198), (0.8, 4e5, 5.0, 23.0258509299)],
)
def test_mm1_sojourn_mean_and_p99(rho: float, customers: float, w: float, p99: float) -> None:
    r = mm1(rho, customers, warmup=1000.0)
    latency = r.classes[0].latency
    tol = tolerance(rho, customers)
    assert close(latency.mean, w, tol), (latency.mean, w, tol)
    assert close(latency.quantile(0.99), p99, 2.2 * tol), (latency.quantile(0.99), p99)
    # the waiting time has an atom of 1 - rho at zero (P(wait > 0) = rho)
    wait = r.tiers[0].wait
    assert close(1.0 - wait.counts[0] / wait.n, rho, 4 * tol)
    assert close(utilization(r, 0), rho, 0.02)


def test_mmc_erlang_c() -> None:
    # M/M/4 at rho 0.8: C = 0.596432, W = 1.74554, T p99 = 6.8932 (ORACLES §2)
    customers = 4e5
    m = model(
        [tier("pool", exp(1.0), concurrency=4)],
        [open_class("c", 0, 3.2)],
        duration=customers / 3.2,
        warmup=500.0,
    )
    r = run_events(m, 0)
    latency, wait = r.classes[0].latency, r.tiers[0].wait
    tol = tolerance(0.8, customers)
    assert close(latency.mean, 1.74554058973, tol)
    assert close(latency.quantile(0.99), 6.89320374888, 2.2 * tol)
    assert close(1.0 - wait.counts[0] / wait.n, 0.596432471787, tol)
    assert close(r.tiers[0].queue_time / r.duration, 2.38572988715, 2 * tol)  # Lq


@pytest.mark.parametrize(
    ("offered", "p_block", "w_admitted"),
    [(1.2, 0.168637244552, 2.53456019405)],
)
@pytest.mark.parametrize("as_pool", [False, True], ids=["max_queue", "pool"])
def test_mmck_blocking(offered: float, p_block: float, w_admitted: float, as_pool: bool) -> None:
    # M/M/10/30: 10 servers and 20 waiting places, as a tier's max_queue or as a db pool (§4)
    customers = 3e5
    rate = 10 * offered
    if as_pool:
        spec = tier("db", exp(1.0), kind="database", concurrency=10, pool=Pool(10, max_waiting=20))
    else:
        spec = tier("db", exp(1.0), concurrency=10, max_queue=20)
    m = model([spec], [open_class("c", 0, rate)], duration=customers / rate, warmup=100.0)
    r = run_events(m, 0)
    c = r.classes[0]
    blocked = c.errors / (c.completed + c.errors)
    assert close(blocked, p_block, 0.04), blocked
    assert close(c.latency.mean, w_admitted, 0.03), c.latency.mean
    assert r.tiers[0].rejected == c.errors
    assert utilization(r, 0) == pytest.approx(0.997635, rel=0.01)


def test_erlang_b_is_insensitive_to_lognormal_service() -> None:
    # M/G/10/10, a = 8, lognormal cv = 2: P_block = 0.121661 (§4)
    customers = 3e5
    m = model(
        [tier("pool", Distribution.lognormal(1.0, 2.0), concurrency=10, max_queue=0)],
        [open_class("c", 0, 8.0)],
        duration=customers / 8.0,
        warmup=100.0,
    )
    r = run_events(m, 0)
    c = r.classes[0]
    blocked = c.errors / (c.completed + c.errors)
    assert close(blocked, 0.121661064253, 0.04), blocked
    assert r.tiers[0].wait.max == 0.0


def test_random_and_round_robin_balancing() -> None:
    # n = 10 servers at lambda 0.5 each: random is 10 x M/M/1 (T = 2); round-robin is E10/M/1
    # (T = 1.32464, p99 6.10020) (§8)
    customers = 3e5

    def run(balancing: str) -> RunResult:
        m = model(
            [tier("app", exp(1.0), instances=10, balancing=balancing)],
            [open_class("c", 0, 5.0)],
            duration=customers / 5.0,
            warmup=200.0,
        )
        return run_events(m, 0)

    tol = tolerance(0.5, customers / 10)
    random_latency = run("random").classes[0].latency
    assert close(random_latency.mean, 2.0, tol), random_latency.mean
    rr = run("round_robin").classes[0].latency
    assert close(rr.mean, 1.32464240072, tol), rr.mean
    assert close(rr.quantile(0.99), 6.10020369088, 2.2 * tol), rr.quantile(0.99)
    p2 = run("power_of_two").classes[0].latency
    lc = run("least_connections").classes[0].latency
    assert lc.mean < p2.mean < rr.mean


def test_closed_network_matches_exact_mva() -> None:
    # Case A (§6): app D = 0.04 s, db D = 0.025 s, Z = 1 s, N = 10: X = 9.17616, R = 0.0897808
    m = model(
        [
            tier("app", exp(0.04), blocking=False, calls=(Call(1),)),
            tier("db", exp(0.025)),
        ],
        [closed_class("users", 0, 10, exp(1.0))],
        duration=4000.0,
        warmup=50.0,
    )
    r = run_events(m, 0)
    users = r.classes[0]
    throughput = users.completed / r.duration
    assert close(throughput, 9.17615736324, 0.015), throughput
    assert close(users.latency.mean, 0.0897807877684, 0.03), users.latency.mean
    assert close(utilization(r, 0), 0.36704629453, 0.02)
    # interactive response-time law: N = X (R + Z), with the measured think time
    assert close(throughput * (users.latency.mean + 1.0), 10.0, 0.02)


def test_jackson_feed_forward_network() -> None:
    # lb M/M/1 (1000/s) -> app M/M/8 (60/s) -> db M/M/4 (30/s) w.p. 0.2, at 240 req/s (§5)
    m = model(
        [
            tier("lb", exp(0.001), kind="load_balancer", blocking=False, calls=(Call(1),)),
            tier(
                "app", exp(1 / 60), concurrency=8, blocking=False, calls=(Call(2, probability=0.2),)
            ),
            tier("db", exp(1 / 30), concurrency=4),
        ],
        [open_class("web", 0, 240.0)],
        duration=1000.0,
        warmup=10.0,
    )
    r = run_events(m, 0)
    tol = tolerance(0.5, 240_000)
    assert close(r.classes[0].latency.mean, 0.0251470831579, tol), r.classes[0].latency.mean
    for index, u in ((0, 0.24), (1, 0.5), (2, 0.4)):
        assert close(utilization(r, index), u, 0.02)
    assert close(r.tiers[2].arrivals / r.duration, 48.0, 0.03)


def test_jackson_loop_revisits_the_app() -> None:
    # the same stack with db -> app (1.0): visits v_app = 1.25, v_db = 0.25; E2E 0.0323687 s (§5)
    m = model(
        [
            tier("lb", exp(0.001), kind="load_balancer", blocking=False, calls=(Call(1),)),
            tier(
                "app", exp(1 / 60), concurrency=8, blocking=False, calls=(Call(2, probability=0.2),)
            ),
            tier("db", exp(1 / 30), concurrency=4, blocking=False, calls=(Call(1),)),
        ],
        [open_class("web", 0, 240.0)],
        duration=800.0,
        warmup=10.0,
    )
    r = run_events(m, 0)
    tol = tolerance(0.625, 240 * 800)
    assert close(r.classes[0].latency.mean, 0.0323686667844, tol), r.classes[0].latency.mean
    assert close(r.tiers[1].arrivals / r.classes[0].arrivals, 1.25, 0.01)
    for index, u in ((0, 0.24), (1, 0.625), (2, 0.5)):
        assert close(utilization(r, index), u, 0.025)


def test_closed_network_with_a_multi_server_station_matches_convolution() -> None:
    # Case B (§6): app c = 4, D = 0.16 s; db D = 0.03 s; Z = 1 s; N = 10: X = 8.33632, R = 0.19957
    m = model(
        [
            tier("app", exp(0.16), concurrency=4, blocking=False, calls=(Call(1),)),
            tier("db", exp(0.03)),
        ],
        [closed_class("users", 0, 10, exp(1.0))],
        duration=4000.0,
        warmup=50.0,
    )
    r = run_events(m, 0)
    users = r.classes[0]
    assert close(users.completed / r.duration, 8.3363219992, 0.015)
    assert close(users.latency.mean, 0.199569786407, 0.02), users.latency.mean
    assert close(utilization(r, 0), 0.333452879968, 0.02)


def test_md1_deterministic_service() -> None:
    # M/D/1 at rho 0.8: W = 3, T p99 = 11.3559 (§3); (ca2 + cs2) / 2 = 0.5
    customers = 4e5
    m = model(
        [tier("server", const(1.0))],
        [open_class("c", 0, 0.8)],
        duration=customers / 0.8,
        warmup=1000.0,
    )
    latency = run_events(m, 0).classes[0].latency
    tol = tolerance(0.8, customers, scv=0.5)
    assert close(latency.mean, 3.0, tol), latency.mean
    assert close(latency.quantile(0.99), 11.355886792, 2.2 * tol), latency.quantile(0.99)


@pytest.mark.slow
def test_mg1_lognormal_heavy_tail() -> None:
    # lognormal cv = 2 at rho 0.8: W = 11, T p99 = 75.2875 (§3); x1.5 for the heavy tail (§12.1)
    customers = 2e6
    m = model(
        [tier("server", Distribution.lognormal(1.0, 2.0))],
        [open_class("c", 0, 0.8)],
        duration=customers / 0.8,
        warmup=2000.0,
    )
    latency = run_events(m, 0).classes[0].latency
    tol = 1.5 * tolerance(0.8, customers, scv=2.5)
    assert close(latency.mean, 11.0, tol), latency.mean
    assert close(latency.quantile(0.99), 75.2875, 2.2 * tol), latency.quantile(0.99)


@pytest.mark.slow
def test_power_of_two_choices_near_the_mean_field_limit() -> None:
    # JSQ(2), n = 100, lambda 0.9: mean-field T = 2.61406, finite n about 1.5% above (§8)
    customers = 1e6
    m = model(
        [tier("app", exp(1.0), instances=100, balancing="power_of_two")],
        [open_class("c", 0, 90.0)],
        duration=customers / 90.0,
        warmup=500.0,
    )
    latency = run_events(m, 0).classes[0].latency
    assert close(latency.mean, 2.61405737732 * 1.015, 0.03), latency.mean


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rho", "w", "p99"), [(0.5, 2.0, 9.21034037198), (0.8, 5.0, 23.0258509299)]
)
def test_mm1_tight(rho: float, w: float, p99: float) -> None:
    customers = 2e6
    r = mm1(rho, customers, warmup=2000.0)
    tol = tolerance(rho, customers)
    assert close(r.classes[0].latency.mean, w, tol)
    assert close(r.classes[0].latency.quantile(0.99), p99, 2.2 * tol)


@pytest.mark.slow
def test_mmck_blocking_near_saturation() -> None:
    # M/M/10/30 at offered 0.95: P_block 0.0205861, W 1.66378, p99 5.53449 (§4)
    customers = 2e6
    m = model(
        [tier("db", exp(1.0), kind="database", concurrency=10, pool=Pool(10, max_waiting=20))],
        [open_class("c", 0, 9.5)],
        duration=customers / 9.5,
        warmup=200.0,
    )
    c = run_events(m, 0).classes[0]
    assert close(c.errors / (c.completed + c.errors), 0.0205860794326, 0.06)
    assert close(c.latency.mean, 1.66378112359, 0.015)
    assert close(c.latency.quantile(0.99), 5.53449219863, 0.02)


def test_many_free_publishes_in_a_row_do_not_nest() -> None:
    m = model(
        [
            tier("api", const(0.0), calls=(Call(1, repeat=5000),)),
            tier("events", const(0.0), kind="queue", concurrency=8, blocking=False),
        ],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=2.5,
    )
    r = run_events(m, 0)
    assert r.classes[0].completed == 2
    assert r.tiers[1].arrivals == 10000


def test_users_refused_at_once_with_no_think_time_stop_with_a_clear_error() -> None:
    m = model(
        [tier("app", const(5.0), max_queue=0)],
        [closed_class("ops", 0, 2, const(0.0))],
        duration=10.0,
    )
    with pytest.raises(SimulationError, match="think_time > 0"):
        run_events(m, 0)
