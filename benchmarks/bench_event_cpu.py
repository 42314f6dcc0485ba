"""CPU time of the event path, in interleaved rounds: capsim checkouts against each other and
against idiomatic SimPy, on the W3 variant and on web-shop.

Usage:
    python benchmarks/bench_event_cpu.py --rounds 5 --tree before=/tmp/old --tree after=.
    python benchmarks/bench_event_cpu.py --workloads w3v --customers 1e5 --simpy --floor

Each `--tree NAME=PATH` is a capsim source tree (a checkout, or `git archive COMMIT src
benchmarks | tar -x -C PATH`); every run is a fresh interpreter, and the trees (then SimPy, then
the floor) take turns within each round, so that a busy machine slows them alike. The clock is
the process's CPU time around `run_events` (or the peer's `run`), not wall time: on a shared
machine wall time measures the other users. Prints every round and the medians, as a table and
as one JSON line (docs/performance.md, "The event path: CPU time").

The summary gives the ratios the targets are stated in (issue 15): each tree's requests per
CPU second against the first tree's (for example `--tree pre=... --tree after=.`), and SimPy's
CPU time over each tree's on the W3 variant.

`--compiled` adds a tree named "compiled": a copy of this checkout with its event path compiled
(mypyc, as `CAPSIM_COMPILE=1 pip install .` builds it; docs/performance.md, "The compiled
event path"), built once in a temporary folder before the rounds.

`--floor` adds the least a Python event loop can do for as many events as the first tree's
run had: pop an entry `(when, priority, id, fn, arg)` from a heap, call `fn(arg)`, which pushes
the next such entry (no model at all, no event object: the shape of capsim's schedule since
issue 15's fourth round; the floor before it popped a timer object and ran its tuple of
callbacks, about a third slower); its requests/s is capsim's requests over that time, a bound
for this design.
"""

from __future__ import annotations

import argparse
import json
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEB_SHOP = HERE.parent / "scenarios" / "web-shop.yaml"

# One run of capsim's event path in a fresh interpreter: prints {"cpu", "requests", "events"}.
CAPSIM_RUN = """
import json, sys, time
tree, workload, size = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path[:0] = [tree + "/src", tree + "/benchmarks"]
from capsim.engine.events import run_events
if workload == "web-shop":
    from capsim.model.build import build_model
    from capsim.scenario import load_scenario
    model = build_model(load_scenario(sys.argv[4], [f"simulation.duration={size}"]))
else:
    import bench_events
    model = bench_events.w3(float(size), True)
started = time.process_time()
result = run_events(model, 0)
cpu = time.process_time() - started
print(json.dumps({"cpu": cpu, "requests": sum(c.arrivals for c in result.classes),
                  "events": result.events}))
"""

# The SimPy peer of the W3 variant (peers_extra/bench_simpy_variant.py), CPU time of its run.
SIMPY_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import bench_simpy_variant
customers = int(float(sys.argv[2]))
started = time.process_time()
bench_simpy_variant.run(customers, 1)
print(json.dumps({"cpu": time.process_time() - started, "requests": customers}))
"""

# The floor: `events` entries through a heap, each function pushing the next one.
FLOOR_RUN = """
import itertools, json, random, sys, time
from heapq import heappop, heappush
events, requests = int(sys.argv[1]), int(sys.argv[2])
class Env:
    _now = 0.0
env, queue, ids = Env(), [], itertools.count()
gaps = iter([random.random() for _ in range(events + 100)]).__next__
done = [0]
def fired(arg):
    done[0] += 1
    if done[0] < events:
        heappush(queue, (env._now + gaps(), 1, next(ids), fired, (0, 0, None)))
for _ in range(50):
    heappush(queue, (gaps(), 1, next(ids), fired, None))
started = time.process_time()
while queue:
    now, _, _, fn, arg = heappop(queue)
    env._now = now
    fn(arg)
