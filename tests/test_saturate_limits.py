"""saturate where the limit is not a queue: a rate limit that refuses the excess, and a database
whose reads all go to its replicas while the primary idles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app

runner = CliRunner()

#: A gateway whose token bucket passes 100 requests/s in front of payment workers that could
#: carry 200/s (4 workers of 20 ms).
RATE_LIMITED = """\
version: 1
name: rate-limited
seed: 1
simulation: {duration: 60s}
traffic:
  pay: {entry: gateway, rate: 60/s}
tiers:
  gateway:
    concurrency: 100
    blocking: false
    service_time: 1ms
    rate_limit: {rate: 100/s, burst: 20}
    calls: [payments]
  payments:
    concurrency: 4
    service_time: {dist: exponential, mean: 20ms}
slos:
  - {class: pay, error_rate: 1%}
"""

#: Every call is a read, and reads go to the one replica: 4 workers of 10 ms carry 400/s; the
#: primary's 4 workers idle.
READS_ON_ONE_REPLICA = """\
name: reads
seed: 1
simulation: {duration: 30s, warmup: 3s}
traffic:
  read: {entry: app, rate: 100/s}
tiers:
  app:
    concurrency: 3
    blocking: false
    service_time: {dist: exponential, mean: 10ms}
    calls: [db]
  db:
    type: database
    replicas: 1
    concurrency: 4
    read_ratio: 100%
    service_time: {dist: exponential, mean: 10ms}
"""


def saturate(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["saturate", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_rate_limited_api_saturates_at_its_rate_limit(tmp_path: Path) -> None:
    """Past 100/s the bucket refuses the excess and no tier behind it is offered more: the
    system's saturation is the limit, not a line through flat occupancies drawn to millions of
    requests a second (which is what the search did, then refused to run its confirmation)."""
    data = saturate(tmp_path, RATE_LIMITED)
    assert data["bottleneck"] == "gateway"
    assert data["tiers"]["gateway"]["held_by"] == "rate_limit"
    assert data["saturation_rate"] == pytest.approx(100.0)
    assert data["analytic"]["saturation_rate"] == pytest.approx(100.0)
    assert data["confirmation"]["above"]["bottleneck_saturated"] is True
    # The error objective fails near the limit (a Poisson stream empties a bucket of 20 now and
    # then), so the safe rate is below it.
    assert data["max_rate_meeting_slos"] is not None and data["max_rate_meeting_slos"] < 100.0
    # payments' own line is drawn through points the limit did not cut: about its 200/s.
    assert data["tiers"]["payments"]["max_rate"] == pytest.approx(200.0, rel=0.1)


def test_a_database_saturates_with_its_busiest_group(tmp_path: Path) -> None:
    """The replica group is 4 workers of 10 ms for all reads: the database saturates near
    400/s as solve says, not near the 800/s its pooled 8 workers would suggest (a forecast
    dated by that figure would come about nine months late at 8% a month)."""
    data = saturate(tmp_path, READS_ON_ONE_REPLICA)
    assert data["tiers"]["db"]["max_rate_analytic"] == pytest.approx(400.0, rel=0.01)
    assert data["tiers"]["db"]["max_rate"] == pytest.approx(400.0, rel=0.05)
    assert data["bottleneck"] == "app"  # 3 workers of 10 ms: 300/s
