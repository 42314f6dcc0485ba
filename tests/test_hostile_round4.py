"""Hostile inputs, round four (fuzz3): named pipes where a scenario names a data file, numbers
and fields beyond what the parsers take, non-UTF-8 history and forecast files, and models of
thousands of tiers. docs/robustness.md says what is guaranteed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app
from capsim.engine.vectorised import can_vectorise
from capsim.model import features
from capsim.model.build import build_model
from capsim.scenario import load_scenario, schema

runner = CliRunner()

BASE = """name: base
seed: 1
simulation: {duration: 2s, warmup: 0.5s}
traffic:
  web: {entry: app, rate: 50/s}
tiers:
  app: {service_time: 2ms, calls: [db]}
  db: {service_time: 1ms}
"""


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("trace", "web: {entry: app, rate: 50/s}", "web: {entry: app, arrivals: {trace: p}}"),
        ("samples", "app: {service_time: 2ms", "app: {service_time: {dist: empirical, file: p}"),
        ("rate-series", "rate: 50/s}", "rate: 50/s, profile: {file: p}}"),
    ],
)
def test_a_named_pipe_named_as_a_data_file_is_refused_instead_of_waited_on(
    tmp_path: Path, kind: str, old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody writes to the pipe: opening it waited for a writer for ever (found: run hung).
    It now waits `PIPE_WAIT_S` (10 s; shortened here) for the first bytes."""
    monkeypatch.setattr(schema, "PIPE_WAIT_S", 0.2)
    os.mkfifo(tmp_path / "p")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE.replace(old, new))
    code, err = invoke("validate", str(scenario))
    assert code == 2
    assert f"cannot read the {kind} file 'p': it is a named pipe and nothing was written" in err
    assert "within 0.2 s; save the data in a file" in err
    assert "s.yaml:" in err


def test_an_integer_of_a_hundred_thousand_digits_in_a_measurement_is_refused(tmp_path: Path):
    """Python refuses to read an integer of more than 4,300 digits (a ValueError, which
    calibrate let through as a traceback)."""
    path = tmp_path / "traces.json"
    path.write_text('{"resourceSpans": [{"x": ' + "9" * 100_000 + "}]}")
    code, err = invoke("calibrate", "--input-format", "otlp-json", str(path))
    assert code == 2
    assert "an integer of 100,000 digits (99999999999999999999...) is not a measurement" in err


@pytest.mark.parametrize(
    ("fmt", "text", "line"),
    [
        ("csv", "users,throughput\n1," + "9" * 200_000 + "\n", 2),
        ("locust-stats", "Name," + "9" * 200_000 + "\n", 1),
        ("locust-history", "Timestamp," + "9" * 200_000 + "\n", 1),
    ],
)
def test_a_csv_field_beyond_the_csv_modules_limit_is_a_located_error(
    tmp_path: Path, fmt: str, text: str, line: int
):
    """The csv module refuses a field of more than 131,072 characters (`_csv.Error`, which
    calibrate let through as a traceback)."""
    path = tmp_path / "steps.csv"
    path.write_text(text)
    code, err = invoke("calibrate", "--input-format", fmt, str(path))
    assert code == 2
    assert f"steps.csv:{line}: not readable as CSV (field larger than field limit" in err


