"""Speed of the discrete-event path on W3 of benchmarks/peers/README.md, and on a harder W3 variant.

Usage: python benchmarks/bench_events.py [--customers 1e5] [--variant]
Prints one JSON line: requests/s of wall time and of CPU time (the one to compare on a shared
machine; benchmarks/bench_event_cpu.py runs interleaved rounds), mean sojourn against the
Jackson value.
Compare with `python benchmarks/peers/bench_simpy.py --workload W3 --customers 1e5 --seed 1`
run on the same machine, one at a time.

W3: edge (c=32, 2 ms) -> lb (c=4, 0.5 ms) -> app (c=16, 20 ms) -> cache (c=8, 1 ms) 80% | db
(c=4, 10 ms) 20%, Poisson 600 req/s, exponential service. The variant makes the app 4 instances
of 4 blocking workers balanced by least connections, and puts an 8-connection pool in front of
the database.
"""

from __future__ import annotations

import argparse
import json
import time

from capsim.engine.events import run_events
from capsim.model.distributions import Distribution
from capsim.model.types import Call, Model, OneOf, Pool, Simulation, Tier, TrafficClass, Work

JACKSON_MEAN_SOJOURN = 0.02634936992567464


def w3(customers: float, variant: bool) -> Model:
    def tier(index: int, name: str, mean: float, concurrency: int, **extra: object) -> Tier:
        calls = extra.pop("calls", ())
        settings: dict[str, object] = {
            "kind": "service",
            "instances": 1,
            "blocking": False,
            "balancing": "round_robin",
        }
        settings.update(extra)
        return Tier(
            name=name,
            index=index,
            concurrency=concurrency,
            work=(Work(Distribution.exponential(mean), calls),),  # type: ignore[arg-type]
            **settings,  # type: ignore[arg-type]
        )

    app: dict[str, object] = {"calls": (OneOf(((3, 0.8), (4, 0.2))),)}
    db: dict[str, object] = {"blocking": True}
    app_concurrency = 16
    if variant:
        app.update(instances=4, blocking=True, balancing="least_connections")
        app_concurrency = 4
        db.update(kind="database", blocking=False, pool=Pool(8, max_waiting=100, timeout=1.0))
    tiers = (
        tier(0, "edge", 0.002, 32, calls=(Call(1),)),
        tier(1, "lb", 0.0005, 4, calls=(Call(2),)),
        tier(2, "app", 0.020, app_concurrency, **app),
        tier(3, "cache", 0.001, 8, blocking=True),
        tier(4, "db", 0.010, 4, **db),
    )
    return Model(
        name="w3-variant" if variant else "w3",
        seed=1,
        simulation=Simulation(duration=customers / 600.0, warmup=0.0),
        classes=(TrafficClass(name="web", index=0, entry=0, rate=600.0),),
        tiers=tiers,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=float, default=1e5)
    parser.add_argument("--variant", action="store_true")
    args = parser.parse_args()
    model = w3(args.customers, args.variant)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_events(model, 0)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # on a shared machine, the figure to compare
    web = result.classes[0]
    print(
        json.dumps(
            {
                "tool": "capsim-events",
                "workload": model.name,
                "customers": web.arrivals,
                "run_s": wall,
                "cust_per_s": web.arrivals / wall,
                "cpu_s": cpu,
                "cust_per_cpu_s": web.arrivals / cpu,
                "events": result.events,
                "mean_sojourn": web.latency.mean,
                "jackson_mean_sojourn": None if args.variant else JACKSON_MEAN_SOJOURN,
                "p99_sojourn": web.latency.quantile(0.99),
                "timings": result.timings,
            }
        )
    )


if __name__ == "__main__":
    main()
