"""Stories of `size` on a database with read replicas: it sizes the group that binds.

A database's objectives and headroom are judged on its busiest group (its primaries or its
replicas), so a search that grows the primaries while the replicas are full moves nothing.
Without a `sizing` key, `size` sizes the group that binds at the sizing load, and says so.
"""

from __future__ import annotations

from pathlib import Path

import capsim
from capsim.analysis.sizing import size_tiers
from capsim.analysis.sizing_groups import database_groups_to_size
from capsim.model.types import Model

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

#: An order service whose database takes mostly writes: 80% of 150 queries/s go to the one
#: primary (2 cores, 10 ms each: 60% held), the reads spread over two idle replicas.
WRITE_HEAVY = """\
name: write-heavy
seed: 5
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  orders: {entry: api, rate: 150/s}
tiers:
  api:
    concurrency: 64
    service_time: {dist: exponential, mean: 1ms}
    calls: [db]
    sizing: fixed
  db:
    type: database
    instances: 1
    replicas: 2
    concurrency: 2
    read_ratio: 0.2
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {tier: db, utilization: 50%}
"""


def model_of(tmp_path: Path, text: str) -> Model:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return capsim.build_model(capsim.load_scenario(path))


def test_web_shop_at_twice_its_load_sizes_the_read_replicas_that_bind() -> None:
    scenario = capsim.load_scenario(SCENARIOS / "web-shop.yaml", ["simulation.duration=20s"])
    answer = size_tiers(
        capsim.build_model(scenario), capsim_version=capsim.__version__, load=2.0, replications=2
    )
    postgres = answer["tiers"]["postgres"]
    assert answer["verified"]
    assert postgres["sized"] == "replicas"
    assert (postgres["was"], postgres["replicas"], postgres["instances"]) == (2, 3, 1)
    assert answer["tiers"]["app"]["instances"] == 4
    assert answer["overrides"]["tiers.postgres.replicas"] == 3
    assert any("postgres: sized by its replicas" in note for note in answer["notes"])


def test_a_database_whose_writes_bind_still_sizes_its_primaries(tmp_path: Path) -> None:
    answer = size_tiers(model_of(tmp_path, WRITE_HEAVY), capsim_version=capsim.__version__)
    db = answer["tiers"]["db"]
    assert answer["verified"]
    assert db["sized"] == "instances"
    assert (db["instances"], db["replicas"]) == (2, 2)  # 120 writes/s of 10 ms on 2 x 2 cores
    assert any("db: sized by its primaries" in note for note in answer["notes"])


def test_a_sizing_key_says_which_group_whatever_binds(tmp_path: Path) -> None:
    explicit = WRITE_HEAVY.replace("read_ratio: 0.2", "read_ratio: 0.2\n    sizing: {of: replicas}")
    assert database_groups_to_size(model_of(tmp_path, explicit), capsim.__version__) == {}
    without_replicas = WRITE_HEAVY.replace("replicas: 2", "replicas: 0")
    assert database_groups_to_size(model_of(tmp_path, without_replicas), capsim.__version__) == {}


#: A blocking app in front of a database whose one replica is 114% held at `--load 3x`: the
#: pool (bounded wait, timeout) and the app's bounded queue let `solve` find a steady state
#: there, in which the app's threads are held through the replica's queueing.
BLOCKING_OVER_FULL_REPLICAS = """\
name: blocking-over-full-replicas
seed: 7
simulation: {duration: 10s, warmup: 1s, replications: 1}
traffic:
  reads: {entry: app, rate: 100/s}
tiers:
  app:
    concurrency: 4
    blocking: true
    max_queue: 200
    timeout: 2s
    service_time: {dist: exponential, mean: 5ms}
    calls: [db]
  db:
    type: database
    instances: 1
    replicas: 1
    concurrency: 2
    read_ratio: 0.95
    service_time: {dist: exponential, mean: 8ms}
    pool: {size: 8, max_waiting: 50, timeout: 500ms}
slos:
  - {tier: app, utilization: 75%}
"""


def test_a_saturated_replica_group_does_not_inflate_its_blocking_callers_start(
    tmp_path: Path,
) -> None:
    """The app's lower bound counted the full replicas' queueing in its threads' hold: it
    started at 17 instances where 2 meet every objective, and the search walked down one
    instance at a time (web-shop at --load 3x: 44 where 5 do, 121 measurements, then the
    100M-request limit at full length). Read at a light load, the start is the answer."""
    answer = size_tiers(
        model_of(tmp_path, BLOCKING_OVER_FULL_REPLICAS),
        capsim_version=capsim.__version__,
        load=3.0,
        replications=1,
    )
    assert answer["verified"]
    assert answer["tiers"]["db"]["sized"] == "replicas"
    assert (answer["tiers"]["app"]["instances"], answer["tiers"]["db"]["replicas"]) == (2, 2)
    assert answer["search"]["started_at"]["app"] == 2
    assert answer["search"]["evaluations"] <= 6


def test_when_both_groups_bind_size_sizes_both_in_one_search(tmp_path: Path) -> None:
    """Half the queries write: at twice the load the one primary and the one replica are each
    75% held against a 50% objective. One quantity was sized per tier (the primaries, on the
    tie), and more primaries take no read off the replica: size stopped with exit 1 and said
    what to --set. Both groups are now sized in the one search: 150 writes/s and 150 reads/s
    of 10 ms need 2 primaries and 2 replicas of 2 cores (37.5% each)."""
    both_bind = WRITE_HEAVY.replace("read_ratio: 0.2", "read_ratio: 0.5").replace(
        "replicas: 2", "replicas: 1"
    )
    answer = size_tiers(model_of(tmp_path, both_bind), capsim_version=capsim.__version__, load=2.0)
    db = answer["tiers"]["db"]
    assert answer["verified"]
    assert db["sized"] == "instances" and db["also_sized"]["sized"] == "replicas"
    assert (db["instances"], db["replicas"]) == (2, 2)
    assert (db["was"], db["also_sized"]["was"]) == (1, 1)
    assert answer["overrides"]["tiers.db.instances"] == 2
    assert answer["overrides"]["tiers.db.replicas"] == 2
    # One fewer of either group fails the objective: the answer is minimal in both.
    assert db["one_fewer"]["meets_slos"] is False
    assert db["also_sized"]["one_fewer"]["meets_slos"] is False
    assert any("db: both of its groups bind" in note for note in answer["notes"])


def test_once_the_other_group_has_what_it_needs_the_binding_one_is_sized(
    tmp_path: Path,
) -> None:
    both_bind = WRITE_HEAVY.replace("read_ratio: 0.2", "read_ratio: 0.5").replace(
        "replicas: 2", "replicas: 2  # as the stop above says"
    )
    answer = size_tiers(model_of(tmp_path, both_bind), capsim_version=capsim.__version__, load=2.0)
    db = answer["tiers"]["db"]
    assert answer["verified"]
    assert db["sized"] == "instances"
    assert (db["instances"], db["replicas"]) == (2, 2)
