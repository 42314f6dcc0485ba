"""Stories of a performance engineer new to capsim, planning a food-delivery platform at its
Friday dinner peak: mobile traffic at open rates beside a courier app whose users wait for each
answer (a closed loop), a gateway with a rate limit, queues with partitions.

Each test is one thing they met, as they met it, on a scenario small enough to run in seconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.solve import solve
from capsim.cli.app import app

runner = CliRunner()

# An open API at 100/s on `web` (4 workers of 10 ms: full at 400/s), one request in ten calling
# `worker` (4 workers of 20 ms); 20 couriers in a closed loop (think 100 ms) keep `worker` 80%
# busy by themselves. Scaling the open traffic fills `web` at 400/s, while `worker` would take
# 2,000/s of open traffic: the couriers are a population, not a rate that grows with the load,
# and they only wait longer as `worker` gets busier.
OPEN_BESIDE_CLOSED = """
version: 1
name: open-beside-closed
seed: 1
simulation: {duration: 60s, warmup: 10s}
traffic:
  api:
    entry: web
    rate: 100/s
  couriers:
    entry: worker
    users: 20
    think_time: {dist: exponential, mean: 100ms}
tiers:
  web:
    concurrency: 4
    blocking: false
    service_time: {dist: exponential, mean: 10ms}
    calls: [{tier: worker, probability: 0.1}]
  worker:
    concurrency: 4
    service_time: {dist: exponential, mean: 20ms}
"""


def _scenario(tmp_path: Path, text: str, name: str = "food.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_bounds_are_in_open_traffic_when_a_closed_loop_shares_a_tier(tmp_path: Path) -> None:
    """They asked solve where the system breaks. It named `worker` at 308.9/s "as a total rate"
    (1.21x the 255/s of open and closed requests together), scaling the couriers as if they were
    an open rate; saturate, which scales only the open classes, then found `web` full at 394/s.
    The bounds are now in open traffic, the axis `saturate` and `--load` scale: `web` at 400/s,
    4x the 100/s offered, and `worker` at 2,000/s."""
    model = capsim.build_model(capsim.load_scenario(_scenario(tmp_path, OPEN_BESIDE_CLOSED)))
    result = solve(model, capsim_version="test")
    assert result["bottleneck"]["tier"] == "web"
    assert abs(result["bottleneck"]["saturation_rate"] - 400.0) < 1.0
    assert result["bottleneck"]["offered_rate"] == 100.0
    assert abs(result["tiers"]["worker"]["max_rate"] - 2000.0) < 2.0


def test_the_run_footer_quotes_the_headroom_of_the_open_traffic(tmp_path: Path) -> None:
    """The footer said "worker is the bottleneck ... near 308.9/s, 1.21x the 255.2/s offered
    now", though the docs promise the headroom over the open rate offered now."""
    result = runner.invoke(app, ["run", str(_scenario(tmp_path, OPEN_BESIDE_CLOSED))])
    assert result.exit_code == 0, result.output
    assert "web is the bottleneck" in result.output
    assert "4.00x the 100.0/s offered now" in result.output


# The day compressed: 100/s of menu reads, a dinner hour at 300/s, quiet again by the end. The
# gateway's limit (500/s) passes less than anything behind it can carry.
DINNER_BEHIND_A_LIMIT = """
version: 1
name: dinner-behind-a-limit
seed: 2
simulation: {duration: 30s, warmup: 2s}
traffic:
  menu:
    entry: gateway
    rate: 100/s
    profile:
      - {at: 0s, rate: 100/s}
      - {at: 10s, rate: 300/s}
      - {at: 20s, rate: 300/s}
      - {at: 25s, rate: 100/s}
tiers:
  gateway:
    concurrency: 64
    blocking: false
    service_time: 1ms
    rate_limit: {rate: 500/s, burst: 50}
"""


def test_the_footer_says_a_rate_limits_headroom_is_judged_at_the_profiles_peak(
    tmp_path: Path,
) -> None:
    """The dinner peak was 300/s and the day ends at 100/s. The footer's bottleneck line for a
    tier said "(offered rates are at the profile's peak ...)", but the line for a rate limit
    said "1.67x the 300.0/s offered now" with no word of the peak: a planner reading it against
    the 100/s the profile ends at could not tell which rate it meant."""
    result = runner.invoke(app, ["run", str(_scenario(tmp_path, DINNER_BEHIND_A_LIMIT))])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "rate_limit is the bottleneck" in x)
    assert "1.67x the 300.0/s offered now" in line
    assert "offered rates are at the profile's peak, 300.0/s, not its final rate" in line


