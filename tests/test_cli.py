"""The command line as a user meets it: help text, exit codes, streams."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

SMALL = """\
name: tiny
seed: 3
simulation: {duration: 20s, warmup: 2s}
traffic:
  web: {entry: app, rate: 50/s}
tiers:
  app: {type: service, concurrency: 2, service_time: {dist: exponential, mean: 10ms}}
slos:
  - {class: web, p99: 1s}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SMALL)
    return path


COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands if c.callback)
CLI_DOCS = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()


def test_the_spec_commands_are_all_there() -> None:
    spec = {
        "run",
        "validate",
        "schema",
        "solve",
        "saturate",
        "size",
        "sweep",
        "compare",
        "check",
        "report",
    }
    assert spec <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_and_has_a_section_in_the_cli_docs(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    assert f"`capsim {command}" in CLI_DOCS


def test_run_prints_json_that_parses_and_names_the_scenario(tiny: Path) -> None:
    result = runner.invoke(app, ["run", str(tiny), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scenario"] == "tiny"
    assert data["classes"]["web"]["completed"] > 0
    assert data["slos"][0]["passed"] is True


def test_shortcuts_and_set_change_the_run(tiny: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            str(tiny),
            "--format",
            "json",
            "--seed",
            "9",
            "--duration",
            "10s",
            "--set",
            "traffic.web.rate=20/s",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["seed"] == 9
    assert data["duration"] == 10.0
    assert data["classes"]["web"]["offered_rate"] == pytest.approx(20.0, rel=0.3)


@pytest.mark.parametrize(
    ("command", "typed", "fragments"),
    [
        (["validate"], ["--set", "tiers.nope.instances=2"], ["no tier 'nope'", "its tiers are app:", "tiers.app.instances=2", "tiers.nope={...}"]),
        (["run"], ["--set", "traffic.nope.rate=5/s"], ["no traffic class 'nope'", "its traffic classes are web:", "traffic.web.rate=5/s"]),
        (["run"], ["--duration", "10parsecs"], ["unknown duration unit 'parsecs'", "valid units: us, ms, s"]),
        (["check"], ["--duration", "10parsecs"], ["unknown duration unit 'parsecs'", "valid units: us, ms, s"]),
        (["run"], ["--seed", "-1"], ["-1 is negative", "such as 42"]),
        (["sweep"], ["--vary", "traffic.web.rate=10/s..20/s:2", "--set", "tiers.nope.instances=2"], ["no tier 'nope'", "its tiers are app:"]),
    ],
    ids=["new-tier-by-a-key", "new-class-by-a-key", "run-duration", "check-duration", "seed", "sweep-set"],
)  # fmt: skip
def test_a_bad_override_names_what_the_user_typed_and_what_would_be_valid(
    tiny: Path, command: list[str], typed: list[str], fragments: list[str]
) -> None:
    # The problem is reported at what the user typed (the --set, or the shortcut option: not
    # the `--set simulation.duration=...` it stands for, nor the scenario's `tiers:` line).
    result = runner.invoke(app, [*command, str(tiny), *typed])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    typed_text = " ".join(typed[-2:])
    assert message.startswith(f"error: {typed_text}: "), message
    assert not re.search(r"tiny\.yaml:\d", message) and "--set simulation" not in message
    for fragment in fragments:
        assert fragment in message


def test_output_file_gets_the_result_and_stdout_stays_empty(tiny: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["run", str(tiny), "--format", "json", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(target.read_text())["scenario"] == "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "tiny.yaml"]


def test_a_broken_scenario_exits_2_with_its_location_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("concurrency: 2", "concurency: 2"))
    result = subprocess.run(
        [sys.executable, "-m", "capsim", "run", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:7:" in result.stderr
    assert "concurrency" in result.stderr  # the did-you-mean hint
    assert result.stdout == ""


def test_validate_reports_every_file(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SMALL.replace("rate: 50/s", "rate: -5/s").replace("concurrency: 2", "concurrency: 0")
    )
    result = runner.invoke(app, ["validate", str(tiny), str(bad)])
    assert result.exit_code == 2
    assert f"{tiny}: ok" in result.stdout
    assert "rate" in result.stderr and "concurrency" in result.stderr


def test_schema_is_json_schema_for_the_scenario_format() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "properties" in schema
    assert {"name", "traffic", "tiers"} <= set(schema["properties"])


def test_missing_file_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "capsim", "run", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nope.yaml" in result.stderr
