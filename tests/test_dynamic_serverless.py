"""Serverless tiers: instances start per request (cold start), idle ones go away (keep_warm)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.runner import choose_path
from capsim.model.types import Autoscale, Model
from capsim.scenario import validate_file
from modelkit import ProfilePoint, const, model, open_class, tier

runner = CliRunner()


def serverless(
    rate: float,
    concurrency: int = 1,
    profile: tuple[ProfilePoint, ...] = (),
    **settings: float,
) -> Model:
    # Clockwork: constant arrivals, 100 ms of work; the tier starts with no instance.
    m = model(
        [tier("fn", const(0.1), instances=1, concurrency=concurrency)],
        [open_class("web", 0, rate, arrivals="constant", profile=profile)],
        duration=60.0,
    )
    scaler = Autoscale(scale_to_zero=True, min=0, initial=0, **settings)  # type: ignore[arg-type]
    fn = replace(m.tiers[0], autoscale=scaler)
    return replace(m, tiers=(fn,), timeseries=True, timeseries_bucket=5.0)


def instances(m: Model) -> list[float]:
    report = summarise(m, [run_events(m, 0)], capsim_version="test").data
    series: list[float] = report["timeseries"]["tiers"]["fn"]["instances"]
    return series


def test_only_the_first_request_pays_the_cold_start_while_the_instance_stays_warm():
    # One request a second, keep_warm 5 s: the instance started for the request at 1 s (ready
    # at 1.8 s) never idles 5 s, so the other 58 requests find it warm.
    result = run_events(serverless(1.0, max=3, cold_start=0.8, keep_warm=5.0), 0)
    web = result.classes[0]
    assert result.tiers[0].cold_starts == 1
    assert web.latency.max == pytest.approx(0.9)  # 800 ms start + 100 ms of work
    assert web.latency.min == pytest.approx(0.1)
    assert web.completed == 59 and web.errors == 0


def test_after_keep_warm_idle_the_instance_goes_and_the_next_request_pays_again():
    # One request every 10 s against keep_warm 5 s: every request meets a cold tier.
    m = serverless(0.1, max=3, cold_start=0.8, keep_warm=5.0)
    result = run_events(m, 0)
    assert result.tiers[0].cold_starts == 5  # at 10, 20, ..., 50 s (60 s is the horizon)
    assert result.classes[0].latency.min == pytest.approx(0.9)
    # Started at 10 s, idle from 10.9 s, gone at 15.9 s: 5.9 instance-seconds per 10 s.
    series = instances(m)
    # Nothing runs before the first request; then 5 s of the 10-15 s bucket, 0.9 s of the next.
    assert series[:6] == pytest.approx([0.0, 0.0, 1.0, 0.18, 1.0, 0.18])


def test_requests_arriving_during_a_start_wait_for_it():
    # Concurrency 2, at most 2 instances: the request at 0.2 s starts instance A (ready at
    # 1.0 s) and the one at 0.4 s takes A's second slot, waiting for the same start; 0.6 s and
    # 0.8 s do the same with B. The request at 1.0 s finds every slot busy or promised and no
    # room for a third instance: it waits in the buffer for A's first free worker (1.1 s).
    m = serverless(5.0, concurrency=2, max=2, cold_start=0.8, keep_warm=60.0)
    result = run_events(m, 0)
    assert result.tiers[0].cold_starts == 2
    latency = result.classes[0].latency
    assert latency.max == pytest.approx(0.9)  # 0.2 s -> 1.1 s
    assert result.classes[0].errors == 0 and result.classes[0].completed == 299
    # One slot per instance and one instance: the second request queues behind the start.
    capped = run_events(serverless(5.0, concurrency=1, max=1, cold_start=0.8, keep_warm=60), 0)
    assert capped.tiers[0].cold_starts == 1
    assert capped.classes[0].errors == 0


def test_max_instances_caps_the_starts_and_the_rest_wait_in_the_buffer():
    # 50/s x 100 ms needs 5 instances; max 3 runs 3 at 100% and the backlog grows.
    m = serverless(50.0, max=3, cold_start=0.5, keep_warm=60.0)
    result = run_events(m, 0)
    assert result.tiers[0].cold_starts == 3
    series = instances(m)
    assert max(series) == pytest.approx(3.0) and series[-1] == 3.0
    assert result.tiers[0].queue_max > 1000


def test_the_tier_scales_to_zero_after_the_load_stops():
    # 20/s until 20 s, then nothing: every instance idles 5 s and goes.
    stop = (ProfilePoint(0.0, 20.0), ProfilePoint(20.0, 20.0), ProfilePoint(20.0, 0.0))
    series = instances(serverless(20.0, profile=stop, max=10, cold_start=0.2, keep_warm=5.0))
    assert series[1] >= 2.0  # 20/s x 100 ms: 2 busy workers, more while starting
    assert series[6:] == [0.0] * (len(series) - 6)  # from 30 s on: no instance


SCENARIO = """\
name: serverless
simulation: {{duration: 30s, warmup: 0s}}
traffic:
  web: {{entry: fn, rate: 20/s}}
