"""Cold caches: an LRU simulated key by key from empty, its hit ratio rising to Che's value."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.runner import choose_path
from capsim.model.build import che_hit_ratio
from capsim.model.types import Call, ColdLru
from capsim.scenario import validate_file
from modelkit import const, model, open_class, tier

runner = CliRunner()


def test_a_cold_lru_warms_up_from_empty_and_converges_to_ches_hit_ratio():
    # 20,000 entries over 10^6 Zipf(0.9) keys at 2000 lookups/s: about 10 s to fill.
    capacity, keys, zipf = 20_000, 1_000_000, 0.9
    che = che_hit_ratio(capacity, keys, zipf)
    m = model(
        [
            tier("cache", const(0.0), kind="cache", concurrency=10_000, calls=(Call(1, 0.5),)),
            tier("origin", const(0.0), concurrency=10_000),
        ],
        [open_class("web", 0, 2000.0)],
        duration=100.0,
    )
    cache = replace(m.tiers[0], cold_lru=ColdLru(capacity, keys, zipf), hit_ratio=che)
    m = replace(m, tiers=(cache, m.tiers[1]), timeseries=True, timeseries_bucket=5.0)
    result = run_events(m, 0)
    data = summarise(m, [result], capsim_version="test").data
    series = np.asarray(data["timeseries"]["tiers"]["cache"]["hit_ratio"])
    assert series[0] < 0.7 * che  # the first 5 s: an empty cache misses most
    assert series[4:].mean() == pytest.approx(che, rel=0.02)  # 20-100 s: Che's 0.4586
    # Every miss, and only a miss, goes to the origin.
    cold = result.tiers[0]
    assert result.tiers[1].arrivals == cold.cache_lookups - cold.cache_hits
    assert data["tiers"]["cache"]["cold_cache"]["steady_state"] == pytest.approx(che)


SCENARIO = """\
name: cold
simulation: {{duration: 10s, warmup: 0s}}
traffic:
  web: {{entry: cache, rate: 500/s}}
tiers:
  cache:
    type: cache
    service_time: 1ms
    hit_ratio: {{{hit_ratio}}}
    on_miss: db
  db: {{service_time: 5ms, concurrency: 8}}
"""


def write(tmp_path: Path, hit_ratio: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(hit_ratio=hit_ratio))
    return path


def test_a_cold_cache_scenario_runs_on_events_with_its_hit_ratio_per_bucket(tmp_path):
    path = write(tmp_path, "model: lru, capacity: 100, keys: 1000, zipf: 1.0, cold: true")
    m = capsim.build_model(capsim.load_scenario(path))
    assert m.tiers[0].cold_lru == ColdLru(100, 1000, 1.0) and m.timeseries
    assert choose_path(m) == (
        "events",
        "tier 'cache' is a cold cache, whose hit ratio rises as it fills",
    )
    data = capsim.run_file(path).data
    assert len(data["timeseries"]["tiers"]["cache"]["hit_ratio"]) == len(data["timeseries"]["t"])
    assert 0.0 < data["tiers"]["cache"]["cold_cache"]["hit_ratio"] < 1.0


@pytest.mark.parametrize(
    ("hit_ratio", "path", "message"),
    [
        (
            "model: lru, capacity: 10, keys: 3000000, zipf: 1, cold: true",
            "tiers.cache.hit_ratio.keys",
            "at most 2000000",
        ),
        (
            "model: lru, capacity: 10, keys: 100, zipf: 1, cold: maybe",
            "tiers.cache.hit_ratio.cold",
            "maybe",
        ),
    ],
)
def test_bad_cold_cache_settings_are_refused_with_their_location(
    tmp_path: Path, hit_ratio: str, path: str, message: str
) -> None:
    scenario = write(tmp_path, hit_ratio)
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output
