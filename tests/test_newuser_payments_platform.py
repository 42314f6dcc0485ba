"""Stories of a capacity planner new to capsim, planning a payments platform
(`scenarios/payments-platform.yaml`: a least-connections gateway, auth with a Redis cache in
front of the user DB, payments calling fraud scoring with a timeout and retries and a ledger
with a primary, read replicas and a pool, an outbox queue whose consumers call a bank with a
timeout and retries; a daily profile peaking at 1,500 payments/s and a closed reconciliation
batch).

Each test is one thing they checked by hand, with queueing theory, against what capsim said.
The fast ones run on the formulas or on small scenarios; the ones that simulate the platform
itself are marked slow.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.cli.app import app

runner = CliRunner()

PLATFORM = Path(__file__).resolve().parent.parent / "scenarios" / "payments-platform.yaml"

# The day compressed: 200/s for the first 50 s of the window, then 460/s to its end, into four
# 10 ms workers (capacity 400/s). The window's mean offered rate, 330/s, is below the capacity:
# the tier is overloaded only at the peak, where its backlog climbs by 460 - 400 = 60/s.
LATE_PEAK = """
version: 1
name: late-peak
seed: 3
simulation: {duration: 100s, warmup: 10s}
traffic:
  pay:
    entry: api
    profile:
      - {at: 0s, rate: 200/s}
      - {at: 60s, rate: 200/s}
      - {at: 60s, rate: 460/s}
tiers:
  api:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {class: pay, p99: 10s}
"""


def _lognormal_mean(p50: float, p99: float) -> float:
    sigma = math.log(p99 / p50) / 2.326348
    return p50 * math.exp(sigma**2 / 2)


def test_the_platform_validates_and_solve_agrees_with_the_hand_figures() -> None:
    """At the peak of 1,500 payments/s: fraud is 1,500 x 24.48 ms (the lognormal of p50 15 ms,
    p99 150 ms) over 64 workers, with the retries of its timeouts; the ledger's one primary takes every write, 1,500 x 3 ms over
    16 workers; the cache misses 10% to the user DB; each outbox message holds a consumer for
    2 ms plus the bank's mean 223.7 ms, over 16 x 32 workers."""
    result = runner.invoke(app, ["validate", str(PLATFORM)])
    assert result.exit_code == 0, result.output
    model = capsim.build_model(capsim.load_scenario(PLATFORM))
    solved = capsim.solve(model, capsim_version="test")
    tiers = solved["tiers"]
    fraud_mean = _lognormal_mean(0.015, 0.150)
    # An attempt slower than the 120 ms timeout is tried again (at most twice) and fraud still
    # does the abandoned work: 1 + p + p^2 attempts a payment, p = P(score > 120 ms) = 1.78%
    # (its workers are 57% busy: the wait is next to nothing). The run counts 1.79%.
    sigma = math.log(10) / 2.326348
    late = 0.5 * math.erfc(math.log(0.120 / 0.015) / sigma / math.sqrt(2))
    attempts = 1 + late + late**2
    assert tiers["fraud"]["utilization"] == pytest.approx(
        1500 * attempts * fraud_mean / 64, rel=1e-3
    )
    assert tiers["ledger"]["groups"]["primary"]["utilization"] == pytest.approx(
        1500 * 0.003 / 16, rel=1e-3
    )
    assert tiers["user_db"]["offered_rate"] == pytest.approx(150.0, rel=1e-6)
    # A consumer holds a message 2 ms plus the bank's call cut at its 1 s timeout; the p = 1.69%
    # cut are tried again after a full-jitter backoff (mean 100 ms, then 200 ms).
    held = 0.002 + _held_through_bank_calls(p50=0.150, p99=1.2, timeout=1.0, backoffs=(0.1, 0.2))
    assert tiers["outbox"]["occupancy"] == pytest.approx(1500 * held / 512, rel=1e-3)
    assert solved["bottleneck"]["tier"] == "outbox"
    assert solved["bottleneck"]["saturation_rate"] == pytest.approx(512 / held, rel=1e-3)


def _held_through_bank_calls(
    p50: float, p99: float, timeout: float, backoffs: tuple[float, ...]
) -> float:
    """Mean time a caller is held by a lognormal call cut at `timeout`, retried after each
    mean backoff while the attempts keep timing out (the callee's wait is nil)."""
    sigma = math.log(p99 / p50) / 2.326348
    z = math.log(timeout / p50) / sigma
    late = 0.5 * math.erfc(z / math.sqrt(2))
    mean = _lognormal_mean(p50, p99)
    beyond = mean * 0.5 * math.erfc((z - sigma) / math.sqrt(2))  # E[X; X > timeout]
    cut = mean - (beyond - timeout * late)  # E[min(X, timeout)]
    held, reach = cut, 1.0
    for backoff in backoffs:
        reach *= late
        held += reach * (backoff + cut)
    return held


