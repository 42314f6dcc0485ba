"""A search stopped by Ctrl-C or SIGTERM says what it completed, writes nothing, exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from childprocess import sigint_at_its_default, stderr_until

# Long enough per point (a few seconds) that the signal lands inside the search.
SCENARIO = """\
name: slow-search
seed: 1
simulation: {duration: 400s, warmup: 10s}
traffic:
  web: {entry: app, rate: 400/s}
tiers:
  app: {type: service, concurrency: 4, blocking: true, balancing: least_connections,
        instances: 2, service_time: {dist: exponential, mean: 10ms}}
slos:
  - {class: web, p99: 100ms}
"""


def _start(args: list[str]) -> subprocess.Popen[str]:
    # start_new_session: the child must not inherit an ignored SIGINT from a background shell.
    return subprocess.Popen(
        [sys.executable, "-m", "capsim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "CAPSIM_PROGRESS_INTERVAL": "0"},
        preexec_fn=sigint_at_its_default,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    "command",
    [
        ["saturate", "--duration", "300s", "--replications", "1"],
        ["sweep", "--vary", "traffic.web.rate=100/s..400/s:4", "--duration", "2000s"],
    ],
    ids=["saturate", "sweep"],
)
def test_an_interrupted_search_reports_its_points_and_leaves_no_file(
    tmp_path: Path, command: list[str], sig: signal.Signals
) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(SCENARIO)
    target = tmp_path / "result.json"
    process = _start(
        [command[0], str(scenario), *command[1:], "--format", "json", "-o", str(target)]
    )
    before = stderr_until(process, "point 1", 120.0)  # measuring its first point
    process.send_signal(sig)
    _stdout, stderr = process.communicate(timeout=120)
    stderr = before + stderr
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.yaml"]  # no temporary file left
    # What was completed is listed (points measured before the signal), or said to be nothing.
    listed = "Completed before the interruption" in stderr and "partial" in stderr
    assert listed or "nothing completed to report" in stderr
