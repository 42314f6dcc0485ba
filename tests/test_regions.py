"""Regions and global routing (docs/regions.md): copies of tiers per region, calls that pay the
round trip, writes to the primary region, DNS shares, and a lost region's clients moving after
the health check and the DNS TTL. Service times are constant and workers plentiful, so every
latency below is a sum written by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.points import open_rate
from capsim.cli.app import app
from capsim.engine.runner import choose_path
from capsim.errors import ScenarioError
from capsim.scenario import load_scenario

runner = CliRunner()

TWO_REGIONS = """\
version: 1
name: two-regions
seed: 3
simulation: {duration: 40s, warmup: 2s}
regions:
  eu: {rtt: {us: 70ms}}
  us: {}
traffic:
  orders: {entry: app, rate: 40/s}
  reads: {entry: app, rate: 40/s}
tiers:
  app:
    concurrency: 200
    blocking: false
    service_time: 10ms
    classes:
      orders: {calls: [{tier: db, write: true, repeat: 3}]}
      reads: {calls: [{tier: db, repeat: 3}]}
  db:
    type: database
    primary: eu
    concurrency: 200
    service_time: 5ms
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def mean_latency(report: capsim.Report, name: str) -> float:
    return float(report.data["classes"][name]["latency"]["mean"])


def test_writes_from_the_other_region_pay_the_round_trip_on_every_call(tmp_path):
    # Own work 10 ms, then 3 writes of 5 ms each at the primary (eu): 25 ms in eu. From us each
    # write crosses the 70 ms round trip: 25 + 3 x 70 = 235 ms.
    model = capsim.build_model(load_scenario(write(tmp_path, TWO_REGIONS)))
    report = capsim.simulate(model, engine="events")
    assert mean_latency(report, "orders@eu") == pytest.approx(0.025, abs=1e-9)
    assert mean_latency(report, "orders@us") == pytest.approx(0.025 + 3 * 0.070, abs=1e-9)


@pytest.mark.parametrize("engine", ["events", "vectorised"])
def test_both_engine_paths_add_the_round_trip_of_a_write(tmp_path, engine):
    # One write (the vectorised path takes no sequential calls to one tier): 15 ms, + 70 ms.
    text = TWO_REGIONS.replace("repeat: 3}]}\n      reads", "repeat: 1}]}\n      reads")
    text = text.replace("  reads: {entry: app, rate: 40/s}\n", "").replace(
        "      reads: {calls: [{tier: db, repeat: 3}]}\n", ""
    )
    model = capsim.build_model(load_scenario(write(tmp_path, text)))
    report = capsim.simulate(model, engine=engine)
    assert report.data["engine"]["path"] == engine
    assert mean_latency(report, "orders@eu") == pytest.approx(0.015, abs=1e-9)
    assert mean_latency(report, "orders@us") == pytest.approx(0.015 + 0.070, abs=1e-9)


def test_reads_stay_in_their_own_region():
    # A call without write: goes to the caller's region's copy: no round trip anywhere.
    model = capsim.build_model(load_scenario_text(TWO_REGIONS))
    report = capsim.simulate(model)
    assert mean_latency(report, "reads@eu") == pytest.approx(0.025, abs=1e-9)
    assert mean_latency(report, "reads@us") == pytest.approx(0.025, abs=1e-9)


def test_a_tier_in_several_regions_becomes_one_copy_per_region():
    model = capsim.build_model(load_scenario_text(TWO_REGIONS))
    assert [t.name for t in model.tiers] == ["app@eu", "app@us", "db@eu", "db@us"]
    assert [c.name for c in model.classes] == ["orders@eu", "orders@us", "reads@eu", "reads@us"]
    # Equal shares by default: each region's clients send half of every class.
    assert [c.rate for c in model.classes] == [20.0, 20.0, 20.0, 20.0]


def test_the_database_copy_outside_its_primary_region_serves_reads_only():
    text = TWO_REGIONS.replace(
        "    service_time: 5ms\n", "    service_time: 5ms\n    read_ratio: 70%\n"
    )
    model = capsim.build_model(load_scenario_text(text))
    assert [w.read_ratio for w in model.tier("db@eu").work] == [0.7] * 4
    assert [w.read_ratio for w in model.tier("db@us").work] == [1.0] * 4


