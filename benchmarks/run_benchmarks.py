#!/usr/bin/env python3
"""capsim against the peers of benchmarks/peers on W1, W2 and W3, side by side in one run.

    python benchmarks/run_benchmarks.py                       # 1e5 and 1e6, W1 W2 W3 W3V
    python benchmarks/run_benchmarks.py --repeat 3            # medians of 3 rounds
    python benchmarks/run_benchmarks.py --sizes 1e6 --workloads W3 --skip-peers
    python benchmarks/run_benchmarks.py --sizes 1e7 --workloads W3 --skip-peers --engine vectorised

Every measurement runs in its own process, one at a time (two at once on a 2-core machine slow
each other down by ~1.9x), so peak RSS is per run. capsim goes through the public API
(load_scenario -> build_model -> one replication); the peers run from benchmarks/peers in
.peer-venv (create it with: python3 -m venv .peer-venv && .peer-venv/bin/pip install ciw simpy
salabim greenlet numpy scipy). W3V is the W3 variant that needs the event path
(scenarios/w3-variant.yaml); its peer is idiomatic SimPy written for the same model
(peers_extra/bench_simpy_variant.py). Prints requests/s, peak RSS, the ratios capsim / peer and
where capsim's time goes (load, build, draw, recurse, route, summarise), and whether the compiled
(numba) kernel was used: run this script with an interpreter that has numba to measure it,
CAPSIM_NUMBA=0 to keep the Python loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_SCRIPTS = HERE / "peers"  # copies of the peer scripts and their workloads: peers/README.md
PEER_VENV = REPO / ".peer-venv" / "bin" / "python"
SCENARIOS = {
    "W1": (HERE / "scenarios" / "w1-mm1.yaml", 0.9),
    "W2": (HERE / "scenarios" / "w2-mm8.yaml", 7.2),
    "W3": (HERE / "scenarios" / "w3-web-stack.yaml", 600.0),
    "W3V": (HERE / "scenarios" / "w3-variant.yaml", 600.0),
}
# Peers of each workload, their scripts and the sizes at which they are run (salabim takes
# minutes at 1e6).
SHARED_PEERS = {
    "ciw": ("1e5", "1e6"),
    "simpy": ("1e5", "1e6"),
    "numpy": ("1e5", "1e6"),
    "salabim": ("1e5",),
}
PEERS: dict[str, dict[str, tuple[Path, tuple[str, ...]]]] = {
    workload: {
        tool: (PEER_SCRIPTS / f"bench_{tool}.py", sizes) for tool, sizes in SHARED_PEERS.items()
    }
    for workload in ("W1", "W2", "W3")
}
PEERS["W3V"] = {"simpy-variant": (HERE / "peers_extra" / "bench_simpy_variant.py", ("1e5", "1e6"))}

CAPSIM_CHILD = r"""
import json, resource, sys, time
workload, path, rate, customers, engine = sys.argv[1:6]
customers = float(customers)
t0 = time.perf_counter()
import numpy
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    from capsim.scenario import load_scenario
    from capsim.model.build import build_model
    overrides = [f"simulation.duration={customers / float(rate)}s", "simulation.warmup=0s"]
    loaded = time.perf_counter()
    scenario = load_scenario(path, overrides)
    t_load = time.perf_counter() - loaded
    built = time.perf_counter()
    model = build_model(scenario)
    t_build = time.perf_counter() - built
    how = "load_scenario + build_model"
except ImportError:
    sys.path.insert(0, sys.argv[6])
    from fallback_models import build
    built = time.perf_counter()
    model = build(workload, customers)
    t_load, t_build = 0.0, time.perf_counter() - built
    how = "Model built in Python (no YAML loader)"
from capsim.engine.runner import choose_path, run_replication
from capsim.engine import events, kernels, vectorised  # imported before the clock, as the peers do
import numpy.random
path_name, reason = choose_path(model, engine)
began = time.perf_counter()
run = run_replication(model, 0, path_name)
run_s = time.perf_counter() - began
latency = run.classes[0].latency
requests = sum(c.arrivals for c in run.classes)
timings = {"load": t_load, "build": t_build, **run.timings}
print(json.dumps({"tool": "capsim", "path": path_name, "reason": reason, "how": how,
                  "customers": requests, "run_s": run_s, "cust_per_s": requests / run_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "base_rss_mib": base, "mean": latency.mean, "p99": latency.quantile(0.99),
                  "timings": timings, "compiled": kernels.compiled_in_use()}))
