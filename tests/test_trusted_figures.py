"""Stories of a planner who tried capsim on a ticket-sales API and an event-ingest pipeline.

The scenarios are theirs (tests/stories/booking.yaml and ingest.yaml, as written); each test is
one figure or message that misled them, with the figure a planner computes by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.headroom import analytic_headroom
from capsim.analysis.points import scale_open_traffic
from capsim.analysis.sizing import dimensions, partition_notes
from capsim.cli.app import app
from capsim.model.types import Model
from capsim.outputs.table import next_steps

runner = CliRunner()
STORIES = Path(__file__).parent / "stories"
BOOKING = str(STORIES / "booking.yaml")
INGEST = str(STORIES / "ingest.yaml")


def test_a_typo_in_a_tier_name_under_set_names_the_tier_not_a_missing_service_time() -> None:
    # `--set tiers.ap.instances=4` said "booking.yaml:22:1: tiers.ap.service_time: missing
    # required key": a new tier was invented from the typo.
    result = runner.invoke(app, ["validate", BOOKING, "--set", "tiers.ap.instances=4"])
    assert result.exit_code == 2
    assert "unknown tier 'ap'; did you mean 'app'?" in result.output
    assert "tiers.app.<key>" in result.output and "tiers.pg.<key>" in result.output
    assert "service_time" not in result.output


def test_set_still_adds_a_whole_new_tier_and_changes_a_class_rate() -> None:
    new_tier = "tiers.hook={type: service, service_time: 5ms}"
    result = runner.invoke(app, ["validate", BOOKING, "--set", new_tier])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", BOOKING, "--set", "traffic.brows.rate=10/s"])
    assert result.exit_code == 2
    assert "unknown traffic class 'brows'; did you mean 'browse'?" in result.output


def _booking_model(*overrides: str) -> Model:
    return capsim.build_model(capsim.load_scenario(BOOKING, list(overrides)))


def test_load_2x_gives_a_ttl_cache_the_hit_ratio_of_the_doubled_rates_written_out() -> None:
    # `run booking.yaml --load 2x` kept the 1x hit ratio (0.637, pg at 3,264/s) while the same
    # rates written out gave 0.711 (pg at 2,846/s): a TTL cache hits more when asked more.
    written = _booking_model(
        "traffic.browse.rate=4800/s", "traffic.hold_seat.rate=900/s", "traffic.checkout.rate=300/s"
    )
    loaded = scale_open_traffic(_booking_model(), 2.0)
    assert _booking_model().tier("redis").hit_ratio == pytest.approx(0.637, abs=0.001)
    assert written.tier("redis").hit_ratio == pytest.approx(0.711, abs=0.001)
    assert loaded.tier("redis").hit_ratio == pytest.approx(written.tier("redis").hit_ratio)
    misses = [w.calls[0].probability for w in loaded.tier("redis").work]  # type: ignore[union-attr]
    assert misses == pytest.approx([1 - written.tier("redis").hit_ratio] * 3)


def test_run_with_load_2x_sends_pg_the_misses_of_the_doubled_rates(tmp_path: Path) -> None:
    # pg gets redis's misses (browse + hold_seat: 5,700/s x 0.289 = 1,649/s) plus hold_seat's
    # 900/s and checkout's 300/s: 2,849/s, not the 3,264/s of a hit ratio stuck at 1x.
    out = tmp_path / "run.json"
    arguments = ["run", BOOKING, "--load", "2x", "--duration", "3s", "-f", "json", "-o", str(out)]
    result = runner.invoke(app, arguments)
    assert result.exit_code in (0, 1), result.output
    offered = json.loads(out.read_text())["tiers"]["pg"]["offered_rate"]
    assert offered == pytest.approx(2849, rel=0.03)


def test_solve_says_an_objective_fails_because_its_class_crosses_an_overloaded_tier() -> None:
    # pg at 40ms holds app's blocking workers: app overloads. The hold_seat error_rate line
    # said only "✗ FAIL ... (estimate 0.000441%)" on the user's scenario: no reason.
    result = runner.invoke(app, ["solve", BOOKING, "--set", "tiers.pg.service_time=40ms"])
    assert result.exit_code == 1
    fail = next(line for line in result.output.splitlines() if "hold_seat error_rate" in line)
    assert fail.startswith("✗ FAIL") and "): overloaded " in fail and "on its path" in fail
    held = next(line for line in result.output.splitlines() if "app occupancy" in line)
    assert held.startswith("✗ FAIL") and "on its path" not in held  # a tier objective: no path


def _saturation_figures(text: str) -> tuple[float, float]:
    warned = re.search(r"the system saturates at about ([\d.]+) req/s", text)
    footer = re.search(r"the analytic bound puts its saturation near ([\d,.]+)/s", text)
    assert warned and footer, text
    return float(warned.group(1)), float(footer.group(1).replace(",", ""))


def test_an_overloaded_run_quotes_one_analytic_saturation_rate_in_warning_and_footer() -> None:
    # At 1.35x the warning said "saturates at about 1194 req/s (analytic bound ...)" while the
    # footer's analytic bound said 3,753/s: the warning took solve's bound at the overloaded
    # load, where app's blocking holding times (waiting on pg) have no steady state.
    faster_pg = ["--set", "tiers.pg.service_time=12ms", "--set", "tiers.pg.pool.size=64"]
    arguments = ["run", BOOKING, *faster_pg, "--load", "1.6x", "--duration", "1s"]
    result = runner.invoke(app, arguments)
    warned, footer = _saturation_figures(result.output)
    assert warned == pytest.approx(footer, rel=1e-3)
    assert warned < 4800  # past it: 1.6 x 3,000/s is offered


def test_solve_saturates_a_database_with_its_replica_group_not_the_pooled_workers() -> None:
    # Reads at 1x (redis misses 1 - 0.637 of its requests, each class reading its read_ratio):
    # browse 2,400 x 0.3625 (all reads) + hold_seat (450 x 0.3625 + 450) x 20% + checkout
    # 150 x 30% = 1,037.7/s, all on the one replica's 16 workers at 12ms. Pooling primary and
    # replica gave 32 workers: "pg max 4,898/s". The replica fills at
    # 3,000/s x (16 / 12ms) / 1,037.7/s = 3,855/s.
    faster_pg = ["--set", "tiers.pg.service_time=12ms", "--set", "tiers.pg.pool.size=64"]
    result = runner.invoke(app, ["solve", BOOKING, *faster_pg, "-f", "json"])
    data = json.loads(result.output)
    miss = 1 - 0.637470944579357
    reads = 2400 * miss + (450 * miss + 450) * 0.2 + 150 * 0.3
    assert reads == pytest.approx(1037.7, abs=0.1)
    assert data["tiers"]["pg"]["max_rate"] == pytest.approx(3000 * (16 / 0.012) / reads)
    assert data["bottleneck"]["tier"] == "pg"
    replicas = data["tiers"]["pg"]["groups"]["replicas"]
    assert replicas["offered_rate"] == pytest.approx(reads)
    assert replicas["occupancy"] == pytest.approx(reads * 0.012 / 16)  # 77.8%
    assert data["tiers"]["pg"]["groups"]["primary"]["workers"] == 16


def test_solve_and_the_footer_judge_a_profile_at_its_peak_not_its_final_rate() -> None:
    # ingest.yaml steps from 300/s to 900/s for five minutes and back to 300/s at the end. The
    # footer said "2.54x headroom" of 300/s and solve "all clear"; ingest's 2 starting
    # instances x 4 workers / (15ms + 1ms publish) carry 500/s, below the 900/s peak.
    result = runner.invoke(app, ["solve", INGEST, "-f", "json"])
    data = json.loads(result.output)
    assert data["bottleneck"]["offered_rate"] == pytest.approx(900.0)
    assert data["passed"] is False and data["overloaded"][0]["tier"] == "ingest"
    assert any("profile's peak, 900.0/s (the profile ends at 300.0/s)" in n for n in data["notes"])
    model = capsim.build_model(capsim.load_scenario(INGEST))
    headroom = analytic_headroom(model, "test")
    assert headroom is not None and headroom.profile_peak == pytest.approx(900.0)
    assert headroom.saturation_rate == pytest.approx(500.0) and headroom.factor < 1
    footer = " ".join(next_steps(headroom, INGEST))
    assert "at the profile's peak, 900.0/s, not its final rate" in footer


def _one_queue(tmp_path: Path, max_depth: str, backlog_slo: int) -> Path:
    # 12,000/s published to one consumer serving 1ms each: the backlog grows 11,000/s, to about
    # 132,000 by the end of 12 seconds, beyond capsim's own cap of 100,000 waiting.
    path = tmp_path / "ingest.yaml"
    path.write_text(
        "version: 1\nname: deep\nseed: 1\nsimulation: {duration: 12s, warmup: 0.5s}\n"
        "traffic:\n  pub: {entry: q, rate: 12000/s}\n"
        "tiers:\n  q:\n    type: queue\n    publish_time: 0.01ms\n    consumers: 1\n"
        f"    concurrency: 1\n    service_time: 1ms\n{max_depth}"
        f"slos:\n  - {{tier: q, backlog: {backlog_slo}}}\n"
    )
    return path


def test_an_explicit_max_depth_above_capsims_cap_is_honoured(tmp_path: Path) -> None:
    # ingest.yaml's max_depth: 500000 was overridden by the internal 100,000 cap: 12,669
    # publishes rejected and an error-rate objective failed on an engine artefact.
    out = tmp_path / "run.json"
    scenario = _one_queue(tmp_path, "    max_depth: 500000\n", 1_000_000)
    runner.invoke(app, ["run", str(scenario), "-f", "json", "-o", str(out)])
    queue = json.loads(out.read_text())["tiers"]["q"]
    assert queue["rejected"] == 0 and not queue.get("overflow")
    assert queue["queue_length"]["max"] > 120_000
    # An hour holds all 500,000: 600 bytes each, 286 MiB on top of capsim's own 150 MiB.
    longer = ["--duration", "1h", "--max-memory", "300MB"]
    refused = runner.invoke(app, ["run", str(scenario), *longer])
    assert refused.exit_code == 3
    assert "as its max_depth allows" in refused.output
    assert "Lower max_depth on tier 'q'" in refused.output


def test_a_backlog_objective_judged_on_a_backlog_held_at_the_cap_fails(tmp_path: Path) -> None:
    # Without max_depth the queue stops at capsim's cap of 100,000: "PASS backlog <= 200,000,
    # observed 100,000" was judged on the cap, not on the system (whose backlog is 132,000).
    out = tmp_path / "run.json"
    scenario = _one_queue(tmp_path, "", 200_000)
    result = runner.invoke(app, ["run", str(scenario), "-f", "json", "-o", str(out)])
    verdict = json.loads(out.read_text())["slos"][0]
    assert verdict["observed"] == 100_000
    assert verdict["passed"] is False and verdict["capped"] is True
    assert "is the cap's, not the system's" in result.output


def _partitioned_queue(tmp_path: Path, consumers: int) -> Path:
    # 200/s of 10ms messages over 4 partitions: at most 4 workers busy, whatever the consumers.
    path = tmp_path / f"q{consumers}.yaml"
    path.write_text(
        "version: 1\nname: parts\nseed: 3\nsimulation: {duration: 30s, warmup: 2s}\n"
        "traffic:\n  pub: {entry: q, rate: 200/s}\n"
        "tiers:\n  q:\n    type: queue\n    publish_time: 0.01ms\n"
        f"    consumers: {consumers}\n    concurrency: 4\n    partitions: 4\n"
        "    service_time: {dist: exponential, mean: 10ms}\n"
    )
    return path


def test_a_partitioned_queues_occupancy_is_over_the_workers_that_can_be_busy(
    tmp_path: Path,
) -> None:
    # ingest.yaml's events_q read 81% -> 41% -> 20% occupied for 8, 16, 32 consumers while
    # every other figure stayed the same: only min(workers, partitions) can work at once.
    # Here 200/s x 10ms over 4 partitions = 50%, for 1 consumer (4 workers) or 4 (16).
    for consumers in (1, 4):
        scenario = str(_partitioned_queue(tmp_path, consumers))
        out = tmp_path / f"run{consumers}.json"
        runner.invoke(app, ["run", scenario, "-f", "json", "-o", str(out)])
        measured = json.loads(out.read_text())["tiers"]["q"]
        assert measured["occupancy"] == pytest.approx(0.5, abs=0.04)
        solved = json.loads(runner.invoke(app, ["solve", scenario, "-f", "json"]).output)
        assert solved["tiers"]["q"]["occupancy"] == pytest.approx(0.5, rel=1e-6)
        assert solved["tiers"]["q"]["max_rate"] == pytest.approx(4 / 0.010, rel=1e-3)


def test_more_consumers_than_partitions_add_no_capacity_in_solve_or_size() -> None:
    # `solve --set tiers.events_q.consumers=16` said 1,523.8/s: 32 partitions let 32 workers
    # work at once, each holding a message for 2ms + the ~40ms blocking call to enrich, so
    # 32 / 42ms = 762/s for 8, 16 or 32 consumers. `size` grew events_q to 81 consumers.
    rates = set()
    for consumers in (8, 16, 32):
        arguments = ["solve", INGEST, "--set", f"tiers.events_q.consumers={consumers}"]
        data = json.loads(runner.invoke(app, [*arguments, "-f", "json"]).output)
        rates.add(round(data["tiers"]["events_q"]["max_rate"], 6))
    assert len(rates) == 1 and rates.pop() == pytest.approx(32 / 0.042, rel=0.01)
    model = capsim.build_model(capsim.load_scenario(INGEST))
    sized = {dim.name: dim for dim in dimensions(model, 0)}
    assert sized["events_q"].of == "consumers" and sized["events_q"].high == 32 // 4
    notes = partition_notes(model, list(sized.values()))
    assert notes == [
        "events_q: consumers sized up to 8, where its 32 partitions are all in use (more would "
        "sit idle: raise partitions to add parallelism)"
    ]


def test_solve_on_an_overloaded_scenario_quotes_where_the_bound_meets_the_load() -> None:
    # Booking with pg at 12ms at 1.6x (4,800/s): solve said "saturates at 1,279.8/s", the bound
    # at a load where app's workers wait on pg without a steady state; run's footer and warning
    # say 3,951/s, the heaviest load of this mix that stays within its own bound.
    rates = ["traffic.browse.rate=3840/s", "traffic.hold_seat.rate=720/s"]
    rates += ["traffic.checkout.rate=240/s", "tiers.pg.service_time=12ms", "tiers.pg.pool.size=64"]
    arguments = ["solve", BOOKING, *(a for rate in rates for a in ("--set", rate)), "-f", "json"]
    data = json.loads(runner.invoke(app, arguments).output)
    model = capsim.build_model(capsim.load_scenario(BOOKING, rates))
    footer = analytic_headroom(model, "test")
    assert footer is not None and footer.saturation_rate < 4800
    assert data["bottleneck"]["tier"] == footer.tier == "app"
    assert data["bottleneck"]["saturation_rate"] == pytest.approx(footer.saturation_rate)
