"""A cache's `on_miss` and a load balancer's `backends` as call mappings: the miss call and the
backend call take a timeout, retries, a breaker, a bulkhead or a hedge like any call, and are
counted like any call (docs/dynamic.md#miss-and-backend-calls)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from capsim.analysis.summary import summarise
from capsim.engine.events import run_events
from capsim.engine.vectorised import can_vectorise, run_vectorised
from capsim.errors import Problem
from capsim.model.build import build_model
from capsim.model.types import Call, Model
from capsim.scenario import load_scenario, validate_file

HEAD = """\
name: forward
simulation: {duration: 10s, warmup: 0s, replications: 1}
traffic:
  web: {rate: 0.2/s, entry: front, arrivals: constant}
tiers:
"""

DB = """\
  db:
    type: database
    service_time: 1s
    concurrency: 8
"""


def write(folder: Path, tiers: str, head: str = HEAD) -> Path:
    path = folder / "forward.yaml"
    path.write_text(head + tiers)
    return path


def built(folder: Path, tiers: str, head: str = HEAD) -> Model:
    return build_model(load_scenario(write(folder, tiers, head)))


def only_problem(folder: Path, tiers: str) -> Problem:
    problems = validate_file(write(folder, tiers))
    assert len(problems) == 1, problems
    return problems[0]


def cache(on_miss: str, hit_ratio: str = "0") -> str:
    return f"""\
  front:
    type: cache
    service_time: 0s
    hit_ratio: {hit_ratio}
    on_miss: {on_miss}
"""


def test_a_miss_call_that_times_out_is_retried_and_counted_on_the_origin(tmp_path: Path) -> None:
    # One request at t = 5 s misses (hit ratio 0). The db takes 1 s; the miss call gives up after
    # 0.3 s and retries at once; the retry times out at 5.6 s and the request fails there.
    on_miss = "{tier: db, timeout: 300ms, retries: {max: 1, backoff: none, jitter: none}}"
    result = run_events(built(tmp_path, cache(on_miss) + DB), 0)
    web, db = result.classes[0], result.tiers[1]
    assert (web.arrivals, web.completed, web.errors) == (1, 0, 1)
    assert (db.arrivals, db.retries, db.call_timeouts) == (2, 1, 2)
    assert db.completed == 2  # both attempts ran to the end: wasted work on the origin
    assert db.busy_time == pytest.approx(2.0)  # [5, 6) and [5.3, 6.3)


def test_a_miss_call_within_its_timeout_answers_and_counts_nothing(tmp_path: Path) -> None:
    on_miss = "{tier: db, timeout: 1.5s, retries: {max: 2}}"
    result = run_events(built(tmp_path, cache(on_miss) + DB), 0)
    web, db = result.classes[0], result.tiers[1]
    assert (web.completed, web.errors) == (1, 0)
    assert web.latency.max == pytest.approx(1.0)
    assert (db.arrivals, db.retries, db.call_timeouts) == (1, 0, 0)


def test_a_mapping_with_only_the_tier_is_the_plain_name(tmp_path: Path) -> None:
    plain = built(tmp_path, cache("db", "0.75") + DB)
    mapped = built(tmp_path, cache("{tier: db}", "0.75") + DB)
    assert plain.tiers[0].work[0].calls == mapped.tiers[0].work[0].calls
    assert mapped.tiers[0].work[0].calls == (Call(1, probability=0.25),)
    assert can_vectorise(mapped)[0] and can_vectorise(plain)[0]


def test_the_miss_call_keeps_its_probability_and_gets_its_settings(tmp_path: Path) -> None:
    on_miss = "{tier: db, timeout: 2s, bulkhead: 5, hedge: {after: 200ms}}"
    miss = built(tmp_path, cache(on_miss, "0.9") + DB).tiers[0].work[0].calls[0]
    assert isinstance(miss, Call)
    assert miss.probability == pytest.approx(0.1)
    assert (miss.timeout, miss.bulkhead, miss.hedge is not None) == (2.0, 5, True)


def test_with_an_origin_shield_the_settings_are_on_the_shields_call_to_the_origin(
    tmp_path: Path,
) -> None:
    tiers = """\
  front:
    type: cdn
    hit_ratio: 0.5
    origin_shield: {hit_ratio: 0.5}
    on_miss: {tier: db, timeout: 2s}
"""
    m = built(tmp_path, tiers + DB)
    to_shield, to_origin = m.tiers[0].work[0].calls[0], m.tiers[1].work[0].calls[0]
    assert isinstance(to_shield, Call) and isinstance(to_origin, Call)
    assert (to_shield.tier, to_shield.timeout) == (1, None)
    assert (to_origin.tier, to_origin.timeout, to_origin.probability) == (2, 2.0, 0.5)


def test_a_load_balancers_backend_call_times_out_and_is_retried(tmp_path: Path) -> None:
    lb = """\
  front:
    type: load_balancer
    algorithm: round_robin
    backends: {tier: db, timeout: 300ms, retries: {max: 1, backoff: none, jitter: none}}
