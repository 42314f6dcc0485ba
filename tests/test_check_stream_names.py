"""A harmless refactor meets the CI gate: a tier added in the middle of `tiers:`.

capsim keys each tier's and class's random streams by its name, so a tier inserted (or moved)
before others leaves every other tier's random numbers as they were: an unchanged system passes
the gate exactly, with every change 0%. Only a rename changes a tier's numbers, and the gate
says so when names left and others came under the same seed.
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


RENAMED = PIPELINE.replace("calls: [db]", "calls: [store]").replace("  db:", "  store:")


def test_a_tier_inserted_before_others_changes_none_of_their_figures(tmp_path: Path) -> None:
    outcome = check_against_baseline(tmp_path, INSERTED)
    assert outcome["regressions"]
    assert all(check["current"] == check["baseline"] for check in outcome["regressions"])
    assert all(check["status"] == "pass" for check in outcome["regressions"])
    assert not [note for note in outcome["notes"] if "random numbers" in note]


def test_a_tier_appended_after_the_others_changes_nothing_and_needs_no_note(
    tmp_path: Path,
) -> None:
    outcome = check_against_baseline(tmp_path, APPENDED)
    assert all(check["current"] == check["baseline"] for check in outcome["regressions"])
    assert not [note for note in outcome["notes"] if "random numbers" in note]


def test_a_renamed_tier_is_named_as_drawing_other_random_numbers(tmp_path: Path) -> None:
    outcome = check_against_baseline(tmp_path, RENAMED)
    renamed = [note for note in outcome["notes"] if "random numbers" in note]
    assert len(renamed) == 1, outcome["notes"]
    assert renamed[0].startswith("tier 'store' in place of 'db' of the baseline")
    assert "by its name" in renamed[0] and "refresh the baseline" in renamed[0]


def test_a_baseline_of_another_seed_gets_no_rename_note(tmp_path: Path) -> None:
    """Another seed draws other numbers everywhere: a rename is not the cause to name."""
    outcome = check_against_baseline(tmp_path, RENAMED.replace("seed: 3", "seed: 4"))
    assert not [note for note in outcome["notes"] if "keys each" in note]
    # What is said instead: the two runs share no random numbers, so nothing is paired.
    assert [note for note in outcome["notes"] if "does not share its random numbers" in note]


def test_compare_pairs_every_tier_of_a_scenario_with_an_inserted_tier_exactly(
    tmp_path: Path,
) -> None:
    """`capsim compare` pairs replications through common random numbers; a tier inserted in
    the middle keeps them for every other tier, so with nothing else changed no figure moves."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(PIPELINE)
    second.write_text(INSERTED)
    result = invoke(["compare", str(first), str(second), "--format", "json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["paired"] is True
    assert outcome["tiers"]["db"]["utilization"]["diff"] == 0
    assert outcome["tiers"]["app"]["utilization"]["diff"] == 0
    assert not [note for note in outcome["notes"] if "random numbers" in note]


def test_compare_names_a_renamed_tier_against_a(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(PIPELINE)
    second.write_text(RENAMED)
    result = invoke(["compare", str(first), str(second), "--format", "json"])
    assert result.exit_code == 0, result.output
    renamed = [note for note in json.loads(result.stdout)["notes"] if "random numbers" in note]
    assert len(renamed) == 1 and renamed[0].startswith("tier 'store' in place of 'db' of A")
    assert "refresh the baseline" not in renamed[0]