print(json.dumps({"cpu": time.process_time() - started, "requests": requests}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def compiled_copy(into: Path) -> Path:
    """A copy of this checkout (src, benchmarks) with its event path compiled in place, as
    setup.py's CAPSIM_COMPILE=1 build does (mypyc on `capsim.engine.accelerator.COMPILED`)."""
    root = HERE.parent
    skip = shutil.ignore_patterns("__pycache__", "*.so", "build")
    for folder in ("src", "benchmarks"):
        shutil.copytree(root / folder, into / folder, ignore=skip)
    accelerator = runpy.run_path(str(root / "src" / "capsim" / "engine" / "accelerator.py"))
    paths = [name.replace(".", "/") + ".py" for name in accelerator["COMPILED"]]
    subprocess.run(  # in place; with mypy's settings, as setup.py's build
        [sys.executable, "-m", "mypyc", "--config-file", str(root / "pyproject.toml")]
        + runpy.run_path(str(root / "setup.py"))["MYPY_OPTIONS"]
        + paths,
        cwd=into / "src",
        check=True,
        capture_output=True,
    )
    return into


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--workloads", default="w3v,web-shop")
    parser.add_argument("--customers", default="1e5", help="W3 variant requests")
    parser.add_argument("--duration", default="60s", help="web-shop simulation.duration")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--simpy", action="store_true", help="the SimPy peer (W3 variant)")
    parser.add_argument("--floor", action="store_true", help="the bare event loop's floor")
    parser.add_argument("--compiled", action="store_true", help="this checkout, compiled")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree) or {"here": str(HERE.parent)}
    with tempfile.TemporaryDirectory(prefix="capsim-compiled-") as scratch:
        if args.compiled:
            trees["compiled"] = str(compiled_copy(Path(scratch) / "tree"))
        measure(args, trees)


def measure(args: argparse.Namespace, trees: dict[str, str]) -> None:
    """Every round of every workload; prints the medians, the ratios and the JSON report."""
    report: dict[str, dict[str, list[float]]] = {}
    for workload in args.workloads.split(","):
        size = args.customers if workload == "w3v" else args.duration
        tools: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for name, path in trees.items():
                found = run(CAPSIM_RUN, str(Path(path).resolve()), workload, size, str(WEB_SHOP))
                tools.setdefault(name, []).append(found)
            if args.simpy and workload == "w3v":
                found = run(SIMPY_RUN, str(HERE / "peers_extra"), args.customers)
                tools.setdefault("simpy", []).append(found)
            if args.floor:
                last = tools[next(iter(trees))][-1]  # as many events, and requests, as capsim
                found = run(FLOOR_RUN, str(int(last["events"])), str(int(last["requests"])))
                tools.setdefault("floor", []).append(found)
        for name, runs in tools.items():
            cpu = [r["cpu"] for r in runs]
            rate = [r["requests"] / r["cpu"] for r in runs]
            report[f"{workload}/{name}"] = {"cpu_s": cpu, "requests_per_cpu_s": rate}
            if "events" in runs[0]:
                report[f"{workload}/{name}"]["events"] = [r["events"] for r in runs]
            print(
                f"{workload:9s} {name:10s} median {statistics.median(cpu):.3f} s CPU, "
                f"{statistics.median(rate):>10,.0f} req/CPU-s; rounds "
                + ", ".join(f"{c:.3f}" for c in cpu)
            )
        print_ratios(workload, tools)
    print(json.dumps(report))


def print_ratios(workload: str, tools: dict[str, list[dict[str, float]]]) -> None:
    """The targets are ratios in one run: each tree against the first, SimPy against each."""
    medians = {name: statistics.median(r["cpu"] for r in runs) for name, runs in tools.items()}
    trees = [name for name in medians if name not in ("simpy", "floor")]
    first = trees[0]
    for name in trees[1:]:
        print(f"{workload:9s} {name} is {medians[first] / medians[name]:.2f}x {first}")
    for name in trees:
        if "simpy" in medians:
            print(f"{workload:9s} {name} is {medians['simpy'] / medians[name]:.2f}x SimPy")


if __name__ == "__main__":
    main()
