"""Stories of a performance engineer new to capsim, planning a payments API (a gateway with a
rate limit, auth, blocking payment workers calling fraud scoring with retries, PostgreSQL with
replicas behind a pool, a ledger queue) with a daily profile and a lost instance at peak.

Each test is one thing they met, as they met it, on a scenario small enough to run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import capsim
from capsim.analysis.points import measure
from capsim.cli.app import app

runner = CliRunner()

# The day compressed: quiet at 30/s, one busy minute at 90/s, quiet again. The payment workers
# (10, 100 ms each) are 30% busy off peak and 90% busy in the busy minute: 50% on average.
DAILY_PEAK = """
version: 1
name: daily-peak
seed: 3
simulation: {duration: 180s, warmup: 10s}
traffic:
  pay:
    entry: payments
    rate: 90/s
    profile:
      - {at: 0s, rate: 30/s}
      - {at: 100s, rate: 30/s}
      - {at: 100s, rate: 90/s}
      - {at: 160s, rate: 90/s}
      - {at: 160s, rate: 30/s}
tiers:
  payments:
    concurrency: 10
    service_time: {dist: exponential, mean: 100ms}
slos:
  - {tier: payments, utilization: 80%}
  - {tier: payments, occupancy: 80%}
"""

# Steady traffic, and one of the three payment instances lost for a minute: the two left are
# 90% busy meanwhile, 65% busy over the whole window.
LOST_INSTANCE = """
version: 1
name: lost-instance
seed: 5
simulation: {duration: 180s, warmup: 10s}
traffic:
  pay:
    entry: payments
    rate: 90/s
tiers:
  payments:
    instances: 3
    concurrency: 5
    service_time: {dist: exponential, mean: 100ms}
faults:
  - {at: 100s, tier: payments, lose: 1, for: 60s}
slos:
  - {tier: payments, occupancy: 80%}
"""


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "payments.yaml"
    path.write_text(text)
    return path


def _run_json(path: Path) -> dict:
    result = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_payments_tier_90_percent_busy_at_the_daily_peak_fails_its_80_percent_headroom(
    tmp_path: Path,
) -> None:
    # The whole window averages 50%, and the verdict used to be "PASS, observed 50%" while
    # the workers were 90% busy for the whole busy minute.
    data = _run_json(_scenario(tmp_path, DAILY_PEAK))
    payments = data["tiers"]["payments"]
    assert 0.45 < payments["utilization"] < 0.55  # the window's mean, still reported
    for slo in data["slos"]:
        assert not slo["passed"], slo
        assert 0.85 < slo["observed"] < 0.95, slo  # the busy minute: 90/s x 100 ms / 10
        assert slo["peak"] == {"at": 100.0, "span": 60.0}
    assert payments["peak"]["occupancy"]["value"] == data["slos"][1]["observed"]
    assert data["passed"] is False


def test_the_table_says_the_headroom_verdict_is_the_busiest_minute(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(_scenario(tmp_path, DAILY_PEAK)), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(busiest 60s from t = 100s)" in result.stdout
    assert "2 of 2 SLOs failed." in result.stdout


def test_losing_a_payments_instance_for_a_minute_is_judged_on_that_minute(tmp_path: Path) -> None:
    # 90/s x 100 ms = 9 workers busy: 60% of 15, but 90% of the 10 left while one is lost.
    data = _run_json(_scenario(tmp_path, LOST_INSTANCE))
    payments = data["tiers"]["payments"]
    assert payments["occupancy"] < 0.75
    (slo,) = data["slos"]
    assert not slo["passed"]
    assert 0.85 < slo["observed"] < 0.95
    assert 100.0 <= slo["peak"]["at"] <= 110.0


def test_capsim_check_fails_the_gate_on_the_busy_minute(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(_scenario(tmp_path, DAILY_PEAK))])
    assert result.exit_code == 1, result.output


def test_the_capacity_searches_judge_headroom_on_the_same_busy_minute(tmp_path: Path) -> None:
    # `capsim size --headroom` and `saturate` judge each point by its replications; they used to
    # take the window's mean (50%) and call the peak configuration safe.
    path = _scenario(tmp_path, DAILY_PEAK)
    model = capsim.build_model(capsim.load_scenario(path, ["simulation.replications=2"]))
    point = measure(model, capsim_version="test")
    assert not point.meets
    for check in point.checks:
        assert 0.85 < check.observed < 0.95, check
        assert check.upper >= check.observed


THREE_QUERIES = """
version: 1
name: three-queries
traffic:
  pay: {entry: payments, rate: 100/s}
