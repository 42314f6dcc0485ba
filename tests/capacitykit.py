"""Small scenarios for the capacity-command tests, written where a test wants them."""

from __future__ import annotations

from pathlib import Path

MMC = """\
name: {name}
seed: {seed}
simulation: {{duration: {duration}, replications: 3}}
traffic:
  requests: {{entry: server, rate: {rate}/s}}
tiers:
  server:
    concurrency: {servers}
    service_time: {{dist: exponential, mean: 10ms}}
    cost: {{per_instance_hour: 0.5}}
    sizing: {sizing}
slos:
{slos}
"""


def mmc_scenario(
    folder: Path,
    *,
    name: str = "mmc",
    servers: int = 4,
    rate: float = 320,
    seed: int = 3,
    duration: str = "60s",
    sizing: str = "{of: concurrency, min: 1, max: 64}",
    slos: str = "  - {class: requests, p99: 60ms}",
) -> Path:
    """An M/M/c pool: one instance, `servers` workers, exponential 10 ms service."""
    path = folder / f"{name}.yaml"
    path.write_text(
        MMC.format(
            name=name,
            seed=seed,
            duration=duration,
            rate=rate,
            servers=servers,
            sizing=sizing,
            slos=slos if slos else "  []",
        ).replace("slos:\n  []", "slos: []")
    )
    return path
