"""A flash sale behind a rate-limited gateway: `capsim size` sees at once that no capacity gets
past a token bucket that refuses more than an error_rate objective allows (a rate limit is
configuration, not capacity), instead of growing every tier until its growth stalls."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.points import scale_open_traffic
from capsim.analysis.rate_limit_floor import refusal_floor
from capsim.cli.app import app
from capsim.scenario import load_scenario
from workcount import replications_started

runner = CliRunner()

# Quiet at 15/s, a 30 s sale at 300/s, quiet again; a CDN answers 20% of the requests and the
# gateway behind it passes 350/s. At 2x the sale sends 480/s to the gateway.
FLASH_SALE = """
version: 1
name: flash-sale
seed: 1
simulation: {duration: 60s, warmup: 5s, replications: 2}
traffic:
  checkout:
    entry: edge
    rate: 300/s
    profile:
      - {at: 0s, rate: 15/s}
      - {at: 20s, rate: 15/s}
      - {at: 20s, rate: 300/s}
      - {at: 50s, rate: 300/s}
      - {at: 50s, rate: 15/s}
tiers:
  edge:
    type: cdn
    concurrency: 1000
    hit_ratio: 20%
    on_miss: gateway
  gateway:
    concurrency: 200
    blocking: false
    service_time: 1ms
    rate_limit: {rate: 350/s, burst: 50}
    calls: [shop]
  shop:
    instances: 4
    concurrency: 8
    service_time: {dist: exponential, mean: 20ms}
slos:
  - {class: checkout, p99: 500ms}
  - {class: checkout, error_rate: 1%}
"""


def flash_sale(tmp_path: Path, text: str = FLASH_SALE) -> Path:
    path = tmp_path / "flash.yaml"
    path.write_text(text)
    return path


def test_size_names_the_rate_limit_of_a_flash_sale_before_simulating_anything(
    tmp_path, monkeypatch
):
    # It grew edge, gateway and shop for 4 moves of full-length runs (7 min 15 s on the
    # newcomer's flash sale), then stopped on a stall. The sale's 30 s at 480/s against 350/s
    # refuse (480 - 350) x 30 - 50 = 3,850 of the window's 18,900 requests: 20.4%.
    started = replications_started(monkeypatch)
    result = runner.invoke(app, ["size", str(flash_sale(tmp_path)), "--load", "2x"])
    assert started == []
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert (
        "no capacity meets checkout error_rate <= 1%: gateway's rate_limit (350/s, one token "
        "bucket shared by its instances) lets through at most 350/s of the 480/s reaching it "
        "at its peak, so at least 20.4% of checkout's requests are refused whatever the "
        "capacity" in message
    )
    assert "a rate limit is configuration, not capacity" in message
    assert "raise tiers.gateway.rate_limit.rate" in message
    assert "growth steps" not in message


def test_the_refused_share_matches_what_the_simulation_refuses(tmp_path):
    model = capsim.build_model(load_scenario(flash_sale(tmp_path)))
    doubled = scale_open_traffic(model, 2.0)
    floor = refusal_floor(doubled, 0, doubled.tier_index["gateway"])
    assert floor is not None
    report = capsim.simulate(doubled)
    errors = report.data["classes"]["checkout"]["error_rate"]
    assert floor.share == pytest.approx(3850 / 18900)
    assert errors == pytest.approx(floor.share, rel=0.05)


def test_a_sale_the_bucket_carries_is_sized_as_usual(tmp_path):
    # At 1x the sale sends 240/s, below the 350/s the gateway passes: nothing is refused.
    model = capsim.build_model(load_scenario(flash_sale(tmp_path)))
    floor = refusal_floor(model, 0, model.tier_index["gateway"])
    assert floor is not None and floor.share == 0.0


def test_a_retried_call_through_the_limit_is_left_to_the_simulation(tmp_path):
    # A retried attempt may find a token later: the floor is not a floor then.
    text = FLASH_SALE.replace("    on_miss: gateway\n", "    on_miss: front\n").replace(
        "  gateway:\n",
        "  front:\n    concurrency: 100\n    blocking: false\n    service_time: 1ms\n"
        "    calls: [{tier: gateway, retries: {max: 3}}]\n  gateway:\n",
    )
    model = capsim.build_model(load_scenario(flash_sale(tmp_path, text)))
    assert refusal_floor(model, 0, model.tier_index["gateway"]) is None
