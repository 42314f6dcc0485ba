"""Calibration stories on a third ground truth (tests/groundtruth3.py) recorded the way
production tracing records it: 10% head sampling said in the spans' tracestate, 2% of the
callee's server spans dropped by the exporter, its clock 3 ms ahead, retried calls and ERROR
spans, and a cache that takes traffic away from the store behind it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import groundtruth3 as gt3
from capsim.analysis.calibration_traces import sampling_probability
from capsim.cli.app import app

runner = CliRunner()
TRUTH = gt3.Truth3()
RATE = 100.0
WINDOW = 120.0
WORKERS = ["--workers", "web=16", "--workers", "store=6"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def calibrated(files: list[Path], scenario: Path, *options: str) -> dict:
    code, out, err = invoke(
        "calibrate", *map(str, files), *WORKERS, *options, "-o", str(scenario), "--format", "json"
    )
    assert code == 0, err
    return {"summary": json.loads(out), "stderr": err, "yaml": yaml.safe_load(scenario.read_text())}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two minutes at 100/s, exported three ways: every trace (with lost spans and skew), 10%
    sampled with the tracestate, and 10% sampled by an SDK that writes no tracestate."""
    folder = tmp_path_factory.mktemp("gt3")
    system = gt3.run(TRUTH, 3, RATE, WINDOW)
    every, sampled, silent = folder / "every.json", folder / "sampled.json", folder / "silent.json"
    gt3.write_otlp(system, every, WINDOW, lost=0.02, skew=0.003)
    gt3.write_otlp(system, sampled, WINDOW, sampling=0.1, lost=0.02, skew=0.003)
    gt3.write_otlp(system, silent, WINDOW, sampling=0.1, tracestate=False, lost=0.02, skew=0.003)
    latency = np.array([r for a, r in system.latencies if WINDOW * 0.1 < a < WINDOW])
    return {
        "system": system,
        "folder": folder,
        "every": every,
        "sampled": sampled,
        "silent": silent,
        "true_p50": float(np.percentile(latency, 50)),
        "true_p99": float(np.percentile(latency, 99)),
        "store_busy": sum(b - a for a, b in system.store_busy) / (WINDOW + 5.0),
    }


@pytest.fixture(scope="module")
def from_sampled(recorded: dict) -> dict:
    return calibrated([recorded["sampled"]], recorded["folder"] / "sampled.yaml")


@pytest.fixture(scope="module")
def from_every(recorded: dict) -> dict:
    return calibrated([recorded["every"]], recorded["folder"] / "every.yaml")


def _calls_per_visit(calls: list, tier: str) -> float:
    """Expected calls to `tier` per visit, from a written `calls` list (sequential items)."""
    total = 0.0
    for item in calls:
        if item == tier:
            total += 1
        elif isinstance(item, dict) and item.get("tier") == tier:
            total += float(item.get("probability", 1)) * int(item.get("repeat", 1))
        elif isinstance(item, dict) and "one_of" in item:
            total += float(item["one_of"].get(tier, 0))
    return total


@pytest.mark.parametrize(
    ("state", "kept"),
    [
        ("ot=th:8", 0.5),
        ("ot=th:0", 1.0),
        ("ot=th:e6666666666666", 0.1),
        ("vendor=abc,ot=rv:0123456789abcd;th:c", 0.25),
        ("ot=p:3", 0.125),
        ("vendor=abc", None),
        ("ot=th:zz", None),
        ("ot=th:123456789abcdef0", None),
    ],
)
def test_the_sampling_share_is_read_from_the_tracestate_as_opentelemetry_writes_it(
    state: str, kept: float | None
) -> None:
    found = sampling_probability(state)
    assert found == pytest.approx(kept, rel=1e-6) if kept is not None else found is None


def test_ten_percent_sampled_traces_give_the_true_rate_not_a_tenth_of_it(
    from_sampled: dict,
) -> None:
    figures = from_sampled["summary"]["classes"]["GET_item"]
    assert figures["rate"] == pytest.approx(RATE, rel=0.08)
    low, high = figures["rate_ci95"]
    assert low <= RATE <= high
    assert "sampled (0.1 of them kept" in from_sampled["stderr"]


