"""Stories of a sizing search that starts where the formulas say, and needs few runs.

`size` starts from the cheapest configuration `capsim solve` calls sufficient (Erlang C for
pools, blocking workers held through their calls, the headroom), then judges it by
simulation: where the formulas are right the answer takes two points; where they are wrong the
search corrects them and reaches the same answer as a search from the lower bounds.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import capsim
from capsim.analysis import sizing
from capsim.analysis.points import Point, SloCheck
from capsim.analysis.report import Report
from capsim.analysis.sizing import fails_clearly, size_tiers
from capsim.model.types import Model

#: An API that holds its workers while it waits for a database connection: 320 orders/s of
#: 10 ms queries. Two connections cannot carry 3.2 busy ones, so the API backs up behind them.
#: Four keep it in steady state with a p99 of about 75 ms, five bring it to 51 ms (12
#: replications of 20 s each: 62-87 ms and 49-53 ms, 95% intervals): the objective lies
#: between them, far enough from both for three replications to tell. (At 80 ms, 6% above
#: four's p99, whether four passed was luck: 3 of 4 seed shifts answered 5, one answered 4.)
POOLED = """\
name: pooled
seed: 3
simulation: {duration: 20s, warmup: 2s, replications: 3}
traffic:
  orders: {entry: api, rate: 320/s}
tiers:
  api:
    concurrency: 64
    blocking: true
    service_time: {dist: exponential, mean: 1ms}
    calls: [db]
    sizing: fixed
  db:
    type: database
    concurrency: 32
    service_time: {dist: exponential, mean: 10ms}
    pool: {size: 2, max_waiting: 1000, timeout: 5s}
    sizing: {of: concurrency, min: 1, max: 64}
slos:
  - {class: orders, p99: 62ms}
"""

#: Single-worker instances behind least-connections balancing. `solve` pools them into one
#: M/M/c queue, which is optimistic: its p99 at 4 instances is 60 ms, while four separate
#: queues, however well balanced, give a p99 above 65 ms.
LEAST_CONNECTIONS = """\
name: least-conn
seed: 3
simulation: {duration: 30s, warmup: 3s, replications: 3}
traffic:
  requests: {entry: api, rate: 300/s}
tiers:
  api:
    instances: 2
    concurrency: 1
    balancing: least_connections
    service_time: {dist: exponential, mean: 10ms}
    cost: {per_instance_hour: 0.5}
    sizing: {min: 1, max: 20}
slos:
  - {class: requests, p99: 65ms}
"""


def sized(tmp_path: Path, text: str, **options: Any) -> dict[str, Any]:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    model = capsim.build_model(capsim.load_scenario(path))
    return size_tiers(model, capsim_version=capsim.__version__, **options)


def without_the_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search as it was: from the lower bounds alone."""
    monkeypatch.setattr(sizing, "analytic_start", lambda *args: None)


def test_a_pool_is_sized_from_the_formulas_in_two_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = sized(tmp_path, POOLED)
    search = result["search"]
    assert search["start"] == "analytic"
    # Four connections keep the API in steady state by the formulas (3.2 busy on average).
    assert search["started_at"] == {"db": 4}
    assert result["tiers"]["db"]["concurrency"] == 5
    assert result["tiers"]["db"]["one_fewer"]["meets_slos"] is False
    assert search["runs"] == 2 == sum(search["runs_by_phase"].values())
    assert search["run_equivalents"] == pytest.approx(2.0)

    # From the lower bound (one connection: pools have none) it grows one connection a move.
    without_the_analysis(monkeypatch)
    before = sized(tmp_path, POOLED)
    assert before["search"]["start"] == "lower bounds"
    assert before["search"]["started_at"] == {"db": 1}
    assert before["tiers"]["db"]["concurrency"] == 5
    assert before["search"]["runs"] == 5


def test_an_optimistic_start_is_grown_by_the_search_to_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = sized(tmp_path, LEAST_CONNECTIONS)
    assert result["search"]["started_at"] == {"api": 4}  # the pooled M/M/4's p99 is 60 ms
    api = result["tiers"]["api"]
    assert api["instances"] == 5 and result["verified"] is True
    assert api["one_fewer"]["value"] == 4 and api["one_fewer"]["meets_slos"] is False
    assert "requests p99 <= 65ms" in api["one_fewer"]["reason"]
    assert result["search"]["runs_by_phase"]["growing"] == 2

    without_the_analysis(monkeypatch)
    assert sized(tmp_path, LEAST_CONNECTIONS)["tiers"]["api"]["instances"] == 5


