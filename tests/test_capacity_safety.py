"""Near saturation is not a safe answer: saturate stays below saturation, size keeps headroom.

The stories use a ticket on-sale (an API publishing orders to a queue whose consumers call a
payment provider), a SaaS job queue limited by its partitions, an API under an HPA and a rush
that arrives late in the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.saturate import (
    CONFIRM_REUSE,
    find_saturation,
    near_saturation_duration,
    relaxation_time,
)
from capsim.analysis.sizing import size_tiers
from capsim.cli.app import app
from capsim.engine.executors import open_executor
from capsim.outputs.capacity import render_capacity

runner = CliRunner()

ONSALE = """\
name: ticket-onsale
seed: 7
simulation: {{duration: 20s, warmup: 2s, replications: 2}}
traffic:
  buy: {{entry: api, rate: 300/s}}
tiers:
  api:
    instances: 2
    concurrency: 8
    service_time: {{dist: exponential, mean: 5ms}}
    calls: [orders]
    cost: {{per_instance_hour: 0.4}}
  orders:
    type: queue
    consumers: {consumers}
    blocking: true
    service_time: {{dist: exponential, mean: 2ms}}
    calls: [payment]
    cost: {{per_instance_hour: 0.1}}
  payment:
    concurrency: 64
    service_time: {{dist: exponential, mean: 14ms}}
    sizing: fixed
slos:
  - {{class: buy, p99: 200ms}}
"""

#: Eight consumers, but only two partitions: one message per partition at a time, so the queue
#: takes 2 / 10 ms = 200 messages/s while its consumers look 25% occupied.
PARTITIONED = """\
name: saas-jobs
seed: 5
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  api_call: {entry: api, rate: 100/s}
tiers:
  api:
    concurrency: 16
    service_time: {dist: exponential, mean: 5ms}
    calls: [jobs]
  jobs:
    type: queue
    consumers: 8
    partitions: 2
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {class: api_call, p99: 100ms}
"""

#: 255/s for the first 20 s, then 300/s: short search runs only ever see the quiet part.
LATE_RUSH = """\
name: late-rush
seed: 4
simulation: {duration: 40s, warmup: 4s, replications: 2}
traffic:
  buy:
    entry: api
    rate: 300/s
    profile:
      - {at: 0s, rate: 255/s}
      - {at: 20s, rate: 255/s}
      - {at: 20s, rate: 300/s}
tiers:
  api:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {class: buy, p99: 2s}
"""

#: A retry storm: api gives up on a db call after 30 ms and tries again at once (up to 3
#: retries). db's 4 workers of 10 ms carry 400/s, but near 200/s its waits pass the timeout,
#: every timed-out attempt comes back as more work, and the load runs away: occupancy rises
#: far faster than along the line through the calm points, so the secant through them
#: (about 260/s) overestimates saturation.
RETRY_STORM = """\
name: retry-storm
seed: 5
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  get: {entry: api, rate: 100/s}
tiers:
  api:
    concurrency: 64
    service_time: 1ms
    calls:
      - {tier: db, timeout: 30ms, retries: {max: 3, backoff: none}}
  db:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
"""


#: One pool of 4 workers at 10 ms (400/s) whose longest wait must stay under 80 ms.
#: The longest wait grows with the run's length: 3 s search points against 120 s verifications
#: (40x) fail a verification for 9 of seeds 1..10; 6 s against 60 s (10x) did for 5 of 10.
LONGEST_WAIT = """\
name: longest-wait
seed: 3
simulation: {duration: 120s, warmup: 4s, replications: 2}
traffic:
  buy: {entry: api, rate: 300/s}
tiers:
  api:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {tier: api, wait_max: 80ms}
"""

#: An HPA between 2 and 8 instances of 4 workers at 10 ms: at most 8 x 4 / 10 ms = 3,200/s.
HPA = """\
name: saas-hpa
seed: 2
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  api_call: {entry: api, rate: 600/s}
tiers:
  api:
    instances: 2
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
    autoscale: {metric: utilization, target: 60%, min: 2, max: 8, startup_time: 30s}
    cost: {per_instance_hour: 0.3}
