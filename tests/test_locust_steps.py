"""A Locust test in steps of users, as `locust --csv run` writes it: run_stats.csv (the whole
test's totals) beside run_stats_history.csv (a row a second). The steps come from the history's
timestamps and User Count, each backtested as its own load level; the whole test's totals,
which mix every step, are not simulated as one open load (docs/calibration.md, "Stepped load
tests")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import groundtruth as gt
from capsim.measurements import read_measurement

runner = CliRunner()
STEPS = [(1, 20.0), (2, 20.0), (4, 20.0), (8, 20.0)]


def invoke(*args: str) -> tuple[int, str, str]:
    from capsim.cli.app import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def locust_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shop's browse requests from 1, 2, 4 and 8 users (20 s each), a model calibrated
    from 30 s of its traces, and Locust's files (with and without --reset-stats)."""
    folder = tmp_path_factory.mktemp("locust")
    record, users = gt.run_closed(gt.Truth(), 3, STEPS)
    history, stats = folder / "run_stats_history.csv", folder / "run_stats.csv"
    gt.write_locust_history(record, users, history)
    gt.write_locust_history(record, users, folder / "reset_stats_history.csv", reset_after=2.0)
    gt.write_locust_stats(record, stats)
    traces = gt.run_open(gt.Truth(), 12, 30, {"browse": [(35, 100.0)]})
    gt.write_otlp(traces, folder / "traces.json", 30)
    model = folder / "browse.yaml"
    code, _, err = invoke(
        "calibrate", str(folder / "traces.json"), "--class-by", "app.class", "-o", str(model)
    )
    assert code == 0, err
    return {"folder": folder, "history": history, "stats": stats, "model": model}


def test_the_whole_test_totals_beside_the_history_are_not_one_open_load(locust_run: dict) -> None:
    _code, out, _err = invoke(
        "backtest",
        str(locust_run["model"]),
        str(locust_run["stats"]),
        str(locust_run["history"]),
        "--duration",
        "20s",
        "--format",
        "json",
    )
    data = json.loads(out)
    # Before: three more rows, `class browse` simulated as an open load at 209.7/s, the mean
    # of four steps whose users were 1 to 8.
    assert {r["what"] for r in data["comparisons"]} == {"step"}
    assert {r["name"] for r in data["comparisons"]} == {f"browse @ {n} users" for n, _ in STEPS}
    throughput = [r for r in data["comparisons"] if r["figure"] == "throughput"]
    assert all(r["passed"] for r in throughput)
    assert any("the totals of the whole test, whose load steps" in n for n in data["notes"])


def test_the_totals_alone_are_compared_as_one_load_with_a_note_asking_for_the_history(
    locust_run: dict,
) -> None:
    _code, out, _err = invoke(
        "backtest",
        str(locust_run["model"]),
        str(locust_run["stats"]),
        "--duration",
        "10s",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert {r["what"] for r in data["comparisons"]} == {"class"}
    assert any("give its _stats_history.csv" in n for n in data["notes"])


def test_steps_are_read_through_locusts_reset_stats(locust_run: dict) -> None:
    # --reset-stats zeroes the totals 2 s into each step: before, the step's requests were the
    # last row's total minus the first's, which went negative or short.
    plain = read_measurement(locust_run["history"])
    reset = read_measurement(locust_run["folder"] / "reset_stats_history.csv")
    assert [s.users for s in reset.steps] == [float(n) for n, _ in STEPS]  # type: ignore[union-attr]
    for a, b in zip(plain.steps, reset.steps, strict=True):  # type: ignore[union-attr]
        assert b.throughput == pytest.approx(a.throughput, rel=0.02)
        assert b.throughput > 50


def test_a_k6_summary_beside_the_tests_json_output_is_not_one_open_load(
    locust_run: dict, tmp_path: Path
) -> None:
    record, users = gt.run_closed(gt.Truth(), 3, STEPS)
    k6 = tmp_path / "k6.json"
    gt.write_k6(record, users, k6)
    summary = tmp_path / "summary.json"
    done = [c[0] for c in record.completions]
    rate = len(done) / max(done)
    summary.write_text(
        json.dumps(
            {
                "metrics": {
                    "http_reqs": {"count": len(done), "rate": rate},
                    "http_req_duration": {"med": 15.0, "p(95)": 40.0, "p(99)": 61.0},
                    "vus_max": {"value": 8, "min": 8, "max": 8},
                }
            }
        )
    )
    _code, out, _err = invoke(
        "backtest",
        str(locust_run["model"]),
        str(summary),
        str(k6),
        "--duration",
        "10s",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert {r["what"] for r in data["comparisons"]} == {"step"}
    assert any("summary.json (k6): the totals of the whole test" in n for n in data["notes"])


def test_users_spawned_gradually_between_steps_are_not_steps_of_their_own(tmp_path: Path) -> None:
    # 1, 4 and 8 users held 30 s, reached one user every 5 s: before, the ramp's counts (2, 3,
    # 5, 6, 7 users, 4 s each) were steps too, whose rolling-window percentiles were the
    # previous step's (p50 +25% and +31% OFF at 5 and 6 users against the right model).
    plan = [(1, 30.0), (2, 5.0), (3, 5.0), (4, 30.0), (5, 5.0), (6, 5.0), (7, 5.0), (8, 30.0)]
    record, users = gt.run_closed(gt.Truth(), 3, plan)
    history = tmp_path / "ramp_stats_history.csv"
    gt.write_locust_history(record, users, history)
    test = read_measurement(history)
    assert [s.users for s in test.steps] == [1.0, 4.0, 8.0]  # type: ignore[union-attr]
    short = tmp_path / "short_stats_history.csv"
    record, users = gt.run_closed(gt.Truth(), 3, [(1, 6.0), (2, 6.0), (4, 6.0)])
    gt.write_locust_history(record, users, short)
    # A test of short steps only keeps them all.
    assert [s.users for s in read_measurement(short).steps] == [1.0, 2.0, 4.0]  # type: ignore[union-attr]
