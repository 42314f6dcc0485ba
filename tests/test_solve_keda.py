"""`capsim solve` on a queue whose consumers KEDA scales: solved at the consumers its scaler
runs at that load, not at its max (docs/cli.md, "A queue whose consumers KEDA scales")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import capsim
from capsim.scenario import load_scenario

# 50 jobs a second of 200 ms: ten consumers' worth of work.
JOBS = """
version: 1
name: keda-jobs
seed: 2
simulation: {duration: 300s, warmup: 30s}
traffic:
  submit: {entry: api, rate: 50/s}
tiers:
  api:
    concurrency: 50
    blocking: false
    service_time: 2ms
    calls: [jobs]
  jobs:
    type: queue
    service_time: {dist: exponential, mean: 200ms}
    concurrency: 1
    autoscale: {metric: backlog, target: 5, min: 12, max: 40, polling_interval: 15s}
slos:
  - {tier: jobs, utilization: 80%}
"""


def model_of(tmp_path: Path, text: str) -> capsim.Model:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return capsim.build_model(load_scenario(path))


def solved(tmp_path: Path, text: str) -> dict[str, Any]:
    return capsim.solve(model_of(tmp_path, text), capsim_version="test")


def test_a_queue_kept_at_its_min_is_judged_at_the_consumers_it_runs(tmp_path):
    # With 12 consumers the backlog stays near 2 messages, far under 5 per consumer: the scaler
    # never leaves its min. solve judged the queue at its max of 40 (25% busy: PASS) while the
    # run measures 83% busy and fails the objective.
    data = solved(tmp_path, JOBS)
    jobs = data["tiers"]["jobs"]
    assert jobs["autoscale"]["consumers"] == 12
    assert jobs["autoscale"]["cycle"] == [12]
    assert jobs["utilization"] == pytest.approx(10 / 12)
    (verdict,) = data["slos"]
    assert verdict["passed"] is False
    # What the scaler may reach still bounds the saturation: 40 consumers carry 200/s.
    assert jobs["max_rate"] == pytest.approx(200.0)
    assert any("solved at 12 consumers, where its scaler settles" in n for n in data["notes"])
    run = capsim.simulate(model_of(tmp_path, JOBS))
    measured = run.data["tiers"]["jobs"]["utilization"]
    assert measured == pytest.approx(jobs["utilization"], rel=0.05)


def test_a_lag_scaler_settles_where_its_busiest_polls_ask_for_no_more(tmp_path):
    # On lag (waiting or being consumed) with 1 message per consumer, the count settles where
    # the highest lag of a 5-minute window of polls (about its 95th percentile) asks for no
    # more: 16 consumers (10 busy on average). Simulated, it settles between 13 and 18.
    text = JOBS.replace("metric: backlog, target: 5, min: 12", "metric: lag, target: 1, min: 1")
    jobs = solved(tmp_path, text)["tiers"]["jobs"]
    assert jobs["autoscale"]["consumers"] == 16
    assert jobs["utilization"] == pytest.approx(10 / 16)


def test_a_backlog_scaler_that_cycles_is_solved_at_the_count_it_holds_and_says_so(tmp_path):
    # From 1 consumer the backlog grows and the scaler asks for its max; at 40 the backlog is
    # about 0 and asks for 1 after the stabilization window: 1 -> 40 -> 1 ... Simulated, it
    # holds 40 for 315 s of each 330 s.
    data = solved(tmp_path, JOBS.replace("min: 12", "min: 1"))
    jobs = data["tiers"]["jobs"]
    assert jobs["autoscale"]["consumers"] == 40
    assert jobs["autoscale"]["cycle"] == [1, 40]
    assert any("it goes round 1 -> 40" in n for n in data["notes"])