slos:
  - {class: api_call, p99: 200ms}
"""


def model_of(tmp_path: Path, name: str, text: str) -> Any:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return capsim.build_model(capsim.load_scenario(path))


def saturate(model: Any, **options: Any) -> dict[str, Any]:
    return find_saturation(model, capsim_version=capsim.__version__, **options)


@pytest.mark.parametrize(("consumers", "capacity"), [(4, 250.0), (20, 1250.0)])
def test_the_headline_rate_stays_below_the_order_queues_saturation_and_is_verified(
    tmp_path: Path, consumers: int, capacity: float
) -> None:
    # Consumers held 16 ms per order (2 ms own work + a 14 ms payment call): c / 16 ms.
    result = saturate(
        model_of(tmp_path, "onsale", ONSALE.format(consumers=consumers)), duration=5.0
    )
    assert result["bottleneck"] == "orders"
    assert result["tiers"]["orders"]["held_by"] == "occupancy"
    assert result["saturation_rate"] == pytest.approx(capacity, rel=0.03)
    best = result["max_rate_meeting_slos"]
    assert best <= result["saturation_rate_low"] <= result["saturation_rate"]
    assert best <= min(t["max_rate_low"] for t in result["tiers"].values())
    assert best <= capacity  # never at or beyond the analytic c / E[hold] either
    assert result["verification"]["meets_slos"] is True
    assert result["verification"]["rate"] == best


def test_the_curve_shows_the_order_queue_held_beside_its_cpu_share(tmp_path: Path) -> None:
    path = tmp_path / "onsale.yaml"
    path.write_text(ONSALE.format(consumers=4))
    result = runner.invoke(app, ["saturate", str(path), "--duration", "5s"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.strip().startswith("rate ") and "util" in line)
    assert "util orders" in header and "occ orders" in header
    overloaded = [line for line in result.stdout.splitlines() if "OVERLOADED" in line]
    assert overloaded
    # Every overloaded point is beyond the queue's 250/s (4 consumers / 16 ms) and shows its
    # consumers all but always held: 100%, or just under it in a 5 s run that starts empty and
    # is too short to see a queue 1% over capacity grow (docs/results.md, "Too slow to see").
    end = header.index("occ orders") + len("occ orders")  # columns are right-aligned
    for line in overloaded:
        assert float(line.split()[0].removesuffix("/s").replace(",", "")) > 250.0
        assert float(line[:end].split()[-1].removesuffix("%")) >= 99.0


def test_a_partitioned_queue_saturates_where_its_partitions_do(tmp_path: Path) -> None:
    result = saturate(model_of(tmp_path, "jobs", PARTITIONED), duration=5.0)
    # 2 partitions x 1 / 10ms = 200/s. The occupancy counts the 2 workers that can be busy (not
    # all 8 consumers, which extrapolated to about 800/s and needed the confirmation to move the
    # estimate down), so the estimate is right at once and confirmed.
    assert result["confirmation"]["below"]["moves"] == []
    assert result["bottleneck"] == "jobs"
    assert result["saturation_rate"] == pytest.approx(200, rel=0.06)
    assert result["confirmation"]["below"]["stable"] is True
    assert result["saturation_rate_low"] < 200 <= result["saturation_rate"] * 1.06
    assert result["max_rate_meeting_slos"] <= result["saturation_rate_low"]


def test_a_failed_verification_sends_the_search_below_it_and_never_headlines_it(
    tmp_path: Path,
) -> None:
    # The longest wait grows with the length of the run: 3 s search points see shorter maxima
    # than the scenario's own 120 s run, so they pass at rates its verification fails.
    result = saturate(model_of(tmp_path, "longest", LONGEST_WAIT), duration=3.0)
    attempts = result["verification"]["attempts"]
    best = result["max_rate_meeting_slos"]
    failed = [a["rate"] for a in attempts if not a["meets_slos"]]
    assert failed and min(failed) > best
    assert [a["meets_slos"] for a in attempts if a["rate"] == best] == [True]
    assert all(a["meets_slos"] for a in attempts if a["rate"] < best)
    assert all(a["duration"] == 120.0 for a in attempts)
    assert any("search went on below it" in note for note in result["notes"])


def test_search_points_of_a_scenario_with_a_late_rush_run_its_whole_timeline(
    tmp_path: Path,
) -> None:
    # 8 s points would stop before the rush at 20 s and pass at rates the rush overloads.
    result = saturate(model_of(tmp_path, "late", LATE_RUSH), duration=8.0)
    # Every point is the scenario itself: its own 40 s (more data would be whole replications
    # more of it; none needs any here: the p99 objective stays far from its 2 s limit below
    # saturation and the queue relaxes within a second).
    assert all(point["duration"] == 40.0 for point in result["curve"])
    assert all(point["replications"] % 3 == 0 for point in result["curve"])
    assert any("runs its own timeline exactly" in note for note in result["notes"])
    # The rush is the scenario's peak (300/s = the class's rate): 4 workers at 10 ms take 400/s.
    # Points that stopped before the rush saw only 255/s and would pass well above it; from whole
    # timelines the answer is at most the measured saturation's lower bound, which noise puts
    # within the search's 2% precision of 400/s (400.4/s for one of three seed shifts).
    best = result["max_rate_meeting_slos"]
    assert best is not None and best <= result["slo_ceiling"] and best < 400 * 1.02
    assert result["verification"]["attempts"][-1]["meets_slos"] is True


def test_an_autoscaled_tier_saturates_at_its_max_replicas_and_says_so(tmp_path: Path) -> None:
    result = saturate(model_of(tmp_path, "hpa", HPA))
    assert result["analytic"]["saturation_rate"] == pytest.approx(3200)
    assert result["saturation_rate"] == pytest.approx(3200, rel=0.03)
    assert any("evaluated at its max of 8 instances" in note for note in result["notes"])


def test_size_sizes_an_autoscaled_tier_by_its_max(tmp_path: Path) -> None:
    answer = size_tiers(model_of(tmp_path, "hpa", HPA), capsim_version="test", load=4.0)
    api = answer["tiers"]["api"]
    assert api["path"] == "tiers.api.autoscale.max" and api["was"] == 8
    assert api["autoscale"] == "evaluated at autoscale.max"
    assert 2 <= answer["overrides"]["tiers.api.autoscale.max"] <= 8
    # The note says the answer is the new max, not "evaluated at its max of 8" beside it.
    (note,) = [n for n in answer["notes"] if n.startswith("tier api autoscales")]
    assert "the answer is the new max (was 8)" in note
    assert "evaluated at its max of 8" not in note
    # The table names what is sized: autoscale.max, not instances.
    rows = [r.split()[:2] for r in render_capacity(answer, "table").splitlines()]
    assert ["api", "autoscale.max"] in rows and ["api", "instances"] not in rows


UPLOADS = """\
name: uploads
seed: 3
simulation: {duration: 5min, warmup: 1min}
traffic:
  upload: {entry: api, rate: 2/s}
