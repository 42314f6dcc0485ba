"""Figures per time bucket: what a user sees of a spike, bucket by bucket (the JSON result (docs/results.md))."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.timeseries import interval_mass, readable_bucket
from capsim.engine.vectorised import run_vectorised
from capsim.model.types import Model
from modelkit import Call, ProfilePoint, closed_class, const, exp, model, open_class, tier

runner = CliRunner()


def with_series(m: Model, bucket: float | None = None) -> Model:
    return replace(m, timeseries=True, timeseries_bucket=bucket)


def test_the_default_bucket_is_a_readable_hundred_and_twentieth_of_the_duration() -> None:
    assert readable_bucket(600.0) == 5.0
    assert readable_bucket(60.0) == 0.5
    assert readable_bucket(1200.0) == 10.0
    assert readable_bucket(3600.0) == 20.0  # 30 s lies nearer 20 s than 50 s on a log scale
    assert readable_bucket(86400.0) == 1000.0


def test_interval_mass_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    starts = rng.uniform(0, 10, 200)
    ends = starts + rng.exponential(1.0, 200)
    edges = np.array([0.0, 1.0, 2.5, 4.0, 7.0, 10.0])
    brute = [
        sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in zip(starts, ends, strict=True))
        for lo, hi in itertools.pairwise(edges)
    ]
    assert interval_mass(starts, ends, edges) == pytest.approx(brute, rel=1e-12)


def clockwork() -> Model:
    # One request a second (at t = 1, 2, ...), each busy for 0.5 s: a log a test can predict.
    return with_series(
        model(
            [tier("app", const(0.5), blocking=False)],
            [open_class("web", 0, 1.0, arrivals="constant")],
            duration=10.0,
        ),
        bucket=1.0,
    )


@pytest.mark.parametrize("run", [run_events, run_vectorised], ids=["events", "vectorised"])
def test_a_clockwork_run_gives_the_predicted_figures_in_every_bucket(run) -> None:
    series = run(clockwork(), 0).series
    assert series is not None
    assert series.edges.tolist() == [float(t) for t in range(11)]
    web, app_tier = series.classes[0], series.tiers[0]
    # Arrivals at 1..9 s (the one at 10 s is the horizon); each finishes 0.5 s later.
    assert web.arrivals.tolist() == [0] + [1] * 9
    assert web.completed.tolist() == [0] + [1] * 9
    assert web.errors.tolist() == [0] * 10
    assert app_tier.busy_time.tolist() == [0.0] + [0.5] * 9
    assert app_tier.queue_time.tolist() == [0.0] * 10
    assert app_tier.present_time.tolist() == [0.0] + [0.5] * 9
    assert app_tier.instance_time.tolist() == [1.0] * 10


def test_the_two_engine_paths_give_the_same_series_for_the_same_arrivals() -> None:
    # Poisson arrivals come from the same stream on both paths; constant work leaves nothing
    # else to chance, so every bucket must agree.
    m = with_series(
        model(
            [tier("app", const(0.012), instances=2, concurrency=2, blocking=False)],
            [open_class("web", 0, 300.0)],
            duration=20.0,
            warmup=2.0,
        ),
        bucket=1.0,
    )
    a, b = run_events(m, 0).series, run_vectorised(m, 0).series
    assert a is not None and b is not None
    for x, y in zip(a.classes, b.classes, strict=True):
        assert x.arrivals.tolist() == y.arrivals.tolist()
        assert x.completed.tolist() == y.completed.tolist()
        assert (x.latency == y.latency).all()
    for x, y in zip(a.tiers, b.tiers, strict=True):
        for name in ("busy_time", "occupied_time", "queue_time", "present_time", "instance_time"):
            assert getattr(x, name) == pytest.approx(getattr(y, name), rel=1e-9, abs=1e-9), name


@pytest.mark.parametrize("run", [run_events, run_vectorised], ids=["events", "vectorised"])
def test_the_buckets_of_the_window_add_up_to_the_whole_run_figures(run) -> None:
    m = with_series(
        model(
            [
                tier("app", exp(0.01), concurrency=3, blocking=False, calls=(Call(1),)),
                tier("db", exp(0.004), concurrency=2),
            ],
            [open_class("web", 0, 200.0)],
            duration=30.0,
            warmup=5.0,
        ),
        bucket=1.0,
    )
    result = run(m, 0)
    series = result.series
    assert series is not None
    window = series.edges[:-1] >= 5.0
    for tier_run, tier_series in zip(result.tiers, series.tiers, strict=True):
        assert tier_series.busy_time[window].sum() == pytest.approx(tier_run.busy_time, rel=1e-9)
        assert tier_series.queue_time[window].sum() == pytest.approx(tier_run.queue_time, rel=1e-9)
        assert tier_series.occupied_time[window].sum() == pytest.approx(
            tier_run.occupied_time, rel=1e-9
        )


def test_a_blocking_tier_is_occupied_while_its_calls_are_out_and_busy_only_for_its_work() -> None:
    m = with_series(
        model(
            [tier("app", const(0.1), blocking=True, calls=(Call(1),)), tier("db", const(0.3))],
            [open_class("web", 0, 1.0, arrivals="constant")],
            duration=10.0,
        ),
        bucket=1.0,
    )
    series = run_events(m, 0).series
    assert series is not None
    app_series = series.tiers[0]
    assert app_series.busy_time[1:].tolist() == pytest.approx([0.1] * 9)
    assert app_series.occupied_time[1:].tolist() == pytest.approx([0.4] * 9)
    assert app_series.present_time[1:].tolist() == pytest.approx([0.4] * 9)


def test_a_closed_class_is_counted_per_bucket_too() -> None:
    m = with_series(
        model([tier("app", const(0.5))], [closed_class("users", 0, 1, const(0.5))], duration=10.0),
        bucket=1.0,
    )
    series = run_events(m, 0).series
    assert series is not None
    # One user: think 0.5 s, wait 0.5 s: a request sent at 0.5, 1.5, ... and answered at 1, 2, ...
    assert series.classes[0].arrivals.tolist() == [1] * 10
    assert series.classes[0].completed.tolist() == [0] + [1] * 9


def step_model(replications_seed: int = 1) -> Model:
    profile = (ProfilePoint(0.0, 100.0), ProfilePoint(30.0, 100.0), ProfilePoint(30.0, 180.0))
    return with_series(
        model(
            [tier("app", exp(0.01), concurrency=2, blocking=False)],
            [open_class("web", 0, 100.0, profile=profile)],
            duration=55.0,
            warmup=5.0,
            seed=replications_seed,
        ),
        bucket=5.0,
    )


def test_a_step_in_the_profile_shows_in_the_offered_rate_utilisation_and_p99() -> None:
    m = step_model()
    report = summarise(m, [run_events(m, 0), run_events(m, 1)], capsim_version="test")
    series = report.data["timeseries"]
    assert series["bucket"] == 5.0
    assert series["t"] == [5.0 * i for i in range(12)]
    web = series["classes"]["web"]
    app_series = series["tiers"]["app"]
    before, after = slice(0, 6), slice(6, 12)
    assert np.mean(web["offered_rate"][before]) == pytest.approx(100.0, rel=0.05)
    assert np.mean(web["offered_rate"][after]) == pytest.approx(180.0, rel=0.05)
    assert np.mean(app_series["utilization"][before]) == pytest.approx(0.5, rel=0.06)
    assert np.mean(app_series["utilization"][after]) == pytest.approx(0.9, rel=0.06)
    assert app_series["instances"] == [1.0] * 12
    assert max(web["p99"][after]) > 2 * max(web["p99"][before])
    assert series["worst"]["web"]["t"] >= 30.0
    # in flight = waiting + held, as time averages
    flight = np.asarray(app_series["in_flight"])
    held = np.asarray(app_series["occupancy"]) * 2 + np.asarray(app_series["queue_length"])
    assert flight == pytest.approx(held, rel=1e-9)


def test_replications_are_averaged_bucket_by_bucket() -> None:
    m = step_model()
    runs = [run_events(m, 0), run_events(m, 1)]
    both = summarise(m, runs, capsim_version="test").data["timeseries"]
    one = [summarise(m, [r], capsim_version="test").data["timeseries"] for r in runs]
    for name in ("offered_rate", "throughput"):
        mean = (np.asarray(one[0]["classes"]["web"][name]) + one[1]["classes"]["web"][name]) / 2
        assert both["classes"]["web"][name] == pytest.approx(mean.tolist())
    mean = (
        np.asarray(one[0]["tiers"]["app"]["queue_length"]) + one[1]["tiers"]["app"]["queue_length"]
    ) / 2
    assert both["tiers"]["app"]["queue_length"] == pytest.approx(mean.tolist())


SCENARIO = """\
name: ts
simulation: {{duration: 20s, warmup: 2s{extra}}}
traffic:
  web: {{entry: app, {traffic}}}
