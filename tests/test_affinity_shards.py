"""Affinity and shards (docs/regions.md#affinity-and-shards): a tier whose requests are tied to
an instance by their client, or to a shard by their key, gets each part's popularity as its
load, so the part with the most popular clients or keys saturates first."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

import capsim
from capsim.engine.vectorised import can_vectorise
from capsim.errors import ScenarioError
from capsim.model.partitions import hashed_shares, session_shares, zipf_popularity
from capsim.scenario import load_scenario

SHARDED = """\
version: 1
name: shards
seed: 5
simulation: {duration: 20s, warmup: 2s}
traffic:
  api: {entry: app, rate: 400/s}
tiers:
  app:
    concurrency: 100
    blocking: false
    service_time: 1ms
    calls: [db]
  db:
    type: database
    concurrency: 1
    service_time: 5ms
    shards: {count: 4, keys: 100000, zipf: 1.1}
"""


def build(text: str) -> capsim.Model:
    path = Path(tempfile.mkdtemp()) / "scenario.yaml"
    path.write_text(text)
    return capsim.build_model(load_scenario(path))


def multiplicative_shard(key: int, parts: int, salt: int) -> int:
    """The documented rule, written out for one key: floor(h x parts / 2^32)."""
    hashed = ((key + salt) * 2654435761) % 2**32
    return hashed * parts // 2**32


def test_a_key_goes_to_the_shard_its_hash_names():
    shares = hashed_shares(1000, 0.0, 4, salt=17)  # zipf 0: every key weighs 1/1000
    counts = np.zeros(4)
    for key in range(1, 1001):
        counts[multiplicative_shard(key, 4, 17)] += 1
    assert shares == pytest.approx(counts / 1000)


def test_uniform_clients_spread_evenly_and_zipf_clients_do_not():
    even = hashed_shares(10_000, 0.0, 4, salt=3)
    assert even.max() / even.min() < 1.05
    skewed = hashed_shares(10_000, 1.0, 4, salt=3)
    hottest = zipf_popularity(10_000, 1.0)[0]  # 1 / H(10000) = 10.2% from one client alone
    assert skewed.max() >= 0.25 + hottest * 0.5
    assert skewed.sum() == pytest.approx(1.0)


def test_sticky_sessions_are_dealt_in_turn_in_a_random_order_of_arrival():
    shares = session_shares(8, 0.0, 4, salt=1)
    assert shares == pytest.approx([0.25] * 4)  # 8 equal sessions, two per node
    assert session_shares(1000, 1.2, 4, salt=1).sum() == pytest.approx(1.0)


def test_a_sharded_database_becomes_a_router_and_one_tier_per_shard():
    model = build(SHARDED)
    names = [t.name for t in model.tiers]
    assert names == ["app", "db", "db.shard-0", "db.shard-1", "db.shard-2", "db.shard-3"]
    (route,) = model.tier("db").work[0].calls
    shares = [p for _, p in route.options]
    assert shares == pytest.approx(list(hashed_shares(100_000, 1.1, 4, salt=_salt("db"))))
    assert model.tier("db").work[0].service_time.mean == 0.0


def _salt(name: str) -> int:
    import zlib

    return zlib.crc32(name.encode())


def test_the_hot_shard_saturates_first():
    # 700/s at 5 ms per request on one worker per shard: a shard with share s is 3.5 s busy.
    # The shard holding the most popular keys has over 30% of the traffic (> 1: it saturates);
    # the others have at most a quarter (at most 0.875 busy: stable).
    model = build(SHARDED.replace("rate: 400/s", "rate: 700/s"))
    shares = np.asarray([p for _, p in model.tier("db").work[0].calls[0].options])
    hot = int(np.argmax(shares))
    key_one = multiplicative_shard(1, 4, _salt("db"))
    assert hot == key_one  # the most popular key makes its shard the hot one
    assert shares[hot] > 0.3 and np.delete(shares, hot).max() < 0.25
    report = capsim.simulate(model)
    tiers = report.data["tiers"]
    assert tiers[f"db.shard-{hot}"]["stable"] is False
    for i in set(range(4)) - {hot}:
        assert tiers[f"db.shard-{i}"]["stable"] is True
        assert tiers[f"db.shard-{i}"]["utilization"] == pytest.approx(3.5 * shares[i], rel=0.1)


def test_both_engine_paths_run_a_sharded_database():
    model = build(SHARDED.replace("rate: 400/s", "rate: 100/s"))
    assert can_vectorise(model)[0]
    events = capsim.simulate(model, engine="events").data["tiers"]
    vectorised = capsim.simulate(model, engine="vectorised").data["tiers"]
    for i in range(4):
        name = f"db.shard-{i}"
        assert vectorised[name]["utilization"] == pytest.approx(
            events[name]["utilization"], rel=0.1, abs=0.01
        )


AFFINITY = """\
version: 1
name: affinity
seed: 5
simulation: {duration: 20s, warmup: 2s, timeseries: 1s}
traffic:
  api: {entry: app, rate: 200/s}
