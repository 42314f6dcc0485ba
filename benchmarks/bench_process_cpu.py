"""CPU time of a whole `capsim run` process, in interleaved rounds: capsim trees against each
other (issue 15's web-shop target is stated for the whole process: start-up, imports,
validation, build, run, summary, output).

Usage:
    git archive <commit> src | (mkdir -p /tmp/old && tar -x -C /tmp/old)
    python benchmarks/bench_process_cpu.py --rounds 7 --tree before=/tmp/old --tree after=.
    python benchmarks/bench_process_cpu.py --tree after=. -- --format json

Each round runs `python -m capsim run SCENARIO [ARGS]` once per tree, the trees taking turns,
each a fresh interpreter with `PYTHONPATH=TREE/src`, its output thrown away. The clock is the
child's CPU time, user + system, as the kernel accounts it for the process and all its threads
(`os.wait4`): on a shared machine wall time measures the other users, and a thread pool that
spins shows up here and not in wall time. The bytecode is cached: PYTHONDONTWRITEBYTECODE is
dropped from the children's environment and one unmeasured run per tree writes it first.
Everything else in the environment is passed on as it is (no OPENBLAS_NUM_THREADS is set
here). Prints every round, the medians, each tree's requests per CPU second against the
first tree's, and one JSON line (docs/performance.md, "The whole process").
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
WEB_SHOP = HERE.parent / "scenarios" / "web-shop.yaml"
#: Requests that arrive in web-shop's 60 s window (`capsim run`'s JSON, classes' arrivals).
WEB_SHOP_REQUESTS = 128_427


def child_environment(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree / "src")
    return env


def run_once(tree: Path, command: list[str]) -> dict[str, float]:
    """One whole process: its user and system CPU seconds and its wall time."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(command, env=child_environment(tree), stdout=sink, stderr=sink)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):  # 1: an SLO failed, the run itself is fine
        raise SystemExit(f"{' '.join(command)} exited {child.returncode} in {tree}")
    return {"user": usage.ru_utime, "sys": usage.ru_stime, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--scenario", default=str(WEB_SHOP))
    parser.add_argument("--requests", type=int, default=WEB_SHOP_REQUESTS)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("args", nargs="*", help="more arguments of `capsim run` (after --)")
    args = parser.parse_args()
    trees = {
        name: Path(path).resolve()
        for name, path in (item.split("=", 1) for item in args.tree or ["here=" + str(HERE.parent)])
    }
    command = [sys.executable, "-m", "capsim", "run", args.scenario, *args.args]
    for tree in trees.values():
        run_once(tree, command)  # writes the bytecode; not measured
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(run_once(tree, command))
    medians = {}
    for name, found in runs.items():
        cpu = [r["user"] + r["sys"] for r in found]
        medians[name] = statistics.median(cpu)
        user, system, wall = (
            statistics.median(r[key] for r in found) for key in ("user", "sys", "wall")
        )
        print(
            f"{name:10s} median {medians[name]:.3f} s CPU (user {user:.3f}, sys {system:.3f}, "
            f"wall {wall:.3f}), {args.requests / medians[name]:,.0f} req/CPU-s; rounds "
            + ", ".join(f"{c:.3f}" for c in cpu)
        )
    first = next(iter(trees))
    for name in list(trees)[1:]:
        print(f"{name} is {medians[first] / medians[name]:.2f}x {first}")
    print(json.dumps({"load_average": os.getloadavg(), "runs": runs}))


if __name__ == "__main__":
    main()
