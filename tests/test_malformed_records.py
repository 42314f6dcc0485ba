"""One bad record does not refuse a whole measurement file: a malformed span (an end before its
start, no id, a time that is not nanoseconds) is skipped, counted, and named with its trace and
span id in a warning; the file is refused (exit 2) only when too few usable records remain.
The same for a k6 line, a Locust row and a Prometheus sample (docs/calibration.md, "Malformed
records")."""

from __future__ import annotations

import json

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
