#!/usr/bin/env python3
"""capsim against the peers of ../shared/bench on W1, W2 and W3, side by side in one run.

    python benchmarks/run_benchmarks.py                       # 1e5 and 1e6, every workload
    python benchmarks/run_benchmarks.py --sizes 1e6 --workloads W3 --skip-peers
    python benchmarks/run_benchmarks.py --sizes 1e7 --workloads W3 --skip-peers --engine vectorised

Every measurement runs in its own process, one at a time (two at once on a 2-core machine slow
each other down by ~1.9x), so peak RSS is per run. capsim goes through the public API
(load_scenario -> build_model -> one replication); the peers run from ../shared/bench/peers in
.peer-venv (create it with: python3 -m venv .peer-venv && .peer-venv/bin/pip install ciw simpy
salabim greenlet numpy scipy). Prints requests/s, peak RSS, the ratios capsim / peer and where
capsim's time goes (load, build, draw, recurse, route, summarise).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BENCH = REPO.parent / "shared" / "bench"
PEER_VENV = REPO / ".peer-venv" / "bin" / "python"
SCENARIOS = {
    "W1": (HERE / "scenarios" / "w1-mm1.yaml", 0.9),
    "W2": (HERE / "scenarios" / "w2-mm8.yaml", 7.2),
    "W3": (HERE / "scenarios" / "w3-web-stack.yaml", 600.0),
}
# Peers and the sizes at which they are run (salabim takes minutes at 1e6).
PEERS = {
    "ciw": ("1e5", "1e6"),
    "simpy": ("1e5", "1e6"),
    "numpy": ("1e5", "1e6"),
    "salabim": ("1e5",),
}

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
path_name, reason = choose_path(model, engine)
began = time.perf_counter()
run = run_replication(model, 0, path_name)
run_s = time.perf_counter() - began
latency = run.classes[0].latency
timings = {"load": t_load, "build": t_build, **run.timings}
print(json.dumps({"tool": "capsim", "path": path_name, "reason": reason, "how": how,
                  "customers": run.events, "run_s": run_s, "cust_per_s": run.events / run_s,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "base_rss_mib": base, "mean": latency.mean, "p99": latency.quantile(0.99),
                  "timings": timings}))
"""


def run_capsim(workload: str, customers: str, engine: str) -> dict[str, object]:
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


def run_peer(tool: str, workload: str, customers: str) -> dict[str, object] | None:
    script = BENCH / "peers" / f"bench_{tool}.py"
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
    row["peak_rss_mib"] = row.get("peak_rss_run_mib", row.get("peak_rss_total_mib"))
    row["mean"] = row.get("measured", {}).get("mean_sojourn")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--engine", default="auto", choices=["auto", "vectorised", "events"])
    parser.add_argument("--json", help="also write every row to this file (JSON lines)")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",")]
    workloads = [w.strip().upper() for w in args.workloads.split(",")]
    rows: list[dict[str, object]] = []
    if not args.skip_peers and not PEER_VENV.exists():
        print(f"no {PEER_VENV}: peers skipped (see this script's docstring)", file=sys.stderr)
    for workload in workloads:
        for size in sizes:
            print(f"running capsim {workload} {size} ...", file=sys.stderr)
            capsim_row = run_capsim(workload, size, args.engine)
            capsim_row.update(workload=workload, size=size)
            rows.append(capsim_row)
            if args.skip_peers:
                continue
            for tool, peer_sizes in PEERS.items():
                if size not in peer_sizes:
                    continue
                print(f"running {tool} {workload} {size} ...", file=sys.stderr)
                peer = run_peer(tool, workload, size)
                if peer is not None:
                    peer.update(workload=workload, size=size)
                    rows.append(peer)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")


def print_table(rows: list[dict[str, object]]) -> None:
    header = (
        f"{'workload':8} {'size':>5} {'tool':8} {'requests/s':>12} {'peak RSS MiB':>12} "
        f"{'capsim x':>9} {'mean sojourn':>13}"
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
            f"{'' if mean is None else format(float(mean), '.6g'):>13}"
        )
    print()
    print("capsim profile (seconds per stage) and path:")
    for (workload, size), row in capsim.items():
        timings = row["timings"]
        assert isinstance(timings, dict)
        stages = "  ".join(f"{k} {v:.3f}" for k, v in timings.items())
        print(f"  {workload} {size}: {stages}  [{row['path']}: {row['how']}]")


if __name__ == "__main__":
    main()