tiers:
  api: {concurrency: 8, service_time: 50ms, calls: [transcode], sizing: fixed}
  transcode:
    type: queue
    service_time: 10s
    autoscale: {metric: backlog, target: 2, min: 1, max: 40, polling_interval: 10s}
slos:
  - {tier: transcode, age_p99: 2min}
"""


def test_size_sizes_a_keda_queue_by_its_autoscale_max_as_it_does_an_hpa_tier(
    tmp_path: Path,
) -> None:
    # 2 jobs/s of 10 s: 20 consumers busy; at most 90% occupied takes 23, give or take the
    # noise of 600 arrivals (4%): seeds answer 23 or 24 half and half, so the count is checked
    # against the search's own measurements (its answer within 90%, one fewer not). The answer
    # is the scaler's new max (it was 40); `consumers` is only where KEDA starts, and the
    # scenario has none (it starts at min: 1), so --write must not add it.
    path = tmp_path / "uploads.yaml"
    path.write_text(UPLOADS)
    written = tmp_path / "sized.yaml"
    result = runner.invoke(app, ["size", str(path), "--format", "json", "--write", str(written)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    queue = answer["tiers"]["transcode"]
    assert queue["path"] == "tiers.transcode.autoscale.max" and queue["was"] == 40
    sized = queue["consumers"]
    assert sized == answer["overrides"]["tiers.transcode.autoscale.max"] and 22 <= sized <= 25
    assert queue["occupancy"] <= 0.9
    assert queue["one_fewer"]["value"] == sized - 1 and queue["one_fewer"]["meets_slos"] is False
    text = written.read_text()
    assert "consumers:" not in text
    assert f"min: 1, max: {sized}, polling_interval: 10s}}  # capsim size (was 40)" in text
    # The note says the answer is the new max, not "evaluated at its max of 40" beside it.
    (note,) = [n for n in answer["notes"] if "transcode" in n]
    assert note.startswith("queue transcode autoscales (1..40 consumers)")
    assert "the answer is the new max (was 40)" in note
    assert "evaluated at its max of 40" not in note


def test_size_at_3x_keeps_every_sized_tier_at_most_90_percent_occupied(tmp_path: Path) -> None:
    answer = size_tiers(
        model_of(tmp_path, "onsale", ONSALE.format(consumers=4)), capsim_version="t", load=3.0
    )
    assert answer["headroom"] == pytest.approx(0.10) and answer["verified"] is True
    for name in ("api", "orders"):
        assert answer["tiers"][name]["occupancy"] <= 0.90
    # 900 orders/s x 16 ms = 14.4 consumers busy: at most 90% held needs at least 16.
    assert answer["tiers"]["orders"]["consumers"] >= 16
    assert answer["warnings"] == []


def test_size_with_no_headroom_reaches_the_edge_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "onsale.yaml"
    path.write_text(ONSALE.format(consumers=4))
    result = runner.invoke(
        app, ["size", str(path), "--load", "3x", "--headroom", "0%", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    orders = answer["tiers"]["orders"]
    assert orders["occupancy"] > 0.90 and orders["consumers"] < 16
    [warning] = answer["warnings"]
    assert warning.startswith(f"tier orders is {orders['occupancy']:.1%} occupied")
    assert "--headroom 0% allows it" in warning


def test_points_near_saturation_run_for_twenty_relaxation_times_within_limits() -> None:
    # At 90% of a 250/s saturation: Morse's relaxation time 1 / (250 (1 - sqrt(0.9))^2).
    relax = relaxation_time(225.0, 250.0, 250.0)
    assert relax == pytest.approx(1 / (250 * (1 - 0.9**0.5) ** 2))
    assert near_saturation_duration(10.0, 225.0, 250.0, 250.0) == pytest.approx(20 * relax)
    # Far from saturation: the search duration; very near: at most 4x it.
    assert near_saturation_duration(10.0, 150.0, 250.0, 250.0) == 10.0
    assert near_saturation_duration(10.0, 249.0, 250.0, 250.0) == 40.0
    # Above saturation it is the same distance: 275/s is as hard to judge as 250^2/275.
    assert relaxation_time(275.0, 250.0, 250.0) == pytest.approx(
        relaxation_time(250.0**2 / 275.0, 250.0, 250.0)
    )


@pytest.mark.parametrize(
    ("name", "text", "duration"),
    [("storm", RETRY_STORM, 5.0), ("longest", LONGEST_WAIT, 3.0)],
    ids=["confirmation-move", "failed-verifications"],
)
def test_the_safety_searches_give_the_same_answer_on_a_process_pool(
    tmp_path: Path, name: str, text: str, duration: float
) -> None:
    # The moved estimate and the stepped-down verifications run their points on the executor;
    # each point's run length is decided before its batch, so the pool changes nothing.
    model = model_of(tmp_path, name, text)
    serial = saturate(model, duration=duration)
    with open_executor("process", 2) as pool:
        pooled = saturate(model, duration=duration, executor=pool)
    assert serial["confirmation"]["below"]["moves"] or len(serial["verification"]["attempts"]) > 1
    assert json.dumps(pooled, sort_keys=True) == json.dumps(serial, sort_keys=True)


#: One server at 10 ms: at 10% load p99 = ln(100) x 10 ms / 0.9 = 51.2 ms, near a 55 ms limit.
LIGHT_TAIL = """\
name: light-tail
seed: 5
simulation: {duration: 30s, warmup: 3s, replications: 2}
traffic:
  get: {entry: api, rate: 50/s}
