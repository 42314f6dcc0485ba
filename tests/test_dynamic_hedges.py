"""Hedged requests ("The Tail at Scale"): a slow call's copy goes to another instance, the first
answer is taken, and the loser is withdrawn from its queue or abandoned."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

import capsim
from capsim.engine.events import run_events
from capsim.engine.histogram import Histogram
from capsim.engine.runner import choose_path
from capsim.engine.vectorised import can_vectorise
from capsim.model.types import Hedge, Model
from capsim.outputs import render_markdown, render_table
from capsim.scenario import validate_file
from modelkit import Call, const, exp, model, open_class, tier

TAIL_AT_SCALE = Path(__file__).parents[1] / "scenarios" / "tail-at-scale.yaml"
HEDGE = "hedge: {after: 20ms, max: 1}"
K_SIGMA = 4.0  # binomial shares are judged within 4 standard errors


def share_slower_than(latency: Histogram, limit: float) -> float:
    values, cumulative = latency.cdf_points(max_points=1_000_000)
    below = cumulative[values < limit]
    return 1.0 - (float(below[-1]) if below.size else 0.0)


def within_noise(observed: float, expected: float, n: int) -> bool:
    return abs(observed - expected) <= K_SIGMA * math.sqrt(expected * (1 - expected) / n)


def tail_at_scale(tmp_path: Path, *, hedged: bool, duration: str) -> Model:
    text = TAIL_AT_SCALE.read_text()
    assert HEDGE in text
    path = tmp_path / "tail.yaml"
    path.write_text(text if hedged else text.replace(", " + HEDGE, ""))
    return capsim.build_model(capsim.load_scenario(path, [f"simulation.duration={duration}"]))


def check_the_tail_at_scale(tmp_path: Path, duration: str) -> None:
    # 100 leaves, each 99% 10 ms and 1% 1 s: a request is slow (about 1 s) when any leaf is.
    plain = run_events(tail_at_scale(tmp_path, hedged=False, duration=duration), 0)
    requests = plain.classes[0]
    slow = share_slower_than(requests.latency, 0.5)
    assert within_noise(slow, 1 - 0.99**100, requests.completed)  # 63.4%

    # A copy after 20 ms to another leaf: a leaf call is slow only when both copies are.
    m = tail_at_scale(tmp_path, hedged=True, duration=duration)
    hedged = run_events(m, 0)
    requests = hedged.classes[0]
    slow = share_slower_than(requests.latency, 0.5)
    assert within_noise(slow, 1 - (1 - 0.01**2) ** 100, requests.completed)  # 1.0%
    assert requests.latency.quantile(0.5) == pytest.approx(0.030, rel=0.01)  # 20 ms + 10 ms

    leaf = hedged.tiers[m.tier_index["leaf"]]
    assert leaf.hedged_calls == pytest.approx(100 * requests.arrivals, rel=0.01)
    assert within_noise(leaf.hedges / leaf.hedged_calls, 0.01, leaf.hedged_calls)
    assert within_noise(leaf.hedge_wins / leaf.hedges, 0.99, leaf.hedges)  # the copy was fast
    assert leaf.hedges_cancelled == 0  # ample workers: no copy ever waits
    # Every loser was being worked: the slow first copy (or, both slow, the copy) runs on.
    assert leaf.hedges_abandoned == pytest.approx(leaf.hedges, abs=5)


def test_hedging_cuts_the_share_of_slow_fan_out_requests_from_63_to_1_percent(
    tmp_path: Path,
) -> None:
    check_the_tail_at_scale(tmp_path, "100s")


@pytest.mark.slow
def test_hedging_cuts_the_share_of_slow_fan_out_requests_over_20000_requests(
    tmp_path: Path,
) -> None:
    check_the_tail_at_scale(tmp_path, "1000s")


def caller_and_leaf(
    hedge: Hedge, *, instances: int, balancing: str = "round_robin", timeout: float | None = None
) -> Model:
    # One request a second into an async front that calls a constant 50 ms leaf.
    return model(
        [
            tier(
                "front",
                const(0.0),
                concurrency=100,
                blocking=False,
                calls=(Call(1, hedge=hedge, timeout=timeout),),
            ),
            tier("leaf", const(0.05), instances=instances, balancing=balancing),
        ],
        [open_class("q", 0, 1.0, arrivals="constant")],
        duration=100.0,
        warmup=0.5,
    )


def test_a_copy_goes_to_another_instance_and_is_abandoned_when_the_first_answers() -> None:
    # The first copy answers at 50 ms; the copy sent at 20 ms to the other (idle) instance is
    # being worked by then: abandoned, its work done for nothing. Random balancing would send
    # half the copies to the busy instance; a hedge steers away from it.
    m = caller_and_leaf(Hedge(after=0.02), instances=2, balancing="random")
    result = run_events(m, 0)
    requests, leaf = result.classes[0], result.tiers[1]
    assert requests.completed == 100 and requests.latency.max == pytest.approx(0.05)
    assert (leaf.hedged_calls, leaf.hedges, leaf.hedge_wins) == (100, 100, 0)
    assert (leaf.hedges_cancelled, leaf.hedges_abandoned) == (0, 100)
    assert leaf.queue_max == 0  # no copy ever waited behind another
    assert leaf.busy_time == pytest.approx(200 * 0.05)  # double the work


def test_a_copy_still_waiting_when_the_first_answers_is_withdrawn_unserved() -> None:
    # One leaf worker; requests a and b arrive together every second. a1 runs [0, 50 ms), b1
    # waits; at 20 ms both copies join the queue behind b1: [b1, a2, b2]. At 50 ms a1 answers
    # (the freed worker takes b1) and a2, still waiting, is withdrawn unserved. At 100 ms b1
    # answers (the worker has just taken b2, which is abandoned).
    m = caller_and_leaf(Hedge(after=0.02), instances=1)
    both = model(
        [
            tier(
                "front", const(0.0), concurrency=100, blocking=False, calls=m.tiers[0].work[0].calls
            ),
            tier("leaf", const(0.05)),
        ],
        [
            open_class("a", 0, 1.0, arrivals="constant"),
            open_class("b", 0, 1.0, arrivals="constant"),
        ],
        duration=100.0,
        warmup=0.5,
    )
    result = run_events(both, 0)
    a, b, leaf = result.classes[0], result.classes[1], result.tiers[1]
    assert a.completed == b.completed == 100
    assert a.latency.max == pytest.approx(0.05) and b.latency.max == pytest.approx(0.10)
    assert (leaf.hedges, leaf.hedges_cancelled, leaf.hedges_abandoned) == (200, 100, 100)
    assert leaf.completed == 300 and leaf.busy_time == pytest.approx(300 * 0.05)
    assert leaf.rejected == 0  # a withdrawn copy is not an error


def test_max_copies_are_sent_one_delay_apart() -> None:
    # Copies at 20 and 40 ms to the other two instances; the first still answers at 50 ms.
    m = caller_and_leaf(Hedge(after=0.02, max=3), instances=3)
    leaf = run_events(m, 0).tiers[1]
    assert leaf.hedges == 200  # the third copy (60 ms) is never due
    assert leaf.hedges_abandoned == 200
    assert leaf.busy_time == pytest.approx(100 * 0.05 + 100 * 0.05 + 100 * 0.05)


def test_a_refused_copy_does_not_fail_the_call_while_the_first_is_out() -> None:
    # One worker and no waiting room: every copy is refused on the spot; the first answers.
    m = caller_and_leaf(Hedge(after=0.02), instances=1)
    leaf = replace(m.tiers[1], max_queue=0)
    result = run_events(replace(m, tiers=(m.tiers[0], leaf)), 0)
    assert result.classes[0].completed == 100 and result.classes[0].errors == 0
    assert result.tiers[1].hedges == 100 and result.tiers[1].rejected == 100


def test_a_call_given_up_on_before_the_delay_sends_no_copy() -> None:
    m = caller_and_leaf(Hedge(after=0.02), instances=2, timeout=0.01)
    result = run_events(m, 0)
    assert result.classes[0].errors == 100
    assert result.tiers[1].hedges == 0 and result.tiers[1].call_timeouts == 100


def percentile_model(q: float, rate: float, duration: float) -> Model:
    # Exponential leaf with ample workers: a response time is a service time.
    return model(
        [
            tier(
                "front",
                const(0.0),
                concurrency=1000,
                blocking=False,
                calls=(Call(1, hedge=Hedge(quantile=q)),),
            ),
            tier("leaf", exp(0.010), instances=10, concurrency=100),
        ],
        [open_class("q", 0, rate)],
        duration=duration,
        warmup=0.0,
    )


def test_a_percentile_hedge_copies_the_calls_slower_than_that_percentile() -> None:
    # After p90 of the observed response times: 10% of calls get a copy.
    leaf = run_events(percentile_model(0.90, rate=200.0, duration=50.0), 0).tiers[1]
    assert within_noise(leaf.hedges / leaf.hedged_calls, 0.10, leaf.hedged_calls)


def test_a_percentile_hedge_waits_for_enough_answers_before_sending_any_copy() -> None:
    # p99 needs 1,000 answers first: with ~500 calls in the run no copy is ever sent.
    leaf = run_events(percentile_model(0.99, rate=10.0, duration=50.0), 0).tiers[1]
    assert 400 < leaf.hedged_calls < 600 and leaf.hedges == 0


def test_a_percentile_hedge_leaves_a_callee_that_always_takes_the_same_time_alone() -> None:
    # p50 of a constant 50 ms callee is 50 ms; the delay is rounded up to the top of its
    # histogram bin, so the first copy always answers before a second is due.
    m = caller_and_leaf(Hedge(quantile=0.5), instances=2)
    m = replace(m, classes=(replace(m.classes[0], rate=20.0),))  # 2,000 calls
    leaf = run_events(m, 0).tiers[1]
    assert leaf.hedged_calls == 2000 and leaf.hedges == 0


def test_the_vectorised_path_refuses_a_hedge_and_says_why() -> None:
    m = caller_and_leaf(Hedge(after=0.02), instances=2)
    ok, reason = can_vectorise(m)
    assert not ok
    assert "tier 'front' hedges its calls to 'leaf' (after 20ms)" in reason
    assert choose_path(m) == ("events", reason)


SMALL = """\
name: hedged
simulation: {{duration: 20s, warmup: 1s}}
traffic:
  q: {{entry: front, rate: 50/s}}
