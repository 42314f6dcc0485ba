"""`capsim forecast`: the dates a growing load saturates a tier and breaks an SLO, and the plan.

An M/M/4 pool with 10 ms exponential service saturates at c / E[S] = 400/s and its p99 reaches
60 ms where Erlang C says; with the load growing 25% a month from a known rate, both answers
must land in the calendar month the closed forms predict.
"""

from __future__ import annotations

import json
import math
import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capacitykit import mmc_scenario
from capsim.analysis.forecast import DAYS_PER_MONTH, fit_growth
from capsim.analysis.formulas import mmc
from capsim.cli.app import app

runner = CliRunner()
E_S = 0.010
START = date(2027, 1, 1)


def _rate_where_p99_is(limit: float, servers: int = 4) -> float:
    low, high = 1.0, servers / E_S * (1 - 1e-9)
    for _ in range(100):
        middle = 0.5 * (low + high)
        p99 = mmc(servers, middle, E_S).sojourn_quantile(0.99)
        assert p99 is not None
        low, high = (middle, high) if p99 < limit else (low, middle)
    return low


def _month_reaching(rate: float, base: float, growth: float) -> tuple[int, int]:
    """The calendar month in which base x (1 + growth)^months first reaches `rate`."""
    months = math.log(rate / base) / math.log1p(growth)
    day = START + timedelta(days=math.ceil(months * DAYS_PER_MONTH))
    return day.year, day.month


