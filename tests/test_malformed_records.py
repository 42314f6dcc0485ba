"""One bad record does not refuse a whole measurement file: a malformed span (an end before its
start, no id, a time that is not nanoseconds) is skipped, counted, and named with its trace and
span id in a warning; the file is refused (exit 2) only when too few usable records remain.
The same for a k6 line, a Locust row and a Prometheus sample (docs/calibration.md, "Malformed
records")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import groundtruth as gt
import groundtruth_selfcall as sc
from capsim.cli.app import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """20 s of pages (5 ms) calling their fragment (3 ms), as the Collector exports them."""
    folder = tmp_path_factory.mktemp("malformed")
    system = sc.run_selfcall(sc.SelfCallTruth(), 20.0)
    path = folder / "traces.json"
    gt.write_otlp(system.record, path, until=20.0)
    return {"folder": folder, "document": json.loads(path.read_text())}


def spans_of(document: dict) -> list[dict]:
    return document["resourceSpans"][0]["scopeSpans"][0]["spans"]


def test_a_span_ending_before_it_starts_is_skipped_and_named_not_the_whole_file(
    export: dict,
) -> None:
    document = json.loads(json.dumps(export["document"]))
    broken = spans_of(document)[17]
    broken["endTimeUnixNano"] = str(int(broken["startTimeUnixNano"]) - 1000)
    path = export["folder"] / "one-bad.json"
    path.write_text(json.dumps(document))
    code, out, err = invoke(
        "calibrate",
        str(path),
        "--workers",
        "front=64",
        "-o",
        str(export["folder"] / "m.yaml"),
        "--format",
        "json",
    )
    assert code == 0, err  # before: exit 2, "endTimeUnixNano is before startTimeUnixNano"
    total = len(spans_of(document))
    assert f"1 malformed span of {total} skipped" in err
    assert f"trace {broken['traceId']}, span {broken['spanId']}" in err
    assert "resourceSpans[0].scopeSpans[0].spans[17]" in err
    assert "endTimeUnixNano is before startTimeUnixNano" in err
    summary = json.loads(out)
    # The other spans still calibrate the tier: 4 ms a visit (page 5 ms, fragment 3 ms).
    mean = summary["tiers"]["front"]["classes"]["GET_page"]["mean"]
    assert mean == pytest.approx(0.004, rel=0.08)


def test_backtest_reads_the_same_file_with_the_same_warning(export: dict) -> None:
    document = json.loads(json.dumps(export["document"]))
    del spans_of(document)[5]["spanId"]
    path = export["folder"] / "no-id.json"
    path.write_text(json.dumps(document))
    scenario = export["folder"] / "b.yaml"
    code, _, err = invoke("calibrate", str(path), "--workers", "front=64", "-o", str(scenario))
    assert code == 0, err
    code, out, err = invoke("backtest", str(scenario), str(path), "--duration", "10s")
    assert "1 malformed span of" in out + err and "the span has no spanId" in out + err


def test_a_file_whose_spans_are_mostly_malformed_is_refused_with_the_first_defects(
    export: dict,
) -> None:
    document = json.loads(json.dumps(export["document"]))
    spans = spans_of(document)
    for span in spans[: len(spans) * 2 // 3]:
        span["startTimeUnixNano"] = "yesterday"
    path = export["folder"] / "mostly-bad.json"
    path.write_text(json.dumps(document))
    code, _, err = invoke("calibrate", str(path))
    assert code == 2
    assert f"only {len(spans) - len(spans) * 2 // 3} of its {len(spans)} spans can be read" in err
    assert "spans[0]" in err and "found 'yesterday'" in err and "more" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shop's browse requests from 1, 2, 4 and 8 users (10 s each), as k6 and Locust write
    them."""
    folder = tmp_path_factory.mktemp("stepped")
    record, users = gt.run_closed(gt.Truth(), 3, [(1, 10.0), (2, 10.0), (4, 10.0), (8, 10.0)])
    gt.write_k6(record, users, folder / "k6.ndjson")
    gt.write_locust_history(record, users, folder / "run_stats_history.csv")
    return {"folder": folder}


def usl(path: Path) -> tuple[int, dict, str]:
    code, out, err = invoke("fit-usl", str(path), "--format", "json")
    return code, json.loads(out) if code == 0 else {}, err