def test_an_overload_only_at_the_peak_shows_the_peak_beside_the_mean(tmp_path: Path) -> None:
    """The planner read "offered 1,304.0/s, capacity 1,434.1/s" on an OVERLOADED outbox and saw
    no overload: the window's mean offered rate mixes the quiet morning with the peak. The
    sentence now gives the busiest minute's arrivals beside the mean."""
    path = tmp_path / "late-peak.yaml"
    path.write_text(LATE_PEAK)
    for engine in ("vectorised", "events"):
        result = runner.invoke(app, ["check", str(path), "--engine", engine])
        assert result.exit_code == 1, result.output
        report = capsim.run_file(str(path), overrides=[], engine=engine).data
        (failure,) = report["overloaded"]
        assert failure["offered_rate"] == pytest.approx(330.0, rel=0.03)
        assert failure["offered_rate"] < failure["capacity"]
        peak = failure["offered_peak"]
        # The busiest minute of arrivals is the last one: 10 s at 200/s and 50 s at 460/s.
        assert peak["value"] == pytest.approx((10 * 200 + 50 * 460) / 60, rel=0.03)
        assert peak["value"] > failure["capacity"]
        assert peak["span"] == pytest.approx(60.0)
        assert f"{peak['value']:,.1f}/s in its busiest 60s" in result.output


def test_the_growth_of_a_late_overload_is_the_climb_at_the_end(tmp_path: Path) -> None:
    """ "Its backlog grew by 27 requests/s at the end of the run" where it climbed 2,784 in the
    last 50 s: the whole window's trend averaged the calm half with the climb. The end's own
    slope is 460 - 400 = 60/s."""
    path = tmp_path / "late-peak.yaml"
    path.write_text(LATE_PEAK)
    for engine in ("vectorised", "events"):
        report = capsim.run_file(str(path), overrides=[], engine=engine).data
        (failure,) = report["overloaded"]
        assert failure["growth_rate"] == pytest.approx(60.0, rel=0.15)
        assert report["tiers"]["api"]["growth_rate"] == failure["growth_rate"]


@pytest.mark.slow
def test_the_analytic_start_of_size_does_not_search_overloaded_tiers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`capsim size --load 3x` sat for over 20 minutes before its first simulated point: at 3x
    the bank (fixed, 1,000 workers) is offered 4,500 x 223.7 ms of work, and every
    configuration the analytic start tried left it overloaded. Each such `solve` searched along
    the mix for where each overloaded tier turns stable (with the reconciliation batch, a
    closed loop, solved at every step): 5.6 s of CPU a configuration. The start only asks what
    is stable and what meets its limits, so it no longer runs those searches."""
    from capsim.analysis import sizing
    from capsim.analysis import solve as solve_module

    searches = {"capacity": 0, "bound": 0}
    real_capacity, real_bound = (
        solve_module._capacity_when_stable,
        solve_module._where_the_bound_meets_the_load,
    )

    def counted_capacity(*args, **kwargs):  # type: ignore[no-untyped-def]
        searches["capacity"] += 1
        return real_capacity(*args, **kwargs)

    def counted_bound(*args, **kwargs):  # type: ignore[no-untyped-def]
        searches["bound"] += 1
        return real_bound(*args, **kwargs)

    monkeypatch.setattr(solve_module, "_capacity_when_stable", counted_capacity)
    monkeypatch.setattr(solve_module, "_where_the_bound_meets_the_load", counted_bound)
    model = capsim.build_model(capsim.load_scenario(PLATFORM))
    question = sizing._question(model, 3.0, sizing.DEFAULT_HEADROOM, 0, "test")
    lower = sizing._lower_bounds(question.target, question.dims, question.limit, "test")
    before = dict(searches)
    _, kind = sizing._starting_point(question, lower, "test")
    # No configuration the formulas accept (the bank stays overloaded): the lower bounds,
    # found without a search per configuration tried.
    assert kind == "lower bounds"
    assert searches == before
    # At 2x the start is the hand sizing: 3,000 x 38 ms held at payments within 80% -> 10
    # instances of 16; fraud 3,000 x 24.5 ms within 90% -> 6 of 16; outbox 3,000 x 225.7 ms
    # within 90% -> 24 consumers of 32.
    question = sizing._question(model, 2.0, sizing.DEFAULT_HEADROOM, 0, "test")
    lower = sizing._lower_bounds(question.target, question.dims, question.limit, "test")
    start, kind = sizing._starting_point(question, lower, "test")
    assert kind == "analytic"
    assert (start["payments"], start["fraud"], start["outbox"]) == (10, 6, 24)


@pytest.mark.slow
def test_check_fails_the_platform_whose_outbox_is_short_at_the_peak() -> None:
    """Ten outbox consumers (320 workers) carry 320 / 223.5 ms = 1,432 messages/s: enough for
    the window's mean (1,304/s) but not the 1,500/s peak. Every SLO passes (the age p99 stays
    under 5 s in a window that ends 65 s into the peak), and check must still fail it, naming
    the peak beside the mean and the backlog's climb at the end, 1,500 - 1,432 = 68/s."""
    result = runner.invoke(app, ["check", str(PLATFORM), "--set", "tiers.outbox.consumers=10"])
    assert result.exit_code == 1, result.output
    report = capsim.run_file(str(PLATFORM), overrides=["tiers.outbox.consumers=10"]).data
    (failure,) = report["overloaded"]
    assert failure["tier"] == "outbox"
    assert all(slo["passed"] for slo in report["slos"])
    assert failure["offered_rate"] == pytest.approx(1304.0, rel=0.01)
    assert failure["capacity"] == pytest.approx(320 / 0.2235, rel=0.02)
    assert failure["offered_peak"]["value"] == pytest.approx(1500.0, rel=0.01)
    assert failure["growth_rate"] == pytest.approx(1500 - 320 / 0.2235, rel=0.15)
    assert "1,501.0/s in its busiest 60s" in result.output


