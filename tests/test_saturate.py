"""`capsim saturate`: the bottleneck, its saturation rate, the knee and the SLO limit.

An M/M/4 pool with 10 ms exponential service saturates at c / E[S] = 400/s; Erlang C gives its
exact p99 at every rate, so the knee and the SLO limit have analytic answers too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capacitykit import mmc_scenario
from capsim.analysis.formulas import mmc
from capsim.analysis.saturate import find_saturation
from capsim.cli.app import app
from capsim.errors import UsageError

runner = CliRunner()
E_S = 0.010


def _p99(rate: float, servers: int = 4) -> float:
    value = mmc(servers, rate, E_S).sojourn_quantile(0.99)
    assert value is not None
    return value


def _rate_where_p99_is(limit: float, servers: int = 4) -> float:
    low, high = 1.0, servers / E_S * (1 - 1e-9)
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if _p99(middle, servers) < limit else (low, middle)
    return low


def saturated(path: Path, **options: object) -> dict:
    model = capsim.build_model(capsim.load_scenario(path))
    return find_saturation(model, capsim_version=capsim.__version__, **options)  # type: ignore[arg-type]


def test_an_mm4_pool_saturates_at_c_over_es_and_the_knee_is_where_erlang_c_doubles_p99(tmp_path):
    result = saturated(mmc_scenario(tmp_path, slos=""), duration=60.0)
    assert result["bottleneck"] == "server"
    assert result["analytic"]["saturation_rate"] == pytest.approx(400.0, rel=1e-9)
    # Utilisation law on 3 x 60 s replications: the mean busy fraction is good to well under 1%.
    assert result["saturation_rate"] == pytest.approx(400.0, rel=0.02)
    assert result["confirmation"]["below"]["stable"] is True
    assert result["confirmation"]["above"]["bottleneck_saturated"] is True
    # Knee rule: p99 reaches 2x its value at 10% of saturation (40/s). p99 near rho = 0.89 is
    # good to about 5% per point (ORACLES 12.1, M/M/c), which moves the rate by about 1%;
    # 4 sigma plus the bisection precision gives 6%.
    knee = _rate_where_p99_is(2 * _p99(40.0))
    assert result["knee_rate"] == pytest.approx(knee, rel=0.06)
    curve = result["curve"]
    assert [p["rate"] for p in curve] == sorted(p["rate"] for p in curve)
    assert {"rate", "p50", "p99", "error_rate", "utilization"} <= set(curve[0])
    assert curve[0]["utilization"]["server"] == pytest.approx(0.1, rel=0.1)
    assert result["max_rate_meeting_slos"] is None  # no SLOs


def test_the_slo_limit_is_conservative_and_close_to_the_erlang_c_answer(tmp_path):
    path = mmc_scenario(tmp_path, slos="  - {class: requests, p99: 100ms}", duration="60s")
    result = saturated(path, duration=60.0)
    exact = _rate_where_p99_is(0.100)  # about 350/s
    found = result["max_rate_meeting_slos"]
    # The rule needs the upper 95% bound under the limit, so the answer sits a little below the
    # exact rate; p99 noise of ~5% near rho = 0.9 moves the rate by about 1-2%.
    assert exact * 0.92 <= found <= exact * 1.02
    assert result["verification"]["meets_slos"] is True
    assert all(v["passed"] for v in result["slos"])


def test_the_slower_tier_of_a_chain_is_the_bottleneck(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text(
        "name: chain\nsimulation: {duration: 30s, replications: 2}\n"
        "traffic:\n  web: {entry: app, rate: 100/s}\n"
        "tiers:\n"
        "  app: {concurrency: 8, blocking: false, service_time: {dist: exponential, mean: 10ms},"
        " calls: [db]}\n"
        "  db: {type: database, concurrency: 2, service_time: {dist: exponential, mean: 4ms}}\n"
    )
    result = saturated(path, duration=20.0)
    # app: 8 / 10 ms = 800/s; db: 2 / 4 ms = 500/s.
    assert result["analytic"]["bottleneck"] == "db"
    assert result["bottleneck"] == "db"
    assert result["saturation_rate"] == pytest.approx(500.0, rel=0.03)
    assert result["tiers"]["app"]["max_rate"] == pytest.approx(800.0, rel=0.05)


def test_a_closed_only_scenario_has_nothing_to_scale(tmp_path):
    path = tmp_path / "closed.yaml"
    path.write_text(
        "name: closed\ntraffic:\n  users: {entry: app, users: 5, think_time: 1s}\n"
        "tiers:\n  app: {service_time: 10ms}\n"
    )
    with pytest.raises(UsageError, match="open classes"):
        saturated(path)


def test_the_command_prints_the_spec_keys_as_json(tmp_path):
    path = mmc_scenario(tmp_path, rate=100, duration="20s")
    result = runner.invoke(app, ["saturate", str(path), "--duration", "10s", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("bottleneck", "saturation_rate", "knee_rate", "max_rate_meeting_slos", "curve"):
        assert key in data
    assert "max_rate" in data["tiers"]["server"]


def test_bad_options_exit_2_with_a_message(tmp_path):
    path = mmc_scenario(tmp_path)
    result = runner.invoke(app, ["saturate", str(path), "--knee-factor", "0.5"])
    assert result.exit_code == 2
    assert "knee-factor" in result.stderr
    result = runner.invoke(app, ["saturate", str(path), "--duration", "soon"])
    assert result.exit_code == 2


def test_a_run_beyond_the_request_limit_exits_3(tmp_path):
    path = mmc_scenario(tmp_path)
    result = runner.invoke(app, ["saturate", str(path), "--max-requests", "1000"])
    assert result.exit_code == 3
    assert "--max-requests" in result.stderr


def test_markdown_and_table_views_name_the_bottleneck(tmp_path):
    path = mmc_scenario(tmp_path, rate=100, duration="20s")
    for fmt in ("table", "markdown"):
        result = runner.invoke(app, ["saturate", str(path), "--duration", "5s", "-f", fmt])
        assert result.exit_code == 0, result.output
        assert "bottleneck: server" in result.stdout


def test_the_curve_table_says_its_latencies_are_the_worst_class_s(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(
        """\