def test_a_truncated_k6_line_is_skipped_with_its_line_number(stepped: dict) -> None:
    lines = (stepped["folder"] / "k6.ndjson").read_text().splitlines()
    lines[10] = lines[10][:40]  # a line another writer cut
    lines.append('{"type":"Point","metric":"http_req_duration","data":{"time":"2026-13-01T00:0')
    path = stepped["folder"] / "k6-cut.ndjson"
    path.write_text("\n".join(lines) + "\n")
    code, data, err = usl(path)
    assert code == 0, err  # before: exit 2 at line 11
    (note,) = [n for n in data["notes"] if "malformed" in n]
    assert f"2 malformed lines of {len(lines)} skipped" in note
    assert "line 11:" in note and f"line {len(lines)}:" in note and "invalid JSON" in note
    assert data["points"] == 4


def test_a_broken_locust_row_is_skipped_with_its_line_number(stepped: dict) -> None:
    rows = (stepped["folder"] / "run_stats_history.csv").read_text().splitlines()
    rows[7] = ",".join(rows[7].split(",")[:5])  # cut short
    cells = rows[9].split(",")
    cells[1] = "many"  # User Count
    rows[9] = ",".join(cells)
    path = stepped["folder"] / "broken_stats_history.csv"
    path.write_text("\n".join(rows) + "\n")
    code, data, err = usl(path)
    assert code == 0, err
    (note,) = [n for n in data["notes"] if "malformed" in n]
    assert f"2 malformed rows of {len(rows) - 1} skipped" in note
    assert "line 8: the row has the wrong number of fields" in note
    assert "line 10: column 'User Count' holds 'many', not a number" in note


def test_a_locust_file_of_mostly_broken_rows_is_refused(stepped: dict) -> None:
    rows = (stepped["folder"] / "run_stats_history.csv").read_text().splitlines()
    broken = [rows[0]] + [",".join(r.split(",")[:3]) for r in rows[1:]]
    path = stepped["folder"] / "cut_stats_history.csv"
    path.write_text("\n".join(broken) + "\n")
    code, _, err = usl(path)
    assert code == 2
    assert f"only 0 of its {len(rows) - 1} rows can be read" in err and "line 2:" in err


def prometheus(values: list[list]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"service": "front", "route": "/search"},
                    "values": values,
                }
            ],
        },
    }


def test_a_prometheus_sample_that_is_not_a_number_is_skipped_and_named(tmp_path: Path) -> None:
    times = [1_780_000_000 + 15 * k for k in range(20)]
    rates = [[t, "50"] for t in times]
    rates[3] = [times[3], "fifty"]
    rates[7] = [times[7]]
    cpu = [[t, "0.5"] for t in times]
    (tmp_path / "requests.json").write_text(json.dumps(prometheus(rates)))
    (tmp_path / "cpu.json").write_text(json.dumps(prometheus(cpu)))
    code, out, err = invoke(
        "calibrate",
        str(tmp_path / "requests.json"),
        str(tmp_path / "cpu.json"),
        "-o",
        str(tmp_path / "m.yaml"),
        "--format",
        "json",
    )
    assert code == 0, err  # before: exit 2 at data.result[0].values[3]
    assert "2 malformed samples of 20 skipped" in err
    assert "data.result[0].values[3]: expected a number timestamp and a numeric string" in err
    assert 'data.result[0].values[7]: expected [timestamp, "value"]' in err
    (front,) = json.loads(out)["demands"]
    assert front["demands"]["search"] == pytest.approx(0.010, rel=1e-3)
    assert front["intervals_used"] == 18


def test_a_prometheus_file_of_mostly_broken_samples_is_refused(tmp_path: Path) -> None:
    times = [1_780_000_000 + 15 * k for k in range(10)]
    values = [[t, "n/a"] for t in times[:6]] + [[t, "50"] for t in times[6:]]
    (tmp_path / "requests.json").write_text(json.dumps(prometheus(values)))
    code, _, err = invoke("calibrate", str(tmp_path / "requests.json"))
    assert code == 2
    assert "only 4 of its 10 samples can be read" in err and "values[0]" in err


def test_an_ndjson_export_cut_in_its_last_line_loses_that_line_not_the_file(
    tmp_path: Path,
) -> None:
    system = sc.run_selfcall(sc.SelfCallTruth(), 20.0)
    path = tmp_path / "traces.jsonl"
    gt.write_otlp(system.record, path, until=20.0, ndjson=True)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:-1], lines[-1][: len(lines[-1]) // 2]]) + "\n")
    code, _, err = invoke(
        "calibrate", str(path), "--workers", "front=64", "-o", str(tmp_path / "m.yaml")
    )
    assert code == 0, err  # before: exit 2, "invalid JSON ... (the file looks truncated)"
    assert f"1 malformed line of {len(lines)} skipped with their spans: line {len(lines)}:" in err
    assert "invalid JSON" in err
