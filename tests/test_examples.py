"""Every example in scenarios/ is a valid scenario that runs, through the library and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import capsim

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../src/capsim/schema/scenario.schema.json"
# Examples are sized for a few seconds; the suite runs each for a fraction of that.
SHORT = ["simulation.duration=5s", "simulation.warmup=1s"]
TIER_TYPES = {"service", "load_balancer", "cache", "cdn", "database", "queue"}


def capsim_executable() -> str:
    """The `capsim` console script of the Python running the tests (or the one on PATH)."""
    beside_python = Path(sys.executable).with_name("capsim")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("capsim")
    assert found, "the capsim console script is not installed (pip install -e .)"
    return found


def ids(path: Path) -> str:
    return path.name


def test_there_is_an_example_for_every_tier_type_and_a_closed_loop() -> None:
    names = {path.stem for path in SCENARIOS}
    expected = {"web-shop", "closed-loop", *(kind.replace("_", "-") for kind in TIER_TYPES)}
    assert expected <= names, f"missing examples: {sorted(expected - names)}"


@pytest.mark.parametrize("path", SCENARIOS, ids=ids)
def test_every_example_points_editors_at_the_schema(path: Path) -> None:
    assert path.read_text().splitlines()[0] == SCHEMA_LINE


@pytest.mark.parametrize("path", SCENARIOS, ids=ids)
def test_every_example_runs_through_the_library(path: Path) -> None:
    scenario = capsim.load_scenario(path)
    model = capsim.build_model(scenario)
    short = capsim.build_model(capsim.load_scenario(path, SHORT))
    report = capsim.simulate(short)
    data = report.data
    assert data["duration"] == pytest.approx(5.0)
    # The short run's own classes: clients a region fault moves after the short run ends have
    # no class of their own in it (docs/regions.md).
    assert set(data["classes"]) == {traffic.name for traffic in short.classes}
    assert {c.name for c in short.classes} <= {c.name for c in model.classes}
    for name, figures in data["classes"].items():
        if not short.classes[short.class_index[name]].is_closed:
            assert figures["completed"] > 0, f"{path.name}: class {name} completed nothing"
    for name in data["tiers"]:
        assert 0.0 <= data["tiers"][name]["utilization"] <= 1.0
    assert len(data["slos"]) == len(short.slos)


@pytest.mark.parametrize("path", SCENARIOS, ids=ids)
def test_every_example_validates_and_runs_from_the_command_line(path: Path) -> None:
    executable = capsim_executable()
    validated = subprocess.run(
        [executable, "validate", str(path)], capture_output=True, text=True, timeout=120
    )
    assert validated.returncode == 0, validated.stderr
    sets = [arg for override in SHORT for arg in ("--set", override)]
    ran = subprocess.run(
        [executable, "run", str(path), *sets, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    data = json.loads(ran.stdout)
    assert data["scenario"] == capsim.load_scenario(path).name


def test_the_command_line_validates_all_examples_at_once() -> None:
    validated = subprocess.run(
        [capsim_executable(), "validate", *map(str, SCENARIOS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.count(": ok") == len(SCENARIOS)
