"""The fast lane (engine/events/lanes.py): a class's own arrival that meets a free worker at an
entry tier where its work makes no call is answered at once, with no event for the end of its
work. Exact stories first, then the shapes that must not take it (bit for bit as before), then
the lane against the event-by-event way over many seeds and against queueing theory."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from capsim.engine.events import lanes, run_events
from capsim.engine.result import RunResult
from capsim.model.types import Model, TraceArrivals, Work
from fingerprintkit import fingerprint
from modelkit import Call, Pool, const, exp, model, open_class, tier


@pytest.fixture
def event_by_event() -> Iterator[Callable[[Model, int], RunResult]]:
    """Runs a model with the lane switched off: the reference it is compared with."""

    def run(m: Model, replication: int = 0) -> RunResult:
        lanes.ENABLED = False
        try:
            return run_events(m, replication)
        finally:
            lanes.ENABLED = True

    yield run
    lanes.ENABLED = True


def figures(r: RunResult) -> object:
    """Every figure of a result but the event count."""
    return fingerprint([r.classes, r.tiers])


# ---- exact stories --------------------------------------------------------------------------


def test_a_request_meeting_a_free_worker_is_answered_without_an_event_for_its_end(
    event_by_event: Callable[[Model, int], RunResult],
) -> None:
    # D/D/1, arrivals at 2, 4, ..., service 1: every request finds the worker free. The window
    # [1, 101) sees 50 arrivals; the last ends at 101, outside it.
    m = model(
        [tier("app", const(1.0))],
        [open_class("web", 0, 0.5, arrivals="constant")],
        duration=100.0,
        warmup=1.0,
    )
    laned, plain = run_events(m, 0), event_by_event(m, 0)
    web, app = laned.classes[0], laned.tiers[0]
    assert (web.arrivals, web.completed, web.errors) == (50, 49, 0)
    assert web.latency.mean == pytest.approx(1.0, rel=1e-12)
    assert (app.arrivals, app.completed, app.wait.n, app.wait.max) == (50, 49, 50, 0.0)
    assert app.busy_time == pytest.approx(50.0, rel=1e-12)
    assert app.occupied_time == pytest.approx(50.0, rel=1e-12)  # blocking: held while working
    assert figures(laned) == figures(plain)
    # No event at the end of the 49 works that end inside the run (the 50th ends at 101).
    assert laned.events == plain.events - 49


def test_a_request_that_must_wait_gets_the_worker_the_lane_holds_when_its_work_ends(
    event_by_event: Callable[[Model, int], RunResult],
) -> None:
    # Arrivals every 2 s, service 3 s: the odd requests start at once (the lane), the even ones
    # wait 1 s for the worker the lane holds, then start when it frees (a wake-up event).
    m = model(
        [tier("app", const(3.0), blocking=False)],
        [open_class("web", 0, 0.5, arrivals="constant")],
        duration=40.0,
    )
    laned, plain = run_events(m, 0), event_by_event(m, 0)
    web, app = laned.classes[0], laned.tiers[0]
    assert web.latency.max == pytest.approx(plain.classes[0].latency.max, rel=1e-12)
    assert (web.arrivals, web.completed) == (plain.classes[0].arrivals, plain.classes[0].completed)
    assert app.wait.max == pytest.approx(plain.tiers[0].wait.max, rel=1e-12) and app.wait.max > 0
    assert app.queue_time == pytest.approx(plain.tiers[0].queue_time, rel=1e-12)
    assert app.busy_time == pytest.approx(plain.tiers[0].busy_time, rel=1e-12)


def test_a_waiting_request_gets_the_first_lane_held_worker_to_free_not_a_later_one() -> None:
    # Two workers. A report (10 s) holds one from 0 to 10; pages take 1 s. The page at 2 s waits
    # for the report's worker (a wake-up at 10) but gets the other one at 2.5; the page at 4 s
    # takes that one in the lane until 5, so the page at 4.5 s must start at 5, not at 10.
    m = model(
        [tier("app", const(1.0), concurrency=2, blocking=False)],
        [
            {"name": "report", "entry": 0, "rate": 0.05, "process": _trace([0.0])},
            {"name": "page", "entry": 0, "rate": 1.0, "process": _trace([0.5, 1, 2, 4, 4.5])},
        ],
        duration=20.0,
        work={(0, 0): Work(const(10.0))},
    )
    r = run_events(m, 0)
    pages = r.classes[1]
    assert (pages.arrivals, pages.completed) == (5, 5)
    assert pages.latency.max == pytest.approx(1.5, rel=1e-12)
    assert r.tiers[0].wait.max == pytest.approx(0.5, rel=1e-12)


def _trace(times: list[float]) -> TraceArrivals:
    return TraceArrivals(times=np.asarray(times, dtype=float), loop=False, source="test")


def test_a_skipped_call_is_decided_at_arrival_and_a_made_call_runs_as_before() -> None:
    # A cdn-like entry: 70% answered by itself (the lane), 30% call the origin.
    m = model(
        [
            tier(
                "edge",
                const(0.005),
                concurrency=100,
                blocking=False,
                calls=(Call(1, probability=0.3),),
            ),
            tier("origin", const(0.050), concurrency=50),
        ],
        [open_class("assets", 0, 400.0)],
        duration=50.0,
        warmup=5.0,
    )
    r = run_events(m, 0)
    assets, edge, origin = r.classes[0], r.tiers[0], r.tiers[1]
    assert assets.errors == 0 and assets.arrivals == edge.arrivals
    assert origin.arrivals / edge.arrivals == pytest.approx(0.3, abs=0.01)
    assert assets.latency.quantile(0.5) == pytest.approx(0.005, rel=0.01)
    assert assets.latency.max == pytest.approx(0.055, rel=0.01)


def test_the_same_seed_gives_the_same_result() -> None:
    m = model(
        [tier("app", exp(0.01), concurrency=2)],
        [open_class("web", 0, 150.0)],
        duration=20.0,
        seed=3,
    )
    assert fingerprint(run_events(m, 1)) == fingerprint(run_events(m, 1))


# ---- shapes that keep the event-by-event path, bit for bit ------------------------------------


NOT_IN_THE_LANE = {
    "its work makes a sure call": model(
        [tier("app", exp(0.01), concurrency=4, calls=(Call(1),)), tier("db", exp(0.005))],
        [open_class("web", 0, 50.0)],
    ),
    "a blocking tier whose call may be made": model(
        [
            tier("app", exp(0.01), concurrency=4, calls=(Call(1, probability=0.5),)),
            tier("db", exp(0.005)),
        ],
        [open_class("web", 0, 50.0)],
    ),
    "least connections counts requests per instance": model(
        [tier("app", exp(0.02), instances=3, concurrency=2, balancing="least_connections")],
        [open_class("web", 0, 150.0)],
    ),
    "a pool stands in front of the workers": model(
        [tier("db", exp(0.01), kind="database", concurrency=4, pool=Pool(3))],
        [open_class("web", 0, 150.0)],
    ),
}


@pytest.mark.parametrize("m", NOT_IN_THE_LANE.values(), ids=NOT_IN_THE_LANE.keys())
def test_a_shape_outside_the_lane_runs_exactly_as_before(
    m: Model, event_by_event: Callable[[Model, int], RunResult]
) -> None:
    laned, plain = run_events(m, 0), event_by_event(m, 0)
    assert fingerprint(laned) == fingerprint(plain)


# ---- the lane against the event-by-event way and queueing theory ------------------------------


def _agree(laned: list[float], plain: list[float], k: float = 4.0) -> bool:
    """Whether two samples of replication figures have means within k standard errors."""
    se = math.sqrt(
        statistics.variance(laned) / len(laned) + statistics.variance(plain) / len(plain)
    )
    return abs(statistics.fmean(laned) - statistics.fmean(plain)) <= k * se


def _replications(m: Model, n: int, run: Callable[[Model, int], RunResult]) -> list[RunResult]:
    return [run(m, replication) for replication in range(n)]


def _compare(
    m: Model, n: int, event_by_event: Callable[[Model, int], RunResult]
) -> tuple[list[RunResult], list[RunResult]]:
    laned = _replications(m, n, run_events)
    plain = _replications(m, n, event_by_event)
    for name, figure in {
        "mean latency": lambda r: r.classes[0].latency.mean,
        "p99 latency": lambda r: r.classes[0].latency.quantile(0.99),
        "utilisation": lambda r: r.tiers[0].busy_time / r.duration,
        "occupancy": lambda r: r.tiers[0].occupied_time / r.duration,
        "completed": lambda r: float(r.classes[0].completed),
        "queue time": lambda r: r.tiers[0].queue_time / r.duration,
    }.items():
        assert _agree([figure(r) for r in laned], [figure(r) for r in plain]), name
    return laned, plain


def test_mmc_through_the_lane_agrees_with_the_event_by_event_way_and_erlang_c(
    event_by_event: Callable[[Model, int], RunResult],
) -> None:
    # M/M/2 at rho 0.7: about 4 in 10 requests meet a free worker and take the lane.
    rate, mean, c = 140.0, 0.01, 2
    m = model(
        [tier("app", exp(mean), concurrency=c)],
        [open_class("web", 0, rate)],
        duration=120.0,
        warmup=5.0,
    )
    laned, _ = _compare(m, 12, event_by_event)
    a = rate * mean
    rho = a / c
    erlang_b = 1.0
    for servers in range(1, c + 1):
        erlang_b = a * erlang_b / (servers + a * erlang_b)
    erlang_c = erlang_b / (1.0 - rho * (1.0 - erlang_b))
    sojourn = mean + erlang_c * mean / (c * (1.0 - rho))  # 0.01961 s
    found = statistics.fmean(r.classes[0].latency.mean for r in laned)
    assert found == pytest.approx(sojourn, rel=0.03)


def test_a_cdn_entry_through_the_lane_agrees_with_the_event_by_event_way(
    event_by_event: Callable[[Model, int], RunResult],
) -> None:
    m = model(
        [
            tier(
                "edge", exp(0.005), concurrency=8, blocking=False, calls=(Call(1, probability=0.2),)
            ),
            tier("origin", exp(0.03), concurrency=4),
        ],
        [open_class("assets", 0, 600.0)],
        duration=30.0,
        warmup=2.0,
    )
    laned, plain = _compare(m, 12, event_by_event)
    assert sum(r.events for r in laned) < 0.75 * sum(r.events for r in plain)


@pytest.mark.slow
def test_many_seeds_of_a_loaded_multi_instance_tier_agree_either_way(
    event_by_event: Callable[[Model, int], RunResult],
) -> None:
    # Three instances, round robin, a waiting room and a timeout: the lane and the wake-ups of
    # waiting requests under load (rho 0.85).
    m = model(
        [tier("app", exp(0.02), instances=3, concurrency=4, max_queue=20, timeout=0.5)],
        [open_class("web", 0, 510.0)],
        duration=60.0,
        warmup=5.0,
    )
    _compare(m, 40, event_by_event)


# ---- arrivals run ahead of their time ----------------------------------------------------------


def test_only_a_tier_no_one_else_reaches_runs_arrivals_ahead() -> None:
    alone = model(
        [tier("edge", exp(0.01), blocking=False, calls=(Call(1),)), tier("db", exp(0.01))],
        [open_class("web", 0, 10.0)],
    )
    assert lanes.sole_entries(alone) == {0}
    two_classes = model(
        [tier("edge", exp(0.01)), tier("db", exp(0.01))],
        [open_class("web", 0, 10.0), open_class("api", 0, 10.0), open_class("batch", 1, 1.0)],
    )
    assert lanes.sole_entries(two_classes) == {1}
    called_back = model(
        [
            tier("edge", exp(0.01), blocking=False, calls=(Call(1),)),
            tier("db", exp(0.01), calls=(Call(0, probability=0.1),)),
        ],
        [open_class("web", 0, 10.0)],
    )
    assert lanes.sole_entries(called_back) == set()


def test_arrivals_run_ahead_change_no_figure_beyond_rounding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cdn-like entry only its class reaches: most arrivals run ahead of their time; their
    # figures are those of arrivals run one timer at a time (sums added in another order).
    m = model(
        [
            tier(
                "edge", exp(0.005), concurrency=8, blocking=False, calls=(Call(1, probability=0.2),)
            ),
            tier("origin", exp(0.03), concurrency=4),
        ],
        [open_class("assets", 0, 600.0)],
        duration=30.0,
        warmup=2.0,
    )
    ahead = run_events(m, 0)
    monkeypatch.setattr(lanes, "AHEAD", 0)
    one_by_one = run_events(m, 0)
    counts = [(c.arrivals, c.completed) for c in ahead.classes]
    counts += [(t.arrivals, t.completed) for t in ahead.tiers]
    expected = [(c.arrivals, c.completed) for c in one_by_one.classes]
    expected += [(t.arrivals, t.completed) for t in one_by_one.tiers]
    assert counts == expected
    for a, b in (
        (ahead.classes[0].latency, one_by_one.classes[0].latency),
        (ahead.tiers[1].wait, one_by_one.tiers[1].wait),
    ):
        assert a.n == b.n and a.max == b.max and (a.counts == b.counts).all()
        assert a.mean == pytest.approx(b.mean, rel=1e-12)
    assert ahead.tiers[0].busy_time == pytest.approx(one_by_one.tiers[0].busy_time, rel=1e-12)
