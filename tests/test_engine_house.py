"""The event engine's house rules, as stories: the clock steps events as SimPy would, a fused
call never skips a tier's admission, and each feature reports its own figures on the right tier.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
from typing import Any

import simpy

from capsim.engine.events import run_events
from capsim.engine.events.clock import (
    Clock,
    after,
    events_processed,
    run_until,
    typed_pop,
    typed_push,
)
from capsim.model.types import Call, RateLimit, Retry
from modelkit import Pool, const, model, open_class, tier


def _stepped_order(
    env: Any, schedule: object, step: object
) -> tuple[list[tuple[float, str]], int, float]:
    """Timers at equal and distinct times, one landing on the horizon, made by
    `schedule(env, delay)` and run by `step`."""
    seen: list[tuple[float, str]] = []
    for name, delay in [("b", 2.0), ("a", 1.0), ("c", 2.0), ("on the horizon", 3.0), ("d", 4.0)]:
        timer = schedule(env, delay)  # type: ignore[operator]
        timer.callbacks.append(lambda _, name=name: seen.append((env.now, name)))
    step(env)  # type: ignore[operator]
    return seen, events_processed(env), env.now


def test_the_clock_runs_the_schedule_as_simpys_run_does() -> None:
    # The engine's timers (`clock.after`) on its loop against SimPy's timeouts on SimPy's run.
    ours = _stepped_order(Clock(), after, lambda env: run_until(env, 3.0))
    simpys = _stepped_order(
        simpy.Environment(), simpy.Environment.timeout, lambda env: env.run(until=3.0)
    )
    assert ours == simpys
    # Simultaneous events in the order they were scheduled; the horizon stops before its own
    # ordinary events; the stop event counts as one processed event, as SimPy's does.
    assert ours == ([(1.0, "a"), (2.0, "b"), (2.0, "c")], 4, 3.0)


def _caller_and(callee: dict[str, object]) -> list[dict[str, object]]:
    app = tier("app", const(0.001), concurrency=100, calls=(Call(1),))
    return [app, callee]


def test_a_rate_limited_callee_still_refuses_calls_its_bucket_cannot_pay_for() -> None:
    # 100 calls a second (at 0.01, 0.02, ... 9.99 s) into a bucket of 10 tokens a second
    # holding one: the first call and then every tenth pass, 100 in all; the call to the
    # limited tier is not fused past its limit, and the refusals are the callee's.
    m = model(
        _caller_and(tier("api", const(0.001), concurrency=100)),
        [open_class("web", 0, 100.0, arrivals="constant")],
        duration=10.0,
    )
    api_tier = dataclasses.replace(m.tiers[1], rate_limit=RateLimit(rate=10.0, burst=1))
    m = dataclasses.replace(m, tiers=(m.tiers[0], api_tier))
    r = run_events(m, 0)
    api = r.tiers[1]
    assert api.arrivals == 999
    assert api.rate_limited == api.rejected == r.classes[0].errors == 899
    assert r.tiers[0].rate_limited == 0


def test_a_pool_in_front_of_a_callee_is_never_bypassed() -> None:
    # One connection, no waiting room, queries of 1.5 s, calls at 1, 2, ... 20 s: the calls at
    # even seconds find the connection taken and are refused by the pool, which the caller's
    # compiled call goes through.
    db = tier("db", const(1.5), kind="database", concurrency=10, pool=Pool(1, max_waiting=0))
    m = model(
        _caller_and(db), [open_class("web", 0, 1.0, arrivals="constant")], duration=20.0, warmup=0.5
    )
    r = run_events(m, 0)
    assert r.tiers[1].arrivals == 20
    assert r.tiers[1].pool_rejected == r.tiers[1].rejected == r.classes[0].errors == 10


def test_call_counters_are_reported_by_the_callee_not_the_caller() -> None:
    # Calls at 1, 2, ... 10 s: the first takes the callee's only worker for 100 s; with no
    # waiting room the other 9 are refused, each tried 1 + 2 times. The retries are counted
    # by the tier they arrive at.
    retried = Call(1, retry=Retry(max=2, backoff="none", jitter="none"))
    callee = tier("busy", const(100.0), concurrency=1, max_queue=0)
    m = model(
        [tier("app", const(0.001), concurrency=100, calls=(retried,)), callee],
        [open_class("web", 0, 1.0, arrivals="constant")],
        duration=10.0,
        warmup=0.5,
    )
    r = run_events(m, 0)
    app, busy = r.tiers
    assert busy.arrivals == 1 + 9 * 3
    assert busy.retries == 9 * 2
    assert busy.rejected == 9 * 3 and r.classes[0].errors == 9
    assert app.retries == 0


def test_the_compiled_paths_heap_keeps_the_schedule_exactly_as_heapq_does() -> None:
    # `clock.typed_push` and `typed_pop` (what the compiled event path pushes and pops with)
    # against heapq on the same entries: times with many ties (and one NaN-free infinity),
    # both priorities, pops in between; the heap's layout after every step, and what is popped.
    rng = random.Random(15)
    ours: list[Any] = []
    theirs: list[Any] = []
    ids = itertools.count()
    for _ in range(5_000):
        if ours and rng.random() < 0.45:
            assert typed_pop(ours) == heapq.heappop(theirs)
        else:
            when = rng.choice([0.5, 1.0, 1.0, math.inf]) if rng.random() < 0.3 else rng.random()
            entry = (when, rng.choice([0, 1, 1, 1]), next(ids), None, None)
            typed_push(ours, entry)
            heapq.heappush(theirs, entry)
        assert ours == theirs
    while theirs:
        assert typed_pop(ours) == heapq.heappop(theirs)
    assert not ours
