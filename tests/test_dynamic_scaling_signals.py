"""Scaling on the signal that saturates: an HPA on occupancy or in-flight requests sees threads
blocked on a slow database where the utilization HPA does not, and a KEDA-style scaler follows
a queue's backlog, ceil(backlog / target) consumers within its bounds
(docs/dynamic.md#autoscaling, docs/dynamic.md#scaling-queue-consumers-on-backlog-keda)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from capsim.analysis.points import at_max_replicas
from capsim.analysis.summary import summarise
from capsim.engine.events import run_events
from capsim.engine.vectorised import can_vectorise
from capsim.model.build import build_model
from capsim.model.types import Autoscale, ConsumerScaling, Fault, Model
from capsim.scenario import load_scenario, validate_file
from modelkit import Call, ProfilePoint, const, model, open_class, tier


def app_on_a_slowing_db(metric: str, target: float) -> Model:
    # 200/s, clockwork. app: 4 blocking instances x 10 workers, 10 ms of own work, then a 20 ms
    # db call. From t = 90 s to 300 s the db is 10x slower (200 ms): a request holds its worker
    # 210 ms, so 200/s needs 42 workers of the 40. Own work stays 200 x 10 ms = 2 workers (5%).
    m = model(
        [
            tier("app", const(0.010), instances=4, concurrency=10, blocking=True, calls=(Call(1),)),
            tier("db", const(0.020), kind="database", concurrency=1000),
        ],
        [open_class("web", 0, 200.0, arrivals="constant")],
        duration=200.0,
    )
    scaler = Autoscale(max=20, metric=metric, target=target, min=4, startup_time=10.0)
    slow = Fault(at=90.0, until=300.0, tier=1, slowdown=10.0, text="db slows down 10x")
    return replace(m, tiers=(replace(m.tiers[0], autoscale=scaler), m.tiers[1]), faults=(slow,))


def test_a_utilization_hpa_does_not_see_workers_blocked_on_a_slow_database() -> None:
    # Utilization reads 5% before the slowdown and less during it (the app starts only 190.5/s
    # of the 200/s while its workers are blocked): below target, and min is 4.
    result = run_events(app_on_a_slowing_db("utilization", 0.6), 0)
    assert result.tiers[0].scaling == []
    assert result.tiers[0].busy_time / (40 * 200.0) <= 0.05


def test_an_occupancy_hpa_scales_at_the_first_sync_of_the_slowdown() -> None:
    # Before 90 s occupancy is 200 x 30 ms / 40 = 15%: the HPA wants 1, min holds 4. The sync at
    # 105 s measures [90, 105): the 40 workers fill within a quarter second, occupancy ~0.99,
    # ratio 0.99 / 0.6 = 1.65: desired ceil(1.65 x 4) = 7 (any occupancy in (0.9, 1] gives 7).
    # With 70 workers the load needs 42: occupancy 0.6, on target.
    result = run_events(app_on_a_slowing_db("occupancy", 0.6), 0)
    scaling = result.tiers[0].scaling
    assert scaling[0] == (105.0, 4, 7)
    assert all(to <= 8 for _, _, to in scaling)  # no runaway: 7 (or one more) hold the load


def test_an_in_flight_hpa_sees_the_queue_that_builds_behind_the_blocked_workers() -> None:
    # 40 workers at 210 ms serve 190.5/s of the 200/s: the app's queue grows ~9.5/s. Over
    # [90, 105) about 40 held + ~70 waiting = ~110 in flight, 27.5 per instance against a target
    # of 6: desired ceil(4.6 x 4) = 19, capped by the scale-up policy at max(2 x 4, 4 + 4) = 8.
    result = run_events(app_on_a_slowing_db("in_flight", 6.0), 0)
    assert result.tiers[0].scaling[0] == (105.0, 4, 8)


def test_an_in_flight_hpa_asks_for_ceil_ratio_times_ready_instances() -> None:
    # A milder slowdown (2x: 40 ms db calls) holds each request 50 ms: 200/s x 50 ms = 10 in
    # flight, 2.5 per instance, never a queue. Target 2 per instance: ratio 1.25, desired
    # ceil(1.25 x 4) = 5 at the 105 s sync (the first 40 ms after 90 s still see the old
    # calls: 2.4975, ceil(4.995) = 5). Before, 6 in flight (1.5 each) asked for 3: min 4.
    m = app_on_a_slowing_db("in_flight", 2.0)
    m = replace(m, faults=(replace(m.faults[0], slowdown=2.0),))
    assert run_events(m, 0).tiers[0].scaling[0] == (105.0, 4, 5)


def test_before_the_slowdown_none_of_the_three_scales() -> None:
    for metric, target in (("utilization", 0.6), ("occupancy", 0.6), ("in_flight", 6.0)):
        m = app_on_a_slowing_db(metric, target)
        m = replace(m, faults=())
        assert run_events(m, 0).tiers[0].scaling == [], metric


# ---- KEDA: queue consumers on backlog ------------------------------------------------------------


def keda_queue(
    scaling: ConsumerScaling, service: float, burst: float, rate: float = 100.0
) -> Model:
    # `rate` x `burst` messages published at a constant rate in the first `burst` seconds, then
    # none; consumers take one message at a time for `service` seconds each.
    profile = (
        ProfilePoint(0.0, rate),
        ProfilePoint(burst, rate),
        ProfilePoint(burst, 0.0),
    )
    m = model(
        [
            tier("api", const(0.0), concurrency=1000, blocking=False, calls=(Call(1),)),
            tier("jobs", const(service), kind="queue"),
        ],
        [open_class("publish", 0, rate, arrivals="constant", profile=profile)],
        duration=400.0,
    )
    jobs = replace(
        m.tiers[1],
        consumer_scaling=scaling,
        consumers=scaling.max,
        concurrency=scaling.max * scaling.per_consumer,
    )
    return replace(m, tiers=(m.tiers[0], jobs))


def keda(**changes: float) -> ConsumerScaling:
    settings: dict[str, float] = {
        "metric": "backlog",  # type: ignore[dict-item]
        "target": 100.0,
        "min": 0,
        "max": 20,
        "initial": 0,
        "per_consumer": 1,
        "polling_interval": 30.0,
        "cooldown_period": 60.0,
        "scale_down_stabilization": 0.0,
    }
    settings.update(changes)
    return ConsumerScaling(**settings)  # type: ignore[arg-type]


def test_the_consumer_count_follows_ceil_backlog_over_target_poll_by_poll() -> None:
    # 1,000 messages in the first 10 s; each takes 7 s (polls every 30 s never meet a finish).
    # 30 s: no consumer, a backlog: KEDA activates one (it takes a message: 999 left).
    #   It takes more at 37, 44, 51, 58 s: 995 waiting at 60 s.
    # 60 s: ratio 995 / (100 x 1) = 9.95: ceil(9.95) = 10 consumers; 9 new take 9: 986.
    # 90 s: taken since: the first at 65, 72, 79, 86 (4), the 9 at 67, 74, 81, 88 (36): 946;
    #   946 / (100 x 10) = 0.946, within the 10% tolerance: still 10.
    # 120 s: the first at 93 ... 114 (4), the 9 at 95 ... 116 (36): 906, ratio 0.906: still 10.
    # 150 s: the first at 121 ... 149 (5), the 9 at 123 ... 144 (36): 865, ratio 0.865:
    #   ceil(8.65) = 9.
    result = run_events(keda_queue(keda(), service=7.0, burst=10.0), 0)
    assert result.classes[0].arrivals == 1000
    assert result.tiers[1].scaling[:3] == [(30.0, 0, 1), (60.0, 1, 10), (150.0, 10, 9)]


def test_max_bounds_the_consumers_however_long_the_backlog() -> None:
    # 995 waiting at 60 s asks for 10 consumers; max is 4.
    result = run_events(keda_queue(keda(max=4), service=7.0, burst=10.0), 0)
    assert result.tiers[1].scaling[:2] == [(30.0, 0, 1), (60.0, 1, 4)]


def test_after_the_cooldown_the_consumers_go_back_to_zero() -> None:
    # 10 messages in the first 0.1 s, 1 s each. 30 s: one consumer (active at 30 s); it is done
    # by 40 s. 60 s: no backlog, but 30 s since the last message seen < the 60 s cooldown: the
    # HPA's floor of 1 holds. 90 s: 60 s since: down to 0.
    result = run_events(keda_queue(keda(), service=1.0, burst=0.1), 0)
    assert result.tiers[1].scaling == [(30.0, 0, 1), (90.0, 1, 0)]
    assert result.tiers[1].completed == 10


def test_with_min_one_the_consumers_never_go_to_zero() -> None:
    result = run_events(keda_queue(keda(min=1, initial=1), service=1.0, burst=0.1), 0)
    assert result.tiers[1].scaling == []
    assert result.tiers[1].completed == 10


def test_lag_counts_the_messages_being_consumed_and_backlog_does_not() -> None:
    # 5 consumers each busy on a 1,000 s message, nothing waiting, target 1 per consumer.
    # Backlog 0: the HPA's floor asks for 1 (min 1). Lag 5: 5 / (1 x 5) = 1, on target.
    def run(metric: str) -> list[tuple[float, int, int]]:
        scaling = keda(metric=metric, target=1.0, min=1, initial=5, max=10)  # type: ignore[arg-type]
        return run_events(keda_queue(scaling, service=1000.0, burst=0.05), 0).tiers[1].scaling

    assert run("backlog") == [(30.0, 5, 1)]
    assert run("lag") == []


def test_a_removed_busy_consumer_finishes_its_message_before_it_goes() -> None:
    # The backlog scaler above removes 4 busy consumers at 30 s: their messages still complete.
    scaling = keda(target=1.0, min=1, initial=5, max=10)
    m = keda_queue(scaling, service=40.0, burst=0.05)
    result = run_events(m, 0)
    assert result.tiers[1].scaling[0] == (30.0, 5, 1)
    assert result.tiers[1].completed == 5
    # Worker time: 1 consumer all along, and the 4 removed ones until their messages end (the
    # messages were published at 0.01 ... 0.05 s; the first four to finish go).
    ends = (40.01, 40.02, 40.03, 40.04)
    assert result.tiers[1].live_worker_time == pytest.approx(400.0 + sum(ends))


# ---- the scenario key --------------------------------------------------------------------------

QUEUE = """\
name: keda
simulation: {duration: 100s, warmup: 0s, replications: 1}
traffic:
  web: {rate: 50/s, entry: api}
