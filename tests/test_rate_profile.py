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


SPIKE_AT_7MIN = """\
name: live-event
seed: 1
simulation: {duration: DURATION, warmup: 0s}
traffic:
  play:
    entry: api
    profile:
      - {at: 0s, rate: 20/s}
      - {at: 7min, rate: 20/s}
      - {at: 7min, rate: 100/s}
tiers:
  api: {concurrency: 8, service_time: 10ms}
"""


def warnings_of_a_run(tmp_path, duration: str) -> list[str]:
    import capsim

    path = tmp_path / "live.yaml"
    path.write_text(SPIKE_AT_7MIN.replace("DURATION", duration))
    return list(capsim.run_file(str(path)).data.get("warnings", []))


def test_a_run_that_ends_before_the_spike_says_the_spike_is_not_simulated(tmp_path) -> None:
    # A planner shortens the run to save time: the 5x live event at 7 min is then never run,
    # and the verdicts say nothing about it. The run must say so.
    [warning] = warnings_of_a_run(tmp_path, "5min")
    assert warning == (
        "class 'play': its profile changes after the run ends at 5min (warm-up + duration), "
        "to 100/s at 7min; those rates are not simulated: lengthen simulation.duration "
        "(--duration) to include them."
    )
    assert warnings_of_a_run(tmp_path, "8min") == []


def test_a_what_if_on_the_rate_of_a_class_with_a_profile_says_it_changes_nothing(tmp_path) -> None:
    # `--set traffic.play.rate=50/s` on a class whose profile sets its rate: the profile wins,
    # so the run must not answer as if the what-if had been asked.
    import capsim

    path = tmp_path / "live.yaml"
    path.write_text(SPIKE_AT_7MIN.replace("DURATION", "8min"))
    report = capsim.run_file(str(path), overrides=["traffic.play.rate=50/s"])
    assert report.data["warnings"] == [
        "class 'play': rate: 50/s is ignored: its profile sets the rate over time, starting at "
        "20/s; change the profile's points, or scale the class with --load."
    ]
    assert report.data["classes"]["play"]["offered_rate"] < 40  # 20/s, then 100/s for 1 min
