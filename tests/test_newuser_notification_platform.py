"""Stories of a performance engineer new to capsim, planning an event-driven notification
platform (scenarios/notification-platform.yaml: an API gateway publishing to a 24-partition
events queue, blocking fan-out consumers calling a templates cache and Postgres behind a pool,
a push queue whose senders call a heavy-tailed provider with timeout, retry and breaker).

Each test asks one question a capacity planner asks and checks capsim's answer against a
figure worked by hand (utilisation = rate x service time / servers, Little's law, the fluid
backlog of an overload). Runs are short (a few simulated seconds at 3,000/s) to keep CI fast.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

SCENARIO = str(Path(__file__).parents[1] / "scenarios" / "notification-platform.yaml")
SHORT = ["--duration", "4s", "--set", "simulation.warmup=2s"]

# Hand figures at the evening peak, 3,000 notifications/s (the scenario's header says how).
PEAK = 3_000.0
FANOUT_HOLD = 1e-3 + 0.5e-3 + 0.05 * 1.5e-3 + 2 * 1.5e-3 + 2 * 0.5e-3  # 5.575 ms a message
PARTITIONS = 24
PROVIDER_MEAN = 0.060 * 1.8592  # lognormal p50 60 ms, p99 800 ms: sigma 1.1137, mean 111.5 ms
PUSH_WORKERS = 40 * 32


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_the_next_peak_holds_with_every_tier_where_the_hand_calculation_puts_it() -> None:
    data = _json(["run", SCENARIO, *SHORT, "--format", "json"])
    tiers = data["tiers"]
    assert abs(tiers["gateway"]["utilization"] - PEAK * 5e-3 / 64) < 0.02  # 23.4%
    assert abs(tiers["gateway"]["occupancy"] - PEAK * 6e-3 / 64) < 0.02  # + the 1 ms publish
    # Only one consumer works a partition at a time: 24 usable workers, not 32.
    assert abs(tiers["events"]["occupancy"] - PEAK * FANOUT_HOLD / PARTITIONS) < 0.03  # 70%
    groups = tiers["users_db"]["groups"]
    assert abs(groups["primary"]["utilization"] - 3_075 * 1.5e-3 / 16) < 0.02  # 29%
    assert abs(groups["replicas"]["utilization"] - 3_075 * 1.5e-3 / 32) < 0.01  # 14%
    held = 2 * PEAK * (1e-3 + PROVIDER_MEAN) / PUSH_WORKERS  # 53%
    assert abs(tiers["push"]["occupancy"] - held) < 0.03
    # The API never waits for the queues: its p99 is the gateway's lognormal p99 (24.5 ms)
    # plus the 1 ms publish, far under the 150 ms objective.
    assert 0.020 < data["classes"]["notify"]["latency"]["p99"] < 0.032
    assert data["passed"] is True


def test_solve_puts_the_wall_at_the_partitions_and_the_push_senders_next() -> None:
    data = _json(["solve", SCENARIO, "--format", "json"])
    assert data["bottleneck"]["tier"] == "events"
    wall = PARTITIONS / FANOUT_HOLD  # 4,305/s whatever the 32 consumers
    assert abs(data["bottleneck"]["saturation_rate"] / wall - 1) < 0.01
    senders = PUSH_WORKERS / (2 * (1e-3 + PROVIDER_MEAN))  # 5,688 notifications/s
    assert abs(data["tiers"]["push"]["max_rate"] / senders - 1) < 0.01


# Two partitions of a 10 ms consumer carry 200/s; 300/s are asked.
PARTITION_WALL = """
version: 1
name: partition-wall
seed: 5
simulation: {duration: 10s, warmup: 2s}
traffic:
  send: {entry: api, rate: 300/s}
tiers:
  api:
    type: service
    instances: 1
    concurrency: 4
    service_time: {dist: exponential, mean: 5ms}
    calls: [jobs]
    cost: {per_instance_hour: 0.1}
  jobs:
    type: queue
    partitions: 2
    consumers: 1
    service_time: {dist: exponential, mean: 10ms}
    cost: {per_instance_hour: 0.1}
slos:
  - {class: send, p99: 100ms}
  - {tier: jobs, age_p95: 1s}
"""


def test_size_stops_at_a_partition_wall_and_says_to_raise_the_partitions(tmp_path: Path) -> None:
    # size used to grow the API (which nothing waited on) to its sizing.max of 1,000 instances
    # and then advise raising sizing.max: the overloaded queue, capped at one consumer per
    # partition, kept the stall rule from judging. On the platform at twice its peak it grew
    # every other tier for 13 minutes.
    path = tmp_path / "wall.yaml"
    path.write_text(PARTITION_WALL)
    result = runner.invoke(app, ["size", str(path), "--replications", "2"])
    assert result.exit_code == 1, result.output
    assert "jobs is overloaded at its most (consumers=2)" in result.output
    assert "raise tiers.jobs.partitions to add parallelism" in result.output
    assert "api=1000" not in result.output


def test_size_of_the_queue_alone_names_its_partitions_not_only_its_sizing_max(
    tmp_path: Path,
) -> None:
    # With the queue the only sized tier, its 2 consumers are the most it may have: the answer
    # said only "Raise sizing.max of the tiers", which cannot help.
    path = tmp_path / "wall.yaml"
    path.write_text(PARTITION_WALL)
    result = runner.invoke(
        app, ["size", str(path), "--set", "tiers.api.sizing=fixed", "--replications", "2"]
    )
    assert result.exit_code == 1, result.output
    assert "at jobs=2 still" in result.output
    assert "raise tiers.jobs.partitions to add parallelism" in result.output
