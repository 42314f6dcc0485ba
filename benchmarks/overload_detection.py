"""How often a run's verdict says OVERLOADED, by offered load over capacity (docs/results.md,
"How often an overload is seen").

For each scenario family and each rho (offered work over capacity) the scenario runs with
seeds 0..N-1 and the table counts the runs whose verdict lists the tier in `overloaded`
(the verdict: formulas and the run's own rules together), and, apart, the runs that the run's
own rules alone (`assess_stability`: the trend rules and the pooled rise) find growing. Stable
systems (rho < 1) should read 0; slight overloads as often as the window allows.

    PYTHONPATH=src python benchmarks/overload_detection.py [--seeds 12] [--family plain]

Prints a Markdown table; takes a few minutes on one core.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import capsim
from capsim.analysis.summary import _changes_during_run_at, assess_stability, summarise
from capsim.engine.runner import run_replications

RHOS = (0.9, 0.95, 0.97, 0.98, 1.013, 1.03, 1.1)

PLAIN = """
name: plain
seed: {seed}
simulation: {{duration: 60s, warmup: 10s, replications: 1}}
traffic:
  requests: {{entry: work, rate: {rate}/s}}
tiers:
  work:
    concurrency: {workers}
    service_time: {{dist: exponential, mean: 10ms}}
"""

#: The enrich queue of tests/test_newuser_ingest_pipeline.py: one consumer taking batches of
#: 20 for 20 ms of work and a ~30 ms enrichment call (with retries on a 2% fault): the
#: formulas put its capacity at 400 messages/s (they do not count the retries' extra time; the
#: runs measure about 395/s). Its rho here is the formulas'.
PIPELINE = """
version: 1
name: b2b-event-ingest
seed: {seed}
simulation: {{duration: 60s, warmup: 15s, replications: 3}}
traffic:
  ingest: {{entry: api, rate: {rate}/s}}
tiers:
  api:
    concurrency: 8
    service_time: {{dist: lognormal, mean: 4ms, cv: 1.0}}
    calls: [pg, raw]
    autoscale: {{metric: utilization, target: 60%, min: 2, max: 10}}
  raw:
    type: queue
    publish_time: 1ms
    concurrency: 4
    service_time: {{dist: exponential, mean: 5ms}}
    calls: [enrich]
    autoscale: {{metric: backlog, target: 50, min: 2, max: 20, polling_interval: 10s}}
  enrich:
    type: queue
    consumers: 1
    service_time: 20ms
    batch: {{size: 20, linger: 100ms}}
    max_retries: 2
    calls:
      - {{tier: enricher, timeout: 300ms, retries: {{max: 2, base: 50ms, cap: 1s}}}}
      - store
  enricher:
    instances: 4
    concurrency: 8
    service_time: {{dist: lognormal, mean: 30ms, cv: 1.0}}
  store:
    type: queue
    consumers: 4
    service_time: 15ms
    batch: {{size: 50, linger: 200ms}}
    calls: [pg]
  pg:
    type: database
    replicas: 2
    concurrency: 8
    service_time: {{dist: lognormal, mean: 6ms, cv: 1.0}}
    read_ratio: 0.5
    pool: {{size: 16, max_waiting: 200, timeout: 500ms}}
faults:
  - {{at: 0s, tier: enricher, error_rate: 2%}}
slos:
  - {{class: ingest, p99: 60ms}}
"""


@dataclass(frozen=True)
class Family:
    name: str
    text: str
    tier: str
    capacity: float  # requests per second the formulas put the tier's capacity at
    workers: int = 0


FAMILIES = {
    "plain": Family("plain (4 workers, exp 10 ms, 60 s, 1 replication)", PLAIN, "work", 400.0, 4),
    "single": Family("single (1 worker, exp 10 ms, 60 s, 1 replication)", PLAIN, "work", 100.0, 1),
    "pipeline": Family(
        "pipeline enrich (batch consumer, 45 s, 3 replications)", PIPELINE, "enrich", 400.0
    ),
}


def verdicts(family: Family, rho: float, seed: int) -> tuple[bool, bool]:
    """(the verdict lists the tier as overloaded, the run's own rules find it growing)."""
    text = family.text.format(seed=seed, rate=rho * family.capacity, workers=family.workers)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_text(text)
        model = capsim.build_model(capsim.load_scenario(path))
    runs = run_replications(model)
    report = summarise(model, runs, capsim_version=capsim.__version__)
    listed = any(f["tier"] == family.tier for f in report.data["overloaded"])
    tier = model.tier(family.tier)
    own = assess_stability(
        [run.tiers[tier.index] for run in runs],
        runs,
        tier.workers,
        late_onset=_changes_during_run_at(model, tier),
    )
    return listed, not own.stable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append")
    options = parser.parse_args()
    names = options.family or list(FAMILIES)
    print("| family | rho | verdict OVERLOADED | run's own rules alone |")
    print("|---|---|---|---|")
    for name in names:
        family = FAMILIES[name]
        for rho in RHOS:
            counts = [verdicts(family, rho, seed) for seed in range(options.seeds)]
            listed = sum(c[0] for c in counts)
            own = sum(c[1] for c in counts)
            n = options.seeds
            print(f"| {family.name} | {rho:g} | {listed}/{n} | {own}/{n} |", flush=True)


if __name__ == "__main__":
    main()
