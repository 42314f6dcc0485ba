"""A demand fitted from as many intervals as it has parameters passes through every point: its
residuals are zero whatever the noise, so its error cannot be estimated. calibrate says the
interval is unknown, and why, instead of printing [d, d] as if the demand were exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()
EPOCH = 1_780_000_000.0


def matrix(series: list[tuple[dict, list[float]]], times: list[float]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": labels,
                    "values": [[EPOCH + t, f"{v:.6g}"] for t, v in zip(times, values, strict=True)],
                }
                for labels, values in series
            ],
        },
    }


def write_metrics(folder: Path, rates: dict[str, list[float]], busy: list[float]) -> list[Path]:
    """Request rates per route at `front` and front's busy cores, one value per 15 s step."""
    times = [15.0 * (i + 1) for i in range(len(busy))]
    requests = [
        ({"__name__": "http_server_requests_total", "service": "front", "route": f"/{cls}"}, values)
        for cls, values in rates.items()
    ]
    paths = [folder / "requests.json", folder / "cpu.json"]
    paths[0].write_text(json.dumps(matrix(requests, times)))
    paths[1].write_text(json.dumps(matrix([({"service": "front"}, busy)], times)))
    return paths


def calibrate(folder: Path, paths: list[Path]) -> tuple[dict, str, dict]:
    out = folder / "model.yaml"
    result = runner.invoke(app, ["calibrate", *map(str, paths), "-o", str(out), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    table = runner.invoke(app, ["calibrate", *map(str, paths), "-o", str(out)])
    return json.loads(result.stdout), table.stdout, yaml.safe_load(out.read_text())


def test_two_classes_from_two_intervals_have_unknown_intervals_not_exact_ones(
    tmp_path: Path,
) -> None:
    # browse 10 ms and checkout 30 ms at front: two equations, two unknowns, solved exactly.
    rates = {"browse": [100.0, 60.0], "checkout": [10.0, 30.0]}
    busy = [100 * 0.010 + 10 * 0.030, 60 * 0.010 + 30 * 0.030]
    summary, table, _ = calibrate(tmp_path, write_metrics(tmp_path, rates, busy))
    (front,) = summary["demands"]
    assert front["demands"]["browse"] == pytest.approx(0.010, rel=1e-3)
    assert front["demands"]["checkout"] == pytest.approx(0.030, rel=1e-3)
    assert front["intervals"] == {"browse": None, "checkout": None}
    assert "2 interval(s) for 2 parameter(s)" in front["interval_unknown"]
    assert "unknown*" in table and "95% CI unknown" in table
    assert "[10ms, 10ms]" not in table


def test_one_interval_for_one_class_is_unknown_too_and_still_written(tmp_path: Path) -> None:
    summary, _, scenario = calibrate(tmp_path, write_metrics(tmp_path, {"search": [50.0]}, [0.5]))
    (front,) = summary["demands"]
    assert front["demands"]["search"] == pytest.approx(0.010, rel=1e-3)
    assert front["intervals"]["search"] is None and front["interval_unknown"]
    work = scenario["tiers"]["front"]["classes"]["search"]
    assert work["service_time"]["mean"] in ("10ms", 0.01)


def test_with_a_residual_left_the_interval_is_known_and_holds_the_truth(tmp_path: Path) -> None:
    # Six intervals for two demands (no background: too few for one): noisy, so a real interval.
    rates = {
        "browse": [100.0, 60.0, 80.0, 40.0, 90.0, 70.0],
        "checkout": [10.0, 30.0, 20.0, 25.0, 5.0, 15.0],
    }
    noise = [0.02, -0.03, 0.01, 0.02, -0.01, -0.02]
    busy = [
        b * 0.010 + c * 0.030 + e
        for b, c, e in zip(rates["browse"], rates["checkout"], noise, strict=True)
    ]
    summary, _, _ = calibrate(tmp_path, write_metrics(tmp_path, rates, busy))
    (front,) = summary["demands"]
    assert front["interval_unknown"] is None
    low, high = front["intervals"]["browse"]
    assert low < 0.010 < high and high - low > 0 and math.isfinite(high)
