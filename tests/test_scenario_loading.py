"""Valid scenarios load into a Scenario that keeps every value, in seconds and per second."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from capsim.errors import ScenarioError
from capsim.scenario import load_scenario, validate_file
from capsim.scenario.schema import (
    CacheTier,
    CdnTier,
    ConstantDist,
    DatabaseTier,
    EmpiricalDist,
    ExponentialDist,
    GammaDist,
    LoadBalancerTier,
    LognormalDist,
    LruModel,
    OneOfCall,
    ParallelCall,
    QueueTier,
    ServiceTier,
    TierCall,
    UniformDist,
)

MINIMAL = """
name: tiny
traffic:
  browse: {entry: app, rate: 100/s}
tiers:
  app: {service_time: 20ms}
"""


def write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_minimal_scenario_gets_the_documented_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, MINIMAL))
    assert scenario.version == 1 and scenario.seed == 0 and scenario.description == ""
    assert scenario.simulation.duration == 60.0
    assert scenario.simulation.warmup is None and scenario.simulation.warmup_or_default == 6.0
    assert scenario.simulation.replications == 1
    app = scenario.tiers["app"]
    assert isinstance(app, ServiceTier)
    assert (app.instances, app.concurrency, app.balancing) == (1, 1, "round_robin")
    assert app.service_time == 0.02 and app.calls == [] and app.max_queue is None
    assert scenario.traffic["browse"].rate == 100.0
    assert scenario.traffic["browse"].arrivals == "poisson"
    assert scenario.slos == []
    assert validate_file(tmp_path / "s.yaml") == []


def test_the_scenario_remembers_where_each_value_is(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, MINIMAL))
    assert scenario.source == str(tmp_path / "s.yaml")
    assert scenario.positions[("tiers", "app", "service_time")] == (6, 23)
    problem = scenario.problem("too slow", ("tiers", "app", "service_time"))
    assert problem.format() == f"{tmp_path / 's.yaml'}:6:23: tiers.app.service_time: too slow"
    # A path with no node of its own is located at its nearest ancestor.
    assert scenario.problem("x", ("tiers", "app", "calls")).line == 6


def test_every_distribution_form_loads(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "samples.csv").write_text("latency\n3ms, 4ms\n0.009 40ms\n# done\n")
    scenario = load_scenario(
        write(
            tmp_path,
            """
            name: dists
            traffic: {b: {entry: a, rate: 1}}
            tiers:
              a: {service_time: 20ms}
              b: {service_time: {dist: constant, value: 20ms}}
              c: {service_time: {dist: exponential, mean: 20ms}}
              d: {service_time: {dist: lognormal, mean: 20ms, cv: 1.5}}
              e: {service_time: {dist: lognormal, p50: 12ms, p99: 120ms}}
              f: {service_time: {dist: gamma, mean: 20ms, cv: 0.5}}
              g: {service_time: {dist: uniform, min: 5ms, max: 15ms}}
              h: {service_time: {dist: empirical, samples: [3ms, 4ms, 9ms, 40ms]}}
              i: {service_time: {dist: empirical, file: data/samples.csv}}
              j: {service_time: 0.02}
            """,
        )
    )
    times = {name: tier.service_time for name, tier in scenario.tiers.items()}
    assert times["a"] == 0.02 and times["j"] == 0.02
    assert times["b"] == ConstantDist(dist="constant", value=0.02)
    assert isinstance(times["c"], ExponentialDist) and times["c"].mean == 0.02
    assert isinstance(times["d"], LognormalDist) and times["d"].cv == 1.5
    assert isinstance(times["e"], LognormalDist) and (times["e"].p50, times["e"].p99) == (
        0.012,
        0.12,
    )
    assert isinstance(times["f"], GammaDist)
    assert isinstance(times["g"], UniformDist) and (times["g"].min, times["g"].max) == (
        0.005,
        0.015,
    )
    assert isinstance(times["h"], EmpiricalDist)
    assert times["h"].values == pytest.approx((0.003, 0.004, 0.009, 0.04))
    assert isinstance(times["i"], EmpiricalDist)
    assert times["i"].values == pytest.approx((0.003, 0.004, 0.009, 0.04))


def test_every_tier_type_and_call_form_loads(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            """
            name: shop
            traffic:
              browse: {entry: edge, rate: 48k/min}
              reports: {entry: app, users: 40, think_time: {dist: exponential, mean: 2s}}
            tiers:
              edge:
                type: cdn
                hit_ratio: {model: lru, capacity: 100, keys: 10000, zipf: 0.8}
                origin_shield: {hit_ratio: 50%}
                on_miss: lb
              lb: {type: load_balancer, backends: app, algorithm: power_of_two}
              app:
                instances: 8
                concurrency: 4
                service_time: 25ms
                blocking: false
                max_queue: 0
                timeout: 2s
                calls:
                  - cache
                  - {tier: db, probability: 0.2, repeat: 3}
                  - one_of: {cache: 0.8, db: 0.2}
                  - parallel: [cache, {tier: db}, {one_of: {db: 0.5}}]
                  - events
                classes:
                  reports: {service_time: 60ms, calls: [db]}
              cache: {type: cache, hit_ratio: 0.9, on_miss: db}
              db:
                type: database
                service_time: 5ms
                replicas: 2
                read_ratio: 80%
                pool: {size: 20, max_waiting: 100, timeout: 500ms}
                classes: {reports: {read_ratio: 0.3}}
              events: {type: queue, service_time: 10ms, consumers: 3, max_depth: 1000}
            slos:
              - {class: browse, p99: 300ms}
              - {class: reports, p95: 500ms, error_rate: 0.1%}
              - {tier: db, utilization: 70%}
            """,
        )
    )
    edge, lb, app = scenario.tiers["edge"], scenario.tiers["lb"], scenario.tiers["app"]
    cache, db, events = scenario.tiers["cache"], scenario.tiers["db"], scenario.tiers["events"]
    assert isinstance(edge, CdnTier) and edge.service_time == 0.005
    assert edge.hit_ratio == LruModel(model="lru", capacity=100, keys=10000, zipf=0.8)
    assert edge.origin_shield is not None and edge.origin_shield.hit_ratio == 0.5
    assert isinstance(lb, LoadBalancerTier) and lb.service_time == 0.0
    assert lb.algorithm == "power_of_two"
    assert isinstance(cache, CacheTier) and cache.service_time == 0.001
    assert isinstance(app, ServiceTier) and app.blocking is False and app.max_queue == 0
    assert app.timeout == 2.0
    assert app.calls[0] == "cache"
    assert app.calls[1] == TierCall(tier="db", probability=0.2, repeat=3)
    assert app.calls[2] == OneOfCall(one_of={"cache": 0.8, "db": 0.2})
    assert isinstance(app.calls[3], ParallelCall) and len(app.calls[3].parallel) == 3
    assert app.classes["reports"].calls == ["db"]
    assert isinstance(db, DatabaseTier) and db.replicas == 2 and db.read_ratio == 0.8
    assert db.pool is not None and (db.pool.size, db.pool.max_waiting, db.pool.timeout) == (
        20,
        100,
        0.5,
    )
    assert db.classes["reports"].read_ratio == 0.3
    assert isinstance(events, QueueTier) and events.consumers == 3 and events.publish_time == 0.0
    assert scenario.traffic["browse"].rate == pytest.approx(800.0)
    assert scenario.traffic["reports"].users == 40
    assert scenario.slos[1].objectives() == [("p95", 0.5), ("error_rate", 0.001)]
    assert validate_file(tmp_path / "s.yaml") == []


def test_a_profile_may_step_and_replaces_a_rate(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            """
            name: ramp
            traffic:
              b:
                entry: app
                arrivals: constant
                profile:
                  - {at: 0s, rate: 800/s}
                  - {at: 5min, rate: 800/s}
                  - {at: 5min, rate: 2400/s}
            tiers: {app: {service_time: 1ms}}
            """,
        )
    )
    points = scenario.traffic["b"].profile
    assert points is not None and [(p.at, p.rate) for p in points] == [
        (0.0, 800.0),
        (300.0, 800.0),
        (300.0, 2400.0),
    ]


def test_yaml_1_1_surprises_are_decided_the_unsurprising_way(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            """
            name: yaml11
            seed: 010
            traffic:
              b: {entry: "no", rate: 1e3}
            tiers:
              no: {service_time: 1.0e-3, instances: 1_000}
              on: {service_time: 1ms, max_queue: 0x10}
            """,
        )
    )
    assert scenario.seed == 10  # a leading zero is still decimal, not octal
    assert scenario.traffic["b"].rate == 1000.0  # 1e3 is a number, as in YAML 1.2
    assert list(scenario.tiers) == ["no", "on"]  # keys stay text, never booleans
    assert scenario.tiers["no"].service_time == 0.001
    assert scenario.tiers["no"].instances == 1000
    assert scenario.tiers["on"].max_queue == 16


def test_merge_keys_share_settings_between_tiers(tmp_path: Path) -> None:
    scenario = load_scenario(
        write(
            tmp_path,
            """
            name: merge
            traffic: {b: {entry: a, rate: 1}}
            tiers:
              a: &base {service_time: 5ms, instances: 3}
              b:
                <<: *base
                instances: 5
            """,
        )
    )
    assert scenario.tiers["b"].instances == 5
    assert scenario.tiers["b"].service_time == 0.005


class TestOverrides:
    def test_an_override_replaces_a_value_parsed_as_yaml(self, tmp_path: Path) -> None:
        path = write(tmp_path, MINIMAL)
        scenario = load_scenario(
            path,
            [
                "tiers.app.instances=12",
                "traffic.browse.rate=900/s",
                "simulation.duration=10m",
                "tiers.app.service_time={dist: exponential, mean: 5ms}",
            ],
        )
        assert scenario.tiers["app"].instances == 12
        assert scenario.traffic["browse"].rate == 900.0
        assert scenario.simulation.duration == 600.0
        assert scenario.tiers["app"].service_time == ExponentialDist(dist="exponential", mean=0.005)

    def test_an_override_creates_missing_mappings_and_indexes_lists(self, tmp_path: Path) -> None:
        path = write(tmp_path, MINIMAL + "slos:\n  - {class: browse, p99: 1s}\n")
        scenario = load_scenario(path, ["tiers.db.service_time=3ms", "slos.0.p99=300ms"])
        assert scenario.tiers["db"].service_time == 0.003
        assert scenario.slos[0].p99 == 0.3

    def test_a_bad_value_from_an_override_names_the_override(self, tmp_path: Path) -> None:
        with pytest.raises(ScenarioError) as caught:
            load_scenario(write(tmp_path, MINIMAL), ["tiers.app.instances=0"])
        (problem,) = caught.value.problems
        assert problem.file == "--set tiers.app.instances=0"
        assert problem.path == "tiers.app.instances"
        assert "positive integer" in problem.message

    def test_an_override_that_cannot_apply_is_a_problem(self, tmp_path: Path) -> None:
        problems = validate_file(
            write(tmp_path, MINIMAL),
            ["tiers.app.service_time.mean.x=1", "no-equals-sign", "tiers.app=[unclosed"],
        )
        assert [p.file for p in problems] == [
            "--set tiers.app.service_time.mean.x=1",
            "--set no-equals-sign",
            "--set tiers.app=[unclosed",
        ]
        assert "is not a mapping" in problems[0].message
        assert "PATH=VALUE" in problems[1].message
        assert "not valid YAML" in problems[2].message


def test_the_example_scenarios_all_validate() -> None:
    root = Path(__file__).resolve().parent.parent / "scenarios"
    for path in sorted(root.glob("*.yaml")):
        assert validate_file(path) == [], path
