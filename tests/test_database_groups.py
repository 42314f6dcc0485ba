"""A read-heavy database whose replica saturates while the tier as a whole looks half idle.

One primary and one read replica, 4 workers each, 10 ms exponential queries, 90% reads. At
500 queries/s the replica is offered 0.9 x 500 x 10 ms = 4.5 workers of reads on its 4 (it
completes at most 400/s); the primary 0.1 x 500 x 10 ms = 0.5. The tier's utilization over its
8 workers is at most (4 + 0.5) / 8 = 56%: a capacity planner reading only that figure would call
the tier comfortable. `run` must say the tier is overloaded and name the replica group.

At 300/s both groups are stable: the replica busy 0.9 x 300 x 10 ms / 4 = 67.5% of the time,
the primary 0.1 x 300 x 10 ms / 4 = 7.5%.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

READ_HEAVY = """\
name: read-heavy
seed: 11
simulation: {{duration: 20s, warmup: 2s, replications: 2}}
traffic:
  queries: {{entry: db, rate: {rate}/s}}
tiers:
  db:
    type: database
    instances: 1
    replicas: 1
    concurrency: 4
    service_time: {{dist: exponential, mean: 10ms}}
    read_ratio: 0.9
{pool}"""

#: A connection pool in front: the backlog waits in its line, not at the replica's servers.
POOL = "    pool: {size: 16}\n"


def _run(tmp_path: Path, rate: float, engine: str, pool: str = "") -> dict[str, Any]:
    scenario = tmp_path / "read-heavy.yaml"
    scenario.write_text(READ_HEAVY.format(rate=rate, pool=pool))
    result = runner.invoke(app, ["run", str(scenario), "--engine", engine, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("engine", "pool"),
    [("events", ""), ("vectorised", ""), ("events", POOL)],
    ids=["events", "vectorised", "events-with-pool"],
)
def test_a_saturated_replica_overloads_the_tier_although_the_tier_is_half_busy(
    tmp_path: Path, engine: str, pool: str
) -> None:
    data = _run(tmp_path, 500, engine, pool)
    db = data["tiers"]["db"]
    assert data["engine"]["path"] == engine
    assert db["utilization"] < 0.6  # the pooled figure hides it: at most 56%
    replicas, primary = db["groups"]["replicas"], db["groups"]["primary"]
    assert replicas["workers"] == primary["workers"] == 4
    # Reads offered: 450/s; the replica completes what its 4 workers can, 400/s.
    assert replicas["offered_rate"] == pytest.approx(450, rel=0.05)
    assert replicas["throughput"] == pytest.approx(400, rel=0.03)
    assert replicas["utilization"] > 0.97
    assert replicas["max_rate"] == pytest.approx(400, rel=0.03)
    assert not replicas["stable"]
    assert primary["stable"]
    assert primary["utilization"] == pytest.approx(0.5 / 4, abs=0.02)
    # The tier is overloaded because of its replica group, and the run fails.
    assert not db["stable"]
    assert not data["passed"]
    [failure] = data["overloaded"]
    assert (failure["tier"], failure["group"]) == ("db", "replicas")
    assert failure["offered_rate"] == pytest.approx(450, rel=0.05)
    assert failure["capacity"] == pytest.approx(400, rel=0.03)
    assert any("tier 'db' (its replicas group) is OVERLOADED" in w for w in data["warnings"])


@pytest.mark.parametrize("engine", ["events", "vectorised"])
def test_below_saturation_each_group_is_busy_by_its_own_share_of_the_load(
    tmp_path: Path, engine: str
) -> None:
    data = _run(tmp_path, 300, engine)
    db = data["tiers"]["db"]
    assert db["stable"] and data["passed"] and data["overloaded"] == []
    replicas, primary = db["groups"]["replicas"], db["groups"]["primary"]
    assert replicas["stable"] and primary["stable"]
    assert replicas["offered_rate"] == pytest.approx(270, rel=0.04)
    assert primary["offered_rate"] == pytest.approx(30, rel=0.1)
    assert replicas["throughput"] == pytest.approx(replicas["offered_rate"], rel=0.01)
    # Utilization law per group: lambda_group x 10 ms / 4 workers.
    assert replicas["utilization"] == pytest.approx(0.675, abs=0.03)
    assert primary["utilization"] == pytest.approx(0.075, abs=0.01)
    assert replicas["occupancy"] == pytest.approx(replicas["utilization"])
    # The groups split the tier: their busy time adds up to the tier's.
    assert (replicas["utilization"] + primary["utilization"]) / 2 == pytest.approx(
        db["utilization"], rel=1e-9
    )


def test_the_run_table_shows_a_row_per_group_with_its_status(tmp_path: Path) -> None:
    scenario = tmp_path / "read-heavy.yaml"
    scenario.write_text(READ_HEAVY.format(rate=500, pool=""))
    result = runner.invoke(app, ["run", str(scenario), "--engine", "vectorised"])
    lines = result.stdout.splitlines()
    rows = {line.split()[2]: line for line in lines if line.strip().startswith("db · ")}
    assert set(rows) == {"primary", "replicas"}
    assert rows["primary"].rstrip().endswith("stable")
    assert "OVERLOADED" in rows["replicas"]
    assert "FAIL: tier OVERLOADED — db · replicas (backlog +" in result.stdout


def test_a_tier_without_replicas_has_no_groups(tmp_path: Path) -> None:
    scenario = tmp_path / "one.yaml"
    scenario.write_text(READ_HEAVY.format(rate=100, pool="").replace("replicas: 1", "replicas: 0"))
    for engine in ("events", "vectorised"):
        result = runner.invoke(app, ["run", str(scenario), "--engine", engine, "--format", "json"])
        assert "groups" not in json.loads(result.stdout)["tiers"]["db"]


def test_the_groups_add_up_to_the_tier_when_a_zone_outage_kills_replicas() -> None:
    """zone-outage loses a zone's replicas mid-run: the work they will not finish leaves their
    group's busy time as it leaves the tier's, and each group's utilization is over its own
    live workers, so the groups' figures add up to the tier's exactly."""
    from capsim import build_model, load_scenario
    from capsim.engine.runner import run_replications

    root = Path(__file__).resolve().parent.parent
    model = build_model(load_scenario(root / "scenarios" / "zone-outage.yaml"))
    [db] = [t for t in model.tiers if t.replicas]
    [result] = run_replications(model, replications=1, engine="events")
    tier = result.tiers[db.index]
    assert tier.groups is not None and tier.live_worker_time is not None
    groups = list(tier.groups.values())
    assert tier.live_worker_time < db.workers * result.duration  # instances did die
    assert sum(g.busy_time for g in groups) == pytest.approx(tier.busy_time, rel=1e-12)
    assert sum(g.live_worker_time or 0.0 for g in groups) == pytest.approx(tier.live_worker_time)
    assert sum(g.arrivals for g in groups) == tier.arrivals
    assert sum(g.completed for g in groups) == tier.completed
