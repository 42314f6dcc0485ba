"""Before a run starts, capsim knows how big it will be, and refuses runs beyond the limit."""

from __future__ import annotations

import numpy as np
import pytest

from capsim.engine.runner import check_run_size, estimate_requests
from capsim.errors import ResourceLimitError
from capsim.model import (
    Call,
    Distribution,
    Model,
    OneOf,
    ProfilePoint,
    Simulation,
    Tier,
    TrafficClass,
    Work,
)
from capsim.model.visits import expected_visits


def _web_stack(traffic: TrafficClass, duration: float = 100.0, replications: int = 1) -> Model:
    ms = Distribution.exponential
    tiers = (
        Tier(
            "app",
            0,
            "service",
            1,
            8,
            False,
            "round_robin",
            (Work(ms(0.02), (OneOf(((1, 0.8), (2, 0.2))),)),),
        ),
        Tier("cache", 1, "service", 1, 4, False, "round_robin", (Work(ms(0.001)),)),
        # db calls app back with probability 0.25: a loop whose visits stay finite.
        Tier("db", 2, "service", 1, 4, False, "round_robin", (Work(ms(0.01), (Call(0, 0.25),)),)),
    )
    return Model(
        name="stack",
        seed=1,
        simulation=Simulation(duration=duration, warmup=0.0, replications=replications),
        classes=(traffic,),
        tiers=tiers,
        tier_index={t.name: t.index for t in tiers},
        class_index={traffic.name: 0},
    )


def test_open_class_requests_are_rate_times_horizon_times_replications():
    model = _web_stack(TrafficClass("web", 0, 0, rate=50.0), duration=100.0, replications=3)
    assert estimate_requests(model) == pytest.approx(50.0 * 100.0 * 3)


def test_a_profile_is_integrated_exactly_including_steps():
    profile = (
        ProfilePoint(0.0, 10.0),
        ProfilePoint(50.0, 30.0),  # ramp: 50 s at a mean of 20/s = 1000
        ProfilePoint(50.0, 5.0),  # step down
        ProfilePoint(100.0, 5.0),  # 50 s at 5/s = 250
    )
    model = _web_stack(TrafficClass("web", 0, 0, rate=10.0, profile=profile), duration=100.0)
    assert estimate_requests(model) == pytest.approx(1250.0)


def test_closed_users_are_bounded_by_their_cycle_time():
    think = Distribution.exponential(1.0)
    model = _web_stack(TrafficClass("ops", 0, 0, users=10, think_time=think), duration=100.0)
    demand = 0.02 * expected_visits(model)[0, 0] + 0.001 * 0.8 * expected_visits(model)[0, 0]
    assert estimate_requests(model) < 10 * 100.0 / 1.0
    assert estimate_requests(model) > 10 * 100.0 / (1.0 + demand + 0.01)


def test_visits_solve_the_traffic_equations_of_a_loop():
    model = _web_stack(TrafficClass("web", 0, 0, rate=1.0))
    v_app = 1.0 / (1.0 - 0.2 * 0.25)
    assert np.allclose(expected_visits(model)[0], [v_app, 0.8 * v_app, 0.2 * v_app])


def test_a_run_beyond_the_limit_stops_before_it_starts_and_says_how_to_allow_it():
    model = _web_stack(TrafficClass("web", 0, 0, rate=1e6), duration=3600.0)
    with pytest.raises(ResourceLimitError) as error:
        check_run_size(model, max_requests=1e8)
    message = str(error.value)
    assert "3.6e+09 requests" in message
    assert "--max-requests" in message
    assert error.value.exit_code == 3
