"""A forecast's dates come from the same verdicts as `capsim saturate`'s, not from noise.

`capsim forecast` used to measure its points with one replication by default: no 95% interval,
each objective judged on its figure alone. A payments platform read its first SLO breach at
4,171/s from the forecast against 4,028/s from `capsim saturate` — 22 days late — and a plan
step sized to 87% occupancy with its p99 right at the limit. The forecast now runs the
replications `saturate` and `size` run (3), so the same scenario gives the same rates.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from capacitykit import mmc_scenario
from capsim.cli.app import app

runner = CliRunner()


def capsim_json(*arguments: str) -> dict:
    result = runner.invoke(app, [*arguments, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_forecast_breaks_and_saturates_at_the_rates_saturate_finds(tmp_path: Path) -> None:
    path = mmc_scenario(tmp_path, rate=200, duration="20s")
    saturate = capsim_json("saturate", str(path))
    forecast = capsim_json(
        "forecast", str(path), "--from", "2027-01-01", "--growth", "10%/month",
        "--horizon", "12mo", "--no-plan",
    )  # fmt: skip
    assert forecast["first_slo_breach"]["rate"] == saturate["max_rate_meeting_slos"]
    assert (
        forecast["tiers"]["server"]["saturation_rate"]
        == (saturate["tiers"]["server"]["max_rate_low"])
    )
    assert not any("one replication" in note for note in forecast["notes"])


def test_one_replication_is_still_allowed_and_the_notes_say_what_it_costs(
    tmp_path: Path,
) -> None:
    path = mmc_scenario(tmp_path, rate=200, duration="20s")
    forecast = capsim_json(
        "forecast", str(path), "--from", "2027-01-01", "--growth", "10%/month",
        "--horizon", "12mo", "--no-plan", "--replications", "1",
    )  # fmt: skip
    assert any("one replication per point (--replications 1)" in n for n in forecast["notes"])
