"""Batch consumers in the formulas: a consumer that takes 10 messages at a time does one piece of
work and one round of calls per batch, so a message costs a tenth of them. Counting each message
as a whole batch made `solve` call a 17%-busy pipeline stage OVERLOADED (rho 3.3), and the rule
that fails a run whose overload is too slow to see then failed a healthy run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

#: 140 messages/s into 2 consumers that take batches of 10 at 100 ms a batch (70% busy), and
#: each batch makes one call to an indexer of 1 worker at 20 ms: 14 calls/s, 28% busy, a
#: response of 20 / (1 - 0.28) = 27.8 ms that holds the consumer. Held 127.8 ms a batch: the
#: stage is 89.4% occupied and carries 2 x 10 / 0.1278 s = 156.5 messages/s.
BATCHES = """\
name: batch-writer
seed: 3
simulation: {duration: 60s, warmup: 5s, replications: 2}
traffic:
  events: {entry: api, rate: 140/s}
tiers:
  api:
    concurrency: 16
    service_time: 1ms
    calls: [sink]
  sink:
    type: queue
    consumers: 2
    batch: {size: 10, linger: 200ms}
    service_time: {dist: exponential, mean: 100ms}
    calls: [indexer]
  indexer:
    concurrency: 1
    service_time: {dist: exponential, mean: 20ms}
"""


def invoke(tmp_path: Path, *args: str) -> dict:
    path = tmp_path / "batches.yaml"
    path.write_text(BATCHES)
    result = runner.invoke(app, [args[0], str(path), "--format", "json", *args[1:]])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_solve_charges_a_message_a_tenth_of_its_batch(tmp_path: Path) -> None:
    data = invoke(tmp_path, "solve")
    sink, indexer = data["tiers"]["sink"], data["tiers"]["indexer"]
    assert indexer["offered_rate"] == pytest.approx(14.0)  # one call per batch
    assert indexer["utilization"] == pytest.approx(0.28)
    assert sink["utilization"] == pytest.approx(0.70)
    assert sink["occupancy"] == pytest.approx(140 * (0.100 + 0.020 / 0.72) / 10 / 2)
    assert sink["max_rate"] == pytest.approx(2 * 10 / (0.100 + 0.020 / 0.72), rel=0.01)
    assert data["bottleneck"]["tier"] == "sink" and not data["overloaded"]


def test_a_busy_batch_stage_is_not_failed_as_an_unseen_overload(tmp_path: Path) -> None:
    data = invoke(tmp_path, "run")
    sink = data["tiers"]["sink"]
    assert sink["utilization"] == pytest.approx(0.70, abs=0.03)  # as solve says
    assert sink["occupancy"] == pytest.approx(0.894, abs=0.04)
    assert sink["stable"] is True
    assert not any("OVERLOADED" in warning for warning in data["warnings"])
    assert data["tiers"]["indexer"]["offered_rate"] == pytest.approx(14.0, rel=0.05)
