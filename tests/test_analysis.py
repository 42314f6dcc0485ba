"""Summaries of replications: pooled percentiles, intervals, stability and SLO verdicts."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsim.analysis import Report, summarise
from capsim.analysis.stats import (
    queue_trend,
    sanitise,
    student_t_quantile,
    t_interval,
)
from capsim.analysis.summary import time_statistics
from capsim.engine.histogram import ZERO_BELOW, Histogram
from capsim.model.types import PERCENTILES, Slo
from runkit import (
    DURATION,
    WARMUP,
    flat_trace,
    growing_trace,
    mm1_trace,
    shop_model,
    shop_run,
)

TRACE_TIMES = np.linspace(WARMUP, WARMUP + DURATION, 120)


def summary(runs: list, slos: tuple[Slo, ...] = ()) -> Report:
    return summarise(shop_model(slos), runs, capsim_version="9.9.9")


# --- pooling over replications -------------------------------------------------------------


def test_pooled_percentiles_are_within_1_percent_of_numpy_on_the_same_samples() -> None:
    rng = np.random.default_rng(7)
    samples = [rng.lognormal(np.log(0.03), 1.2, 20_000) for _ in range(3)]
    report = summary([shop_run(i, browse=s) for i, s in enumerate(samples)])
    latency = report.data["classes"]["browse"]["latency"]
    everything = np.concatenate(samples)
    for name, q in PERCENTILES.items():
        exact = np.percentile(everything, q * 100, method="inverted_cdf")
        assert latency[name] == pytest.approx(exact, rel=0.01), name
    assert latency["mean"] == pytest.approx(everything.mean(), rel=1e-9)
    assert latency["max"] == everything.max()


def test_counts_are_per_replication_and_rates_are_per_second_of_measured_time() -> None:
    # the JSON result (docs/results.md): completed = throughput x duration, whatever the number of replications.
    runs = [shop_run(i) for i in range(4)]
    browse = summary(runs).data["classes"]["browse"]
    assert browse["completed"] == 10_000
    assert browse["throughput"] == pytest.approx(10_000 / DURATION)
    assert browse["completed"] == pytest.approx(browse["throughput"] * DURATION)
    checkout = summary(runs).data["classes"]["checkout"]
    assert checkout["errors"] == 3
    assert checkout["error_rate"] == pytest.approx(12 / (4 * 1_000 + 12))


def test_tier_utilization_is_the_mean_over_replications() -> None:
    runs = [shop_run(0, db_utilization=0.4), shop_run(1, db_utilization=0.6)]
    db = summary(runs).data["tiers"]["db"]
    assert db["utilization"] == pytest.approx(0.5)
    assert db["pool"]["rejected"] == 2
    assert db["rejected"] == 2
    assert db["pool"]["wait"]["p99"] > 0
    events = summary(runs).data["tiers"]["events"]
    assert events["age"]["mean"] == pytest.approx(0.003, rel=0.1)
    assert events["backlog"]["max"] >= events["backlog"]["mean"]


# --- confidence intervals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (9, 2.262157163),
     (30, 2.042272456), (120, 1.979930405), (1000, 1.962339081)],
)  # fmt: skip
def test_student_t_quantiles_match_the_tables(df: int, expected: float) -> None:
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=1e-8)


def test_t_intervals_cover_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(2000):
        low, high = t_interval(rng.normal(10.0, 2.0, 5))  # type: ignore[misc]
        covered += low <= 10.0 <= high
    assert 0.935 <= covered / 2000 <= 0.965


def test_an_interval_needs_two_complete_replications() -> None:
    assert t_interval([1.0]) is None
    assert t_interval([1.0, math.nan, 2.0]) is None


def test_ci95_contains_the_true_mean_latency_with_ten_replications() -> None:
    rng = np.random.default_rng(11)
    runs = [shop_run(i, browse=rng.exponential(0.05, 5_000)) for i in range(10)]
    ci = summary(runs).data["classes"]["browse"]["ci95"]
    low, high = ci["latency.mean"]
    assert low < 0.05 < high
    assert high - low < 0.005
    assert set(ci) == {"latency.mean", "latency.p50", "latency.p95", "latency.p99",
                       "throughput", "error_rate"}  # fmt: skip
    p99_low, p99_high = ci["latency.p99"]
    assert p99_low < -0.05 * math.log(0.01) < p99_high
    assert "ci95" in summary(runs).data["tiers"]["db"]


def test_one_replication_has_no_ci95() -> None:
    data = summary([shop_run(0)]).data
    assert "ci95" not in data["classes"]["browse"]
    assert "ci95" not in data["tiers"]["app"]


# --- stability -----------------------------------------------------------------------------


def test_a_flat_noisy_queue_is_not_growing() -> None:
    for seed in range(50):
        trend = queue_trend(TRACE_TIMES, flat_trace(np.random.default_rng(seed)))
        assert trend is not None and not trend.growing


def test_a_linearly_growing_queue_is_growing_at_its_rate() -> None:
    trend = queue_trend(TRACE_TIMES, growing_trace(np.random.default_rng(0), rate=120.0))
    assert trend is not None and trend.growing
    assert trend.slope == pytest.approx(120.0, rel=0.05)


def test_a_busy_but_stable_queue_is_not_growing() -> None:
    flagged = sum(
        queue_trend(TRACE_TIMES, mm1_trace(np.random.default_rng(seed), rho=0.9)).growing  # type: ignore[union-attr]
        for seed in range(100)
    )
    assert flagged == 0


def test_an_overloaded_queue_is_growing() -> None:
    for seed in range(20):
        trend = queue_trend(TRACE_TIMES, mm1_trace(np.random.default_rng(seed), rho=1.2))
        assert trend is not None and trend.growing
        assert trend.slope == pytest.approx(20.0, rel=0.25)


def test_a_too_short_trace_gives_no_trend() -> None:
    assert queue_trend(np.arange(3.0), np.array([1.0, 5.0, 9.0])) is None


def test_an_overloaded_tier_is_unstable_fails_the_run_and_says_so_plainly() -> None:
    runs = [shop_run(i, db_trace=growing_trace(np.random.default_rng(i), 120.0)) for i in range(3)]
    report = summary(runs)
    db = report.data["tiers"]["db"]
    assert db["stable"] is False
    assert db["growth_rate"] == pytest.approx(120.0, rel=0.05)
    assert report.data["tiers"]["app"]["stable"] is True
    assert report.unstable_tiers == ["db"]
    assert report.data["passed"] is False and not report.passed
    [failure] = report.data["overloaded"]
    assert failure["tier"] == "db"
    assert failure["growth_rate"] == db["growth_rate"]
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith(
        "tier 'db' is OVERLOADED, which fails the run: its backlog grew by 120 requests/s"
    )
    assert "saturates near" in report.warnings[0]
    assert report.data["warnings"] == report.warnings


def test_without_a_trace_offered_work_beyond_capacity_makes_a_tier_unstable() -> None:
    # 10_000 completed at 100% busy; 12_000 admitted: 20 requests/s more than it can serve.
    run = shop_run(0, db_trace=np.zeros(0), db_arrivals=12_002, db_utilization=1.0)
    db = summary([run]).data["tiers"]["db"]
    assert db["stable"] is False
    assert db["growth_rate"] == pytest.approx(20.0)
    busy = shop_run(0, db_trace=np.zeros(0), db_arrivals=10_010, db_utilization=0.95)
    assert summary([busy]).data["tiers"]["db"]["stable"] is True


def test_a_tier_is_unstable_only_when_half_the_replications_grow() -> None:
    growing = growing_trace(np.random.default_rng(0), 50.0)
    runs = [shop_run(0, db_trace=growing), shop_run(1), shop_run(2)]
    assert summary(runs).data["tiers"]["db"]["stable"] is True
    runs[1] = shop_run(1, db_trace=growing)
    assert summary(runs).data["tiers"]["db"]["stable"] is False


# --- SLOs ----------------------------------------------------------------------------------


def slo(text: str, statistic: str, limit: float, **where: int) -> Slo:
    return Slo(text=text, statistic=statistic, limit=limit, line=7, **where)


def test_slo_verdicts_compare_the_observed_figure_with_the_limit() -> None:
    browse = np.full(1_000, 0.2)
    slos = (
        slo("browse p99 <= 300ms", "p99", 0.3, class_index=0),
        slo("browse mean <= 100ms", "mean", 0.1, class_index=0),
        slo("checkout error_rate <= 0.1%", "error_rate", 0.001, class_index=1),
        slo("db utilization <= 70%", "utilization", 0.7, tier_index=1),
    )
    report = summary([shop_run(0, browse=browse)], slos)
    verdicts = {v["slo"]: v for v in report.data["slos"]}
    assert verdicts["browse p99 <= 300ms"]["passed"] is True
    assert verdicts["browse p99 <= 300ms"]["observed"] == pytest.approx(0.2, rel=0.003)
    assert verdicts["browse p99 <= 300ms"]["limit"] == 0.3
    assert verdicts["browse p99 <= 300ms"]["line"] == 7
    assert verdicts["browse mean <= 100ms"]["passed"] is False
    assert verdicts["checkout error_rate <= 0.1%"]["passed"] is False
    assert verdicts["db utilization <= 70%"]["passed"] is True
    assert report.passed is False
    assert report.data["passed"] is False


def test_all_slos_met_passes_and_no_slos_passes() -> None:
    ok = summary([shop_run(0)], (slo("db utilization <= 70%", "utilization", 0.7, tier_index=1),))
    assert ok.passed is True
    assert summary([shop_run(0)]).passed is True
    assert summary([shop_run(0)]).data["slos"] == []


def test_an_slo_without_measurements_fails_and_says_why() -> None:
    report = summary(
        [shop_run(0, browse=np.zeros(0))],
        (slo("browse p99 <= 300ms", "p99", 0.3, class_index=0),),
    )
    assert report.data["slos"][0]["observed"] is None
    assert report.passed is False
    assert any("could not be evaluated" in w for w in report.warnings)


# --- the JSON result -----------------------------------------------------------------------

SPEC_TOP = ["capsim_version", "scenario", "seed", "replications", "duration", "classes",
            "tiers", "slos", "passed"]  # fmt: skip
SPEC_CLASS = ["offered_rate", "throughput", "completed", "errors", "error_rate", "latency"]
SPEC_TIER = ["utilization", "throughput", "rejected", "stable", "queue_length", "wait"]
SPEC_STATS = ["mean", "p50", "p90", "p95", "p99", "p999", "max"]


def strict_json(data: object) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON")

    return json.loads(json.dumps(data, allow_nan=False), parse_constant=refuse)


def test_the_result_has_every_spec_key_in_spec_order() -> None:
    slos = (slo("browse p99 <= 300ms", "p99", 0.3, class_index=0),)
    data = summary([shop_run(0), shop_run(1)], slos).data
    strict_json(data)
    assert [k for k in data if k in SPEC_TOP] == SPEC_TOP
    assert data["capsim_version"] == "9.9.9"
    assert data["scenario"] == "test"
    assert data["replications"] == 2
    assert data["duration"] == DURATION
    for entry in data["classes"].values():
        assert [k for k in entry if k in SPEC_CLASS] == SPEC_CLASS
        assert list(entry["latency"]) == SPEC_STATS
        assert isinstance(entry["completed"], int)
    for entry in data["tiers"].values():
        assert [k for k in entry if k in SPEC_TIER] == SPEC_TIER
        assert list(entry["wait"]) == SPEC_STATS
        assert set(entry["queue_length"]) == {"mean", "max"}
        assert isinstance(entry["stable"], bool)
    assert set(data["slos"][0]) >= {"slo", "passed", "observed", "limit"}
    assert data["engine"]["path"] == "events"


def test_empty_histograms_give_null_not_nan() -> None:
    data = summary([shop_run(0, browse=np.zeros(0))]).data
    assert data["classes"]["browse"]["latency"] == dict.fromkeys(SPEC_STATS)
    assert data["classes"]["browse"]["throughput"] == 0.0
    strict_json(data)


def test_sanitise_replaces_every_non_finite_number() -> None:
    dirty = {"a": math.nan, "b": [math.inf, 1.0, np.float64(2.0)], "c": {"d": -math.inf},
             "e": np.int64(3), "f": np.bool_(True)}  # fmt: skip
    assert sanitise(dirty) == {"a": None, "b": [None, 1.0, 2.0], "c": {"d": None}, "e": 3,
                               "f": True}  # fmt: skip


def test_summarise_refuses_no_replications() -> None:
    with pytest.raises(ValueError, match="at least one"):
        summary([])


def test_replications_with_no_histogram_for_age_still_summarise() -> None:
    run = shop_run(0)
    run.tiers[2] = replace(run.tiers[2], age=None)
    events = summary([run]).data["tiers"]["events"]
    assert events["age"] == dict.fromkeys(SPEC_STATS)
    assert isinstance(Histogram.merged([]), Histogram)


# --- invariants ----------------------------------------------------------------------------

times = st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), max_size=300)


@settings(max_examples=60, deadline=None)
@given(times)
def test_pooled_statistics_are_ordered_and_bounded(values: list[float]) -> None:
    h = Histogram()
    h.add(values)
    stats = time_statistics(h)
    if not values:
        assert stats == dict.fromkeys(stats)
        return
    ordered = [stats[k] for k in ("p50", "p90", "p95", "p99", "p999", "max")]
    assert ordered == sorted(ordered)  # type: ignore[type-var]
    # Values below ZERO_BELOW are counted as exactly zero.
    assert min(values) - ZERO_BELOW <= stats["p50"] <= max(values)  # type: ignore[operator]
    assert stats["max"] == max(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=2, max_size=20))
def test_intervals_are_none_or_finite_and_ordered(values: list[float]) -> None:
    interval = t_interval(values)
    if interval is not None:
        low, high = interval
        assert low <= high or not all(map(math.isfinite, (low, high)))
