"""Idiomatic SimPy (a Resource per queue, a process per request) for the W3 variant.

Usage: python benchmarks/peers_extra/bench_simpy_variant.py --customers 1e5 [--seed 1]
The model of benchmarks/scenarios/w3-variant.yaml: edge (c=32) -> lb (c=4) -> app = 4 instances
x 4 blocking workers chosen by least connections (fewest requests waiting, in service or blocked
on a call; ties to the lowest index) -> cache (c=8) 80% | db (c=4) behind an 8-connection pool
(100 waiting at most, 1 s timeout) 20%. Poisson 600 req/s, exponential service. Prints one JSON
line in the shape of benchmarks/peers (run wall time, customers/s, peak RSS, mean sojourn),
for the ratio against capsim's event path. Runs with the peers' SimPy (.peer-venv).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time

import simpy


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(customers: int, seed: int) -> tuple[float, float, int, int]:
    """Wall time, mean sojourn of answered requests, answered, refused by the pool."""
    rng = random.Random(seed)
    env = simpy.Environment()
    edge = simpy.Resource(env, 32)
    lb = simpy.Resource(env, 4)
    apps = [simpy.Resource(env, 4) for _ in range(4)]
    cache = simpy.Resource(env, 8)
    db = simpy.Resource(env, 4)
    pool = simpy.Resource(env, 8)
    answered = [0.0, 0, 0]  # total sojourn, answered, refused

    def visit(resource: simpy.Resource, mean: float):
        with resource.request() as request:
            yield request
            yield env.timeout(rng.expovariate(1.0 / mean))

    def query():
        if len(pool.queue) >= 100:
            return False
        with pool.request() as connection:
            got = yield connection | env.timeout(1.0)
            if connection not in got:
                return False
            yield from visit(db, 0.010)
        return True

    def least_connections() -> simpy.Resource:
        # Requests at an instance: waiting for a worker, or holding one (working or blocked).
        return min(apps, key=lambda app: len(app.queue) + app.count)

    def request():
        started = env.now
        yield from visit(edge, 0.002)
        yield from visit(lb, 0.0005)
        ok = True
        with least_connections().request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / 0.020))
            if rng.random() < 0.8:
                yield from visit(cache, 0.001)
            else:
                ok = yield from query()
        if ok:
            answered[0] += env.now - started
            answered[1] += 1
        else:
            answered[2] += 1

    def source():
        for _ in range(customers):
            yield env.timeout(rng.expovariate(600.0))
            env.process(request())

    env.process(source())
    began = time.perf_counter()
    env.run()
    wall = time.perf_counter() - began
    return wall, answered[0] / max(int(answered[1]), 1), int(answered[1]), int(answered[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", default="W3V", choices=["W3V"])
    parser.add_argument("--customers", type=float, default=1e5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    customers = int(args.customers)
    base = rss_mib()
    wall, mean, answered, refused = run(customers, args.seed)
    print(
        json.dumps(
            {
                "tool": "simpy-variant",
                "version": simpy.__version__,
                "workload": "W3V",
                "customers": customers,
                "seed": args.seed,
                "run_s": wall,
                "cust_per_s": customers / wall,
                "peak_rss_run_mib": rss_mib(),
                "base_rss_mib": base,
                "measured": {"mean_sojourn": mean, "answered": answered, "refused": refused},
            }
        )
    )


if __name__ == "__main__":
    main()
