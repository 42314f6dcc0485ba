"""Rendering a Report: strict JSON, the terminal table, Markdown, CSV, and atomic writes."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from capsim.analysis import Report, summarise
from capsim.engine.histogram import Histogram
from capsim.engine.result import ClassRun, RunResult, TierRun
from capsim.errors import UsageError
from capsim.model.types import Slo
from capsim.outputs import (
    render,
    render_csv,
    render_json,
    render_markdown,
    render_table,
    write_output,
)
from runkit import DURATION, WARMUP, shop_model

GOLDEN = Path(__file__).parent / "golden"
#: Set CAPSIM_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
UPDATE = bool(os.environ.get("CAPSIM_UPDATE_GOLDEN"))

SLOS = (
    Slo("browse p99 <= 500ms", "p99", 0.5, class_index=0, line=21),
    Slo("checkout error_rate <= 0.1%", "error_rate", 0.001, class_index=1, line=22),
    Slo("db utilization <= 70%", "utilization", 0.7, tier_index=1, line=23),
)


def histogram(values: np.ndarray) -> Histogram:
    h = Histogram()
    h.add(values)
    return h


def deterministic_run(replication: int) -> RunResult:
    """A replication built from evenly spaced samples and straight-line traces: no randomness."""
    shift = 1.0 + 0.01 * replication
    times = np.linspace(WARMUP, WARMUP + DURATION, 40)
    flat = np.tile([2.0, 3.0, 4.0, 3.0], 10)
    growing = 10.0 + 50.0 * (times - WARMUP) + np.tile([0.0, 4.0, -4.0, 0.0], 10)

    def tier(workers: int, busy: float, completed: int, trace: np.ndarray) -> TierRun:
        return TierRun(
            workers=workers,
            arrivals=completed,
            completed=completed,
            busy_time=busy * workers * DURATION,
            occupied_time=busy * workers * DURATION,
            queue_time=float(trace.mean()) * DURATION,
            queue_max=int(trace.max()),
            wait=histogram(np.linspace(0.0, 0.02, completed)),
            queue_trace=trace,
            trace_times=times,
            age=None,
        )

    db = tier(1, 0.999, 9_000, growing)
    db.pool_wait = histogram(np.linspace(0.0, 0.01, 100))
    events = tier(1, 0.02, 900, flat)
    events.age = histogram(np.linspace(0.001, 0.004, 900))
    return RunResult(
        seed=42,
        replication=replication,
        duration=DURATION,
        warmup=WARMUP,
        classes=[
            ClassRun(10_000, 10_000, 0, histogram(shift * np.linspace(0.005, 0.4, 10_000))),
            ClassRun(1_005, 1_000, 5, histogram(shift * np.linspace(0.01, 0.5, 1_000))),
        ],
        tiers=[tier(4, 0.3, 11_000, flat), db, events],
        engine_path="vectorised",
        engine_reason="every tier is a plain FIFO queue",
        events=11_005,
    )


@pytest.fixture
def report() -> Report:
    runs = [deterministic_run(i) for i in range(3)]
    return summarise(shop_model(SLOS), runs, capsim_version="0.1.0")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; see {path}"


def test_json_is_strict_indented_and_in_spec_order(report: Report) -> None:
    text = render_json(report)
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data == report.data
    assert text.startswith('{\n  "capsim_version": "0.1.0",\n  "scenario": "test",')
    assert list(data)[:9] == ["capsim_version", "scenario", "seed", "replications", "duration",
                              "classes", "tiers", "slos", "passed"]  # fmt: skip
    check_golden("report.json", text)


def test_json_of_a_run_without_latencies_says_null(report: Report) -> None:
    report.data["classes"]["browse"]["latency"]["p99"] = None
    assert '"p99": null' in render_json(report)


def test_the_table_flags_an_overloaded_tier_plainly(report: Report) -> None:
    text = render_table(report, color=False)
    db_row = next(line for line in text.splitlines() if line.strip().startswith("db "))
    assert "OVERLOADED — not steady state" in db_row
    app_row = next(line for line in text.splitlines() if line.strip().startswith("app "))
    assert "stable" in app_row
    # The command line prints warnings once, on stderr: the table on stdout does not repeat them.
    assert "warning:" not in text
    assert "FAIL: tier OVERLOADED — db (backlog +" in text


def test_the_engine_line_is_shown_only_when_verbose(report: Report) -> None:
    assert "engine:" not in render_table(report, color=False)
    verbose = render_table(report, color=False, verbose=True)
    assert "engine: vectorised (every tier is a plain FIFO queue)" in verbose


def test_the_table_shows_verdicts_and_percentiles(report: Report) -> None:
    text = render_table(report, color=False)
    assert "✓ PASS" in text and "✗ FAIL" in text
    assert "browse p99 <= 500ms" in text
    assert "2 of 3 SLOs failed besides." in text
    for header in ("throughput", "p50", "p95", "p99", "p999", "utilization", "wait p99"):
        assert header in text
    assert max(len(line) for line in text.splitlines()) <= 120
    check_golden("report.txt", text)


def test_the_table_has_colour_only_when_asked(report: Report) -> None:
    assert "\x1b[" not in render_table(report, color=False)
    assert "\x1b[" in render_table(report, color=True)


def test_markdown_has_github_tables(report: Report) -> None:
    text = render_markdown(report)
    assert text.startswith("# capsim result: test\n")
    assert "| tier | utilization |" in text
    assert "**OVERLOADED — not steady state**" in text
    assert "| ✗ FAIL | checkout error_rate <= 0.1% |" in text
    check_golden("report.md", text)


def test_csv_is_long_format_with_a_row_per_figure(report: Report) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == ["section", "name", "metric", "value"]
    assert {row[0] for row in rows[1:]} == {"class", "tier", "slo", "overloaded", "run"}
    figures = {(s, n, m): v for s, n, m, v in rows[1:]}
    assert float(figures["class", "browse", "latency.p99"]) == pytest.approx(
        report.data["classes"]["browse"]["latency"]["p99"]
    )
    assert figures["tier", "db", "stable"] == "false"
    assert figures["slo", "db utilization <= 70%", "passed"] == "false"
    assert (
        float(figures["overloaded", "db", "growth_rate"])
        == report.data["tiers"]["db"]["growth_rate"]
    )
    assert rows[-1] == ["run", "test", "passed", "false"]
    low = float(figures["class", "browse", "ci95.latency.mean.low"])
    assert low == report.data["classes"]["browse"]["ci95"]["latency.mean"][0]
    check_golden("report.csv", render_csv(report))


def test_csv_leaves_missing_figures_empty(report: Report) -> None:
    report.data["classes"]["browse"]["latency"]["p99"] = None
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert ["class", "browse", "latency.p99", ""] in rows


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "md", "csv", "JSON"])
def test_render_dispatches_on_the_format_name(report: Report, fmt: str) -> None:
    assert render(report, fmt).strip()


def test_an_unknown_format_is_a_usage_error(report: Report) -> None:
    with pytest.raises(UsageError, match="choose one of table, json, markdown, csv"):
        render(report, "yaml")


def test_write_output_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    write_output('{"new": true}\n', target)
    assert target.read_text() == '{"new": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")

    def broken_replace(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UsageError, match="No space left on device"):
        write_output("new", target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_writing_into_a_missing_folder_says_which_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="missing"):
        write_output("x", tmp_path / "missing" / "out.json")


def test_a_new_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.md"
    write_output("# hi\n", target)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
