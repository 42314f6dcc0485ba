"""The command line as SPEC.md §1 states it: the options every simulating command takes, and
every output format on every command that prints a result.

The contract's words are copied here (the tests never read the contract file itself): "Options every
simulating command takes: --set PATH=VALUE, --seed N, --replications N, --duration D,
--format table|json|markdown|csv (default table), --output FILE (default stdout), --load L,
--executor serial|process|dask, --workers N, --scheduler tcp://HOST:PORT, --percentiles".
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner, Result

from capsim.cli.app import app

runner = CliRunner()
PLAIN_ENV = {"NO_COLOR": "1", "COLUMNS": "120", "GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None}

#: SPEC.md §1's list of options every simulating command takes.
COMMON_OPTIONS = (
    "--set",
    "--seed",
    "--replications",
    "--duration",
    "--format",
    "--output",
    "--load",
    "--executor",
    "--workers",
    "--scheduler",
    "--percentiles",
)
FORMATS = ("table", "json", "markdown", "csv")
#: The commands that simulate (solve, validate, schema, calibrate and fit-usl do not).
SIMULATING = ("run", "check", "report", "saturate", "size", "sweep", "compare", "forecast")

SMALL = """\
name: small
simulation: {duration: 4s, warmup: 0.5s}
traffic:
  browse: {entry: app, rate: 50/s}
tiers:
  app: {type: service, concurrency: 4, service_time: {dist: exponential, mean: 10ms}}
"""
OVERLOADED = """\
name: overloaded
simulation: {duration: 20s}
traffic:
  browse: {entry: app, rate: 150/s}
tiers:
  app: {type: service, service_time: 10ms}
