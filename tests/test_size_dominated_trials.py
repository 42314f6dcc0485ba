"""Stories of `size` shrinking without measuring what a clear failure already answered.

After a growth step of an eighth (auth 80 -> 90 pods), the search shrinks one unit at a time and
each round tries one unit fewer of every quantity. A trial with no more of any quantity than a
configuration that failed clearly (a tier overloaded, or an objective beyond its limit by its
whole interval) at the same run length keeps that verdict unmeasured: less capacity everywhere
does not bring it back (docs/capacity.md, "Search").
"""

from __future__ import annotations

import modelkit
from capsim.analysis.points import Point, SloCheck
from capsim.analysis.report import Report
from capsim.analysis.sizing import Dimension, _Search
from capsim.model.types import Model, Simulation

LENGTH = 5.0


def search() -> _Search:
    model = modelkit.model(
        [modelkit.tier("search", modelkit.exp(0.015)), modelkit.tier("auth", modelkit.exp(0.08))],
        [modelkit.open_class("login", 0, 100.0)],
        duration=LENGTH,
    )
    dims = [
        Dimension(0, "search", "instances", 1, 10, 0.52),
        Dimension(1, "auth", "instances", 1, 200, 0.085),
    ]
    return _Search(model, dims, [], "t", None, 1e9)


def point(observed: float, upper: float, *, overloaded: bool = False) -> Point:
    tiers = {"search": {"stable": not overloaded}}
    check = SloCheck("search occupancy <= 90%", "occupancy", 0.9, observed, upper, upper <= 0.9)
    return Point(Model("m", 1, Simulation(), (), ()), Report({"tiers": tiers}), [check], {})


def test_one_unit_fewer_of_a_quantity_that_failed_clearly_with_more_of_the_other_is_not_run() -> (
    None
):
    sizing = search()
    clearly = point(0.97, 0.98)  # beyond 90% by its whole interval
    sizing.cache[(LENGTH, (3, 90))] = clearly
    found = sizing._dominated([(LENGTH, (3, 89)), (LENGTH, (3, 88))])
    assert found == {(LENGTH, (3, 89)): clearly, (LENGTH, (3, 88)): clearly}


def test_an_overloaded_configuration_answers_for_every_smaller_one() -> None:
    sizing = search()
    overloaded = point(0.5, 0.6, overloaded=True)
    sizing.cache[(LENGTH, (3, 90))] = overloaded
    assert sizing._dominated([(LENGTH, (2, 70))]) == {(LENGTH, (2, 70)): overloaded}


def test_a_failure_by_noise_a_larger_trial_or_another_run_length_answers_for_nothing() -> None:
    sizing = search()
    sizing.cache[(LENGTH, (3, 90))] = point(0.89, 0.91)  # within noise of its limit
    sizing.cache[(LENGTH, (3, 80))] = point(0.97, 0.98)  # clear, but with fewer auth pods
    sizing.cache[(60.0, (3, 95))] = point(0.97, 0.98)  # clear, at another run length
    assert sizing._dominated([(LENGTH, (3, 89)), (LENGTH, (3, 81))]) == {}


def test_a_trial_measured_already_keeps_its_own_point() -> None:
    sizing = search()
    sizing.cache[(LENGTH, (3, 90))] = point(0.97, 0.98)
    sizing.cache[(LENGTH, (3, 89))] = point(0.95, 0.99)
    assert sizing._dominated([(LENGTH, (3, 89))]) == {}


def test_a_trade_is_not_offered_from_a_tier_whose_one_fewer_was_answered_so() -> None:
    # search's one unit fewer (2 nodes) was not measured at auth 89: at auth 90 it left the
    # search tier overloaded, which no other tier's capacity can bring back.
    sizing = search()
    sizing.cache[(LENGTH, (2, 90))] = point(0.5, 0.6, overloaded=True)
    model = sizing.target
    assert sizing._short_of_its_own({"search": 3, "auth": 89}, sizing.dims[0], model)
