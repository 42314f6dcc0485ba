"""CDN edge locations: each edge caches on its own share of the requests; one shield behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.cli.app import app
from capsim.model.build import che_hit_ratio, ttl_hit_ratio
from capsim.scenario import validate_file

runner = CliRunner()

SCENARIO = """\
name: edges
simulation: {{duration: 10s, warmup: 0s}}
traffic:
  web: {{entry: cdn, rate: 1000/s}}
tiers:
  cdn:
    type: cdn
    concurrency: 100
    {edges}hit_ratio: {{{edge}}}
    origin_shield: {{hit_ratio: {{{shield}}}}}
    on_miss: origin
  origin: {{service_time: 5ms, concurrency: 64}}
"""

TTL = "model: ttl, ttl: 10s, keys: 100000, zipf: 0.8"
SMALL = "model: lru, capacity: 100, keys: 100000, zipf: 0.8"


def write(tmp_path: Path, edge: str, shield: str = TTL, edges: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(edge=edge, shield=shield, edges=edges))
    return path


def hit_ratios(path: Path) -> tuple[float, float]:
    m = capsim.build_model(capsim.load_scenario(path))
    edge, shield = m.tier("cdn"), m.tier("cdn.origin_shield")
    assert edge.hit_ratio is not None and shield.hit_ratio is not None
    return edge.hit_ratio, shield.hit_ratio


def test_ttl_edges_each_see_their_share_and_the_shield_sees_the_union_of_their_misses(tmp_path):
    one_edge, one_shield = hit_ratios(write(tmp_path, TTL))
    four_edges, four_shield = hit_ratios(write(tmp_path, TTL, edges="edges: 4\n    "))
    assert four_edges == pytest.approx(ttl_hit_ratio(250.0, 10.0, 100_000, 0.8, False))
    assert four_edges < one_edge  # each edge sees 250/s, not 1000/s
    # The shield receives every edge's misses: 1000 x (1 - h_edge) a second in all.
    shield_rate = 1000.0 * (1.0 - four_edges)
    assert four_shield == pytest.approx(ttl_hit_ratio(shield_rate, 10.0, 100_000, 0.8, False))
    assert four_shield > one_shield  # more misses reach it, so it is warmer
    # Less traffic past the edges overall with one big cache than with four small ones.
    assert (1 - one_edge) * (1 - one_shield) < (1 - four_edges) * (1 - four_shield)


def test_an_lru_edge_keeps_ches_hit_ratio_whatever_its_share(tmp_path):
    lru = "model: lru, capacity: 1000, keys: 100000, zipf: 0.8"
    edge, _ = hit_ratios(write(tmp_path, lru, edges="edges: 4\n    "))
    assert edge == pytest.approx(che_hit_ratio(1000, 100_000, 0.8))


def test_cold_lru_edges_fill_separately_so_the_cdn_warms_up_slower(tmp_path):
    cold = "model: lru, capacity: 2000, keys: 100000, zipf: 0.8, cold: true"
    single = capsim.run_file(write(tmp_path, cold, shield=SMALL)).data
    spread = capsim.run_file(write(tmp_path, cold, shield=SMALL, edges="edges: 4\n    ")).data
    # The first second (ten 0.1 s buckets): four empty caches, each filled by a quarter of
    # the lookups, hit less than one.
    first = [sum(d["timeseries"]["tiers"]["cdn"]["hit_ratio"][:10]) / 10 for d in (single, spread)]
    assert first[1] < 0.8 * first[0]
    che = che_hit_ratio(2000, 100_000, 0.8)
    longer = write(tmp_path, cold, shield=SMALL, edges="edges: 4\n    ")
    longer.write_text(longer.read_text().replace("10s, warmup: 0s", "60s, warmup: 10s"))
    measured = capsim.run_file(longer).data["tiers"]["cdn"]["cold_cache"]["hit_ratio"]
    assert measured == pytest.approx(che, rel=0.03)  # each edge converges to Che's value


@pytest.mark.parametrize(
    ("edges", "path", "message"),
    [
        ("edges: 0\n    ", "tiers.cdn.edges", "positive integer"),
        ("edges: many\n    ", "tiers.cdn.edges", "many"),
    ],
)
def test_bad_edges_are_refused_with_their_location(
    tmp_path: Path, edges: str, path: str, message: str
) -> None:
    scenario = write(tmp_path, TTL, edges=edges)
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_cache_tier_has_no_edges(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: c\ntraffic:\n  web: {entry: c, rate: 10/s}\n"
        "tiers:\n  c: {type: cache, hit_ratio: 50%, edges: 2}\n"
    )
    problems = validate_file(path, [])
    assert [p.path for p in problems] == ["tiers.c.edges"]
