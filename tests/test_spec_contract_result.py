"""SPEC.md §2 and §3 as a black box: the units, the SLO kinds, the JSON result's keys and
types, queue consumers that block by default, and overload failing every verdict.

The contract's examples are copied here (the tests never read the contract file itself).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from capsim.cli.app import app
from capsim.units import parse_duration, parse_rate, parse_ratio, parse_size

runner = CliRunner()
PLAIN_ENV = {"NO_COLOR": "1", "COLUMNS": "120", "GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None}

SHOP = """\
name: web-shop
seed: 42
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  browse:
    entry: app
    rate: 100/s
    profile:
      - {at: 0s, rate: 100/s}
      - {at: 10s, rate: 150/s}
tiers:
  app:
    type: service
    instances: 2
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
    calls: [{tier: db, probability: 0.5}, orders]
  db: {type: database, service_time: {dist: exponential, mean: 2ms}}
  orders: {type: queue, consumers: 2, service_time: 2ms}
slos:
  - {class: browse, p99: 300ms}
  - {class: browse, p95: 500ms, error_rate: 0.1%}
  - {tier: db, utilization: 70%}
  - {tier: app, occupancy: 80%}
  - {tier: app, wait_p99: 200ms}
  - {tier: orders, age_p99: 5s, backlog: 1000}
  - {class: browse, share_over: {limit: 1s, max: 1%}}
  - {class: browse, mean: 300ms}
  - {class: browse, p50: 300ms}
  - {class: browse, p90: 300ms}
  - {class: browse, p999: 300ms}
  - {tier: app, wait_mean: 200ms}
  - {tier: app, wait_p50: 200ms}
"""
#: A queue whose consumers do 1 ms of work, then call a tier that answers in 20 ms.
CONSUMERS = """\
name: consumers
simulation: {duration: 60s}
traffic:
  orders: {entry: front, rate: 50/s}
tiers:
  front: {type: service, concurrency: 100, service_time: 1ms, calls: [queue], blocking: false}
  queue: {type: queue, consumers: 2, service_time: 1ms, calls: [payments]}
  payments: {type: service, concurrency: 100, service_time: 20ms}
"""
OVERLOADED = """\
name: overloaded
simulation: {duration: 20s}
traffic:
  browse: {entry: app, rate: 150/s}
tiers:
  app: {type: service, service_time: 10ms}
slos:
  - {class: browse, p99: 1h}
"""


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), env=PLAIN_ENV)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_json(path: Path, *extra: str) -> dict:
    result = invoke("run", str(path), "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_json(write(tmp_path_factory.mktemp("shop"), "shop.yaml", SHOP))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2min", 120.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("500us", 0.0005),
        (3, 3.0),
    ],
)
def test_durations_read_as_the_contract_writes_them(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("800/s", 800.0),
        ("48k/min", 800.0),
        ("1.2M/h", 1.2e6 / 3600),
        ("86.4k/d", 1.0),
        (5, 5.0),
        ("1G/d", 1e9 / 86400),
    ],
)
def test_rates_read_as_the_contract_writes_them(text: object, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(("text", "ratio"), [(0.85, 0.85), ("85%", 0.85), ("0.1%", 0.001)])
def test_ratios_read_as_the_contract_writes_them(text: object, ratio: float) -> None:
    assert parse_ratio(text) == pytest.approx(ratio)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512B", 512.0),
        ("2KB", 2e3),
        ("3MB", 3e6),
        ("1GB", 1e9),
        ("1TB", 1e12),
        ("2KiB", 2048.0),
        ("1MiB", 2.0**20),
        ("1GiB", 2.0**30),
        ("1TiB", 2.0**40),
    ],
)
def test_sizes_read_in_powers_of_1000_and_of_1024(text: str, size: float) -> None:
    assert parse_size(text) == size


def test_the_result_has_every_key_the_contract_names_with_its_type(shop: dict) -> None:
    assert shop["capsim_version"] and shop["scenario"] == "web-shop"
    assert (shop["seed"], shop["replications"], shop["duration"]) == (42, 2, 20.0)
    browse = shop["classes"]["browse"]
    for key in ("offered_rate", "throughput", "error_rate"):
        assert isinstance(browse[key], float)
    assert isinstance(browse["completed"], int) and isinstance(browse["errors"], int)
    assert list(browse["latency"]) >= ["mean", "p50", "p90", "p95", "p99", "p999", "max"]
    assert {"latency.mean", "latency.p99"} <= set(browse["ci95"])
    app_tier = shop["tiers"]["app"]
    assert isinstance(app_tier["utilization"], float) and 0 <= app_tier["utilization"] <= 1
    assert isinstance(app_tier["rejected"], int) and app_tier["stable"] is True
    assert set(app_tier["queue_length"]) >= {"mean", "max"}
    assert set(app_tier["wait"]) >= {"mean", "p50", "p90", "p95", "p99", "p999", "max"}
    assert isinstance(app_tier["occupancy"], float)
    first = shop["slos"][0]
    assert first["slo"] == "browse p99 <= 300ms" and first["limit"] == 0.3
    assert isinstance(first["passed"], bool) and isinstance(first["observed"], float)
    assert isinstance(shop["passed"], bool)


def test_a_profile_brings_a_timeseries_counted_from_the_start_of_warm_up(shop: dict) -> None:
    series = shop["timeseries"]
    assert series["t"][0] == 0.0 and series["t"][1] == series["bucket"]
    assert set(series["classes"]["browse"]) >= {"offered_rate", "throughput", "error_rate", "p99"}
    tier_keys = {"instances", "utilization", "occupancy", "queue_length", "in_flight"}
    assert set(series["tiers"]["app"]) >= tier_keys


def test_every_slo_kind_of_the_contract_is_judged_with_its_statistic(shop: dict) -> None:
    judged = {verdict["statistic"] for verdict in shop["slos"]}
    assert judged == {
        "p99", "p95", "error_rate", "utilization", "occupancy", "wait_p99", "age_p99", "backlog",
        "share_over", "mean", "p50", "p90", "p999", "wait_mean", "wait_p50",
    }  # fmt: skip
    backlog = next(v for v in shop["slos"] if v["statistic"] == "backlog")
    assert backlog["observed"] == shop["tiers"]["orders"]["backlog"]["max"]


def test_queue_consumers_block_by_default_while_their_calls_are_out(tmp_path: Path) -> None:
    """A consumer is held for its 1 ms of work and the 20 ms its call takes: occupancy
    50/s x 21 ms / 2 consumers = 52.5%, beside a utilization (the work alone) of 2.5%."""
    path = write(tmp_path, "consumers.yaml", CONSUMERS)
    blocking = run_json(path)["tiers"]["queue"]
    assert blocking["utilization"] == pytest.approx(0.025, rel=0.1)
    assert blocking["occupancy"] == pytest.approx(0.525, rel=0.1)
    freed = run_json(path, "--set", "tiers.queue.blocking=false")["tiers"]["queue"]
    assert freed["occupancy"] == pytest.approx(freed["utilization"])


def test_an_overloaded_tier_fails_run_check_and_the_report_whatever_the_slos(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "overloaded.yaml", OVERLOADED)
    data = run_json(path)
    assert all(verdict["passed"] for verdict in data["slos"])
    assert data["tiers"]["app"]["stable"] is False and data["passed"] is False
    assert invoke("check", str(path)).exit_code == 1
    report = tmp_path / "report.md"
    made = invoke("report", str(path), "-o", str(report), "--no-curve")
    assert made.exit_code == 0, made.output
    assert "FAIL: tier OVERLOADED" in report.read_text()