tiers:
  payments:
    concurrency: 50
    service_time: 5ms
    calls: [{tier: postgres, repeat: 3}]
  postgres:
    type: database
    concurrency: 4
    service_time: {dist: exponential, mean: 5ms}
"""


def test_solve_says_a_database_called_three_times_saturates_at_a_third_of_its_query_rate(
    tmp_path: Path,
) -> None:
    # The solve table showed postgres "offered 300.0/s ... max rate 266.7/s ... stable": the
    # offered column counts queries, the bound counts payments. 4 workers / 5 ms = 800 queries/s,
    # 266.7 payments/s; the column now says what it is, in the bottleneck line's unit.
    path = _scenario(tmp_path, THREE_QUERIES)
    table = runner.invoke(app, ["solve", str(path)])
    assert table.exit_code == 0, table.output
    assert "saturates at" in table.stdout and "max rate" not in table.stdout
    data = json.loads(runner.invoke(app, ["solve", str(path), "--format", "json"]).stdout)
    postgres = data["tiers"]["postgres"]
    assert postgres["offered_rate"] == 300.0
    assert abs(postgres["max_rate"] - 800.0 / 3) < 1e-6
    assert data["bottleneck"] == {
        "tier": "postgres",
        "saturation_rate": postgres["max_rate"],
        "offered_rate": 100.0,
    }


WAITING_ON_FRAUD = """
version: 1
name: waiting-on-fraud
seed: 5
simulation: {duration: 60s, warmup: 5s}
traffic:
  pay: {entry: payments, rate: 200/s}
tiers:
  payments:
    instances: 4
    concurrency: 10
    service_time: 2ms
    calls: [fraud]
  fraud:
    concurrency: 100
    service_time: 50ms
faults:
  - {at: 30s, tier: payments, lose: 1, for: 10s}
"""


def test_payments_lost_while_their_workers_wait_on_fraud_count_those_requests_as_rejected(
    tmp_path: Path,
) -> None:
    # One of four payment instances dies at peak while its workers wait on fraud scoring
    # (200/s x 52 ms / 4 = 2.6 held): those requests fail, and the class counted them as errors
    # while the payments tier said "rejected 0" (docs: failed requests count in `rejected`).
    data = _run_json(_scenario(tmp_path, WAITING_ON_FRAUD))
    errors = data["classes"]["pay"]["errors"]
    assert errors > 0
    assert data["tiers"]["payments"]["rejected"] == errors
    assert data["tiers"]["fraud"]["rejected"] == 0


RATE_LIMITED_GATEWAY = """
version: 1
name: rate-limited
seed: 1
simulation: {duration: 30s}
traffic:
  pay: {entry: gateway, rate: 250/s}
tiers:
  gateway:
    concurrency: 100
    blocking: false
    service_time: 1ms
    rate_limit: {rate: 100/s, burst: 20}
    calls: [payments]
  payments:
    concurrency: 4
    service_time: {dist: exponential, mean: 20ms}
