"""Idiomatic SimPy (a Resource per queue, a process per request) for the W3 variant of bench_events.

Usage: python benchmarks/bench_simpy_variant.py [--customers 1e5]
The same model as `bench_events.py --variant`: app = 4 instances x 4 blocking workers chosen by
least connections, database behind an 8-connection pool (100 waiting, 1 s timeout). Prints one
JSON line with requests/s, for the ratio against capsim's event path.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import simpy


def run(customers: int, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    env = simpy.Environment()
    edge = simpy.Resource(env, 32)
    lb = simpy.Resource(env, 4)
    apps = [simpy.Resource(env, 4) for _ in range(4)]
    at = [0] * 4
    cache = simpy.Resource(env, 8)
    db = simpy.Resource(env, 4)
    pool = simpy.Resource(env, 8)
    total = [0.0, 0]

    def visit(resource: simpy.Resource, mean: float):  # type: ignore[no-untyped-def]
        with resource.request() as request:
            yield request
            yield env.timeout(rng.expovariate(1.0 / mean))

    def query():  # type: ignore[no-untyped-def]
        if len(pool.queue) >= 100:
            return False
        with pool.request() as connection:
            got = yield connection | env.timeout(1.0)
            if connection not in got:
                return False
            yield from visit(db, 0.010)
        return True

    def request():  # type: ignore[no-untyped-def]
        started = env.now
        yield from visit(edge, 0.002)
        yield from visit(lb, 0.0005)
        i = at.index(min(at))
        at[i] += 1
        ok = True
        with apps[i].request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / 0.020))
            if rng.random() < 0.8:
                yield from visit(cache, 0.001)
            else:
                ok = yield from query()
        at[i] -= 1
        if ok:
            total[0] += env.now - started
            total[1] += 1

    def source():  # type: ignore[no-untyped-def]
        for _ in range(customers):
            yield env.timeout(rng.expovariate(600.0))
            env.process(request())

    env.process(source())
    started = time.perf_counter()
    env.run()
    return time.perf_counter() - started, total[0] / max(total[1], 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=float, default=1e5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    customers = int(args.customers)
    wall, mean = run(customers, args.seed)
    print(
        json.dumps(
            {
                "tool": "simpy-idiomatic",
                "workload": "w3-variant",
                "customers": customers,
                "run_s": wall,
                "cust_per_s": customers / wall,
                "mean_sojourn": mean,
            }
        )
    )


if __name__ == "__main__":
    main()
