"""Stories: a queue whose consumers KEDA scales loses them all with its instance (a fault on
the queue, or its region lost), runs and bills none while it is lost, and its scaler stops
until the queue is back (docs/dynamic.md, faults on autoscaled tiers)."""

from __future__ import annotations

import capsim

JOBS = """\
name: jobs-in-two-regions
seed: 1
simulation: {duration: 3min, warmup: 0s, timeseries: 10s}
regions:
  eu: {share: 50%, rtt: {us: 80ms}}
  us: {share: 50%}
routing: {health_check: 10s, dns_ttl: 20s}
traffic:
  jobs: {entry: api, rate: 5/s}
tiers:
  api: {concurrency: 8, service_time: 5ms, calls: [q]}
  q:
    type: queue
    service_time: 1s
    autoscale: {metric: backlog, target: 2, min: 1, max: 20, polling_interval: 10s}
    cost: {per_instance_hour: 1}
faults:
  - {at: 60s, region: us}
"""

BACK = (
    JOBS.replace("rate: 5/s", "rate: 8/s")
    .replace("duration: 3min", "duration: 4min")
    .replace("{at: 60s, region: us}", "{at: 95s, for: 60s, region: us}")
    .replace("polling_interval: 10s", "polling_interval: 10s, scale_down_stabilization: 30s")
)


def _run(tmp_path, text: str) -> capsim.Report:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return capsim.run_file(str(path))


def test_a_lost_regions_scaled_queue_runs_and_bills_no_consumer(tmp_path):
    report = _run(tmp_path, JOBS)
    consumers = report.data["timeseries"]["tiers"]["q@us"]["instances"]
    assert max(consumers[:6]) >= 2  # us's share of the jobs kept a few consumers busy
    assert max(consumers[6:]) == 0  # from 60 s the region is gone, with all its consumers
    # Billed only while the region ran: at most max consumers for 60 of 180 s.
    assert report.data["cost"]["tiers"]["q@us"]["units"] <= 20 * 60 / 180
    # Its scaler stopped with it: no scaling change after 60 s.
    changes = report.data["tiers"]["q@us"]["autoscale"]["scaling"]
    assert changes and all(change["t"] < 60 for change in changes)


def test_a_queue_in_a_region_lost_for_a_minute_has_no_consumer_until_it_is_back(tmp_path):
    report = _run(tmp_path, BACK)
    consumers = report.data["timeseries"]["tiers"]["q@us"]["instances"]
    changes = report.data["tiers"]["q@us"]["autoscale"]["scaling"]
    before = [c for c in changes if c["t"] < 95]
    # us's 4 jobs/s of 1 s: the scaler had grown past 4 consumers by the time the queue was lost.
    assert before[-1]["to"] >= 4
    # Lost from 95 s to 155 s: no consumer live in the buckets wholly inside, not only one less.
    assert consumers[10:15] == [0.0] * 5
    # No poll while it is lost; back, the counted consumers serve again and the scaler polls.
    assert not [c for c in changes if 95 <= c["t"] < 155]
    assert consumers[15] == before[-1]["to"] / 2  # back at 155 s, half of the 150-160 s bucket
    assert [c for c in changes if c["t"] >= 165]
