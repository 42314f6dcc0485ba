#!/usr/bin/env python3
"""Executors against serial: the same JSON, and how much less wall time, in one run.

    python benchmarks/bench_executors.py                      # everything below, once
    python benchmarks/bench_executors.py --only sweep --repeat 3
    python benchmarks/bench_executors.py --workers 4 --scheduler tcp://10.0.0.5:8786

1. sweep: 8 points of the W3 variant (event path: least-connections balancing, blocking workers,
   a connection pool), `--vary tiers.app.instances=4..11:8`, serially and with
   `--executor dask --workers 2` (a LocalCluster started by the command, its start-up included),
   or on the cluster at --scheduler. Target: the same JSON, wall time at most 0.7x serial on 2
   cores.
2. size and saturate of web-shop (`--load 1.5x`), serially and with `--executor process
   --workers 2`, with one serial `capsim run` of the scenario at that load as the unit of cost.

Every command runs as a user would run it (`python -m capsim ...` in its own process, one at a
time), so start-up and the executor's own start are in the figures. Prints wall times, ratios and
whether the JSON outputs are byte-identical (the benchmark fails, exit 1, when they are not).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
W3V = HERE / "scenarios" / "w3-variant.yaml"
WEB_SHOP = REPO / "scenarios" / "web-shop.yaml"
#: Simulated seconds per sweep point: two to three seconds of CPU each on the event path.
SWEEP_DURATION = "600s"


def timed(args: list[str]) -> tuple[float, bytes]:
    """Wall time and stdout of one capsim command in its own process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "capsim", *args], capture_output=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"capsim {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return elapsed, done.stdout


def compare(name: str, serial: list[str], parallel: list[str], repeat: int) -> dict[str, object]:
    """Median wall times of the two forms of one command, and whether their JSON is the same."""
    serial_times, parallel_times, same = [], [], True
    for _ in range(repeat):
        t_serial, out_serial = timed(serial)
        t_parallel, out_parallel = timed(parallel)
        serial_times.append(t_serial)
        parallel_times.append(t_parallel)
        same = same and out_serial == out_parallel and bool(json.loads(out_serial))
    row = {
        "benchmark": name,
        "serial_s": statistics.median(serial_times),
        "parallel_s": statistics.median(parallel_times),
        "identical_json": same,
        "serial_runs": serial_times,
        "parallel_runs": parallel_times,
    }
    row["ratio"] = row["parallel_s"] / row["serial_s"]  # type: ignore[operator]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["sweep", "searches"], help="run one part")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="a running Dask scheduler for the sweep")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians are shown")
    parser.add_argument("--json", help="also write the rows to this file (JSON lines)")
    options = parser.parse_args()
    workers = ["--workers", str(options.workers)]
    rows = []
    if options.only in (None, "sweep"):
        sweep = [
            "sweep", str(W3V), "--vary", "tiers.app.instances=4..11:8",
            "--duration", SWEEP_DURATION, "--format", "json",
        ]  # fmt: skip
        where = ["--scheduler", options.scheduler] if options.scheduler else []
        rows.append(
            compare(
                "sweep 8 points, dask vs serial",
                sweep,
                [*sweep, "--executor", "dask", *workers, *where],
                options.repeat,
            )
        )
    if options.only in (None, "searches"):
        load = ["--load", "1.5x"]
        unit, _ = timed(["run", str(WEB_SHOP), "--set", "traffic.browse.rate=3k/s", "-f", "json"])
        for command, extra in (("size", load), ("saturate", [])):
            base = [command, str(WEB_SHOP), *extra, "--format", "json"]
            row = compare(
                f"{command}, process vs serial",
                base,
                [*base, "--executor", "process", *workers],
                options.repeat,
            )
            row["run_equivalents_serial"] = row["serial_s"] / unit  # type: ignore[operator]
            row["run_equivalents_parallel"] = row["parallel_s"] / unit  # type: ignore[operator]
            rows.append(row)
    print(f"{'benchmark':36} {'serial s':>9} {'parallel s':>11} {'ratio':>6}  same JSON")
    for row in rows:
        print(
            f"{row['benchmark']:36} {row['serial_s']:9.2f} {row['parallel_s']:11.2f} "
            f"{row['ratio']:6.2f}  {'yes' if row['identical_json'] else 'NO'}"
        )
    for row in rows:
        rounds = zip(row["serial_runs"], row["parallel_runs"], strict=True)  # type: ignore[call-overload]
        shown = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in rounds)
        print(f"  {row['benchmark']}: every round, serial/parallel s: {shown}")
    print(f"(cores: {os.cpu_count()}, load average before the last run: {os.getloadavg()[0]:.1f})")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as stream:
            stream.writelines(json.dumps(row) + "\n" for row in rows)
    if not all(row["identical_json"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
