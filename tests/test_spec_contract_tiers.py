"""SPEC.md §2, "Tiers: keys every tier accepts": instances, concurrency, service_time, calls,
blocking, balancing, max_queue, timeout and classes, on every tier type.

A load balancer refused `calls`; a queue refused `instances`, `balancing` and `max_queue`. A
queue's instances are its consumers and its waiting room is `max_depth`, so those keys are the
same settings under the names every tier uses; a load balancer's calls are its own (an auth
check), made after its backend answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from capsim.cli.app import app

runner = CliRunner()
PLAIN_ENV = {"NO_COLOR": "1", "COLUMNS": "120"}

EVERY_TYPE = """\
name: every-type
simulation: {duration: 2s}
traffic:
  t: {entry: front, rate: 10/s}
tiers:
  front: {type: service, service_time: 1ms, calls: [lb]}
  lb: {type: load_balancer, backends: web}
  web: {type: service, service_time: 1ms}
  cache: {type: cache, hit_ratio: 0.5, on_miss: web}
  edge: {type: cdn, hit_ratio: 0.5, on_miss: web}
  db: {type: database, service_time: 1ms}
  orders: {type: queue, service_time: 1ms}
  leaf: {type: service, service_time: 1ms}
"""
#: SPEC.md §2's keys every tier accepts, each with a value valid on any tier.
COMMON_KEYS = (
    "instances=2",
    "concurrency=2",
    "service_time=2ms",
    "calls=[leaf]",
    "blocking=true",
    "blocking=false",
    "balancing=random",
    "max_queue=10",
    "max_queue=0",
    "timeout=2s",
    "classes={t: {service_time: 3ms}}",
    "classes={t: {calls: [leaf]}}",
)
BALANCED_AUTH = """\
name: gateway
seed: 4
simulation: {duration: 60s}
traffic:
  t: {entry: lb, rate: 100/s}
tiers:
  lb:
    type: load_balancer
    service_time: 1ms
    backends: web
    calls: [{tier: auth, probability: 0.5}]
  web: {type: service, concurrency: 4, service_time: {dist: exponential, mean: 5ms}}
  auth: {type: service, concurrency: 2, service_time: 2ms}
"""


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env=PLAIN_ENV)


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiers") / "every-type.yaml"
    path.write_text(EVERY_TYPE)
    return path


@pytest.mark.parametrize("tier", ["lb", "web", "cache", "edge", "db", "orders"])
def test_every_tier_type_accepts_every_common_key(every_type: Path, tier: str) -> None:
    refused = []
    for setting in COMMON_KEYS:
        result = invoke("validate", str(every_type), "--set", f"tiers.{tier}.{setting}")
        if result.exit_code != 0:
            refused.append((setting, result.stderr.splitlines()[0]))
    assert refused == []


def run_json(path: Path, *extra: str) -> dict:
    result = invoke("run", str(path), "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_queues_instances_are_its_consumers_and_max_queue_its_max_depth(
    every_type: Path,
) -> None:
    aliases = ["--set", "tiers.web.calls=[orders]", "--set", "tiers.orders.instances=3"]
    data = run_json(every_type, *aliases, "--set", "tiers.orders.max_queue=0")
    spelled = run_json(
        every_type,
        "--set",
        "tiers.web.calls=[orders]",
        "--set",
        "tiers.orders.consumers=3",
        "--set",
        "tiers.orders.max_depth=0",
    )
    assert data["tiers"]["orders"]["workers"] == 3
    assert data == spelled


def test_a_queue_given_instances_and_consumers_that_differ_is_refused(every_type: Path) -> None:
    result = invoke(
        "validate",
        str(every_type),
        "--set",
        "tiers.orders.instances=2",
        "--set",
        "tiers.orders.consumers=3",
    )
    assert result.exit_code == 2
    assert "instances (2) and consumers (3) are the same setting for a queue" in result.stderr


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway") / "gateway.yaml"
    path.write_text(BALANCED_AUTH)
    return path


def test_a_load_balancers_own_calls_carry_load_and_latency_on_both_engine_paths(
    gateway: Path,
) -> None:
    events = run_json(gateway, "--engine", "events")
    vectorised = run_json(gateway, "--engine", "vectorised")
    for data in (events, vectorised):
        # Half the requests call auth (2 ms) after web (5 ms mean) and the balancer (1 ms).
        assert data["tiers"]["auth"]["throughput"] == pytest.approx(50.0, rel=0.05)
        assert data["classes"]["t"]["latency"]["mean"] == pytest.approx(0.007, rel=0.05)
    solved = json.loads(invoke("solve", str(gateway), "--format", "json").stdout)
    assert solved["tiers"]["auth"]["offered_rate"] == pytest.approx(50.0)


def test_a_load_balancer_calling_back_into_its_caller_is_a_certain_cycle(
    every_type: Path,
) -> None:
    result = invoke("validate", str(every_type), "--set", "tiers.lb.calls=[front]")
    assert result.exit_code == 2
    assert "call cycle front -> lb -> front" in result.stderr


SIZED_QUEUE = """\
name: sized-queue
simulation: {duration: 20s}
traffic:
  t: {entry: front, rate: 100/s}
tiers:
  front: {service_time: 1ms, concurrency: 10, calls: [orders], blocking: false}
  orders: {type: queue, service_time: 30ms, instances: 2, sizing: {of: instances, max: 20}}
slos:
  - {tier: orders, age_p99: 200ms}
"""


def test_a_queue_sized_by_instances_is_written_back_under_instances(tmp_path: Path) -> None:
    """`size --write` put `consumers: 4` beside the scenario's `instances: 2`: a contradiction
    the written file was refused for."""
    scenario = tmp_path / "queue.yaml"
    scenario.write_text(SIZED_QUEUE)
    written = tmp_path / "sized.yaml"
    args = ("size", str(scenario), "--duration", "10s", "--replications", "1")
    result = invoke(*args, "--write", str(written), "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tiers"]["orders"]["sized"] == "consumers"
    answer = data["tiers"]["orders"]["consumers"]
    assert answer > 2
    text = written.read_text()
    assert f"instances: {answer}" in text and "consumers" not in text
    assert invoke("validate", str(written)).exit_code == 0
