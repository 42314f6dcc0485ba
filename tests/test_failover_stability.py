"""A surviving region that takes a lost region's clients is busier, not overloaded.

An invoicing API runs in eu-west (55% of the clients) and us-east (45%); eu-west is lost 30 s
into the run and DNS moves its clients to us-east between 60 s and 120 s. us-east's 6 API
instances of 4 workers then carry all the traffic: at 472.7 requests/s they are about 90%
occupied (the utilization law puts their saturation near 525/s), and their queue steps up from
about 0 to a steady level near 18. That step once read as a queue growing through the window:
the run said `api@us-east is OVERLOADED ... offered 358.6/s, capacity 526.4/s`, and `saturate`
put the survivor's wall at 462.8/s, below the load where it held.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from capsim.analysis.stats import queue_trend, settled_at_end
from capsim.cli.app import app

runner = CliRunner()

TWO_REGIONS = """\
name: saas-api-outage
seed: 3
simulation: {duration: 3min, warmup: 10s}
regions:
  eu-west: {share: 55%, rtt: {us-east: 80ms}}
  us-east: {share: 45%}
routing: {policy: geo, health_check: 30s, dns_ttl: 60s}
traffic:
  read: {entry: gw, rate: 400/s}
  write: {entry: gw, rate: 60/s}
tiers:
  gw: {type: load_balancer, concurrency: 256, backends: api}
  api:
    instances: 6
    concurrency: 4
    service_time: {dist: lognormal, mean: 40ms, cv: 1.0}
    calls: [cache]
    classes:
      write:
        service_time: {dist: lognormal, mean: 60ms, cv: 1.0}
        calls: [{tier: db, write: true}]
  cache: {type: cache, instances: 2, concurrency: 8, hit_ratio: 85%, on_miss: db}
  db:
    type: database
    primary: us-east
    replicas: 2
    concurrency: 16
    read_ratio: 100%
    service_time: {dist: exponential, mean: 5ms}
    classes:
      write: {service_time: {dist: exponential, mean: 12ms}, read_ratio: 0%}
faults:
  - {at: 30s, region: eu-west}
