"""`capsim size --write` on a scenario in two regions writes a scenario capsim can load.

size sizes each region's copy of a tier on its own (`app@eu`, `app@us`), names that no scenario
can use; `--write` once crashed with a Python traceback (`ValueError: unknown tier 'app@us'`).
It now writes each copy's instances in the tier's mapping form (`regions: {eu: {instances: 4},
us: {instances: 2}}`, docs/regions.md) and a quantity a copy cannot take on its own (a
database's replicas) once for the tier, the largest of its copies'.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import capsim
from capsim.cli.app import app

runner = CliRunner()

TWO_REGIONS = """\
name: two-regions
seed: 2
simulation: {duration: 20s, warmup: 2s}
regions:
  eu: {share: 70%, rtt: {us: 80ms}}
  us: {share: 30%}
traffic:
  api: {entry: app, rate: 400/s}
tiers:
  app:
    instances: 8
    concurrency: 2
    service_time: {dist: exponential, mean: 20ms}
    calls: [db]
  db:
    type: database
    replicas: 3
    concurrency: 8
    read_ratio: 100%
    service_time: {dist: exponential, mean: 4ms}
    sizing: {of: replicas, min: 1, max: 6}
slos:
  - {class: api, p99: 250ms}
"""


def test_size_writes_each_regions_copy_back_as_the_scenario_names_it(tmp_path: Path) -> None:
    source, written = tmp_path / "regions.yaml", tmp_path / "sized.yaml"
    source.write_text(TWO_REGIONS)
    result = runner.invoke(app, ["size", str(source), "--write", str(written), "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)["overrides"]
    text = written.read_text()
    assert "Traceback" not in result.output
    assert "regions: {eu: {instances:" in text
    model = capsim.build_model(capsim.load_scenario(written))
    tiers = {tier.name: tier for tier in model.tiers}
    # 70% of the clients in eu need more app instances than the 30% in us.
    assert tiers["app@eu"].instances == answer["tiers.app@eu.instances"]
    assert tiers["app@us"].instances == answer["tiers.app@us.instances"]
    assert answer["tiers.app@eu.instances"] > answer["tiers.app@us.instances"]
    replicas = max(answer["tiers.db@eu.replicas"], answer["tiers.db@us.replicas"])
    assert f"replicas: {replicas}  # capsim size" in text
