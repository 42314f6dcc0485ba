"""Priorities between classes (Cobham) and TTL caches' hit ratios (ORACLES sections 7 and 10)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import capsim
from capsim.engine.events import run_events
from capsim.engine.vectorised import can_vectorise
from capsim.model.build import ttl_hit_ratio
from capsim.model.types import Fault
from capsim.scenario import validate_file
from modelkit import Call, ProfilePoint, const, exp, model, open_class, tier


def test_a_higher_priority_request_overtakes_the_waiting_ones() -> None:
    # One worker, 1 s each. 'bulk' arrives at 0.1 s and 0.3 s, 'urgent' at 0.2 s: while the
    # first bulk request is served, urgent (0.2 s) goes before bulk (0.3 s).
    def points(*pairs: tuple[float, float]) -> tuple[ProfilePoint, ...]:
        return tuple(ProfilePoint(at, rate) for at, rate in pairs)

    bulk = points((0, 10), (0.15, 10), (0.15, 0), (0.25, 0), (0.25, 10), (0.35, 10), (0.35, 0))
    urgent = points((0, 0), (0.15, 0), (0.15, 20), (0.24, 20), (0.24, 0))
    m = model(
        [tier("app", const(1.0))],
        [
            open_class("bulk", 0, 10.0, arrivals="constant", profile=bulk),
            open_class("urgent", 0, 0.0, arrivals="constant", profile=urgent),
        ],
        duration=5.0,
    )
    m = replace(m, tiers=(replace(m.tiers[0], priorities=(1, 0)),))
    bulk_run, urgent_run = run_events(m, 0).classes
    assert (bulk_run.completed, urgent_run.completed) == (2, 1)
    assert urgent_run.latency.max == pytest.approx(1.9)  # served 1.1 - 2.1 s
    assert bulk_run.latency.max == pytest.approx(2.8)  # the second bulk one: 2.1 - 3.1 s


def test_two_class_non_preemptive_priority_matches_cobham() -> None:
    # ORACLES section 10: M/M/1, lambda = (0.2, 0.6), mu = 1: sojourns W1 = 2, W2 = 6, and
    # the conservation law sum rho_k Wq_k = 3.2.
    m = model(
        [tier("server", exp(1.0))],
        [open_class("high", 0, 0.2), open_class("low", 0, 0.6)],
        duration=300_000.0,
        warmup=2_000.0,
    )
    m = replace(m, tiers=(replace(m.tiers[0], priorities=(0, 1)),))
    high, low = run_events(m, 0).classes
    assert high.latency.mean == pytest.approx(2.0, rel=0.04)
    assert low.latency.mean == pytest.approx(6.0, rel=0.05)
    conservation = 0.2 * (high.latency.mean - 1.0) + 0.6 * (low.latency.mean - 1.0)
    assert conservation == pytest.approx(3.2, rel=0.05)


@pytest.mark.parametrize(
    ("zipf", "ttl", "non_reset", "reset"),
    [
        (0.8, 1, 0.332711, 0.384301),
        (0.8, 10, 0.651697, 0.740776),
        (0.8, 60, 0.87823, 0.968894),
        (1.0, 1, 0.531139, 0.589611),
        (1.0, 10, 0.757044, 0.81573),
        (1.0, 60, 0.901159, 0.954769),
    ],
)
def test_ttl_hit_ratios_match_the_oracle_table(zipf, ttl, non_reset, reset) -> None:
    # ORACLES section 7: M = 10^4 keys, 1000 requests/s in total.
    assert ttl_hit_ratio(1000.0, ttl, 10_000, zipf) == pytest.approx(non_reset, abs=2e-6)
    assert ttl_hit_ratio(1000.0, ttl, 10_000, zipf, reset_on_hit=True) == pytest.approx(
        reset, abs=2e-6
    )


@pytest.mark.parametrize(
    ("rate", "ttl", "non_reset", "reset"),
    [(2, 1, 0.666667, 0.864665), (0.1, 5, 0.333333, 0.393469), (10, 0.5, 0.833333, 0.993262)],
)
def test_one_key_ttl_hit_ratios_match_the_oracle(rate, ttl, non_reset, reset) -> None:
    assert ttl_hit_ratio(rate, ttl, 1, 1.0) == pytest.approx(non_reset, abs=1e-6)
    assert ttl_hit_ratio(rate, ttl, 1, 1.0, True) == pytest.approx(reset, abs=1e-6)


SCENARIO = """\
name: ttl
traffic:
  web: {{entry: edge, rate: 1000/s}}
