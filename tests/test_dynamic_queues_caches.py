"""Priorities between classes (Cobham) and TTL caches' hit ratios (ORACLES sections 7 and 10)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import capsim
from capsim.engine.events import run_events
from capsim.model.build import ttl_hit_ratio
from capsim.scenario import validate_file
from modelkit import ProfilePoint, const, exp, model, open_class, tier


def test_a_higher_priority_request_overtakes_the_waiting_ones() -> None:
    # One worker, 1 s each. 'bulk' arrives at 0.1 s and 0.3 s, 'urgent' at 0.2 s: while the
    # first bulk request is served, urgent (0.2 s) goes before bulk (0.3 s).
    def points(*pairs: tuple[float, float]) -> tuple[ProfilePoint, ...]:
        return tuple(ProfilePoint(at, rate) for at, rate in pairs)

    bulk = points((0, 10), (0.15, 10), (0.15, 0), (0.25, 0), (0.25, 10), (0.35, 10), (0.35, 0))
    urgent = points((0, 0), (0.15, 0), (0.15, 20), (0.24, 20), (0.24, 0))
    m = model(
        [tier("app", const(1.0))],
        [
            open_class("bulk", 0, 10.0, arrivals="constant", profile=bulk),
            open_class("urgent", 0, 0.0, arrivals="constant", profile=urgent),
        ],
        duration=5.0,
    )
    m = replace(m, tiers=(replace(m.tiers[0], priorities=(1, 0)),))
    bulk_run, urgent_run = run_events(m, 0).classes
    assert (bulk_run.completed, urgent_run.completed) == (2, 1)
    assert urgent_run.latency.max == pytest.approx(1.9)  # served 1.1 - 2.1 s
    assert bulk_run.latency.max == pytest.approx(2.8)  # the second bulk one: 2.1 - 3.1 s


def test_two_class_non_preemptive_priority_matches_cobham() -> None:
    # ORACLES section 10: M/M/1, lambda = (0.2, 0.6), mu = 1: sojourns W1 = 2, W2 = 6, and
    # the conservation law sum rho_k Wq_k = 3.2.
    m = model(
        [tier("server", exp(1.0))],
        [open_class("high", 0, 0.2), open_class("low", 0, 0.6)],
        duration=300_000.0,
        warmup=2_000.0,
    )
    m = replace(m, tiers=(replace(m.tiers[0], priorities=(0, 1)),))
    high, low = run_events(m, 0).classes
    assert high.latency.mean == pytest.approx(2.0, rel=0.04)
    assert low.latency.mean == pytest.approx(6.0, rel=0.05)
    conservation = 0.2 * (high.latency.mean - 1.0) + 0.6 * (low.latency.mean - 1.0)
    assert conservation == pytest.approx(3.2, rel=0.05)


@pytest.mark.parametrize(
    ("zipf", "ttl", "non_reset", "reset"),
    [
        (0.8, 1, 0.332711, 0.384301),
        (0.8, 10, 0.651697, 0.740776),
        (0.8, 60, 0.87823, 0.968894),
        (1.0, 1, 0.531139, 0.589611),
        (1.0, 10, 0.757044, 0.81573),
        (1.0, 60, 0.901159, 0.954769),
    ],
)
def test_ttl_hit_ratios_match_the_oracle_table(zipf, ttl, non_reset, reset) -> None:
    # ORACLES section 7: M = 10^4 keys, 1000 requests/s in total.
    assert ttl_hit_ratio(1000.0, ttl, 10_000, zipf) == pytest.approx(non_reset, abs=2e-6)
    assert ttl_hit_ratio(1000.0, ttl, 10_000, zipf, reset_on_hit=True) == pytest.approx(
        reset, abs=2e-6
    )


@pytest.mark.parametrize(
    ("rate", "ttl", "non_reset", "reset"),
    [(2, 1, 0.666667, 0.864665), (0.1, 5, 0.333333, 0.393469), (10, 0.5, 0.833333, 0.993262)],
)
def test_one_key_ttl_hit_ratios_match_the_oracle(rate, ttl, non_reset, reset) -> None:
    assert ttl_hit_ratio(rate, ttl, 1, 1.0) == pytest.approx(non_reset, abs=1e-6)
    assert ttl_hit_ratio(rate, ttl, 1, 1.0, True) == pytest.approx(reset, abs=1e-6)


SCENARIO = """\
name: ttl
traffic:
  web: {{entry: edge, rate: 1000/s}}
tiers:
  edge:
    type: load_balancer
    backends: cache
  cache:
    type: cache
    hit_ratio: {{model: ttl, ttl: 10s, keys: 10000, zipf: 0.8{extra}}}
    on_miss: db
  db: {{service_time: 1ms, concurrency: 8{db}}}
"""


def test_a_ttl_cache_takes_its_request_rate_from_the_traffic(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra="", db=""))
    m = capsim.build_model(capsim.load_scenario(path))
    assert m.tier("cache").hit_ratio == pytest.approx(0.651697, abs=2e-6)
    path.write_text(SCENARIO.format(extra=", reset_on_hit: true, rate: 100/s", db=""))
    m = capsim.build_model(capsim.load_scenario(path))
    assert m.tier("cache").hit_ratio == pytest.approx(ttl_hit_ratio(100.0, 10.0, 10_000, 0.8, True))


def test_priorities_name_real_classes(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra="", db=", priorities: [web, bots]"))
    [problem] = validate_file(path, [])
    assert problem.path == "tiers.db.priorities[1]"
    assert "unknown class 'bots'" in problem.message
