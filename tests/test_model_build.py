"""A scenario becomes a frozen, index-based Model: names resolved, defaults applied, tiers lowered."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from capsim.errors import ScenarioError
from capsim.model.build import build_model, che_hit_ratio
from capsim.model.types import Call, Model, OneOf, Parallel, Pool
from capsim.scenario import load_scenario


def model_of(folder: Path, text: str, overrides: tuple[str, ...] = ()) -> Model:
    path = folder / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return build_model(load_scenario(path, overrides))


SHOP = """
name: shop
description: a small web shop
seed: 7
simulation: {duration: 10min, replications: 3}
traffic:
  browse: {entry: edge, rate: 800/s}
  checkout: {entry: lb, rate: 20/s}
  reports: {entry: app, users: 40, think_time: {dist: exponential, mean: 2s}}
tiers:
  edge:
    type: cdn
    instances: 3
    concurrency: 50
    hit_ratio: 0.9
    origin_shield: {hit_ratio: 50%}
    on_miss: lb
  lb: {type: load_balancer, backends: app, algorithm: least_connections}
  app:
    instances: 8
    concurrency: 4
    service_time: 25ms
    max_queue: 100
    timeout: 2s
    calls:
      - cache
      - {tier: db, probability: 0.2, repeat: 3}
      - one_of: {cache: 0.75, db: 0.25}
      - parallel: [cache, {tier: db}]
      - events
    classes:
      checkout: {service_time: {dist: exponential, mean: 60ms}, calls: [db]}
  cache: {type: cache, hit_ratio: 0.8, on_miss: db}
  db:
    type: database
    service_time: 5ms
    replicas: 2
    read_ratio: 0.9
    pool: {size: 20, max_waiting: 100, timeout: 500ms}
    classes: {checkout: {read_ratio: 0.25}}
  events:
    type: queue
    service_time: 10ms
    consumers: 3
    concurrency: 2
    publish_time: 1ms
    max_depth: 1000
slos:
  - {class: browse, p99: 300ms}
  - {class: checkout, p95: 500ms, error_rate: 0.1%}
  - {tier: db, utilization: 70%}