def test_a_tier_in_one_region_is_reached_from_the_others_across_the_network():
    # search lives in us only: eu's app pays 70 ms to reach it, us's app nothing.
    text = TWO_REGIONS.replace(
        "      reads: {calls: [{tier: db, repeat: 3}]}\n",
        "      reads: {calls: [search]}\n",
    ) + ("  search:\n    regions: [us]\n    concurrency: 200\n    service_time: 20ms\n")
    model = capsim.build_model(load_scenario_text(text))
    report = capsim.simulate(model)
    assert mean_latency(report, "reads@eu") == pytest.approx(0.010 + 0.070 + 0.020, abs=1e-9)
    assert mean_latency(report, "reads@us") == pytest.approx(0.010 + 0.020, abs=1e-9)


def test_region_shares_split_every_class():
    text = TWO_REGIONS.replace(
        "  eu: {rtt: {us: 70ms}}\n  us: {}\n",
        ("  eu: {share: 75%, rtt: {us: 70ms}}\n  us: {share: 25%}\n"),
    )
    model = capsim.build_model(load_scenario_text(text))
    assert {c.name: c.rate for c in model.classes} == {
        "orders@eu": 30.0,
        "orders@us": 10.0,
        "reads@eu": 30.0,
        "reads@us": 10.0,
    }


def test_a_class_pinned_to_a_region_is_not_split():
    text = TWO_REGIONS.replace("rate: 40/s}\n  reads", "rate: 40/s, region: us}\n  reads")
    model = capsim.build_model(load_scenario_text(text))
    assert {c.name: c.rate for c in model.classes if c.name.startswith("orders")} == {
        "orders@us": 40.0
    }


def test_an_slo_on_a_class_is_judged_in_every_region():
    text = (
        TWO_REGIONS + "slos:\n  - {class: orders, p99: 100ms}\n  - {tier: db, utilization: 50%}\n"
    )
    model = capsim.build_model(load_scenario_text(text))
    assert [s.text for s in model.slos] == [
        "orders@eu p99 <= 100ms",
        "orders@us p99 <= 100ms",
        "db@eu utilization <= 50%",
        "db@us utilization <= 50%",
    ]
    verdicts = {v["slo"]: v["passed"] for v in capsim.simulate(model).data["slos"]}
    assert verdicts["orders@eu p99 <= 100ms"] is True
    assert verdicts["orders@us p99 <= 100ms"] is False  # 235 ms: the writes' round trips


# ---- a region lost -----------------------------------------------------------------------------
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
  browse: {entry: app, rate: 200/s}
tiers:
  app:
    concurrency: 100
    blocking: false
    service_time: 10ms
faults:
  - {at: 30s, region: us}
