"""Stories of a saturation search that simulates only what decides its answer.

A pool of 4 workers at 10 ms saturates at 400/s. Most requests are `get`; one in twenty is a
`refund`, whose p99 has an objective. Far from its limit, that objective does not stretch the
search (its small-sample p99 cannot turn a verdict); near its limit it does. The confirmation
reuses the grid's points when the estimate lands where `solve` said, the knee counts only the
classes whose light-load p99 rests on enough values, and the verification is the run a user
makes with `capsim run --load RATE/s`.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.saturate import (
    CurvePoint,
    _tier_saturation,
    _tier_saturation_settled,
    find_saturation,
)
from capsim.cli.app import app

POOL = """\
name: refunds
seed: 6
simulation: {{duration: 20s, warmup: 2s, replications: 3}}
traffic:
  get: {{entry: api, rate: 380/s}}
  refund: {{entry: api, rate: 20/s}}
tiers:
  api:
    concurrency: 4
    service_time: {{dist: exponential, mean: 10ms}}
slos:
  - {{class: get, p99: 1s}}
  - {{class: refund, p99: {limit}}}
"""

SEARCH = 5.0  # seconds per search point (--duration)


def write(tmp_path: Path, limit: str) -> Path:
    path = tmp_path / "refunds.yaml"
    path.write_text(POOL.format(limit=limit))
    return path


def saturate(path: Path) -> dict[str, Any]:
    model = capsim.build_model(capsim.load_scenario(path))
    return find_saturation(model, capsim_version=capsim.__version__, duration=SEARCH)


def by_rate(result: dict[str, Any]) -> dict[float, dict[str, Any]]:
    return {round(point["rate"], 6): point for point in result["curve"]}


def test_an_objective_far_from_its_limit_does_not_stretch_the_search(tmp_path: Path) -> None:
    # refund p99 is about 50 ms against a 1 s limit (get's too): below half of it at every
    # stable point, so the answer is the ceiling below saturation.
    result = saturate(write(tmp_path, "1s"))
    points = by_rate(result)
    lightest, stable_side = points[40.0], points[360.0]
    others = [p for rate, p in points.items() if rate not in (40.0, 360.0)]
    assert others and all(p["duration"] == SEARCH for p in others)
    # The confirmation's stable side runs 20 relaxation times of the pool at 0.9x its
    # saturation as solve put it (1 / (400 (1 - sqrt(0.9))^2) = 0.95 s), at most 4x the
    # search length.
    assert result["analytic"]["saturation_rate"] == pytest.approx(400)
    relaxation = 1 / (400 * (1 - 0.9**0.5) ** 2)
    assert stable_side["duration"] == pytest.approx(min(20 * relaxation, 4 * SEARCH))
    assert stable_side["duration"] > 3 * SEARCH
    # The answer keeps its guarantees: below the ceiling, under 400/s, verified.
    best = result["max_rate_meeting_slos"]
    assert best is not None and best <= result["slo_ceiling"] < 400
    assert result["verification"]["meets_slos"] is True
    refund = next(s for s in result["slos"] if s["slo"].startswith("refund"))
    assert refund["passed"] is True and refund["observed"] < 0.5
    assert lightest["duration"] > SEARCH  # the knee's baseline (next story)


def test_an_objective_near_its_limit_stretches_every_point_for_its_values(
    tmp_path: Path,
) -> None:
    # refund p99 <= 60 ms: the light-load p99 (about 46 ms) is past half the limit, so the
    # objective decides and every stable point runs for 1.25 x 1,000 refunds per replication.
    result = saturate(write(tmp_path, "60ms"))
    stable = [p for p in result["curve"] if p["stable"]]
    for point in stable:
        refunds = point["classes"]["refund"]["offered_rate"] * point["duration"]
        assert refunds >= 0.95 * 1250  # Poisson arrivals: the expected count is 1,250
    verification = result["verification"]
    assert verification["duration"] >= 1250 / (20 / 400 * verification["rate"]) * 0.999
    refund = next(s for s in result["slos"] if s["slo"].startswith("refund"))
    assert refund["low_sample"] is False


def test_the_knee_baseline_runs_for_the_classes_it_can_afford_and_names_the_others(
    tmp_path: Path,
) -> None:
    result = saturate(write(tmp_path, "1s"))
    lightest = result["curve"][0]
    # At 40/s, get arrives at 38/s: 1,250 values over 3 replications take 11 s. refund (2/s)
    # would need 208 s, more than 10x the search length: it is left out of the knee.
    assert lightest["duration"] == pytest.approx(1250 / (38 * 3))
    # The arrivals are a Poisson count of mean 1,250 (standard deviation 35): 1,200 or more
    # held for 7 of 8 seeds; 4 standard deviations below the mean for any.
    arrived = lightest["classes"]["get"]["offered_rate"] * lightest["duration"] * 3
    assert arrived >= 1250 - 4 * 1250**0.5
    assert any(note.startswith("the knee leaves out class refund:") for note in result["notes"])
    assert result["knee_rate"] is not None and result["knee_rate"] <= result["saturation_rate"]


def test_the_grid_points_confirm_an_estimate_where_solve_put_it(tmp_path: Path) -> None:
    result = saturate(write(tmp_path, "1s"))
    assert result["saturation_rate"] == pytest.approx(400, rel=0.03)
    # Within 3% of 0.9x and 1.1x the estimate: the grid's 360/s and 440/s stand for them.
    assert result["confirmation"]["below"]["rate"] == pytest.approx(360.0)
    assert result["confirmation"]["above"]["rate"] == pytest.approx(440.0)
    assert result["confirmation"]["below"]["stable"] is True
    assert "saturation" not in result["search"]["runs_by_phase"]  # nothing more simulated


def test_the_search_counts_the_requests_it_simulated(tmp_path: Path) -> None:
    result = saturate(write(tmp_path, "1s"))
    search = result["search"]
    warmup_share = 2 / 20
    points = sum(
        p["rate"] * p["duration"] * (1 + warmup_share) * p["replications"] for p in result["curve"]
    )
    verification = result["verification"]
    verified = (
        verification["rate"]
        * verification["duration"]
        * (1 + warmup_share)
        * verification["replications"]
    )
    # Every point measured once (no re-runs here) and one verification.
    assert search["requests"] == pytest.approx(points + verified, abs=1)
    one_run = result["max_rate_meeting_slos"] * 22 * 3
    assert search["run_equivalents"] == pytest.approx(search["requests"] / one_run, rel=1e-4)


def test_the_verification_is_the_run_a_user_makes(tmp_path: Path) -> None:
    path = write(tmp_path, "1s")
    result = saturate(path)
    best = result["max_rate_meeting_slos"]
    verification = result["verification"]
    assert (verification["duration"], verification["replications"]) == (20.0, 3)
    run = CliRunner().invoke(app, ["run", str(path), "--load", f"{best!r}/s", "-f", "json"])
    assert run.exit_code == 0, run.output
    checked = {s["slo"]: s["observed"] for s in json.loads(run.stdout)["slos"]}
    for slo in result["slos"]:
        assert checked[slo["slo"]] == pytest.approx(slo["observed"], rel=1e-9)


def test_a_short_point_near_saturation_does_not_carry_the_secant() -> None:
    # A pool whose occupancy is rate / 1000. A short point at 950/s started with an empty queue
    # that was still filling: its occupancy reads 0.90, not 0.95. Through it and the long
    # 900/s point the secant is flat and the estimate lands at 950 / 0.9 = 1,056/s; without it,
    # the long 900/s point and the 700/s point (far from saturation) give 1,000/s.
    def point(rate: float, held: float, near: bool) -> CurvePoint:
        tier = {"utilization": held, "occupancy": held, "stable": True}
        report = SimpleNamespace(data={"tiers": {"pool": tier}})
        return CurvePoint(rate, rate / 100, SimpleNamespace(report=report, stable=True), near)  # type: ignore[arg-type]

    curve = [point(700, 0.70, False), point(900, 0.90, True), point(950, 0.90, False)]
    assert _tier_saturation(curve, "pool", 1.0, 0.02)["max_rate"] == pytest.approx(950 / 0.9)
    settled = _tier_saturation_settled(curve, "pool", 1.0, 0.02)
    assert settled["max_rate"] == pytest.approx(1000.0)
    low = settled["max_rate_low"]
    assert low is not None and low <= 1000.0 * (1 - 0.02)


def test_a_tier_holding_workers_while_they_wait_keeps_its_own_interval() -> None:
    # A partitioned queue's consumers hold their partition while they wait on a fan-out: the
    # share held (occupancy) is 0.69 at 3,013/s and 0.90 at 3,874/s while the share busy
    # (utilization) is only 0.17 and 0.22. The lower end of the share held is the occupancy's
    # own interval; taken as the held share less the utilization's lower end it read 0.12, the
    # steepest line through it was four times too steep, and the "at least" figure of a wall
    # at 4,305/s read 3,970/s.
    def point(rate: float, held: float, busy: float) -> CurvePoint:
        tier = {
            "occupancy": held,
            "utilization": busy,
            "stable": True,
            "ci95": {"occupancy": [held - 0.01, held + 0.01], "utilization": [busy - 0.05, busy + 0.05]},
        }
        report = SimpleNamespace(data={"tiers": {"events": tier}})
        return CurvePoint(rate, rate / 100, SimpleNamespace(report=report, stable=True), True)  # type: ignore[arg-type]

    below, last = point(3013, 0.69, 0.17), point(3874, 0.90, 0.22)
    assert below.occupancy_lower("events", 1.0) == pytest.approx(0.68)
    assert last.occupancy_upper("events", 1.0) == pytest.approx(0.91)
    found = _tier_saturation([below, last], "events", 1.0, 0.01)
    assert found["max_rate"] == pytest.approx(3874 + 0.10 / (0.21 / 861))
    # The steepest line the two intervals allow: from 0.68 up to 0.91 over the same 861/s
    # (4,211/s, above the estimate less the 1% precision: 4,241/s).
    assert found["max_rate_low"] == pytest.approx(3874 + 0.09 / (0.23 / 861))
