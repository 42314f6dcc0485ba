"""Faults: instances that die (alone or with their zone), error answers, slowdowns, health checks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import autoscaling, run_events
from capsim.engine.runner import choose_path
from capsim.model.types import Fault, HealthCheck, Model, Retry
from capsim.scenario import validate_file
from modelkit import Call, const, exp, model, open_class, tier

runner = CliRunner()


def with_faults(m: Model, *faults: Fault, bucket: float = 1.0) -> Model:
    return replace(m, faults=faults, timeseries=True, timeseries_bucket=bucket)


def four_instances(health_check: HealthCheck | None = None, service: float = 0.1) -> Model:
    # 20 requests a second, one every 50 ms, round robin over 4 instances of one worker: each
    # instance gets one every 200 ms and works 100 ms on it (50% busy, never a queue).
    m = model(
        [tier("app", const(service), instances=4)],
        [open_class("web", 0, 20.0, arrivals="constant")],
        duration=30.0,
    )
    return replace(m, tiers=(replace(m.tiers[0], health_check=health_check),))


def series_of(m: Model) -> dict:
    return summarise(m, [run_events(m, 0)], capsim_version="test").data["timeseries"]


def test_losing_one_of_four_instances_at_10s_raises_the_others_utilisation_by_four_thirds():
    m = with_faults(four_instances(), Fault(10.0, 20.0, 0, lose=(3,)))
    series = series_of(m)
    app_series = series["tiers"]["app"]
    assert app_series["instances"] == [4.0] * 10 + [3.0] * 10 + [4.0] * 10
    utilization = np.asarray(app_series["utilization"])
    assert utilization[1:10] == pytest.approx(0.5, abs=0.03)
    assert utilization[11:20].mean() == pytest.approx(0.5 * 4 / 3, rel=0.02)
    assert utilization[21:].mean() == pytest.approx(0.5, rel=0.02)
    # nothing was in flight at the dead instance, and no one was sent there
    assert sum(series["classes"]["web"]["error_rate"]) == 0.0


def test_whole_run_utilisation_is_over_live_instances():
    m = with_faults(four_instances(), Fault(0.0, None, 0, lose=(3,)))
    data = summarise(m, [run_events(m, 0)], capsim_version="test").data
    assert data["tiers"]["app"]["utilization"] == pytest.approx(2 / 3, rel=0.01)


def test_with_health_checks_requests_go_to_the_dead_instance_until_it_fails_enough_checks():
    # Dies at 10.5 s; checks at 11, 12, 13 s fail; balancing drops it at 13 s. Until then every
    # fourth request is refused by the dead instance; from 13 s none is.
    check = HealthCheck(interval=1.0, unhealthy_after=3)
    m = with_faults(four_instances(check), Fault(10.5, None, 0, lose=(3,)))
    errors = series_of(m)["classes"]["web"]["error_rate"]
    assert errors[:10] == [0.0] * 10
    assert errors[11] == pytest.approx(0.25) and errors[12] == pytest.approx(0.25)
    assert errors[13:] == [0.0] * 17


def test_a_revived_instance_gets_traffic_only_after_passing_its_health_checks():
    check = HealthCheck(interval=1.0, unhealthy_after=1, healthy_after=2)
    m = with_faults(four_instances(check), Fault(5.5, 15.5, 0, lose=(3,)))
    served = series_of(m)["tiers"]["app"]
    # Down from 5.5 s to 15.5 s. Checks at 16 and 17 s pass: routable again from 17 s, so in
    # [16 s, 17 s) it is live (counted) but idle, and the other three do the work.
    assert served["instances"][15] == 3.5 and served["instances"][16] == 4.0
    assert served["utilization"][16] == pytest.approx(0.75 * 0.5 * 4 / 3, abs=0.03)
    assert served["utilization"][18] == pytest.approx(0.5, abs=0.03)
    errors = series_of(m)["classes"]["web"]["error_rate"]
    assert errors[5] > 0 and errors[6:] == [0.0] * 24  # dropped at the 6 s check


def test_requests_in_a_dying_instance_fail_when_it_dies_and_its_unfinished_work_is_not_counted():
    # One instance, 1 s per request, a request every 0.8 s: at 10 s one is in service, maybe one
    # waits; both fail there. The instance's busy time stops at 10 s.
    m = model(
        [tier("app", const(1.0))],
        [open_class("web", 0, 1.25, arrivals="constant")],
        duration=20.0,
    )
    m = with_faults(m, Fault(10.0, None, 0, lose=(0,)))
    result = run_events(m, 0)
    web, app_run = result.classes[0], result.tiers[0]
    assert app_run.busy_time <= 10.0 + 1e-9
    assert web.errors == web.arrivals - web.completed  # everything after 10 s failed or was lost
    assert web.completed == pytest.approx(10.0 / 1.0, abs=1)
    assert app_run.live_worker_time == pytest.approx(10.0)


def test_an_error_rate_fault_with_retries_matches_the_amplification_oracle():
    # ORACLES section 9 with independent errors: p = 0.3, r = 3 -> 1.417 attempts, p^4 fail.
    retry = Retry(max=3, backoff="none")
    m = model(
        [
            tier("app", const(0.0), concurrency=1000, calls=(Call(1, retry=retry),)),
            tier("db", exp(0.002), concurrency=50),
        ],
        [open_class("web", 0, 300.0)],
        duration=60.0,
        warmup=1.0,
    )
    m = replace(m, faults=(Fault(0.0, None, 1, error_rate=0.3),))
    result = run_events(m, 0)
    web, db = result.classes[0], result.tiers[1]
    assert db.arrivals / web.arrivals == pytest.approx((1 - 0.3**4) / 0.7, rel=0.01)
    assert web.errors / web.arrivals == pytest.approx(0.3**4, abs=0.003)


def test_a_slowdown_multiplies_the_work_that_starts_while_it_lasts():
    m = with_faults(four_instances(service=0.05), Fault(10.0, 20.0, 0, slowdown=3.0))
    utilization = series_of(m)["tiers"]["app"]["utilization"]
    assert np.mean(utilization[1:10]) == pytest.approx(0.25, rel=0.02)
    assert np.mean(utilization[11:20]) == pytest.approx(0.75, rel=0.02)
    assert np.mean(utilization[21:]) == pytest.approx(0.25, rel=0.02)


def test_losing_one_of_four_raises_utilisation_by_four_thirds_within_noise():
    m = model(
        [tier("app", exp(0.01), instances=4, balancing="random")],
        [open_class("web", 0, 200.0)],
        duration=120.0,
    )
    m = with_faults(m, Fault(60.0, None, 0, lose=(0,)), bucket=10.0)
    utilization = series_of(m)["tiers"]["app"]["utilization"]
    before, after = np.mean(utilization[1:6]), np.mean(utilization[7:])
    assert after / before == pytest.approx(4 / 3, rel=0.05)


SCENARIO = """\
name: zones
simulation: {{duration: 20s, warmup: 0s}}
traffic:
  web: {{entry: app, rate: 100/s}}