tiers:
  api:
    service_time: 1ms
    concurrency: 100
    blocking: false
    calls: [jobs]
  jobs:
    type: queue
    service_time: 100ms
    concurrency: 2
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "keda.yaml"
    path.write_text(text)
    return path


def test_a_queue_autoscale_builds_a_consumer_scaler_at_its_max(tmp_path: Path) -> None:
    text = QUEUE + "    autoscale: {metric: lag, target: 50, max: 8, polling_interval: 15s}\n"
    m = build_model(load_scenario(write(tmp_path, text)))
    jobs = m.tiers[1]
    assert jobs.consumer_scaling == ConsumerScaling(
        metric="lag",
        target=50.0,
        min=0,
        max=8,
        initial=0,
        per_consumer=2,
        polling_interval=15.0,
    )
    assert (jobs.consumers, jobs.concurrency) == (8, 16)
    ok, reason = can_vectorise(m)
    assert not ok and "tier 'jobs' scales its consumers on its backlog" in reason


def test_a_scaled_queue_reports_its_scaling_and_consumers_as_instances(tmp_path: Path) -> None:
    text = QUEUE.replace("duration: 100s", "duration: 200s") + (
        "    autoscale: {target: 10, max: 8, polling_interval: 10s, cooldown_period: 30s}\n"
    )
    m = replace(build_model(load_scenario(write(tmp_path, text))), timeseries=True)
    m = replace(m, timeseries_bucket=10.0)
    summary = summarise(m, [run_events(m, 0)], capsim_version="test").data
    entry = summary["tiers"]["jobs"]["autoscale"]
    assert (entry["metric"], entry["target"], entry["min"], entry["max"]) == ("backlog", 10, 0, 8)
    assert entry["scaling"][0] == {"t": 10.0, "from": 0, "to": 1}
    instances = summary["timeseries"]["tiers"]["jobs"]["instances"]
    assert instances[0] == 0.0 and max(instances) == pytest.approx(8.0)
    assert 0.0 < summary["tiers"]["jobs"]["utilization"] <= 1.0


