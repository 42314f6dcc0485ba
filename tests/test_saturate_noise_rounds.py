"""Stories of a point that fails only by the upper end of its interval, in the SLO limit's search.

Such a point is measured again with more data (twice the replications and twice the run, up to
three times: 64 times the data in all) before it bounds the limit. When its figure is so near
its limit that even that much data would leave the limit inside its interval, the rounds would
cost about 84 points' worth of simulation to end as they started: the point then counts as
failing at once (the limit is there, within noise), with a note. A figure further from its
limit is measured again as before.
"""

from __future__ import annotations

from capsim.analysis.points import Point, SloCheck
from capsim.analysis.report import Report
from capsim.analysis.saturate import CurvePoint, _measured_until_decided, _settled_by_more_data
from capsim.model.types import Model, Simulation


def point_with(observed: float, upper: float, replications: int = 3) -> CurvePoint:
    model = Model(
        name="pool",
        seed=1,
        simulation=Simulation(duration=10.0, warmup=1.0, replications=replications),
        classes=(),
        tiers=(),
    )
    check = SloCheck("p99 <= 60ms", "p99", 0.060, observed, upper, passed=False)
    return CurvePoint(280.0, 1.0, Point(model, Report({}), [check], {}))


def test_a_figure_a_tenth_of_its_interval_below_its_limit_is_measured_again() -> None:
    # p99 57 ms, upper end 63 ms: 3 ms of margin, 6 ms of half-width; 64 times the data
    # narrows the half-width to about 0.4 ms.
    assert _settled_by_more_data(point_with(0.057, 0.063), rounds=3)
    assert _settled_by_more_data(point_with(0.0594, 0.0654), rounds=3)


def test_a_figure_at_its_limit_within_a_sliver_counts_as_failing_at_once() -> None:
    # 0.2 ms of margin against 6 ms of half-width: even 64 times the data leaves the limit
    # inside its interval (about 0.36 ms wide then).
    assert not _settled_by_more_data(point_with(0.0598, 0.0658), rounds=3)
    # One round left (24 replications after 12, twice the run): the half-width shrinks to
    # about 0.47 of its width, so a margin of a third of it is not settled, 0.83 of it is.
    assert not _settled_by_more_data(point_with(0.0590, 0.0620, replications=12), rounds=1)
    assert _settled_by_more_data(point_with(0.0590, 0.0602, replications=12), rounds=1)


class Rounds:
    """A searcher whose every round of `measured_longer` fails only by noise, at a sliver."""

    def __init__(self) -> None:
        self.rounds = 0
        self.stopped_early: set[float] = set()

    def measured_longer(self, rate: float, what: str) -> CurvePoint:
        self.rounds += 1
        # 0.2 ms inside a 60 ms limit, the upper end 4.2 ms above the figure.
        return point_with(0.0598, 0.0640, replications=3 * 2**self.rounds)


def test_rounds_stop_once_those_left_could_not_settle_the_figure_they_measured() -> None:
    # After the first round (6 replications of twice the run) the two rounds left would narrow
    # the interval to about a fifth of its width: not to 0.2 ms. The third round alone would
    # cost 64 times the point.
    searcher = Rounds()
    again = _measured_until_decided(searcher, 280.0, "again", settle=True)  # type: ignore[arg-type]
    assert searcher.rounds == 1 and searcher.stopped_early == {280.0}
    assert again is not None and not again.point.meets


def test_the_lightest_point_keeps_every_round_whatever_the_margin() -> None:
    searcher = Rounds()
    _measured_until_decided(searcher, 280.0, "again")  # type: ignore[arg-type]
    assert searcher.rounds == 3 and not searcher.stopped_early
