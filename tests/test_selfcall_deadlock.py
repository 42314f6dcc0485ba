"""A blocking tier that calls itself back (a service calling its own /fragment through its load
balancer): calibrate, solve and run agree that the model can deadlock, with the same figures,
and none of them promises a load the pool cannot sustain (docs/calibration.md, "A service that
calls itself")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import groundtruth as gt
import groundtruth_selfcall as sc
from capsim.cli.app import app

runner = CliRunner()

SELF_CALLING = """
name: selfcall
simulation: {duration: 20s, warmup: 2s}
traffic:
  page: {entry: front, WORKLOAD}
tiers:
  front:
    type: service
    concurrency: WORKERS
    service_time: {dist: exponential, mean: 5ms}
    calls: [CALL]
"""


def scenario(tmp_path: Path, workers: int = 4, closed: bool = False, call: str = "") -> Path:
    text = (
        SELF_CALLING.replace("WORKERS", str(workers))
        .replace("WORKLOAD", "users: 20, think_time: 50ms" if closed else "rate: 100/s")
        .replace("CALL", call or "{tier: front, probability: 0.5}")
    )
    path = tmp_path / "self.yaml"
    path.write_text(text)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_solve_says_a_pool_of_four_deadlocks_instead_of_promising_a_saturation_rate(
    tmp_path: Path,
) -> None:
    _code, out, _ = invoke("solve", str(scenario(tmp_path)), "--format", "json")
    data = json.loads(out)
    front = data["tiers"]["front"]
    assert front["deadlock"]["within_run"] is True
    assert front["deadlock"]["lone_request"] == pytest.approx(0.5**4)
    assert front["stable"] is False and front["max_rate"] == 0.0
    assert data["passed"] is False
    assert data["deadlocks"][0]["loop"] == ["front", "front"]
    _code, out, _ = invoke("solve", str(scenario(tmp_path)))
    assert "DEADLOCK" in out and "no load is sustained" in out


def test_solve_is_silent_when_the_pool_is_deep_enough_or_the_call_times_out(
    tmp_path: Path,
) -> None:
    for path in (
        scenario(tmp_path, workers=64),
        scenario(tmp_path, call="{tier: front, probability: 0.5, timeout: 1s}"),
    ):
        _code, out, _ = invoke("solve", str(path), "--format", "json")
        data = json.loads(out)
        assert data["deadlocks"] == [], path.read_text()
        assert "deadlock" not in data["tiers"]["front"]


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
def test_run_reports_the_stalled_pool_as_deadlocked_and_fails(tmp_path: Path, closed: bool) -> None:
    # Before: the closed workload's run ended with throughput 0, every tier "stable", passed.
    _code, out, err = invoke("run", str(scenario(tmp_path, closed=closed)), "--format", "json")
    data = json.loads(out)
    assert data["passed"] is False
    front = data["tiers"]["front"]
    assert front["stable"] is False and front["deadlock"]["workers"] == 4
    assert [f["tier"] for f in data["overloaded"] if f.get("deadlock")] == ["front"]
    assert "is DEADLOCKED, which fails the run" in err
    _code, out, err = invoke("run", str(scenario(tmp_path, closed=closed)))
    assert "DEADLOCKED" in out and "the analytic bound puts its saturation" not in out


def test_run_of_a_deep_pool_with_the_same_self_call_is_not_called_deadlocked(
    tmp_path: Path,
) -> None:
    code, out, _err = invoke("run", str(scenario(tmp_path, workers=64)), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["passed"] is True and "deadlock" not in data["tiers"]["front"]


@pytest.fixture(scope="module")
def selfcall_traces(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """60 s of a front of 8 workers serving pages at 100/s, each page calling its own fragment."""
    folder = tmp_path_factory.mktemp("selfcall")
    truth = sc.SelfCallTruth()
    system = sc.run_selfcall(truth, 60.0)
    path = folder / "traces.json"
    gt.write_otlp(system.record, path, until=60.0)
    return {"folder": folder, "path": path, "truth": truth, "system": system}


def test_calibrate_warns_with_the_figures_solve_and_run_will_show(selfcall_traces: dict) -> None:
    out_yaml = selfcall_traces["folder"] / "front.yaml"
    code, out, err = invoke(
        "calibrate", str(selfcall_traces["path"]), "-o", str(out_yaml), "--format", "json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["tiers"]["front"]["deepest_nesting"] == 2  # the page and its fragment
    (found,) = summary["deadlocks"]
    assert found["tier"] == "front" and found["within_run"] is True
    assert "can DEADLOCK" in err and "at most 2 deep" in err
    # 200 visits/s, q = 0.5: 100 chains/s x 3.15e7 s a year needs 0.5^W <= 3.2e-10, W >= 32.
    assert found["workers_for_a_year"] == 32 and "with 32 workers or more" in err
    code, out, _ = invoke("solve", str(out_yaml), "--format", "json")
    solved = json.loads(out)["tiers"]["front"]["deadlock"]
    assert solved["lone_request"] == pytest.approx(found["lone_request"])
    code, out, _ = invoke("run", str(out_yaml), "--format", "json", "--duration", "20s")
    assert json.loads(out)["tiers"]["front"].get("deadlock") is not None


def test_calibrated_with_the_real_pool_the_model_runs_and_matches_the_truth(
    selfcall_traces: dict,
) -> None:
    out_yaml = selfcall_traces["folder"] / "front64.yaml"
    code, out, err = invoke(
        "calibrate",
        str(selfcall_traces["path"]),
        "--workers",
        "front=64",
        "-o",
        str(out_yaml),
        "--format",
        "json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert "deadlocks" not in summary and "DEADLOCK" not in err
    written = yaml.safe_load(out_yaml.read_text())["tiers"]["front"]
    assert written["calls"] == [{"tier": "front", "probability": 0.5}]
    # Page 5 ms and fragment 3 ms pooled: 4 ms a visit, two visits a page.
    assert summary["tiers"]["front"]["classes"]["GET_page"]["mean"] == pytest.approx(
        0.004, rel=0.05
    )
    code, out, err = invoke("run", str(out_yaml), "--format", "json", "--duration", "60s")
    data = json.loads(out)
    assert data["passed"] is True
    busy = sum(b - a for a, b in selfcall_traces["system"].record.busy["front"]) / 65.0
    assert data["tiers"]["front"]["utilization"] * 64 == pytest.approx(busy, rel=0.1)
    roots = [
        s["end"] - s["start"] for s in selfcall_traces["system"].record.spans if not s["parent"]
    ]
    # The mean holds (two visits of 4 ms on average); the shape does not: the scenario nests
    # geometrically (no fragment for half the pages, two or more for a quarter), so its p50 is
    # about 20% low (docs/calibration.md, "A service that calls itself").
    latency = data["classes"]["GET_page"]["latency"]
    assert latency["mean"] == pytest.approx(float(np.mean(roots)), rel=0.1)


def test_a_live_pool_at_risk_is_not_called_deadlocked_for_requests_that_wait(
    tmp_path: Path,
) -> None:
    # 12 workers: a lone request deadlocks them once in 0.5^12 (about every 20 s at 200
    # visits/s), so solve reports the risk; this seed's 5 s stay live, with requests waiting now
    # and then (up to 4 at once), which alone must not read as a stall.
    path = scenario(tmp_path, workers=12)
    path.write_text(
        path.read_text().replace("duration: 20s, warmup: 2s", "duration: 5s, warmup: 0.5s")
    )
    _code, out, _ = invoke("solve", str(path), "--format", "json")
    assert json.loads(out)["deadlocks"], "the risk is reported by solve"
    _code, out, _ = invoke("run", str(path), "--format", "json", "--seed", "2")
    front = json.loads(out)["tiers"]["front"]
    assert front["queue_length"]["max"] >= 2 and front["throughput"] > 150
    assert "deadlock" not in front


def test_solve_of_a_closed_class_through_a_self_calling_pool_settles_in_few_sweeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: each fixed-point iteration swept the stations once, so the tier's holding time
    # (which includes its own nested response) crept towards its value while the closed
    # class's rate lagged behind: 200 iterations of a 100-step bisection, minutes of solve.
    import capsim.analysis.solve as solve_module
    from capsim.model.build import build_model
    from capsim.scenario import load_scenario

    sweeps: list[int] = []
    uncounted = solve_module._sweep_stations

    def counted(*args: Any, **options: Any) -> Any:
        sweeps.append(1)
        return uncounted(*args, **options)

    monkeypatch.setattr(solve_module, "_sweep_stations", counted)
    model = build_model(load_scenario(scenario(tmp_path, closed=True), []))
    answer = solve_module.solve(model, capsim_version="test")
    assert answer["deadlocks"][0]["loop"] == ["front", "front"]
    throughput = answer["classes"]["page"]["throughput"]
    assert 0 < throughput < 20 / 0.05  # 20 users thinking 50 ms: at most 400/s
    assert len(sweeps) < 20_000  # the creeping iteration took about 500,000