"""
STEPPED_TEST = "concurrency,throughput\n1,100\n2,190\n4,350\n8,560\n16,700\n32,720\n"


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env=PLAIN_ENV)


def command_options(name: str) -> dict[str, object]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {
        flag: param for param in command.params for flag in (*param.opts, *param.secondary_opts)
    }


def long_csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, text
    assert list(rows[0]) == ["section", "name", "metric", "value"]
    return rows


def figure(rows: list[dict[str, str]], section: str, metric: str, name: str | None = None) -> str:
    (value,) = [
        r["value"]
        for r in rows
        if r["section"] == section and r["metric"] == metric and (name is None or r["name"] == name)
    ]
    return value


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.mark.parametrize("command", SIMULATING)
def test_every_simulating_command_takes_the_options_the_contract_lists(command: str) -> None:
    options = command_options(command)
    assert [o for o in COMMON_OPTIONS if o not in options] == []
    assert "-o" in options and "-f" in options


@pytest.mark.parametrize("command", [c for c in SIMULATING if c != "report"])
def test_every_simulating_command_offers_the_four_formats(command: str) -> None:
    shown = runner.invoke(app, [command, "--help"], env={**PLAIN_ENV, "COLUMNS": "200"})
    (choices,) = re.findall(r"--format <([a-z|]+)>", shown.stdout)
    assert [f for f in FORMATS if f not in choices.split("|")] == []


def test_backtest_takes_every_common_option_but_load_which_the_measurements_set() -> None:
    options = command_options("backtest")
    assert [o for o in COMMON_OPTIONS if o not in options] == ["--load"]


def test_saturate_as_csv_holds_the_json_figures(small: Path) -> None:
    args = ("saturate", str(small), "--duration", "2s", "--replications", "1")
    as_json = invoke(*args, "--format", "json")
    as_csv = invoke(*args, "--format", "csv")
    assert as_json.exit_code == 0 and as_csv.exit_code == 0, as_csv.output
    data, rows = json.loads(as_json.stdout), long_csv(as_csv.stdout)
    assert float(figure(rows, "result", "saturation_rate")) == data["saturation_rate"]
    assert figure(rows, "result", "bottleneck") == "app"
    # A top-level list (the curve) is numbered from 0, its nested figures dotted.
    first = data["curve"][0]
    assert float(figure(rows, "curve", "utilization.app", name="0")) == first["utilization"]["app"]


def test_sweep_compare_and_solve_print_csv(small: Path, tmp_path: Path) -> None:
    sweep = invoke("sweep", str(small), "--vary", "tiers.app.instances=1..2:2", "-f", "csv")
    assert sweep.exit_code == 0, sweep.output
    assert figure(long_csv(sweep.stdout), "result", "command") == "sweep"
    bigger = tmp_path / "bigger.yaml"
    bigger.write_text(SMALL.replace("concurrency: 4", "concurrency: 8"))
    compare = invoke("compare", str(small), str(bigger), "--format", "csv")
    assert compare.exit_code == 0, compare.output
    assert figure(long_csv(compare.stdout), "result", "command") == "compare"
    solve = invoke("solve", str(small), "--format", "csv")
    assert solve.exit_code == 0, solve.output
    assert float(figure(long_csv(solve.stdout), "tiers", "utilization", name="app")) == (
        pytest.approx(50 * 0.010 / 4)
    )


def test_fit_usl_prints_csv_with_intervals_as_low_and_high(tmp_path: Path) -> None:
    steps = tmp_path / "steps.csv"
    steps.write_text(STEPPED_TEST)
    result = invoke("fit-usl", str(steps), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = long_csv(result.stdout)
    low, high = (float(figure(rows, "ci95", f"lambda.{end}")) for end in ("low", "high"))
    assert low < float(figure(rows, "result", "lambda")) < high
    assert figure(rows, "sources", "value", name="0") == str(steps)


def test_check_prints_table_as_its_text_view_and_writes_output_with_the_same_exit_code(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "overloaded.yaml"
    scenario.write_text(OVERLOADED)
    text = invoke("check", str(scenario))
    table = invoke("check", str(scenario), "--format", "table")
    assert text.exit_code == table.exit_code == 1
    assert table.stdout == text.stdout
    assert table.stdout.startswith("FAIL: tier app OVERLOADED")
    written = tmp_path / "verdicts.json"
    to_file = invoke("check", str(scenario), "-f", "json", "-o", str(written))
    assert to_file.exit_code == 1
    assert to_file.stdout == ""
    verdicts = json.loads(written.read_text())
    assert verdicts["passed"] is False and verdicts["overloaded"][0]["tier"] == "app"


def test_check_as_csv_lists_the_verdict_and_each_slo(small: Path) -> None:
    result = invoke("check", str(small), "-f", "csv", "--set", "slos=[{class: browse, p99: 1s}]")
    assert result.exit_code == 0, result.output
    rows = long_csv(result.stdout)
    assert figure(rows, "result", "passed") == "true"
    assert figure(rows, "slos", "slo", name="0") == "browse p99 <= 1s"
    assert figure(rows, "slos", "passed", name="0") == "true"


def test_check_refuses_an_output_in_a_missing_folder_before_simulating(
    small: Path, tmp_path: Path
) -> None:
    result = invoke("check", str(small), "-o", str(tmp_path / "missing" / "v.txt"))
    assert result.exit_code == 2
    assert "folder" in result.stderr and "does not exist" in result.stderr


def test_forecast_starts_from_the_load_given_with_load(small: Path) -> None:
    args = ("forecast", str(small), "--growth", "8%/month", "--no-plan", "--duration", "2s")
    today = json.loads(invoke(*args, "-f", "json").stdout)
    doubled = invoke(*args, "-f", "json", "--load", "2x", "--percentiles", "50,99.9")
    assert doubled.exit_code == 0, doubled.output
    data = json.loads(doubled.stdout)
    assert data["offered_rate"] == pytest.approx(2 * today["offered_rate"])
    assert data["load"] == 2.0 and "load" not in today


def test_under_github_actions_check_json_on_stdout_stays_pure_json(tmp_path: Path) -> None:
    """SPEC §1: results go to stdout, warnings and errors to stderr, so `| jq .` always works;
    a workflow's `::error` annotations are errors, and the runner reads them on stderr too."""
    scenario = tmp_path / "overloaded.yaml"
    scenario.write_text(OVERLOADED)
    env = {**PLAIN_ENV, "GITHUB_ACTIONS": "true"}
    as_json = runner.invoke(app, ["check", str(scenario), "-f", "json"], env=env)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["passed"] is False
    assert "::error file=" in as_json.stderr
    as_text = runner.invoke(app, ["check", str(scenario)], env=env)
    assert "::error file=" in as_text.stdout