tiers:
  fn:
    service_time: 50ms
    concurrency: 2
    autoscale: {{{autoscale}}}
"""


def write(tmp_path: Path, autoscale: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(autoscale=autoscale))
    return path


def test_a_serverless_scenario_runs_on_events_and_reports_its_cold_starts(tmp_path):
    path = write(
        tmp_path,
        "scale_to_zero: true, min: 0, max_instances: 4, cold_start: 800ms, keep_warm: 1min",
    )
    m = capsim.build_model(capsim.load_scenario(path))
    fn = m.tiers[0]
    assert fn.autoscale is not None and fn.autoscale.initial == 0 and fn.autoscale.max == 4
    assert choose_path(m)[1] == (
        "tier 'fn' is serverless, so its instances start and stop with its requests"
    )
    result = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tiers"]["fn"]["autoscale"]["cold_starts"] >= 1
    assert data["timeseries"]["tiers"]["fn"]["instances"][0] > 0


@pytest.mark.parametrize(
    ("autoscale", "path", "message"),
    [
        ("min: 0, max: 4", "tiers.fn.autoscale.min", "min: 0 needs scale_to_zero: true"),
        ("max: 4, cold_start: 1s", "tiers.fn.autoscale.cold_start", "add scale_to_zero"),
        (
            "scale_to_zero: true, max: 4, metric: rate",
            "tiers.fn.autoscale.metric",
            "scales per request",
        ),
        (
            "scale_to_zero: true, max: 4, max_instances: 4",
            "tiers.fn.autoscale.max_instances",
            "one",
        ),
        ("scale_to_zero: true, min: 0", "tiers.fn.autoscale.max", "or max_instances"),
        ("scale_to_zero: yes please, max: 4", "tiers.fn.autoscale.scale_to_zero", "yes please"),
        ("scale_to_zero: true, max: 4, cold_start: -1s", "tiers.fn.autoscale.cold_start", "-1s"),
        ("scale_to_zero: true, max: 4, keep_warm: soon", "tiers.fn.autoscale.keep_warm", "soon"),
        ("max: 4, cooldown: never", "tiers.fn.autoscale.cooldown", "never"),
    ],
)
def test_bad_serverless_settings_are_refused_with_their_location(
    tmp_path: Path, autoscale: str, path: str, message: str
) -> None:
    scenario = write(tmp_path, autoscale)
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_the_hpa_cooldown_holds_the_count_after_a_change():
    # As test_dynamic_autoscale's step down, with a 100 s cooldown: the scale-down advised from
    # 75 s waits until 115 s (100 s after the 15 s scale-up).
    profile = (ProfilePoint(0.0, 20.0), ProfilePoint(60.0, 20.0), ProfilePoint(60.0, 4.0))
    m = model(
        [tier("app", const(0.1), instances=2)],
        [open_class("web", 0, 20.0, arrivals="constant", profile=profile)],
        duration=200.0,
    )
    scaler = Autoscale(max=8, target=0.5, startup_time=10.0, scale_down_stabilization=0.0)
    app_tier = replace(m.tiers[0], autoscale=replace(scaler, cooldown=100.0))
    result = run_events(replace(m, tiers=(app_tier,)), 0)
    assert result.tiers[0].scaling == [(15.0, 2, 4), (120.0, 4, 1)]


def test_losing_instances_of_a_serverless_tier_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scale_to_zero: true, min: 0, max: 4")
    path.write_text(path.read_text() + "faults:\n  - {at: 5s, tier: fn, lose: 1}\n")
    problems = validate_file(path, [])
    assert [p.path for p in problems] == ["faults[0].lose"]
    assert "serverless" in problems[0].message
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_the_buffer_at_the_cap_has_a_bound_and_a_timeout():
    # One instance (max 1) of one worker: 5 requests/s of 100 ms work with an 800 ms start.
    # With max_queue 1 the buffer holds one request; more are refused at once.
    bounded = serverless(5.0, max=1, cold_start=0.8, keep_warm=60.0)
    fn = replace(bounded.tiers[0], max_queue=1)
    refused = run_events(replace(bounded, tiers=(fn,)), 0)
    assert refused.tiers[0].rejected > 0 and refused.classes[0].errors == refused.tiers[0].rejected
    # With a 300 ms timeout a request that waited that long for the start or in the buffer fails.
    timed = replace(bounded.tiers[0], timeout=0.3)
    result = run_events(replace(bounded, tiers=(timed,)), 0)
    assert result.tiers[0].timed_out >= 1  # the request at 0.2 s waited for the start until 0.5 s
    assert result.classes[0].latency.max <= 0.3 + 0.1 + 1e-9
