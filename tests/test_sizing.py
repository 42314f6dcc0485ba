"""`capsim size`: the cheapest capacity meeting every SLO, verified and minimal.

An M/M/c pool (10 ms exponential service, 320/s) has an exact p99 by Erlang C: c = 4 gives
68.9 ms and c = 5 about 49 ms, so for p99 <= 60 ms the minimal pool is 5 workers.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import capsim
from capacitykit import mmc_scenario
from capsim.analysis.formulas import mmc
from capsim.analysis.sizing import (
    SizingError,
    parse_headroom,
    parse_load,
    parse_redundancy,
    size_tiers,
)
from capsim.cli.app import app
from capsim.errors import UsageError

runner = CliRunner()


def sized(path, **options):
    model = capsim.build_model(capsim.load_scenario(path))
    return size_tiers(model, capsim_version=capsim.__version__, **options)


def least_servers(rate: float, limit: float) -> int:
    c = 1
    while c <= rate * 0.010 or (mmc(c, rate, 0.010).sojourn_quantile(0.99) or 1e9) > limit:
        c += 1
    return c


def test_a_pool_is_sized_to_the_least_workers_erlang_c_allows(tmp_path):
    result = sized(mmc_scenario(tmp_path))
    assert least_servers(320, 0.060) == 5
    server = result["tiers"]["server"]
    assert server["sized"] == "concurrency"
    assert server["concurrency"] == 5
    assert server["one_fewer"]["value"] == 4
    assert server["one_fewer"]["meets_slos"] is False
    assert "p99" in server["one_fewer"]["reason"]
    # The evidence is in the objective's unit (Erlang C gives 68.9 ms at c = 4), not in bare seconds.
    assert re.search(
        r"requests p99 <= 60ms \(observed \d+(\.\d+)?ms", server["one_fewer"]["reason"]
    )
    assert result["verified"] is True
    assert result["total_cost_per_hour"] == pytest.approx(0.5)
    # 0.5 per hour for 320 x 3600 requests per hour.
    assert result["cost_per_million_requests"] == pytest.approx(0.5 / (320 * 3600 / 1e6), rel=0.03)


def test_twice_the_load_needs_the_pool_erlang_c_gives_for_640_per_second(tmp_path):
    result = sized(mmc_scenario(tmp_path), load=2.0)
    assert result["tiers"]["server"]["concurrency"] == least_servers(640, 0.060)


def test_headroom_caps_the_occupancy_of_every_sized_tier(tmp_path):
    # 3.2 busy workers on average: at most 50% busy needs 7 workers (6 would be 53%).
    result = sized(mmc_scenario(tmp_path), headroom=0.5)
    assert result["tiers"]["server"]["concurrency"] == 7
    assert any("headroom" in v["slo"] for v in result["slos"])


def test_instances_with_cost_and_n_plus_1_keep_the_slos_with_one_instance_lost(tmp_path):
    path = mmc_scenario(
        tmp_path,
        servers=1,
        rate=150,
        sizing="{min: 1, max: 20}",
        slos="  - {class: requests, p99: 120ms}",
    )
    plain = sized(path)
    redundant = sized(path, redundancy=1)
    n = plain["tiers"]["server"]["instances"]
    assert redundant["tiers"]["server"]["instances"] == n + 1
    assert redundant["total_cost_per_hour"] == pytest.approx(0.5 * (n + 1))
    assert redundant["slos_after_loss"] and all(v["passed"] for v in redundant["slos_after_loss"])
    assert plain["tiers"]["server"]["one_fewer"]["meets_slos"] is False


def test_an_objective_no_capacity_can_meet_is_reported(tmp_path):
    # p99 of the service time alone is ln(100) x 10 ms = 46 ms: 40 ms is out of reach.
    path = mmc_scenario(tmp_path, sizing="{of: concurrency, min: 1, max: 8}",
                        slos="  - {class: requests, p99: 40ms}")  # fmt: skip
    with pytest.raises(SizingError, match=r"sizing\.max"):
        sized(path)
    result = runner.invoke(app, ["size", str(path)])
    assert result.exit_code == 1
    assert "no capacity within the sizing limits" in result.stderr


def test_written_scenario_validates_and_resizes_to_itself(tmp_path):
    path = mmc_scenario(tmp_path, servers=2)
    written = tmp_path / "sized.yaml"
    result = runner.invoke(app, ["size", str(path), "--write", str(written), "-f", "json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert "concurrency: 5" in written.read_text()
    assert runner.invoke(app, ["validate", str(written)]).exit_code == 0
    again = json.loads(runner.invoke(app, ["size", str(written), "-f", "json"]).stdout)
    assert again["tiers"]["server"]["concurrency"] == first["tiers"]["server"]["concurrency"]
    assert again["tiers"]["server"]["was"] == 5
    for key in ("total_cost_per_hour", "cost_per_million_requests", "slos", "verified"):
        assert key in first


def test_fixed_tiers_are_left_alone(tmp_path):
    path = mmc_scenario(tmp_path, sizing="fixed")
    with pytest.raises(UsageError, match="nothing to size"):
        sized(path)


@pytest.mark.parametrize(
    ("text", "factor"), [("2x", 2.0), ("1.5", 1.5), ("150%", 1.5), ("640/s", 2.0), ("0.5X", 0.5)]
)
def test_load_values(text, factor):
    assert parse_load(text, 320.0) == pytest.approx(factor)


@pytest.mark.parametrize("text", ["double", "-2x", "0", "5/fortnight"])
def test_bad_load_values_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_load(text, 320.0)


def test_headroom_and_redundancy_values():
    assert parse_headroom("30%") == pytest.approx(0.3)
    assert parse_headroom("0.25") == pytest.approx(0.25)
    assert parse_redundancy("n+1") == 1
    assert parse_redundancy("N") == 0
    for bad in ("100%", "lots"):
        with pytest.raises(UsageError):
            parse_headroom(bad)
    with pytest.raises(UsageError):
        parse_redundancy("n+2")


def test_bad_options_exit_2(tmp_path):
    path = mmc_scenario(tmp_path)
    for option in (["--load", "lots"], ["--headroom", "120%"], ["--redundancy", "2n"]):
        result = runner.invoke(app, ["size", str(path), *option])
        assert result.exit_code == 2, option
        assert "error:" in result.stderr


def test_sizing_keys_are_validated_with_a_location(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ntraffic:\n  r: {entry: app, rate: 1/s}\ntiers:\n"
        "  app: {service_time: 1ms, sizing: {of: replicas}, cost: {per_instance_hour: -1}}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "bad.yaml:5:" in result.stderr
    assert "cannot be sized by replicas" in result.stderr or "per_instance_hour" in result.stderr