"""


def survivor(tmp_path: Path, load: str) -> dict:
    path = tmp_path / "outage.yaml"
    path.write_text(TWO_REGIONS)
    result = runner.invoke(app, ["run", str(path), "--load", load, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)["tiers"]["api@us-east"]


def test_the_survivor_at_90_percent_after_the_move_is_stable(tmp_path: Path) -> None:
    api = survivor(tmp_path, "472.7/s")
    assert api["peak"]["occupancy"]["value"] == pytest.approx(0.91, abs=0.03)
    assert api["stable"] and api["growth_rate"] == 0.0


def test_the_survivor_past_its_capacity_after_the_move_is_still_overloaded(tmp_path: Path) -> None:
    # 560/s after the move is past the ~525/s the utilization law gives: the queue keeps
    # climbing through the final quarter, and the run says so.
    api = survivor(tmp_path, "560/s")
    assert not api["stable"] and api["growth_rate"] > 0


TIMES = np.linspace(10.0, 190.0, 50)


def test_a_queue_that_stepped_up_to_a_new_level_has_settled() -> None:
    # Empty until the move (t = 100 s), then hovering around 18: a rise over the window, flat
    # at the end.
    rng = np.random.default_rng(1)
    trace = np.where(TIMES < 100.0, 0.0, 18.0 + rng.normal(0.0, 5.0, TIMES.size).clip(-18, None))
    trend = queue_trend(TIMES, trace)
    assert trend is not None and trend.growing
    assert settled_at_end(trace, trend)


def test_a_queue_that_keeps_growing_after_the_move_has_not_settled() -> None:
    # From the move on the backlog grows by 1 request a second, with the same scatter.
    rng = np.random.default_rng(1)
    rise = np.where(TIMES < 100.0, 0.0, TIMES - 100.0)
    trace = (rise + rng.normal(0.0, 5.0, TIMES.size)).clip(0, None)
    trend = queue_trend(TIMES, trace)
    assert trend is not None and trend.growing
    assert not settled_at_end(trace, trend)


def test_an_overloaded_survivor_gives_no_saturation_estimate_from_the_window_mix(
    tmp_path: Path,
) -> None:
    # Over the window the survivor got 76% of the open requests, after the move all of them:
    # "at this mix it saturates near 695.0/s" was the window's mix, not the survivor's wall.
    path = tmp_path / "outage.yaml"
    path.write_text(TWO_REGIONS)
    result = runner.invoke(app, ["run", str(path), "--load", "560/s", "--format", "json"])
    data = json.loads(result.stdout)
    (failure,) = [f for f in data["overloaded"] if f["tier"] == "api@us-east"]
    assert failure["saturation_rate"] is None
    assert failure["capacity"] == pytest.approx(525, rel=0.05)
    assert not any("at this mix" in w for w in data["warnings"])


EXAMPLE = Path(__file__).parents[1] / "scenarios" / "saas-regions.yaml"
LOSE_EU = ["--set", "faults=[{at: 30s, region: eu-west}]", "--set", "simulation.duration=3min"]


def test_the_bundled_saas_example_costs_its_hand_arithmetic_per_region() -> None:
    result = runner.invoke(app, ["run", str(EXAMPLE), "--format", "json"])
    assert result.exit_code == 0, result.output
    cost = json.loads(result.stdout)["cost"]
    for region in ("eu-west", "us-east"):
        # A reserved base of 4 at 37% off and 2 spot instances at 65% off, in each region.
        api = cost["tiers"][f"api@{region}"]
        assert api["instances_per_hour"] == pytest.approx(4 * 0.34 * 0.63 + 2 * 0.34 * 0.35)
        assert cost["tiers"][f"db@{region}"]["per_hour"] == pytest.approx(3 * 0.96)
    # Egress: 40 KB reads and 4 KB writes, each region's share of 400/s and 60/s (measured).
    egress = cost["tiers"]["gw@eu-west"]["gb_per_hour"] + cost["tiers"]["gw@us-east"]["gb_per_hour"]
    assert egress == pytest.approx((400 * 40e3 + 60 * 4e3) * 3600 / 1e9, rel=0.02)
    assert cost["total_per_hour"] == pytest.approx(14.0, rel=0.01)


def test_the_bundled_example_losing_eu_west_puts_all_460_per_second_on_us_east() -> None:
    # The utilization law: (400 x 40 ms + 60 x 60 ms) / 24 workers = 81.7%, and Little's law
    # on the queue the formulas give.
    result = runner.invoke(app, ["solve", str(EXAMPLE), *LOSE_EU, "--format", "json"])
    api = json.loads(result.stdout)["tiers"]["api@us-east"]
    assert api["offered_rate"] == pytest.approx(460.0)
    assert api["utilization"] == pytest.approx((400 * 0.040 + 60 * 0.060) / 24)
    assert api["queue_length"]["mean"] == pytest.approx(460.0 * api["wait"]["mean"])


def test_a_lost_region_pays_no_egress_for_the_requests_it_refused() -> None:
    # eu-west is lost at 30 s of a 190 s run; until DNS has moved its clients its requests are
    # refused at once and get no 40 KB answer. Egress is billed on the answers sent.
    result = runner.invoke(app, ["run", str(EXAMPLE), *LOSE_EU, "--format", "json"])
    data = json.loads(result.stdout)
    gw = data["cost"]["tiers"]["gw@eu-west"]
    answered = data["classes"]["read@eu-west"]["throughput"] * 40e3
    answered += data["classes"]["write@eu-west"]["throughput"] * 4e3
    assert data["classes"]["read@eu-west"]["error_rate"] > 0.5
    assert gw["gb_per_hour"] == pytest.approx(answered * 3600 / 1e9)
    assert gw["transfer_per_hour"] == pytest.approx(0.09 * gw["gb_per_hour"])


def test_saturate_does_not_judge_the_copies_of_a_region_lost_for_the_rest_of_the_run(
    tmp_path: Path,
) -> None:
    # api@eu-west serves 20 s of the 180 s window before eu-west is lost: a secant through
    # those seconds' share held once put its saturation at 609.5/s (775/s without the fault),
    # and a forecast dated it. It is not judged, with a note; us-east's copies are.
    from capsim import build_model, load_scenario
    from capsim.analysis.saturate import _leave_out_lost_tiers

    path = tmp_path / "outage.yaml"
    path.write_text(TWO_REGIONS)
    model = build_model(load_scenario(path))
    tiers = {tier.name: {"max_rate": 600.0, "max_rate_low": 590.0} for tier in model.tiers}
    notes: list[str] = []
    _leave_out_lost_tiers(tiers, model, notes)
    assert tiers["api@eu-west"]["max_rate"] is None and tiers["db@eu-west"]["max_rate"] is None
    assert tiers["api@us-east"] == {"max_rate": 600.0, "max_rate_low": 590.0}
    assert any(n.startswith("tier api@eu-west is lost at 30s until the end") for n in notes)


def test_a_forecast_says_not_measured_rather_than_not_inside_the_horizon() -> None:
    from capsim.outputs.forecast import forecast_sentences

    data = {
        "scenario": "s", "from": "2027-01-01", "until": "2028-01-01", "offered_rate": 460.0,
        "growth": {"monthly": 0.06, "source": "--growth 6%/month", "fit": None}, "events": [],
        "first_slo_breach": {"date": None, "slo": None, "saturation": None, "rate": None,
                             "by_event": None, "determined": False},
        "tiers": {
            "api@us-east": {"saturation_rate": 513.0, "saturates_on": "2027-03-27", "by_event": None},
            "db@us-east": {"saturation_rate": 12386.0, "saturates_on": None, "by_event": None},
            "api@eu-west": {"saturation_rate": None, "saturates_on": None, "by_event": None},
        },
        "plan": [], "saturation": {}, "notes": [],
    }  # fmt: skip
    sentences = forecast_sentences(data)
    assert "Not saturated before 2028-01-01: db@us-east." in sentences
    assert "No saturation rate measured (see the notes): api@eu-west." in sentences
