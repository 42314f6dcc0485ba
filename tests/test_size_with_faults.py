"""capsim size on a scenario whose fault loses servers: every trial loses them by the fault's own
rule (the last one, a share, a zone's) on the trial's count, never a server it does not have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import capsim
from capsim.analysis.sizing import apply_capacity, dimensions, size_tiers
from capsim.model.types import LoseRule

#: 300/s on servers of 2 workers at 10 ms (200/s each); one server is lost from 30 s on.
LOSES_ONE = """\
name: fault-size
seed: 3
simulation: {duration: 60s, warmup: 5s, replications: 1}
traffic:
  get: {entry: app, rate: 300/s}
tiers:
  app: {instances: 4, concurrency: 2, service_time: {dist: exponential, mean: 10ms}}
faults: [{at: 30s, tier: app, lose: LOSE}]
slos:
  - {class: get, p99: 200ms}
"""


def model_of(tmp_path: Path, lose: str) -> Any:
    path = tmp_path / "scenario.yaml"
    path.write_text(LOSES_ONE.replace("LOSE", lose))
    return capsim.build_model(capsim.load_scenario(path))


def test_size_loses_the_last_server_of_every_trial_and_finds_the_minimum(tmp_path: Path) -> None:
    # Used to fail with an IndexError: a trial of 2 servers losing server 3 of the scenario's 4.
    result = size_tiers(model_of(tmp_path, "1"), capsim_version=capsim.__version__)
    # 3 servers less the lost one: 2 x 2 workers / 10 ms = 400/s for 300/s; 2 less one: 200/s.
    assert result["tiers"]["app"]["instances"] == 3
    assert result["verified"] is True
    evidence = result["tiers"]["app"]["one_fewer"]
    assert evidence["meets_slos"] is False and "tier app overloaded" in evidence["reason"]


def test_a_fault_rule_picks_the_same_servers_on_any_count(tmp_path: Path) -> None:
    model = model_of(tmp_path, "50%")
    assert model.faults[0].lose == (2, 3)
    dims = dimensions(model, redundancy=0)
    six = apply_capacity(model, {"app": 6}, dims)
    assert six.faults[0].lose == (3, 4, 5)
    two = apply_capacity(model, {"app": 2}, dims)
    assert two.faults[0].lose == (1,)
    assert LoseRule(count=3).servers(2) == (0, 1)  # never more than the tier has
    assert LoseRule(zone="b").servers(5, ("a", "b")) == (1, 3)


#: One server of 2 workers at 10 ms (200/s) offered 300/s: its queue grows about 100/s until the
#: server is lost at 30 s, which fails the backlog and leaves an empty, "stable-looking" queue.
OVERLOADED_UNTIL_LOST = """\
name: half-overloaded
seed: 3
simulation: {duration: 60s, warmup: 5s}
traffic:
  get: {entry: app, rate: 300/s}
tiers:
  app: {instances: 1, concurrency: 2, service_time: {dist: exponential, mean: 10ms}}
faults: [{at: 30s, tier: app, lose: 1}]
"""


def test_a_queue_a_fault_empties_is_judged_by_how_it_grew_before(tmp_path: Path) -> None:
    path = tmp_path / "half.yaml"
    path.write_text(OVERLOADED_UNTIL_LOST)
    report = capsim.simulate(capsim.build_model(capsim.load_scenario(path)))
    assert report.data["tiers"]["app"]["stable"] is False
    assert report.data["passed"] is False
    (overload,) = report.data["overloaded"]
    assert overload["tier"] == "app"
    assert 80 < overload["growth_rate"] < 120  # 300/s offered, 200/s served: +100/s
