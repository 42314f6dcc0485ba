"""A report without its load curve does not sell a held tier's extrapolation as its limit.

With --no-curve the summary's saturation is one run's utilization law: the load at which the
bottleneck would be fully held if its share held grew in proportion to the load. A tier whose
workers wait on calls holds them longer as the load grows, so it saturates sooner. A document
platform's --no-curve report said its ingestion queue "would saturate near 917.9/s", where
saturate's verified search measured 818/s and found 910/s overloaded.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

BLOCKING = """\
name: blocking
seed: 2
simulation: {duration: 10s, warmup: 1s}
traffic:
  web: {entry: app, rate: 200/s}
tiers:
  app:
    concurrency: 4
    service_time: {dist: exponential, mean: 2ms}
    calls: [db]
  db: {type: database, concurrency: 4, service_time: {dist: exponential, mean: 8ms}}
"""
#: The same app, freed while its calls are out: held as long as it works, db the bottleneck.
NON_BLOCKING = BLOCKING.replace("concurrency: 4\n", "concurrency: 4\n    blocking: false\n")


def summary(tmp_path: Path, text: str) -> str:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    out = tmp_path / "report.md"
    result = runner.invoke(app, ["report", str(scenario), "--no-curve", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return next(line for line in out.read_text().splitlines() if "Bottleneck:" in line)


def test_a_tier_held_through_its_calls_is_said_to_saturate_sooner_than_its_extrapolation(
    tmp_path: Path,
) -> None:
    line = summary(tmp_path, BLOCKING)
    assert line.startswith("- Bottleneck: app,")
    assert "this run's utilization-law estimate" in line
    assert "held through its calls" in line and "may saturate sooner" in line


def test_a_tier_held_only_while_it_works_gets_no_such_caveat(tmp_path: Path) -> None:
    line = summary(tmp_path, NON_BLOCKING)
    assert line.startswith("- Bottleneck: db,")
    assert "may saturate sooner" not in line
