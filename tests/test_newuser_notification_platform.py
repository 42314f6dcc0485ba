"""Stories of a performance engineer new to capsim, planning an event-driven notification
platform (scenarios/notification-platform.yaml: an API gateway publishing to a 24-partition
events queue, blocking fan-out consumers calling a templates cache and Postgres behind a pool,
a push queue whose senders call a heavy-tailed provider with timeout, retry and breaker).

Each test asks one question a capacity planner asks and checks capsim's answer against a
figure worked by hand (utilisation = rate x service time / servers, Little's law, the fluid
backlog of an overload). Runs are short (a few simulated seconds at 3,000/s) to keep CI fast.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.analysis.summary import _undrained_warnings
from capsim.cli.app import app

runner = CliRunner()

SCENARIO = str(Path(__file__).parents[1] / "scenarios" / "notification-platform.yaml")
SHORT = ["--duration", "4s", "--set", "simulation.warmup=2s"]

# Hand figures at the evening peak, 3,000 notifications/s (the scenario's header says how).
PEAK = 3_000.0
FANOUT_HOLD = 1e-3 + 0.5e-3 + 0.05 * 1.5e-3 + 2 * 1.5e-3 + 2 * 0.5e-3  # 5.575 ms a message
PARTITIONS = 24
PROVIDER_MEAN = 0.060 * 1.8592  # lognormal p50 60 ms, p99 800 ms: sigma 1.1137, mean 111.5 ms
PUSH_WORKERS = 40 * 32


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_the_next_peak_holds_with_every_tier_where_the_hand_calculation_puts_it() -> None:
    data = _json(["run", SCENARIO, *SHORT, "--format", "json"])
    tiers = data["tiers"]
    assert abs(tiers["gateway"]["utilization"] - PEAK * 5e-3 / 64) < 0.02  # 23.4%
    assert abs(tiers["gateway"]["occupancy"] - PEAK * 6e-3 / 64) < 0.02  # + the 1 ms publish
    # Only one consumer works a partition at a time: 24 usable workers, not 32.
    assert abs(tiers["events"]["occupancy"] - PEAK * FANOUT_HOLD / PARTITIONS) < 0.03  # 70%
    groups = tiers["users_db"]["groups"]
    assert abs(groups["primary"]["utilization"] - 3_075 * 1.5e-3 / 16) < 0.02  # 29%
    assert abs(groups["replicas"]["utilization"] - 3_075 * 1.5e-3 / 32) < 0.01  # 14%
    held = 2 * PEAK * (1e-3 + PROVIDER_MEAN) / PUSH_WORKERS  # 53%
    assert abs(tiers["push"]["occupancy"] - held) < 0.03
    # The API never waits for the queues: its p99 is the gateway's lognormal p99 (24.5 ms)
    # plus the 1 ms publish, far under the 150 ms objective.
    assert 0.020 < data["classes"]["notify"]["latency"]["p99"] < 0.032
    assert data["passed"] is True


def test_solve_puts_the_wall_at_the_partitions_and_the_push_senders_next() -> None:
    data = _json(["solve", SCENARIO, "--format", "json"])
    assert data["bottleneck"]["tier"] == "events"
    wall = PARTITIONS / FANOUT_HOLD  # 4,305/s whatever the 32 consumers
    assert abs(data["bottleneck"]["saturation_rate"] / wall - 1) < 0.01
    senders = PUSH_WORKERS / (2 * (1e-3 + PROVIDER_MEAN))  # 5,688 notifications/s
    assert abs(data["tiers"]["push"]["max_rate"] / senders - 1) < 0.01


# Two partitions of a 10 ms consumer carry 200/s; 300/s are asked.
PARTITION_WALL = """
version: 1
name: partition-wall
seed: 5
simulation: {duration: 10s, warmup: 2s}
traffic:
  send: {entry: api, rate: 300/s}
tiers:
  api:
    type: service
    instances: 1
    concurrency: 4
    service_time: {dist: exponential, mean: 5ms}
    calls: [jobs]
    cost: {per_instance_hour: 0.1}
  jobs:
    type: queue
    partitions: 2
    consumers: 1
    service_time: {dist: exponential, mean: 10ms}
    cost: {per_instance_hour: 0.1}
slos:
  - {class: send, p99: 100ms}
  - {tier: jobs, age_p95: 1s}
