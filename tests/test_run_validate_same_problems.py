"""`run` and `validate` report the same problems, each in the user's own words.

A new user's bad file got 3 problems from `capsim validate` and 2 from `capsim run`: the run
left out the unknown tier a call named, which `validate` reads from the raw data when the
schema fails elsewhere. And a closed class (`users`) given a `profile` was told it had "either
rate ... or users", a key the file did not have.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

THREE_PROBLEMS = """\
name: three
traffic:
  browse: {entry: app, rate: 10/s, bogus: 1}
tiers:
  app: {service_time: 5ms, calls: [nosuch], instances: -1}
"""

USERS_WITH_A_PROFILE = """\
name: shoppers
traffic:
  shoppers:
    entry: app
    users: 20
    think_time: 1s
    profile:
      - {at: 0s, rate: 10/s}
tiers:
  app: {service_time: 5ms}
"""


def _errors(*arguments: str) -> list[str]:
    result = runner.invoke(app, list(arguments))
    assert result.exit_code == 2, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_run_reports_every_problem_validate_reports(tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_PROBLEMS)
    validated = _errors("validate", str(path))
    assert len(validated) == 3
    assert any("unknown tier 'nosuch'" in line for line in validated)
    assert _errors("run", str(path)) == validated


def test_users_with_a_profile_is_told_about_the_profile_not_a_rate(tmp_path: Path) -> None:
    path = tmp_path / "shoppers.yaml"
    path.write_text(USERS_WITH_A_PROFILE)
    (message,) = _errors("validate", str(path))
    assert "either profile (open workload) or users" in message
    assert "rate" not in message.split("traffic.shoppers.users:")[1]