"""


def series(report: capsim.Report, kind: str, name: str, figure: str) -> np.ndarray:
    values = report.data["timeseries"][kind][name][figure]
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def test_a_lost_region_moves_its_clients_to_the_survivor_within_the_dns_delay():
    # us is lost at 30 s; health checks notice at 40 s; clients refresh their answer evenly
    # over the 20 s TTL, so by 60 s every us client is served in eu.
    model = capsim.build_model(load_scenario_text(REGION_LOST))
    report = capsim.simulate(model)
    moved = series(report, "classes", "browse@us->eu", "offered_rate")  # 5 s buckets
    stayed = series(report, "classes", "browse@us", "offered_rate")
    assert moved[:8].sum() == 0.0  # nothing moves before 40 s
    assert moved[12:].mean() == pytest.approx(100.0, rel=0.05)  # all of us's clients from 60 s
    assert stayed[12:].sum() == 0.0
    # The ramp: at 50 s half of us's clients have moved (buckets 40-45 s and 45-50 s average
    # 12.5% and 37.5%, 50-55 and 55-60 s 62.5% and 87.5% of 100/s).
    assert moved[8:12] == pytest.approx([12.5, 37.5, 62.5, 87.5], abs=8.0)
    # Between the loss and the move, us's clients get errors (a dead region refuses at once).
    errors = series(report, "classes", "browse@us", "error_rate")
    assert errors[:6].max() == 0.0
    assert errors[6:8] == pytest.approx([1.0, 1.0])


def test_the_survivor_takes_the_lost_regions_load_and_its_clients_pay_the_round_trip():
    model = capsim.build_model(load_scenario_text(REGION_LOST))
    report = capsim.simulate(model)
    # 10 ms of work per request over 100 workers: 100/s keep 1% of them busy, 200/s 2%.
    eu_busy = series(report, "tiers", "app@eu", "utilization")
    assert eu_busy[:6].mean() == pytest.approx(0.01, rel=0.05)
    assert eu_busy[12:].mean() == pytest.approx(0.02, rel=0.05)
    # Moved clients: 10 ms of work plus the 70 ms round trip; eu's own: 10 ms.
    assert mean_latency(report, "browse@us->eu") == pytest.approx(0.080, abs=1e-9)
    assert mean_latency(report, "browse@eu") == pytest.approx(0.010, abs=1e-9)


def test_a_region_fault_runs_on_the_event_path():
    model = capsim.build_model(load_scenario_text(REGION_LOST))
    path, reason = choose_path(model)
    assert path == "events"
    assert "region us lost at 30s" in reason


def test_a_standby_region_takes_the_lost_regions_clients(tmp_path):
    # Active-passive: eu and us serve; dr is a warm standby that only takes traffic when a
    # region is lost, even though eu is nearer to us.
    text = REGION_LOST.replace(
        "  eu: {rtt: {us: 70ms}}\n  us: {}\n",
        "  eu: {rtt: {us: 70ms, dr: 90ms}}\n  us: {rtt: {dr: 30ms}}\n  dr: {standby: true}\n",
    )
    model = capsim.build_model(load_scenario_text(text))
    assert [c.name for c in model.classes] == ["browse@eu", "browse@us", "browse@us->dr"]
    report = capsim.simulate(model)
    assert mean_latency(report, "browse@us->dr") == pytest.approx(0.040, abs=1e-9)
    assert series(report, "tiers", "app@dr", "utilization")[:8].sum() == 0.0
    assert series(report, "tiers", "app@dr", "utilization")[12:].mean() == pytest.approx(
        0.01, rel=0.05
    )


def test_weighted_dns_gives_a_lost_regions_weight_to_the_survivors():
    text = REGION_LOST.replace("policy: geo", "policy: weighted").replace(
        "  eu: {rtt: {us: 70ms}}\n  us: {}\n",
        "  eu: {share: 50%, rtt: {us: 70ms, ap: 150ms}}\n  us: {share: 30%, rtt: {ap: 120ms}}\n"
        "  ap: {share: 20%}\n",
    )
    model = capsim.build_model(load_scenario_text(text))
    # Weighted DNS knows no client location: one class per serving region, no client trip.
    assert [c.name for c in model.classes] == ["browse@eu", "browse@us", "browse@ap"]
    eu, us, ap = model.classes
    # us's 30% goes to eu and ap in proportion to their weights, 5:2, by 60 s.
    assert eu.rate_at(0.0) == pytest.approx(100.0)
    assert eu.rate_at(60.0) == pytest.approx(200.0 * (0.5 + 0.3 * 5 / 7))
    assert ap.rate_at(60.0) == pytest.approx(200.0 * (0.2 + 0.3 * 2 / 7))
    assert us.rate_at(60.0) == 0.0
    assert eu.rate_at(50.0) == pytest.approx(200.0 * (0.5 + 0.5 * 0.3 * 5 / 7))
    assert all(c.network_delay == 0.0 for c in model.classes)


def test_a_region_back_after_its_outage_gets_its_clients_back():
    text = REGION_LOST.replace("{at: 30s, region: us}", "{at: 30s, for: 20s, region: us}")
    model = capsim.build_model(load_scenario_text(text))
    home = model.classes[model.class_index["browse@us"]]
    # Lost 30-50 s: noticed at 40 s, moved by 60 s; back at 50 s, noticed at 60 s, home by 80 s.
    assert [home.rate_at(t) for t in (35.0, 50.0, 60.0, 70.0, 80.0)] == pytest.approx(
        [100.0, 50.0, 0.0, 50.0, 100.0]
    )


AUTOSCALED_APP = """\
    cost: {per_instance_hour: 1.0}
    autoscale: {metric: utilization, target: 60%, min: 2, max: 6, startup_time: 5s}
