"""The same scenario and seed give byte-identical JSON, however the replications are run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app
from capsim.engine.runner import run_replication

runner = CliRunner()

#: Both engine paths, a loop, a fan-out, a cache, a pool and a queue: every stream in use.
SCENARIO = """\
name: determinism
seed: 7
simulation: {duration: 3s, warmup: 0.5s, replications: 4}
traffic:
  web: {entry: app, rate: 300/s}
  ops: {entry: app, users: 5, think_time: {dist: exponential, mean: 50ms}}
tiers:
  app:
    instances: 2
    concurrency: 4
    balancing: power_of_two
    service_time: {dist: lognormal, mean: 3ms, cv: 1.5}
    calls: [cache, {parallel: [db, search]}, {tier: events, probability: 0.3}]
  cache: {type: cache, hit_ratio: 0.8, on_miss: db}
  db:
    type: database
    replicas: 1
    read_ratio: 0.7
    pool: {size: 6, max_waiting: 20, timeout: 200ms}
    service_time: {dist: exponential, mean: 2ms}
  search: {concurrency: 2, service_time: {dist: gamma, mean: 2ms, cv: 0.5}, max_queue: 10}
  events: {type: queue, consumers: 2, service_time: 5ms}
"""

VECTORISED = """\
name: determinism-vectorised
seed: 11
simulation: {duration: 5s, warmup: 0.5s, replications: 4}
traffic:
  web: {entry: front, rate: 500/s}
tiers:
  front: {instances: 3, concurrency: 2, blocking: false, service_time: {dist: exponential, mean: 4ms}, calls: [back]}
  back: {concurrency: 4, service_time: {dist: uniform, min: 1ms, max: 5ms}}
"""


def _run(path: Path, *options: str) -> bytes:
    result = runner.invoke(app, ["run", str(path), "--format", "json", *options])
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


@pytest.fixture(params=["events", "vectorised"])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO if request.param == "events" else VECTORISED)
    return path


def test_serial_and_any_pool_size_give_byte_identical_json(scenario: Path) -> None:
    serial = _run(scenario)
    data = json.loads(serial)
    assert data["replications"] == 4 and data["classes"]
    for workers in ("1", "2", "3", "4"):
        assert _run(scenario, "--executor", "process", "--workers", workers) == serial, workers
    assert _run(scenario) == serial  # and again, serially


def test_the_engine_path_the_json_names_is_the_one_asked_for(scenario: Path) -> None:
    data = json.loads(_run(scenario))
    expected = "events" if "determinism\n" in scenario.read_text() else "vectorised"
    assert data["engine"]["path"] == expected


def test_a_replication_does_not_depend_on_which_ran_before_it(scenario: Path) -> None:
    import capsim

    model = capsim.build_model(capsim.load_scenario(scenario))
    path = json.loads(_run(scenario))["engine"]["path"]
    in_order = [run_replication(model, i, path) for i in range(4)]
    backwards = [run_replication(model, i, path) for i in reversed(range(4))][::-1]
    for a, b in zip(in_order, backwards, strict=True):
        assert [c.completed for c in a.classes] == [c.completed for c in b.classes]
        assert [c.latency.total for c in a.classes] == [c.latency.total for c in b.classes]
        assert [t.busy_time for t in a.tiers] == [t.busy_time for t in b.tiers]


def test_the_json_holds_no_timings(scenario: Path) -> None:
    text = _run(scenario).decode()
    assert "timings" not in text and "elapsed" not in text
