"""Stories of `capsim solve` on a blocking worker whose holding time is a sum of calm parts.

A partitioned queue's consumer holds its worker through its own work and two database calls:
a holding time of about 5 ms whose parts vary little. Each of the 6 partitions is fed every 6th
message (round robin), so its arrivals are nearly regular too. solve used to take the holding
time as exponential and put the wait's p99 at 22.6 ms, three times the simulated 7.2 to 7.6 ms
(on the notification platform: 41 ms against 9.9 ms). It now gives the holding time the variance
of its parts (the work's, the calls' waits and work, taken as independent), and the partition's
wait follows from that: 7.6 ms.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.model.types import Model

SCENARIO = """\
name: partitioned-holding
seed: 1
simulation: {duration: 30s, warmup: 5s}
traffic:
  events: {entry: api, rate: 600/s}
tiers:
  api:
    concurrency: 64
    service_time: 0.2ms
    calls: [jobs]
  jobs:
    type: queue
    publish_time: 0.1ms
    partitions: 6
    consumers: 6
    service_time: {dist: gamma, mean: 2ms, cv: 0.5}
    calls:
      - {tier: db, repeat: 2}
  db:
    concurrency: 64
    service_time: {dist: lognormal, mean: 1.5ms, cv: 1.0}
"""


def partitioned(tmp_path: Path) -> Model:
    path = tmp_path / "partitioned.yaml"
    path.write_text(SCENARIO)
    return capsim.build_model(capsim.load_scenario(path))


def test_the_holding_time_keeps_the_variance_of_its_parts(tmp_path: Path) -> None:
    # Work 2 ms (cv 0.5: variance 1 ms^2) and two calls of 1.5 ms (cv 1: 2.25 ms^2 each) with no
    # wait at the 64-worker database: 5 ms held, variance 5.5 ms^2, a squared cv of 0.22.
    data = capsim.solve(partitioned(tmp_path), capsim_version="t")
    jobs = data["tiers"]["jobs"]
    assert jobs["occupancy"] == pytest.approx(600 * 0.005 / 6, rel=1e-6)
    assert "its variance the sum of its parts'" in " ".join(jobs["method"]["notes"])
    # Allen-Cunneen at one partition (rho 0.5, arrivals Erlang-6: ca^2 = 1/6, cs^2 = 0.22):
    # the M/M/1 wait 5 ms x (1/6 + 0.22) / 2.
    assert jobs["wait"]["mean"] == pytest.approx(0.005 * (1 / 6 + 5.5 / 25) / 2, rel=1e-6)


def test_the_partitions_wait_p99_matches_the_simulation(tmp_path: Path) -> None:
    model = partitioned(tmp_path)
    estimate = capsim.solve(model, capsim_version="t")["tiers"]["jobs"]["wait"]["p99"]
    measured = capsim.simulate(model).data["tiers"]["jobs"]["wait"]["p99"]
    assert estimate == pytest.approx(measured, rel=0.25)
