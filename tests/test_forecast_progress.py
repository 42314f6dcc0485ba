"""A forecast in a CI log: its capacity plan, the longest part, says how far it is.

`capsim forecast` runs one saturation search and then one `size` search per plan step; the
plan of a real scenario takes minutes (docs/forecast.md: 6 min 38 s for the web shop). A CI
log must see plain progress lines through all of it, naming the plan step, with a share done
that never goes back when the plan starts after the search.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from capacitykit import mmc_scenario

LINE = re.compile(r"^capsim forecast: (?P<what>.*) — (?P<percent>\d+)% done, (\d+m)?\d+s elapsed$")


def test_every_plan_step_prints_progress_and_the_share_done_only_grows(tmp_path: Path) -> None:
    scenario = mmc_scenario(tmp_path, rate=200, duration="20s")
    completed = subprocess.run(
        [sys.executable, "-m", "capsim", "forecast", str(scenario), "--growth", "10%/month",
         "--from", "2027-01-01", "--horizon", "6mo", "--step", "3mo", "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "CAPSIM_PROGRESS_INTERVAL": "0"},
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert len(json.loads(completed.stdout)["plan"]) == 3
    lines = [LINE.match(line) for line in completed.stderr.splitlines()]
    progress = [(m["what"], int(m["percent"])) for m in lines if m]
    steps = {what.split(" (")[0] for what, _ in progress if what.startswith("plan step")}
    assert steps == {"plan step 1/3", "plan step 2/3", "plan step 3/3"}, progress
    percents = [percent for _, percent in progress]
    assert percents == sorted(percents), progress
    assert percents[-1] <= 100