# Orders: 8 blocking workers (10 ms of their own) that wait for the payment provider (100 ms),
# 40/s: 4.4 workers held, 55%. The provider slows down 4x for a minute: 16.4 workers wanted
# of 8, every worker held, as the run shows.
PROVIDER_SLOWS_DOWN = """
version: 1
name: provider-slows-down
seed: 3
simulation: {duration: 120s, warmup: 10s}
traffic:
  place_order: {entry: orders, rate: 40/s}
tiers:
  orders:
    concurrency: 8
    service_time: {dist: exponential, mean: 10ms}
    calls: [payment]
  payment:
    concurrency: 200
    service_time: {dist: exponential, mean: 100ms}
faults:
  - {at: 60s, for: 30s, tier: payment, slowdown: 4x}
slos:
  - {tier: orders, occupancy: 80%}
  - {tier: orders, utilization: 80%}
"""


def test_solve_does_not_pass_a_callers_occupancy_on_the_state_before_its_callee_slows_down(
    tmp_path: Path,
) -> None:
    """solve passed `orders occupancy <= 80%` with 55% while the run, where the payment provider
    slows down 4x, holds every orders worker (a 100% phase): the pass rested on the state
    before the fault, which the docs promise never happens. The orders workers wait for
    payment, so its slowdown changes their occupancy (and their waits): not judged, with the
    reason. Their own work (utilization) does not wait for payment and is still judged."""
    model = capsim.build_model(capsim.load_scenario(_scenario(tmp_path, PROVIDER_SLOWS_DOWN)))
    occupancy, utilization = solve(model, capsim_version="test")["slos"]
    assert occupancy["passed"] is None
    assert "payment" in occupancy["reason"] and "workers wait for" in occupancy["reason"]
    assert utilization["passed"] is True
    run = capsim.simulate(model).data["slos"][0]
    assert run["passed"] is False and run["observed"] > 0.99


def _couriers_beside(unvisited_tiers: int) -> str:
    """300 couriers in a closed loop on `routing`, beside tiers they never visit (an open class
    keeps those busy)."""
    others = "".join(
        f"  t{i}: {{concurrency: 8, service_time: 2ms}}\n" for i in range(unvisited_tiers)
    )
    calls = ", ".join(f"t{i}" for i in range(unvisited_tiers))
    return f"""
version: 1
name: couriers
traffic:
  couriers:
    entry: routing
    users: 300
    think_time: {{dist: exponential, mean: 4s}}
{"  menu: {entry: front, rate: 100/s}" if unvisited_tiers else ""}
tiers:
  routing: {{instances: 3, concurrency: 4, service_time: {{dist: exponential, mean: 30ms}}}}
{f"  front: {{blocking: false, concurrency: 8, service_time: 1ms, calls: [{calls}]}}" if unvisited_tiers else ""}
{others}"""


def _convolution_work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The logarithms the exact closed-network solution takes from now on (its convolutions
    take one per population step and station pair), as a one-item list that grows."""
    import math
    import types

    from capsim.analysis import formulas

    taken = [0]

    def log(*args: float) -> float:
        taken[0] += 1
        return math.log(*args)

    counting = types.SimpleNamespace(**{k: getattr(math, k) for k in dir(math) if k[0] != "_"})
    counting.log = log
    monkeypatch.setattr(formulas, "math", counting)
    formulas._closed_network.cache_clear()  # work already kept would not be counted
    return taken


def test_solve_of_a_closed_loop_does_not_pay_for_the_tiers_it_never_visits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 300 couriers on the 15-tier platform, `capsim solve` took 2.3 s and a solve of the
    model at 3x (overloaded, as `size --load 3x` asks dozens of times) 31 s of CPU: the exact
    closed-network solution convolved over every tier, the 12 the couriers never visit too.
    A tier without demand changes no figure of the closed network; leaving it out, the
    couriers' figures are those of the couriers alone (to rounding), and the solve costs what
    theirs alone does."""
    work = _convolution_work(monkeypatch)
    alone = solve(
        capsim.build_model(capsim.load_scenario(_scenario(tmp_path, _couriers_beside(0), "a.yaml"))),
        capsim_version="test",
    )
    work_alone = work[0]
    model = capsim.build_model(
        capsim.load_scenario(_scenario(tmp_path, _couriers_beside(40), "b.yaml"))
    )
    work = _convolution_work(monkeypatch)
    beside = solve(model, capsim_version="test")
    assert 0 < work[0] <= work_alone  # 905 each; 531,609 convolving the 40 unvisited tiers too
    couriers, routing = beside["classes"]["couriers"], beside["tiers"]["routing"]
    assert couriers["throughput"] == pytest.approx(alone["classes"]["couriers"]["throughput"], rel=1e-12)
    assert routing["utilization"] == pytest.approx(alone["tiers"]["routing"]["utilization"], rel=1e-12)
    assert beside["tiers"]["t0"]["utilization"] > 0  # the open class's, not the couriers'


