"""Stories of replications reused within one command (analysis/points.py, ReplicationStore).

A replication is a pure function of the model and its index, whatever the model's count of
replications: a search that measures a model again with more replications (a verification run
again with twice its replications when it failed only by noise) runs only the new ones, and
gets the figures a run of all of them from the first would give, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import capsim
from capsim.analysis.points import Point, ReplicationStore, measure, with_run_length
from capsim.engine.executors import open_executor
from capsim.engine.runner import run_batch
from capsim.model.types import Model

# A pool behind a timeout: the event path, an objective on p99 and one on errors.
SHOP = """\
name: shop
seed: 11
simulation: {duration: 4s, warmup: 0.5s, replications: 2}
traffic:
  browse: {entry: api, rate: 150/s}
tiers:
  api:
    type: service
    instances: 2
    concurrency: 4
    service_time: {dist: exponential, mean: 8ms}
    calls: [{tier: db, timeout: 200ms}]
  db:
    type: database
    concurrency: 4
    service_time: {dist: exponential, mean: 6ms}
slos:
  - {class: browse, p99: 300ms, error_rate: 1%}
"""


def shop(tmp_path: Path, replications: int = 2, rate: float | None = None) -> Model:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP)
    model = capsim.build_model(capsim.load_scenario(path))
    if rate is not None:
        from capsim.analysis.points import scale_open_traffic

        model = scale_open_traffic(model, rate / 150.0)
    return with_run_length(model, None, replications)


def figures(point: Point) -> str:
    return json.dumps(
        {
            "report": point.report.data,
            "checks": [check.as_dict() for check in point.checks],
            "estimates": point.replication_estimates,
        },
        sort_keys=True,
        default=str,
    )


def test_a_model_measured_again_with_more_replications_runs_only_the_new_ones(
    tmp_path: Path,
) -> None:
    store = ReplicationStore()
    first = measure(shop(tmp_path, 2), capsim_version="t", store=store)
    again = measure(shop(tmp_path, 5), capsim_version="t", store=store)
    assert (first.reused, again.reused) == (0, 2)
    assert again.simulated_share == 3 / 5
    fresh = measure(shop(tmp_path, 5), capsim_version="t")
    assert figures(again) == figures(fresh)


def test_a_model_measured_again_alike_simulates_nothing(tmp_path: Path) -> None:
    store = ReplicationStore()
    first = measure(shop(tmp_path, 3), capsim_version="t", store=store)
    again = measure(shop(tmp_path, 3), capsim_version="t", store=store)
    assert again.reused == 3 and again.simulated_share == 0.0
    assert figures(again) == figures(first)


def test_another_rate_or_run_length_is_never_taken_for_the_model_measured(
    tmp_path: Path,
) -> None:
    store = ReplicationStore()
    measure(shop(tmp_path, 2), capsim_version="t", store=store)
    faster = measure(shop(tmp_path, 2, rate=160.0), capsim_version="t", store=store)
    longer = with_run_length(shop(tmp_path, 2), 6.0, None)
    stretched = measure(longer, capsim_version="t", store=store)
    reseeded = measure(replace(shop(tmp_path, 2), seed=12), capsim_version="t", store=store)
    assert (faster.reused, stretched.reused, reseeded.reused) == (0, 0, 0)


def test_the_runner_starts_a_model_at_the_first_replication_it_is_asked_for(
    tmp_path: Path,
) -> None:
    model = shop(tmp_path, 4)
    (every,) = run_batch([model])
    (later,) = run_batch([model], first=[2])
    assert [run.replication for run in later] == [2, 3]
    for run, same in zip(later, every[2:], strict=True):
        assert run.events == same.events
        assert [c.latency.n for c in run.classes] == [c.latency.n for c in same.classes]
        assert [c.latency.total for c in run.classes] == [c.latency.total for c in same.classes]


def test_the_store_keeps_the_most_recently_used_replications_up_to_its_capacity(
    tmp_path: Path,
) -> None:
    store = ReplicationStore(capacity=4)
    measure(shop(tmp_path, 3), capsim_version="t", store=store)
    measure(shop(tmp_path, 2, rate=160.0), capsim_version="t", store=store)  # evicts two
    assert measure(shop(tmp_path, 3), capsim_version="t", store=store).reused == 0
    assert measure(shop(tmp_path, 3), capsim_version="t", store=store).reused == 3


def test_replications_reused_on_a_process_pool_give_the_serial_figures(tmp_path: Path) -> None:
    store = ReplicationStore()
    with open_executor("process", 2) as pool:
        measure(shop(tmp_path, 2), capsim_version="t", store=store, executor=pool)
        again = measure(shop(tmp_path, 4), capsim_version="t", store=store, executor=pool)
    assert again.reused == 2
    assert figures(again) == figures(measure(shop(tmp_path, 4), capsim_version="t"))