tiers:
  api:
    concurrency: 1
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {class: get, p99: 55ms}
"""


def test_a_lightest_point_failing_only_by_its_interval_is_measured_again_before_giving_up(
    tmp_path: Path,
) -> None:
    # Two replications give a t interval 12.7 standard errors wide: the lightest point's p99
    # (51.2 ms, within 55 ms) fails by its upper bound alone for about half of the seeds, even
    # after the re-run for noise; it is measured again, longer and with more replications,
    # until its interval decides. Before, one such measurement with 5 replications (needed
    # for 5 seeds of 12) still failed for one and the search gave up ("the SLOs fail even at
    # 10/s"); a verification measured again once stepped down below 10/s for 3 others.
    answers, told = [], 0
    for seed in range(6):
        text = LIGHT_TAIL.replace("seed: 5", f"seed: {seed}")
        result = saturate(model_of(tmp_path, f"light-{seed}", text), replications=2)
        lightest = result["curve"][0]
        if lightest["classes"]["get"]["p99"] > 0.055:
            # Its figure itself beyond the limit (two replications put it at 56.8 ms for one
            # seed of 24 tried): a failure more data is not asked to turn, so no answer.
            assert result["max_rate_meeting_slos"] is None
            continue
        assert lightest["meets_slos"] is True
        if any(note.startswith("the lightest point (10/s)") for note in result["notes"]):
            told += 1
            assert lightest["replications"] >= 5 and lightest["duration"] > 30
        best = result["max_rate_meeting_slos"]
        assert best is not None and best >= 10 and result["verification"]["meets_slos"] is True
        answers.append(best)
    assert told >= 1 and len(answers) >= 4  # told by 2 of these 6 seeds, 9 of 16 tried
    # p99 = ln(100) x 10 ms / (1 - rho) reaches 55 ms at rho = 0.163: 16.3/s. Judged by the
    # upper end of its interval, the answer is below that (10.1..16.9/s over 16 seeds).
    assert sorted(answers)[len(answers) // 2] < 16.3


#: 64 workers at a constant 40 ms (1,600/s): p99 stays flat until the pool is full.
FLAT_UNTIL_FULL = """\
name: flat-until-full
seed: 3
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  get: {entry: api, rate: 1000/s}
tiers:
  api:
    concurrency: 64
    service_time: {dist: constant, value: 40ms}