@pytest.mark.slow
def test_the_platform_run_checks_out_by_hand() -> None:
    """One run of the day: Little's law on the payments threads (held = throughput x time
    held, per class), the cache's miss traffic to the user DB (10%), the fraud timeout's
    retries (P(lognormal > 120 ms) = 1.78% of first attempts), the ledger's writes on the
    primary and reads on the replicas, and the outbox's message age (2 ms + the bank's
    223.5 ms mean, truncated at its 1 s timeout and retried)."""
    data = capsim.run_file(str(PLATFORM)).data
    classes, tiers = data["classes"], data["tiers"]
    assert data["passed"]
    held = sum(
        classes[name]["throughput"] * (classes[name]["latency"]["mean"] - 0.0002)
        for name in ("pay", "recon")
    )
    assert tiers["payments"]["occupancy"] == pytest.approx(held / 96, rel=0.01)
    assert tiers["user_db"]["throughput"] / tiers["auth_cache"]["throughput"] == pytest.approx(
        0.10, abs=0.005
    )
    sigma = math.log(10) / 2.326348
    beyond = 0.5 * math.erfc(math.log(0.120 / 0.015) / sigma / math.sqrt(2))
    fraud = tiers["fraud"]
    first_attempts = fraud["arrivals"] - fraud["retries"]
    assert fraud["retries"] / first_attempts == pytest.approx(beyond, rel=0.1)
    groups = tiers["ledger"]["groups"]
    assert groups["primary"]["offered_rate"] == pytest.approx(
        classes["pay"]["offered_rate"], rel=0.01
    )
    assert groups["replicas"]["offered_rate"] == pytest.approx(
        classes["pay"]["offered_rate"] + 5 * classes["recon"]["offered_rate"], rel=0.01
    )
    assert tiers["outbox"]["age"]["mean"] == pytest.approx(0.2235, rel=0.03)


# An outbox whose consumers call a fixed bank of 20 workers x 80 ms (250/s) offered 300/s:
# no outbox size can help, since every consumer waits on the bank's backlog.
FIXED_BANK = """
name: fixed-bank
seed: 2
simulation: {duration: 20s, warmup: 2s}
traffic:
  pay: {entry: api, rate: 300/s}
tiers:
  api:
    concurrency: 8
    service_time: 1ms
    calls: [outbox]
  outbox:
    type: queue
    consumers: 4
    concurrency: 8
    service_time: 1ms
    calls: [bank]
  bank:
    concurrency: 20
    service_time: {dist: exponential, mean: 80ms}
    sizing: fixed
slos:
  - {class: pay, p99: 100ms}
  - {tier: outbox, age_p99: 2s}
"""


def test_size_stops_growing_a_queue_held_up_by_an_overloaded_fixed_callee(tmp_path: Path) -> None:
    """At 3x the platform's fixed bank is overloaded, and size grew the outbox's consumers
    point after point (36 to 63 in an hour): an overloaded sized tier kept the stall rule from
    judging, although its consumers only waited on the bank. A sized tier whose calls reach an
    overloaded unsized tier no longer does: the search stops after its 4 stalled growth moves,
    with the outbox at 57 consumers (102 before), naming the bank."""
    path = tmp_path / "fixed-bank.yaml"
    path.write_text(FIXED_BANK)
    result = runner.invoke(app, ["size", str(path), "--replications", "1"])
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert "bank is not sized and is overloaded at that point" in message
    consumers = int(re.search(r"outbox=(\d+)", message).group(1))  # type: ignore[union-attr]
    assert consumers < 64