"""


def test_size_stops_at_a_partition_wall_and_says_to_raise_the_partitions(tmp_path: Path) -> None:
    # size used to grow the API (which nothing waited on) to its sizing.max of 1,000 instances
    # and then advise raising sizing.max: the overloaded queue, capped at one consumer per
    # partition, kept the stall rule from judging. On the platform at twice its peak it grew
    # every other tier for 13 minutes.
    path = tmp_path / "wall.yaml"
    path.write_text(PARTITION_WALL)
    result = runner.invoke(app, ["size", str(path), "--replications", "2"])
    assert result.exit_code == 1, result.output
    assert "jobs is overloaded at its most (consumers=2)" in result.output
    assert "raise tiers.jobs.partitions to add parallelism" in result.output
    assert "api=1000" not in result.output


def test_size_of_the_queue_alone_names_its_partitions_not_only_its_sizing_max(
    tmp_path: Path,
) -> None:
    # With the queue the only sized tier, its 2 consumers are the most it may have: the answer
    # said only "Raise sizing.max of the tiers", which cannot help.
    path = tmp_path / "wall.yaml"
    path.write_text(PARTITION_WALL)
    result = runner.invoke(
        app, ["size", str(path), "--set", "tiers.api.sizing=fixed", "--replications", "2"]
    )
    assert result.exit_code == 1, result.output
    assert "at jobs=2 still" in result.output
    assert "raise tiers.jobs.partitions to add parallelism" in result.output


# A provider three times slower (p50 180 ms, p99 2.4 s): an attempt times out at 2 s with
# probability P(Z > ln(2000/180) / 1.1137) = 1.53%, holds a sender E[min(X, 2 s)] = 315.9 ms
# (the lognormal's partial mean), and a timed-out one is retried after 25 ms on average: a
# message holds a sender 1 + 315.9 + 1.53% x (25 + 315.9) = 322.1 ms. 1,280 senders then carry
# 3,974 pushes/s, 1,987 notifications/s: the push queue falls behind at the peak by
# 6,000 - 3,974 = 2,026 messages/s, and needs 6,000 x 322.1 ms / 0.9 / 32 = 68 consumers.
SLOW_HOLD = 1e-3 + 0.3159 + 0.0153 * (0.025 + 0.3159)
SLOWDOWN = ["--set", "faults=[{at: 0s, tier: provider, slowdown: 3x}]"]


def test_a_provider_three_times_slower_overloads_the_push_senders_at_the_peak() -> None:
    data = _json(["run", SCENARIO, *SHORT, *SLOWDOWN, "--format", "json"])
    (push,) = [o for o in data["overloaded"] if o["tier"] == "push"]
    capacity = PUSH_WORKERS / SLOW_HOLD  # 3,974 messages/s
    assert abs(push["capacity"] / capacity - 1) < 0.03
    assert abs(push["saturation_rate"] / (capacity / 2) - 1) < 0.03
    assert abs(push["growth_rate"] - (2 * PEAK - capacity)) < 300  # 2,026/s (Poisson noise)
    assert data["tiers"]["events"]["stable"] is True  # the fan-out does not feel it
    assert data["passed"] is False


def test_the_same_slowdown_written_as_a_slower_provider_gives_the_same_capacity() -> None:
    slower = "tiers.provider.service_time={dist: lognormal, p50: 180ms, p99: 2400ms}"
    data = _json(["run", SCENARIO, *SHORT, "--set", slower, "--format", "json"])
    (push,) = [o for o in data["overloaded"] if o["tier"] == "push"]
    assert abs(push["capacity"] / (PUSH_WORKERS / SLOW_HOLD) - 1) < 0.03


def test_68_push_consumers_ride_out_the_slow_provider_at_90_percent() -> None:
    more = ["--set", "tiers.push.consumers=68"]
    data = _json(["run", SCENARIO, *SHORT, *SLOWDOWN, *more, "--format", "json"])
    push = data["tiers"]["push"]
    assert push["stable"] is True
    assert abs(push["occupancy"] - 2 * PEAK * SLOW_HOLD / (68 * 32)) < 0.03  # 88.8%


# The marketing burst, compressed to 6 s: 3,000/s, then 6,000/s from 3 s to 9 s, then 3,000/s
# again (from the start of the 1 s warm-up). The 24 partitions carry 4,305/s, so the backlog
# grows at 1,695/s to 10,170 messages at 9 s, the last burst message waits 10,170 / 4,305 =
# 2.36 s, and at 3,000/s the backlog drains at only 1,305/s: 7,560 left at 11 s. A 10-minute
# burst is the same line 100 times longer: 1.02 million messages, the last waiting 236 s.
BURST = [
    "--duration",
    "10s",
    "--set",
    "simulation.warmup=1s",
    "--set",
    "traffic.notify.profile=[{at: 0s, rate: 3000/s}, {at: 3s, rate: 3000/s},"
    " {at: 3s, rate: 6000/s}, {at: 9s, rate: 6000/s}, {at: 9s, rate: 3000/s}]",
]


def test_the_burst_backlog_follows_the_fluid_line_of_the_partition_wall() -> None:
    data = _json(["run", SCENARIO, *BURST, "--format", "json"])
    events = data["tiers"]["events"]
    wall = PARTITIONS / FANOUT_HOLD
    peak = (6_000 - wall) * 6
    assert abs(events["backlog"]["max"] / peak - 1) < 0.05
    assert abs(events["backlog_at_end"] / (peak - (wall - 3_000) * 2) - 1) < 0.06
    assert abs(events["age"]["max"] - peak / wall) < 0.25
    # The run fails on the backlog it has not drained, and says how long it needs.
    assert events["undrained"]["clear_time"] > 1.0
    assert data["passed"] is False
    assert data["classes"]["notify"]["latency"]["p99"] < 0.150  # the API never feels it


def test_the_ci_gate_catches_a_provider_a_third_slower_as_a_push_regression(
    tmp_path: Path,
) -> None:
    quick = ["--duration", "2s", "--set", "simulation.warmup=1s", "--replications", "3"]
    baseline = tmp_path / "baseline.json"
    made = runner.invoke(
        app, ["run", SCENARIO, *quick, "--format", "json", "--output", str(baseline)]
    )
    assert made.exit_code == 0, made.output
    slower = "tiers.provider.service_time={dist: lognormal, p50: 80ms, p99: 1067ms}"
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    gate_args = ["check", SCENARIO, *quick, "--set", slower, "--baseline", str(baseline)]
    gate = runner.invoke(
        app,
        [*gate_args, "--junit", str(junit)],
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert gate.exit_code == 1, gate.output
    # A sender is held 1 + 148.7 ms instead of 1 + 111.5 ms: occupancy x 1.33.
    regressed = [line for line in gate.stdout.splitlines() if line.startswith("  REGRESSED")]
    assert any("tier push occupancy regressed" in line for line in regressed), gate.stdout
    assert (
        "::error file=" in gate.stdout and "title=regressed%3A tier push occupancy" in gate.stdout
    )
    text = junit.read_text()
    assert '<testsuite name="slos" tests="4" failures="0"' in text
    assert '<testsuite name="regression"' in text and "tier push occupancy" in text
    assert "capsim check: notification-platform" in summary.read_text()


# The platform with asynchronous workers everywhere, no pool, no partitions, no retries and
# the fan-out's database queries left out: what the vectorised path runs. Hand figures: the
# events consumers work 1 ms of each message over 32 workers (9.4%), templates 0.5 ms over 8
# (18.75%), users_db takes only the 150 template misses a second, and a message is done
# 1 + 0.5 + 5% x 1.5 + 2 x 0.5 = 2.575 ms after it is taken.
ASYNC = [
    "--set",
    "tiers.gateway.blocking=false",
    "--set",
    "tiers.events.blocking=false",
    "--set",
    "tiers.events.partitions=null",
    "--set",
    "tiers.events.calls=[templates, {tier: push, repeat: 2}]",
    "--set",
    "tiers.users_db.pool=null",
    "--set",
    "tiers.push.blocking=false",
    "--set",
    "tiers.push.calls=[provider]",
    "--set",
    "tiers.push.max_retries=0",
]


def test_the_two_engine_paths_agree_on_the_asynchronous_platform_and_with_the_hand() -> None:
    both = {
        path: _json(["run", SCENARIO, *SHORT, *ASYNC, "--engine", path, "--format", "json"])
        for path in ("events", "vectorised")
    }
    assert both["vectorised"]["engine"]["path"] == "vectorised"
    for data in both.values():
        tiers = data["tiers"]
        assert abs(tiers["events"]["utilization"] - PEAK * 1e-3 / 32) < 0.005
        assert abs(tiers["templates"]["utilization"] - PEAK * 0.5e-3 / 8) < 0.01
        assert abs(tiers["users_db"]["throughput"] - 0.05 * PEAK) < 25
        assert abs(tiers["events"]["age"]["mean"] - 2.575e-3) < 0.1e-3
        assert abs(tiers["push"]["age"]["mean"] - (1e-3 + PROVIDER_MEAN)) < 0.006
    events, vectorised = both["events"], both["vectorised"]
    for name, tier in events["tiers"].items():
        other = vectorised["tiers"][name]
        assert abs(tier["utilization"] - other["utilization"]) < 0.01 + 0.05 * tier["utilization"]
    p99 = events["classes"]["notify"]["latency"]["p99"]
    assert abs(vectorised["classes"]["notify"]["latency"]["p99"] / p99 - 1) < 0.1


def test_a_call_written_without_a_space_after_its_colon_is_explained() -> None:
    # `{tier:push}` is the one key 'tier:push' to YAML; the message only said "this mapping is
    # not a call", beside a form that looks like what was typed.
    squeezed = "tiers.events.calls=[templates, {tier:push,repeat:2}]"
    result = runner.invoke(app, ["validate", SCENARIO, "--set", squeezed])
    assert result.exit_code == 2, result.output
    assert "'tier:push' is one key without a value" in result.output
    assert "YAML needs a space after a colon (tier: push)" in result.output


# The provider answers 30% of pushes with an error. A sender's call retries once, but its 10%
# budget allows retries for about a tenth of the calls, so a delivery fails with probability
# q = 0.3 - 0.1 x 0.7 = 0.23; the queue redelivers it twice (max_retries: 2), so a message is
# redelivered q + q^2 = 0.28 times on average and dead-lettered with probability q^3 = 1.2%.
def test_dead_letters_and_redeliveries_follow_the_retry_budget_and_max_retries() -> None:
    errors = ["--set", "faults=[{at: 0s, tier: provider, error_rate: 30%}]"]
    data = _json(["run", SCENARIO, *SHORT, *errors, "--format", "json"])
    push, provider = data["tiers"]["push"], data["tiers"]["provider"]
    messages = 2 * data["classes"]["notify"]["offered_rate"] * data["duration"]
    consumed = messages + push["redeliveries"]
    assert 0.09 < provider["retries"] / consumed < 0.115  # the budget, and its first 10 tokens
    assert 0.25 < push["redeliveries"] / messages < 0.31
    assert 0.009 < push["dead_letters"] / messages < 0.016


# 8% a month from 3,000/s: the load reaches a rate r after ln(r / 3,000) / ln(1.08) months of
# 30.436875 days. The partitions' wall (4,305/s) is 4.7 months away, the push senders' (5,688/s)
# 8.3 months; the forecast reads each at the lower end of its saturation estimate, a little
# earlier.
def _day_reached(rate: float, start: date) -> date:
    months = math.log(rate / PEAK) / math.log(1.08)
    return start + timedelta(days=math.ceil(months * 30.436875))


@pytest.mark.slow
def test_the_forecast_puts_the_wall_at_the_partitions_in_spring() -> None:
    start = date(2026, 12, 1)
    growth = ["--growth", "8%/month", "--from", start.isoformat(), "--horizon", "12mo"]
    data = _json(
        ["forecast", SCENARIO, *growth, "--no-plan", "--duration", "3s", "--format", "json"]
    )
    events, push = data["tiers"]["events"], data["tiers"]["push"]
    wall, senders = PARTITIONS / FANOUT_HOLD, PUSH_WORKERS / (2 * (1e-3 + PROVIDER_MEAN))
    assert 0.95 * wall < events["saturation_rate"] <= 1.005 * wall
    # The push senders saturate past the partitions' wall, where the curve cannot go: their
    # "at least" figure is extrapolated over a quarter of their range on the steepest line the
    # intervals allow, so it says only that they are not what breaks first.
    assert wall < push["saturation_rate"] <= 1.005 * senders
    for tier in (events, push):
        reached = _day_reached(tier["saturation_rate"], start)
        assert abs((date.fromisoformat(tier["saturates_on"]) - reached).days) <= 1
    breach = data["first_slo_breach"]
    assert breach["rate"] <= events["saturation_rate"] + 1e-6
    assert date(2027, 3, 20) <= date.fromisoformat(breach["date"]) <= date(2027, 4, 25)


def test_the_undrained_warning_writes_the_level_before_the_burst_as_a_count() -> None:
    # A 10-minute burst measured from its first second read "still 1,009,178 in the last
    # bucket, against 8.45e+03 before the disturbance".
    drain = {
        "drained": False,
        "peak": 1_009_178.0,
        "peak_at": 630.0,
        "end": 1_009_178.0,
        "threshold": 8_451.0,
        "level_before": 8_450.4,
        "disturbed_at": 40.0,
    }
    (warning,) = _undrained_warnings({"drain": {"events": drain}}, set())
    assert "against 8,450 before the disturbance" in warning
    drain |= {"level_before": 1.96, "threshold": 2.96}
    (warning,) = _undrained_warnings({"drain": {"events": drain}}, set())
    assert "against 1.96 before the disturbance" in warning