"""


def test_the_knee_is_never_put_past_saturation(tmp_path: Path) -> None:
    # p99 reaches 20x its light-load 40 ms only once the pool overflows: past saturation, where
    # a p99 measures the run's length, not the system.
    result = saturate(model_of(tmp_path, "flat", FLAT_UNTIL_FULL), knee_factor=20.0)
    assert result["saturation_rate"] == pytest.approx(1600, rel=0.02)
    assert result["knee_rate"] <= result["saturation_rate"]
    overloaded = [p["rate"] for p in result["curve"] if not p["stable"]]
    assert overloaded and result["knee_rate"] < min(overloaded)


def test_a_failed_confirmation_moves_the_saturation_estimate_below_it(tmp_path: Path) -> None:
    result = saturate(model_of(tmp_path, "storm", RETRY_STORM), duration=5.0)
    moves = result["confirmation"]["below"]["moves"]
    assert moves and all(move["tiers"] == ["db"] for move in moves)
    first = moves[0]
    # The secant through the calm points said about 260/s; 0.9x that (or a point measured
    # within 3% of it, which stands for it) found db overloaded by its own retries.
    assert first["unstable_at"] == pytest.approx(0.9 * first["from"], rel=CONFIRM_REUSE)
    assert result["saturation_rate"] == moves[-1]["to"] < first["unstable_at"]
    assert result["saturation_rate"] < 0.6 * result["analytic"]["saturation_rate"]  # 400/s
    assert result["saturation_rate_low"] <= result["saturation_rate"]
    assert any("moved below it" in note for note in result["notes"])