"""


def region_lost_with_an_autoscaled_app(fault: str = "{at: 30s, region: us}") -> str:
    text = REGION_LOST.replace(
        "    service_time: 10ms\n", "    service_time: 10ms\n" + AUTOSCALED_APP
    )
    return text.replace("{at: 30s, region: us}", fault)


def test_the_autoscaler_of_a_lost_region_launches_nothing_there():
    # us is lost at 30 s for good. Its HPA sees no ready instance and must not launch new ones
    # in the lost region: us's clients keep failing until DNS has moved them (10 s + half of the
    # 20 s TTL: 100/s x 20 s = 2,000 errors), its copy serves nothing and bills nothing after
    # the loss (2 instances for 30 of 90 s: 0.67 on average).
    report = capsim.simulate(
        capsim.build_model(load_scenario_text(region_lost_with_an_autoscaled_app()))
    )
    assert series(report, "tiers", "app@us", "instances")[6:].max() == 0.0
    assert series(report, "tiers", "app@us", "throughput")[7:].max() == 0.0
    assert report.data["tiers"]["app@us"]["autoscale"]["scaling"] == []
    assert series(report, "classes", "browse@us", "error_rate")[6:12] == pytest.approx([1.0] * 6)
    assert report.data["classes"]["browse@us"]["errors"] == pytest.approx(2000, rel=0.1)
    assert report.data["cost"]["tiers"]["app@us"]["units"] == pytest.approx(2 * 30 / 90)


def test_a_lost_region_s_autoscaled_copy_comes_back_with_the_instances_it_had():
    # Lost 30-50 s: nothing runs in us meanwhile; at 50 s its 2 instances are back.
    text = region_lost_with_an_autoscaled_app("{at: 30s, for: 20s, region: us}")
    report = capsim.simulate(capsim.build_model(load_scenario_text(text)))
    instances = series(report, "tiers", "app@us", "instances")
    assert instances[6:10].max() == 0.0
    assert list(instances[10:]) == [2.0] * (len(instances) - 10)


# ---- validation --------------------------------------------------------------------------------
def load_scenario_text(text: str, tmp: Path | None = None) -> capsim.Scenario:
    import tempfile

    folder = Path(tempfile.mkdtemp()) if tmp is None else tmp
    return load_scenario(write(folder, text))


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        capsim.build_model(load_scenario(path))
    return [f"{p.line}:{p.column} {p.message}" for p in caught.value.problems]


def test_an_unknown_region_is_located_with_a_suggestion(tmp_path):
    text = TWO_REGIONS.replace("    primary: eu\n", "    primary: eu\n    regions: [eu, uss]\n")
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("22:19 ")
    assert "unknown region 'uss'; did you mean 'us'? (regions: eu, us)" in problem


def test_a_missing_round_trip_is_named_with_the_fix(tmp_path):
    text = TWO_REGIONS.replace("  eu: {rtt: {us: 70ms}}\n", "  eu: {}\n")
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("6:3 ")
    assert "no round-trip time between regions 'eu' and 'us'; add rtt: {us: 70ms}" in problem


def test_two_different_round_trips_for_one_pair_are_refused(tmp_path):
    text = TWO_REGIONS.replace("  us: {}\n", "  us: {rtt: {eu: 80ms}}\n")
    (problem,) = problems_of(tmp_path, text)
    assert "is 0.07s one way and 0.08s the other" in problem


def test_shares_must_add_up_to_all_the_traffic(tmp_path):
    text = TWO_REGIONS.replace(
        "  eu: {rtt: {us: 70ms}}\n  us: {}\n",
        ("  eu: {share: 60%, rtt: {us: 70ms}}\n  us: {share: 30%}\n"),
    )
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("7:")
    assert "add up to 90%; they must add up to 100%" in problem


def test_a_write_needs_a_primary_region(tmp_path):
    text = TWO_REGIONS.replace("    primary: eu\n", "")
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("17:")
    assert "db has no primary; add primary: REGION to tier db" in problem


def test_region_keys_without_regions_are_refused(tmp_path):
    text = TWO_REGIONS.replace("regions:\n  eu: {rtt: {us: 70ms}}\n  us: {}\n", "")
    problems = problems_of(tmp_path, text)
    assert any("names region 'eu', but the scenario declares no regions" in p for p in problems)
    assert any("write: true sends a call to the callee's primary region" in p for p in problems)


def test_a_primary_outside_the_tiers_regions_is_refused(tmp_path):
    text = TWO_REGIONS.replace("    primary: eu\n", "    primary: eu\n    regions: [us]\n")
    (problem,) = problems_of(tmp_path, text)
    assert "primary 'eu' is not one of this tier's regions (us)" in problem


def test_a_region_fault_with_another_effect_is_refused(tmp_path):
    text = REGION_LOST.replace("{at: 30s, region: us}", "{at: 30s, region: us, slowdown: 2x}")
    (problem,) = problems_of(tmp_path, text)
    assert "a region fault loses the whole region; remove slowdown" in problem


def test_validate_reports_region_problems_with_exit_code_2(tmp_path):
    path = write(tmp_path, REGION_LOST.replace("region: us}", "region: usa}"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:17:23: faults[0].region: unknown" in result.output
    assert "'us'? (regions: eu, us)" in result.output
    assert "Traceback" not in result.output


def test_the_moved_clients_latency_per_bucket_is_the_survivors_plus_the_round_trip():
    model = capsim.build_model(load_scenario_text(REGION_LOST))
    report = capsim.simulate(model)
    p99 = series(report, "classes", "browse@us->eu", "p99")
    assert np.isnan(p99[:8]).all()  # no one has moved before 40 s
    # Constant 10 ms of work + 70 ms: every bucket's p99 is 80 ms (histogram: within 1.6%).
    assert p99[9:] == pytest.approx([0.080] * len(p99[9:]), rel=0.016)


# ---- multi-CDN: an entry split between providers -------------------------------------------------
MULTI_CDN = """\
version: 1
name: multi-cdn
seed: 5
simulation: {duration: 90s, warmup: 0s, timeseries: 5s}
routing: {health_check: 10s, dns_ttl: 20s}
traffic:
  assets: {entry: {akamai: 70%, fastly: 30%}, rate: 200/s}
