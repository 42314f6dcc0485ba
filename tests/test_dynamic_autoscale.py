"""Autoscaling: the Kubernetes HPA's rule, sync by sync, with its lags and its stabilisation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import _hpa_recommendation, run_events
from capsim.engine.runner import choose_path
from capsim.model.types import Autoscale, Model
from capsim.scenario import validate_file
from modelkit import ProfilePoint, const, model, open_class, tier

runner = CliRunner()


def scaled(scaler: Autoscale, profile: tuple[ProfilePoint, ...], instances: int = 2) -> Model:
    # Clockwork: constant arrivals, 100 ms of work, one worker per instance, round robin.
    m = model(
        [tier("app", const(0.1), instances=instances)],
        [open_class("web", 0, profile[0].rate, arrivals="constant", profile=profile)],
        duration=200.0,
    )
    app_tier = replace(m.tiers[0], autoscale=scaler)
    return replace(m, tiers=(app_tier,), timeseries=True, timeseries_bucket=5.0)


STEP_DOWN = (ProfilePoint(0.0, 20.0), ProfilePoint(60.0, 20.0), ProfilePoint(60.0, 4.0))


def test_the_hpa_doubles_two_busy_instances_at_the_first_sync_and_they_serve_after_startup():
    # 20/s x 100 ms = 2 workers' worth: two instances at ~100% against a 50% target. At 15 s
    # the ratio is 1.993: desired = ceil(2 x 1.993) = 4. The two new ones serve from 25 s.
    scaler = Autoscale(max=8, target=0.5, startup_time=10.0, scale_down_stabilization=60.0)
    m = scaled(scaler, STEP_DOWN)
    result = run_events(m, 0)
    assert result.tiers[0].scaling[0] == (15.0, 2, 4)
    series = summarise(m, [result], capsim_version="test").data["timeseries"]["tiers"]["app"]
    instances, utilization = series["instances"], series["utilization"]
    assert instances[:3] == [2.0, 2.0, 2.0] and instances[3] == 4.0  # billed while starting
    # 15-25 s: the old two still do all the work, over four instances' capacity
    assert utilization[3] == pytest.approx(0.5) and utilization[4] == pytest.approx(0.5)
    busy_per_bucket = np.asarray(utilization) * np.asarray(instances) * 5.0
    assert busy_per_bucket[5:12] == pytest.approx([10.0] * 7, rel=0.01)  # 2 workers' worth


def test_scale_down_waits_for_the_stabilisation_window_then_follows_the_highest_recent_advice():
    # The load drops to 4/s at 60 s: from the 75 s sync on, each sync advises 1 instance
    # (ratio 0.2). The 60 s window still holds the 60 s advice of 4 until 135 s.
    scaler = Autoscale(max=8, target=0.5, startup_time=10.0, scale_down_stabilization=60.0)
    result = run_events(scaled(scaler, STEP_DOWN), 0)
    assert result.tiers[0].scaling == [(15.0, 2, 4), (135.0, 4, 1)]


def test_without_a_scale_down_window_the_hpa_follows_the_load_down_at_the_next_sync():
    scaler = Autoscale(max=8, target=0.5, startup_time=10.0, scale_down_stabilization=0.0)
    result = run_events(scaled(scaler, STEP_DOWN), 0)
    assert result.tiers[0].scaling == [(15.0, 2, 4), (75.0, 4, 1)]


def test_a_scale_up_is_capped_at_double_or_four_more_per_sync():
    # 60/s against 6/s per instance on one instance: advice 10 (the max); the policy allows
    # max(2 x 1, 1 + 4) = 5 at 15 s, then max(2 x 5, 5 + 4) = 10 at 30 s. (By utilisation the
    # HPA could not see the demand: one saturated instance reads 100%, advice ceil(1/0.6) = 2.)
    scaler = Autoscale(max=10, metric="rate", target=6.0, startup_time=5.0)
    profile = (ProfilePoint(0.0, 60.0),)
    result = run_events(scaled(scaler, profile, instances=1), 0)
    assert result.tiers[0].scaling[:2] == [(15.0, 1, 5), (30.0, 5, 10)]


def test_removed_instances_drain_their_work_before_they_go() -> None:
    # The scale-down at 75 s removes three instances; each finishes what it holds first, so no
    # request fails.
    scaler = Autoscale(max=8, target=0.5, startup_time=10.0, scale_down_stabilization=0.0)
    m = scaled(scaler, STEP_DOWN)
    result = run_events(m, 0)
    web = result.classes[0]
    assert web.errors == 0
    assert web.completed == web.arrivals or web.arrivals - web.completed <= 1  # the last one


@pytest.mark.parametrize(
    ("total", "ready", "starting", "current", "expected"),
    [
        (1.0, 2, 0, 2, 2),  # ratio 1.0: nothing to do
        (1.08, 2, 0, 2, 2),  # ratio 1.08: inside the 10% tolerance
        (1.3, 2, 0, 2, 3),  # ratio 1.3: ceil(2.6)
        (1.0, 4, 0, 4, 2),  # ratio 0.5: ceil(2.0)
        (1.02, 4, 0, 4, 3),  # ratio 0.51: ceil(2.04), the HPA rounds up
        (2.0, 2, 2, 4, 4),  # scaling up with 2 starting: they count as idle, 2/(4 x 0.5) = 1
        (3.0, 2, 2, 4, 6),  # damped ratio 1.5: ceil(1.5 x 4)
        (1.0, 0, 3, 3, 3),  # no ready instance: no metric, no change
    ],
)
def test_the_recommendation_follows_the_replica_calculator(
    total: float, ready: int, starting: int, current: int, expected: int
) -> None:
    scaler = Autoscale(max=20, target=0.5)
    assert _hpa_recommendation(scaler, total, ready, starting, current) == expected


SCENARIO = """\
name: hpa
simulation: {{duration: 60s, warmup: 0s}}
traffic:
  web: {{entry: app, rate: 40/s}}
