"""Autoscaling details (docs/dynamic.md): KEDA's activation threshold on a queue's consumer
scaler, and the HPA's scale-up policies (Pods or Percent per period, selectPolicy) on both the
HPA of a tier and the consumer scaler. Clockwork load, so every step is counted by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import capsim
from capsim.engine.events import run_events
from capsim.engine.events.scaling_policy import scale_up_limit
from capsim.engine.runner import choose_path
from capsim.model.types import Autoscale, ProfilePoint
from capsim.scenario import load_scenario, validate_file
from modelkit import const, model, open_class, tier
from test_dynamic_scaling_signals import keda, keda_queue


def hpa_on_rate(scaler: Autoscale) -> capsim.Model:
    # 60/s of 100 ms work against a rate target of 6/s per instance: the advice is 10 at every
    # sync from one instance, and one instance reads the whole 60/s (a rate sees past saturation).
    m = model(
        [tier("app", const(0.1), instances=1)],
        [open_class("web", 0, 60.0, arrivals="constant", profile=(ProfilePoint(0.0, 60.0),))],
        duration=120.0,
    )
    return replace(m, tiers=(replace(m.tiers[0], autoscale=scaler),))


# ---- the HPA's scale-up policies -----------------------------------------------------------
def test_by_default_a_sync_adds_the_more_of_100_percent_and_4_instances() -> None:
    # max(ceil(1 x 2), 1 + 4) = 5 at 15 s, then max(10, 9) = 10 at 30 s.
    result = run_events(
        hpa_on_rate(Autoscale(max=10, metric="rate", target=6.0, startup_time=5.0)), 0
    )
    assert result.tiers[0].scaling[:2] == [(15.0, 1, 5), (30.0, 5, 10)]


def test_a_pods_policy_over_a_minute_adds_two_instances_a_minute() -> None:
    # 2 pods per 60 s (and a 10% policy that allows less): 1 -> 3 at 15 s; at 30 s and 45 s the
    # period started at 3 - 2 = 1, so the limit is 3: nothing; at 75 s the change at 15 s is out
    # of the period (15 + 60 = 75 is not after 75): 3 -> 5; at 135 s (not in the run) 5 -> 7.
    scaler = Autoscale(
        max=10,
        metric="rate",
        target=6.0,
        startup_time=5.0,
        max_scale_up=0.1,
        max_scale_up_instances=2,
        scale_up_period=60.0,
    )
    assert run_events(hpa_on_rate(scaler), 0).tiers[0].scaling == [(15.0, 1, 3), (75.0, 3, 5)]


def test_select_min_takes_the_stricter_of_the_two_policies() -> None:
    # 100% or 4 per sync: max allows 1 -> 5, min allows 1 -> 2, then 2 -> 4, 4 -> 8, 8 -> 10.
    scaler = Autoscale(max=10, metric="rate", target=6.0, startup_time=5.0, scale_up_select="min")
    scaling = run_events(hpa_on_rate(scaler), 0).tiers[0].scaling
    assert scaling[:4] == [(15.0, 1, 2), (30.0, 2, 4), (45.0, 4, 8), (60.0, 8, 10)]


def test_the_period_starts_from_the_count_before_its_scale_ups_and_after_its_scale_downs() -> None:
    # 10 now; within the period, a scale-up 6 -> 12 and a scale-down 12 -> 10: the period
    # started at 10 - 6 + 2 = 6, so 100% allows 12 and 4 pods allow 10: 12 (max), 10 (min).
    changes = [(0.0, 4, 6), (50.0, 6, 12), (55.0, 12, 10)]
    policy = {"percent": 1.0, "pods": 4, "period": 30.0}
    assert scale_up_limit(changes, 60.0, 10, **policy) == 12
    assert scale_up_limit(changes, 60.0, 10, **policy, select="min") == 10
    # A limit never asks for fewer than the current count; no policy, no limit.
    assert scale_up_limit([(59.0, 1, 10)], 60.0, 10, percent=0.1, pods=None, period=30.0) == 10
    assert scale_up_limit(changes, 60.0, 10, percent=None, pods=None, period=30.0) is None


# ---- KEDA: activation threshold and scale-up policies ---------------------------------------
def test_a_backlog_at_or_below_the_activation_threshold_starts_no_consumer() -> None:
    # 40 messages in the first 0.4 s, against an activation threshold of 50: no poll is active,
    # nobody consumes them, and they are still waiting at the end.
    result = run_events(keda_queue(keda(activation_threshold=50.0), service=1.0, burst=0.4), 0)
    assert result.tiers[1].scaling == []
    assert result.tiers[1].completed == 0


def test_above_the_activation_threshold_the_scaler_activates_and_then_follows_the_backlog() -> None:
    # 1,000 messages, threshold 500: at 30 s 1,000 waiting > 500: one consumer, as without a
    # threshold; then ceil(995 / 100) = 10 at 60 s (the threshold only gates activity).
    result = run_events(keda_queue(keda(activation_threshold=500.0), service=7.0, burst=10.0), 0)
    assert result.tiers[1].scaling[:2] == [(30.0, 0, 1), (60.0, 1, 10)]


def test_consumers_go_to_zero_once_the_backlog_stays_at_or_below_the_threshold() -> None:
    # 100 messages of 1 s in the first second, threshold 50: at 30 s 100 > 50, one consumer
    # (it consumes one a second). 60 s: 71 - 1 = 70 left > 50: active; ceil(70 / 100) = 1.
    # 90 s: 40 left, not active, 30 s since the last active poll < 60 s; 120 s: 10 left, 60 s
    # since: back to 0, with 10 messages still waiting.
    result = run_events(keda_queue(keda(activation_threshold=50.0), service=1.0, burst=1.0), 0)
    jobs = result.tiers[1]
    assert jobs.scaling == [(30.0, 0, 1), (120.0, 1, 0)]
    assert jobs.completed == pytest.approx(90, abs=1)


def test_a_pods_policy_spreads_a_consumer_scale_up_over_periods() -> None:
    # 995 waiting at 60 s asks for 10; 4 pods per 60 s counted from the period's start, the
    # activation at 30 s included (0 -> 1): the period started at 0, so at most 4; at 90 s
    # (still asking for about 10) the activation is out of the period: 4 -> 5 (start 1 + 4);
    # at 150 s the 60 s change is out: 5 -> 9 (start 5 + 4) if it still asks for 9 or more.
    scaling = keda(max_scale_up_instances=4, scale_up_period=60.0)
    changes = run_events(keda_queue(scaling, service=7.0, burst=10.0), 0).tiers[1].scaling
    assert changes[:2] == [(30.0, 0, 1), (60.0, 1, 4)]
    assert changes[2][0] == 90.0 and changes[2][2] == 5


# ---- the scenario keys ----------------------------------------------------------------------
QUEUE = """\
name: keda
simulation: {duration: 60s, warmup: 0s}
traffic:
  publish: {entry: api, rate: 10/s}