def test_without_a_tracestate_the_share_is_given_with_trace_sampling(recorded: dict) -> None:
    blind = calibrated([recorded["silent"]], recorded["folder"] / "blind.yaml")
    told = calibrated(
        [recorded["silent"]], recorded["folder"] / "told.yaml", "--trace-sampling", "10%"
    )
    assert blind["summary"]["classes"]["GET_item"]["rate"] == pytest.approx(RATE / 10, rel=0.08)
    assert told["summary"]["classes"]["GET_item"]["rate"] == pytest.approx(RATE, rel=0.08)


@pytest.mark.parametrize("share", ["0", "1.5", "ten", "-10%"])
def test_a_trace_sampling_share_outside_zero_to_one_is_refused(recorded: dict, share: str) -> None:
    code, _, err = invoke("calibrate", str(recorded["sampled"]), "--trace-sampling", share)
    assert code == 2
    assert "--trace-sampling" in err and "above 0 and at most 1" in err
    assert "Traceback" not in err


def test_retried_calls_reach_the_store_as_often_as_they_were_made(
    recorded: dict, from_every: dict
) -> None:
    """10% of store attempts fail and are retried: 1.11 calls a request, not a rounded 1."""
    calls = from_every["yaml"]["tiers"]["web"]["calls"]
    made = len(recorded["system"].store_arrivals) / len(recorded["system"].latencies)
    assert _calls_per_visit(calls, "store") == pytest.approx(made, abs=0.03)
    assert made == pytest.approx(TRUTH.store_calls_per_request, abs=0.02)


def test_self_times_hold_despite_dropped_spans_and_a_skewed_clock(
    recorded: dict, from_every: dict
) -> None:
    every = from_every
    tiers = every["summary"]["tiers"]
    store = tiers["store"]["classes"]["GET_item"]
    web = tiers["web"]["classes"]["GET_item"]
    assert store["mean"] == pytest.approx(TRUTH.store_mean, rel=0.05)
    assert store["cv"] == pytest.approx(TRUTH.store_cv, rel=0.15)
    assert web["mean"] == pytest.approx(TRUTH.web_mean, rel=0.05)
    assert store["family"] == web["family"] == "lognormal"
    dropped = "client spans call a traced service whose server span is not in the files"
    assert dropped in every["stderr"]
    # the client spans of dropped server spans are calls, not store visits
    served = sum(
        1
        for s in json.loads(recorded["every"].read_text())["resourceSpans"]
        for scope in s["scopeSpans"]
        for span in scope["spans"]
        if span["name"] == "GET /stock"
    )
    assert tiers["store"]["visits"] == served


def test_the_model_from_sampled_traces_predicts_the_true_latency_and_passes_backtest(
    recorded: dict, from_sampled: dict
) -> None:
    scenario = recorded["folder"] / "sampled.yaml"
    code, out, err = invoke("backtest", str(scenario), str(recorded["sampled"]), "--format", "json")
    assert code == 0, out + err
    rows = json.loads(out)["comparisons"]
    predicted = {(f"{r['what']} {r['name']}", r["figure"]): r["predicted"] for r in rows}
    assert predicted[("class GET_item", "p50")] == pytest.approx(recorded["true_p50"], rel=0.10)
    assert predicted[("class GET_item", "p99")] == pytest.approx(recorded["true_p99"], rel=0.10)
    store = TRUTH.store_workers
    assert predicted[("tier store", "utilization")] == pytest.approx(
        recorded["store_busy"] / store, rel=0.10
    )


def test_a_cache_in_front_takes_its_hits_away_from_the_store(tmp_path: Path) -> None:
    truth = gt3.Truth3(hit=0.6)
    system = gt3.run(truth, 5, RATE, 60.0)
    traces = tmp_path / "cached.json"
    gt3.write_otlp(system, traces, 60.0)
    found = calibrated([traces], tmp_path / "cached.yaml")
    calls = found["yaml"]["tiers"]["web"]["calls"]
    assert _calls_per_visit(calls, "cache") == pytest.approx(truth.hit, abs=0.03)
    assert _calls_per_visit(calls, "store") == pytest.approx(
        truth.store_calls_per_request, abs=0.03
    )
    assert found["yaml"]["tiers"]["cache"]["type"] == "database"