tiers:
  app: {{concurrency: 2, service_time: 5ms}}
"""


def run_json(tmp_path: Path, *args: str, extra: str = "", traffic: str = "rate: 50/s") -> dict:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra=extra, traffic=traffic))
    result = runner.invoke(app, ["run", str(path), "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_steady_run_has_no_timeseries_unless_asked_for(tmp_path: Path) -> None:
    assert "timeseries" not in run_json(tmp_path)
    data = run_json(tmp_path, "--timeseries")
    series = data["timeseries"]
    assert set(series) >= {"bucket", "t", "classes", "tiers"}
    assert series["bucket"] == 0.2  # 20 s / 120 = 0.167 s, read as 0.2 s
    assert set(series["classes"]["web"]) == {"offered_rate", "throughput", "error_rate", "p99"}
    assert set(series["tiers"]["app"]) == {
        "instances",
        "utilization",
        "occupancy",
        "queue_length",
        "in_flight",
        "arrivals",
        "throughput",
        "errors",
    }
    assert len(series["t"]) == len(series["classes"]["web"]["p99"]) == 110


def test_a_profile_brings_the_timeseries_and_a_scenario_can_choose_or_refuse_it(
    tmp_path: Path,
) -> None:
    profile = "profile: [{at: 0s, rate: 50/s}, {at: 10s, rate: 100/s}]"
    assert run_json(tmp_path, traffic=profile)["timeseries"]["bucket"] == 0.2
    chosen = run_json(tmp_path, extra=", timeseries: 2s", traffic=profile)["timeseries"]
    assert chosen["t"] == [2.0 * i for i in range(11)]
    assert "timeseries" not in run_json(tmp_path, extra=", timeseries: false", traffic=profile)
    # --timeseries keeps a bucket the scenario chose
    kept = run_json(tmp_path, "--timeseries", extra=", timeseries: 2s")["timeseries"]
    assert kept["bucket"] == 2.0


def test_the_table_names_the_worst_window(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra=", timeseries: 2s", traffic="rate: 50/s"))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 0
    assert "worst window for web: p99" in result.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1ms", "at most 2000: use a bucket of at least 0.011s"),
        ("maybe", "simulation.timeseries"),
        ("-2s", "is not greater than 0; timeseries must be true, false or a bucket"),
    ],
)
def test_a_bad_bucket_is_refused_with_its_location(tmp_path: Path, value: str, message: str):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra=f", timeseries: {value}", traffic="rate: 50/s"))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{path}:2:" in result.output
    assert message in result.output
