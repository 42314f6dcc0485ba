"""Calibration stories: measurements of a ground-truth system (tests/groundtruth.py, SimPy
only) in the real formats, read back by `capsim calibrate`, `backtest` and `fit-usl`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import groundtruth as truth_model
from capsim.cli.app import app

runner = CliRunner()
TRUTH = truth_model.Truth()
WINDOW = 120.0


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two minutes of the truth at a constant 100/s browse and 20/s checkout, as OTLP JSON."""
    folder = tmp_path_factory.mktemp("steady")
    record = truth_model.run_open(
        TRUTH, 1, WINDOW, {"browse": [(WINDOW + 5, 100.0)], "checkout": [(WINDOW + 5, 20.0)]}
    )
    traces = folder / "traces.json"
    truth_model.write_otlp(record, traces, WINDOW)
    code, out, err = invoke(
        "calibrate",
        str(traces),
        "--class-by",
        "app.class",
        "-o",
        str(folder / "model.yaml"),
        "--format",
        "json",
    )
    assert code == 0, err
    latency = {
        cls: np.array([c[2] for c in record.completions if c[1] == cls and c[0] <= WINDOW])
        for cls in ("browse", "checkout")
    }
    return {
        "folder": folder,
        "traces": traces,
        "record": record,
        "summary": json.loads(out),
        "scenario": folder / "model.yaml",
        "latency": latency,
    }


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Forty seconds of the same system: enough for the stories that do not measure accuracy."""
    folder = tmp_path_factory.mktemp("short")
    record = truth_model.run_open(TRUTH, 7, 40, {"browse": [(45, 100.0)], "checkout": [(45, 20.0)]})
    traces = folder / "traces.json"
    truth_model.write_otlp(record, traces, 40)
    scenario = folder / "model.yaml"
    code, _, err = invoke("calibrate", str(traces), "--class-by", "app.class", "-o", str(scenario))
    assert code == 0, err
    return {"folder": folder, "traces": traces, "record": record, "scenario": scenario}


def tier_class(summary: dict, tier: str, cls: str) -> dict:
    return summary["tiers"][tier]["classes"][cls]


@pytest.mark.parametrize(
    ("tier", "cls", "mean"),
    [
        ("front", "browse", 0.008),
        ("front", "checkout", 0.015),
        ("cache", "browse", 0.001),
        ("db", "browse", 0.012),
        ("db", "checkout", 0.012),
        ("orders", "checkout", 0.020),
    ],
)
def test_self_times_recover_the_true_service_time_means(
    steady: dict, tier: str, cls: str, mean: float
) -> None:
    fitted = tier_class(steady["summary"], tier, cls)
    assert fitted["mean"] == pytest.approx(mean, rel=0.05)
    low, high = fitted["mean_ci95"]
    assert low < fitted["mean"] < high


def test_the_fitted_families_are_the_true_ones(steady: dict) -> None:
    summary = steady["summary"]
    assert tier_class(summary, "front", "browse")["family"] == "gamma"
    assert tier_class(summary, "front", "browse")["cv"] == pytest.approx(0.5, rel=0.1)
    assert tier_class(summary, "db", "checkout")["family"] == "lognormal"
    assert tier_class(summary, "cache", "browse")["family"] in ("exponential", "gamma")


def test_call_probabilities_repeats_and_publishes_come_from_the_span_tree(steady: dict) -> None:
    calls = tier_class(steady["summary"], "front", "browse")["calls"]
    assert calls["db"]["probability"] == pytest.approx(TRUTH.db_probability, abs=0.03)
    assert calls["cache"]["probability"] == pytest.approx(1.0, abs=0.03)
    checkout = tier_class(steady["summary"], "front", "checkout")["calls"]
    assert checkout["db"]["calls_when_called"] == pytest.approx(2.0)
    assert checkout["orders"]["asynchronous"] is True
    text = steady["scenario"].read_text()
    assert "{tier: db, repeat: 2}" in text
    assert "type: queue" in text


def test_the_written_scenario_validates_and_says_where_each_figure_came_from(steady: dict) -> None:
    code, _, err = invoke("validate", str(steady["scenario"]))
    assert code == 0, err
    text = steady["scenario"].read_text()
    assert "# 12" in text or "root spans in 120s" in text
    assert "95% CI" in text and "n = " in text and "KS" in text
    for line in text.splitlines():
        if line.strip().startswith(("rate:", "service_time:")):
            index = text.splitlines().index(line)
            assert text.splitlines()[index - 1].strip().startswith("#"), line


def test_the_calibrated_model_predicts_the_true_entry_percentiles(steady: dict) -> None:
    code, out, err = invoke(
        "run", str(steady["scenario"]), "--duration", "300s", "--format", "json"
    )
    assert code == 0, err
    predicted = json.loads(out)["classes"]
    for cls, measured in steady["latency"].items():
        for name, q in (("p50", 50), ("p99", 99)):
            assert predicted[cls]["latency"][name] == pytest.approx(
                float(np.percentile(measured, q)), rel=0.10
            ), (cls, name)


def test_ndjson_otlp_holds_the_same_spans_as_one_document(short: dict) -> None:
    from capsim.measurements import read_measurement

    lines = short["folder"] / "traces.ndjson"
    truth_model.write_otlp(short["record"], lines, 40, ndjson=True)
    one, many = read_measurement(short["traces"]), read_measurement(lines)
    assert len(lines.read_text().splitlines()) > 1
    key = lambda span: (span.trace_id, span.span_id)  # noqa: E731
    assert sorted(one.spans, key=key) == sorted(many.spans, key=key)  # type: ignore[union-attr]


def test_root_span_names_are_the_classes_by_default(tmp_path: Path) -> None:
    traces = [
        [{"service": "web", "id": "01", "kind": 2, "start": 0, "end": 5 + k % 3, "name": name}]
        for k, name in enumerate(["GET /product", "POST /checkout"] * 20)
    ]
    path = tmp_path / "named.json"
    path.write_text(json.dumps(otlp_document(traces)))
    code, out, err = invoke("calibrate", str(path), "--format", "json")
    assert code == 0, err
    assert set(json.loads(out)["classes"]) == {"GET_product", "POST_checkout"}


def test_a_rate_that_changes_becomes_a_profile_and_a_steady_one_does_not(
    steady: dict, tmp_path: Path
) -> None:
    assert "profile:" not in steady["scenario"].read_text()
    record = truth_model.run_open(
        TRUTH, 4, 60, {"browse": [(30, 40.0), (65, 120.0)], "checkout": [(65, 5.0)]}
    )
    traces = tmp_path / "surge.json"
    truth_model.write_otlp(record, traces, 60)
    code, out, err = invoke(
        "calibrate",
        str(traces),
        "--class-by",
        "app.class",
        "-o",
        str(tmp_path / "s.yaml"),
        "--format",
        "json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["classes"]["browse"]["profile"] is True
    assert summary["classes"]["checkout"]["profile"] is False
    code, _, err = invoke("validate", str(tmp_path / "s.yaml"))
    assert code == 0, err


# --- backtest ---------------------------------------------------------------------------------


def test_backtest_passes_the_calibrated_model_against_its_own_measurements(steady: dict) -> None:
    # Two minutes of traces: from the forty seconds of `short`, the measured p99 itself is
    # noisy enough that the simulated one fell 20.04% from it under some draws (20% allowed).
    code, out, err = invoke(
        "backtest",
        str(steady["scenario"]),
        str(steady["traces"]),
        "--class-by",
        "app.class",
        "--duration",
        "200s",
        "--format",
        "json",
    )
    assert code == 0, out + err
    data = json.loads(out)
    figures = {(r["name"], r["figure"]) for r in data["comparisons"]}
    assert {
        ("browse", "p50"),
        ("browse", "p95"),
        ("browse", "p99"),
        ("db", "utilization"),
    } <= figures
    assert data["passed"] is True


def test_backtest_catches_a_model_that_has_drifted(short: dict) -> None:
    code, out, err = invoke(
        "backtest",
        str(short["scenario"]),
        str(short["traces"]),
        "--class-by",
        "app.class",
        "--set",
        "tiers.db.classes.browse.service_time={dist: exponential, mean: 30ms}",
        "--format",
        "json",
    )
    assert code == 1, out + err
    data = json.loads(out)
    off = {(r["name"], r["figure"]) for r in data["comparisons"] if not r["passed"]}
    assert ("db", "utilization") in off and ("browse", "p99") in off


def test_backtest_tolerances_are_options(short: dict) -> None:
    code, out, _ = invoke(
        "backtest",
        str(short["scenario"]),
        str(short["traces"]),
        "--class-by",
        "app.class",
        "--latency-tolerance",
        "0.01%",
        "--format",
        "json",
    )
    assert code == 1
    assert json.loads(out)["tolerances"]["latency"] == pytest.approx(0.0001)


# --- Prometheus aggregates --------------------------------------------------------------------


@pytest.fixture(scope="module")
def aggregates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """200 s with rates changing every 20 s (so the class mix varies), as query_range files."""
    folder = tmp_path_factory.mktemp("prometheus")
    rng = np.random.default_rng(5)
    plan = {
        cls: [(20.0 * (k + 1), base * rng.uniform(0.4, 1.4)) for k in range(11)]
        for cls, base in (("browse", 100.0), ("checkout", 20.0))
    }
    record = truth_model.run_open(TRUTH, 2, 200, plan)
    return truth_model.write_prometheus(record, folder, 200, step=10.0)


def test_demands_from_utilisation_and_throughput_are_within_ten_percent(
    aggregates: list[Path],
) -> None:
    code, out, err = invoke("calibrate", *map(str, aggregates), "--format", "json")
    assert code == 0, err
    demands = {d["tier"]: d for d in json.loads(out)["demands"]}
    expected = {
        ("front", "product"): 0.008,
        ("front", "checkout"): 0.015,
        ("cache", "product"): 0.001,
        ("db", "product"): 0.3 * 0.012,
        ("db", "checkout"): 2 * 0.012,
        ("worker", "checkout"): 0.020,
    }
    for (tier, cls), demand in expected.items():
        assert demands[tier]["demands"][cls] == pytest.approx(demand, rel=0.10), (tier, cls)
        low, high = demands[tier]["intervals"][cls]
        assert low <= demands[tier]["demands"][cls] <= high
    assert demands["worker"]["demands"]["product"] < 0.0005  # browse never reaches the worker


def test_a_scenario_from_aggregates_validates_and_runs(
    aggregates: list[Path], tmp_path: Path
) -> None:
    scenario = tmp_path / "aggregates.yaml"
    code, _, err = invoke(
        "calibrate",
        *map(str, aggregates),
        "-o",
        str(scenario),
        "--workers",
        "front=4",
        "--workers",
        "db=2",
    )
    assert code == 0, err
    text = scenario.read_text()
    assert "concurrency: 4" in text and "NNLS" in text
    code, out, err = invoke("run", str(scenario), "--duration", "20s", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["tiers"]["front"]["utilization"] > 0


# --- load tests and the USL -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("stepped")
    steps = [(n, 12.0) for n in (1, 2, 3, 4, 6, 8)]
    record, users = truth_model.run_closed(TRUTH, 3, steps)
    k6, locust = folder / "k6.ndjson", folder / "run_stats_history.csv"
    truth_model.write_k6(record, users, k6)
    truth_model.write_locust_history(record, users, locust)
    return {"k6": k6, "locust": locust, "record": record, "steps": steps}


def test_k6_and_locust_steps_carry_the_offered_load_and_latency(stepped: dict) -> None:
    from capsim.measurements import read_measurement

    k6 = read_measurement(stepped["k6"])
    locust = read_measurement(stepped["locust"])
    assert [s.users for s in k6.steps] == [float(n) for n, _ in stepped["steps"]]  # type: ignore[union-attr]
    assert [s.users for s in locust.steps] == [float(n) for n, _ in stepped["steps"]]  # type: ignore[union-attr]
    done = np.array([c[0] for c in stepped["record"].completions])
    latency = np.array([c[2] for c in stepped["record"].completions])
    for k, step in enumerate(k6.steps):  # type: ignore[union-attr]
        inside = (done >= 12.0 * k) & (done < 12.0 * (k + 1))
        assert step.throughput == pytest.approx(inside.sum() / 12.0, rel=0.05)
        assert step.latency["p50"] == pytest.approx(
            float(np.percentile(latency[inside], 50)), rel=0.05
        )
    for k6_step, locust_step in zip(k6.steps, locust.steps, strict=True):  # type: ignore[union-attr]
        assert locust_step.throughput == pytest.approx(k6_step.throughput, rel=0.1)


def test_fit_usl_reads_a_stepped_load_test(stepped: dict) -> None:
    code, out, err = invoke("fit-usl", str(stepped["locust"]), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["points"] == len(stepped["steps"])
    assert data["lambda"] == pytest.approx(data["throughput"][0], rel=0.3)


def usl_csv(path: Path, lam: float, sigma: float, kappa: float, noise: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    n = np.array([1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128], dtype=float)
    x = (
        lam
        * n
        / (1 + sigma * (n - 1) + kappa * n * (n - 1))
        * (1 + noise * rng.standard_normal(n.size))
    )
    path.write_text(
        "concurrency,throughput\n" + "".join(f"{a:g},{b:.6g}\n" for a, b in zip(n, x, strict=True))
    )
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_usl_parameters_are_recovered_from_a_noisy_curve(tmp_path: Path, seed: int) -> None:
    lam, sigma, kappa = 50.0, 0.04, 0.0005
    code, out, err = invoke(
        "fit-usl",
        str(usl_csv(tmp_path / "usl.csv", lam, sigma, kappa, 0.02, seed)),
        "--format",
        "json",
    )
    assert code == 0, err
    data = json.loads(out)
    for name, value in (
        ("lambda", lam),
        ("sigma", sigma),
        ("kappa", kappa),
        ("peak_concurrency", math.sqrt((1 - sigma) / kappa)),
    ):
        low, high = data["ci95"][name]
        assert low <= value <= high, (name, value, low, high)
    assert data["lambda"] == pytest.approx(lam, rel=0.05)


def test_fit_usl_draws_its_curve_in_markdown_and_svg(tmp_path: Path) -> None:
    chart = tmp_path / "usl.svg"
    code, out, err = invoke(
        "fit-usl",
        str(usl_csv(tmp_path / "usl.csv", 50, 0.04, 0.0005, 0.02, 1)),
        "--format",
        "markdown",
        "--chart",
        str(chart),
    )
    assert code == 0, err
    assert 'data-chart="usl"' in out and "N*" in out
    assert chart.read_text().startswith("<svg")


def test_k6_summary_export_and_locust_stats_are_read(tmp_path: Path) -> None:
    from capsim.measurements import read_measurement

    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "root_group": {"name": "", "path": "", "groups": {}, "checks": {}},
                "metrics": {
                    "http_req_duration": {
                        "avg": 21.5,
                        "min": 3.1,
                        "med": 17.0,
                        "max": 410.0,
                        "p(90)": 40.2,
                        "p(95)": 55.0,
                    },
                    "http_reqs": {"count": 12000, "rate": 200.0},
                    "http_req_failed": {"passes": 12, "fails": 11988, "value": 0.001},
                    "vus_max": {"value": 20, "min": 20, "max": 20},
                },
            }
        )
    )
    test = read_measurement(summary)
    step = test.totals[0]  # type: ignore[union-attr]
    assert (step.throughput, step.requests, step.errors, step.users) == (200.0, 12000, 12, 20.0)
    assert step.latency == {"mean": 0.0215, "p50": 0.017, "p95": 0.055}
    stats = tmp_path / "run_stats.csv"
    stats.write_text(
        '"Type","Name","Request Count","Failure Count","Median Response Time","Average Response Time",'
        '"Min Response Time","Max Response Time","Average Content Size","Requests/s","Failures/s","50%","66%",'
        '"75%","80%","90%","95%","98%","99%","99.9%","99.99%","100%"\n'
        '"GET","/product",9000,9,16,20.1,2,400,512,150.0,0.15,16,20,24,27,35,48,70,90,200,390,400\n'
        '"POST","/checkout",3000,3,40,45.3,10,600,128,50.0,0.05,40,47,52,56,70,85,110,130,300,590,600\n'
        '"","Aggregated",12000,12,18,26.4,2,600,416,200.0,0.2,18,24,30,34,48,62,90,110,250,500,600\n'
    )
    test = read_measurement(stats)
    assert [t.name for t in test.totals] == ["/product", "/checkout"]  # type: ignore[union-attr]
    assert test.totals[1].latency["p99"] == pytest.approx(0.130)  # type: ignore[union-attr]


# --- bad files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: not-a-measurement\n", "cannot tell the format"),
        (
            '{"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{"traceId": "ab", "spanId"',
            "truncated",
        ),
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab", "spanId": "01", "name": "x"}]}]}]}',
            "startTimeUnixNano",
        ),
        ('{"status": "error", "errorType": "bad_data", "error": "parse error"}', "did not succeed"),
        ('{"status": "success", "data": {"resultType": "vector", "result": []}}', "matrix"),
        ('{"type":"Point","metric":"http_req_duration","data":{"value":3}}\n', "data.time"),
        (
            "Timestamp,User Count,Name,Total Request Count,50%,95%,99%\n1,2,Aggregated,5\n",
            "wrong number of fields",
        ),
    ],
)
def test_a_bad_measurement_file_is_refused_with_its_path_and_the_problem(
    tmp_path: Path, content: str, expected: str
) -> None:
    bad = tmp_path / "bad.data"
    bad.write_text(content)
    code, out, err = invoke("calibrate", str(bad))
    assert code == 2, out + err
    assert str(bad) in err and expected in err
    assert "Traceback" not in err


def test_truncated_json_is_located_by_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "cut.json"
    bad.write_text('{"resourceSpans": [\n  {"resource": {}, "scopeSpans": [')
    code, _, err = invoke("calibrate", str(bad))
    assert code == 2
    assert f"{bad}:2:" in err and "truncated" in err


def test_a_file_over_the_size_cap_is_refused_with_the_option_that_raises_it(steady: dict) -> None:
    code, _, err = invoke("calibrate", str(steady["traces"]), "--max-input", "1KB")
    assert code == 3
    assert "--max-input" in err and str(steady["traces"]) in err


def test_binary_otlp_without_opentelemetry_proto_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip  # noqa: B018  (the check below decides which story applies)
    try:
        import opentelemetry.proto  # noqa: F401

        installed = True
    except ImportError:
        installed = False
    binary = tmp_path / "traces.pb"
    binary.write_bytes(b"\x0a\x00\x01\x02garbage")
    code, _, err = invoke("calibrate", str(binary))
    assert code == 2
    assert ("pip install opentelemetry-proto" in err) != installed


def test_forcing_a_format_the_file_does_not_follow_is_a_clear_error(short: dict) -> None:
    code, _, err = invoke("calibrate", str(short["traces"]), "--input-format", "prometheus")
    assert code == 2
    assert str(short["traces"]) in err


def test_load_tests_alone_cannot_make_a_scenario(tmp_path: Path) -> None:
    path = usl_csv(tmp_path / "usl.csv", 50, 0.04, 0.0005, 0.0, 1)
    code, _, err = invoke("calibrate", str(path))
    assert code == 2 and "fit-usl" in err


def otlp_document(traces: list[list[dict]]) -> dict:
    """An OTLP JSON document of hand-made spans: (service, id, parent, kind, start ms, end ms, attributes)."""
    by_service: dict[str, list[dict]] = {}
    for number, spans in enumerate(traces):
        for span in spans:
            by_service.setdefault(span["service"], []).append(
                {
                    "traceId": f"{number:032x}",
                    "spanId": span["id"],
                    "parentSpanId": span.get("parent", ""),
                    "name": span.get("name", span["id"]),
                    "kind": span["kind"],
                    "startTimeUnixNano": str(
                        1_700_000_000_000_000_000 + int(span["start"] * 1e6) + number * 10**9
                    ),
                    "endTimeUnixNano": str(
                        1_700_000_000_000_000_000 + int(span["end"] * 1e6) + number * 10**9
                    ),
                    "attributes": [
                        {"key": k, "value": {"stringValue": v}}
                        for k, v in span.get("attributes", {}).items()
                    ],
                }
            )
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
            for service, spans in by_service.items()
        ]
    }


def test_overlapping_calls_become_a_parallel_group_and_untraced_databases_a_tier(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    traces = []
    for _ in range(60):
        work = float(rng.uniform(2, 4))
        a, b, db = float(rng.uniform(5, 9)), float(rng.uniform(5, 9)), float(rng.uniform(1, 2))
        end = work + max(a, b) + db
        traces.append(
            [
                {
                    "service": "api",
                    "id": "01",
                    "kind": "SPAN_KIND_SERVER",
                    "start": 0,
                    "end": end,
                    "name": "GET /home",
                },
                {
                    "service": "api",
                    "id": "02",
                    "parent": "01",
                    "kind": "SPAN_KIND_CLIENT",
                    "start": work,
                    "end": work + a,
                },
                {
                    "service": "profile",
                    "id": "03",
                    "parent": "02",
                    "kind": "SPAN_KIND_SERVER",
                    "start": work,
                    "end": work + a,
                },
                {
                    "service": "api",
                    "id": "04",
                    "parent": "01",
                    "kind": "SPAN_KIND_CLIENT",
                    "start": work,
                    "end": work + b,
                },
                {
                    "service": "recs",
                    "id": "05",
                    "parent": "04",
                    "kind": "SPAN_KIND_SERVER",
                    "start": work,
                    "end": work + b,
                },
                {
                    "service": "api",
                    "id": "06",
                    "parent": "01",
                    "kind": 3,
                    "start": end - db,
                    "end": end,
                    "attributes": {"db.system": "postgresql"},
                },
            ]
        )
    path = tmp_path / "fanout.json"
    path.write_text(json.dumps(otlp_document(traces)))
    scenario = tmp_path / "fanout.yaml"
    code, out, err = invoke("calibrate", str(path), "-o", str(scenario), "--format", "json")
    assert code == 0, err
    text = scenario.read_text()
    assert "- {parallel: [profile, recs]}" in text
    assert "postgresql:\n    type: database" in text
    api = json.loads(out)["tiers"]["api"]["classes"]["GET_home"]
    assert api["mean"] == pytest.approx(
        3.0e-3, rel=0.1
    )  # the self time excludes the overlapping calls once
    code, _, err = invoke("validate", str(scenario))
    assert code == 0, err


def test_backtest_against_prometheus_compares_cpu_utilisation_and_histogram_percentiles(
    aggregates: list[Path], tmp_path: Path
) -> None:
    scenario = tmp_path / "aggregates.yaml"
    workers = [
        "--workers",
        "front=4",
        "--workers",
        "db=2",
        "--workers",
        "cache=2",
        "--workers",
        "worker=2",
    ]
    code, _, err = invoke("calibrate", *map(str, aggregates), "-o", str(scenario), *workers)
    assert code == 0, err
    code, out, err = invoke(
        "backtest", str(scenario), *map(str, aggregates), "--duration", "100s", "--format", "json"
    )
    assert code in (0, 1), err
    rows = {(r["name"], r["figure"]): r for r in json.loads(out)["comparisons"]}
    for tier in ("front", "db", "cache", "worker"):
        assert rows[(tier, "utilization")]["passed"], rows[(tier, "utilization")]
    assert rows[("product", "p50")]["passed"], rows[("product", "p50")]


def test_fit_usl_puts_saturate_on_a_scenario_beside_the_peak(tmp_path: Path) -> None:
    scenario = tmp_path / "one.yaml"
    scenario.write_text(
        "name: one\nsimulation: {duration: 20s}\ntraffic:\n  web: {entry: app, rate: 100/s}\n"
        "tiers:\n  app: {type: service, concurrency: 4, service_time: {dist: exponential, mean: 10ms}}\n"
    )
    steps = usl_csv(tmp_path / "usl.csv", 50, 0.04, 0.0005, 0.02, 1)
    code, out, err = invoke("fit-usl", str(steps), "--scenario", str(scenario), "--format", "json")
    assert code == 0, err
    saturate = json.loads(out)["saturate"]
    assert saturate["bottleneck"] == "app"
    assert saturate["saturation_rate"] == pytest.approx(400, rel=0.1)  # 4 workers / 10 ms


def test_a_client_root_span_is_the_users_view_and_its_server_child_the_entry(
    tmp_path: Path,
) -> None:
    traces = [
        [
            {
                "service": "loadgen",
                "id": "01",
                "kind": "SPAN_KIND_CLIENT",
                "start": 0,
                "end": 9 + k % 2,
                "name": "GET /",
            },
            {
                "service": "api",
                "id": "02",
                "parent": "01",
                "kind": "SPAN_KIND_SERVER",
                "start": 1,
                "end": 8 + k % 2,
            },
        ]
        for k in range(40)
    ]
    path = tmp_path / "client-root.json"
    path.write_text(json.dumps(otlp_document(traces)))
    code, out, err = invoke("calibrate", str(path), "--format", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["classes"]["GET"]["entry"] == "api"
    assert summary["classes"]["GET"]["latency"]["p50"] == pytest.approx(0.0095, abs=0.001)
    assert set(summary["tiers"]) == {"api"}


def test_a_utilisation_passes_within_ten_percent_or_one_point() -> None:
    from capsim.analysis.backtest import UTILIZATION_SLACK, Comparison

    def row(measured: float, predicted: float) -> Comparison:
        return Comparison("tier", "db", "utilization", measured, predicted, 0.10, UTILIZATION_SLACK)

    assert row(0.051, 0.045).passed  # 12% relative, but 0.6 point
    assert not row(0.50, 0.44).passed  # 12% relative and 6 points
    assert row(0.50, 0.54).passed
    assert not row(0.05, math.nan).passed


def test_cpu_given_as_utilisation_is_scaled_by_the_workers(
    aggregates: list[Path], tmp_path: Path
) -> None:
    workers = {"front": 4, "db": 2, "cache": 2, "worker": 2, "gateway": 1}
    cpu = json.loads(aggregates[1].read_text())
    for series in cpu["data"]["result"]:
        count = workers[series["metric"]["service"]]
        series["values"] = [[t, f"{float(v) / count:.6g}"] for t, v in series["values"]]
    utilisation = tmp_path / "cpu_utilization.json"
    utilisation.write_text(json.dumps(cpu))
    options = [f"--workers={tier}={count}" for tier, count in workers.items()]
    files = [str(aggregates[0]), str(utilisation)]
    code, out, err = invoke("calibrate", *files, *options, "--cpu-utilization", "--format", "json")
    assert code == 0, err
    code, plain, err = invoke(
        "calibrate", str(aggregates[0]), str(aggregates[1]), "--format", "json"
    )
    assert code == 0, err
    scaled = {d["tier"]: d["demands"] for d in json.loads(out)["demands"]}
    direct = {d["tier"]: d["demands"] for d in json.loads(plain)["demands"]}
    assert scaled["db"]["checkout"] == pytest.approx(direct["db"]["checkout"], rel=1e-3)
    assert scaled["front"]["product"] == pytest.approx(direct["front"]["product"], rel=1e-3)


def test_traces_without_a_time_span_have_no_rate_to_measure(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(
        json.dumps(
            otlp_document([[{"service": "api", "id": "01", "kind": 2, "start": 0, "end": 5}]])
        )
    )
    code, _, err = invoke("calibrate", str(path))
    assert code == 2
    assert str(path) in err and "same instant" in err


@pytest.fixture(scope="module")
def browse_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario calibrated from 30 s of browse-only traces of the truth."""
    folder = tmp_path_factory.mktemp("browse")
    record = truth_model.run_open(TRUTH, 12, 30, {"browse": [(35, 100.0)]})
    truth_model.write_otlp(record, folder / "traces.json", 30)
    scenario = folder / "browse.yaml"
    code, _, err = invoke(
        "calibrate", str(folder / "traces.json"), "--class-by", "app.class", "-o", str(scenario)
    )
    assert code == 0, err
    return scenario


