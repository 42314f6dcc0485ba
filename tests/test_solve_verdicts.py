"""`capsim solve` on loss and overload: what a class gets through, and what to add where.

Erlang B: 800 calls/s of 10 ms on 10 workers without a waiting room (a = 8 Erlang) turns away
B(10, 8) of them; the class completes 800 (1 - B) per second and errs at B.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.solve import UnstableModelError, solve
from capsim.cli.app import app

runner = CliRunner()


def erlang_b(servers: int, load: float) -> float:
    """B(c, a) by the recurrence B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def mm1k_blocking(rho: float, capacity: int) -> float:
    """P(K in the system) of M/M/1/K: (1 - rho) rho^K / (1 - rho^(K + 1))."""
    return (1 - rho) * rho**capacity / (1 - rho ** (capacity + 1))


def solved(tmp_path: Path, text: str, **options: Any) -> dict[str, Any]:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    model = capsim.build_model(capsim.load_scenario(path))
    return solve(model, capsim_version="test", **options)


LOSS = """\
name: call-centre
traffic:
  calls: {{entry: agents, rate: {rate}/s}}
tiers:
  agents:
    concurrency: {servers}
    service_time: {{dist: exponential, mean: 10ms}}
    max_queue: {room}
slos:
  - {{class: calls, error_rate: 1%}}
"""


def test_erlang_b_loss_reduces_the_class_throughput_and_is_its_error_rate(tmp_path: Path) -> None:
    result = solved(tmp_path, LOSS.format(rate=800, servers=10, room=0))
    blocking = erlang_b(10, 8.0)  # about 12.2%
    calls = result["classes"]["calls"]
    assert calls["error_rate"] == pytest.approx(blocking, rel=1e-12)
    assert calls["throughput"] == pytest.approx(800 * (1 - blocking), rel=1e-12)
    assert calls["offered_rate"] == 800
    assert calls["method"]["exact"] is True
    assert result["tiers"]["agents"]["throughput"] == pytest.approx(calls["throughput"])
    [slo] = result["slos"]
    assert slo["observed"] == calls["error_rate"] and slo["passed"] is False


def test_a_full_waiting_room_turns_away_what_mm1k_says(tmp_path: Path) -> None:
    # One worker and 9 places: K = 10 in the system at rho = 0.8.
    result = solved(tmp_path, LOSS.format(rate=80, servers=1, room=9))
    blocking = mm1k_blocking(0.8, 10)
    calls = result["classes"]["calls"]
    assert calls["error_rate"] == pytest.approx(blocking, rel=1e-9)
    assert calls["throughput"] == pytest.approx(80 * (1 - blocking), rel=1e-9)


def test_a_loss_behind_the_entry_is_counted_for_the_class_as_an_approximation(
    tmp_path: Path,
) -> None:
    text = """\
name: gateway-and-agents
traffic:
  calls: {entry: gateway, rate: 800/s}
tiers:
  gateway: {concurrency: 64, service_time: 1ms, blocking: false, calls: [agents]}
  agents: {concurrency: 10, service_time: {dist: exponential, mean: 10ms}, max_queue: 0}
"""
    result = solved(tmp_path, text)
    blocking = erlang_b(10, 8.0)
    assert result["classes"]["calls"]["error_rate"] == pytest.approx(blocking, rel=1e-12)
    assert result["classes"]["calls"]["throughput"] == pytest.approx(800 * (1 - blocking))


ONSALE = """\
name: ticket-onsale
traffic:
  buy: {entry: api, rate: 300/s}
tiers:
  api:
    instances: 2
    concurrency: 8
    service_time: {dist: exponential, mean: 5ms}
    calls: [orders, db]
  orders:
    type: queue
    consumers: 4
    blocking: true
    service_time: {dist: exponential, mean: 2ms}
    calls: [payment]
  payment: {concurrency: 64, service_time: {dist: exponential, mean: 14ms}}
  db:
    type: database
    concurrency: 8
    replicas: 1
    read_ratio: 0.9
    service_time: {dist: exponential, mean: 4ms}
slos:
  - {class: buy, p99: 200ms}
"""


def test_an_overloaded_queue_is_marked_in_the_full_table_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "onsale.yaml"
    path.write_text(ONSALE)
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert "OVERLOADED" in rows["orders"]
    assert all("stable" in rows[name] for name in ("api", "payment", "db"))
    # 4 consumers held 16 ms each: 250/s against 300/s offered.
    assert "OVERLOADED: orders (rho 1.2: 300.0/s offered, 250.0/s capacity)" in result.stdout
    assert "--set tiers.orders.consumers=..." in result.stdout
    assert "tiers.orders.instances" not in result.stdout


