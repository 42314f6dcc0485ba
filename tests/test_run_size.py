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


# ---- issue 13: everything that scales memory or time is in the estimate ----------------------
def test_the_results_kept_per_replication_scale_the_memory_estimate():
    from capsim.engine.limits import BYTES_PER_HISTOGRAM, estimate_run_memory, result_bytes

    model = _web_stack(TrafficClass("web", 0, 0, rate=50.0))
    one, thousand = estimate_run_memory(model, 5000, 1), estimate_run_memory(model, 5000, 1000)
    assert thousand.engine == one.engine
    assert thousand.results == pytest.approx(1000 * one.results)
    # A histogram per class and per tier at least.
    assert result_bytes(model) >= (1 + 3) * BYTES_PER_HISTOGRAM


def test_the_automatic_bucket_is_widened_only_when_the_warmup_would_pass_2000_buckets():
    from dataclasses import replace

    from capsim.engine.timeseries import (
        MAX_BUCKETS,
        bucket_count,
        readable_bucket,
        series_bucket,
        series_bytes,
    )

    model = replace(_web_stack(TrafficClass("web", 0, 0, rate=50.0)), timeseries=True)
    assert series_bucket(model) == readable_bucket(100.0)  # a normal run: unchanged
    for duration, warmup in [(1e-5, 1.0), (1e-3, 3600.0), (1e-9, 1e6)]:
        odd = replace(model, simulation=Simulation(duration=duration, warmup=warmup))
        count = bucket_count(series_bucket(odd), odd.horizon)
        assert MAX_BUCKETS / 5 <= count <= MAX_BUCKETS
        assert series_bytes(odd) < 100 * 1024**2
    chosen = replace(model, timeseries_bucket=0.25)
    assert series_bucket(chosen) == 0.25


def test_autoscaler_syncs_and_health_checks_count_as_work():
    from dataclasses import replace

    from capsim.engine.limits import AUTOSCALE_SYNC_VISITS, estimate_work
    from capsim.model.types import Autoscale, Fault, HealthCheck

    model = _web_stack(TrafficClass("web", 0, 0, rate=50.0), duration=100.0)
    app = replace(model.tiers[0], autoscale=Autoscale(max=4, sync_period=0.01))
    db = replace(model.tiers[2], health_check=HealthCheck(interval=0.5), instances=3)
    busy = replace(model, tiers=(app, model.tiers[1], db))
    quiet = estimate_work(busy, [5000.0], 1, expected_visits(busy))
    assert quiet.autoscaler_syncs == pytest.approx(100.0 / 0.01 * AUTOSCALE_SYNC_VISITS)
    assert quiet.health_checks == 0.0  # health checks run only on a tier with a fault
    faulty = replace(busy, faults=(Fault(at=10.0, until=None, tier=2, lose=(0,)),))
    work = estimate_work(faulty, [5000.0], 2, expected_visits(faulty))
    assert work.health_checks == pytest.approx(2 * 100.0 / 0.5 * 3)
    assert work.fastest_timer.startswith("tiers.app.autoscale.sync_period")
    assert work.visits == pytest.approx(5000.0 * expected_visits(faulty)[0].sum())


def test_replications_running_at_once_on_a_pool_each_need_their_engine_state():
    from dataclasses import replace

    from capsim.errors import ResourceLimitError

    base = _web_stack(TrafficClass("web", 0, 0, rate=50.0), replications=4)
    model = replace(base, tiers=(replace(base.tiers[0], instances=300_000), *base.tiers[1:]))
    check_run_size(model, 4, max_memory=1024**3)  # one at a time: about 440 MiB
    with pytest.raises(ResourceLimitError, match="4 replications run at once on the process pool"):
        check_run_size(model, 4, max_memory=1024**3, processes=4)
    check_run_size(model, 1, max_memory=1024**3, processes=4)  # one replication: one process
