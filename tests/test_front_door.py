"""The first hour of a new user: version, readable tables and units, --load, next steps.

Each test is one rough edge a user met (issue 12), told as what they do and what they must see.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import capsim
from capacitykit import mmc_scenario
from capsim.analysis.points import SloCheck
from capsim.analysis.sizing_report import SizingReport
from capsim.analysis.sweep import parse_vary, run_sweep
from capsim.cli.app import app
from capsim.errors import ScenarioError
from capsim.outputs import cells, render
from capsim.outputs.analytic import render_solve
from capsim.outputs.capacity import render_capacity
from capsim.outputs.fit import Column, fitted_tables, split_columns
from capsim.outputs.report_figures import summary_sentences, timeseries_figures
from capsim.outputs.report_html import render_report_html
from capsim.outputs.report_markdown import render_report_markdown
from capsim.outputs.svg import render_chart
from capsim.units import format_duration, parse_duration

runner = CliRunner()
REPO = Path(__file__).parents[1]

# Three classes with long names and six tiers: a wide what-if table.
WIDE = """\
name: wide
seed: 5
simulation: {duration: 4s, warmup: 1s}
traffic:
  product_pages: {entry: front, rate: 120/s}
  search_requests: {entry: front, rate: 40/s}
  checkout_flow: {entry: front, rate: 10/s}
tiers:
  front: {type: service, concurrency: 8, service_time: 1ms, calls: [app]}
  app:
    type: service
    concurrency: 4
    service_time: {dist: exponential, mean: 5ms}
    calls: [{tier: session_cache, probability: 0.5}, {tier: orders_database, probability: 0.2}]
  session_cache: {type: cache, hit_ratio: 0.9, on_miss: sessions}
  sessions: {type: service, concurrency: 2, service_time: 2ms}
  orders_database: {type: database, concurrency: 2, service_time: {dist: exponential, mean: 3ms}}
  audit_log: {type: service, service_time: 1ms}
slos:
  - {class: product_pages, p99: 200ms}
  - {tier: app, utilization: 80%}
"""

TINY = """\
name: tiny
seed: 3
simulation: {duration: 10s, warmup: 1s}
traffic:
  web: {entry: app, rate: 50/s}
tiers:
  app: {type: service, concurrency: 2, service_time: {dist: exponential, mean: 10ms}}
slos:
  - {class: web, p99: 1s}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wide") / "wide.yaml"
    path.write_text(WIDE)
    return path


@pytest.fixture(scope="module")
def wide_sweep(wide: Path) -> dict[str, Any]:
    return run_sweep(
        wide, [parse_vary("tiers.app.concurrency=2..6:3")], capsim_version=capsim.__version__
    )


def lines_of(text: str) -> list[str]:
    return text.splitlines()


# ---- the version ------------------------------------------------------------------------------


def test_version_alone_prints_the_version_and_succeeds() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "capsim", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"capsim {capsim.__version__}\n"


# ---- tables that fit, with no number cut ------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120])
def test_a_wide_sweep_fits_the_terminal_and_shows_every_figure_whole(
    wide_sweep: dict[str, Any], width: int
) -> None:
    text = render_capacity(wide_sweep, "table", width=width)
    assert "…" not in text
    assert max(len(line) for line in lines_of(text)) <= width
    for point in wide_sweep["points"]:
        for entry in point["classes"].values():
            assert cells.rate(entry["throughput"]) in text
            assert cells.time(entry["latency"]["p99"]) in text
        for tier in point["tiers"].values():
            assert cells.percent(tier["utilization"]) in text
    for name in ("product_pages", "search_requests", "checkout_flow", "orders_database"):
        assert name in text  # headers whole too


