"""A traffic profile is described once (`TrafficClass.rate_segments`): the offered rate at a
time, the expected arrivals up to a horizon and both engine paths' arrivals read it."""

from __future__ import annotations

import math

import pytest

from capsim.model.types import ProfilePoint, TrafficClass


def open_class(*points: tuple[float, float], rate: float | None = None) -> TrafficClass:
    profile = tuple(ProfilePoint(at, r) for at, r in points)
    return TrafficClass(name="shop", index=0, entry=0, rate=rate, profile=profile)


def test_a_ramp_is_flat_before_its_first_point_and_after_its_last() -> None:
    ramp = open_class((60.0, 100.0), (120.0, 300.0))
    assert ramp.rate_segments() == [
        (0.0, 60.0, 100.0, 100.0),
        (60.0, 120.0, 100.0, 300.0),
        (120.0, math.inf, 300.0, 300.0),
    ]
    assert [ramp.rate_at(t) for t in (0.0, 60.0, 90.0, 120.0, 1e6)] == [100, 100, 200, 300, 300]


def test_two_points_at_one_time_are_a_step() -> None:
    step = open_class((0.0, 10.0), (30.0, 10.0), (30.0, 50.0))
    assert step.rate_segments() == [(0.0, 30.0, 10.0, 10.0), (30.0, math.inf, 50.0, 50.0)]
    assert step.rate_at(29.999) == 10.0 and step.rate_at(30.0) == 50.0
    assert step.arrivals_until(40.0) == pytest.approx(10.0 * 30 + 50.0 * 10)


def test_the_expected_arrivals_are_the_area_under_the_rate() -> None:
    ramp = open_class((60.0, 100.0), (120.0, 300.0))
    # 60 s flat at 100/s, then a trapezoid from 100/s to 200/s over 30 s.
    assert ramp.arrivals_until(90.0) == pytest.approx(6_000 + 0.5 * (100 + 200) * 30)
    assert ramp.arrivals_until(200.0) == pytest.approx(6_000 + 12_000 + 300 * 80)
    assert open_class(rate=40.0).arrivals_until(25.0) == 1_000.0


def test_the_event_path_inverts_the_same_pieces() -> None:
    from capsim.engine.events.classes import _RateProfile

    ramp = open_class((0.0, 5.0), (10.0, 15.0))
    inverse = _RateProfile(ramp)
    assert inverse.segments == ramp.rate_segments()
    # Lambda(t) = 5t + t^2/2 reaches 50 at t = 5 (5*5 + 12.5 = 37.5 < 50 < Lambda(10) = 100).
    t = inverse.next_time(50.0)
    assert 5 * t + t * t / 2 == pytest.approx(50.0)
