"""A harmless refactor meets the CI gate: a tier added in the middle of `tiers:`.

capsim keys each tier's and class's random streams by its position in the scenario, so a tier
inserted (or moved) before others gives those others other random numbers: their figures move
by noise although nothing about their capacity changed, and a noisy figure can fail the gate as
inconclusive. The gate cannot tell that noise from a regression by the figures alone, but it
can tell that the positions moved, and must say so, with what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from capsim.cli.app import app

runner = CliRunner()
PLAIN_ENV: dict[str, str | None] = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None}

PIPELINE = """\
name: pipeline
seed: 3
simulation: {duration: 10s, warmup: 1s, replications: 3}
traffic:
  web: {entry: app, rate: 100/s}
tiers:
  app:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
    calls: [db]
  db: {type: database, concurrency: 2, service_time: {dist: exponential, mean: 5ms}}
"""
IDLE_TIER = "  thumbs: {type: service, service_time: 5ms}\n"
#: A developer adds a tier nothing calls yet, between app and db (no capacity effect).
INSERTED = PIPELINE.replace("  db:", IDLE_TIER + "  db:")
#: The same tier, added after every other.
APPENDED = PIPELINE + IDLE_TIER


def invoke(args: list[str]) -> Result:
    return runner.invoke(app, args, env=PLAIN_ENV)


def check_against_baseline(tmp_path: Path, changed: str) -> dict:
    original = tmp_path / "pipeline.yaml"
    original.write_text(PIPELINE)
    baseline = tmp_path / "baseline.json"
    made = invoke(["run", str(original), "--format", "json", "--output", str(baseline)])
    assert made.exit_code == 0, made.output
    scenario = tmp_path / "changed.yaml"
    scenario.write_text(changed)
    result = invoke(["check", str(scenario), "--baseline", str(baseline), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def figure(outcome: dict, name: str) -> dict:
    return next(check for check in outcome["regressions"] if check["check"] == name)


def test_a_tier_inserted_before_others_is_named_as_the_cause_of_their_noise(
    tmp_path: Path,
) -> None:
    outcome = check_against_baseline(tmp_path, INSERTED)
    db = figure(outcome, "tier db utilization")
    assert db["current"] != db["baseline"]  # other random numbers, the same capacity
    moved = [note for note in outcome["notes"] if "position" in note]
    assert len(moved) == 1, outcome["notes"]
    assert moved[0].startswith("tier 'db' sits at another position")
    assert "'app'" not in moved[0]  # app kept its place and its random numbers
    assert "random" in moved[0] and "refresh the baseline" in moved[0]


def test_a_tier_appended_after_the_others_changes_nothing_and_needs_no_note(
    tmp_path: Path,
) -> None:
    outcome = check_against_baseline(tmp_path, APPENDED)
    assert all(check["current"] == check["baseline"] for check in outcome["regressions"])
    assert not [note for note in outcome["notes"] if "position" in note]


def test_a_baseline_of_another_seed_gets_no_position_note(tmp_path: Path) -> None:
    """Another seed draws other numbers everywhere: positions are not the cause to name."""
    outcome = check_against_baseline(tmp_path, INSERTED.replace("seed: 3", "seed: 4"))
    assert not [note for note in outcome["notes"] if "position" in note]


def test_compare_names_the_moved_tier_whose_common_random_numbers_are_lost(
    tmp_path: Path,
) -> None:
    """`capsim compare` pairs replications through common random numbers; a tier that moved
    does not share them, and its difference is noise as much as change."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(PIPELINE)
    second.write_text(INSERTED)
    result = invoke(["compare", str(first), str(second), "--format", "json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["paired"] is True
    assert outcome["tiers"]["db"]["utilization"]["diff"] != 0
    assert outcome["tiers"]["app"]["utilization"]["diff"] == 0
    moved = [note for note in outcome["notes"] if "position" in note]
    assert len(moved) == 1 and moved[0].startswith("tier 'db' sits at another position")
    assert "than in A" in moved[0] and "refresh the baseline" not in moved[0]
