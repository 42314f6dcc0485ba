"""A tier's or class's random numbers belong to its name, not to its place in the scenario.

A user keeps a baseline run in CI and later tidies the scenario: moves a tier up, adds a tier
nothing calls yet, lists the classes in another order. None of that changes the system, so
under the same seed every figure must come out byte for byte as before, on both engine paths
and on every executor; only a renamed tier or class draws other numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import capsim
from capsim.engine import streams

ENGINES = ["events", "vectorised"]

#: Two open classes, a fan-out with a probability (routing draws), a balanced tier (balancing
#: draws) and a queue fed by publishes: every stream both paths draw from.
PIPELINE = """\
name: pipeline
seed: 3
simulation: {duration: 6s, warmup: 1s, replications: 2}
traffic:
  web: {entry: app, rate: 120/s}
  batch: {entry: app, rate: 30/s}
tiers:
  app:
    instances: 2
    concurrency: 4
    blocking: false
    balancing: random
    service_time: {dist: exponential, mean: 10ms}
    classes:
      batch: {service_time: {dist: gamma, mean: 14ms, cv: 0.7}}
    calls: [db, {tier: cache, probability: 0.5}, events]
  cache: {concurrency: 2, service_time: {dist: lognormal, mean: 2ms, cv: 1.5}}
  db: {type: database, concurrency: 2, service_time: {dist: exponential, mean: 5ms}}
  events: {type: queue, consumers: 2, service_time: {dist: exponential, mean: 4ms}}
"""
CACHE = "  cache: {concurrency: 2, service_time: {dist: lognormal, mean: 2ms, cv: 1.5}}\n"
IDLE = "  thumbs: {concurrency: 3, service_time: {dist: exponential, mean: 5ms}}\n"
WEB, BATCH = "  web: {entry: app, rate: 120/s}\n", "  batch: {entry: app, rate: 30/s}\n"

#: The cache moved from after app to the top of `tiers:`.
TIERS_REORDERED = PIPELINE.replace(CACHE, "").replace("tiers:\n", "tiers:\n" + CACHE)
#: A tier nobody calls, inserted before the others.
IDLE_INSERTED = PIPELINE.replace("tiers:\n", "tiers:\n" + IDLE)
#: The classes listed the other way round.
CLASSES_REORDERED = PIPELINE.replace(WEB + BATCH, BATCH + WEB)


def figures(text: str, tmp_path: Path, engine: str, **options: object) -> str:
    """The run's JSON result with tiers and classes keyed (and so listed) by name."""
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    report = capsim.simulate(
        capsim.build_model(capsim.load_scenario(path)), engine=engine, **options
    )
    assert report.data["engine"]["path"] == engine
    data = dict(report.data)
    data.pop("engine")  # the engine's own notes (how it ran), not result figures
    data["tiers"].pop("thumbs", None)
    data.get("per_replication", {}).get("tiers", {}).pop("thumbs", None)
    return json.dumps(data, sort_keys=True)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "changed",
    [TIERS_REORDERED, IDLE_INSERTED, CLASSES_REORDERED],
    ids=["tiers-reordered", "idle-tier-inserted", "classes-reordered"],
)
def test_tidying_the_scenario_leaves_every_figure_byte_identical(
    tmp_path: Path, engine: str, changed: str
) -> None:
    assert changed != PIPELINE
    assert figures(changed, tmp_path, engine) == figures(PIPELINE, tmp_path, engine)


def test_a_reordered_scenario_on_a_process_pool_matches_the_original_run_serially(
    tmp_path: Path,
) -> None:
    serial = figures(PIPELINE, tmp_path, "events")
    pooled = figures(TIERS_REORDERED, tmp_path, "events", executor="process", workers=2)
    assert pooled == serial


@pytest.mark.parametrize("engine", ENGINES)
def test_a_renamed_tier_draws_other_numbers_and_the_others_keep_theirs(
    tmp_path: Path, engine: str
) -> None:
    renamed = PIPELINE.replace("  cache:", "  lookup:").replace("tier: cache", "tier: lookup")
    before = json.loads(figures(PIPELINE, tmp_path, engine))
    after = json.loads(figures(renamed, tmp_path, engine))
    assert after["tiers"]["lookup"]["utilization"] != before["tiers"]["cache"]["utilization"]
    assert after["tiers"]["db"] == before["tiers"]["db"]


