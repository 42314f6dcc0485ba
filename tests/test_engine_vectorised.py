"""The vectorised path: its FIFO kernels, its exactness under chunking, and queueing theory.

Oracle tolerances follow tests/oracles/ORACLES.md section 12: 4 standard deviations of the
estimator, rel SD(mean W) = sqrt((ca2 + cs2) / 2) * sqrt(2 (1 + rho) / n) / (1 - rho) and
rel SD(p99) = 2.2 x that, plus the 1% a reported percentile may differ from the samples' own.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from capsim.engine.events import run_events
from capsim.engine.kernels import SingleWorker, fifo_multi, fifo_reference, fifo_single
from capsim.engine.result import RunResult
from capsim.engine.vectorised import CHUNK_REQUESTS, can_vectorise, run_vectorised
from capsim.model.build import build_model
from capsim.model.types import Model
from capsim.scenario import scenario_from_document
from capsim.scenario.loader import parse_yaml_text
from modelkit import (
    Call,
    Distribution,
    OneOf,
    Parallel,
    ProfilePoint,
    closed_class,
    const,
    exp,
    model,
    open_class,
    tier,
    w3,
)

K_SIGMA = 4.0


def brute_force(arrivals: list[float], service: list[float], workers: int) -> list[float]:
    """Start times by the textbook rule: each request takes the worker that frees first."""
    free = [0.0] * workers
    starts = []
    for a, s in zip(arrivals, service, strict=True):
        worker = min(range(workers), key=lambda w: free[w])
        begin = max(a, free[worker])
        starts.append(begin)
        free[worker] = begin + s
    return starts


def rel_sd_mean(rho: float, n: float, ca2: float = 1.0, cs2: float = 1.0) -> float:
    return math.sqrt((ca2 + cs2) / 2.0) * math.sqrt(2.0 * (1.0 + rho) / n) / (1.0 - rho)


def assert_within(measured: float, expected: float, rel: float, what: str) -> None:
    error = abs(measured - expected) / expected
    assert error <= rel, f"{what}: measured {measured:.6g}, expected {expected:.6g} (±{rel:.2%})"


def erlang_c(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - (a / c) * (1.0 - b))


# ---- kernels: hand-checked cases ----------------------------------------------------------


def test_single_worker_deterministic_queue_starts_each_request_when_the_previous_leaves():
    arrivals = np.array([0.0, 1.0, 2.0, 10.0])
    service = np.array([1.5, 1.5, 1.5, 1.5])
    start, done, carried = fifo_single(arrivals, service, SingleWorker.free_from(-math.inf))
    assert start.tolist() == [0.0, 1.5, 3.0, 10.0]
    assert done.tolist() == [1.5, 3.0, 4.5, 11.5]
    assert carried.free_at == 11.5


def test_single_worker_carries_its_free_time_into_the_next_chunk():
    start, _, carried = fifo_single(
        np.array([1.0, 2.0]), np.array([1.0, 1.0]), SingleWorker.free_from(5.0)
    )
    assert start.tolist() == [5.0, 6.0]
    assert carried.free_at == 7.0


def test_two_workers_kiefer_wolfowitz_example():
    # Two start at once; the third waits for the worker that frees first (t=2); the fourth
    # finds both busy until 3.
    arrivals = np.array([0.0, 0.0, 0.0, 1.0])
    service = np.array([2.0, 3.0, 1.0, 1.0])
    start, free = fifo_multi(arrivals, service, np.full(2, -math.inf))
    assert start.tolist() == [0.0, 0.0, 2.0, 3.0]
    assert free.tolist() == [3.0, 4.0]


def test_a_worker_freed_exactly_at_an_arrival_serves_it_without_wait():
    arrivals = np.array([0.0, 1.0, 2.0])
    service = np.array([1.0, 1.0, 1.0])
    idle = SingleWorker.free_from(-math.inf)
    assert fifo_single(arrivals, service, idle)[0].tolist() == [0.0, 1.0, 2.0]
    assert fifo_multi(arrivals, service, np.full(3, -math.inf))[0].tolist() == [0.0, 1.0, 2.0]


# ---- kernels: against brute force ---------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 3, 8, 16])
@pytest.mark.parametrize("load", [0.3, 0.8, 0.97, 1.3])
def test_kernels_match_brute_force_on_random_inputs(workers: int, load: float):
    rng = np.random.default_rng(workers * 100 + int(load * 10))
    for trial in range(20):
        n = int(rng.integers(1, 600))
        arrivals = np.cumsum(rng.exponential(1.0 / (load * workers), n))
        if trial % 4 == 0:
            service = rng.choice([0.5, 1.0, 2.0], n)  # ties
        elif trial % 4 == 1:
            service = rng.lognormal(-0.5, 1.0, n)
        else:
            service = rng.exponential(1.0, n)
        if trial % 5 == 0:
            service[rng.random(n) < 0.2] = 0.0  # zero work happens (a pass-through hop)
        expected = brute_force(arrivals.tolist(), service.tolist(), workers)
        start, _ = fifo_multi(arrivals, service, np.zeros(workers))
        assert start.tolist() == expected
        if workers == 1:
            single, _, _ = fifo_single(arrivals, service, SingleWorker.free_from(0.0))
            np.testing.assert_allclose(single, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("workers", [1, 4, 16])
def test_kernel_chunked_equals_unchunked(workers: int):
    rng = np.random.default_rng(7)
    n = 20_000
    arrivals = np.cumsum(rng.exponential(1.0 / (0.9 * workers), n))
    service = rng.exponential(1.0, n)
    whole, _ = fifo_multi(arrivals, service, np.full(workers, -math.inf))
    reference, _ = fifo_reference(arrivals, service, np.full(workers, -math.inf))
    assert whole.tolist() == reference.tolist()
    free = np.full(workers, -math.inf)
    parts = []
    cuts = np.sort(rng.choice(np.arange(1, n), 30, replace=False))
    for piece_a, piece_s in zip(np.split(arrivals, cuts), np.split(service, cuts), strict=True):
        start, free = fifo_multi(piece_a, piece_s, free)
        parts.append(start)
    assert np.concatenate(parts).tolist() == whole.tolist()


def test_single_worker_chunked_equals_unchunked_bit_for_bit():
    rng = np.random.default_rng(11)
    n = 20_000
    arrivals = np.cumsum(rng.exponential(1.0 / 0.9, n))
    service = rng.exponential(1.0, n)
    whole, _, carried_whole = fifo_single(arrivals, service, SingleWorker.free_from(-math.inf))
    carried = SingleWorker.free_from(-math.inf)
    parts = []
    cuts = np.sort(rng.choice(np.arange(1, n), 30, replace=False))
    for piece_a, piece_s in zip(np.split(arrivals, cuts), np.split(service, cuts), strict=True):
        start, _, carried = fifo_single(piece_a, piece_s, carried)
        parts.append(start)
    assert np.concatenate(parts).tolist() == whole.tolist()
    assert carried == carried_whole


def test_a_waiting_request_starts_exactly_when_the_previous_one_is_done():
    # Zero work ends when it starts: the two requests queued behind the first leave with it,
    # at the same instant to the last bit (issue 11.2: their order at the next tier is then
    # decided by the order they left in, not by a rounding error).
    rng = np.random.default_rng(5)
    arrivals = np.cumsum(rng.exponential(0.01, 2000))
    service = np.where(rng.random(2000) < 0.5, 0.0, rng.exponential(0.012, 2000))
    start, done, _ = fifo_single(arrivals, service, SingleWorker.free_from(-math.inf))
    waited = start[1:] > arrivals[1:]
    assert waited.sum() > 200
    assert (start[1:][waited] == done[:-1][waited]).all()
    assert (done[service == 0.0] == start[service == 0.0]).all()
    assert (
        start[~np.concatenate(([False], waited))] == arrivals[~np.concatenate(([False], waited))]
    ).all()


def test_a_single_worker_never_makes_an_idle_request_wait_a_rounding_error():
    # Issue 11.3: arrivals every 10 ms, 3 ms of work: nobody can wait. Start times rebuilt from
    # the running sums used to land 1e-14 s after the arrival.
    arrivals = np.arange(1, 100_001) / 100.0
    service = np.full(arrivals.size, 0.003)
    start, _, _ = fifo_single(arrivals, service, SingleWorker.free_from(-math.inf))
    assert (start == arrivals).all()


def test_a_service_too_small_to_move_the_clock_counts_as_zero_work():
    # Three workers; five requests arrive together at 22.5 s, then ten more a second apart. The
    # fourth must wait for the third's 0.1 ms. The fifth's 1e-16 s of work (a + s == a, as a
    # gamma with cv 1.5 draws now and then) once counted as a departure at 22.5 s, so the
    # fourth found "two busy workers" and started at once (slow-fuzz seed 2029).
    arrivals = np.concatenate((np.full(5, 22.5), 23.5 + np.arange(10.0)))
    service = np.concatenate(([0.002, 0.002, 0.0001, 0.0005, 1e-16], np.full(10, 0.001)))
    assert arrivals[4] + service[4] == arrivals[4]
    carried = np.full(3, 22.0)
    start, _ = fifo_multi(arrivals, service, carried)
    expected, _ = fifo_reference(arrivals, service, carried)
    assert start[3] == expected[3] == 22.5001
    assert start.tolist() == expected.tolist()


# ---- the engine: exact behaviour on deterministic models ----------------------------------


def constant_arrivals_model(tiers: list[dict[str, object]], rate: float = 1.0) -> Model:
    return model(tiers, [open_class("c", 0, rate, arrivals="constant")], duration=50.0)


def test_parallel_fan_out_waits_for_the_slowest_branch_then_calls_in_sequence():
    m = constant_arrivals_model(
        [
            tier(
                "api", const(0.010), blocking=False, calls=(Parallel((Call(1), Call(2))), Call(3))
            ),
            tier("a", const(0.020)),
            tier("b", const(0.030)),
            tier("c", const(0.005)),
        ]
    )
    run = run_vectorised(m, 0)
    latency = run.classes[0].latency
    assert run.classes[0].completed == run.classes[0].arrivals == 49  # at 1 s, 2 s, ... 49 s
    assert latency.min == pytest.approx(0.045)
    assert latency.max == pytest.approx(0.045)


@pytest.mark.parametrize(("steps", "latency"), [(2, 0.021), (3, 0.031)])
def test_consecutive_parallel_steps_each_start_when_the_previous_one_has_joined(
    steps: int, latency: float
):
    # Issue 11.1: 1 ms at front, then 10 ms at a, then 10 ms at b (then 10 ms at c), nothing
    # queues: every request takes exactly the sum. The second step once started from the clock
    # before the first step's join and lost its 10 ms.
    leaves = [tier(name, const(0.010), concurrency=100) for name in ("a", "b", "c")[:steps]]
    calls = tuple(Parallel((Call(index + 1),)) for index in range(steps))
    m = model(
        [tier("front", const(0.001), concurrency=100, blocking=False, calls=calls), *leaves],
        [open_class("q", 0, 50.0)],
        duration=100.0,
        warmup=5.0,
    )
    run = run_vectorised(m, 0)
    q = run.classes[0]
    assert q.completed > 4000
    # Every request takes exactly the sum; the few still unfinished at the end of the window,
    # younger than that, are counted at the shortest latency of the run: the sum too.
    assert q.unfinished <= 3 and q.oldest_unfinished < latency
    assert q.latency.min == pytest.approx(latency, abs=1e-12)
    assert q.latency.max == pytest.approx(latency, abs=1e-12)


def test_a_parallel_step_inside_a_branch_joins_before_the_outer_step():
    # front: parallel [parallel [a, b], d], where b (30 ms) calls c (5 ms): the inner step
    # joins at max(10, 35) before the outer one joins with d (20): every request takes 36 ms.
    m = constant_arrivals_model(
        [
            tier(
                "front",
                const(0.001),
                blocking=False,
                calls=(Parallel((Parallel((Call(1), Call(2))), Call(4))),),
            ),
            tier("a", const(0.010)),
            tier("b", const(0.030), blocking=False, calls=(Call(3),)),
            tier("c", const(0.005)),
            tier("d", const(0.020)),
        ]
    )
    run = run_vectorised(m, 0)
    assert run.classes[0].latency.min == pytest.approx(0.036, abs=1e-12)
    assert run.classes[0].latency.max == pytest.approx(0.036, abs=1e-12)


@pytest.mark.parametrize("chunk", [CHUNK_REQUESTS, 1000, 7])
def test_evenly_spaced_arrivals_at_a_single_worker_never_wait(chunk: int):
    # Issue 11.3: one worker, an arrival every 10 ms, 3 ms of work: no request can wait, so the
    # queue never holds anyone (the event path says 0 and 0), whatever the chunk size.
    m = model(
        [tier("one", const(0.003))],
        [open_class("q", 0, 100.0, arrivals="constant")],
        duration=100.0,
        warmup=5.0,
    )
    run = run_vectorised(m, 0, chunk_requests=chunk)
    one = run.tiers[0]
    assert one.completed > 9000
    assert one.queue_max == 0
    assert one.wait.max == 0.0
    assert one.queue_time == 0.0
    assert run.classes[0].latency.max == pytest.approx(0.003, abs=1e-12)


def test_sequential_calls_run_one_after_another():
    m = constant_arrivals_model(
        [
            tier("api", const(0.010), blocking=False, calls=(Call(1), Call(2, probability=1.0))),
            tier("auth", const(0.004)),
            tier("db", const(0.006)),
        ]
    )
    run = run_vectorised(m, 0)
    assert run.classes[0].latency.mean == pytest.approx(0.020)
    assert run.tiers[2].arrivals == 49


def test_repeated_calls_to_one_tier_need_the_event_path():
    # The second query's arrival depends on the same tier's answer to the first: a tier's
    # arrivals are then not all known before it is processed.
    m = constant_arrivals_model(
        [
            tier("api", const(0.010), blocking=False, calls=(Call(1, repeat=3),)),
            tier("db", const(0.004)),
        ]
    )
    ok, reason = can_vectorise(m)
    assert not ok and "sequential calls" in reason


def test_queue_work_is_not_in_the_caller_latency_but_the_publish_is():
    m = constant_arrivals_model(
        [
            tier("api", const(0.010), blocking=False, calls=(Call(1),)),
            tier("events", const(0.500), kind="queue", publish_time=const(0.002)),
        ]
    )
    run = run_vectorised(m, 0)
    assert run.classes[0].latency.mean == pytest.approx(0.012)
    age = run.tiers[1].age
    assert age is not None and age.mean == pytest.approx(0.5)


def test_waits_and_queue_length_of_a_deterministic_overload():
    # One arrival per second, two seconds of work: request k waits k seconds.
    m = model(
        [tier("slow", const(2.0))], [open_class("c", 0, 1.0, arrivals="constant")], duration=20.0
    )
    run = run_vectorised(m, 0)
    waits = run.tiers[0].wait
    # Arrivals 1 ... 10 start at 1, 3, 5, ... 19 after 0 ... 9 s; 11 ... 19 still wait at 20 s,
    # counted at their waits so far, 9 ... 1 s (lower bounds).
    assert waits.n == 19
    assert waits.max == pytest.approx(9.0)
    assert waits.total == pytest.approx(sum(range(10)) + sum(range(1, 10)))
    assert run.tiers[0].backlog_at_end == 9
    assert run.tiers[0].busy_time == pytest.approx(20.0 - 1.0)
    assert run.tiers[0].queue_max >= 9


# ---- the engine: chunking and reproducibility ----------------------------------------------


def mixed_model(seed: int = 3) -> Model:
    """Two classes, instances with both balancings, a database with replicas, parallel calls."""
    return model(
        [
            tier("edge", exp(0.002), concurrency=8, blocking=False, calls=(Call(1),)),
            tier(
                "app",
                Distribution.lognormal(0.010, 1.5),
                instances=3,
                concurrency=2,
                blocking=False,
                balancing="random",
                calls=(
                    Call(2, probability=0.4),
                    Parallel((Call(3), OneOf(((3, 0.5), (4, 0.3))))),
                    Call(5),
                ),
            ),
            tier("cache", exp(0.001), concurrency=4),
            tier("db", exp(0.006), kind="database", concurrency=2, replicas=2, read_ratio=0.7),
            tier("search", exp(0.004), instances=2, concurrency=1),
            tier("events", exp(0.003), kind="queue", concurrency=2, publish_time=exp(0.001)),
        ],
        [open_class("browse", 0, 150.0), open_class("buy", 0, 40.0, arrivals="constant")],
        duration=200.0,
        warmup=20.0,
        seed=seed,
    )


def summary(run: RunResult) -> list[object]:
    rows: list[object] = []
    for c in run.classes:
        rows.append((c.arrivals, c.completed, c.latency.counts.tolist()))
    for t in run.tiers:
        rows.append(
            (t.arrivals, t.completed, t.queue_max, t.wait.counts.tolist(), t.queue_trace.tolist())
        )
    return rows


def test_chunk_size_does_not_change_the_answer():
    m = mixed_model()
    big = run_vectorised(m, 0, chunk_requests=1 << 20)
    small = run_vectorised(m, 0, chunk_requests=997)
    assert summary(big) == summary(small)
    for a, b in zip(big.classes, small.classes, strict=True):
        assert a.latency.total == pytest.approx(b.latency.total, rel=1e-9)
    for a, b in zip(big.tiers, small.tiers, strict=True):
        assert a.busy_time == pytest.approx(b.busy_time, rel=1e-9)
        assert a.queue_time == pytest.approx(b.queue_time, rel=1e-9)


def released_together(api_first: bool) -> Model:
    """Issue 11.2: a load balancer at its defaults (one worker, no work) except that `upload`
    costs it 5 ms, so the `api` requests queued behind an upload leave with it, at the same
    instant, for an app of 2 x 1 worker (exponential 4 ms)."""
    api = "  api: {entry: lb, rate: 300/s}\n"
    upload = "  upload: {entry: lb, rate: 40/s}\n"
    text = (
        "name: released-together\nseed: 3\nsimulation: {duration: 300s, warmup: 10s}\n"
        "traffic:\n" + (api + upload if api_first else upload + api) + "tiers:\n"
        "  lb: {type: load_balancer, backends: app, classes: {upload: {service_time: 5ms}}}\n"
        "  app: {instances: 2, service_time: {dist: exponential, mean: 4ms}}\n"
    )
    document = parse_yaml_text(text, "released-together.yaml")
    return build_model(scenario_from_document(document, Path.cwd()))


#: SD of one 300 s replication's upload mean latency (20 replications each way: 0.15-0.17 ms).
UPLOAD_MEAN_SD = 0.18e-3


def upload_means(m: Model, runs: int, engine: Callable[[Model, int], RunResult]) -> float:
    upload = m.class_index["upload"]
    return sum(engine(m, r).classes[upload].latency.mean for r in range(runs)) / runs


def test_requests_released_together_keep_the_order_they_left_in_whichever_class_comes_first():
    # The upload mean was 16.1 ms with api declared first and 13.6 ms with upload first: ties
    # went to the first-declared class. Both now agree with the event path (13.5 ms).
    api_first, upload_first = released_together(True), released_together(False)
    vectorised = [upload_means(m, 20, run_vectorised) for m in (api_first, upload_first)]
    events = upload_means(api_first, 4, run_events)
    assert abs(vectorised[0] - vectorised[1]) <= K_SIGMA * UPLOAD_MEAN_SD * math.sqrt(2 / 20)
    for mean in vectorised:
        assert abs(mean - events) <= K_SIGMA * UPLOAD_MEAN_SD * math.sqrt(1 / 20 + 1 / 4)


@pytest.mark.parametrize("api_first", [True, False])
def test_requests_released_together_do_not_depend_on_the_chunk_size(api_first: bool):
    m = released_together(api_first)
    whole = run_vectorised(m, 0, chunk_requests=1 << 20)
    for chunk in (997, 64):
        chunked = run_vectorised(m, 0, chunk_requests=chunk)
        # Every count, histogram bin and maximum is identical; sums of times are added up chunk
        # by chunk, so they may differ in the last bits.
        assert summary(chunked) == summary(whole)
        for a, b in zip(chunked.classes, whole.classes, strict=True):
            assert a.latency.max == b.latency.max
            assert a.latency.total == pytest.approx(b.latency.total, rel=1e-12)
        for a, b in zip(chunked.tiers, whole.tiers, strict=True):
            assert a.wait.max == b.wait.max
            assert a.busy_time == pytest.approx(b.busy_time, rel=1e-12)
            assert a.queue_time == pytest.approx(b.queue_time, rel=1e-12)


def test_same_replication_same_numbers_other_replication_other_numbers():
    m = mixed_model()
    assert summary(run_vectorised(m, 0)) == summary(run_vectorised(m, 0))
    assert summary(run_vectorised(m, 0)) != summary(run_vectorised(m, 1))


def test_the_result_says_which_path_ran_and_what_each_stage_cost():
    run = run_vectorised(mixed_model(), 0)
    assert run.engine_path == "vectorised"
    assert "FIFO" in run.engine_reason
    assert {"draw", "recurse", "route", "summarise"} <= set(run.timings)
    assert run.events > sum(c.arrivals for c in run.classes) > 0  # events include warm-up


def test_database_reads_go_to_replicas_and_writes_to_primaries():
    run = run_vectorised(mixed_model(), 0)
    db = run.tiers[3]
    assert db.workers == 2 * 3
    assert db.arrivals > 0


def test_a_rate_profile_gives_the_integrated_number_of_arrivals():
    profile = (ProfilePoint(0.0, 100.0), ProfilePoint(50.0, 300.0), ProfilePoint(50.0, 50.0))
    m = model(
        [tier("app", exp(0.001), concurrency=4)],
        [open_class("c", 0, 100.0, profile=profile)],
        duration=100.0,
    )
    run = run_vectorised(m, 0)
    expected = 50.0 * 200.0 + 50.0 * 50.0  # ramp 100 -> 300 for 50 s, then 50/s
    assert abs(run.events - expected) < K_SIGMA * math.sqrt(expected)


# ---- eligibility ---------------------------------------------------------------------------


def test_eligible_scenario_says_why():
    ok, reason = can_vectorise(mixed_model())
    assert ok
    assert "FIFO" in reason


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"balancing": "least_connections"}, "least_connections balancing"),
        ({"balancing": "power_of_two"}, "power_of_two balancing"),
        ({"max_queue": 10}, "max_queue"),
        ({"timeout": 1.0}, "timeout"),
        ({"blocking": True}, "blocking workers"),
    ],
)
def test_state_dependent_features_need_the_event_path(change: dict[str, object], words: str):
    spec = {"blocking": False, "calls": (Call(1),), **change}
    m = model(
        [tier("app", exp(0.01), instances=2, **spec), tier("db", exp(0.01))],  # type: ignore[arg-type]
        [open_class("c", 0, 10.0)],
    )
    ok, reason = can_vectorise(m)
    assert not ok
    assert words in reason
    assert "'app'" in reason


def test_blocking_worker_without_calls_is_fine():
    m = model([tier("db", exp(0.01), blocking=True)], [open_class("c", 0, 10.0)])
    assert can_vectorise(m)[0]


def test_closed_classes_cycles_and_shared_sequential_tiers_need_the_event_path():
    closed = model([tier("app", exp(0.01))], [closed_class("u", 0, 5, const(1.0))])
    assert "closed" in can_vectorise(closed)[1]
    loop = model(
        [
            tier("app", exp(0.01), blocking=False, calls=(Call(1, probability=0.5),)),
            tier("db", exp(0.01), blocking=False, calls=(Call(0, probability=0.5),)),
        ],
        [open_class("c", 0, 10.0)],
    )
    assert "cycle" in can_vectorise(loop)[1]
    shared = model(
        [
            tier("app", exp(0.01), blocking=False, calls=(Call(1), Call(2))),
            tier("cache", exp(0.01), kind="cache", calls=(Call(2, probability=0.2),)),
            tier("db", exp(0.01)),
        ],
        [open_class("c", 0, 10.0)],
    )
    ok, reason = can_vectorise(shared)
    assert not ok and "sequential calls" in reason
    lc_call = model(
        [
            tier("lb", const(0.0), blocking=False, calls=(Call(1, algorithm="least_connections"),)),
            tier("app", exp(0.01), instances=2),
        ],
        [open_class("c", 0, 10.0)],
    )
    assert "least_connections" in can_vectorise(lc_call)[1]


# ---- oracles (ORACLES.md sections 1, 2, 3, 5) ---------------------------------------------


def single_queue(service: Distribution, rate: float, workers: int, customers: float) -> RunResult:
    warmup = 2000.0 * service.mean  # > 10 relaxation times at rho 0.8
    m = model(
        [tier("q", service, concurrency=workers)],
        [open_class("c", 0, rate)],
        duration=customers / rate,
        warmup=warmup,
        seed=11,
    )
    return run_vectorised(m, 0)


def test_mm1_rho08_mean_and_p99():
    n = 1e6
    run = single_queue(exp(1.0), 0.8, 1, n)
    sd = rel_sd_mean(0.8, n)
    latency = run.classes[0].latency
    assert_within(latency.mean, 5.0, K_SIGMA * sd, "M/M/1 W")
    assert_within(latency.quantile(0.99), 23.0259, K_SIGMA * 2.2 * sd + 0.01, "M/M/1 p99")
    utilisation = run.tiers[0].busy_time / 1e6 * 0.8
    assert_within(utilisation, 0.8, K_SIGMA * math.sqrt(2.0 / n), "M/M/1 utilisation")


def test_mmc_erlang_c_c4_rho08():
    n = 1e6
    run = single_queue(exp(1.0), 3.2, 4, n)
    sd = rel_sd_mean(0.8, n)
    latency = run.classes[0].latency
    assert_within(latency.mean, 1.74554, K_SIGMA * sd, "M/M/4 W")
    assert_within(latency.quantile(0.99), 6.8932, K_SIGMA * 2.2 * sd + 0.01, "M/M/4 p99")
    waited = 1.0 - run.tiers[0].wait.counts[0] / run.tiers[0].wait.n
    assert_within(waited, erlang_c(4, 3.2), 0.02, "M/M/4 P(wait)")


def test_mg1_lognormal_pollaczek_khinchine_mean():
    n = 1e6
    run = single_queue(Distribution.lognormal(1.0, 1.0), 0.8, 1, n)
    sd = 1.5 * rel_sd_mean(0.8, n, cs2=1.0)
    latency = run.classes[0].latency
    assert_within(latency.mean, 5.0, K_SIGMA * sd, "M/G/1 lognormal cv=1 W")
    assert_within(latency.quantile(0.99), 24.496, K_SIGMA * 2.2 * sd + 0.01, "M/G/1 p99")


def w3_model(requests: float, seed: int = 1) -> Model:
    """W3 with about `requests` requests (600/s)."""
    return w3(requests / 600.0, seed=seed)


def test_w3_jackson_mean_sojourn():
    run = run_vectorised(w3_model(1e6), 0)
    # The sojourn is dominated by the app tier (M/M/16, rho 0.75); 2% is over 4 sigma at 1e6.
    assert_within(run.classes[0].latency.mean, 0.026349, 0.02, "W3 mean sojourn")
    app = run.tiers[2]
    assert_within(app.busy_time / (app.workers * 1e6 / 600.0), 0.75, 0.01, "app utilisation")


@pytest.mark.slow
def test_w3_ten_million_requests_hit_the_jackson_mean_closely():
    run = run_vectorised(w3_model(1e7, seed=5), 0)
    assert_within(run.classes[0].latency.mean, 0.026349, 0.006, "W3 mean sojourn at 1e7")


def test_kw_heap_reference_is_the_brute_force_rule():
    rng = np.random.default_rng(1)
    arrivals = np.cumsum(rng.exponential(0.3, 500))
    service = rng.exponential(1.0, 500)
    start, free = fifo_reference(arrivals, service, np.zeros(3))
    assert start.tolist() == brute_force(arrivals.tolist(), service.tolist(), 3)
    assert free.tolist() == sorted(heapq.nlargest(3, (start + service).tolist()))
