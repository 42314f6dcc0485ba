"""`capsim check --baseline` pairs its replications with the baseline's, as `compare` does.

A saved result used to keep only its 95% intervals, so `check` could only ask whether the two
runs' intervals were apart by more than the tolerance: a change smaller than a run's own noise
was never more than inconclusive. Run with the baseline's seed and number of replications, the
check's replications draw the same random numbers as the baseline's (common random numbers):
most of the noise is the same in both and cancels in each replication's change. The result now
keeps each compared figure per replication (`per_replication`), and the check judges such a
figure by the paired 95% interval of its change (docs/ci.md#pairing-with-the-baseline).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from capsim.analysis.check import compare_paired
from capsim.cli.app import app

runner = CliRunner()
PLAIN_ENV: dict[str, str | None] = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None}

#: One web tier 70% busy; five replications of a minute.
SHOP = """\
name: shop
seed: 11
simulation: {duration: 60s, warmup: 5s, replications: 5}
traffic:
  browse: {entry: app, rate: 70/s}
tiers:
  app: {service_time: {dist: exponential, mean: 10ms}}
"""
#: The pull request: a release whose requests take 5% longer.
SLOWER = "tiers.app.service_time={dist: exponential, mean: 10.5ms}"
LATENCIES = ("latency.mean", "latency.p50", "latency.p95", "latency.p99")


def invoke(args: list[str]) -> Result:
    return runner.invoke(app, args, env=PLAIN_ENV)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.yaml"
    path.write_text(SHOP)
    return path


@pytest.fixture(scope="module")
def baseline(scenario: Path) -> Path:
    path = scenario.parent / "baseline.json"
    result = invoke(["run", str(scenario), "--format", "json", "--output", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def old_baseline(baseline: Path) -> Path:
    """The same baseline as an older capsim saved it: no per-replication figures."""
    data = json.loads(baseline.read_text())
    del data["per_replication"]
    path = baseline.parent / "old-baseline.json"
    path.write_text(json.dumps(data))
    return path


def check(scenario: Path, baseline: Path, *extra: str) -> dict:
    result = invoke(
        ["check", str(scenario), "--baseline", str(baseline), "--format", "json", *extra]
    )
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def by_figure(outcome: dict) -> dict[str, dict]:
    return {r["check"]: r for r in outcome["regressions"]}


def test_a_result_keeps_each_compared_figure_per_replication(baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    kept = data["per_replication"]
    assert set(kept["classes"]["browse"]) == {*LATENCIES, "throughput", "error_rate"}
    assert set(kept["tiers"]["app"]) == {"utilization", "occupancy"}
    for values in [*kept["classes"]["browse"].values(), *kept["tiers"]["app"].values()]:
        assert len(values) == 5
    # The same estimates the intervals are taken from: their mean is the interval's centre.
    p99 = kept["classes"]["browse"]["latency.p99"]
    low, high = data["classes"]["browse"]["ci95"]["latency.p99"]
    assert sum(p99) / 5 == pytest.approx((low + high) / 2)


def test_pairing_catches_a_5_percent_slower_release_that_the_intervals_cannot(
    scenario: Path, baseline: Path, old_baseline: Path
) -> None:
    # 5% more work per request at 70% busy: every latency figure 16-21% higher, beyond the
    # 10% tolerance, but each run's own p99 interval is about +-18% wide: the two intervals
    # overlap, and without pairing every latency figure is only inconclusive.
    unpaired = by_figure(check(scenario, old_baseline, "--set", SLOWER))
    paired = by_figure(check(scenario, baseline, "--set", SLOWER))
    for figure in LATENCIES:
        name = f"class browse {figure}"
        assert unpaired[name]["status"] == "inconclusive" and unpaired[name]["paired"] is False
        assert paired[name]["paired"] is True and paired[name]["status"] != "pass"
        assert "replications paired with the baseline's" in paired[name]["reason"]
        # Each replication draws the same arrivals and (5% longer) services as the baseline's:
        # the change is certainly a slowdown, its interval above zero.
        low, high = paired[name]["change_ci95"]
        assert 0 < low < high
    # The central figures barely vary between replications: their intervals lie beyond the
    # tolerance. (A tail percentile of five one-minute runs varies more: over seeds, the p95 or
    # the p99 needs about ten replications to be caught too.)
    for figure in ("latency.mean", "latency.p50"):
        name = f"class browse {figure}"
        assert paired[name]["status"] == "regressed"
        assert paired[name]["baseline"] * 0.10 < paired[name]["change_ci95"][0]
    # Utilization rose 5%: within the tolerance, paired or not.
    assert paired["tier app utilization"]["status"] == "pass"
    assert paired["tier app utilization"]["change"] == pytest.approx(0.05, abs=0.005)


def test_an_older_baseline_is_compared_by_its_intervals_with_a_note(
    scenario: Path, old_baseline: Path
) -> None:
    outcome = check(scenario, old_baseline)
    assert outcome["passed"] is True  # the unchanged scenario: every change 0
    [note] = [n for n in outcome["notes"] if "per-replication" in n]
    assert note.startswith(
        "The baseline keeps no per-replication figures (a result of an older capsim)"
    )
    assert "Refresh the baseline" in note


def test_the_unchanged_scenario_pairs_exactly(scenario: Path, baseline: Path) -> None:
    outcome = check(scenario, baseline)
    assert outcome["passed"] is True and outcome["exit_code"] == 0
    for regression in outcome["regressions"]:
        assert regression["paired"] is True
        assert regression["change_ci95"] == [0.0, 0.0]
    assert not any("per-replication" in n or "not paired" in n for n in outcome["notes"])


def test_another_seed_is_not_paired_and_the_check_says_why(scenario: Path, baseline: Path) -> None:
    outcome = check(scenario, baseline, "--seed", "12")
    assert not any(r["paired"] for r in outcome["regressions"])
    [note] = [n for n in outcome["notes"] if "not paired" in n]
    assert note.startswith(
        "This run (seed 12, 5 replications) does not share its random numbers with the "
        "baseline (seed 11, 5 replications)"
    )


def test_a_damaged_per_replication_record_falls_back_to_the_intervals(
    scenario: Path, baseline: Path
) -> None:
    data = json.loads(baseline.read_text())
    data["per_replication"]["classes"]["browse"]["latency.p99"] = ["fast", 1, 2, 3, 4]
    data["per_replication"]["tiers"] = "lost"
    damaged = baseline.parent / "damaged.json"
    damaged.write_text(json.dumps(data))
    figures = by_figure(check(scenario, damaged))
    assert figures["class browse latency.p99"]["paired"] is False
    assert figures["tier app utilization"]["paired"] is False
    assert figures["class browse latency.p50"]["paired"] is True


# ---- the rule, on its own --------------------------------------------------------------------
def test_the_paired_rule_needs_the_change_s_whole_interval_beyond_the_tolerance() -> None:
    # Baseline 100, tolerance 10%: a change must exceed 10 to be beyond tolerance.
    steady = compare_paired(100.0, 115.0, [15.0, 14.0, 16.0], higher_is_worse=True, tolerance=0.1)
    assert steady is not None and steady[0].status == "regressed"
    noisy = compare_paired(100.0, 115.0, [15.0, 2.0, 28.0], higher_is_worse=True, tolerance=0.1)
    assert noisy is not None and noisy[0].status == "inconclusive"
    within = compare_paired(100.0, 108.0, [8.0, 8.0, 8.0], higher_is_worse=True, tolerance=0.1)
    assert within is not None and within[0].status == "pass"
    # Lower is worse (throughput): the change must lie wholly below -10.
    fell = compare_paired(100.0, 85.0, [-15.0, -14.0, -16.0], higher_is_worse=False, tolerance=0.1)
    assert fell is not None and fell[0].status == "regressed"
    assert compare_paired(100.0, 115.0, [15.0], higher_is_worse=True, tolerance=0.1) is None


# ---- compare pairs with saved results too ----------------------------------------------------
def test_compare_pairs_a_scenario_with_a_saved_result_of_the_same_seed(
    scenario: Path, baseline: Path, old_baseline: Path
) -> None:
    # The same release, compared with `capsim compare BASELINE.json RELEASE.yaml`: paired
    # through the saved per-replication figures, its p99 change is significant; against the
    # older result it is judged by the two intervals and is not.
    release = scenario.parent / "release.yaml"
    release.write_text(SHOP.replace("mean: 10ms", "mean: 10.5ms"))

    def p99(against: Path) -> dict:
        result = invoke(["compare", str(against), str(release), "--format", "json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        return {"paired": data["paired"], **data["classes"]["browse"]["latency.p99"]}

    paired, unpaired = p99(baseline), p99(old_baseline)
    assert paired["paired"] is True and paired["significant"] is True
    assert paired["method"] == "paired t over replications (common random numbers)"
    assert unpaired["paired"] is False and unpaired["significant"] is False
    assert paired["diff"] == pytest.approx(unpaired["diff"])  # the same runs, judged two ways