def test_a_tier_and_a_class_of_the_same_name_draw_from_different_streams() -> None:
    tier = streams.tier_stream(3, 0, "web", streams.ARRIVALS).random(4)
    traffic = streams.class_stream(3, 0, "web", streams.ARRIVALS).random(4)
    per_class = streams.tier_class_stream(3, 0, "web", streams.ARRIVALS, "web").random(4)
    assert len({tuple(tier), tuple(traffic), tuple(per_class)}) == 3


def test_a_tiers_per_class_service_streams_differ_by_class_name() -> None:
    web = streams.tier_class_stream(3, 0, "app", streams.SERVICE, "web").random(4)
    batch = streams.tier_class_stream(3, 0, "app", streams.SERVICE, "batch").random(4)
    assert tuple(web) != tuple(batch)


def test_a_names_stream_is_the_same_under_any_python_hash_seed() -> None:
    """Python's own hash() of a string changes from process to process; the key must not."""
    code = (
        "from capsim.engine import streams;"
        "print(streams.tier_stream(3, 1, 'app@eu-west', streams.SERVICE).random(3).tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": salt},
        ).stdout
        for salt in ("1", "2")
    }
    assert len(outputs) == 1 and outputs.pop().startswith("[0.")


#: A tier copied into two regions (`app@eu`, `app@us`): each copy keys its streams by its full
#: model name, so the copies draw apart and the order of `tiers:` still does not matter.
REGIONS = """\
name: two-regions
seed: 3
simulation: {duration: 6s, warmup: 1s, replications: 2}
regions:
  eu: {rtt: {us: 70ms}}
  us: {}
traffic:
  orders: {entry: app, rate: 40/s}
tiers:
  app:
    concurrency: 20
    service_time: {dist: exponential, mean: 10ms}
    calls: [db]
  db: {type: database, primary: eu, concurrency: 20, service_time: {dist: exponential, mean: 5ms}}
"""


def test_region_copies_draw_apart_and_do_not_depend_on_the_order_of_tiers(
    tmp_path: Path,
) -> None:
    app = "  app:\n    concurrency: 20\n    service_time: {dist: exponential, mean: 10ms}\n"
    app += "    calls: [db]\n"
    reordered = REGIONS.replace(app, "") + app
    assert reordered != REGIONS
    before = json.loads(figures(REGIONS, tmp_path, "events"))
    assert before["tiers"]["app@eu"]["utilization"] != before["tiers"]["app@us"]["utilization"]
    assert figures(reordered, tmp_path, "events") == json.dumps(before, sort_keys=True)


#: Two classes of constant arrivals that always meet at the same instant at one worker: the
#: one that goes first waits for nothing (4 ms), the other waits for it (8 ms).
TIED = """\
name: tied
simulation: {{duration: 20s, warmup: 1s}}
traffic:
  {first}: {{entry: app, rate: 10/s, arrivals: constant}}
  {second}: {{entry: app, rate: 10/s, arrivals: constant}}
tiers:
  app: {{concurrency: 1, service_time: 4ms}}
"""


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("first,second", [("zulu", "alpha"), ("alpha", "zulu")])
def test_simultaneous_arrivals_still_run_in_declaration_order_not_name_order(
    tmp_path: Path, engine: str, first: str, second: str
) -> None:
    """Names decide the draws and, on the vectorised path, the order of sums; they do not
    decide who goes first at a tie. The event path starts the classes in their declaration
    order and the vectorised path must follow it, whatever the names sort to."""
    latency = json.loads(figures(TIED.format(first=first, second=second), tmp_path, engine))
    means = {name: latency["classes"][name]["latency"]["mean"] for name in (first, second)}
    assert means[first] == pytest.approx(0.004, rel=1e-9)
    assert means[second] == pytest.approx(0.008, rel=1e-9)