tiers:
  app:
    service_time: 50ms
    {extra}autoscale: {{{autoscale}}}
"""


def write(tmp_path: Path, autoscale: str, extra: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(autoscale=autoscale, extra=extra))
    return path


def test_an_autoscaled_scenario_starts_at_min_runs_on_events_and_reports_its_scaling(tmp_path):
    path = write(tmp_path, "metric: rate, target: 10/s, min: 2, max: 6, startup_time: 5s")
    # 35/s, not 40/s: a measured rate near 40/s rounds up to 5 instances or not by noise alone.
    path.write_text(path.read_text().replace("rate: 40/s", "rate: 35/s"))
    m = capsim.build_model(capsim.load_scenario(path))
    app_tier = m.tiers[0]
    assert app_tier.instances == 2
    assert app_tier.autoscale == Autoscale(
        max=6, metric="rate", target=10.0, min=2, startup_time=5.0
    )
    assert choose_path(m) == (
        "events",
        "tier 'app' autoscales, so its instances change with its load",
    )
    result = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    # 35/s at 10/s per instance: 2 -> ceil(3.5) = 4 at the first sync
    assert data["tiers"]["app"]["autoscale"]["scaling"][0] == {"t": 15.0, "from": 2, "to": 4}
    assert data["timeseries"]["tiers"]["app"]["instances"][-1] == 4.0


@pytest.mark.parametrize(
    ("autoscale", "extra", "path", "message"),
    [
        ("max: 4, target: 150%", "", "tiers.app.autoscale.target", "outside [0, 1]"),
        ("max: 4, metric: rate, target: 50%", "", "tiers.app.autoscale.target", "rate"),
        ("max: 4, metric: cpu", "", "tiers.app.autoscale.metric", "unknown metric 'cpu'"),
        ("min: 5, max: 4", "", "tiers.app.autoscale.max", "min (5) is greater than max (4)"),
        ("target: 50%", "", "tiers.app.autoscale.max", "autoscale needs max:"),
        ("max: 4", "instances: 9\n    ", "tiers.app.instances", "outside autoscale's range 1..4"),
        ("max: 4, max_scale_up: lots", "", "tiers.app.autoscale.max_scale_up", "lots"),
    ],
)
def test_bad_autoscale_settings_are_refused_with_their_location(
    tmp_path: Path, autoscale: str, extra: str, path: str, message: str
) -> None:
    scenario = write(tmp_path, autoscale, extra)
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output
