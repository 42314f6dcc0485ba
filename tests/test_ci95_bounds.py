"""A 95% interval never reaches past what its figure can be (docs/results.md, "ci95"): a
utilization or an error rate stays within 0..100%, a latency at or above 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import capsim
from capsim.analysis.compare import _half_width_se
from capsim.analysis.points import measure
from capsim.analysis.stats import clamped, student_t_quantile, t_interval
from capsim.analysis.summary import summarise
from capsim.engine.runner import run_replications
from capsim.scenario import load_scenario

# One worker 99% busy, and 0.3% of the requests failing: two 20 s replications disagree a lot.
EDGES = """
version: 1
name: edges
seed: 7
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  web: {entry: app, rate: 100/s}
tiers:
  app: {concurrency: 1, service_time: {dist: exponential, mean: 9.9ms}}
faults:
  - {at: 0s, tier: app, error_rate: 0.3%}
slos:
  - {tier: app, utilization: 100%}
"""


def edges(tmp_path: Path) -> capsim.Model:
    path = tmp_path / "edges.yaml"
    path.write_text(EDGES)
    return capsim.build_model(load_scenario(path))


def per_replication(model: capsim.Model) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The pooled result of `model` and each replication's own result (its own estimates)."""
    runs = run_replications(model)
    pooled = summarise(model, runs, capsim_version="test").data
    return pooled, [summarise(model, [run], capsim_version="test").data for run in runs]


def test_a_busy_worker_s_interval_stops_at_100_percent_and_a_rare_error_s_at_0(tmp_path):
    # Once two replications measured 99.1% and 96.2% busy, error rates of 0.35% and 0.26%, and
    # p50s of 180 ms and 127 ms: the t interval (12.7 standard errors each side with 2
    # replications) read 79.2% .. 116.0% busy, -0.30% .. 0.91% errors, a p50 of -0.18 s .. 0.49 s.
    # Each interval is the t interval of the replications' own figures cut to what the figure
    # can be, never moved. (At 99% busy the utilization's t interval passes 100% for any seed
    # tried, 16 of 16; the error rate's and the p50's pass 0 for most: 13 and 12 of 16.)
    model = edges(tmp_path)
    pooled, each = per_replication(model)
    busy = t_interval([run["tiers"]["app"]["utilization"] for run in each])
    assert busy is not None and busy[1] > 1.0
    tier_ci = pooled["tiers"]["app"]["ci95"]
    assert tier_ci["utilization"] == pytest.approx([busy[0], 1.0], rel=1e-12)
    assert tier_ci["occupancy"] == pytest.approx([busy[0], 1.0], rel=1e-12)
    web = pooled["classes"]["web"]["ci95"]
    errors = t_interval([run["classes"]["web"]["error_rate"] for run in each])
    p50 = t_interval([run["classes"]["web"]["latency"]["p50"] for run in each])
    assert errors is not None and p50 is not None
    assert web["error_rate"] == pytest.approx([max(errors[0], 0.0), min(errors[1], 1.0)])
    assert web["latency.p50"] == pytest.approx([max(p50[0], 0.0), p50[1]])
    for low, high in [*web.values(), tier_ci["utilization"]]:
        assert 0.0 <= low <= high


def test_an_objective_s_upper_bound_is_at_most_what_its_figure_can_be(tmp_path):
    # A utilization objective of 100% cannot be failed by the noise of the interval alone.
    point = measure(edges(tmp_path), capsim_version="test")
    (check,) = point.checks
    assert check.upper == 1.0 and check.passed


def test_an_interval_is_cut_to_the_possible_values_not_moved():
    assert clamped((-0.003, 0.009), 0.0, 1.0) == (0.0, 0.009)
    assert clamped((0.79, 1.16), 0.0, 1.0) == (0.79, 1.0)
    assert clamped((0.2, 0.4), 0.0, 1.0) == (0.2, 0.4)
    assert clamped((-2.0, -1.0)) == (0.0, 0.0)
    assert clamped(None) is None


def test_compare_reads_a_cut_interval_s_width_from_its_intact_end():
    # A saved result's error rate 0.30% with ci95 [0, 0.91%]: the interval was -0.30% .. 0.91%
    # before it was cut at 0, so its half-width is 0.61 points, not half of 0.91.
    entry = {"ci95": {"error_rate": [0.0, 0.0091]}}
    se = _half_width_se(entry, "error_rate", 2, 0.0030)
    assert se == pytest.approx(0.0061 / student_t_quantile(0.975, 1))
    busy = {"ci95": {"utilization": [0.792, 1.0]}}
    assert _half_width_se(busy, "utilization", 2, 0.976) == pytest.approx(
        0.184 / student_t_quantile(0.975, 1)
    )
    whole = {"ci95": {"utilization": [0.5, 0.7]}}
    assert _half_width_se(whole, "utilization", 2, 0.61) == pytest.approx(
        0.1 / student_t_quantile(0.975, 1)
    )
