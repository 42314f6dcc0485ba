"""An overloaded tier's `capacity` is what it serves when up (docs/results.md, "Overload fails
the run"; docs/cli.md, `capsim solve`): not diluted by the time it was down, and not estimated
with its callees at a load it could never pass them."""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.scenario import load_scenario

HALF_DOWN = """\
version: 1
name: half-down
seed: 1
simulation: {duration: 60s, warmup: 0s, timeseries: 1s}
traffic:
  web: {entry: app, rate: 150/s, arrivals: constant}
tiers:
  app: {instances: 2, concurrency: 1, service_time: 20ms}
faults:
  - {at: 30s, tier: app, lose: 1}
"""

BLOCKING = """\
version: 1
name: blocking-overload
simulation: {duration: 60s, warmup: 5s}
traffic:
  web: {entry: app, rate: 240/s}
tiers:
  app:
    concurrency: 4
    blocking: true
    service_time: {dist: exponential, mean: 5ms}
    calls: [db]
  db: {concurrency: 1, service_time: {dist: exponential, mean: 4ms}}
"""


def model_of(tmp_path: Path, text: str) -> capsim.Model:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return capsim.build_model(load_scenario(path))


def test_a_tier_down_for_half_the_run_is_quoted_at_its_capacity_when_up(tmp_path):
    # Two instances of 20 ms serve 100/s; one is lost at 30 s. Offered 150/s, the tier
    # completes 100/s and then 50/s: 75/s over the window, but its capacity is 100/s.
    data = capsim.simulate(model_of(tmp_path, HALF_DOWN)).data
    (failure,) = data["overloaded"]
    assert data["tiers"]["app"]["throughput"] == pytest.approx(75.0, rel=0.01)
    assert failure["capacity"] == pytest.approx(100.0, rel=0.01)
    assert failure["saturation_rate"] == pytest.approx(100.0, rel=0.01)
    assert any("capacity 100.0/s" in line for line in data["warnings"])


def test_solve_quotes_an_overloaded_blocking_tier_at_the_load_it_could_pass_its_callee(tmp_path):
    # app's 4 workers hold through 5 ms of work and a call to an M/M/1 db of 4 ms: at x/s the
    # call takes 4 ms / (1 - 0.004 x), so app saturates where x (5 ms + 4 ms / (1 - 0.004 x))
    # = 4 workers: x = 188.39/s. At the 240/s offered, the db would be 96% busy and the call
    # 100 ms long, which makes a "capacity" of 4 / 105 ms = 38/s: a load app cannot pass it.
    data = capsim.solve(model_of(tmp_path, BLOCKING), capsim_version="test", mark_overload=True)
    (failure,) = data["overloaded"]
    assert failure["tier"] == "app" and failure["offered_rate"] == pytest.approx(240.0)
    assert failure["capacity"] == pytest.approx(188.394, abs=240 * 2**-14)  # the bisection's step
    # The table's max rate says the same (app gets one visit per request).
    assert data["tiers"]["app"]["max_rate"] == pytest.approx(failure["capacity"], rel=1e-3)
