"""`capsim size` never exits 0 with an answer that failed its own verification.

With `--redundancy n+1` the answer runs one more instance than the search measured with one
lost. Here the front tier drops what it cannot take (`max_queue: 0`, an Erlang loss system),
so the extra instance lets more traffic through to a fixed database, whose utilization SLO then
fails at the answer. `size` printed "verified by simulation ...: NO" and exited 0, so a script
took the answer for a sized fleet. It now shows the answer and exits 1 naming the objective.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

LOSSY = """\
name: lossy
seed: 3
simulation: {duration: 20s, replications: 3}
traffic:
  requests: {entry: app, rate: 300/s}
tiers:
  app:
    instances: 4
    concurrency: 1
    max_queue: 0
    blocking: false
    service_time: {dist: exponential, mean: 10ms}
    cost: {per_instance_hour: 0.5}
    sizing: {of: instances, min: 1, max: 20}
    calls: [db]
  db:
    concurrency: 1
    service_time: {dist: exponential, mean: 3ms}
    sizing: fixed
slos:
  - {class: requests, error_rate: 30%}
  - {tier: db, utilization: 75%}
"""


@pytest.mark.parametrize("fmt", ["json", "table", "csv", "markdown"])
def test_an_answer_failing_its_verification_exits_1_naming_the_objective(
    tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / "lossy.yaml"
    path.write_text(LOSSY)
    result = runner.invoke(app, ["size", str(path), "--redundancy", "n+1", "--format", fmt])
    assert result.exit_code == 1, result.output
    assert "failed its own verification" in result.stderr
    assert "db utilization <= 75%" in result.stderr
    assert result.stdout.strip(), "the answer is still shown"
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["verified"] is False
        assert data["verification"]["failures"][0].startswith("db utilization <= 75%")
