"""Stories of a performance engineer new to capsim who calibrates a ledger service from what its
exporters wrote: an `edge` proxy in front of an `api` pool shared by `GET /account` (a Redis
cache, then on a miss one of three `accounts-read` replicas) and `POST /transfer` (two Postgres
queries, a message to `ledger-events` drained by a `notifier`).

`stories/ledger/traces.jsonl` is 38 traces cut from a SimPy model of that system (written without
capsim), as an OpenTelemetry Collector's file exporter writes them: one resource per service and
instance, clocks skewed between services, ids in hex.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

LEDGER = Path(__file__).parent / "stories" / "ledger"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def calibrated(*files: Path) -> tuple[dict[str, Any], str]:
    code, out, err = invoke("calibrate", *map(str, files), "--format", "json")
    assert code == 0, err
    return json.loads(out), err


def calls_when_called(summary: dict[str, Any], tier: str, cls: str) -> dict[str, float]:
    calls = summary["tiers"][tier]["classes"][cls]["calls"]
    return {target: call["calls_when_called"] for target, call in calls.items()}


def test_a_batch_the_exporter_sent_twice_counts_once(tmp_path: Path) -> None:
    # An OTLP exporter retries a batch whose delivery it could not confirm, and the Collector
    # writes what it receives: the api's spans appear twice. Before, each repeated span was
    # another visit: the transfer's 2 Postgres queries read as 4, its one message as 2, Redis
    # called twice per read, with nothing said.
    lines = (LEDGER / "traces.jsonl").read_text().splitlines()
    api_batch = next(line for line in lines if '"stringValue":"api"' in line)
    retried = tmp_path / "traces.jsonl"
    retried.write_text("\n".join([*lines, api_batch]) + "\n")

    once, _ = calibrated(LEDGER / "traces.jsonl")
    twice, warnings = calibrated(retried)

    assert calls_when_called(once, "api", "POST_transfer") == {"db-primary": 2, "ledger-events": 1}
    for tier, cls in (("api", "POST_transfer"), ("api", "GET_account"), ("edge", "GET_account")):
        assert calls_when_called(twice, tier, cls) == calls_when_called(once, tier, cls)
    for tier in ("db-primary", "redis", "ledger-events", "accounts-read"):
        for cls, figures in once["tiers"][tier]["classes"].items():
            assert twice["tiers"][tier]["classes"][cls]["visits"] == figures["visits"]
    repeated = sum(
        len(scope["spans"]) for scope in json.loads(api_batch)["resourceSpans"][0]["scopeSpans"]
    )
    assert f"{repeated} spans were read more than once" in warnings


def test_the_backtest_of_a_retried_batch_measures_the_same_busy_time(tmp_path: Path) -> None:
    lines = (LEDGER / "traces.jsonl").read_text().splitlines()
    retried = tmp_path / "traces.jsonl"
    retried.write_text("\n".join(lines + lines) + "\n")
    scenario = tmp_path / "ledger.yaml"
    code, _, err = invoke("calibrate", str(LEDGER / "traces.jsonl"), "-o", str(scenario))
    assert code == 0, err

    rows = {}
    for files in ([LEDGER / "traces.jsonl"], [retried]):
        code, out, err = invoke(
            "backtest", str(scenario), *map(str, files), "--format", "json", "--duration", "2s"
        )
        assert code in (0, 1), err
        report = json.loads(out)
        measured = {c["name"]: c["measured"] for c in report["comparisons"] if c["what"] == "tier"}
        rows[len(files[0].read_text())] = (measured, err + " ".join(report["notes"]))
    (clean, _), (doubled, warnings) = rows.values()
    assert doubled == clean
    assert "spans were read more than once" in warnings


# --- a Locust test of one endpoint, run against a system that served nothing else --------------

SHARED_POOL = """
name: ledger
seed: 5
simulation: {duration: 10s, warmup: 1s}
traffic:
  GET_account: {entry: api, rate: 50/s}
  POST_transfer: {entry: api, rate: 100/s}
tiers:
  api:
    concurrency: 2
    service_time: {dist: constant, value: 10ms}
