"""Stories of a capacity planner new to capsim, found by trying it on realistic scenarios.

Each test is one thing such a planner met, as they would meet it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from capsim.analysis.points import SloCheck
from capsim.analysis.saturate import _only_by_noise
from capsim.analysis.sizing_report import SizingReport
from capsim.cli.app import app
from capsim.outputs.capacity import render_capacity
from capsim.outputs.report_figures import summary_sentences

runner = CliRunner()


def test_the_one_fewer_evidence_of_size_speaks_in_the_units_of_each_objective() -> None:
    # `capsim size` on a B2B API at 3x load: one API pod fewer breaks every objective, and the
    # table said "read p99 <= 150ms (observed 7.641, upper 7.91)" and "api occupancy <= 80%
    # (observed 1)": seconds and shares with no unit, beside limits written in ms and %.
    latency = SloCheck("read p99 <= 150ms", "p99", 0.150, 7.641, 7.91, passed=False)
    held = SloCheck("api occupancy <= 80%", "occupancy", 0.80, 1.0, 1.0, passed=False)
    share = SloCheck("read share over 100ms <= 0.5%", "share_over", 0.005, 0.25, 0.3, False)
    backlog = SloCheck("jobs backlog <= 500", "backlog", 500, 731, 802.5, passed=False)
    age = SloCheck("jobs age_p99 <= 2s", "age_p99", 2.0, None, None, passed=False)
    assert latency.describe() == "read p99 <= 150ms (observed 7.641s, upper 7.91s)"
    assert held.describe() == "api occupancy <= 80% (observed 100%)"
    assert share.describe() == "read share over 100ms <= 0.5% (observed 25%, upper 30%)"
    assert backlog.describe() == "jobs backlog <= 500 (observed 731, upper 802.5)"
    assert age.describe() == "jobs age_p99 <= 2s (observed no data)"


def _sweep_point(consumers: int, held: float, stable: bool) -> dict[str, object]:
    return {
        "values": {"tiers.jobs.consumers": consumers},
        "classes": {
            "write": {
                "throughput": 80.0,
                "latency": {"p50": 0.019, "p99": 0.035},
                "error_rate": 0.0,
            }
        },
        "tiers": {"jobs": {"utilization": 0.09, "occupancy": held, "stable": stable}},
        "passed": stable,
        "overloaded": [] if stable else [{"tier": "jobs"}],
    }


def test_a_sweep_table_says_what_its_exclamation_mark_means() -> None:
    # Sweeping a job queue's consumers from 4 to 5: at 4 the queue is overloaded, and the table
    # showed "9.2% !" under "util jobs" with no word on what "!" meant.
    data = {
        "command": "sweep",
        "scenario": "saas-api",
        "seed": 11,
        "replications": 3,
        "duration": 20.0,
        "vary": [{"path": "tiers.jobs.consumers"}],
        "points": [_sweep_point(4, 1.0, stable=False), _sweep_point(5, 0.857, stable=True)],
        "notes": [],
    }
    table = render_capacity(data, "table")
    assert "100.0% !" in table
    assert "! after a tier's figure: the tier is OVERLOADED at that point" in table
    calm = {**data, "points": [_sweep_point(5, 0.857, stable=True)]}
    assert "OVERLOADED" not in render_capacity(calm, "table")


def test_a_report_whose_load_curve_found_no_safe_rate_says_so_and_why() -> None:
    # The report of a B2B API (all 8 SLOs met at today's load) said nothing about the highest
    # load meeting the SLOs: the search had found none (a queue's age p99 from a few hundred
    # messages per replication at 10% load had a wide interval), and only its notes said so.
    met = {"slo": "jobs age_p99 <= 2s", "passed": True, "observed": 0.96, "limit": 2.0}
    why = (
        "the SLOs fail even at 65.45/s (10% of the analytic saturation rate): "
        "jobs age_p99 <= 2s (observed 1.152s, upper 2.504s)"
    )
    curve = {"max_rate_meeting_slos": None, "knee": None, "notes": ["p99 never reached", why]}
    report = SizingReport(result={"slos": [met], "tiers": {}}, curve=curve)
    sentences = summary_sentences(report)
    assert sentences[0] == "The SLO is met."
    assert f"No load on the curve was found at which every SLO holds: {why}." in sentences
    without_slos = SizingReport(result={"slos": [], "tiers": {}}, curve=curve)
    assert not any("No load" in s for s in summary_sentences(without_slos))


def _curve_point(rate: float, held: float, stable: bool = True) -> dict[str, object]:
    return {
        "rate": rate,
        "p50": 0.027,
        "p99": 0.070,
        "error_rate": 0.0,
        "utilization": {"orders": held / 7},
        "occupancy": {"orders": held},
        "stable": stable,
        "meets_slos": stable,
    }


def test_a_saturate_curve_row_above_the_safe_ceiling_is_not_shown_as_a_plain_yes() -> None:
    # The ticketing on-sale saturates near 3,521/s (orders' 4 consumers; 3,543/s by hand) and
    # the answer is 3,422/s, the estimate's lower bound. The curve row at 3,543/s met the SLOs
    # in its short run and said "yes", above the saturation rate printed at the top; so did a
    # rate whose full-length verification failed. Neither may look like an answer.
    data = {
        "command": "saturate",
        "scenario": "ticketing-onsale",
        "replications": 3,
        "duration": 8.5,
        "evaluations": 4,
        "offered_rate": 3720.0,
        "bottleneck": "orders",
        "saturation_rate": 3521.0,
        "saturation_rate_low": 3422.4,
        "slo_ceiling": 3422.4,
        "analytic": {"saturation_rate": 3542.9},
        "knee_factor": 2,
        "knee_rate": None,
        "max_rate_meeting_slos": 3300.0,
        "verification": {
            "rate": 3300.0,
            "meets_slos": True,
            "failures": [],
            "attempts": [
                {"rate": 3300.0, "meets_slos": True, "failures": []},
                {"rate": 3365.7, "meets_slos": False, "failures": ["checkout p95 <= 500ms"]},
            ],
        },
        "tiers": {
            "orders": {
                "held_by": "occupancy",
                "max_rate": 3521.0,
                "max_rate_low": 3422.4,
                "max_rate_analytic": 3542.9,
            }
        },
        "curve": [
            _curve_point(3300.0, 0.93),
            _curve_point(3365.7, 0.955),
            _curve_point(3542.9, 0.993),
            _curve_point(3873.1, 1.0, stable=False),
        ],
        "slos": [],
        "notes": [],
    }
    rows = {
        line.split()[0]: line.split()[-1]
        for line in render_capacity(data, "table").splitlines()
        if line.strip().startswith("3,")
    }
    assert rows == {
        "3,300.0/s": "yes",
        "3,365.7/s": "unsafe",
        "3,542.9/s": "unsafe",
        "3,873.1/s": "no",
    }
    assert "unsafe: in the SLOs met column" in render_capacity(data, "table")


def test_check_against_a_baseline_catches_workers_held_longer_when_their_work_is_unchanged(
    tmp_path: Path,
) -> None:
    # A job queue whose 2 consumers (blocking) call a webhook: 20 messages/s x (5 ms + 20 ms)
    # holds 0.5 of 2 workers = 25%. The customer's endpoint slows to 60 ms: 20 x 65 ms = 1.3,
    # 65% held, while the consumers' own work (5 ms, 5%) is unchanged. Comparing utilisation
    # alone called that "within tolerance".
    scenario = tmp_path / "jobs.yaml"
    scenario.write_text(
        "name: jobs\nseed: 5\nsimulation: {duration: 30s, warmup: 3s, replications: 3}\n"
        "traffic:\n  web: {entry: api, rate: 20/s}\n"
        "tiers:\n"
        "  api: {blocking: false, concurrency: 100, service_time: 0s, calls: [jobs]}\n"
        "  jobs: {type: queue, consumers: 2, service_time: 5ms, calls: [hook]}\n"
        "  hook: {concurrency: 100, service_time: {dist: exponential, mean: 20ms}}\n"
    )
    baseline = tmp_path / "baseline.json"
    made = runner.invoke(app, ["run", str(scenario), "--format", "json", "-o", str(baseline)])
    assert made.exit_code == 0, made.output
    slower = ["--set", "tiers.hook.service_time={dist: exponential, mean: 60ms}"]
    result = runner.invoke(
        app,
        ["check", str(scenario), "--baseline", str(baseline), "--format", "json", *slower],
        env={"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None},
    )
    assert result.exit_code == 1, result.output
    checks = {(c["name"], c["figure"]): c for c in json.loads(result.stdout)["regressions"]}
    held = checks["jobs", "occupancy"]
    assert held["status"] == "regressed"
    assert 0.22 < held["baseline"] < 0.28 and 0.60 < held["current"] < 0.70
    assert checks["jobs", "utilization"]["status"] == "pass"  # 5% both times
    # A tier that never holds a worker longer than it works is compared once, by utilisation.
    assert ("api", "occupancy") not in checks and ("api", "utilization") in checks


def test_slos_failing_at_light_load_only_by_their_interval_are_said_to_be_noise() -> None:
    # saturate on the B2B API with 20 s points: at 10% load the job queue sees ~200 messages
    # per replication, its age p99 is 1.15 s (limit 2 s) but the upper end of its interval over
    # 3 replications is 2.5 s, so "the SLOs fail even at 65/s" and no rate is given. The planner
    # must learn that the estimate, not the system, failed, and what narrows it.
    noisy = SloCheck("jobs age_p99 <= 2s", "age_p99", 2.0, 1.152, 2.504, passed=False)
    light = SimpleNamespace(point=SimpleNamespace(stable=True, checks=[noisy]))
    hint = _only_by_noise(light)  # type: ignore[arg-type]
    assert "within the limit, failing only by the upper end of its 95% interval" in hint
    assert "--replications" in hint and "--duration" in hint
    # A figure beyond its limit is a real failure: no such hint.
    beyond = SloCheck("jobs age_p99 <= 2s", "age_p99", 2.0, 2.2, 2.5, passed=False)
    real = SimpleNamespace(point=SimpleNamespace(stable=True, checks=[noisy, beyond]))
    assert _only_by_noise(real) == ""  # type: ignore[arg-type]


def test_compare_marks_the_percentiles_either_side_estimated_from_too_few_requests(
    tmp_path: Path,
) -> None:
    # Comparing 4 and 8 order consumers with --percentiles 50,99,99.99: seatmap's p9999 rested
    # on 24,000 requests (100,000 needed); `run` marked it with *, compare showed it plain.
    text = (
        "name: {name}\nseed: 3\nsimulation: {{duration: 5s, warmup: 1s, replications: 2}}\n"
        "traffic:\n  q: {{entry: app, rate: 200/s}}\n"
        "tiers:\n  app: {{concurrency: {workers}, service_time: {{dist: exponential, mean: 10ms}}}}\n"
    )
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(text.format(name="a", workers=4))
    b.write_text(text.format(name="b", workers=8))
    options = ["--percentiles", "50,99,99.99"]
    shown = runner.invoke(app, ["compare", str(a), str(b), *options])
    assert shown.exit_code == 0, shown.output
    data = json.loads(
        runner.invoke(app, ["compare", str(a), str(b), *options, "-f", "json"]).stdout
    )
    q = data["classes"]["q"]
    assert q["latency.p9999"]["low_sample"] == ["a", "b"]  # 2,000 requests a side
    assert q["latency.p50"]["low_sample"] == []
    row = next(line for line in shown.stdout.splitlines() if "latency.p9999" in line)
    assert row.count("*") == 2
    assert "* low sample: a q-percentile estimated from fewer than 10/(1-q) values" in shown.stdout


def test_a_report_does_not_claim_p99_bent_where_saturate_only_capped_the_knee() -> None:
    # A flash-sale report: the gateway's rate limit saturates the system at 558.5/s while p99
    # stays flat up to there. saturate puts the knee at saturation and says why in a note; the
    # report's summary said "p99 of checkout reaches 2x its light-load value near 558.5/s".
    note = (
        "p99 stayed below the knee factor up to saturation: the knee is put at the "
        "saturation estimate, 558.5/s"
    )
    curve = {"knee": 558.46, "knee_factor": 2.0, "knee_class": "checkout", "notes": [note]}
    report = SizingReport(result={"slos": [], "tiers": {}}, curve=curve)
    sentences = summary_sentences(report)
    assert (
        "Latency knee: p99 stayed below 2x its light-load value up to saturation; the knee is "
        "put at the saturation estimate, 558.5/s." in sentences
    )
    assert not any("reaches 2x" in s for s in sentences)
    bent = SizingReport(result={"slos": [], "tiers": {}}, curve={**curve, "notes": []})
    assert (
        "Latency knee: p99 of checkout reaches 2x its light-load value near 558.5/s."
        in summary_sentences(bent)
    )