def test_a_stepped_load_test_is_backtested_step_by_step_as_closed_loops(
    stepped: dict, browse_model: Path
) -> None:
    code, out, err = invoke(
        "backtest",
        str(browse_model),
        str(stepped["locust"]),
        "--duration",
        "20s",
        "--format",
        "json",
    )
    assert code == 0, out + err
    rows = json.loads(out)["comparisons"]
    assert {r["name"] for r in rows} == {f"browse @ {n} users" for n, _ in stepped["steps"]}
    assert {r["figure"] for r in rows} == {"throughput", "p50", "p95", "p99"}


def test_a_wrong_think_time_makes_the_steps_fail(stepped: dict, browse_model: Path) -> None:
    code, out, _ = invoke(
        "backtest",
        str(browse_model),
        str(stepped["k6"]),
        "--duration",
        "20s",
        "--think-time",
        "20ms",
        "--format",
        "json",
    )
    assert code == 1
    off = [r for r in json.loads(out)["comparisons"] if not r["passed"]]
    assert ("browse @ 1 users", "throughput") in {(r["name"], r["figure"]) for r in off}


def test_calls_that_exclude_each_other_become_one_of(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    traces = []
    for _ in range(200):
        route = rng.choice(["eu", "us", "none"], p=[0.5, 0.3, 0.2])
        spans = [{"service": "api", "id": "01", "kind": 2, "start": 0, "end": 10, "name": "GET"}]
        if route != "none":
            spans += [
                {"service": "api", "id": "02", "parent": "01", "kind": 3, "start": 2, "end": 8},
                {
                    "service": str(route),
                    "id": "03",
                    "parent": "02",
                    "kind": 2,
                    "start": 2,
                    "end": 8,
                },
            ]
        spans.append(
            {
                "service": "api",
                "id": "04",
                "parent": "01",
                "kind": 3,
                "start": 8,
                "end": 9,
                "attributes": {"peer.service": "audit"},
            }
        )
        traces.append(spans)
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(otlp_document(traces)))
    scenario = tmp_path / "routes.yaml"
    code, out, err = invoke("calibrate", str(path), "-o", str(scenario), "--format", "json")
    assert code == 0, err
    calls = json.loads(out)["tiers"]["api"]["classes"]["GET"]["calls"]
    assert calls["eu"]["probability"] == pytest.approx(0.5, abs=0.08)
    text = scenario.read_text()
    assert "one_of: {eu: " in text and "us: " in text
    assert "- audit" in text
    code, _, err = invoke("validate", str(scenario))
    assert code == 0, err