tiers:
  app: {{instances: 6, concurrency: 4, service_time: 10ms, zones: [a, b, c], calls: [db]}}
  db: {{instances: 2, concurrency: 8, service_time: 2ms, zones: [a, b]}}
  events: {{type: queue, service_time: 1ms}}
faults:
{faults}
"""


def write(tmp_path: Path, faults: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(faults=faults))
    return path


def test_a_zone_fault_takes_that_zones_instances_of_every_tier(tmp_path: Path) -> None:
    path = write(tmp_path, "  - {at: 10s, zone: a, lose: true, for: 5s}")
    m = capsim.build_model(capsim.load_scenario(path))
    assert [(f.tier, f.lose, f.until) for f in m.faults] == [(0, (0, 3), 15.0), (1, (0,), 15.0)]
    assert m.faults[0].text == "zone a lost at 10s for 5s"
    assert choose_path(m)[0] == "events"
    result = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0
    import json

    data = json.loads(result.stdout)
    instances = data["timeseries"]["tiers"]["app"]["instances"]
    assert data["timeseries"]["bucket"] == 0.2
    assert instances[0] == pytest.approx(6.0) and instances[60] == pytest.approx(4.0)
    assert instances[-1] == pytest.approx(6.0)
    assert data["timeseries"]["tiers"]["db"]["instances"][60] == pytest.approx(1.0)


def test_a_share_of_instances_is_rounded_and_taken_from_the_last(tmp_path: Path) -> None:
    path = write(
        tmp_path, "  - {at: 1s, tier: app, lose: 50%}\n  - {at: 2s, tier: db, slowdown: 3x}"
    )
    m = capsim.build_model(capsim.load_scenario(path))
    assert m.faults[0].lose == (3, 4, 5) and m.faults[0].until is None
    assert m.faults[1].slowdown == 3.0


@pytest.mark.parametrize(
    ("fault", "path", "message"),
    [
        ("{at: 1s, tier: app, lose: 7}", "faults[0].lose", "app has 6 instance(s); lose at most 6"),
        ("{at: 1s, zone: d, lose: true}", "faults[0].zone", "unknown zone 'd' (zones: a, b, c)"),
        ("{at: 1s, tier: ap, lose: 1}", "faults[0].tier", "unknown tier 'ap'; did you mean 'app'?"),
        (
            "{at: 1s, tier: app, lose: 1, slowdown: 2x}",
            "faults[0]",
            "a fault has exactly one effect: lose, error_rate or slowdown (this one has lose and",
        ),
        ("{at: 1s, zone: a, slowdown: 2x}", "faults[0].lose", "write lose: true"),
        ("{at: 1s, tier: app, lose: true}", "faults[0].lose", "lose: true loses a zone"),
        ("{at: 1s, tier: app, slowdown: fast}", "faults[0].slowdown", "'fast' is not a factor"),
        ("{at: 1s, tier: app, lose: 150%}", "faults[0].lose", "'150%' is outside [0, 1]"),
        ("{at: 1s, tier: events, lose: 1}", "faults[0].lose", "events is a queue"),
        ("{tier: app, lose: 1}", "faults[0].at", "missing required key 'at'"),
        ("{at: 1s, lose: 1}", "faults[0]", "a fault names exactly one of tier:, zone: or region:"),
    ],
)
def test_bad_faults_are_refused_with_their_location(
    tmp_path: Path, fault: str, path: str, message: str
) -> None:
    scenario = write(tmp_path, f"  - {fault}")
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].line == 10
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_bad_zones_and_health_checks_are_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: z\ntraffic: {web: {entry: app, rate: 1/s}}\n"
        "tiers:\n  app: {service_time: 1ms, zones: [a, a], health_check: {interval: 0s}}\n"
    )
    problems = {p.path: p.message for p in validate_file(scenario, [])}
    assert "zone 'a' is listed twice" in problems["tiers.app.zones[1]"]
    assert "not greater than 0" in problems["tiers.app.health_check.interval"]


def test_a_fault_on_an_autoscaled_tier_revives_only_the_instances_the_autoscaler_counts(
    tmp_path, monkeypatch
):
    # Light load: the HPA goes from 6 to its min of 2 at 15 s. At 3 min a fault loses the 6
    # slots the tier started with: the 2 live ones die (the other 4 are switched off, and stay
    # so), and the HPA launches 2 elsewhere. When the fault ends at 4 min, the 2 it lost come
    # back (4 live), the HPA scales down to 2 again, and 2 instances are live to the end: no
    # switched-off slot is brought back by the fault's end.
    path = tmp_path / "lost.yaml"
    path.write_text(
        """\
name: lost
seed: 1
simulation: {duration: 10min, warmup: 0s, timeseries: 10s}
traffic:
  browse: {entry: app, rate: 5/s}
tiers:
  app:
    service_time: {dist: exponential, mean: 50ms}
    instances: 6
    autoscale: {min: 2, max: 16, target: 60%, scale_down_stabilization: 10s}
faults:
  - {at: 3min, tier: app, lose: 6, for: 1min}
"""
    )
    stations = []
    install = autoscaling.install
    monkeypatch.setattr(autoscaling, "install", lambda st: (install(st), stations.append(st)))
    result = capsim.run_file(path).data
    scaling = result["tiers"]["app"]["autoscale"]["scaling"]
    assert [(s["from"], s["to"]) for s in scaling] == [(6, 2), (0, 2), (4, 2)]
    live = result["timeseries"]["tiers"]["app"]["instances"]  # per 10 s bucket
    assert live[26:] == pytest.approx([2.0] * (len(live) - 26), abs=1e-9)
    # The instances that take requests at the end are the 2 the result counts and bills.
    assert sum(stations[-1].alive) == 2