@pytest.mark.parametrize(
    ("setting", "path", "words"),
    [
        (
            "{metric: utilization, target: 10}",
            "tiers.jobs.autoscale.metric",
            "metric must be backlog (messages waiting) or lag",
        ),
        ("{metric: backlg, target: 10}", "tiers.jobs.autoscale.metric", "did you mean 'backlog'?"),
        ("{metric: backlog}", "tiers.jobs.autoscale.target", "missing required key 'target'"),
        ("{target: 10, min: 5, max: 2}", "tiers.jobs.autoscale.max", "min (5) is greater"),
        ("{target: 10, cooldwn_period: 1s}", "tiers.jobs.autoscale.cooldwn_period", "did you mean"),
    ],
)
def test_bad_queue_autoscale_settings_are_located(
    tmp_path: Path, setting: str, path: str, words: str
) -> None:
    problems = validate_file(write(tmp_path, QUEUE + f"    autoscale: {setting}\n"))
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert words in problems[0].message
    assert problems[0].line == 15  # the autoscale line


def test_consumers_outside_the_scaler_range_are_refused(tmp_path: Path) -> None:
    text = QUEUE + "    consumers: 9\n    autoscale: {target: 10, max: 8}\n"
    problems = validate_file(write(tmp_path, text))
    assert [p.path for p in problems] == ["tiers.jobs.consumers"]
    assert "outside autoscale's range 0..8" in problems[0].message


