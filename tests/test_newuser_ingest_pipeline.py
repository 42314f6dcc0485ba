"""Stories of a platform engineer new to capsim, gating a B2B event-ingest pipeline in CI (an
autoscaled ingest API, raw -> enrich -> store queues with batch consumers, KEDA on the raw
queue, an enrichment service called with a timeout and retries, a constant 2% of its answers
failing, PostgreSQL with replicas behind a pool).

Each test is one thing they met, as they met it, on a scenario small enough to run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.summary import _changes_during_run_at
from capsim.cli.app import app

runner = CliRunner()

PIPELINE = """
version: 1
name: b2b-event-ingest
seed: 11
simulation: {duration: 60s, warmup: 15s, replications: 3}
traffic:
  ingest: {entry: api, rate: 400/s}
tiers:
  api:
    concurrency: 8
    service_time: {dist: lognormal, mean: 4ms, cv: 1.0}
    calls: [pg, raw]
    autoscale: {metric: utilization, target: 60%, min: 2, max: 10}
  raw:
    type: queue
    publish_time: 1ms
    concurrency: 4
    service_time: {dist: exponential, mean: 5ms}
    calls: [enrich]
    autoscale: {metric: backlog, target: 50, min: 2, max: 20, polling_interval: 10s}
  enrich:
    type: queue
    consumers: 1
    service_time: 20ms
    batch: {size: 20, linger: 100ms}
    max_retries: 2
    calls:
      - {tier: enricher, timeout: 300ms, retries: {max: 2, base: 50ms, cap: 1s}}
      - store
  enricher:
    instances: 4
    concurrency: 8
    service_time: {dist: lognormal, mean: 30ms, cv: 1.0}
  store:
    type: queue
    consumers: 4
    service_time: 15ms
    batch: {size: 50, linger: 200ms}
    calls: [pg]
  pg:
    type: database
    replicas: 2
    concurrency: 8
    service_time: {dist: lognormal, mean: 6ms, cv: 1.0}
    read_ratio: 0.5
    pool: {size: 16, max_waiting: 200, timeout: 500ms}
faults:
  - {at: 0s, tier: enricher, error_rate: 2%}
slos:
  - {class: ingest, p99: 60ms}
"""


def test_one_enrich_consumer_short_of_the_load_fails_the_gate_though_conditions_look_changing(
    tmp_path: Path,
) -> None:
    # One consumer takes batches of 20 for 20 ms of work plus a ~30 ms enrichment call: about
    # 20 / 0.0506 = 395 messages/s. The newcomer's 400/s (1.3% over) was too close for three
    # 45 s windows to tell: the backlog's growth, about 5 messages/s, is within the noise of a
    # queue at capacity, and the gate failed for 3 of 10 seed shifts. At 420/s (6% over) the
    # backlog grows by about 25/s and every seed shift sees it.
    #
    # The story: the API's autoscaler and a fault in force for the whole run change nothing at
    # the enrich queue over time, so it is judged on its whole window (a backlog that dips in
    # its last quarter, as a random walk near capacity does, is not a spike draining): the
    # queue is overloaded and the gate fails, with the class's own SLO met (queue work is in no
    # class's latency).
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.replace("rate: 400/s", "rate: 420/s"))
    model = capsim.build_model(capsim.load_scenario(path))
    assert not _changes_during_run_at(model, model.tier("enrich"))
    args = ["check", str(path), "--format", "json"]
    result = runner.invoke(app, args, env={"GITHUB_ACTIONS": None})
    assert result.exit_code == 1, result.output
    check = json.loads(result.stdout)
    assert check["headline"].startswith("FAIL: tier enrich OVERLOADED")
    assert [slo["passed"] for slo in check["slos"]] == [True]
    (enrich,) = check["overloaded"]
    assert enrich["tier"] == "enrich"
    assert 375 < enrich["capacity"] < 400 < enrich["offered_rate"]
    # The backlog grows by what is offered beyond what is served: the trend of a queue at
    # capacity is noisy (0.73 to 1.20 times it over 10 seed shifts).
    excess = enrich["offered_rate"] - enrich["capacity"]
    assert enrich["growth_rate"] == pytest.approx(excess, rel=0.4)
