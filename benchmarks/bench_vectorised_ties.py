"""CPU time of the vectorised path on fuzzer scenarios, in interleaved rounds, to measure what
ordering simultaneous visits (the chains of ancestors, docs/performance.md) costs.

Usage:
    python benchmarks/bench_vectorised_ties.py --rounds 5 --tree before=/tmp/old --tree after=.
    python benchmarks/bench_vectorised_ties.py --seeds 3 5 --requests 100000

`--chains NAME` runs that tree with the chains forced on (a tree from before they could be left
off cannot take it), to measure carrying them where they are needed. Each `--tree NAME=PATH` is a capsim source tree (a checkout, or `git archive COMMIT src tests |
tar -x -C PATH`); the scenario is `tests/scenariogen.random_scenario(seed, requests)` of the
first tree (the same YAML for every tree). Every run is a fresh interpreter and the trees take
turns within each round, so that a busy machine slows them alike. The clock is the process's
CPU time around `run_vectorised` (not wall time: on a shared machine wall time measures the
other users). Prints every round, then the best and the median of each tree and scenario.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Writes the scenario's YAML (with its trace files) for a seed, from the first tree's generator.
WRITE = """
import sys, yaml
sys.path.insert(0, {tests!r})
sys.path.insert(0, {src!r})
import scenariogen
data = scenariogen.random_scenario({seed}, requests={requests})
print(yaml.safe_dump(data, sort_keys=False))
"""

# One run of the vectorised path in a fresh interpreter: prints {"cpu", "requests"}.
RUN = """
import json, sys, time
sys.path.insert(0, {src!r})
from capsim.engine.vectorised import run_vectorised
from capsim.model.build import build_model
from capsim.scenario import load_scenario
model = build_model(load_scenario({path!r}))
began = time.process_time()
result = run_vectorised(model, 0{extra})
print(json.dumps({{"cpu": time.process_time() - began, "requests": result.events}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a source tree")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--chains",
        action="append",
        default=[],
        help="NAME of a tree to run with tie_chains=True (the chains carried whatever the model)",
    )
    args = parser.parse_args()
    trees = [tree.split("=", 1) for tree in args.tree] or [["here", str(HERE.parent)]]
    folder = Path(tempfile.mkdtemp(prefix="bench-ties-"))
    scenarios = {}
    for seed in args.seeds:
        first = Path(trees[0][1])
        code = WRITE.format(
            tests=str(first / "tests"), src=str(first / "src"), seed=seed, requests=args.requests
        )
        text = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
        path = folder / f"seed{seed}.yaml"
        path.write_text(text)
        scenarios[seed] = path
    cpu: dict[tuple[str, int], list[float]] = {}
    for round_index in range(args.rounds):
        for seed, path in scenarios.items():
            for name, tree in trees:
                extra = ", tie_chains=True" if name in args.chains else ""
                code = RUN.format(src=str(Path(tree) / "src"), path=str(path), extra=extra)
                out = subprocess.run(
                    [sys.executable, "-c", code], check=True, capture_output=True, text=True
                ).stdout
                figures = json.loads(out.strip().splitlines()[-1])
                cpu.setdefault((name, seed), []).append(figures["cpu"])
                print(
                    f"round {round_index + 1} seed {seed} {name}: {figures['cpu']:.3f} s CPU, "
                    f"{figures['requests']} requests",
                    flush=True,
                )
    for (name, seed), values in cpu.items():
        print(
            f"seed {seed} {name}: best {min(values):.3f} s, median {statistics.median(values):.3f} s"
        )


if __name__ == "__main__":
    main()