tiers:
  akamai: {type: cdn, hit_ratio: 90%, on_miss: origin, concurrency: 100, service_time: 5ms}
  fastly: {type: cdn, hit_ratio: 90%, on_miss: origin, concurrency: 100, service_time: 8ms}
  origin: {concurrency: 100, blocking: false, service_time: 50ms}
slos:
  - {class: assets, p99: 200ms}
"""


def test_a_split_entry_sends_each_provider_its_share():
    model = capsim.build_model(load_scenario_text(MULTI_CDN))
    assert {c.name: c.rate for c in model.classes} == {
        "assets~akamai": 140.0,
        "assets~fastly": 60.0,
    }
    assert [s.text for s in model.slos] == [
        "assets~akamai p99 <= 200ms",
        "assets~fastly p99 <= 200ms",
    ]
    report = capsim.simulate(model)
    # 90% hits: 5 ms at akamai; misses add the origin's 50 ms.
    assert mean_latency(report, "assets~akamai") == pytest.approx(0.005 + 0.1 * 0.050, rel=0.05)


def test_a_failing_provider_s_share_moves_to_the_other_after_the_dns_delay():
    text = MULTI_CDN + "faults:\n  - {at: 30s, tier: akamai, error_rate: 100%, for: 30s}\n"
    model = capsim.build_model(load_scenario_text(text))
    akamai, fastly = model.classes
    # Failing from 30 s, noticed at 40 s, gone by 60 s; healthy at 60 s, noticed at 70 s, back
    # by 90 s.
    assert [akamai.rate_at(t) for t in (30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)] == pytest.approx(
        [140.0, 140.0, 70.0, 0.0, 0.0, 70.0, 140.0]
    )
    assert fastly.rate_at(60.0) == pytest.approx(200.0)
    report = capsim.simulate(model)
    errors = series(report, "classes", "assets~akamai", "error_rate")
    assert errors[:6].max() == 0.0
    assert errors[6:8] == pytest.approx([1.0, 1.0])  # failing, not yet noticed
    assert series(report, "classes", "assets~fastly", "offered_rate")[12:14].mean() == (
        pytest.approx(200.0, rel=0.05)
    )


def test_a_split_entry_must_add_up_and_name_real_tiers(tmp_path):
    text = MULTI_CDN.replace("{akamai: 70%, fastly: 30%}", "{akamai: 70%, fastlly: 20%}")
    problems = problems_of(tmp_path, text)
    assert any("the entry's shares add up to 90%; they must add up to 100%" in p for p in problems)
    text = MULTI_CDN.replace("{akamai: 70%, fastly: 30%}", "{akamai: 70%, fastlly: 30%}")
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith("7:")
    assert "unknown tier 'fastlly'; did you mean 'fastly'?" in problem


def test_a_region_lost_after_the_run_moves_nobody_in_it():
    # The loss at 30 s is noticed at 40 s, after this 35 s run: no moved class, no verdict on it.
    text = REGION_LOST.replace("duration: 90s", "duration: 35s") + (
        "slos:\n  - {class: browse, p99: 1s}\n"
    )
    model = capsim.build_model(load_scenario_text(text))
    assert [c.name for c in model.classes] == ["browse@eu", "browse@us"]
    assert [s.text for s in model.slos] == ["browse@eu p99 <= 1s", "browse@us p99 <= 1s"]


def test_a_copy_may_have_its_own_instances():
    text = (
        TWO_REGIONS.replace(
            "  app:\n    concurrency: 200\n",
            "  app:\n    regions: {eu: {instances: 6}, us: {}}\n    instances: 2\n    concurrency: 200\n",
        )
        + "faults:\n  - {at: 10s, tier: app, lose: 1}\n"
    )
    model = capsim.build_model(load_scenario_text(text))
    assert model.tier("app@eu").instances == 6
    assert model.tier("app@us").instances == 2
    # Losing one instance of app loses the last one of each copy.
    assert sorted((model.tiers[f.tier].name, f.lose) for f in model.faults) == [
        ("app@eu", (5,)),
        ("app@us", (1,)),
    ]


def test_a_region_listed_twice_is_refused(tmp_path):
    text = TWO_REGIONS.replace("    primary: eu\n", "    primary: eu\n    regions: [eu, eu]\n")
    (problem,) = problems_of(tmp_path, text)
    assert "region 'eu' is listed twice; list each region once" in problem


THREE_REGIONS = """\
version: 1
name: three-regions
simulation: {duration: 10s}
regions:
  eu: {rtt: {us: 90ms, ap: 160ms}}
  us: {rtt: {ap: 60ms}}
  ap: {}