"""


@pytest.fixture
def shop(tmp_path: Path) -> Model:
    return model_of(tmp_path, SHOP)


def test_names_become_indices_with_the_origin_shield_after_its_cdn(shop: Model) -> None:
    names = [t.name for t in shop.tiers]
    assert names == ["edge", "edge.origin_shield", "lb", "app", "cache", "db", "events"]
    assert [t.index for t in shop.tiers] == list(range(7))
    assert shop.tier_index == {name: i for i, name in enumerate(names)}
    assert shop.class_index == {"browse": 0, "checkout": 1, "reports": 2}
    assert all(len(t.work) == 3 for t in shop.tiers)


def test_the_top_level_settings_carry_over(shop: Model) -> None:
    assert (shop.name, shop.seed, shop.description) == ("shop", 7, "a small web shop")
    assert shop.simulation.duration == 600.0
    assert shop.simulation.warmup == 60.0  # 10% of the duration by default
    assert shop.simulation.replications == 3
    assert shop.source.endswith("s.yaml")


def test_a_cdn_with_an_origin_shield_is_two_cache_layers(shop: Model) -> None:
    edge, shield, lb = shop.tier("edge"), shop.tier("edge.origin_shield"), shop.tier("lb")
    assert edge.kind == "cdn" and edge.hit_ratio == 0.9 and edge.on_miss == shield.index
    assert edge.blocking is False
    assert edge.work[0].service_time.mean == pytest.approx(0.005)
    assert edge.work[0].calls == (Call(shield.index, probability=pytest.approx(0.1)),)
    assert shield.kind == "cache" and shield.synthetic and not edge.synthetic
    assert (shield.instances, shield.concurrency) == (3, 50)
    assert shield.hit_ratio == 0.5 and shield.on_miss == lb.index
    assert shield.work[2].calls == (Call(lb.index, probability=0.5),)


def test_a_load_balancer_forwards_everything_with_its_algorithm(shop: Model) -> None:
    lb, app = shop.tier("lb"), shop.tier("app")
    assert lb.kind == "load_balancer" and lb.work[0].service_time.mean == 0.0
    for work in lb.work:
        assert work.calls == (Call(app.index, algorithm="least_connections"),)


def test_a_service_resolves_every_call_form_and_class_overrides(shop: Model) -> None:
    app = shop.tier("app")
    cache, db, events = (shop.tier_index[n] for n in ("cache", "db", "events"))
    assert (app.instances, app.concurrency, app.blocking) == (8, 4, True)
    assert (app.max_queue, app.timeout, app.balancing) == (100, 2.0, "round_robin")
    browse = app.work[shop.class_index["browse"]]
    assert browse.service_time.is_constant and browse.service_time.mean == 0.025
    assert browse.calls == (
        Call(cache),
        Call(db, probability=0.2, repeat=3),
        OneOf(((cache, 0.75), (db, 0.25))),
        Parallel((Call(cache), Call(db))),
        Call(events),
    )
    checkout = app.work[shop.class_index["checkout"]]
    assert checkout.service_time.kind == "exponential" and checkout.service_time.mean == 0.06
    assert checkout.calls == (Call(db),)


def test_a_cache_miss_is_the_first_call(shop: Model) -> None:
    cache = shop.tier("cache")
    assert (
        cache.kind == "cache" and cache.hit_ratio == 0.8 and cache.on_miss == shop.tier_index["db"]
    )
    assert cache.work[0].service_time.mean == pytest.approx(0.001)
    (miss,) = cache.work[0].calls
    assert isinstance(miss, Call) and miss.tier == shop.tier_index["db"]
    assert miss.probability == pytest.approx(0.2)


def test_a_database_has_replicas_a_pool_and_per_class_read_ratios(shop: Model) -> None:
    db = shop.tier("db")
    assert db.kind == "database" and db.blocking is False
    assert (db.instances, db.replicas, db.servers) == (1, 2, 3)
    assert db.pool == Pool(size=20, max_waiting=100, timeout=0.5)
    assert [w.read_ratio for w in db.work] == [0.9, 0.25, 0.9]


def test_a_queue_is_one_fifo_served_by_its_consumers(shop: Model) -> None:
    events = shop.tier("events")
    assert events.kind == "queue" and events.is_async
    assert (events.instances, events.concurrency) == (1, 6)
    assert events.max_queue == 1000
    assert events.publish_time is not None and events.publish_time.mean == 0.001


def test_traffic_classes_open_and_closed(shop: Model) -> None:
    browse, checkout, reports = shop.classes
    assert browse.entry == shop.tier_index["edge"] and browse.rate == 800.0
    assert checkout.entry == shop.tier_index["lb"] and not checkout.is_closed
    assert reports.is_closed and reports.users == 40 and reports.rate is None
    assert reports.think_time is not None and reports.think_time.kind == "exponential"
    assert reports.think_time.mean == 2.0


def test_each_slo_statistic_becomes_one_objective_with_its_line(shop: Model) -> None:
    assert [(s.text, s.statistic, s.limit, s.line) for s in shop.slos] == [
        ("browse p99 <= 300ms", "p99", 0.3, 48),
        ("checkout p95 <= 500ms", "p95", 0.5, 49),
        ("checkout error_rate <= 0.1%", "error_rate", 0.001, 49),
        ("db utilization <= 70%", "utilization", 0.7, 50),
    ]
    assert shop.slos[0].class_index == 0 and shop.slos[0].tier_index is None
    assert shop.slos[3].tier_index == shop.tier_index["db"] and shop.slos[3].class_index is None


def test_a_profile_keeps_its_points_and_steps(tmp_path: Path) -> None:
    model = model_of(
        tmp_path,
        """
        name: ramp
        simulation: {duration: 10min, warmup: 0s}
        traffic:
          b:
            entry: app
            profile: [{at: 0s, rate: 100/s}, {at: 5min, rate: 300/s}, {at: 5min, rate: 50/s}]
        tiers: {app: {service_time: 1ms}}
        """,
    )
    (ramp,) = model.classes
    assert model.simulation.warmup == 0.0
    assert ramp.rate == 100.0
    assert ramp.rate_at(150.0) == pytest.approx(200.0)
    assert ramp.rate_at(400.0) == 50.0


def test_distributions_are_built_with_their_moments(tmp_path: Path) -> None:
    model = model_of(
        tmp_path,
        """
        name: dists
        traffic: {b: {entry: a, rate: 1}}
        tiers:
          a: {service_time: {dist: lognormal, p50: 12ms, p99: 120ms}}
          b: {service_time: {dist: lognormal, mean: 20ms, cv: 1.5}}
          c: {service_time: {dist: gamma, mean: 20ms, cv: 0.5}}
          d: {service_time: {dist: uniform, min: 5ms, max: 15ms}}
          e: {service_time: {dist: empirical, samples: [1ms, 2ms, 3ms]}}
          f: {service_time: {dist: constant, value: 4ms}}
        """,
    )
    a, b, c, d, e, f = (t.work[0].service_time for t in model.tiers)
    assert math.exp(a.params[0]) == pytest.approx(0.012)
    assert math.exp(a.params[0] + 2.3263478740408408 * a.params[1]) == pytest.approx(0.12)
    assert (b.mean, b.cv) == (pytest.approx(0.02), pytest.approx(1.5))
    assert (c.mean, c.cv) == (pytest.approx(0.02), pytest.approx(0.5))
    assert d.mean == pytest.approx(0.01)
    assert e.kind == "empirical" and e.mean == pytest.approx(0.002)
    assert f.is_constant and f.mean == 0.004


def test_blocking_defaults_to_true_only_for_services(tmp_path: Path) -> None:
    model = model_of(
        tmp_path,
        """
        name: blocking
        traffic: {b: {entry: a, rate: 1}}
        tiers:
          a: {service_time: 1ms, calls: [b]}
          b: {type: database, service_time: 1ms, blocking: true}
          c: {service_time: 1ms, blocking: false}
        """,
    )
    assert [t.blocking for t in model.tiers] == [True, True, False]


def test_an_lru_cache_gets_its_hit_ratio_from_che(tmp_path: Path) -> None:
    model = model_of(
        tmp_path,
        """
        name: lru
        traffic: {b: {entry: cache, rate: 1}}
        tiers:
          cache:
            type: cache
            hit_ratio: {model: lru, capacity: 100, keys: 10000, zipf: 0.8}
            on_miss: origin
          origin: {service_time: 10ms}
        """,
    )
    cache = model.tier("cache")
    assert cache.hit_ratio == pytest.approx(0.156625, abs=1e-4)
    assert cache.work[0].calls[0] == Call(1, probability=pytest.approx(1 - 0.156625, abs=1e-4))


def test_build_model_raises_the_semantic_problems(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        model_of(
            tmp_path,
            """
            name: loop
            traffic: {b: {entry: app, rate: 1}}
            tiers:
              app: {service_time: 1ms, calls: [db]}
              db: {type: database, service_time: 1ms, calls: [app]}
            """,
        )
    (problem,) = caught.value.problems
    assert "call cycle app -> db -> app" in problem.message and problem.line == 4


# ---- Che's approximation against ORACLES.md section 7 -------------------------------------------
@pytest.mark.parametrize(
    ("zipf", "capacity", "expected"),
    [
        (0.8, 100, 0.156625),
        (0.8, 1000, 0.43666),
        (1.0, 100, 0.390525),
        (1.0, 1000, 0.675602),
        (1.2, 100, 0.656341),
        (1.2, 1000, 0.861435),
    ],
)
def test_che_matches_the_oracle_table(zipf: float, capacity: int, expected: float) -> None:
    assert che_hit_ratio(capacity, 10_000, zipf) == pytest.approx(expected, abs=1e-4)


def test_a_cache_as_large_as_the_catalogue_always_hits() -> None:
    assert che_hit_ratio(10_000, 10_000, 0.9) == 1.0
    assert che_hit_ratio(20_000, 10_000, 0.9) == 1.0


def test_uniform_popularity_hits_in_proportion_to_capacity() -> None:
    assert che_hit_ratio(250, 1000, 0.0) == pytest.approx(0.25, rel=1e-9)


def test_the_integral_tail_agrees_with_the_exact_sum() -> None:
    for zipf in (0.6, 0.9, 1.1):
        exact = che_hit_ratio(1000, 200_000, zipf)
        split = che_hit_ratio(1000, 200_000, zipf, exact_keys=2000)
        assert split == pytest.approx(exact, rel=1e-6)


def test_a_huge_catalogue_never_materialises_per_key_arrays() -> None:
    hit = che_hit_ratio(1e6, 1e12, 0.9)
    assert 0.0 < hit < 1.0
    assert che_hit_ratio(1e6, 1e12, 0.9) < che_hit_ratio(1e7, 1e12, 0.9)


def _che_with_fresh_arrays(capacity: float, keys: float, zipf: float, exact_keys: int) -> float:
    """Che's hit ratio as `che_hit_ratio` computed it before its scratch arrays: a new array
    for every operation of every Newton step."""
    from capsim.model.build import _tail_nodes

    head = np.arange(1, min(keys, exact_keys) + 1, dtype=float) ** -zipf
    x, w = _tail_nodes(exact_keys + 0.5, keys + 0.5)
    tail, tail_w = x**-zipf, w
    total = head.sum() + float(np.dot(tail, tail_w))
    p_head, p_tail = head / total, tail / total
    t = float(capacity)
    for _ in range(1000):
        e_head, e_tail = np.exp(-p_head * t), np.exp(-p_tail * t)
        value = float(np.sum(1.0 - e_head) + np.dot(1.0 - e_tail, tail_w)) - capacity
        slope = float(np.dot(p_head, e_head) + np.dot(p_tail * e_tail, tail_w))
        step = -value / slope
        t += step
        if abs(step) <= 1e-13 * t:
            break
    return float(
        np.dot(p_head, 1.0 - np.exp(-p_head * t))
        + np.dot(p_tail * (1.0 - np.exp(-p_tail * t)), tail_w)
    )


@pytest.mark.parametrize(
    ("capacity", "keys", "zipf"), [(200_000, 2_000_000, 0.9), (500, 60_000, 0.6), (30, 9_000, 1.3)]
)
def test_ches_scratch_arrays_change_no_bit_of_its_answer(
    capacity: float, keys: float, zipf: float
) -> None:
    exact_keys = 1_000_000 if keys > 1_000_000 else 4_000  # a tail in every case
    found = che_hit_ratio.__wrapped__(capacity, keys, zipf, exact_keys)  # not the remembered one
    assert found == _che_with_fresh_arrays(capacity, keys, zipf, exact_keys)


def test_che_hit_ratio_grows_with_capacity_and_skew() -> None:
    capacities = [10, 100, 1000, 5000]
    hits = [che_hit_ratio(c, 10_000, 0.8) for c in capacities]
    assert np.all(np.diff(hits) > 0)
    assert che_hit_ratio(100, 10_000, 1.2) > che_hit_ratio(100, 10_000, 0.8)


def test_the_model_layer_never_imports_yaml() -> None:
    source = Path(build_model.__code__.co_filename).read_text(encoding="utf-8")
    assert "import yaml" not in source
