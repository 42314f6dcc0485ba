"""`size` does not spend trial runs growing a tier more of which cannot help.

A CDN priced only per GB costs nothing more per hour with one more instance, so the growth step
(the largest deficit reduction per unit of added cost) saw an infinite gain per cost in any
noise-sized improvement: a checkout platform's `size --load 2x` measured trial after trial with
a larger CDN while its payment path failed its p99 (35 trial runs for one forecast step). A
tier where no visit waited for a worker, none was refused or timed out, and whose own
objectives hold is now left out of the growth trials.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

SCENARIO = """\
name: cdnfree
seed: 3
simulation: {duration: 10s, replications: 3}
traffic:
  assets: {entry: cdn, rate: 200/s, response_size: 120KB}
  api: {entry: app, rate: 300/s}
tiers:
  cdn:
    type: cdn
    concurrency: 2000
    service_time: 4ms
    hit_ratio: 95%
    on_miss: origin
    cost: {per_gb: 0.02}
  origin:
    concurrency: 8
    service_time: {dist: exponential, mean: 5ms}
    sizing: fixed
  app:
    instances: 1
    concurrency: 4
    service_time: {dist: exponential, mean: 5ms}
    cost: {per_instance_hour: 0.1}
    calls: [backend]
  backend:
    instances: 1
    concurrency: 2
    service_time: {dist: exponential, mean: 10ms}
    cost: {per_instance_hour: 0.2}
slos:
  - {class: api, p99: 70ms}
  - {class: assets, p99: 50ms}
"""

GROWING = re.compile(r"point \d+: growing: cdn=(\d+),")


def test_the_growth_never_tries_a_larger_cdn_that_nothing_waits_for(tmp_path: Path) -> None:
    path = tmp_path / "cdnfree.yaml"
    path.write_text(SCENARIO)
    completed = subprocess.run(
        [sys.executable, "-m", "capsim", "size", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "CAPSIM_PROGRESS_INTERVAL": "0"},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["verified"] is True
    assert data["tiers"]["cdn"]["instances"] == 1
    assert data["tiers"]["backend"]["instances"] > 1  # the search did grow what limits p99
    tried = {int(m[1]) for m in GROWING.finditer(completed.stderr)}
    assert tried == {1}, completed.stderr