def test_a_history_or_a_trace_with_a_giant_field_is_a_located_error(tmp_path: Path):
    history = tmp_path / "peaks.csv"
    history.write_text("2024-01-01," + "9" * 200_000 + "\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE)
    code, err = invoke("forecast", str(scenario), "--history", str(history), "--no-plan")
    assert code == 2
    assert "peaks.csv:1: not readable as CSV" in err
    (tmp_path / "t.csv").write_text("at\n" + "1" * 200_000 + "\n")
    scenario.write_text(
        BASE.replace("rate: 50/s}", "arrivals: {trace: t.csv, column: at}}").replace(
            "{entry: app, arrivals", "{entry: app, arrivals"
        )
    )
    code, err = invoke("validate", str(scenario))
    assert code == 2
    assert "t.csv line 2: not readable as CSV" in err


@pytest.mark.parametrize("option", ["--history", "--forecast"])
def test_history_and_forecast_files_that_are_not_utf8_are_located_errors(
    tmp_path: Path, option: str
):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE)
    path = tmp_path / "f.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    if option == "--history":
        code, err = invoke("forecast", str(scenario), "--history", str(path), "--no-plan")
    else:
        out = str(tmp_path / "r.html")
        code, err = invoke("report", str(scenario), "--forecast", str(path), "-o", out)
    assert code == 2
    assert "f.json:1:14: not UTF-8 text (byte 0xe9)" in err


def test_a_forecast_nested_too_deeply_is_refused(tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE)
    path = tmp_path / "f.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    code, err = invoke("report", str(scenario), "--forecast", str(path), "-o", "x.html")
    assert code == 2
    assert "not a forecast (nested too deeply)" in err


def _chain(tmp_path: Path, count: int) -> Path:
    tiers = "".join(
        f"  t{i}: {{service_time: 0.01ms, blocking: false, calls: [t{i + 1}]}}\n"
        for i in range(count)
    )
    path = tmp_path / "chain.yaml"
    path.write_text(
        "name: chain\nsimulation: {duration: 1s, warmup: 0.1s}\ntraffic:\n"
        f"  c: {{entry: t0, rate: 1/s}}\ntiers:\n{tiers}  t{count}: {{service_time: 0.01ms}}\n"
    )
    return path


def test_a_chain_of_three_thousand_calls_is_vectorised_without_recursion(tmp_path: Path):
    """The vectorised path's cycle search and completion dependencies recursed once per tier
    of the chain (RecursionError: a traceback from `capsim run`)."""
    model = build_model(load_scenario(_chain(tmp_path, 3000)))
    assert can_vectorise(model)[0]


def test_conditions_found_for_all_tiers_at_once_are_those_found_tier_by_tier(tmp_path: Path):
    """`tiers_where_conditions_change` replaced a question asked tier by tier (tiers x tiers:
    a run of 2,000 tiers spent over 3 minutes on it)."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        BASE.replace("rate: 50/s}", "rate: 50/s}\n  other: {entry: db, rate: 5/s}").replace(
            "db: {service_time: 1ms}",
            "db: {service_time: 1ms, autoscale: {min: 1, max: 4, metric: utilization, target: 60%}}",
        )
    )
    model = build_model(load_scenario(scenario))
    at_once = features.tiers_where_conditions_change(model)
    assert at_once == {t.index for t in model.tiers if features.conditions_change_at(model, t)}
    assert at_once == {model.tier_index["db"]}  # only db's own autoscaler changes its capacity


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--horizon", "1000000000y"],
            "--horizon '1000000000y' is longer than 100 years, the longest span",
        ),
        (
            ["--from", "9999-06-01", "--horizon", "2y"],
            "9999-06-01 plus 1 x 2y is past the year 9999, where the calendar ends",
        ),
    ],
)
def test_a_forecast_past_the_calendar_is_refused(tmp_path: Path, args: list[str], message: str):
    """`date(1000002026, ...)`: a ValueError traceback."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE)
    code, err = invoke("forecast", str(scenario), "--growth", "8%/month", *args, "--no-plan")
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--knee-factor", "inf", "--knee-factor must be a finite number greater than 1, not inf"),
        ("--precision", "1e-300", "--precision must be at least 0.0001 and below 0.5, not 1e-300"),
    ],
)
def test_saturate_refuses_a_knee_at_infinity_and_a_precision_of_a_thousand_halvings(
    tmp_path: Path, option: str, value: str, message: str
):
    """An infinite knee factor crashed the table (no knee rate to print); a precision of 1e-300
    ran for hours."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE)
    code, err = invoke("saturate", str(scenario), option, value)
    assert code == 2
    assert message in err