tiers:
  edge:
    type: load_balancer
    backends: cache
  cache:
    type: cache
    hit_ratio: {{model: ttl, ttl: 10s, keys: 10000, zipf: 0.8{extra}}}
    on_miss: db
  db: {{service_time: 1ms, concurrency: 8{db}}}
"""


def test_a_ttl_cache_takes_its_request_rate_from_the_traffic(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra="", db=""))
    m = capsim.build_model(capsim.load_scenario(path))
    assert m.tier("cache").hit_ratio == pytest.approx(0.651697, abs=2e-6)
    path.write_text(SCENARIO.format(extra=", reset_on_hit: true, rate: 100/s", db=""))
    m = capsim.build_model(capsim.load_scenario(path))
    assert m.tier("cache").hit_ratio == pytest.approx(ttl_hit_ratio(100.0, 10.0, 10_000, 0.8, True))


def test_priorities_name_real_classes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra="", db=", priorities: [web, bots]"))
    [problem] = validate_file(path, [])
    assert problem.path == "tiers.db.priorities[1]"
    assert "unknown class 'bots'" in problem.message


def test_a_failed_message_is_redelivered_then_dead_lettered() -> None:
    # The consumer's call fails half the time (an error_rate fault on the db); with 3 retries a
    # message is tried (1 - 0.5^4) / 0.5 = 1.875 times on average and dead-lettered with
    # probability 0.5^4 = 1/16 (ORACLES section 9's amplification, for messages).
    m = model(
        [
            tier("api", const(0.0), concurrency=100, calls=(Call(1),)),
            tier("jobs", exp(0.001), kind="queue", concurrency=50, calls=(Call(2),)),
            tier("db", exp(0.001), concurrency=50),
        ],
        [open_class("web", 0, 200.0)],
        duration=100.0,
    )
    jobs = replace(m.tiers[1], max_retries=3)
    m = replace(
        m, tiers=(m.tiers[0], jobs, m.tiers[2]), faults=(Fault(0.0, None, 2, error_rate=0.5),)
    )
    result = run_events(m, 0)
    messages = result.classes[0].arrivals
    queue = result.tiers[1]
    assert queue.arrivals == pytest.approx(messages, abs=2)  # publishes, not redeliveries
    assert (queue.redeliveries + messages) / messages == pytest.approx(1.875, rel=0.02)
    assert queue.dead_letters / messages == pytest.approx(1 / 16, abs=0.008)


def test_the_drain_time_after_a_spike_is_reported(tmp_path: Path) -> None:
    # 50/s into a queue that does 100/s; 150/s for 10 s leaves a backlog of 500 at 20 s,
    # which drains at 50/s: 10 s.
    path = tmp_path / "q.yaml"
    path.write_text(
        "name: q\nsimulation: {duration: 60s, warmup: 0s, timeseries: 1s}\n"
        "traffic:\n  web:\n    entry: api\n    arrivals: constant\n"
        "    profile: [{at: 0s, rate: 50/s}, {at: 10s, rate: 50/s}, {at: 10s, rate: 150/s},"
        " {at: 20s, rate: 150/s}, {at: 20s, rate: 50/s}]\n"
        "tiers:\n  api: {service_time: 0s, concurrency: 100, calls: [jobs]}\n"
        "  jobs: {type: queue, service_time: 10ms, max_retries: 2}\n"
    )
    data = capsim.run_file(path).data
    drain = data["timeseries"]["drain"]["jobs"]
    assert drain["peak_at"] == 20.0 and drain["peak"] == pytest.approx(475.0, rel=0.01)
    assert drain["drain_time"] == 10.0
    assert "api" not in data["timeseries"]["drain"]
    assert data["tiers"]["jobs"]["dead_letters"] == 0


ORDERS = """\
name: orders
seed: 1
simulation: {{duration: 60s, warmup: 5s}}
traffic:
  checkout: {{entry: api, rate: 30/s}}