"""
    m = built(tmp_path, lb + DB)
    backend = m.tiers[0].work[0].calls[0]
    assert isinstance(backend, Call) and backend.algorithm == "round_robin"
    result = run_events(m, 0)
    web, db = result.classes[0], result.tiers[1]
    assert (web.completed, web.errors) == (0, 1)
    assert (db.arrivals, db.retries, db.call_timeouts) == (2, 1, 2)


def test_the_vectorised_path_refuses_a_guarded_miss_call_and_names_it(tmp_path: Path) -> None:
    m = built(tmp_path, cache("{tier: db, timeout: 300ms}", "0.5") + DB)
    ok, reason = can_vectorise(m)
    assert not ok
    assert "'front' calls 'db' with a timeout or retries" in reason


def test_both_paths_agree_on_a_plain_miss_mapping(tmp_path: Path) -> None:
    # 400/s into a cache missing 40% to a db of 4 workers at 5 ms: rho = 160 x 0.005 / 4 = 0.2.
    head = HEAD.replace("10s, warmup: 0s", "60s, warmup: 2s").replace(
        "rate: 0.2/s, entry: front, arrivals: constant", "rate: 400/s, entry: front"
    )
    db = DB.replace("1s", "{dist: exponential, mean: 5ms}").replace("8", "4")
    m = built(tmp_path, cache("{tier: db}", "0.6") + db, head)
    assert can_vectorise(m)[0]
    events, vectorised = run_events(m, 0), run_vectorised(m, 1)
    for run in (events, vectorised):
        assert run.tiers[1].arrivals == pytest.approx(0.4 * run.tiers[0].arrivals, rel=0.03)
    n = events.tiers[1].completed
    # The mean sojourn at the db: 4 sigma of the difference of two runs (a loose M/M/4 bound).
    tolerance = 4.0 * math.sqrt(2.0) * 2.0 / math.sqrt(n)
    assert events.tiers[1].busy_time == pytest.approx(vectorised.tiers[1].busy_time, rel=tolerance)


def test_probability_in_a_miss_mapping_is_refused_where_it_is_written(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, cache("{tier: db, probability: 0.5}", "0.5") + DB)
    assert problem.path == "tiers.front.on_miss.probability"
    assert (problem.line, problem.column) == (10, 25)
    assert "probability has no place in on_miss" in problem.message
    assert "1 - hit_ratio" in problem.message


def test_an_unknown_tier_in_a_miss_mapping_gets_a_suggestion(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, cache("{tier: dbb, timeout: 1s}", "0.5") + DB)
    assert problem.path == "tiers.front.on_miss.tier"
    assert "unknown tier 'dbb'; did you mean 'db'?" in problem.message


def test_an_unknown_key_in_a_backend_mapping_gets_a_suggestion(tmp_path: Path) -> None:
    lb = "  front: {type: load_balancer, backends: {tier: db, timeuot: 1s}}\n"
    problem = only_problem(tmp_path, lb + DB)
    assert problem.path == "tiers.front.backends.timeuot"
    assert "did you mean 'timeout'?" in problem.message


def test_a_hedged_miss_call_to_a_queue_is_refused(tmp_path: Path) -> None:
    queue = "  jobs: {type: queue, service_time: 1ms}\n"
    problem = only_problem(tmp_path, cache("{tier: jobs, hedge: {after: 10ms}}", "0.5") + queue)
    assert problem.path == "tiers.front.on_miss.hedge"
    assert "jobs is a queue" in problem.message


def test_the_result_reports_a_miss_calls_retries_on_the_origin(tmp_path: Path) -> None:
    on_miss = "{tier: db, timeout: 300ms, retries: {max: 1, backoff: none, jitter: none}}"
    m = built(tmp_path, cache(on_miss) + DB)
    data = summarise(m, [run_events(m, 0)], capsim_version="test").data
    db = data["tiers"]["db"]
    assert (db["arrivals"], db["retries"], db["call_timeouts"]) == (2, 1, 2)
    assert data["classes"]["web"]["errors"] == 1
    assert "retries" not in data["tiers"]["front"]  # the caller is not the callee


@pytest.mark.parametrize("value", ["5", "[db]"])
def test_a_miss_setting_that_is_neither_a_name_nor_a_mapping_says_what_it_takes(
    tmp_path: Path, value: str
) -> None:
    problem = only_problem(tmp_path, cache(value, "0.5") + DB)
    assert problem.path == "tiers.front.on_miss"
    assert problem.message.startswith(
        "expected a tier name or a call mapping such as {tier: db, timeout: 500ms}, got "
    )
