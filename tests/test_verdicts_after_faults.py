"""Verdicts after a fault (docs/results.md#verdicts-after-a-fault): a tier objective is judged on
each phase of a run with faults (before, during, after), so a tier overloaded for the rest of the
run after losing instances fails, and the result says when it broke.

The fleet: 20 requests a second, one every 50 ms, round robin over 4 instances of one worker,
each request 100 ms of work: 2 workers busy, 50% of 4, 2/3 of 3 once one instance is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.cli.app import app
from capsim.engine.runner import run_replication
from capsim.scenario import load_scenario

runner = CliRunner()

FLEET = """\
version: 1
name: fleet
seed: 1
simulation: {{duration: 30s, warmup: 0s, timeseries: 1s}}
traffic:
  web: {{entry: app, rate: 20/s, arrivals: constant}}
tiers:
  app: {{instances: 4, concurrency: 1, service_time: 100ms}}
faults:
{faults}
slos:
  - {{tier: app, utilization: {limit}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def run(tmp_path: Path, faults: str, limit: str = "60%") -> dict:
    path = write(tmp_path, FLEET.format(faults=faults, limit=limit))
    return capsim.simulate(capsim.build_model(load_scenario(path))).data


def test_a_tier_overloaded_after_losing_an_instance_fails_though_its_whole_window_passes(
    tmp_path,
):
    data = run(tmp_path, "  - {at: 15s, tier: app, lose: 1}")
    verdict = data["slos"][0]
    # Whole window: 60 worker-seconds busy over 4 x 15 + 3 x 15 = 105 live: 57%, within 60%.
    assert verdict["whole_window"] == pytest.approx(60 / 105, rel=0.01)
    # After the loss the three survivors are 2/3 busy for the rest of the run.
    before, after = verdict["phases"]
    assert (before["from"], before["to"], before["observed"]) == (
        0.0,
        15.0,
        pytest.approx(0.5, rel=0.01),
    )
    assert (after["from"], after["to"]) == (15.0, 30.0)
    assert after["observed"] == pytest.approx(2 / 3, rel=0.01)
    assert "app loses 1" in after["label"]
    assert verdict["observed"] == pytest.approx(2 / 3, rel=0.01)
    assert verdict["passed"] is False
    assert verdict["broke_at"] == 15.0
    assert data["passed"] is False
    assert any(
        "broke at t = 15s" in line and "whole window's 57.0%" in line for line in data["warnings"]
    )


def test_a_fault_that_ends_gives_three_phases_before_during_and_after_recovery(tmp_path):
    data = run(tmp_path, "  - {at: 10s, tier: app, lose: 1, for: 10s}", limit="70%")
    verdict = data["slos"][0]
    figures = [(p["from"], p["to"], p["observed"]) for p in verdict["phases"]]
    assert figures == [
        (0.0, 10.0, pytest.approx(0.5, rel=0.01)),
        (10.0, 20.0, pytest.approx(2 / 3, rel=0.01)),
        (20.0, 30.0, pytest.approx(0.5, rel=0.01)),
    ]
    assert [p["passed"] for p in verdict["phases"]] == [True, True, True]
    assert verdict["passed"] is True and verdict["broke_at"] is None


def test_a_run_without_faults_is_judged_on_its_whole_window_as_before(tmp_path):
    text = FLEET.format(faults="  []", limit="60%").replace("faults:\n  []\n", "")
    data = capsim.simulate(capsim.build_model(load_scenario(write(tmp_path, text)))).data
    verdict = data["slos"][0]
    assert verdict["observed"] == pytest.approx(0.5, rel=0.01)
    assert "phases" not in verdict and "broke_at" not in verdict


def test_check_fails_the_gate_on_the_phase_after_the_fault(tmp_path):
    path = write(tmp_path, FLEET.format(faults="  - {at: 15s, tier: app, lose: 1}", limit="60%"))
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1, result.output
    assert "FAIL  SLO app utilization <= 60%: observed 66.7%" in result.output
    assert "broke at t = 15s" in result.output


REGION_LOST = """\
version: 1
name: region-lost
seed: 5
simulation: {duration: 90s, warmup: 0s, timeseries: 5s}
regions:
  eu: {rtt: {us: 70ms}}
  us: {}
routing: {policy: geo, health_check: 10s, dns_ttl: 20s}
traffic:
  browse: {entry: app, rate: 200/s, arrivals: constant}
tiers:
  app: {concurrency: 100, blocking: false, service_time: 10ms}
faults:
  - {at: 30s, region: us}
slos:
  - {tier: app, utilization: 1.5%}
"""


def test_after_a_region_loss_the_survivor_is_judged_once_dns_has_moved_its_clients(tmp_path):
    # Each region serves 100/s (1% of 100 workers) until us is lost at 30 s; DNS notices at
    # 40 s and has moved every us client by 60 s; from then eu serves 200/s: 2%.
    data = capsim.simulate(capsim.build_model(load_scenario(write(tmp_path, REGION_LOST)))).data
    verdicts = {v["slo"]: v for v in data["slos"]}
    eu = verdicts["app@eu utilization <= 1.5%"]
    bounds = [(p["from"], p["to"]) for p in eu["phases"]]
    assert bounds == [(0.0, 30.0), (30.0, 60.0), (60.0, 90.0)]
    assert eu["phases"][-1]["label"] == "traffic moved by DNS"
    assert eu["phases"][-1]["observed"] == pytest.approx(0.02, rel=0.02)
    assert eu["whole_window"] < 0.015  # the average over the run hides it
    # From 30 s to 60 s: 1% until DNS notices, then a ramp to 2%: 1.33% on average, within.
    assert eu["phases"][1]["observed"] == pytest.approx((10 * 0.01 + 20 * 0.015) / 30, rel=0.02)
    assert eu["passed"] is False and eu["broke_at"] == 60.0
    # The lost copy has no live instance after 30 s: that phase is not judged.
    us = verdicts["app@us utilization <= 1.5%"]
    assert us["phases"][1]["observed"] is None and us["phases"][1]["passed"] is None
    assert us["passed"] is True


# ---- capsim solve ------------------------------------------------------------------------------
LOST_HALF = """\
version: 1
name: lost-half
simulation: {duration: 600s, warmup: 0s}
traffic:
  web: {entry: app, rate: 680/s}
tiers:
  app: {instances: 4, concurrency: 4, service_time: 10ms}
faults:
  - {at: 300s, tier: app, lose: 2}
slos:
  - {tier: app, utilization: 70%}
"""


def solved(tmp_path: Path, text: str) -> dict:
    model = capsim.build_model(load_scenario(write(tmp_path, text)))
    return capsim.solve(model, capsim_version="test")


def test_solve_judges_a_tier_objective_on_the_survivors_of_the_loss(tmp_path):
    # 680/s x 10 ms = 6.8 busy workers: 42.5% of 16 before the loss, 85% of the 8 left after.
    data = solved(tmp_path, LOST_HALF)
    (verdict,) = data["slos"]
    assert verdict["before_fault"] == pytest.approx(0.425)
    assert verdict["observed"] == pytest.approx(0.85)
    assert verdict["after_loss"] == "2 of 4 instances live (app loses 2 of 4 instances at 5min)"
    assert verdict["passed"] is False and data["passed"] is False
    assert data["tiers"]["app"]["utilization"] == pytest.approx(0.425)  # the figures: no fault
    assert any(
        note.startswith("faults: the figures are the steady state") for note in data["notes"]
    )


def test_solve_fails_an_objective_whose_survivors_would_be_overloaded(tmp_path):
    data = solved(tmp_path, LOST_HALF.replace("lose: 2", "lose: 3"))  # 6.8 busy on 4 workers
    (verdict,) = data["slos"]
    assert verdict["passed"] is False
    assert verdict["reason"].startswith("overloaded after the loss: 1 of 4 instances live")


def test_solve_does_not_judge_a_lost_region_s_copy_and_judges_the_survivor_after_the_move(
    tmp_path,
):
    data = solved(tmp_path, REGION_LOST)
    verdicts = {v["slo"]: v for v in data["slos"]}
    lost = verdicts["app@us utilization <= 1.5%"]
    assert lost["passed"] is None
    assert lost["reason"].startswith("a fault loses every instance of this tier (region us lost")
    # The survivor carries the moved clients: 200/s on 100 workers of 10 ms.
    survivor = verdicts["app@eu utilization <= 1.5%"]
    assert survivor["observed"] == pytest.approx(0.02) and survivor["passed"] is False


def test_solve_does_not_judge_a_tier_a_fault_slows_down(tmp_path):
    data = solved(tmp_path, LOST_HALF.replace("lose: 2", "slowdown: 2x"))
    (verdict,) = data["slos"]
    assert verdict["passed"] is None
    assert "which solve's steady state does not include" in verdict["reason"]
    assert data["passed"] is True  # not judged is not failed


def test_a_wait_objective_in_a_run_with_faults_says_it_is_judged_on_the_whole_window(tmp_path):
    text = FLEET.format(faults="  - {at: 15s, tier: app, lose: 1}", limit="90%")
    text += "  - {tier: app, wait_p99: 1s}\n"
    data = capsim.simulate(capsim.build_model(load_scenario(write(tmp_path, text)))).data
    wait = next(v for v in data["slos"] if v["statistic"] == "wait_p99")
    assert "phases" not in wait
    assert any(
        line.startswith("SLO 'app wait_p99 <= 1s' is judged on the whole window")
        for line in data["warnings"]
    )


def test_a_fault_from_the_start_makes_the_first_phase_the_faulty_one(tmp_path):
    data = run(tmp_path, "  - {at: 0s, tier: app, lose: 1, for: 15s}", limit="60%")
    verdict = data["slos"][0]
    during, after = verdict["phases"]
    assert during["label"] == "from the start of the window"
    assert during["observed"] == pytest.approx(2 / 3, rel=0.01) and during["passed"] is False
    assert after["label"].startswith("fault over: app loses 1")
    assert verdict["broke_at"] == 0.0


SLOWED = """\
version: 1
name: slowed
seed: 1
simulation: {duration: 30s, warmup: 0s, timeseries: 1s}
traffic:
  web: {entry: app, rate: 20/s, arrivals: constant}
tiers:
  app: {instances: 4, concurrency: 1, service_time: 180ms, calls: [jobs]}
  jobs: {type: queue, consumers: 4, service_time: 100ms}
faults:
  - {at: 15s, tier: app, lose: 1}
  - {at: 15s, tier: jobs, slowdown: 4x}
slos:
  - {tier: app, wait_mean: 1s}
  - {tier: jobs, age_mean: 2s}
  - {tier: jobs, age_max: 5s}
"""


def test_a_mean_wait_and_a_message_age_after_the_fault_are_judged_on_their_phase(tmp_path):
    # Before 15 s each of the 4 instances gets a request every 200 ms and works 180 ms: nobody
    # waits. After losing one, each survivor gets one every 150 ms: waits grow by 30 ms a
    # request. The whole window's mean wait (0.58 s) hid that behind the calm half; the phase
    # after the loss, by Little's law (request-seconds waiting over requests served), is
    # 1.27 s. The queue's consumers slowed to 400 ms fall behind likewise: messages done after
    # the fault are 3.2 s old on average, against 1.15 s over the whole window.
    data = capsim.simulate(capsim.build_model(load_scenario(write(tmp_path, SLOWED)))).data
    wait, age, oldest = data["slos"]
    # (0.634 s: the whole window's waits also count the requests still waiting when it ends,
    # at their wait so far; 0.576 s over the requests served alone.)
    assert wait["whole_window"] == pytest.approx(0.634, abs=0.01)
    assert [p["observed"] for p in wait["phases"]] == [0.0, pytest.approx(1.267, abs=0.01)]
    assert wait["passed"] is False and wait["broke_at"] == 15.0
    # Ages per phase are exact (each bucket keeps the sum and the largest of its messages').
    assert age["whole_window"] == pytest.approx(data["tiers"]["jobs"]["age"]["mean"])
    # (1.48 s with the messages still waiting at the end counted at their age then; 1.15 s
    # over the messages consumed alone.)
    assert age["whole_window"] == pytest.approx(1.48, abs=0.01)
    assert age["phases"][0]["observed"] == pytest.approx(0.1)
    # After the fault: 3.22 s over the messages consumed, 3.12 s with those still waiting at
    # the end in the last bucket at their age then (lower bounds, younger than the consumed).
    assert age["phases"][1]["observed"] == pytest.approx(3.12, abs=0.01)
    assert age["passed"] is False and age["broke_at"] == 15.0
    # The oldest message is the whole window's max either way; its phase says when.
    assert oldest["observed"] == pytest.approx(data["tiers"]["jobs"]["age"]["max"])
    assert oldest["phases"][0]["observed"] == pytest.approx(0.1)
    assert oldest["broke_at"] == 15.0
    assert not any("judged on the whole window" in line for line in data["warnings"])
    assert any(
        line.startswith("SLO 'app wait_mean <= 1s' broke at t = 15s") for line in data["warnings"]
    )


@pytest.mark.parametrize("path", ["events", "vectorised"])
def test_both_engine_paths_keep_each_bucket_s_message_ages_exactly(tmp_path, path):
    # The phases' mean and max age come from these sums and maxima; both paths keep them.
    text = (
        SLOWED.replace("faults:\n  - {at: 15s, tier: app, lose: 1}\n", "")
        .replace("  - {at: 15s, tier: jobs, slowdown: 4x}\n", "")
        .replace("service_time: 180ms,", "service_time: 100ms, blocking: false,")
    )
    model = capsim.build_model(load_scenario(write(tmp_path, text)))
    run = run_replication(model, 0, path=path)
    assert run.series is not None
    jobs = run.series.tiers[model.tier_index["jobs"]]
    assert jobs.age is not None and jobs.age_sum is not None and jobs.age_max is not None
    done = jobs.age.sum()
    assert done == pytest.approx(run.tiers[model.tier_index["jobs"]].age.n)
    # Every message waits nothing and works 100 ms: each bucket's mean and max are 100 ms.
    busy = jobs.age.sum(axis=1) > 0
    assert jobs.age_sum[busy] / jobs.age.sum(axis=1)[busy] == pytest.approx(0.1)
    assert jobs.age_max[busy] == pytest.approx(0.1)