tiers:
  api: {{type: service, concurrency: 50, service_time: 1ms, calls: [orders]}}
  orders: {{type: queue, consumers: 4, service_time: 10ms, calls: [payment]{extra}}}
  payment: {{type: service, concurrency: 100, service_time: 200ms}}
"""


def test_a_consumer_is_held_while_it_waits_for_the_payment_provider(tmp_path: Path) -> None:
    # Blocking by default: each message holds a consumer for 10 ms + 200 ms, so 4 consumers
    # finish 4 / 0.21 = 19.05 messages/s of the 30/s published; the backlog grows ~11/s.
    path = tmp_path / "orders.yaml"
    path.write_text(ORDERS.format(extra=""))
    orders = capsim.run_file(path).data["tiers"]["orders"]
    assert orders["occupancy"] > 0.99 and orders["utilization"] < 0.06
    assert orders["throughput"] == pytest.approx(4 / 0.210, rel=0.02)
    assert orders["stable"] is False
    assert orders["growth_rate"] == pytest.approx(30 - 4 / 0.210, rel=0.15)


def test_an_async_consumer_is_freed_after_its_own_work(tmp_path: Path) -> None:
    # blocking: false: a consumer is held only for its 10 ms (30/s x 10 ms / 4 = 7.5%).
    path = tmp_path / "orders.yaml"
    path.write_text(ORDERS.format(extra=", blocking: false"))
    orders = capsim.run_file(path).data["tiers"]["orders"]
    assert orders["occupancy"] == pytest.approx(0.075, rel=0.1)
    assert orders["occupancy"] == pytest.approx(orders["utilization"])
    assert orders["stable"] is True
    assert orders["queue_length"]["mean"] < 0.1


def test_blocking_consumers_with_calls_run_on_the_event_path(tmp_path: Path) -> None:
    # The api is made async so that only the consumers decide which engine path runs.
    path = tmp_path / "orders.yaml"
    async_api = "1ms, blocking: false, calls"

    def vectorisable(extra: str) -> tuple[bool, str]:
        path.write_text(ORDERS.format(extra=extra).replace("1ms, calls", async_api))
        return can_vectorise(capsim.build_model(capsim.load_scenario(path)))

    ok, reason = vectorisable("")
    assert not ok and "'orders' has blocking workers that make calls" in reason
    assert vectorisable(", blocking: false")[0]


def test_enough_blocking_consumers_are_occupied_by_work_and_call_time(tmp_path: Path) -> None:
    # 8 consumers: occupancy = throughput x (10 ms + 200 ms) / 8, about 30/s x 0.21 s / 8 =
    # 79% (the utilisation law on the holding time; payment never queues), utilisation =
    # throughput x 10 ms / 8, about 3.75%; the backlog stays bounded.
    path = tmp_path / "orders.yaml"
    path.write_text(ORDERS.format(extra="").replace("consumers: 4", "consumers: 8"))
    orders = capsim.run_file(path).data["tiers"]["orders"]
    assert orders["stable"] is True
    assert orders["occupancy"] == pytest.approx(orders["throughput"] * 0.210 / 8, rel=0.01)
    assert orders["utilization"] == pytest.approx(orders["throughput"] * 0.010 / 8, rel=0.01)
    assert orders["occupancy"] == pytest.approx(0.79, abs=0.04)