def test_solve_of_an_overloaded_model_raises_without_first_bisecting_its_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`size --load 3x` on the platform printed nothing for minutes: its analytic start asks
    solve about overloaded configurations dozens of times, and every solve that only raises
    "no steady state" first bisected each overloaded tier's capacity (14 more solutions of the
    network each), figures the error never shows. The error now comes after one solution."""
    import capsim.analysis.solve as solve_module
    from capsim.errors import CapsimError

    model = capsim.build_model(capsim.load_scenario(
        _scenario(tmp_path, OPEN_BESIDE_CLOSED.replace("rate: 100/s", "rate: 500/s"))
    ))  # fmt: skip
    solutions = []
    real = solve_module._fixed_point
    monkeypatch.setattr(solve_module, "_fixed_point", lambda net: solutions.append(1) or real(net))
    with pytest.raises(CapsimError, match=r"web: rho=1\.25"):
        solve(model, capsim_version="test")
    assert len(solutions) == 1


# The payment provider answers in 250 ms at the median and 1.5 s at p99, whatever the load: 3.7%
# of payments take over 1 s at any rate. The objective allows 4.5%. Only `front` (4 workers of
# 10 ms) saturates, near 400/s.
SLOW_PROVIDER_SHARE = """
version: 1
name: slow-provider-share
seed: 4
simulation: {duration: 10s, warmup: 1s}
traffic:
  pay: {entry: front, rate: 100/s}
tiers:
  front:
    concurrency: 4
    blocking: false
    service_time: {dist: exponential, mean: 10ms}
    calls: [provider]
  provider:
    concurrency: 2000
    service_time: {dist: lognormal, p50: 250ms, p99: 1500ms}
slos:
  - {class: pay, share_over: {limit: 1s, max: 4.5%}}
"""


def test_saturate_does_not_step_down_from_a_verification_that_failed_only_by_noise(
    tmp_path: Path,
) -> None:
    """saturate found 360/s meeting the objective, and its verification failed with 3.57% of
    slow payments against 4.5% allowed, only by the upper end of a 3-replication interval
    (4.78%). It then stepped down 5% at a time and bisected to 289.6/s, the first rate whose
    interval happened to pass: lower rates have fewer samples, not fewer slow payments, so the
    answer was set by noise, 27% below the ceiling. Such a verification is now measured again
    with more data, as the lightest point already was, and 360/s stands."""
    path = _scenario(tmp_path, SLOW_PROVIDER_SHARE)
    result = runner.invoke(app, ["saturate", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["max_rate_meeting_slos"] >= 0.85 * data["slo_ceiling"]  # 289.6 of 395.9 before
    assert data["verification"]["meets_slos"] is True
    assert any(
        "failed only by the upper end of its 95% interval; measured again" in note
        and "met every SLO" in note
        for note in data["notes"]
        if note.startswith("the verification at")
    )


def test_saturate_does_not_take_a_point_that_failed_only_by_noise_for_the_slo_limit(
    tmp_path: Path,
) -> None:
    """On the platform, saturate said "highest rate meeting every SLO: 392.6/s" while it meets
    every SLO at the 1,740/s offered now: the search took the first curve point whose share of
    slow payments failed only by the upper end of its interval (its figure within the limit) for
    the SLO limit. Here, with 4.2% allowed, the point at 280/s failed so and the answer was
    267.9/s. Such a point is now measured again with more data before it bounds the search."""
    path = _scenario(tmp_path, SLOW_PROVIDER_SHARE.replace("max: 4.5%", "max: 4.2%"))
    result = runner.invoke(app, ["saturate", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["max_rate_meeting_slos"] >= 0.85 * data["slo_ceiling"]  # 267.9 of 395.9 before
    assert data["verification"]["meets_slos"] is True
    # Which curve point fails so depends on the seed (280/s, 120/s or 380/s in three of them).
    told = re.compile(r"the point at [\d.]+/s failed only by the upper end")
    assert any(told.match(note) for note in data["notes"])