tiers:
  app:
    instances: 4
    concurrency: 100
    blocking: false
    service_time: 2ms
    affinity: {by: ip_hash, clients: 500, zipf: 1.0}
"""


def test_ip_hash_gives_each_instance_its_clients_load():
    model = build(AFFINITY)
    assert [t.name for t in model.tiers] == ["app", *(f"app.node-{i}" for i in range(4))]
    assert all(model.tier(f"app.node-{i}").instances == 1 for i in range(4))
    shares = [p for _, p in model.tier("app").work[0].calls[0].options]
    report = capsim.simulate(model)
    for i, share in enumerate(shares):
        throughput = report.data["tiers"][f"app.node-{i}"]["throughput"]
        assert throughput == pytest.approx(200 * share, rel=0.1)


def test_a_lost_instance_fails_the_clients_hashed_to_it():
    text = AFFINITY + "faults:\n  - {at: 12s, tier: app, lose: 1}\n"
    model = build(text)
    shares = [p for _, p in model.tier("app").work[0].calls[0].options]
    (fault,) = model.faults
    assert fault.tier == model.tier_index["app.node-3"]
    report = capsim.simulate(model)
    errors = report.data["timeseries"]["classes"]["api"]["error_rate"]
    assert max(errors[:12]) == 0.0
    assert np.mean(errors[13:]) == pytest.approx(shares[3], abs=0.05)


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        build(text)
    return [p.message for p in caught.value.problems]


def test_affinity_needs_instances_and_no_other_balancing():
    text = AFFINITY.replace("    instances: 4\n", "    balancing: random\n")
    found = problems(text)
    assert any("give it instances: 2 or more" in p for p in found)
    assert any(
        "affinity decides which instance serves each client; remove balancing" in p for p in found
    )


def test_an_unknown_affinity_gets_a_suggestion():
    (message,) = problems(AFFINITY.replace("by: ip_hash", "by: ip_hsh"))
    assert "unknown affinity 'ip_hsh'; did you mean 'ip_hash'?" in message


def test_too_many_shard_keys_are_refused():
    (message,) = problems(SHARDED.replace("keys: 100000", "keys: 20000000"))
    assert "keys must be a whole number of keys from 1 to 10,000,000" in message


CACHE_CLUSTER = """\
version: 1
name: cache-cluster
seed: 5
simulation: {duration: 20s, warmup: 2s}
traffic:
  api: {entry: app, rate: 400/s}
tiers:
  app:
    concurrency: 100
    blocking: false
    service_time: 1ms
    calls: [cache]
  cache:
    type: cache
    concurrency: 50
    hit_ratio: 80%
    on_miss: origin
    shards: {count: 4, keys: 100000, zipf: 0}
  origin:
    concurrency: 100
    blocking: false
    service_time: 10ms
"""


def test_a_cache_cluster_losing_a_node_misses_its_keys_at_the_origin():
    # Four nodes with an even share of the keys (zipf 0: about 1/4 each), 80% hits. Losing the
    # last node from the start sends its keys to the origin: the hit ratio drops from 80% by
    # that node's share of the hits, 80% x s, about 80% / 4, and the origin's arrivals rise
    # from 20% to 20% + 80% x s of the requests.
    healthy = build(CACHE_CLUSTER)
    shares = [p for _, p in healthy.tier("cache").work[0].calls[0].options]
    assert shares == pytest.approx([0.25] * 4, abs=0.01)
    lost = build(CACHE_CLUSTER + "faults:\n  - {at: 0s, tier: cache, lose: 1}\n")
    assert [lost.tiers[f.tier].name for f in lost.faults] == ["cache.shard-3"]
    before = capsim.simulate(healthy).data["tiers"]["origin"]["throughput"]
    after = capsim.simulate(lost).data
    assert before == pytest.approx(400 * 0.2, rel=0.1)
    origin = after["tiers"]["origin"]["throughput"]
    assert origin == pytest.approx(400 * (0.2 + 0.8 * shares[3]), rel=0.1)
    hit_ratio = 1 - origin / 400
    assert hit_ratio == pytest.approx(0.8 * (1 - shares[3]), abs=0.03)  # ~0.6: down by ~1/N
    assert after["classes"]["api"]["errors"] == 0  # a lost node's keys miss, they do not fail


def test_a_cache_cluster_loses_whole_nodes():
    (message,) = problems(CACHE_CLUSTER + "faults:\n  - {at: 0s, tier: cache, lose: 5}\n")
    assert "cache is a cluster of 4 nodes: a fault loses a number of them, from 1 to 4" in message
