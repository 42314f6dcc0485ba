"""Work still waiting when the window ends is counted, and a backlog left undrained fails the run.

The gap these stories close: a spike left thousands of messages unconsumed at the end of a run,
yet every verdict passed, because a falling backlog counted as draining and the messages still
waiting had no age yet, so no percentile saw them. Now a request or message unfinished at the
end is counted at its age then (a lower bound: it has waited at least that long), and a tier
that still holds more than 1% of its arrivals at the end had not recovered: the run fails,
naming the tier and its figures (docs/results.md#work-left-at-the-end-of-the-window).

The stories use constant arrivals and constant service times, so every figure is exact and can
be worked out by hand, and both engine paths must give the same numbers.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import capsim
from capsim.analysis.summary import summarise
from capsim.analysis.unfinished import assess_undrained, backlog_is_large
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.result import RunResult, TierRun
from capsim.engine.vectorised import can_vectorise, run_vectorised

runner = CliRunner()
PLAIN_ENV: dict[str, str | None] = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None}

#: An order queue with one consumer of 10 ms (100 messages/s). Orders come at BASE/s, then
#: 300/s from 10 s to 20 s, then BASE/s again. The window is the whole run (no warm-up).
SPIKE = """\
name: order-spike
simulation: {{duration: {duration}s, warmup: 0s, timeseries: 1s}}
traffic:
  place:
    entry: api
    rate: {base}/s
    arrivals: constant
    profile:
      - {{at: 0s, rate: {base}/s}}
      - {{at: 10s, rate: {base}/s}}
      - {{at: 10s, rate: 300/s}}
      - {{at: 20s, rate: 300/s}}
      - {{at: 20s, rate: {base}/s}}
tiers:
  api: {{service_time: 1ms, concurrency: 100, blocking: false, calls: [orders]}}
  orders: {{type: queue, service_time: 10ms{discipline}}}
slos:
  - {{class: place, p99: 50ms}}
  - {{tier: orders, {slo}}}
"""

#: A web tier of one worker of 10 ms (100 requests/s) under 50/s, then 150/s from 10 s to 20 s.
WEB_SPIKE = """\
name: web-spike
simulation: {duration: 25s, warmup: 0s, timeseries: 1s}
traffic:
  browse:
    entry: app
    rate: 50/s
    arrivals: constant
    profile:
      - {at: 0s, rate: 50/s}
      - {at: 10s, rate: 50/s}
      - {at: 10s, rate: 150/s}
      - {at: 20s, rate: 150/s}
      - {at: 20s, rate: 50/s}
tiers:
  app: {service_time: 10ms}
slos:
  - {class: browse, p90: 5s}