def test_a_scaled_queue_with_batches_is_refused(tmp_path: Path) -> None:
    text = QUEUE + "    batch: {size: 10}\n    autoscale: {target: 10, max: 8}\n"
    problems = validate_file(write(tmp_path, text))
    assert [p.path for p in problems] == ["tiers.jobs.autoscale"]
    assert "autoscale and batch do not go together" in problems[0].message


def test_an_in_flight_target_is_a_number_of_requests(tmp_path: Path) -> None:
    service = QUEUE.split("  jobs:")[0].replace("[jobs]", "[]")
    good = service + "    autoscale: {metric: in_flight, target: 12, max: 10}\n"
    assert validate_file(write(tmp_path, good)) == []
    bad = service + "    autoscale: {metric: in_flight, target: 50%, max: 10}\n"
    problems = validate_file(write(tmp_path, bad))
    assert [p.path for p in problems] == ["tiers.api.autoscale.target"]
    assert "a number of requests in flight per instance" in problems[0].message


def test_capacity_questions_see_a_scaled_queue_at_its_max_consumers(tmp_path: Path) -> None:
    text = QUEUE + "    autoscale: {target: 10, max: 8}\n"
    fixed, notes = at_max_replicas(build_model(load_scenario(write(tmp_path, text))))
    jobs = fixed.tiers[1]
    assert jobs.consumer_scaling is None and jobs.workers == 16  # 8 consumers x 2 workers
    assert notes == [
        "queue jobs scales its consumers on its backlog (0..8): evaluated at its max of 8 "
        "consumers, all running (the scaler's polling and startup are not counted; see capsim "
        "run with a profile)"
    ]


def test_a_new_consumer_takes_messages_after_its_startup_time() -> None:
    # Activated at 30 s with a 20 s startup: the first message (published at 0.01 s) is taken
    # at 50 s and done at 51 s, an age of 50.99 s.
    result = run_events(keda_queue(keda(startup_time=20.0), service=1.0, burst=0.1), 0)
    jobs = result.tiers[1]
    assert jobs.scaling[0] == (30.0, 0, 1)
    assert jobs.age is not None and jobs.age.min == pytest.approx(50.99, rel=0.005)


def test_the_scale_down_window_holds_the_highest_recent_recommendation() -> None:
    # As in the poll-by-poll story (which goes 10 -> 9 at 150 s, then lower), but with the
    # HPA's default 5 min scale-down window: the recommendations of 10 at 60, 90 and 120 s (the
    # last two within the tolerance: the current 10) hold the count at 10 until 420 s, past the
    # 400 s run, whatever lower the backlog asks for meanwhile.
    scaling = keda(scale_down_stabilization=300.0)
    changes = run_events(keda_queue(scaling, service=7.0, burst=10.0), 0).tiers[1].scaling
    assert changes == [(30.0, 0, 1), (60.0, 1, 10)]