"""


def _locust_history(path: Path, steps: list[tuple[int, float, int]]) -> None:
    """A `_stats_history.csv` of a closed loop on `/account`: (users, requests/s, median ms),
    15 one-second rows per step."""
    header = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"]
    header += ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
    header += ["Total Request Count", "Total Failure Count", "Total Median Response Time"]
    header += ["Total Min Response Time", "Total Max Response Time", "Total Average Content Size"]
    rows, total, second = [], 0, 1_790_000_000
    for users, throughput, median in steps:
        for _ in range(15):
            second += 1
            total += int(throughput)
            percentiles = [median] * 11
            for name, method in (("/account", "GET"), ("Aggregated", "")):
                ends = [total, 0, median, median, median, 100]
                rows.append([second, users, method, name, throughput, 0, *percentiles, *ends])
    lines = [",".join(map(str, row)) for row in [header, *rows]]
    path.write_text("\n".join(lines) + "\n")


def test_a_load_test_of_one_endpoint_can_be_backtested_without_the_other_classes(
    tmp_path: Path,
) -> None:
    # Two users on a 2-worker api that takes 10 ms: 200/s at 10 ms, with or without more users.
    # The test ran on a staging copy that served nothing else, but the scenario also carries
    # production's 100/s of transfers. Before, backtest always simulated them beside the test's
    # users (fit-usl --scenario leaves them out), failed the right model at half the
    # throughput, and its note did not say that other traffic ran.
    scenario = tmp_path / "ledger.yaml"
    scenario.write_text(SHARED_POOL)
    history = tmp_path / "locust_stats_history.csv"
    _locust_history(history, [(2, 200.0, 10), (4, 200.0, 20)])

    code, out, err = invoke("backtest", str(scenario), str(history))
    assert code == 1, out + err
    assert "beside POST_transfer at the scenario's rates (give --alone" in out + err

    code, out, err = invoke("backtest", str(scenario), str(history), "--alone", "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    throughput = [c for c in report["comparisons"] if c["figure"] == "throughput"]
    assert [round(c["predicted"]) for c in throughput] == [200, 200]
    assert any("alone (--alone: POST_transfer left out)" in note for note in report["notes"])


def test_a_root_whose_parent_id_is_all_zeros_is_a_root(tmp_path: Path) -> None:
    # W3C trace context and OpenTelemetry call the all-zero span id invalid: no span. Some
    # exporters write it as a root's parentSpanId. Before, such a root was an orphan whose
    # parent was missing: with a third of the edge's roots written so, a third of the
    # traffic was left out (the rate a third low) under a warning about cut traces.
    docs = [json.loads(line) for line in (LEDGER / "traces.jsonl").read_text().splitlines()]
    roots = [
        span
        for doc in docs
        for resource in doc["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
        if not span.get("parentSpanId")
    ]
    for span in roots[::3]:
        span["parentSpanId"] = "0000000000000000"
    zeros = tmp_path / "traces.jsonl"
    zeros.write_text("\n".join(json.dumps(doc) for doc in docs) + "\n")

    clean, _ = calibrated(LEDGER / "traces.jsonl")
    written, warnings = calibrated(zeros)

    assert written["classes"] == clean["classes"]
    assert "parent is not in the files" not in warnings


def scenario_from(tmp_path: Path, traces: Path) -> tuple[dict[str, Any], str]:
    written = tmp_path / "calibrated.yaml"
    code, _, err = invoke("calibrate", str(traces), "-o", str(written))
    assert code == 0, err
    return yaml.safe_load(written.read_text()), err


def test_a_call_retried_under_one_client_span_is_two_visits(tmp_path: Path) -> None:
    # `front` works 3 ms and calls `back` through a client library that retries inside one
    # CLIENT span: two SERVER spans of 4.9 ms each under it (40 requests, 20 ms apart).
    # Before, only the first attempt was a visit: back got half its load, and a backtest from
    # the same traces agreed, so nothing showed it.
    scenario, _ = scenario_from(tmp_path, LEDGER / "retried-calls.jsonl")

    assert scenario["tiers"]["front"]["calls"] == [{"tier": "back", "repeat": 2}]
    assert scenario["tiers"]["front"]["service_time"] == {"dist": "constant", "value": "3ms"}
    summary, _ = calibrated(LEDGER / "retried-calls.jsonl")
    assert summary["tiers"]["back"]["classes"]["GET_x"]["visits"] == 80


def test_a_batch_consumer_shares_its_time_among_the_messages_it_consumed(tmp_path: Path) -> None:
    # `front` publishes one message a request to `q` (40 requests, 20 ms apart); the worker
    # consumes them five at a time, each batch a CONSUMER span of 20 ms (4 ms a message) in a
    # trace of its own, linked to its five producers, as OpenTelemetry's messaging conventions
    # say. Before, the batch joined only its first link's trace: 8 visits of 20 ms, and the
    # model gave every one of the 40 messages 20 ms (the queue five times too busy).
    scenario, warnings = scenario_from(tmp_path, LEDGER / "batch-consumer.jsonl")

    queue = scenario["tiers"]["q"]
    assert queue["service_time"] == {"dist": "constant", "value": "4ms"}
    assert queue["consumers"] == 1
    assert "8 consumer spans each consumed several messages" in warnings
    summary, _ = calibrated(LEDGER / "batch-consumer.jsonl")
    assert summary["tiers"]["q"]["classes"]["POST_x"]["visits"] == 40


def test_workers_for_a_tier_the_traces_do_not_show_are_refused(tmp_path: Path) -> None:
    # The replicas' service is `accounts-read`; typed as `accounts_read`, the figure was
    # ignored without a word (exit 0) and the scenario kept the traces' lower bound.
    written = tmp_path / "ledger.yaml"
    traces = str(LEDGER / "traces.jsonl")
    code, _, err = invoke("calibrate", traces, "--workers", "accounts_read=2", "-o", str(written))
    assert code == 2
    assert "--workers accounts_read=2: the measurements show no tier 'accounts_read'" in err
    assert "accounts-read, api, db-primary, edge, ledger-events, redis" in err
    assert not written.exists()

    code, _, err = invoke("calibrate", traces, "--workers", "api=8", "-o", str(written))
    assert code == 0, err
    assert yaml.safe_load(written.read_text())["tiers"]["api"]["concurrency"] == 8


# --- Prometheus: what the HTTP API answers besides the samples -------------------------------


def test_warnings_prometheus_answered_a_query_with_are_passed_on(tmp_path: Path) -> None:
    # Prometheus (Thanos, Mimir) answers a query it could only partly evaluate — a store that
    # did not respond — with status success and a `warnings` list. Before, capsim dropped it:
    # the demands came from a partial series without a word.
    answer = json.loads((LEDGER / "requests.json").read_text())
    answer["warnings"] = ["remote read: store 10.0.3.7:10901 did not respond (partial response)"]
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(answer))

    code, _, err = invoke("calibrate", str(requests), str(LEDGER / "cpu.json"))
    assert code == 0, err
    assert (
        f"{requests}: Prometheus answered the query with warnings, so its data may be partial: "
        "remote read: store 10.0.3.7:10901 did not respond (partial response)"
    ) in err
    code, _, err = invoke("calibrate", str(LEDGER / "requests.json"), str(LEDGER / "cpu.json"))
    assert code == 0, err
    assert "warnings" not in err


def test_native_histograms_are_refused_with_what_to_save_instead(tmp_path: Path) -> None:
    # A Prometheus fed by OpenTelemetry's exponential histograms stores native histograms: a
    # range query answers them under `histograms`, not `values`. Before, the message said the
    # series lacked 'values', as if the file were broken.
    answer = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"route": "/account"},
                    "histograms": [
                        [
                            1780000060,
                            {"count": "180", "sum": "1.9", "buckets": [[0, "0", "1", "180"]]},
                        ]
                    ],
                }
            ],
        },
    }
    latency = tmp_path / "http_server_request_duration_seconds.json"
    latency.write_text(json.dumps(answer))

    code, _, err = invoke("calibrate", str(LEDGER / "requests.json"), str(latency))
    assert code == 2
    assert "the series holds native histograms ('histograms'), which capsim does not read" in err
    assert "a series per 'le'" in err


def test_roots_dropped_inside_the_window_are_told_apart_from_traces_cut_at_its_end(
    tmp_path: Path,
) -> None:
    # 40 requests 20 ms apart. An exporter under load dropped three root spans in the middle of
    # the export; the export's end cut the last request's root. Before, all four were "traces
    # cut at the edges of the export", while three requests were missing from the rates.
    docs = [json.loads(line) for line in (LEDGER / "retried-calls.jsonl").read_text().splitlines()]
    front = docs[0]["resourceSpans"][0]["scopeSpans"][0]
    roots = [span for span in front["spans"] if "parentSpanId" not in span]
    dropped = {roots[i]["spanId"] for i in (10, 20, 30, 39)}
    front["spans"] = [span for span in front["spans"] if span["spanId"] not in dropped]
    traces = tmp_path / "traces.jsonl"
    traces.write_text("\n".join(json.dumps(doc) for doc in docs) + "\n")

    _, warnings = calibrated(traces)

    assert "4 spans whose parent is not in the files were left out" in warnings
    assert "3 of those traces lie inside the window, not at its edges" in warnings
    assert "if they were requests, the rates are 7.7% low" in warnings


def _replicas_demand(cpu: Path) -> tuple[dict[str, Any], str]:
    summary, warnings = calibrated(LEDGER / "requests-600s.json", cpu)
    (replicas,) = [d for d in summary["demands"] if d["tier"] == "accounts-read"]
    return replicas, warnings


def test_a_failed_scrape_of_one_pod_leaves_its_timestamp_out_of_the_tier_s_cpu(
    tmp_path: Path,
) -> None:
    # 600 s of busy cores per pod of the three accounts-read replicas (15 s step) beside the
    # request rates; the truth is 3.75 ms per GET /account (a quarter of reads miss the cache
    # and take 15 ms there) and none per transfer. One pod's scrape failed 8 times (NaN).
    # Before, the tier's CPU at those 8 timestamps was two pods' only: the fit's R² fell from
    # 0.98 to 0.55 and the demand from 3.64 ms to 3.36 ms (its interval three times wider).
    answer = json.loads((LEDGER / "cpu-accounts-read-600s.json").read_text())
    pod = answer["data"]["result"][0]
    for i in (5, 9, 14, 18, 22, 27, 31, 35):
        pod["values"][i][1] = "NaN"
    gaps = tmp_path / "cpu.json"
    gaps.write_text(json.dumps(answer))

    clean, _ = _replicas_demand(LEDGER / "cpu-accounts-read-600s.json")
    scraped, warnings = _replicas_demand(gaps)

    assert clean["r_squared"] > 0.95
    assert scraped["r_squared"] > 0.95
    assert abs(scraped["demands"]["account"] / clean["demands"]["account"] - 1) < 0.02
    assert scraped["intervals_used"] == clean["intervals_used"] - 8
    assert "CPU of accounts-read: 8 of its timestamps left out" in warnings


def test_a_pod_replaced_in_a_rollout_leaves_no_timestamp_out(tmp_path: Path) -> None:
    # The same replicas, but the first pod was replaced halfway: its series stops, a new pod's
    # starts. The tier's total is complete at every timestamp, so nothing is left out.
    answer = json.loads((LEDGER / "cpu-accounts-read-600s.json").read_text())
    old = answer["data"]["result"][0]
    new = {"metric": {**old["metric"], "pod": "accounts-read-0-new"}, "values": old["values"][20:]}
    old["values"] = old["values"][:20]
    answer["data"]["result"].append(new)
    rollout = tmp_path / "cpu.json"
    rollout.write_text(json.dumps(answer))

    clean, _ = _replicas_demand(LEDGER / "cpu-accounts-read-600s.json")
    rolled, warnings = _replicas_demand(rollout)

    assert rolled["intervals_used"] == clean["intervals_used"]
    assert rolled["demands"] == pytest.approx(clean["demands"], rel=1e-9)
    assert "timestamps left out" not in warnings


def test_traces_downloaded_from_tempo_read_like_the_collector_s_export(tmp_path: Path) -> None:
    # Grafana Tempo's trace API (/api/traces/{id}) answers OTLP JSON whose resourceSpans are
    # named `batches`, with ids in upper-case hex. Before, capsim could not tell the format.
    docs = [json.loads(line) for line in (LEDGER / "traces.jsonl").read_text().splitlines()]
    batches = [resource for doc in docs for resource in doc["resourceSpans"]]
    for resource in batches:
        for span in resource["scopeSpans"][0]["spans"]:
            for key in ("traceId", "spanId", "parentSpanId"):
                if span.get(key):
                    span[key] = span[key].upper()
    tempo = tmp_path / "trace.json"
    tempo.write_text(json.dumps({"batches": batches}))

    clean, _ = calibrated(LEDGER / "traces.jsonl")
    downloaded, _ = calibrated(tempo)

    assert downloaded["classes"] == clean["classes"]
    assert downloaded["tiers"] == clean["tiers"]


def test_rates_and_cpu_queried_over_different_ranges_are_said_to_be(tmp_path: Path) -> None:
    # The request rates saved for the first five minutes, the replicas' CPU for the last five:
    # they share one timestamp. Before, calibrate fitted the demands from that one interval
    # without a word (both classes 2.9 ms, an interval of zero width, R² 1).
    requests = json.loads((LEDGER / "requests-600s.json").read_text())
    for series in requests["data"]["result"]:
        series["values"] = series["values"][:21]
    cpu = json.loads((LEDGER / "cpu-accounts-read-600s.json").read_text())
    for series in cpu["data"]["result"]:
        series["values"] = series["values"][20:]
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    (tmp_path / "cpu.json").write_text(json.dumps(cpu))

    _, warnings = calibrated(tmp_path / "requests.json", tmp_path / "cpu.json")
    assert "the request rates cover 1780000060 to 1780000360 (Unix seconds)" in warnings
    assert "but the CPU of accounts-read 1780000360 to 1780000660" in warnings
    _, warnings = calibrated(LEDGER / "requests-600s.json", LEDGER / "cpu-accounts-read-600s.json")
    assert "query every file over the same range" not in warnings