def test_an_overloaded_queue_in_json_keeps_the_publishers_figures(tmp_path: Path) -> None:
    path = tmp_path / "onsale.yaml"
    path.write_text(ONSALE)
    result = runner.invoke(app, ["solve", str(path), "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False
    [overloaded] = data["overloaded"]
    assert overloaded["tier"] == "orders" and overloaded["add"] == "consumers"
    assert overloaded["capacity"] == pytest.approx(250.0)
    assert data["tiers"]["orders"]["stable"] is False
    assert data["tiers"]["orders"]["throughput"] == pytest.approx(250.0)
    # Publishing is asynchronous: the buyers' own responses still have a steady state.
    assert data["classes"]["buy"]["latency"]["mean"] is not None
    assert data["classes"]["buy"]["throughput"] == pytest.approx(300.0)


SHOP_FLOOR = """\
name: shop-floor
traffic:
  q: {entry: front, rate: 2500/s}
tiers:
  front: {type: load_balancer, concurrency: 8, service_time: 1ms, backends: db}
  db:
    type: database
    concurrency: 8
    replicas: 1
    read_ratio: 0.5
    service_time: {dist: exponential, mean: 4ms}
"""


@pytest.mark.parametrize(
    ("setting", "tier", "key"),
    [
        ("tiers.db.read_ratio=0.0", "db", "instances"),  # writes overload the primary
        ("tiers.db.read_ratio=1.0", "db", "replicas"),  # reads overload the one replica
        ("tiers.front.service_time=4ms", "front", "instances"),
    ],
)
def test_every_suggestion_names_a_key_valid_for_its_tier_type(
    tmp_path: Path, setting: str, tier: str, key: str
) -> None:
    # 2,500 queries/s against 8 workers of 4 ms (2,000/s) on whichever group gets them all.
    path = tmp_path / "floor.yaml"
    path.write_text(SHOP_FLOOR)
    model = capsim.build_model(capsim.load_scenario(path, [setting]))
    with pytest.raises(UnstableModelError) as error:
        solve(model, capsim_version="test")
    assert f"--set tiers.{tier}.{key}=..." in str(error.value)
    data = solve(model, capsim_version="test", mark_overload=True)
    assert {entry["tier"]: entry["add"] for entry in data["overloaded"]}[tier] == key


def test_a_database_limited_by_its_pool_is_told_to_grow_the_pool(tmp_path: Path) -> None:
    text = """\
name: pooled
traffic:
  q: {entry: db, rate: 900/s}
tiers:
  db:
    type: database
    concurrency: 32
    service_time: {dist: exponential, mean: 10ms}
    pool: {size: 8}
"""
    data = solved(tmp_path, text, mark_overload=True)
    [entry] = data["overloaded"]
    assert entry["tier"] == "db" and entry["add"] == "pool.size"


def mmck_blocking(load: float, servers: int, capacity: int) -> float:
    """P(K in the system) of M/M/c/K at offered load a = lambda / mu."""
    terms = [load**n / math.factorial(n) for n in range(servers)]
    terms += [
        load**n / (math.factorial(servers) * servers ** (n - servers))
        for n in range(servers, capacity + 1)
    ]
    return terms[-1] / sum(terms)


POOL = """\
name: pool-with-a-waiting-room
traffic:
  q: {{entry: api, rate: {rate}/s}}
tiers:
  api: {{concurrency: 1000, service_time: 0s, calls: [db]}}
  db:
    type: database
    concurrency: 10
    service_time: {{dist: exponential, mean: 100ms}}
    pool: {{size: 3, max_waiting: 2}}
"""


@pytest.mark.parametrize("rate", [25, 40])
def test_a_pool_with_a_bounded_waiting_room_loses_what_mmck_says_and_is_never_overloaded(
    tmp_path: Path, rate: int
) -> None:
    # 3 connections, 2 calls may wait, 100 ms exponential queries: M/M/3/5 (the servers have
    # 10 workers, so queries never queue there). At 40/s (a = 4 > 3) solve said "OVERLOADED:
    # db" and exit 1, at 25/s it ignored the waiting room (error_rate 0); the simulation turns
    # away 33% and 14%, as M/M/3/5 says.
    data = solved(tmp_path, POOL.format(rate=rate), mark_overload=True)
    blocking = mmck_blocking(rate * 0.1, 3, 5)  # 0.3336 at 40/s, 0.1369 at 25/s
    q, db = data["classes"]["q"], data["tiers"]["db"]
    assert data["overloaded"] == [] and db["stable"] is True
    assert q["error_rate"] == pytest.approx(blocking, rel=1e-9)
    assert q["throughput"] == pytest.approx(rate * (1 - blocking), rel=1e-9)
    assert db["rejected_rate"] == pytest.approx(rate * blocking, rel=1e-9)
    assert "K = pool.size + max_waiting" in db["method"]["notes"][0]


def test_a_pool_as_large_as_the_workers_is_the_mmck_connection_pool_oracle(tmp_path: Path) -> None:
    # ORACLES section 4: 10 connections to 10 workers, 20 calls may wait, 950/s of 10 ms queries
    # (rho 0.95): M/M/10/30 turns away 2.06% of calls.
    text = (
        "name: db-pool\ntraffic:\n  q: {entry: db, rate: 950/s}\ntiers:\n  db:\n"
        "    type: database\n    concurrency: 10\n"
        "    service_time: {dist: exponential, mean: 10ms}\n"
        "    pool: {size: 10, max_waiting: 20}\n"
    )
    data = solved(tmp_path, text)
    blocking = mmck_blocking(9.5, 10, 30)
    assert blocking == pytest.approx(0.020586, rel=1e-4)
    assert data["classes"]["q"]["error_rate"] == pytest.approx(blocking, rel=1e-9)
    assert data["classes"]["q"]["throughput"] == pytest.approx(950 * (1 - blocking), rel=1e-9)
