"""The vectorised path carries the chains that order simultaneous visits only where two visits
from different events can meet at one instant (`capsim.engine.ties`), and answers exactly the
same without them elsewhere.

The chains cost 15-25% of the vectorised path's CPU on two fuzzer scenarios of 100,000
requests (docs/performance.md); where every draw is continuous, ties between different events
have probability zero and the chains decide nothing. The stories below hold the classification
to that: every fuzzer scenario it calls tie-free gives bit-identical figures with the chains
forced on, and the models where ties do happen keep them.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import scenariogen
from capsim.engine.events import run_events
from capsim.engine.result import RunResult
from capsim.engine.ties import tie_reason
from capsim.engine.vectorised import run_vectorised

GENERATORS = {
    "plain": scenariogen.random_scenario,
    "wide": scenariogen.random_wide_scenario,
    "busy": scenariogen.random_busy_scenario,
}
#: Fuzzer seeds whose scenarios are tie-free (checked by the test itself: a change to the
#: generators that makes them tied fails it, rather than passing without comparing anything).
QUICK_TIE_FREE = {"plain": (3, 5, 11), "wide": (1, 12), "busy": (2, 16)}
SLOW_SEEDS = range(100, 160)


def figures(result: RunResult) -> np.ndarray:
    """Every figure a user sees of one replication, as one array (nan where undefined)."""
    out: list[float] = []
    for run in result.classes:
        latency = run.latency
        out += [run.arrivals, run.completed, run.unfinished, latency.mean]
        out += [latency.quantile(q) for q in (0.5, 0.9, 0.99)]
    for tier in result.tiers:
        out += [tier.arrivals, tier.completed, tier.busy_time, tier.queue_time, tier.queue_max]
        out += [tier.wait.mean, tier.wait.quantile(0.99), *tier.queue_trace]
        if tier.age is not None:
            out += [tier.age.mean, tier.age.quantile(0.9)]
    return np.array(out, dtype=float)


def assert_chains_change_nothing(data: dict[str, Any]) -> None:
    model = scenariogen.load(data)
    assert tie_reason(model) == "", tie_reason(model)
    for replication in (0, 1):
        plain = run_vectorised(model, replication)
        chained = run_vectorised(model, replication, tie_chains=True)
        assert np.array_equal(figures(plain), figures(chained), equal_nan=True)


@pytest.mark.parametrize(
    ("kind", "seed"), [(k, s) for k, seeds in QUICK_TIE_FREE.items() for s in seeds]
)
def test_a_tie_free_scenario_answers_the_same_without_the_chains(kind: str, seed: int):
    assert_chains_change_nothing(GENERATORS[kind](seed))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_every_tie_free_fuzzer_scenario_answers_the_same_without_the_chains(kind: str):
    compared = 0
    for seed in SLOW_SEEDS:
        data = GENERATORS[kind](seed)
        if tie_reason(scenariogen.load(data)):
            continue
        assert_chains_change_nothing(data)
        compared += 1
    assert compared >= 10, compared  # the generators still draw tie-free scenarios


def base() -> dict[str, Any]:
    """Poisson arrivals, continuous work everywhere: no two events meet."""
    return {
        "name": "ties",
        "simulation": {"duration": "20s", "warmup": "1s"},
        "traffic": {"web": {"entry": "app", "rate": "50/s"}},
        "tiers": {
            "app": {
                "service_time": {"dist": "exponential", "mean": "4ms"},
                "calls": ["db", "search"],
                "blocking": False,
            },
            "db": {"service_time": {"dist": "gamma", "mean": "3ms", "cv": 0.5}, "concurrency": 2},
            "search": {"service_time": {"dist": "uniform", "min": "1ms", "max": "2ms"}},
        },
    }


def changed(edit: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base())
    for path, value in edit.items():
        where = data
        *parents, last = path.split(".")
        for key in parents:
            where = where[key]
        where[last] = value
    return data


def test_continuous_work_and_poisson_arrivals_need_no_chains():
    assert tie_reason(scenariogen.load(base())) == ""
    assert_chains_change_nothing(base())


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"tiers.app.service_time": "4ms"}, "atom and makes calls"),
        ({"tiers.db.service_time": "3ms"}, "calls again after, or joins"),
        (
            {
                "tiers.app.calls": [{"parallel": ["db", "lb"]}],
                "tiers.lb": {"type": "load_balancer", "backends": "search"},
            },
            "no work, in a parallel group",
        ),
        (
            {
                "traffic.web": {"entry": "app", "rate": "50/s", "arrivals": "constant"},
                "traffic.batch": {"entry": "lb", "rate": "50/s", "arrivals": "constant"},
                "tiers.lb": {"type": "load_balancer", "backends": "app"},
            },
            "arrive at fixed instants and can meet",
        ),
    ],
)
def test_a_model_where_events_can_meet_keeps_the_chains(edit: dict[str, Any], why: str):
    assert why in tie_reason(scenariogen.load(changed(edit)))


def test_constant_classes_that_never_meet_need_no_chains():
    """Two classes at the same constant rate, one entering through continuous work: their
    arrivals never reach a tier at the same instant."""
    data = changed(
        {
            "traffic.web": {"entry": "app", "rate": "50/s", "arrivals": "constant"},
            "traffic.api": {"entry": "search", "rate": "50/s", "arrivals": "constant"},
        }
    )
    assert_chains_change_nothing(data)


def test_a_waiter_at_several_workers_is_started_by_the_work_that_freed_its_worker():
    """Every second a, b, c and d reach `pool` (two workers) together: a (10 ms) and b (4 ms)
    start, c takes b's worker at 4 ms (for 20 ms), d takes a's at 10 ms, with no work. So d's
    work end is scheduled in a's work-end event (itself scheduled at 0 ms), not in c's, the
    visit before d, whose work end was scheduled at 4 ms. At 10 ms e reaches `sink` too, from
    `mid` (no work), whose work end was scheduled by `front`'s, itself scheduled at 2 ms. The
    event path runs a's work end (scheduled at 0 ms) before front's (2 ms), so d reaches
    `sink` before e; the vectorised path took d's chain from c (4 ms) and sent e first, which
    swapped their waits at `sink` (d 5 ms of work, e 2 ms). Both paths must agree exactly."""
    data = {
        "name": "freer",
        "simulation": {"duration": "30s", "warmup": "0.5s"},
        "traffic": {
            name: {"entry": "pre" if name == "e" else "pool", "rate": "1/s", "arrivals": "constant"}
            for name in ("a", "b", "c", "d", "e")
        },
        "tiers": {
            "pre": {"service_time": "2ms", "calls": ["front"], "blocking": False},
            "front": {"service_time": "8ms", "calls": ["mid"], "blocking": False},
            "mid": {"service_time": "0ms", "calls": ["sink"], "blocking": False},
            "pool": {
                "service_time": "10ms",
                "concurrency": 2,
                "calls": ["sink"],
                "blocking": False,
                "classes": {
                    "b": {"service_time": "4ms"},
                    "c": {"service_time": "20ms"},
                    "d": {"service_time": "0ms"},
                },
            },
            "sink": {
                "service_time": "1ms",
                "classes": {"d": {"service_time": "5ms"}, "e": {"service_time": "2ms"}},
            },
        },
    }
    model = scenariogen.load(data)
    events = figures(run_events(model, 0))
    for chunk in (7, 1 << 14):
        vectorised = figures(run_vectorised(model, 0, chunk_requests=chunk))
        assert np.allclose(vectorised, events, rtol=1e-9, atol=0.0, equal_nan=True)
