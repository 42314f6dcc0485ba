"""Stories of a planner who tried capsim on a ticket-sales API and an event-ingest pipeline.

The scenarios are theirs (tests/stories/booking.yaml and ingest.yaml, as written); each test is
one figure or message that misled them, with the figure a planner computes by hand.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()
STORIES = Path(__file__).parent / "stories"
BOOKING = str(STORIES / "booking.yaml")
INGEST = str(STORIES / "ingest.yaml")


def test_a_typo_in_a_tier_name_under_set_names_the_tier_not_a_missing_service_time() -> None:
    # `--set tiers.ap.instances=4` said "booking.yaml:22:1: tiers.ap.service_time: missing
    # required key": a new tier was invented from the typo.
    result = runner.invoke(app, ["validate", BOOKING, "--set", "tiers.ap.instances=4"])
    assert result.exit_code == 2
    assert "unknown tier 'ap'; did you mean 'app'?" in result.output
    assert "tiers.app.<key>" in result.output and "tiers.pg.<key>" in result.output
    assert "service_time" not in result.output


def test_set_still_adds_a_whole_new_tier_and_changes_a_class_rate() -> None:
    new_tier = "tiers.hook={type: service, service_time: 5ms}"
    result = runner.invoke(app, ["validate", BOOKING, "--set", new_tier])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", BOOKING, "--set", "traffic.brows.rate=10/s"])
    assert result.exit_code == 2
    assert "unknown traffic class 'brows'; did you mean 'browse'?" in result.output