"""


def run_capsim(workload: str, customers: str, engine: str) -> dict[str, Any]:
    path, rate = SCENARIOS[workload]
    command = [
        sys.executable,
        "-c",
        CAPSIM_CHILD,
        workload,
        str(path),
        str(rate),
        customers,
        engine,
        str(HERE),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_peer(tool: str, workload: str, customers: str) -> dict[str, Any] | None:
    script = PEERS[workload][tool][0]
    if not PEER_VENV.exists() or not script.exists():
        return None
    command = [
        str(PEER_VENV),
        str(script),
        "--workload",
        workload,
        "--customers",
        customers,
        "--seed",
        "1",
    ]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as problem:
        print(f"  {tool} {workload} {customers}: failed ({problem})", file=sys.stderr)
        return None
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["tool"] = tool
    row["peak_rss_mib"] = row.get("peak_rss_run_mib", row.get("peak_rss_total_mib"))
    row["mean"] = row.get("measured", {}).get("mean_sojourn")
    return row


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median requests/s, with the spread of every run's requests/s."""
    ordered = sorted(rows, key=lambda r: float(r["cust_per_s"]))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["all_cust_per_s"] = [float(r["cust_per_s"]) for r in rows]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--workloads", default="W1,W2,W3,W3V")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median run is shown")
    parser.add_argument("--engine", default="auto", choices=["auto", "vectorised", "events"])
    parser.add_argument("--json", help="also write every row to this file (JSON lines)")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",")]
    workloads = [w.strip().upper() for w in args.workloads.split(",")]
    rows: list[dict[str, Any]] = []
    every: list[dict[str, Any]] = []
    if not args.skip_peers and not PEER_VENV.exists():
        print(f"no {PEER_VENV}: peers skipped (see this script's docstring)", file=sys.stderr)
    for workload in workloads:
        for size in sizes:
            runs: dict[str, list[dict[str, Any]]] = {}
            # Rounds interleave the tools, so that a noisy minute hits all of them alike.
            for round_index in range(args.repeat):
                print(f"running capsim {workload} {size} ({round_index + 1}) ...", file=sys.stderr)
                runs.setdefault("capsim", []).append(run_capsim(workload, size, args.engine))
                if args.skip_peers:
                    continue
                for tool, (_, peer_sizes) in PEERS[workload].items():
                    if size not in peer_sizes:
                        continue
                    print(f"running {tool} {workload} {size} ...", file=sys.stderr)
                    peer = run_peer(tool, workload, size)
                    if peer is not None:
                        runs.setdefault(tool, []).append(peer)
            for tool_runs in runs.values():
                for run in tool_runs:
                    run.update(workload=workload, size=size)
                every.extend(tool_runs)
                rows.append(median_row(tool_runs))
    print_table(rows)
    if args.json:
        with open(args.json, "w") as handle:
            for row in every:
                handle.write(json.dumps(row) + "\n")


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'workload':8} {'size':>5} {'tool':8} {'requests/s':>12} {'peak RSS MiB':>12} "
        f"{'capsim x':>9} {'mean sojourn':>13}  requests/s of every run"
    )
    print(header)
    print("-" * len(header))
    capsim = {(r["workload"], r["size"]): r for r in rows if r["tool"] == "capsim"}
    for row in rows:
        mine = capsim.get((row["workload"], row["size"]))
        ratio = ""
        if row["tool"] != "capsim" and mine:
            ratio = f"{float(mine['cust_per_s']) / float(row['cust_per_s']):8.1f}x"
        mean = row.get("mean")
        print(
            f"{row['workload']:8} {row['size']:>5} {row['tool']:8} "
            f"{float(row['cust_per_s']):12,.0f} {float(row['peak_rss_mib']):12.0f} {ratio:>9} "
            f"{'' if mean is None else format(float(mean), '.6g'):>13}  "
            + " ".join(f"{v:,.0f}" for v in row.get("all_cust_per_s", []))
        )
    print()
    print("capsim profile (seconds per stage) and path:")
    for (workload, size), row in capsim.items():
        timings = row["timings"]
        assert isinstance(timings, dict)
        stages = "  ".join(f"{k} {v:.3f}" for k, v in timings.items())
        kernel = "compiled KW loop" if row.get("compiled") else "Python KW loop"
        print(f"  {workload} {size}: {stages}  [{row['path']}, {kernel}: {row['how']}]")


if __name__ == "__main__":
    main()