def test_a_start_above_the_answer_is_shrunk_to_the_same_minimum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Formulas too pessimistic (as random splitting is for least-connections balancing).
    monkeypatch.setattr(sizing, "analytic_start", lambda *args: {"api": 9})
    result = sized(tmp_path, LEAST_CONNECTIONS)
    assert result["search"]["started_at"] == {"api": 9}
    assert result["tiers"]["api"]["instances"] == 5
    assert result["search"]["runs_by_phase"]["shrinking"] == 5  # 8, 7, 6, 5 pass; 4 fails


#: The longest wait for an api worker grows with the length of the run: the 6 s search points
#: see shorter maxima than the scenario's own 120 s run, so their answer fails its verification.
LONGEST_WAIT = """\
name: longest-wait
seed: 4
simulation: {duration: 120s, warmup: 4s, replications: 2}
traffic:
  buy: {entry: api, rate: 300/s}
tiers:
  api:
    concurrency: 4
    blocking: false               # a worker is free again when it has sent its call
    service_time: {dist: exponential, mean: 10ms}
    calls: [backend]
    sizing: {of: concurrency, min: 1, max: 16}
  backend:
    concurrency: 2
    service_time: {dist: exponential, mean: 5ms}
    sizing: {of: concurrency, min: 1, max: 16}
slos:
  - {tier: api, wait_max: 40ms}
"""


def test_a_failed_verification_refines_from_where_the_search_stands(tmp_path: Path) -> None:
    # Whether the 6 s search already sees a longest wait past 40 ms with 5 api workers is
    # luck: for 2 of 10 seeds it does, and answers 6 before any verification fails. The story
    # is told by the others, so it runs over three seeds. The longest wait of a 120 s run is
    # itself noisy: 6 workers keep it within 40 ms for most seeds, 7 or 8 for others; the
    # answer is the fewest that do, one fewer failing.
    told = 0
    for seed in (4, 5, 7):
        text = LONGEST_WAIT.replace("seed: 4", f"seed: {seed}")
        result = sized(tmp_path, text, duration=6.0, headroom=0.0)
        assert result["verified"] is True
        assert result["tiers"]["backend"]["concurrency"] == 2
        api = result["tiers"]["api"]["concurrency"]
        assert api >= 6 and result["tiers"]["api"]["one_fewer"]["meets_slos"] is False
        search = result["search"]
        if search["minimality_checked_at"] != "full":
            continue
        told += 1
        phases = search["runs_by_phase"]
        # The 6 s search answered 5 (3 growing points); growth at full length starts
        # from that failed verification, one step of two candidates measured together per
        # worker added (5 -> 6: 2 points), it does not search again from the start.
        assert phases["growing"] == 3
        assert phases["growing at full length"] <= 2 * (api - 5)
        assert result["tiers"]["api"]["one_fewer"]["duration"] == 120.0
    assert told >= 1  # seeds 4 and 7 tell it, 5 does not


def point_with(observed: float, upper: float, unstable: tuple[str, ...] = ()) -> Point:
    """A point with one objective (limit 1 s) judged at `observed`, upper bound `upper`."""
    report = cast(Report, SimpleNamespace(unstable_tiers=list(unstable)))
    check = SloCheck("p99 <= 1s", "p99", 1.0, observed, upper, upper <= 1.0)
    return Point(cast(Model, None), report, [check], {})


def test_a_point_fails_clearly_only_when_its_whole_interval_is_beyond_the_limit() -> None:
    assert fails_clearly(point_with(1.3, 1.5))  # 1.1 s to 1.5 s: all of it beyond
    assert not fails_clearly(point_with(1.1, 1.3))  # 0.9 s to 1.3 s: a longer run may pass
    assert not fails_clearly(point_with(0.9, 1.2))  # observed within: only the bound fails
    assert not fails_clearly(point_with(0.5, 0.6))  # passes
    assert fails_clearly(point_with(0.5, 0.6, unstable=("api",)))  # a tier overloaded