def test_the_sweep_command_lays_its_table_out_for_the_terminal_width(wide: Path) -> None:
    result = runner.invoke(
        app,
        ["sweep", str(wide), "--vary", "tiers.app.concurrency=2,4"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert max(len(line) for line in lines_of(result.stdout)) <= 80
    assert "What-if (continued)" in result.stdout


@pytest.mark.parametrize("width", [80, 120])
def test_run_and_solve_tables_fit_80_and_120_columns_without_a_cut_figure(
    wide: Path, width: int
) -> None:
    model = capsim.build_model(capsim.load_scenario(wide))
    report = capsim.simulate(model)
    table = render(report, "table", width=width)
    from capsim.analysis.solve import solve

    solved = solve(model, capsim_version=capsim.__version__)
    from capsim.analysis.report import Report

    analytic = render_solve(Report(data=solved, warnings=[]), "table", width=width)
    for text in (table, analytic):
        assert "…" not in text
        assert max(len(line) for line in lines_of(text)) <= width
    for name, entry in report.data["classes"].items():
        assert name in table
        assert cells.time(entry["latency"]["p999"]) in table
    assert "orders_database" in analytic


def test_columns_are_split_by_group_and_keep_their_row_labels() -> None:
    columns = [Column("point", justify="left")] + [
        Column(f"{name}\n{figure}", group=name)
        for name in ("alpha", "beta")
        for figure in ("throughput", "p50", "p99")
    ]
    rows = [["1", "1,000.0/s", "10ms", "20ms", "2,000.0/s", "11ms", "21ms"]]
    parts = split_columns(columns, rows, width=50)
    assert parts == [[0, 1, 2, 3], [0, 4, 5, 6]]  # each class's figures together
    tables = fitted_tables("What-if", columns, rows, width=50)
    assert [t.title for t in tables] == ["What-if", "What-if (continued)"]


def test_solve_names_each_formula_once_under_the_table_and_never_prints_rounding_noise(
    wide: Path,
) -> None:
    result = runner.invoke(app, ["solve", str(wide)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert not re.search(r"\de-\d", result.stdout), result.stdout  # no 1.39e-16us
    assert "formulas:" in result.stdout
    assert re.search(r"^  \[1\] ", result.stdout, re.M)
    formula_rows = [line for line in lines_of(result.stdout) if "approx." in line]
    assert formula_rows and all(re.search(r"\[\d+\]$", line) for line in formula_rows)


# ---- units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.39e-16, "0s"), (2.97e-20, "0s"), (1.67e-9, "1.67ns"), (0.00011814, "118.1us"),
     (3.6e9, "1000000h")],
)  # fmt: skip
def test_durations_read_without_exponents_or_noise(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(min_value=1e-12, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_a_duration_never_prints_in_exponent_notation(seconds: float) -> None:
    text = format_duration(seconds)
    assert not re.search(r"\de[+-]?\d", text), text
    if seconds >= 1e-9:
        assert parse_duration(text) == pytest.approx(seconds, rel=1e-3)


@pytest.mark.parametrize(
    ("statistic", "observed", "shown"),
    [("utilization", 0.7031, "observed 70.31%"), ("p99", 3.867, "observed 3.867s"),
     ("error_rate", 0.0123, "observed 1.23%"), ("wait_p99", 0.2004, "observed 200.4ms")],
)  # fmt: skip
def test_a_failed_objective_reads_in_the_unit_of_its_slo(
    statistic: str, observed: float, shown: str
) -> None:
    check = SloCheck("x", statistic, 0.5, observed, observed, passed=False)
    assert shown in check.describe()


@pytest.mark.parametrize(
    ("value", "text"),
    [(14110.3, "14,110"), (0.0123456, "0.01235"), (2.5, "2.5"), (100.0, "100"), (1e9, "1,000,000,000")],
)  # fmt: skip
def test_report_figures_have_separators_and_no_exponent(value: float, text: str) -> None:
    assert cells.significant(value) == text


def test_the_report_summary_writes_rates_like_a_person(tmp_path: Path) -> None:
    report = SizingReport(
        result={"scenario": "s", "slos": [], "classes": {}, "tiers": {}},
        bottleneck={"tier": "app", "occupancy": 0.5, "saturation_rate": 14110.3,
                    "offered_rate": 5000.0, "stable": True},
    )  # fmt: skip
    text = " ".join(summary_sentences(report))
    assert "14,110/s" in text and "5,000/s" in text
    assert "e+" not in text


# ---- warnings once, one spelling --------------------------------------------------------------


def test_a_warning_is_printed_once_on_stderr_and_kept_in_the_json(tmp_path: Path) -> None:
    overloaded = tmp_path / "overloaded.yaml"
    overloaded.write_text(TINY.replace("rate: 50/s", "rate: 400/s"))
    result = runner.invoke(app, ["run", str(overloaded)])
    assert "warning:" not in result.stdout
    assert result.stderr.count("is OVERLOADED") == 1, result.stderr
    data = json.loads(runner.invoke(app, ["run", str(overloaded), "-f", "json"]).stdout)
    assert any("is OVERLOADED" in warning for warning in data["warnings"])


def test_what_users_read_spells_utilization_one_way(wide: Path) -> None:
    british = re.compile(r"utilis", re.I)
    for path in [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "src").rglob("*.py")]:
        assert not british.search(path.read_text(encoding="utf-8")), path
    result = runner.invoke(app, ["run", str(wide)])
    assert "utilization" in result.stdout and not british.search(result.stdout)


# ---- --load -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("load", "factor"), [("2x", 2.0), ("200%", 2.0), ("100/s", 2.0)])
def test_run_takes_a_load_factor_or_a_total_rate(tiny: Path, load: str, factor: float) -> None:
    result = runner.invoke(app, ["run", str(tiny), "--load", load, "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["load"] == pytest.approx(factor)
    assert data["classes"]["web"]["offered_rate"] == pytest.approx(50 * factor, rel=0.15)
    table = runner.invoke(app, ["run", str(tiny), "--load", load, "-q"]).stdout
    assert "open traffic at 2x (--load)" in table


def test_a_bad_load_is_a_usage_error(tiny: Path) -> None:
    result = runner.invoke(app, ["run", str(tiny), "--load", "lots"])
    assert result.exit_code == 2
    assert "--load 'lots' is not a load" in result.stderr


def test_check_fails_at_ten_times_the_load_it_passes_at(tiny: Path) -> None:
    assert runner.invoke(app, ["check", str(tiny)]).exit_code == 0
    heavy = runner.invoke(app, ["check", str(tiny), "--load", "10x"])
    assert heavy.exit_code == 1, heavy.output
    assert "open traffic at 10x the scenario's (--load)" in heavy.stdout


def test_sweep_and_report_scale_the_traffic_too(tiny: Path, tmp_path: Path) -> None:
    swept = runner.invoke(
        app, ["sweep", str(tiny), "--vary", "tiers.app.concurrency=4", "--load", "3x", "-f", "json"]
    )
    assert swept.exit_code == 0, swept.output
    data = json.loads(swept.stdout)
    assert data["load"] == 3.0
    assert data["points"][0]["classes"]["web"]["throughput"] == pytest.approx(150, rel=0.15)
    target = tmp_path / "report.md"
    done = runner.invoke(
        app, ["report", str(tiny), "-o", str(target), "--no-curve", "--load", "2x"]
    )
    assert done.exit_code == 0, done.output
    assert "open traffic at 2x (--load)" in target.read_text()


def test_size_writes_the_scenario_at_the_load_it_sized_for_without_stale_comments(
    tmp_path: Path,
) -> None:
    path = mmc_scenario(tmp_path, servers=2, duration="20s")
    path.write_text(path.read_text().replace("concurrency: 2", "concurrency: 2   # two workers"))
    written = tmp_path / "sized.yaml"
    result = runner.invoke(
        app, ["size", str(path), "--load", "2x", "--duration", "10s", "--write", str(written)]
    )
    assert result.exit_code == 0, result.output
    text = written.read_text()
    assert "two workers" not in text
    assert "rate: 640/s}  # 2x the original 320/s (--load)" in text
    assert re.search(r"concurrency: \d+  # capsim size at 2x load \(was 2\)", text)
    assert text.startswith("# Sized by `capsim size --load 2x`")
    assert runner.invoke(app, ["validate", str(written)]).exit_code == 0


# ---- after run: next steps --------------------------------------------------------------------


def test_run_ends_with_the_bottleneck_its_headroom_and_what_to_try_next(tiny: Path) -> None:
    text = runner.invoke(app, ["run", str(tiny), "--set", "tiers.app.concurrency=3"]).stdout
    footer = text[text.index("Next steps:") :]
    # M/M/3 at 10 ms saturates at 300/s; 50/s is offered.
    assert "app is the bottleneck: the analytic bound puts its saturation near 300.0/s" in footer
    assert "6.00x the 50.0/s offered now" in footer
    for command in ("saturate", "size", "report"):
        assert f"capsim {command} {tiny} --set tiers.app.concurrency=3" in footer
    assert "engine:" not in text


def test_quiet_drops_the_footer_and_verbose_shows_the_engine(tiny: Path) -> None:
    quiet = runner.invoke(app, ["run", str(tiny), "--quiet"]).stdout
    assert "Next steps:" not in quiet
    assert quiet.rstrip().endswith("The SLO is met.")
    verbose = runner.invoke(app, ["run", str(tiny), "--verbose"]).stdout
    assert "engine: " in verbose
    data = json.loads(runner.invoke(app, ["run", str(tiny), "-f", "json"]).stdout)
    assert data["engine"]["path"]
    assert "Next steps" not in json.dumps(data)


# ---- the report: currency and axes ------------------------------------------------------------

COSTS = {"app": {"units": 2.0, "per_instance_hour": 0.25, "per_hour": 0.5, "per_month": 365.25}}


def priced(currency: str | None) -> SizingReport:
    return SizingReport(
        result={"scenario": "s", "slos": [], "classes": {}, "tiers": {}, "passed": True,
                "capsim_version": "0", "seed": 0, "replications": 1, "duration": 10.0},
        costs=COSTS,
        currency=currency,
    )  # fmt: skip


def test_costs_carry_the_scenarios_currency(tmp_path: Path) -> None:
    html = render_report_html(priced("EUR"))
    assert "per month (EUR)" in html and "365.25 EUR per month" in html
    markdown, _ = render_report_markdown(priced("EUR"), "r")
    assert "per month (EUR)" in markdown


def test_costs_without_a_currency_say_so(tmp_path: Path) -> None:
    html = render_report_html(priced(None))
    assert "per month (price units)" in html
    assert "add `currency: USD`" in html.replace("&#x27;", "'")


def test_a_scenario_names_its_currency_in_iso_4217(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("currency: EUR\n" + TINY)
    assert capsim.build_model(capsim.load_scenario(good)).currency == "EUR"
    bad = tmp_path / "bad.yaml"
    bad.write_text("currency: euros\n" + TINY)
    with pytest.raises(ScenarioError, match=r"bad.yaml:1:.*ISO 4217, such as USD"):
        capsim.load_scenario(bad)


def _series_report(p99: list[float | None]) -> SizingReport:
    t = [5.0 * i for i in range(len(p99))]
    timeseries = {
        "bucket": 5.0,
        "t": t,
        "classes": {"web": {"p99": p99}},
        "tiers": {"app": {"utilization": [0.5] * len(t)}},
    }
    return SizingReport(result={"timeseries": timeseries, "warmup": 6.0})


def _chart(report: SizingReport, key: str) -> Any:
    return next(f.spec for f in timeseries_figures(report) if f.key == key)


def test_time_plots_end_where_the_data_ends() -> None:
    report = _series_report([0.05] * 13)  # buckets from 0 s to 60 s: the data ends at 65 s
    chart = _chart(report, "occupancy-over-time")
    assert (chart.x_min, chart.x_max) == (0.0, 65.0)
    svg = render_chart(chart)
    ticks = [float(x) for x in re.findall(r'<line x1="([\d.]+)" y1="32"', svg)]
    right_edge = max(float(x) for x in re.findall(r'x2="([\d.]+)" y2="256"', svg))
    assert max(ticks) <= right_edge
    labels = re.findall(r'font-size="10" text-anchor="middle"[^>]*>([^<]+)<', svg)
    assert labels == ["0s", "15s", "30s", "45s", "60s"]  # round time ticks, none past the data
    assert "80s" not in labels


def test_a_p99_axis_runs_from_zero_to_a_little_above_the_highest_value() -> None:
    chart = _chart(_series_report([0.08, 0.09, 0.29, 0.1]), "p99-over-time")
    assert not chart.y_log and chart.y_min == 0.0
    svg = render_chart(chart)
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)<', svg)
    assert labels[0] == "0s" and labels[-1] == "300ms"


def test_a_p99_axis_goes_logarithmic_when_values_span_decades() -> None:
    chart = _chart(_series_report([0.01, 0.02, 2.5, None]), "p99-over-time")
    assert chart.y_log and "log scale" in chart.y_label


def test_a_cost_bar_leaves_room_for_its_value_and_currency() -> None:
    from capsim.outputs.svg import Bars, render_bars

    bars = Bars("cost", "Cost per tier", ["app", "db"], [420.77, 12.5],
                value_format=lambda v: f"{cells.money(v, 'EUR')}/month")  # fmt: skip
    svg = render_bars(bars)
    for x, text in re.findall(r'<text x="([\d.]+)"[^>]*text-anchor="start">([^<]+)<', svg):
        assert float(x) + 6.5 * len(text) <= bars.width, text


def test_the_footer_says_when_the_bottleneck_is_overloaded_or_autoscales() -> None:
    from capsim.analysis.headroom import Headroom
    from capsim.outputs.table import next_steps

    over = next_steps(Headroom("db", 100.0, 150.0), "s.yaml")
    assert "overloaded, 150.0/s is offered now, 1.50x what it can carry." in over[1]
    scaling = next_steps(Headroom("app", 400.0, 200.0, instances=2, autoscale_max=12), "s.yaml")
    assert "with the 2 instance(s) it starts with: it autoscales up to 12." in scaling[1]
    assert next_steps(None, "s.yaml --load 2x")[1] == (
        "  find the saturation load and the p99 knee by simulation:"
    )


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_rates_and_ratios_never_print_in_exponent_notation(value: float) -> None:
    from capsim.outputs.cells import share
    from capsim.units import format_rate, format_ratio

    for text in (format_rate(value), format_ratio(min(value, 1.0)), share(min(value, 1.0))):
        assert not re.search(r"\de[+-]?\d", text), text


def test_compare_scales_both_scenarios_and_refuses_to_scale_a_saved_result(
    tiny: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(TINY.replace("concurrency: 2", "concurrency: 3"))
    result = runner.invoke(app, ["compare", str(tiny), str(other), "--load", "2x", "-f", "json"])
    assert result.exit_code == 0, result.output
    throughput = json.loads(result.stdout)["classes"]["web"]["throughput"]
    assert throughput["a"] == pytest.approx(100, rel=0.15)
    assert throughput["b"] == pytest.approx(100, rel=0.15)
    saved = tmp_path / "saved.json"
    runner.invoke(app, ["run", str(tiny), "-f", "json", "-o", str(saved)])
    refused = runner.invoke(app, ["compare", str(saved), str(other), "--load", "2x"])
    assert refused.exit_code == 2
    assert "--load changes scenarios, but" in refused.stderr


def test_saturate_starts_from_the_load_it_is_given(tiny: Path) -> None:
    result = runner.invoke(
        app,
        ["saturate", str(tiny), "--load", "2x", "--replications", "1", "--duration", "5s",
         "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["offered_rate"] == pytest.approx(100.0)
    assert data["analytic"]["saturation_rate"] == pytest.approx(200.0, rel=0.01)  # M/M/2, 10 ms