name: two-classes
simulation: {duration: 20s, warmup: 2s}
traffic:
  fast: {entry: app, rate: 50/s}
  slow: {entry: app, rate: 50/s}
tiers:
  app:
    instances: 4
    service_time: {dist: exponential, mean: 10ms}
    classes:
      slow: {service_time: {dist: exponential, mean: 20ms}}
"""
    )
    result = runner.invoke(app, ["saturate", str(path), "--duration", "5s"])
    assert result.exit_code == 0, result.output
    assert "worst p50" in result.stdout and "worst p99" in result.stdout
    assert "the highest over the 2 classes at each rate" in result.stdout
    one = runner.invoke(
        app, ["saturate", str(mmc_scenario(tmp_path, rate=100, duration="20s")), "--duration", "5s"]
    )
    assert "worst p99" not in one.stdout and "curve p50, p99: class " in one.stdout


SPIKE = """\
name: spike
seed: 5
simulation: {duration: 180s, warmup: 10s}
traffic:
  buy:
    entry: api
    rate: 20/s
    profile:
      - {at: 0s, rate: 20/s}
      - {at: 50s, rate: 20/s}
      - {at: 50s, rate: 200/s}
      - {at: 140s, rate: 200/s}
      - {at: 140s, rate: 20/s}
tiers:
  api:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
"""


def test_a_spike_saturates_the_tier_where_its_peak_fills_it_not_its_calm_minutes(tmp_path):
    # A flash sale: 20/s, then 200/s for 90 s, then 20/s again. Four 10 ms workers carry
    # 400/s, so the spike's peak (the rate axis of saturate) saturates them at 400/s. Judged
    # on the share held over the whole window (calm minutes included, a mean of 110/s), the
    # search said 4,042/s: ten times the load at which the spike overwhelms the tier.
    path = tmp_path / "spike.yaml"
    path.write_text(SPIKE)
    result = saturated(path)
    assert result["offered_rate"] == pytest.approx(200.0)
    assert result["analytic"]["saturation_rate"] == pytest.approx(400.0)
    assert result["saturation_rate"] == pytest.approx(400.0, rel=0.05)
    assert result["tiers"]["api"]["max_rate"] == pytest.approx(400.0, rel=0.05)
