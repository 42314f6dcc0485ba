"""Under a constant load an overload never passes, whatever kind of tier it is.

The "not drained" rule applies only where load or capacity change during the run; under a
constant load a growing backlog is left to the stability rules (docs/results.md#stable-or-
overloaded-stable-growth_rate). These stories check that claim for every kind of tier that can
hold a backlog, on both engine paths where the tier can run on both, at 1% beyond capacity:
a plain service, a queue's consumers, a caller whose workers block on its calls, a database's
connection pool, and a database whose read replicas are full while its primary is idle.

Two of them used to pass. A pool smaller than the database's workers was judged by its workers
(12% busy), so neither the at-capacity rule nor the queueing formulas' check applied: a pool
offered 1% more than its connections carry passed in 2 seeds of 3. A database whose replicas
were 99% busy averaged 52% over all its workers, and passed likewise. The pool is now judged by
its connections (`pool.utilization`, the share lent), the database by its busiest group.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.analysis.summary import summarise
from capsim.engine.runner import run_replication
from capsim.engine.vectorised import can_vectorise
from capsim.model.types import Model

HEAD = "seed: {seed}\nsimulation: {{duration: 60s, warmup: 5s, replications: 3}}\n"

#: Each kind at a load 1% beyond its capacity (the `rate`), every service exponential.
KINDS = {
    # one worker of 10 ms: 100/s
    "service": """\
traffic: {web: {entry: app, rate: RATE/s}}
tiers: {app: {service_time: {dist: exponential, mean: 10ms}}}
""",
    # two consumers of 20 ms: 100 messages/s
    "queue": """\
traffic: {web: {entry: api, rate: RATE/s}}
tiers:
  api: {service_time: 1ms, concurrency: 50, blocking: false, calls: [jobs]}
  jobs: {type: queue, consumers: 2, service_time: {dist: exponential, mean: 20ms}}
""",
    # four workers held 1 ms + their 20 ms call: about 190/s
    "blocking": """\
traffic: {web: {entry: app, rate: RATE/s}}
tiers:
  app: {concurrency: 4, service_time: 1ms, calls: [backend]}
  backend: {concurrency: 100, service_time: {dist: exponential, mean: 20ms}}
""",
    # a pool of 2 connections in front of 16 workers, queries of 10 ms: 200/s
    "pool": """\
traffic: {web: {entry: app, rate: RATE/s}}
tiers:
  app: {service_time: 1ms, concurrency: 500, blocking: false, calls: [db]}
  db: {type: database, concurrency: 16, service_time: {dist: exponential, mean: 10ms},
       pool: {size: 2}}
""",
    # one replica of 2 workers takes 95% of the calls: 200 reads/s, about 210 calls/s
    "replicas": """\
traffic: {web: {entry: app, rate: RATE/s}}
tiers:
  app: {service_time: 1ms, concurrency: 50, blocking: false, calls: [db]}
  db: {type: database, instances: 1, replicas: 1, concurrency: 2, read_ratio: 0.95,
       service_time: {dist: exponential, mean: 10ms}}
""",
}
#: Capacity of each kind's bottleneck, in its class's requests per second.
CAPACITY = {
    "service": 100,
    "queue": 100,
    "blocking": 4 / 0.021,
    "pool": 200,
    "replicas": 200 / 0.95,
}
BOTTLENECK = {"service": "app", "queue": "jobs", "blocking": "app", "pool": "db", "replicas": "db"}


def scenario(kind: str, load: float, seed: int, folder: Path) -> Model:
    rate = f"{CAPACITY[kind] * load:.6g}"
    path = folder / f"{kind}-{load}-{seed}.yaml"
    path.write_text(f"name: {kind}\n" + HEAD.format(seed=seed) + KINDS[kind].replace("RATE", rate))
    return capsim.build_model(capsim.load_scenario(path))


def judged(model: Model, path: str) -> dict:
    runs = [run_replication(model, r, path) for r in range(model.simulation.replications)]
    return summarise(model, runs, capsim_version=capsim.__version__).data


def paths(model: Model) -> list[str]:
    return ["events", "vectorised"] if can_vectorise(model)[0] else ["events"]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_percent_beyond_capacity_under_constant_load_fails(
    kind: str, seed: int, tmp_path: Path
) -> None:
    model = scenario(kind, 1.01, seed, tmp_path)
    for path in paths(model):
        data = judged(model, path)
        tier = BOTTLENECK[kind]
        assert data["passed"] is False, (kind, seed, path)
        assert data["tiers"][tier]["stable"] is False, (kind, seed, path)
        assert tier in [failure["tier"] for failure in data["overloaded"]]


@pytest.mark.parametrize("kind", ["pool", "replicas"])
def test_the_same_tiers_at_95_percent_still_pass(kind: str, tmp_path: Path) -> None:
    # No false alarm from the new rules: 95% of the pool's connections lent, the replica 95%
    # busy, is a busy steady state.
    for seed in (1, 2, 3):
        model = scenario(kind, 0.95, seed, tmp_path)
        for path in paths(model):
            data = judged(model, path)
            assert data["passed"] is True, (kind, seed, path)


def test_an_overloaded_pool_names_its_connections_and_its_capacity(tmp_path: Path) -> None:
    data = judged(scenario("pool", 1.01, 2, tmp_path), "events")
    db = data["tiers"]["db"]
    assert db["utilization"] == pytest.approx(0.125, abs=0.01)  # the workers: 2 of 16
    assert db["pool"]["utilization"] > 0.97  # the connections: all lent
    [failure] = data["overloaded"]
    assert failure["capacity"] == pytest.approx(200, rel=0.02)
    [warning] = [w for w in data["warnings"] if w.startswith("tier 'db' is OVERLOADED")]
    assert "times the work its pool's connections can carry" in warning


def test_an_overloaded_replica_group_is_named(tmp_path: Path) -> None:
    data = judged(scenario("replicas", 1.01, 2, tmp_path), "events")
    [failure] = data["overloaded"]
    assert failure["group"] == "replicas"
    assert failure["capacity"] == pytest.approx(200, rel=0.03)
    assert data["tiers"]["db"]["groups"]["replicas"]["stable"] is False
    assert any(
        w.startswith("tier 'db' (its replicas group) is OVERLOADED") for w in data["warnings"]
    )