def forecast_json(path: Path, *options: str) -> dict:
    result = runner.invoke(
        app, ["forecast", str(path), "--from", START.isoformat(), *options, "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_mmc_breaks_its_p99_slo_and_saturates_in_the_months_erlang_c_predicts(tmp_path):
    growth = 0.25
    slo_rate = _rate_where_p99_is(0.060)
    base = round(slo_rate / (1 + growth) ** 3.5, 1)  # the breach falls mid-month
    path = mmc_scenario(tmp_path, rate=base, duration="60s")
    data = forecast_json(
        path, "--growth", "25%/month", "--horizon", "12mo", "--no-plan", "--replications", "3"
    )
    breach = date.fromisoformat(data["first_slo_breach"]["date"])
    assert (breach.year, breach.month) == _month_reaching(slo_rate, base, growth)
    assert data["first_slo_breach"]["slo"] == "requests p99 <= 60ms"
    saturates = date.fromisoformat(data["tiers"]["server"]["saturates_on"])
    assert (saturates.year, saturates.month) == _month_reaching(4 / E_S, base, growth)
    assert data["growth"] == {"monthly": 0.25, "source": "--growth 25%/month", "fit": None}
    assert data["plan"] == []


def test_a_spike_breaks_the_slo_on_its_day_and_the_plan_sizes_for_it(tmp_path):
    path = mmc_scenario(tmp_path, rate=150, duration="20s")
    data = forecast_json(
        path,
        "--growth", "2%/month",
        "--horizon", "6mo",
        "--event", "2027-02-15=3x",
    )  # fmt: skip
    assert data["first_slo_breach"]["date"] == "2027-02-15"
    assert data["first_slo_breach"]["by_event"] == "2027-02-15=3x"
    assert data["tiers"]["server"]["saturates_on"] == "2027-02-15"
    dates = [step["date"] for step in data["plan"]]
    assert dates == ["2027-01-01", "2027-02-15", "2027-04-01", "2027-07-01"]
    spike = data["plan"][1]
    assert spike["load"] == pytest.approx(3 * 1.02 ** (45 / DAYS_PER_MONTH))
    quiet = data["plan"][0]["tiers"]["server"]["concurrency"]
    assert spike["tiers"]["server"]["concurrency"] > quiet
    for step in data["plan"]:
        assert step["verified"] is True
        assert step["cost_per_month"] == pytest.approx(730 * step["cost_per_hour"])


def test_history_fit_recovers_a_synthetic_growth_rate():
    rng = random.Random(7)
    true = 0.06
    rows = [
        (START + timedelta(days=round(k * DAYS_PER_MONTH)),
         1000 * (1 + true) ** k * math.exp(rng.gauss(0, 0.03)))
        for k in range(18)
    ]  # fmt: skip
    fit = fit_growth(rows, "synthetic")
    assert fit.monthly == pytest.approx(true, abs=0.005)
    assert fit.fit is not None
    low, high = fit.fit["monthly_ci95"]
    assert low < true < high
    assert fit.fit["r2"] > 0.95


def test_a_history_file_sets_the_growth_with_its_fit(tmp_path):
    history = tmp_path / "peaks.csv"
    lines = ["date,rate"] + [
        f"{(START - timedelta(days=round(k * DAYS_PER_MONTH))).isoformat()},{100 / 1.05**k:.4f}"
        for k in range(6, -1, -1)
    ]
    history.write_text("\n".join(lines) + "\n")
    path = mmc_scenario(tmp_path, rate=100, duration="20s")
    data = forecast_json(path, "--history", str(history), "--no-plan")
    assert data["growth"]["monthly"] == pytest.approx(0.05, abs=1e-3)
    assert data["growth"]["fit"]["points"] == 7
    assert data["growth"]["fit"]["r2"] > 0.9999  # exact but for dates rounded to days


@pytest.mark.parametrize(
    ("options", "history", "message"),
    [
        (["--growth", "8%/month", "--from", "2027-13-01"], None, "--from '2027-13-01' is not a date"),
        (["--growth", "-100%/month"], None, "above -100%"),
        (["--growth", "eight"], None, "is not a growth rate"),
        (["--growth", "8%/month", "--horizon", "24 fortnights"], None, "mo/months, w, d or y"),
        (
            ["--growth", "8%/month", "--from", "2027-01-01", "--horizon", "6mo",
             "--event", "2027-11-26=3x"],
            None,
            "outside the horizon 2027-01-01 .. 2027-07-01",
        ),
        (["--growth", "8%/month", "--event", "black-friday"], None, "write DATE=FACTOR"),
        ([], "date,rate\n2026-01-01,100\n2026-02-01,110\n", "at least 3 dated peaks"),
        ([], "2026-01-01,100\n2026-03-01,110\n2026-02-01,120\n", "peaks.csv:3:1: dates must increase"),
        ([], "2026-01-01,100\n2026-02-01,lots\n2026-03-01,120\n", "peaks.csv:2:12: 'lots' is not a rate"),
        (["--growth", "8%/month", "--history", "X"], None, "exactly one of --growth"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_located_message(tmp_path, options, history, message):
    path = mmc_scenario(tmp_path)
    if history is not None:
        peaks = tmp_path / "peaks.csv"
        peaks.write_text(history)
        options = [*options, "--history", str(peaks)]
    result = runner.invoke(app, ["forecast", str(path), *options])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_shrinking_load_never_saturates_inside_the_horizon(tmp_path):
    path = mmc_scenario(tmp_path, rate=200, duration="20s")
    data = forecast_json(path, "--growth", "-5%/month", "--horizon", "2y", "--no-plan")
    assert data["until"] == "2029-01-01"
    assert data["tiers"]["server"]["saturates_on"] is None
    assert data["first_slo_breach"]["date"] is None
    assert data["first_slo_breach"]["determined"] is True


def test_the_table_and_markdown_show_the_dates_and_the_plan(tmp_path):
    path = mmc_scenario(tmp_path, rate=200, duration="20s")
    options = ["--from", "2027-01-01", "--growth", "10%/month", "--horizon", "6mo", "--step", "6mo"]
    table = runner.invoke(app, ["forecast", str(path), *options])
    assert table.exit_code == 0, table.output
    assert "first SLO breach: 2027-0" in table.stdout
    assert "Capacity plan" in table.stdout
    markdown = runner.invoke(app, ["forecast", str(path), *options, "-f", "markdown"])
    assert markdown.exit_code == 0, markdown.output
    assert markdown.stdout.startswith("# capsim forecast: mmc")
    assert "| 2027-07-01 | step | 1.76x |" in markdown.stdout  # 1.1 ** (181 days / 30.44)
    assert "| cost/hour | cost/month |" in markdown.stdout


def test_a_process_pool_gives_the_serial_forecast_byte_for_byte(tmp_path):
    path = mmc_scenario(tmp_path, rate=200, duration="10s")
    options = ["--growth", "10%/month", "--horizon", "6mo", "--step", "6mo"]
    serial = forecast_json(path, *options)
    pooled = forecast_json(path, *options, "--executor", "process", "--workers", "2")
    assert pooled == serial


def test_each_plan_step_costs_its_fleet_under_the_tiers_pricing_model(tmp_path):
    # One worker per instance, sized by instances; 2 instances reserved at 40% off 0.5 an hour.
    path = mmc_scenario(
        tmp_path, rate=150, servers=1, duration="20s", sizing="{of: instances, min: 1, max: 40}"
    )
    reserved = "tiers.server.cost.reserved={instances: 2, discount: 40%}"
    data = forecast_json(
        path, "--growth", "25%/month", "--horizon", "6mo", "--step", "3mo", "--set", reserved
    )
    counts = [step["tiers"]["server"]["instances"] for step in data["plan"]]
    assert counts == sorted(counts) and counts[-1] > counts[0] > 2
    for step, n in zip(data["plan"], counts, strict=True):
        # The base is paid every hour at 0.30 each; the instances above it on demand at 0.50.
        assert step["cost_per_hour"] == pytest.approx(2 * 0.30 + (n - 2) * 0.50)
        assert step["cost_per_month"] == pytest.approx(730 * step["cost_per_hour"])