routing: {policy: POLICY}
traffic:
  browse: {entry: app, rate: 90/s}
tiers:
  app: {regions: [eu, ap], concurrency: 50, blocking: false, service_time: 10ms}
"""


@pytest.mark.parametrize(
    ("policy", "served_in", "round_trip"),
    [("geo", "eu", 0.090), ("latency", "ap", 0.060)],
)
def test_clients_of_a_region_without_the_service_go_to_the_default_or_the_nearest(
    policy, served_in, round_trip
):
    # us runs no app: geo sends its clients to the first region declared that does (eu),
    # latency-based routing to the nearest one (ap, 60 ms against 90 ms).
    model = capsim.build_model(load_scenario_text(THREE_REGIONS.replace("POLICY", policy)))
    moved = model.classes[model.class_index[f"browse@us->{served_in}"]]
    assert moved.rate == pytest.approx(30.0)
    assert moved.network_delay == pytest.approx(round_trip)
    assert {c.name for c in model.classes} == {"browse@eu", f"browse@us->{served_in}", "browse@ap"}


def test_solve_does_not_judge_the_objectives_of_class_parts_a_region_fault_moves():
    # us is lost at 30 s: browse@us's requests fail until DNS moves them, and browse@us->eu only
    # exists after the move. A steady state at one rate cannot judge either part's objective;
    # browse@eu is untouched by the fault and keeps its verdict.
    text = REGION_LOST + "slos:\n  - {class: browse, error_rate: 5%}\n"
    data = capsim.solve(capsim.build_model(load_scenario_text(text)), capsim_version="test")
    verdicts = {v["slo"]: v for v in data["slos"]}
    assert verdicts["browse@eu error_rate <= 5%"]["passed"] is True
    for moved in ("browse@us error_rate <= 5%", "browse@us->eu error_rate <= 5%"):
        assert verdicts[moved]["passed"] is None
        assert "region fault moves" in verdicts[moved]["reason"]
    assert data["passed"] is True  # not judged is not failed


def test_solve_counts_a_lost_regions_clients_once():
    # global-shop in small: eu has 60% of 330/s, us 40%; us is lost and its 132/s move to eu.
    # browse@us and browse@us->eu take turns (the first busy before the loss, the second after
    # the move), so the shop is offered 330/s at every moment. solve summed each part's own
    # peak: 462/s offered, and db@eu, which takes us's writes before the loss and all of us's
    # calls after the move, 414/s instead of its 390/s after the move (180 + 120 browse reads,
    # 3 calls for each of 30 checkouts).
    model = capsim.build_model(
        load_scenario(Path(__file__).parents[1] / "scenarios" / "global-shop.yaml")
    )
    data = capsim.solve(model, capsim_version="test")
    assert data["bottleneck"]["offered_rate"] == pytest.approx(330.0)
    assert data["tiers"]["db@eu-west"]["offered_rate"] == pytest.approx(390.0)
    # Each copy is solved at its own busiest moment: eu after the move, us before the loss.
    assert data["tiers"]["app@eu-west"]["offered_rate"] == pytest.approx(330.0)
    assert data["tiers"]["app@us-east"]["offered_rate"] == pytest.approx(132.0)
    # The bound is in requests of the shop's true total: 330/s times db@eu's headroom.
    db = data["tiers"]["db@eu-west"]
    assert data["bottleneck"]["tier"] == "db@eu-west"
    assert data["bottleneck"]["saturation_rate"] == pytest.approx(db["max_rate"])
    assert open_rate(model) == pytest.approx(330.0)  # saturate's and size's offered rate


def test_solve_s_table_shows_an_unjudged_objective_as_not_judged(tmp_path):
    path = write(tmp_path, REGION_LOST + "slos:\n  - {class: browse, error_rate: 5%}\n")
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 0, result.output
    assert "? not judged  browse@us error_rate <= 5%" in result.output


def test_a_misspelt_round_trip_region_gets_only_its_did_you_mean(tmp_path):
    # `usa` is `us` misspelt: the round trip is there, so "add rtt: {us: 70ms}" (an example
    # value) would send the user the wrong way; the did-you-mean alone says the fix.
    text = TWO_REGIONS.replace("  eu: {rtt: {us: 70ms}}\n", "  eu: {rtt: {usa: 80ms}}\n")
    (problem,) = problems_of(tmp_path, text)
    assert "unknown region 'usa'; did you mean 'us'?" in problem


def test_an_unrelated_unknown_rtt_region_still_leaves_the_pair_missing(tmp_path):
    text = TWO_REGIONS.replace("  eu: {rtt: {us: 70ms}}\n", "  eu: {rtt: {mars: 80ms}}\n")
    problems = problems_of(tmp_path, text)
    assert any("unknown region 'mars'" in p for p in problems)
    assert any("no round-trip time between regions 'eu' and 'us'" in p for p in problems)


def test_losing_a_region_that_runs_a_serverless_tier_is_refused_with_the_way_out(tmp_path):
    # A lost serverless copy would start instances again for the next request and hold it
    # forever: no errors for the lost clients and a fake overload. Refused, as `lose:` is.
    text = REGION_LOST.replace(
        "    service_time: 10ms\n",
        "    service_time: 10ms\n    autoscale: {scale_to_zero: true, min: 0, max_instances: 4}\n",
    )
    [problem] = problems_of(tmp_path, text)
    assert "region 'us' is lost, and serverless tier 'app' runs there" in problem
    assert "keep the tier out of that region (regions: [...])" in problem
    kept_out = text.replace("    concurrency: 100\n", "    concurrency: 100\n    regions: [eu]\n")
    assert capsim.build_model(load_scenario_text(kept_out)) is not None
