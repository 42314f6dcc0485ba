"""Per-tier counts per time bucket: arrivals, throughput and errors of every tier, a queue's dead
letters and message age p99, so that a retry storm, shed load and a drain can be read over time
(docs/dynamic.md#time-series)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from capsim.analysis.summary import summarise
from capsim.engine.events import run_events
from capsim.engine.vectorised import run_vectorised
from capsim.model.types import Fault, Model, Retry
from modelkit import Call, const, exp, model, open_class, tier


def with_series(m: Model, bucket: float, *faults: Fault) -> Model:
    return replace(m, faults=faults, timeseries=True, timeseries_bucket=bucket)


def series_of(m: Model, replications: int = 1) -> dict[str, Any]:
    runs = [run_events(m, r) for r in range(replications)]
    return summarise(m, runs, capsim_version="test").data["timeseries"]


def app_retrying_a_db() -> Model:
    # 100/s, clockwork; the app calls the db (1 ms) with two immediate retries.
    call = Call(1, retry=Retry(max=2, backoff="none", jitter="none"))
    return model(
        [
            tier("app", const(0.001), concurrency=10, blocking=False, calls=(call,)),
            tier("db", const(0.001), kind="database", concurrency=10),
        ],
        [open_class("web", 0, 100.0, arrivals="constant")],
        duration=60.0,
    )


def test_per_bucket_arrivals_show_the_retry_amplification_of_a_fault_and_its_end() -> None:
    # The db answers every request with an error from 20 s to 40 s: each call makes 3 attempts,
    # all failing, so the db receives 300/s and fails 300/s; before and after, 100/s and none.
    # (The first request arrives at 0.01 s: the first bucket has 499 of them, 99.8/s.)
    broken = Fault(20.0, 40.0, 1, error_rate=1.0, text="db errors")
    series = series_of(with_series(app_retrying_a_db(), 5.0, broken))
    db, app = series["tiers"]["db"], series["tiers"]["app"]
    assert db["arrivals"] == pytest.approx([99.8] + [100.0] * 3 + [300.0] * 4 + [100.0] * 4)
    assert db["errors"] == pytest.approx([0.0] * 4 + [300.0] * 4 + [0.0] * 4)
    # An error answer is not throughput: none during the fault.
    assert db["throughput"] == pytest.approx([99.8] + [100.0] * 3 + [0.0] * 4 + [100.0] * 4)
    # The app sees no amplification: its own arrivals stay at the offered 100/s.
    assert app["arrivals"] == pytest.approx([99.8] + [100.0] * 11)
    assert series["classes"]["web"]["error_rate"] == pytest.approx(
        [0.0] * 4 + [1.0] * 4 + [0.0] * 4
    )


def test_the_warm_up_buckets_count_nothing_and_say_so() -> None:
    # Counts are of the measurement window, like the totals: a bucket wholly in the warm-up is
    # null; one that straddles it is a rate over its measured part: from 7.505 s to 10 s,
    # requests at 7.51 ... 9.99 s, 249 in 2.495 s.
    base = app_retrying_a_db()
    timing = replace(base.simulation, warmup=7.505, duration=12.495)
    series = series_of(with_series(replace(base, simulation=timing), 5.0))
    arrivals = series["tiers"]["db"]["arrivals"]
    assert arrivals[0] is None
    assert arrivals[1:] == pytest.approx([249 / 2.495, 100.0, 100.0])


@pytest.mark.parametrize("run", [run_events, run_vectorised], ids=["events", "vectorised"])
def test_the_buckets_add_up_to_the_tier_totals(run: Any) -> None:
    m = with_series(
        model(
            [
                tier("app", exp(0.01), concurrency=3, blocking=False, calls=(Call(1), Call(2))),
                tier("db", exp(0.004), concurrency=2),
                tier("jobs", exp(0.002), kind="queue"),
            ],
            [open_class("web", 0, 150.0)],
            duration=30.0,
            warmup=5.0,
        ),
        1.0,
    )
    result = run(m, 0)
    assert result.series is not None
    for tier_run, counts in zip(result.tiers, result.series.tiers, strict=True):
        assert counts.arrivals.sum() == tier_run.arrivals
        assert counts.completed.sum() == tier_run.completed
        assert counts.errors.sum() == tier_run.rejected
    jobs_age = result.series.tiers[2].age
    assert jobs_age is not None and jobs_age.sum() == result.tiers[2].age.n


def test_the_two_engine_paths_count_the_same_buckets_for_the_same_arrivals() -> None:
    # Poisson arrivals come from the same stream on both paths and the work is constant: every
    # per-bucket count and message age must agree.
    m = with_series(
        model(
            [
                tier(
                    "app",
                    const(0.012),
                    instances=2,
                    concurrency=2,
                    blocking=False,
                    calls=(Call(1),),
                ),
                tier("jobs", const(0.004), kind="queue"),
            ],
            [open_class("web", 0, 150.0)],
            duration=20.0,
            warmup=2.0,
        ),
        1.0,
    )
    a, b = run_events(m, 0).series, run_vectorised(m, 0).series
    assert a is not None and b is not None
    for x, y in zip(a.tiers, b.tiers, strict=True):
        for name in ("arrivals", "completed", "errors", "dead_letters"):
            assert getattr(x, name).tolist() == getattr(y, name).tolist(), name
    assert a.tiers[1].age is not None and b.tiers[1].age is not None
    assert (a.tiers[1].age == b.tiers[1].age).all()


def test_a_queue_shows_its_dead_letters_and_age_per_bucket() -> None:
    # 10 messages a second, 30 ms each on one consumer (never a wait): age 30 ms. The consumer
    # fails every message it finishes from 20 s to 40 s; with one redelivery, a message
    # published at t in [20, 40) fails twice and is dead-lettered at t + 60 ms, in t's bucket:
    # 10/s of dead letters, and no message done, so no age p99 there.
    m = model(
        [
            tier("api", const(0.0), concurrency=10, blocking=False, calls=(Call(1),)),
            tier("jobs", const(0.03), kind="queue"),
        ],
        [open_class("web", 0, 10.0, arrivals="constant")],
        duration=60.0,
    )
    m = replace(m, tiers=(m.tiers[0], replace(m.tiers[1], max_retries=1)))
    broken = Fault(20.0, 40.0, 1, error_rate=1.0, text="consumer fails")
    jobs = series_of(with_series(m, 5.0, broken))["tiers"]["jobs"]
    assert jobs["dead_letters"] == pytest.approx([0.0] * 4 + [10.0] * 4 + [0.0] * 4)
    ages = jobs["age_p99"]
    assert ages[4:8] == [None] * 4
    # Outside the fault every message takes 30 ms (the bucket histogram is within 1.6%).
    assert ages[:4] + ages[8:] == pytest.approx([0.03] * 8, rel=0.016)
    # Publishes (the first at 0.1 s): redeliveries are not arrivals.
    assert jobs["arrivals"] == pytest.approx([9.8] + [10.0] * 11)


def test_only_queues_have_dead_letters_and_age() -> None:
    series = series_of(with_series(app_retrying_a_db(), 10.0))
    assert "age_p99" not in series["tiers"]["db"] and "dead_letters" not in series["tiers"]["db"]
