"""Stories of `capsim solve` on a chain of 1,000 blocking tiers: an answer in bounded time.

Each tier of the chain holds a worker while the next answers. solve used to solve every tier
on the waits of the previous pass, one pass per tier of the chain (a thousand passes over a
thousand tiers), and to search the capacity of every overloaded tier on its own (181 of a
300-tier chain took 7 minutes). It now solves callees before their callers in one pass and
searches the capacity of the few most overloaded tiers only. The budget below is the test's
own timeout, far above what it takes and far below what it took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import capsim

SRC = Path(__file__).resolve().parent.parent / "src"


def chain(tmp_path: Path, tiers: int, service_time: str) -> Path:
    lines = [
        "name: chain",
        "simulation: {duration: 1s, warmup: 0s}",
        "traffic:",
        "  requests: {entry: t0, rate: 10/s}",
        "tiers:",
    ]
    for i in range(tiers):
        calls = f", calls: [t{i + 1}]" if i < tiers - 1 else ""
        lines.append(
            f"  t{i}: {{concurrency: 4, blocking: true, service_time: {service_time}{calls}}}"
        )
    path = tmp_path / f"chain-{tiers}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def solve_within(path: Path, seconds: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "capsim", "solve", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds,
        check=False,
    )


def test_a_chain_of_1000_blocking_tiers_is_solved_through_in_one_answer(tmp_path: Path) -> None:
    # 10 us a tier: the first tier holds its worker 10 ms (the whole chain's work).
    data = capsim.solve(
        capsim.build_model(capsim.load_scenario(chain(tmp_path, 1000, "10us"))),
        capsim_version="test",
    )
    assert data["classes"]["requests"]["latency"]["mean"] == pytest.approx(0.010, rel=1e-3)
    assert data["tiers"]["t0"]["occupancy"] == pytest.approx(10 * 0.010 / 4, rel=1e-3)
    assert data["tiers"]["t999"]["occupancy"] == pytest.approx(10 * 0.00001 / 4, rel=1e-3)


def test_an_overloaded_chain_of_1000_blocking_tiers_answers_within_its_budget(
    tmp_path: Path,
) -> None:
    # 1 ms a tier: the first 864 tiers hold their workers longer than 10/s allows (881 while
    # solve took a blocking worker's holding time as exponential; its parts are constant here).
    result = solve_within(chain(tmp_path, 1000, "1ms"), seconds=240)
    assert result.returncode == 1, result.stderr  # overloaded: solve's verdict
    data = json.loads(result.stdout)
    overloaded = data["overloaded"]
    assert len(overloaded) == 864
    assert all(entry["capacity"] > 0 for entry in overloaded)
    assert any("more overloaded station groups" in note for note in data["notes"])