tiers:
  front:
    type: service
    blocking: false
    concurrency: 100
    service_time: 0s
    calls: [{{tier: leaf, hedge: {hedge}}}]
  leaf: {{type: {leaf_type}, instances: 4, concurrency: 4, service_time: {{dist: exponential, mean: 10ms}}}}
"""


def write(tmp_path: Path, hedge: str, leaf_type: str = "service") -> Path:
    path = tmp_path / "hedged.yaml"
    path.write_text(SMALL.format(hedge=hedge, leaf_type=leaf_type))
    return path


def test_the_hedges_are_in_the_json_and_the_tables(tmp_path: Path) -> None:
    report = capsim.run_file(write(tmp_path, "{after: p90}"))
    hedges = report.data["tiers"]["leaf"]["hedges"]
    assert set(hedges) == {"calls", "sent", "won", "cancelled", "abandoned", "share", "extra_load"}
    assert hedges["share"] == pytest.approx(0.1, abs=0.03)
    assert hedges["extra_load"] == pytest.approx(
        (hedges["sent"] - hedges["cancelled"]) / hedges["calls"]
    )
    assert "hedges" not in report.data["tiers"]["front"]
    assert "Hedged calls (by callee)" in render_table(report, color=False)
    assert "## Hedged calls (by callee)" in render_markdown(report)


@pytest.mark.parametrize(
    ("hedge", "leaf_type", "path", "words"),
    [
        ("{after: 0s}", "service", "hedge.after", "0s' is not greater than 0"),
        ("{after: p100}", "service", "hedge.after", "'p100' is not a percentile"),
        ("{after: fast}", "service", "hedge.after", "p<number> with 0 < number < 100"),
        ("{after: 20ms, max: 0}", "service", "hedge.max", "0 is not positive"),
        ("{max: 2}", "service", "hedge.after", "missing required key 'after'"),
        ("{after: 20ms}", "queue", "hedge", "leaf is a queue: a publish is answered at once"),
    ],
)
def test_a_wrong_hedge_is_reported_where_it_is_written(
    tmp_path: Path, hedge: str, leaf_type: str, path: str, words: str
) -> None:
    text = SMALL.format(hedge=hedge, leaf_type=leaf_type)
    if leaf_type == "queue":
        text = text.replace("instances: 4, ", "")
    file = tmp_path / "hedged.yaml"
    file.write_text(text)
    [problem] = validate_file(file, [])
    assert problem.path == f"tiers.front.calls[0].{path}"
    assert words in problem.message
    assert problem.line == 11