def test_solve_estimates_at_the_load_given_with_load(small: Path) -> None:
    """Not a simulating command, but a planner's first what-if: `solve --load 3x` as `run`'s."""
    result = invoke("solve", str(small), "--load", "3x", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["load"] == 3.0
    assert data["classes"]["browse"]["offered_rate"] == pytest.approx(150.0)
    assert data["tiers"]["app"]["utilization"] == pytest.approx(150 * 0.010 / 4)
    table = invoke("solve", str(small), "--load", "3x")
    assert "open traffic at 3x (--load)" in table.stdout.splitlines()[0]


LOCUST_STATS = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,browse,3000,0,12,12.0,12,13,100,50.0,0.0,12,12,12,12,12,12,12,12,13,13,13
,Aggregated,3000,0,12,12.0,12,13,100,50.0,0.0,12,12,12,12,12,12,12,12,13,13,13
"""


def test_a_backtest_whose_model_overloads_a_tier_at_the_measured_load_fails(
    small: Path, tmp_path: Path
) -> None:
    """SPEC §2: "Every verdict also fails when a tier is not in steady state ... an overloaded
    tier is never a pass". The model's latencies match the measurements, but its order queue
    (asynchronous, off the latency path) cannot keep up with the load the real system served."""
    stats = tmp_path / "run_stats.csv"
    stats.write_text(LOCUST_STATS)
    args = [
        "backtest",
        str(small),
        str(stats),
        "--set",
        "tiers.app={service_time: 12ms, concurrency: 64}",
    ]
    fits = invoke(*args, "-f", "json")
    assert fits.exit_code == 0, fits.output
    assert json.loads(fits.stdout)["overloaded"] == []
    queue = [
        "--set",
        "tiers.app.calls=[orders]",
        "--set",
        "tiers.orders={type: queue, service_time: 40ms}",
    ]
    overloaded = invoke(*args, *queue, "-f", "json")
    assert overloaded.exit_code == 1
    data = json.loads(overloaded.stdout)
    assert all(row["passed"] for row in data["comparisons"])
    assert data["passed"] is False and data["overloaded"][0]["tier"] == "orders"
    table = invoke(*args, *queue)
    assert "FAIL: the model is off: tier OVERLOADED at the measured load (orders" in table.stdout


def test_saturate_records_the_load_given_with_load_and_says_so(small: Path) -> None:
    args = ("saturate", str(small), "--load", "2x", "--duration", "2s", "--replications", "1")
    data = json.loads(invoke(*args, "-f", "json").stdout)
    assert data["load"] == 2.0 and data["offered_rate"] == pytest.approx(100.0)
    assert "open traffic at 2x (--load)" in invoke(*args).stdout


def test_load_on_a_scenario_without_open_classes_is_refused_not_recorded(small: Path) -> None:
    """--load scales open classes' rates; on closed users alone a factor changed nothing while
    the result said `load: 2.0`, and a rate's error advised a factor."""
    closed = ("--set", "traffic.browse={entry: app, users: 5, think_time: 1s}")
    for load in ("2x", "3000/s"):
        result = invoke("run", str(small), *closed, "--load", load)
        assert result.exit_code == 2
        assert "this scenario has none" in result.stderr and "users" in result.stderr


def test_the_long_csv_escapes_text_that_a_spreadsheet_would_run_as_a_formula() -> None:
    """Validation refuses such names in a scenario; a library user may build results of any."""
    from capsim.outputs.text import render_csv_data

    rows = long_csv(render_csv_data({"scenario": "=cmd", "by_class": {"+sum": 1.0}, "x": "@a"}))
    assert [list(row.values()) for row in rows] == [
        ["result", "'=cmd", "scenario", "'=cmd"],
        ["by_class", "", "'+sum", "1.0"],
        ["result", "'=cmd", "x", "'@a"],
    ]


def test_backtest_runs_on_the_executor_given_with_the_same_bytes(
    small: Path, tmp_path: Path
) -> None:
    """SPEC §1: results are byte-identical whatever the executor; backtest now takes one."""
    stats = tmp_path / "run_stats.csv"
    stats.write_text(LOCUST_STATS)
    args = ("backtest", str(small), str(stats), "-f", "json")
    serial = invoke(*args)
    pooled = invoke(*args, "--executor", "process", "--workers", "2")
    assert serial.exit_code == pooled.exit_code
    assert serial.stdout == pooled.stdout and json.loads(serial.stdout)["comparisons"]
