"""A long command whose stderr is not a terminal (a CI log) prints plain progress lines: what it
is evaluating, how far it is, how long it has run; at most one per interval, none for a short
command. On a terminal the rich bar stays."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENARIO = """\
name: progress
seed: 2
simulation: {duration: 60s, warmup: 2s, replications: 2}
traffic:
  web: {entry: app, rate: 300/s}
tiers:
  app: {instances: 2, concurrency: 2, balancing: least_connections,
        service_time: {dist: exponential, mean: 4ms}}
"""
LINE = re.compile(
    r"^capsim sweep: point \d/4, replication \d/2\b.* — (?P<percent>\d+)% done, "
    r"(\d+m)?\d+s elapsed$"
)
SWEEP = ["sweep", "{path}", "--vary", "tiers.app.instances=2..5:4", "--format", "json"]


def _sweep(path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    # A few seconds of work, so that several intervals of 0.2 s pass.
    args = [*(part.format(path=path) for part in SWEEP), "--duration", "200s"]
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "capsim", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    return completed, time.monotonic() - started


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "progress.yaml"
    path.write_text(SCENARIO)
    return path


def test_a_ci_log_gets_plain_progress_lines_at_the_interval(scenario: Path) -> None:
    completed, elapsed = _sweep(scenario, CAPSIM_PROGRESS_INTERVAL="0.2")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["points"]  # stdout holds the result alone
    lines = completed.stderr.splitlines()
    progress = [LINE.match(line) for line in lines[:-1]]
    assert progress and all(progress), lines
    percents = [int(match["percent"]) for match in progress if match]
    assert percents == sorted(percents) and percents[-1] <= 100
    # At most one line per interval (and the closing line).
    assert len(progress) <= elapsed / 0.2 + 1
    assert re.fullmatch(r"capsim sweep: finished evaluating after \d+s", lines[-1])


def test_a_short_command_prints_no_progress_at_the_default_interval(scenario: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CAPSIM_PROGRESS_INTERVAL"}
    args = [part.format(path=scenario) for part in SWEEP]
    completed = subprocess.run(
        [sys.executable, "-m", "capsim", *args, "--duration", "2s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""


def test_an_invalid_interval_is_refused_with_what_would_be_valid(scenario: Path) -> None:
    completed, _ = _sweep(scenario, CAPSIM_PROGRESS_INTERVAL="soon")
    assert completed.returncode == 2
    assert "CAPSIM_PROGRESS_INTERVAL='soon' is not a number of seconds" in completed.stderr
    assert completed.stdout == ""


def test_a_terminal_keeps_the_rich_bar_and_gets_no_plain_lines(scenario: Path) -> None:
    args = [part.format(path=scenario) for part in SWEEP]
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            # Long enough (a few seconds) for the bar, which waits a second before it shows.
            [sys.executable, "-m", "capsim", *args, "--duration", "400s"],
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "CAPSIM_PROGRESS_INTERVAL": "0.2", "COLUMNS": "100"},
        )
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = process.communicate(timeout=300)
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert json.loads(stdout)["points"]
    text = seen.decode(errors="replace")
    assert "% done," not in text
    assert "point" in text  # the bar's description


def test_the_last_runs_of_a_search_read_99_percent_not_100_until_the_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # saturate reports its verification runs at the scenario's own run length at 0.999 of the
    # work; a report's search once printed "100% done" for the 45 s they took.
    from capsim.cli.common import Progress

    monkeypatch.setenv("CAPSIM_PROGRESS_INTERVAL", "0")
    progress = Progress("saturate")
    progress.terminal = False
    progress(0.999, "verifying 671.6/s at the scenario's own run length")
    progress(0.994, "searching the SLO limit at 652.5/s")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("— 99% done, 0s elapsed")
    assert "— 99% done" in lines[1]
