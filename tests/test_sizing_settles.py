"""Stories of a sizing search that cannot settle: it says why, early, with the right exit code.

web-shop at 3x load grew every sized tier for 400 measurements (21 minutes) because its
latency objectives were held up by a quantity the search does not size; the observed figures
never moved. These stories reproduce that pattern on a two-tier scenario in seconds.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis import sizing
from capsim.analysis.sizing import SearchLimitError, SizingError, size_tiers
from capsim.cli.app import app

runner = CliRunner()

# The app is sized; the db behind it is fixed at one worker, 80% busy: its own p99 (M/M/1,
# ln(100) x 10 ms / (1 - 0.8), about 230 ms) keeps every request's p99 far above 50 ms, however
# many app instances there are.
HELD_UP_BY_A_FIXED_TIER = """\
name: held-up
seed: 5
simulation: {duration: 10s, warmup: 2s, replications: 2}
traffic:
  requests: {entry: app, rate: 80/s}
tiers:
  app:
    type: service
    instances: 1
    concurrency: 2
    blocking: true
    service_time: {dist: exponential, mean: 10ms}
    calls: [db]
    sizing: {of: instances, min: 1, max: 500}
  db:
    type: service
    concurrency: 1
    service_time: {dist: exponential, mean: 10ms}
    sizing: fixed
slos:
  - {class: requests, p99: %s}
"""


def scenario(tmp_path, p99="50ms"):
    path = tmp_path / "held-up.yaml"
    path.write_text(HELD_UP_BY_A_FIXED_TIER % p99)
    return path


def sized(path):
    model = capsim.build_model(capsim.load_scenario(path))
    return size_tiers(model, capsim_version=capsim.__version__)


def test_an_objective_no_sized_quantity_moves_stops_the_search_early_with_exit_1(tmp_path):
    path = scenario(tmp_path)
    with pytest.raises(SizingError, match="no sized capacity moves") as stopped:
        sized(path)
    assert "requests p99 <= 50ms" in str(stopped.value)
    result = runner.invoke(app, ["size", str(path), "--format", "json"])
    assert result.exit_code == 1
    assert "no sized capacity moves these objectives" in result.stderr
    assert "requests p99 <= 50ms (observed" in result.stderr


def test_the_stall_rule_does_not_stop_a_search_that_can_settle(tmp_path):
    # The same scenario with an objective the fixed db allows: growth settles on an answer.
    result = sized(scenario(tmp_path, p99="900ms"))
    assert result["verified"] is True
    assert result["tiers"]["app"]["sized"] == "instances"


def test_a_search_that_runs_out_of_measurements_is_a_search_limit_exit_3(tmp_path, monkeypatch):
    monkeypatch.setattr(sizing, "MAX_EVALUATIONS", 2)
    monkeypatch.setattr(sizing, "STALL_MOVES", 1000)  # let the budget, not the stall, stop it
    path = scenario(tmp_path)
    with pytest.raises(SearchLimitError, match="without settling"):
        sized(path)
    result = runner.invoke(app, ["size", str(path)])
    assert result.exit_code == 3
    assert "not an SLO verdict" in result.stderr
