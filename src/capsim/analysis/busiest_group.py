"""A database's `utilization` and `occupancy` objectives judged on its busiest station group.

A database with read replicas is two station groups, its primaries taking the writes and its
replicas the reads (docs/results.md, "Database groups"). The tier's pooled share is over all
of its workers, so it can read comfortable while one group is nearly full: 1 primary taking
85% of the work of 250 requests/s beside 3 idle replicas pools to 25%, and a
`utilization <= 70%` objective (or `size`'s 10% headroom) passed with the primary 84% busy.
Headroom is a question about the workers that fill first, as `saturate` already takes the
busiest group's share, so such an objective is judged on the higher of the pooled share and
the busiest group's (docs/scenario-reference.md, slos).
"""

from __future__ import annotations

from typing import Any

from capsim.engine.result import TierRun

#: The objectives a database group has a figure for.
GROUP_STATISTICS = ("utilization", "occupancy")


def busiest_group(entry: dict[str, Any], statistic: str) -> tuple[str, float] | None:
    """The group of a result's (or `solve`'s) tier entry with the highest `statistic`, and
    that share; None for a tier without groups or a statistic groups do not have."""
    if statistic not in GROUP_STATISTICS:
        return None
    shares = [
        (name, float(group[statistic]))
        for name, group in (entry.get("groups") or {}).items()
        if isinstance(group, dict) and isinstance(group.get(statistic), int | float)
    ]
    return max(shares, key=lambda share: share[1]) if shares else None


def busiest_group_share(tier_run: TierRun, statistic: str, duration: float) -> float | None:
    """One replication's busiest group share of `statistic` (None: the tier has no groups)."""
    if statistic not in GROUP_STATISTICS or not tier_run.groups:
        return None
    shares = []
    for group in tier_run.groups.values():
        capacity = group.live_worker_time
        if capacity is None:
            capacity = max(group.workers, 1) * duration
        held = group.busy_time
        if statistic == "occupancy":
            held = max(group.occupied_time, group.busy_time)
        shares.append(held / capacity if capacity > 0 else 0.0)
    return max(shares)


def scaled_to_group(pooled: float, group_share: float, pooled_window: float) -> float:
    """The busiest group's share where the pooled figure judged is `pooled` (the tier's
    busiest minute) and over the window the group held `group_share` against the tier's
    `pooled_window`: the group's share of the tier's work is taken as the window's (the time
    series are pooled over the tier, not kept per group)."""
    if pooled_window <= 0:
        return max(pooled, group_share)
    return max(pooled, pooled * group_share / pooled_window)