"""


def spike(
    tmp_path: Path,
    *,
    duration: int = 40,
    base: int = 50,
    lifo: bool = False,
    slo: str = "age_p50: 10s",
) -> Path:
    path = tmp_path / f"spike-{duration}-{base}-{lifo}.yaml"
    discipline = ", queue_discipline: lifo" if lifo else ""
    path.write_text(SPIKE.format(duration=duration, base=base, discipline=discipline, slo=slo))
    return path


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, args, env={**PLAIN_ENV, **(env or {})})


def run_json(path: Path) -> dict:
    result = invoke(["run", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def undrained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_json(spike(tmp_path_factory.mktemp("spike")))


# ---- a queue still far behind at the end ----------------------------------------------------
def test_a_queue_still_far_behind_at_the_end_of_the_window_fails_the_run(undrained: dict) -> None:
    # The spike piles up 200 messages/s for 10 s: 2,000 at 20 s. At 50/s against 100/s the
    # consumer then gains 50/s, so 1,000 still wait at 40 s: 22% of the 4,500 published (the
    # 500 before the spike, 3,000 in it, 1,000 after). The backlog falls through the last
    # quarter, which alone used to count as recovering: the run passed.
    orders = undrained["tiers"]["orders"]
    assert orders["backlog_at_end"] == 1000
    assert orders["stable"] is False and undrained["passed"] is False
    [failure] = undrained["overloaded"]
    assert failure["tier"] == "orders"
    figures = failure["undrained"]
    assert figures == orders["undrained"]
    assert figures["backlog_at_end"] == 1000
    assert figures["share"] == pytest.approx(1000 / 4499, rel=1e-9)  # 4,499: the last is at 40 s
    # FIFO: 3,500 served by 40 s, so the oldest waiting is the 3,501st, published at 20 s.
    assert figures["oldest"] == pytest.approx(20.0, abs=0.01)
    # At 100/s its consumer needs 10 s for them, even if nothing more came.
    assert figures["clear_time"] == pytest.approx(10.0, rel=0.01)


def test_the_warning_names_the_tier_and_what_it_left(undrained: dict) -> None:
    [warning] = [w for w in undrained["warnings"] if "had not drained" in w]
    assert warning.startswith(
        "tier 'orders' had not drained by the end of the window, which fails the run: 1,000 "
        "messages were still waiting for a consumer (22% of its arrivals in the window, more "
        "than 1%), the oldest for 20s; at full capacity (100.0/s) they need 10s more"
    )


def test_the_waiting_messages_are_counted_in_the_age_at_their_age_so_far(undrained: dict) -> None:
    # Every message published in the window has an age: 3,499 consumed, 1,000 still waiting
    # (each counted at its age at 40 s, 0 ... 20 s), so the oldest one seen is 20 s old.
    orders = undrained["tiers"]["orders"]
    assert orders["oldest_at_end"] == pytest.approx(20.0, abs=0.01)
    assert orders["age"]["max"] == pytest.approx(20.0, abs=0.01)
    # Half of the messages are older than the median: spike messages j = 0 ... 3,000 wait j/150 s
    # whether consumed (j < 3,000) or not, and the 1,000 after it 0 ... 20 s at 40 s.
    assert orders["age"]["p50"] == pytest.approx(8.78, rel=0.01)
    # The order class's own requests were all answered: publishing is asynchronous.
    assert undrained["classes"]["place"]["unfinished"] == 0


def test_the_same_spike_passes_once_the_window_is_long_enough_to_drain_it(tmp_path: Path) -> None:
    # The 2,000 messages of 20 s are gone at 60 s (50/s gained): a 70 s window sees it recover.
    result = run_json(spike(tmp_path, duration=70))
    orders = result["tiers"]["orders"]
    assert orders["backlog_at_end"] == 0 and orders["stable"] is True
    assert "undrained" not in orders
    assert result["overloaded"] == [] and result["passed"] is True


# ---- percentiles count the requests still waiting -------------------------------------------
def test_messages_starved_by_a_lifo_queue_are_counted_in_its_age_percentiles(
    tmp_path: Path,
) -> None:
    # Newest first: after the spike the consumer serves the 90/s fresh messages at once and the
    # backlog with the 10/s left, so the consumed messages are almost all fresh (age_p90 of
    # 19 ms). Yet 1,800 messages, a third of the window's, still wait at 40 s, up to 30 s old.
    result = run_json(spike(tmp_path, base=90, lifo=True, slo="age_p90: 5s"))
    orders = result["tiers"]["orders"]
    assert orders["backlog_at_end"] == 1800
    assert orders["oldest_at_end"] == pytest.approx(30.0, abs=0.01)
    [verdict] = [v for v in result["slos"] if v["slo"] == "orders age_p90 <= 5s"]
    assert verdict["observed"] > 25.0 and verdict["passed"] is False
    assert result["passed"] is False


def test_requests_waiting_at_an_overloaded_web_tier_count_in_the_class_latency(
    tmp_path: Path,
) -> None:
    # The spike leaves 500 requests in line at 20 s; the worker gains 50/s, so 250 still wait
    # at 25 s (11% of the 2,250 arrivals) and one is being served: 251 unfinished requests.
    result = run_json(write(tmp_path, WEB_SPIKE))
    browse, app_tier = result["classes"]["browse"], result["tiers"]["app"]
    assert browse["unfinished"] == 251
    assert app_tier["backlog_at_end"] == 250
    assert browse["completed"] + browse["unfinished"] == browse["arrivals"]
    # The unfinished are the requests that arrived last (FIFO), at most 5 s before the end.
    assert browse["oldest_unfinished"] == pytest.approx(5.0, abs=0.02)
    assert app_tier["stable"] is False and result["passed"] is False
    assert result["overloaded"][0]["undrained"]["backlog_at_end"] == 250


# ---- a handful in flight at the end changes nothing -----------------------------------------
def test_a_steady_run_has_only_a_handful_in_flight_at_the_end_and_still_passes(
    tmp_path: Path,
) -> None:
    # 60/s on one 10 ms worker (60% busy), constant load: what is in flight at the end is a few
    # requests of a 600-request window, far below 1%, and the tier is stable.
    text = """\
    name: steady
    seed: 4
    simulation: {duration: 10s, warmup: 1s, replications: 3}
    traffic:
      browse: {entry: app, rate: 60/s}
    tiers:
      app: {service_time: {dist: exponential, mean: 10ms}}
    slos:
      - {class: browse, p99: 200ms}
    """
    result = run_json(write(tmp_path, text))
    assert result["classes"]["browse"]["unfinished"] <= 5
    assert result["tiers"]["app"]["backlog_at_end"] <= 5
    assert result["tiers"]["app"]["stable"] is True and result["passed"] is True


# ---- every verdict follows ------------------------------------------------------------------
def test_check_exits_1_and_names_the_undrained_tier_in_junit_and_annotations(
    tmp_path: Path,
) -> None:
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = invoke(
        ["check", str(spike(tmp_path)), "--junit", str(junit)],
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 1
    assert result.stdout.startswith("FAIL: tier orders OVERLOADED (not in steady state)")
    assert "not drained: 1,000 waiting at the end (22% of its arrivals)" in result.stdout
    assert "title=tier orders OVERLOADED::" in result.stdout
    root = ET.parse(junit).getroot()
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    case = suites["steady_state"].find("testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and "not drained: 1,000 waiting" in failure.get("message", "")
    assert "❌ tier orders OVERLOADED" in summary.read_text()


def test_the_run_table_and_the_report_banner_say_it_had_not_drained(tmp_path: Path) -> None:
    path = spike(tmp_path)
    table = invoke(["run", str(path)])
    assert table.exit_code == 0, table.output
    assert "FAIL: tier OVERLOADED — orders (not drained: 1,000 waiting at the end" in table.stdout
    out = tmp_path / "report.md"
    report = invoke(["report", str(path), "-o", str(out), "--no-curve"])
    assert report.exit_code == 0, report.output
    banner = next(line for line in out.read_text().splitlines() if line.startswith("**"))
    assert banner.startswith("**❌ FAIL: tier OVERLOADED — orders (not drained")


# ---- both engine paths ----------------------------------------------------------------------
def both_paths(path: Path) -> tuple[RunResult, RunResult]:
    model = capsim.build_model(capsim.load_scenario(path))
    assert can_vectorise(model)[0]
    return run_events(model, 0), run_vectorised(model, 0)


@pytest.mark.parametrize("scenario", ["queue", "web"])
def test_both_engine_paths_count_the_same_unfinished_work(tmp_path: Path, scenario: str) -> None:
    path = spike(tmp_path) if scenario == "queue" else write(tmp_path, WEB_SPIKE)
    events, vectorised = both_paths(path)
    for a, b in zip(events.classes, vectorised.classes, strict=True):
        assert (a.arrivals, a.completed, a.unfinished) == (b.arrivals, b.completed, b.unfinished)
        assert a.oldest_unfinished == pytest.approx(b.oldest_unfinished, abs=1e-9)
        assert a.latency.n == b.latency.n == a.completed + a.unfinished
        assert a.latency.total == pytest.approx(b.latency.total, rel=1e-9)
    for a, b in zip(events.tiers, vectorised.tiers, strict=True):
        assert a.backlog_at_end == b.backlog_at_end
        assert a.oldest_waiting == pytest.approx(b.oldest_waiting, abs=1e-9)
        assert a.wait.n == b.wait.n
        assert a.wait.total == pytest.approx(b.wait.total, rel=1e-9)
        if a.age is not None and b.age is not None:
            assert a.age.n == b.age.n
            assert a.age.total == pytest.approx(b.age.total, rel=1e-9)


def test_both_engine_paths_reach_the_same_verdict(tmp_path: Path) -> None:
    path = spike(tmp_path)
    model = capsim.build_model(capsim.load_scenario(path))
    reports = [
        summarise(model, [run], capsim_version=capsim.__version__) for run in both_paths(path)
    ]
    for report in reports:
        assert report.data["passed"] is False
        assert report.data["tiers"]["orders"]["undrained"]["backlog_at_end"] == 1000


# ---- the rule, on its own --------------------------------------------------------------------
def left(waiting: int, arrivals: int, oldest: float = 4.0) -> TierRun:
    return TierRun(arrivals=arrivals, backlog_at_end=waiting, oldest_waiting=oldest)


def test_a_backlog_is_large_beyond_1_percent_of_the_arrivals_and_10_requests() -> None:
    assert backlog_is_large(left(11, 1000))
    assert not backlog_is_large(left(10, 1000))  # exactly 1%: not more than it
    assert not backlog_is_large(left(9, 100))  # 9%, but a handful of requests
    assert backlog_is_large(left(10, 100))


def test_a_tier_is_undrained_when_half_of_its_replications_are() -> None:
    # Two of four replications left 50 of 1,000 requests waiting, the others nothing: the
    # figures are per replication (25 on average) and pooled (25 of 1,000 each: 2.5%).
    runs = [left(50, 1000, 4.0), left(0, 1000, 0.0), left(50, 1000, 6.0), left(0, 1000, 0.0)]
    found = assess_undrained(runs, capacity=100.0)
    assert found is not None
    assert found.backlog_at_end == 25 and found.share == pytest.approx(0.025)
    assert found.oldest == 6.0 and found.clear_time == pytest.approx(0.25)
    assert assess_undrained(runs[:1] + [left(0, 1000)] * 2, capacity=100.0) is None
