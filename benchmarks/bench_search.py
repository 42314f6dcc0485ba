#!/usr/bin/env python3
"""What `size` and `saturate` cost, in runs of their answer, measured in one run.

    python benchmarks/bench_search.py                    # scenarios/ticketing.yaml, both
    python benchmarks/bench_search.py --only size --load 3x --workers 2
    python benchmarks/bench_search.py --src /path/to/other/src   # another capsim, same figures

1. size: `capsim size SCENARIO --load 3x --executor process --workers 2 --write ANSWER`, then
   one `capsim run ANSWER --load 3x` (serial, the scenario's own duration and replications: what
   a user runs to check the answer). Target (issue 15): size at most 6x that run's wall time.
2. saturate: `capsim saturate SCENARIO --executor process --workers 2`, then one `capsim run
   SCENARIO --load RATE/s` at its max_rate_meeting_slos (its saturation rate when it has no
   SLO answer). Target: at most 4x. Also printed: the search's simulated open requests
   (`search.requests`) and those over one run's (`search.run_equivalents`).

    python benchmarks/bench_search.py --rounds 3      # medians of 3 interleaved rounds

3. report (only with `--only report`): `capsim report SCENARIO -o REPORT.md --executor process
   --workers 2` (its load curve: saturate's search and its verification on the scenario's own
   timeline), then one `capsim run SCENARIO`, the run the report is of. No target: the figure
   to watch on realistic scenarios (a daily profile's whole-day verification dominates it).

    python benchmarks/bench_search.py --only report --scenario scenarios/checkout-platform.yaml
    python benchmarks/bench_search.py --only size --scenario scenarios/mobile-backend.yaml \
        --size-option=--replications=2

Every command runs as a user would run it (`python -m capsim ...` in its own process, one at a
time), so start-up and the executor's start are in the figures. Prints wall times, the ratios,
the search's own count of simulated points (`search.runs`, docs/capacity.md) and the answer.
On a machine shared with other work, wall times move with its load: compare ratios measured in
the same run. Each command's CPU time (user + system, its worker processes included) and
their ratio are printed too: they hardly move with the load, and as the search's workers run
in parallel while the run of its answer is serial, the CPU ratio bounds the wall-time ratio
from above on a machine with two free cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TICKETING = REPO / "scenarios" / "ticketing.yaml"
SIZE_TARGET = 6.0
SATURATE_TARGET = 4.0


#: CPU seconds (user + system) of the last finished command of each name, workers included.
CPU: dict[str, float] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(src: Path, args: list[str], as_json: bool = True) -> tuple[float, dict[str, Any]]:
    """Wall time and JSON output (with `as_json`) of one capsim command in its own process; its
    CPU time (with its worker processes') is left in CPU[args[0]]."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "capsim", *args, *(["--format", "json"] if as_json else [])],
        capture_output=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - started
    CPU[args[0]] = _children_cpu() - cpu
    if done.returncode not in (0, 1):
        sys.exit(f"capsim {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return elapsed, json.loads(done.stdout) if as_json else {}


def bench_size(
    src: Path, scenario: Path, load: str, workers: int, extra: list[str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        answer_path = Path(folder) / "answer.yaml"
        size_time, answer = timed(
            src,
            ["size", str(scenario), "--load", load, "--executor", "process",
             "--workers", str(workers), "--write", str(answer_path), *extra],
        )  # fmt: skip
        size_cpu = CPU["size"]
        run_time, _ = timed(src, ["run", str(answer_path), "--load", load])
    search = answer.get("search", {})
    return {
        "command": "size",
        "wall": size_time,
        "run": run_time,
        "ratio": size_time / run_time,
        "cpu": size_cpu,
        "run_cpu": CPU["run"],
        "cpu_ratio": size_cpu / CPU["run"],
        "load": os.getloadavg()[0],
        "target": SIZE_TARGET,
        "runs": search.get("runs", search.get("evaluations")),
        "runs_by_phase": search.get("runs_by_phase"),
        "run_equivalents": search.get("run_equivalents"),
        "start": search.get("start"),
        "answer": answer.get("overrides"),
        "verified": answer.get("verified"),
    }


def bench_saturate(src: Path, scenario: Path, workers: int) -> dict[str, Any]:
    sat_time, found = timed(
        src, ["saturate", str(scenario), "--executor", "process", "--workers", str(workers)]
    )
    sat_cpu = CPU["saturate"]
    rate = found.get("max_rate_meeting_slos") or found["saturation_rate"]
    run_time, _ = timed(src, ["run", str(scenario), "--load", f"{rate:.6g}/s"])
    search = found.get("search") or {}
    return {
        "command": "saturate",
        "wall": sat_time,
        "run": run_time,
        "ratio": sat_time / run_time,
        "cpu": sat_cpu,
        "run_cpu": CPU["run"],
        "cpu_ratio": sat_cpu / CPU["run"],
        "load": os.getloadavg()[0],
        "target": SATURATE_TARGET,
        "runs": search.get("runs", found.get("evaluations")),
        "runs_by_phase": search.get("runs_by_phase"),
        "run_equivalents": search.get("run_equivalents"),
        "requests": search.get("requests"),
        "answer": {
            "saturation_rate": found.get("saturation_rate"),
            "max_rate_meeting_slos": found.get("max_rate_meeting_slos"),
            "bottleneck": found.get("bottleneck"),
        },
    }


def bench_report(src: Path, scenario: Path, workers: int) -> dict[str, Any]:
    """`capsim report SCENARIO` with its load curve (saturate's search and its verification on
    the scenario's own timeline), against one `capsim run SCENARIO`: the run the report is of."""
    with tempfile.TemporaryDirectory() as folder:
        report_time, _ = timed(
            src,
            ["report", str(scenario), "-o", str(Path(folder) / "report.md"),
             "--executor", "process", "--workers", str(workers)],
            as_json=False,
        )  # fmt: skip
    report_cpu = CPU["report"]
    run_time, _ = timed(src, ["run", str(scenario)])
    return {
        "command": "report",
        "wall": report_time,
        "run": run_time,
        "ratio": report_time / run_time,
        "cpu": report_cpu,
        "run_cpu": CPU["run"],
        "cpu_ratio": report_cpu / CPU["run"],
        "load": os.getloadavg()[0],
        "target": None,
        "runs": None,
        "answer": None,
    }


def report(result: dict[str, Any]) -> None:
    target = result["target"]
    verdict = (
        "no target"
        if target is None
        else f"target at most {target:g}x, {'met' if result['ratio'] <= target else 'MISSED'}"
    )
    print(
        f"{result['command']}: {result['wall']:.1f}s wall, one run of its answer "
        f"{result['run']:.1f}s: {result['ratio']:.2f}x ({verdict}); {result['runs']} simulated "
        f"points {result.get('runs_by_phase') or ''}"
    )
    print(
        f"  CPU time (the command and its workers): {result['cpu']:.1f}s against "
        f"{result['run_cpu']:.1f}s: {result['cpu_ratio']:.2f}x; load average {result['load']:.1f}"
    )
    if result.get("run_equivalents") is not None:
        requests = f"{result['requests']:,} open requests, " if result.get("requests") else ""
        print(f"  simulated: {requests}{result['run_equivalents']:.2f} runs of the answer")
    if result.get("start"):
        print(f"  started from: {result['start']}")
    print(f"  answer: {result['answer']}")


def medians(results: list[dict[str, Any]]) -> None:
    """Per command: the median ratio over the rounds, and every round's."""
    for command in ("size", "saturate", "report"):
        rounds = [r for r in results if r["command"] == command]
        if rounds:
            ratios = sorted(r["ratio"] for r in rounds)
            every = ", ".join(f"{r['ratio']:.2f}x ({r['wall']:.1f}/{r['run']:.1f}s)" for r in rounds)
            print(f"{command}: median {statistics.median(ratios):.2f}x over {len(rounds)} "
                  f"rounds: {every}")  # fmt: skip
            cpu = ", ".join(f"{r['cpu_ratio']:.2f}x ({r['cpu']:.1f}/{r['run_cpu']:.1f}s)" for r in rounds)
            middle = statistics.median(r["cpu_ratio"] for r in rounds)
            print(f"  CPU time: median {middle:.2f}x: {cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=TICKETING)
    parser.add_argument("--only", choices=("size", "saturate", "report"))
    parser.add_argument("--load", default="3x")
    parser.add_argument(
        "--size-option",
        action="append",
        default=[],
        help="one more option for size (repeatable; e.g. --size-option=--replications=2)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (medians)")
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the capsim to measure")
    args = parser.parse_args()
    results = []
    for _ in range(args.rounds):
        if args.only in (None, "size"):
            results.append(
                bench_size(args.src, args.scenario, args.load, args.workers, args.size_option)
            )
            report(results[-1])
        if args.only in (None, "saturate"):
            results.append(bench_saturate(args.src, args.scenario, args.workers))
            report(results[-1])
        if args.only == "report":
            results.append(bench_report(args.src, args.scenario, args.workers))
            report(results[-1])
    if args.rounds > 1:
        medians(results)
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
