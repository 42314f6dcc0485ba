"""The "worst window" of a run is a measured window, never one of the warm-up.

The results exclude the warm-up, but the worst-window line picked the bucket with the highest
p99 over the whole time series, warm-up included: a load that ramps down after a busy start
pointed a user at t = 3s of a 10 s warm-up, without saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

BUSY_WARMUP = """\
name: busy-warmup
seed: 3
simulation: {duration: 20s, warmup: 10s, replications: 2, timeseries: 1s}
traffic:
  requests:
    entry: server
    profile:
      - {at: 0s, rate: 380/s}
      - {at: 9s, rate: 380/s}
      - {at: 10s, rate: 200/s}
tiers:
  server:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
"""


def test_the_worst_window_is_after_the_warm_up_and_the_line_says_so(tmp_path: Path) -> None:
    path = tmp_path / "busy-warmup.yaml"
    path.write_text(BUSY_WARMUP)
    result = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    series = json.loads(result.stdout)["timeseries"]
    warm_up_p99 = max(p for t, p in zip(series["t"], series["classes"]["requests"]["p99"],
                                        strict=True) if t < 10 and p is not None)  # fmt: skip
    worst = series["worst"]["requests"]
    assert worst["t"] >= 10
    assert worst["p99"] < warm_up_p99  # the busy warm-up was worse, and is not reported
    table = runner.invoke(app, ["run", str(path)])
    line = next(x for x in table.stdout.splitlines() if x.startswith("worst window"))
    assert "after the 10s warm-up" in line