tiers:
  api: {service_time: 0s, concurrency: 100, blocking: false, calls: [jobs]}
  jobs:
    type: queue
    service_time: 100ms
    autoscale: {target: 100, max: 10, activation_threshold: 5, max_scale_up: 50%,
                max_scale_up_instances: 2, scale_up_period: 1min, scale_up_select: min}
"""


def test_the_keys_reach_the_model_and_run_on_the_event_path(tmp_path: Path) -> None:
    path = tmp_path / "keda.yaml"
    path.write_text(QUEUE)
    m = capsim.build_model(load_scenario(path))
    scaling = m.tier("jobs").consumer_scaling
    assert scaling is not None
    assert (scaling.activation_threshold, scaling.max_scale_up) == (5.0, 0.5)
    assert (scaling.max_scale_up_instances, scaling.scale_up_period) == (2, 60.0)
    assert scaling.scale_up_select == "min"
    assert choose_path(m)[0] == "events"


def test_a_bad_policy_is_located_with_what_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "keda.yaml"
    path.write_text(QUEUE.replace("scale_up_select: min", "scale_up_select: most"))
    (problem,) = validate_file(path)
    assert problem.path == "tiers.jobs.autoscale.scale_up_select"
    assert (problem.line, problem.column) == (11, 84)  # at the value
    assert "'max'" in problem.message and "'min'" in problem.message