def tiny_trace(tmp_path: Path, spans: int) -> Path:
    """`spans` GET /shop requests of 10-12 ms at web, one a second."""
    traces = [
        [
            {
                "service": "web",
                "id": "01",
                "kind": 2,
                "start": 0,
                "end": 10 + k % 3,
                "name": "GET /shop",
            }
        ]
        for k in range(spans)
    ]
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(otlp_document(traces)))
    return path


TINY_MODEL = """\
name: tiny
simulation: {{duration: 200s, warmup: 1s}}
traffic:
  GET_shop: {{entry: {tier}, rate: 1/s}}
tiers:
  {tier}:
    concurrency: 4
    service_time: 11ms
"""


def test_backtest_does_not_count_percentiles_measured_from_too_few_values(tmp_path: Path) -> None:
    # 20 requests: p50 needs 10 / (1 - 0.5) = 20 values and has them; p95 (200) and p99 (1,000)
    # do not. Those rows are marked and do not count; web's utilization and p50 carry the pass.
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_MODEL.format(tier="web"))
    trace = tiny_trace(tmp_path, 20)
    code, out, err = invoke("backtest", str(scenario), str(trace), "--format", "json")
    assert code == 0, out + err
    data = json.loads(out)
    rows = {r["figure"]: r for r in data["comparisons"]}
    assert rows["p50"]["samples"] == 20 and rows["p50"]["low_sample"] is False
    assert rows["p95"]["measured_low_sample"] is True and rows["p99"]["low_sample"] is True
    assert rows["utilization"]["low_sample"] is False
    assert data["passed"] is True
    code, out, err = invoke("backtest", str(scenario), str(trace))
    assert code == 0, out + err
    assert "2 percentiles marked *" in out and "cannot confirm the model" in out


def test_backtest_of_only_low_sample_percentiles_is_not_confirmed(tmp_path: Path) -> None:
    # 10 requests and no tier in common: every compared figure rests on too few values.
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY_MODEL.format(tier="app"))
    code, out, err = invoke("backtest", str(scenario), str(tiny_trace(tmp_path, 10)))
    assert code == 1, out + err
    assert "NOT CONFIRMED" in out and "PASS" not in out


def test_a_short_trace_s_rate_counts_the_gaps_between_its_first_and_last_root_span(
    tmp_path: Path,
) -> None:
    # 20 requests one a second span 19 s, first to last: 19 gaps of 1 s, a rate of 1/s. Counting
    # 20 over the 19 s would say 1.053/s, 5% high (the bias is 1 / (n - 1): it fades as n grows).
    path = tmp_path / "model.yaml"
    code, out, err = invoke(
        "calibrate", str(tiny_trace(tmp_path, 20)), "-o", str(path), "--format", "json"
    )
    assert code == 0, err
    rate = json.loads(out)["classes"]["GET_shop"]["rate"]
    assert rate == pytest.approx(1.0, rel=1e-3)
    assert "rate: 1/s" in path.read_text()