"""


def test_the_footer_names_the_gateway_rate_limit_that_refuses_most_payments(
    tmp_path: Path,
) -> None:
    # 250/s offered to a gateway that passes 100/s: payments works at half its capacity, yet the
    # footer said only "payments is the bottleneck ... overloaded, 1.25x what it can carry".
    result = runner.invoke(app, ["run", str(_scenario(tmp_path, RATE_LIMITED_GATEWAY))])
    assert result.exit_code == 0, result.output
    footer = result.stdout.split("Next steps:")[1]
    first = footer.strip().splitlines()[0]
    assert first.startswith("gateway's rate_limit (100.0/s) refused ")
    refused = int(first.split("refused ")[1].split(" ")[0].replace(",", ""))
    assert 30 * 150 * 0.9 < refused < 30 * 150 * 1.1  # about (250 - 100)/s over 30 s
    # The bottleneck is the limit (what it lets through), not payments' 200/s.
    second = footer.strip().splitlines()[1].strip()
    assert second == (
        "gateway's rate_limit is the bottleneck: it lets through at most 100.0/s of the "
        "250.0/s offered now (it refuses the rest)."
    )


def test_the_footer_says_no_refusal_of_a_rate_limit_that_refused_nothing(tmp_path: Path) -> None:
    text = RATE_LIMITED_GATEWAY.replace("rate: 250/s", "rate: 50/s")
    result = runner.invoke(app, ["run", str(_scenario(tmp_path, text))])
    assert result.exit_code == 0, result.output
    assert "refused" not in result.stdout
    # Still the lowest bound: the headroom is the limit's, before it refuses anything.
    assert (
        "gateway's rate_limit is the bottleneck: it lets through at most 100.0/s, 2.00x the "
        "50.0/s offered now." in result.stdout
    )


def test_size_that_cannot_get_past_a_gateway_rate_limit_says_the_rate_limit_is_why(
    tmp_path: Path,
) -> None:
    # `capsim size --load 2x` of the payments API (5,000/s into a gateway limited to 3,000/s)
    # grew every tier for 26 points and 19 minutes, then stopped naming "a fixed tier, a pool,
    # database replicas, a timeout, a service time" as suspects for 40% errors: exactly the
    # (5,000 - 3,000) / 5,000 the rate limit refuses, whatever the capacity.
    text = (
        RATE_LIMITED_GATEWAY.replace("rate: 250/s", "rate: 150/s").replace(
            "simulation: {duration: 30s}", "simulation: {duration: 10s}"
        )
        + "slos:\n  - {class: pay, error_rate: 1%}\n"
    )
    result = runner.invoke(app, ["size", str(_scenario(tmp_path, text))])
    assert result.exit_code == 1, result.output
    # Said before any simulation: over 10 s at most 20 + 100 x 10 of 1,500 requests pass.
    message = " ".join(result.output.split())
    assert "no capacity meets pay error_rate <= 1%: gateway's rate_limit (100/s" in message
    assert "at least 32.0% of pay's requests are refused whatever the capacity" in message
    assert "raise tiers.gateway.rate_limit.rate" in message


FIXED_FRAUD_AT_PEAK = """
version: 1
name: fixed-fraud
seed: 3
simulation: {duration: 180s, warmup: 10s, replications: 2}
traffic:
  pay:
    entry: payments
    rate: 90/s
    profile:
      - {at: 0s, rate: 30/s}
      - {at: 100s, rate: 30/s}
      - {at: 100s, rate: 90/s}
      - {at: 160s, rate: 90/s}
      - {at: 160s, rate: 30/s}
tiers:
  payments:
    instances: 2
    concurrency: 10
    service_time: {dist: exponential, mean: 20ms}
    calls: [fraud]
    sizing: {min: 1, max: 4}
  fraud:
    concurrency: 10
    service_time: {dist: exponential, mean: 105ms}
    sizing: fixed
"""


def test_size_warns_of_a_fixed_fraud_tier_90_percent_busy_in_the_busy_minute(
    tmp_path: Path,
) -> None:
    # The fraud scorers are not sized; 90/s x 105 ms keeps 9.45 of their 10 workers busy through
    # the busy minute, 52% over the window: the answer's warning used to judge the 52%.
    # Four replications: with two, the payments' occupancy interval (12.7 standard errors
    # each side) reached 100% at the largest size in 6 of seeds 1..8 while its figure stayed
    # near 55%, and size found no answer; with four it answers for each of seeds 1..24.
    path = _scenario(tmp_path, FIXED_FRAUD_AT_PEAK)
    result = runner.invoke(app, ["size", str(path), "--format", "json", "--replications", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fraud = data["tiers"]["fraud"]
    assert fraud["occupancy"] < 0.6
    assert fraud["peak"]["occupancy"]["value"] > 0.9
    (warning,) = [w for w in data["warnings"] if w.startswith("tier fraud is")]
    assert "occupied at the answer in its busiest minute (it is not sized" in warning
