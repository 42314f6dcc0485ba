"""A database's two station groups, measured apart: primaries (writes) and read replicas.

`install` wraps `arrive`, `release` and `on_work_done` of a database tier with replicas only
(every other tier keeps the plain hooks and the fused hot path of `instances`), and counts per
group what the Station counts for the whole tier: arrivals, refusals, completions, busy
worker-seconds and the integral of held workers over the window, and the number waiting at
each queue sample. The busy time a request adds is the change of the Station's `busy` across
the wrapped hook that started it, so the group figures use the tier's own accounting; an
instance that dies (`faults.kill`, also for spot interruptions) takes its unfinished work and
its live time out of its group (`killed`, `revived`), so the groups add up to the tier.
`record` fills `TierRun.groups` (docs/results.md, "Database groups").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from capsim.engine.events.signatures import Cont
from capsim.engine.events.station import Station
from capsim.engine.result import GROUP_NAMES, TierRun


class _Group:
    """One group's counters and integrals over the window."""

    __slots__ = (
        "arrivals",
        "busy",
        "completed",
        "held",
        "held_area",
        "held_since",
        "live",
        "live_area",
        "live_since",
        "members",
        "overflow",
        "rejected",
        "trace",
        "workers",
    )

    def __init__(self, members: range, workers: int, warmup: float) -> None:
        self.members = members
        self.workers = workers
        self.arrivals = self.completed = self.rejected = self.overflow = 0
        self.busy = 0.0
        self.held = 0
        self.held_area = 0.0
        self.held_since = warmup
        self.live = len(members)  # live instances (faults and spot interruptions kill some)
        self.live_area = 0.0
        self.live_since = warmup
        self.trace: list[int] = []

    def held_moved(self, now: float, change: int, warmup: float) -> None:
        """Held workers change by `change` at `now`; the integral counts from `warmup` on."""
        if now > warmup:
            self.held_area += self.held * (now - max(self.held_since, warmup))
            self.held_since = now
        self.held += change

    def live_moved(self, now: float, change: int, warmup: float) -> None:
        """Live instances change by `change` at `now`; the integral counts from `warmup` on."""
        if now > warmup:
            self.live_area += self.live * (now - max(self.live_since, warmup))
            self.live_since = now
        self.live += change


class Groups:
    """The primaries' and replicas' figures of one database tier (see the module)."""

    def __init__(self, st: Station) -> None:
        tier = st.tier
        self.st = st
        self.groups = (
            _Group(range(tier.instances), tier.instances * tier.concurrency, st.warmup),
            _Group(
                range(tier.instances, tier.servers), tier.replicas * tier.concurrency, st.warmup
            ),
        )
        self.first_replica = tier.instances

    def of(self, i: int) -> _Group:
        return self.groups[1] if i >= self.first_replica else self.groups[0]

    def killed(self, i: int, unworked: float, held: int) -> None:
        """Instance i died (`faults.kill`): the work it will not do leaves its group's busy
        time, as it leaves the tier's, and its held workers and the instance are gone."""
        group, now, warmup = self.of(i), self.st.env._now, self.st.warmup
        group.busy -= unworked
        group.held_moved(now, -held, warmup)
        group.live_moved(now, -1, warmup)

    def revived(self, i: int) -> None:
        """Instance i serves again (`faults.revive`)."""
        self.of(i).live_moved(self.st.env._now, +1, self.st.warmup)

    def sample_queue(self) -> None:
        """The number waiting in each group now (at the tier's queue samples)."""
        live = self.st.live
        for group in self.groups:
            group.trace.append(sum(live[i] for i in group.members))

    def record(self, run: TierRun) -> None:
        st, horizon = self.st, self.st.horizon
        runs: dict[str, TierRun] = {}
        for name, group in zip(GROUP_NAMES, self.groups, strict=True):
            held = group.held_area + group.held * (horizon - max(group.held_since, st.warmup))
            live = group.live_area + group.live * (horizon - max(group.live_since, st.warmup))
            runs[name] = TierRun(
                workers=group.workers,
                arrivals=group.arrivals,
                completed=group.completed,
                rejected=group.rejected,
                busy_time=group.busy,
                occupied_time=held if st.blocking else group.busy,
                queue_trace=np.asarray(group.trace, dtype=float),
                overflow=group.overflow,
            )
            if run.live_worker_time is not None:  # instances died: over the group's live ones
                runs[name].live_worker_time = live * st.concurrency
        run.groups = runs


def install(st: Station) -> Groups | None:
    """Measure a database's primaries and replicas apart (None: any other tier, untouched)."""
    tier = st.tier
    if tier.kind != "database" or tier.replicas == 0:
        return None
    figures = Groups(st)
    primary, replicas = figures.groups
    first_replica = figures.first_replica
    env, warmup, free = st.env, st.warmup, st.free
    inner_arrive, inner_release = st.arrive, st.release
    inner_done = st.on_work_done

    def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
        group = replicas if i >= first_replica else primary
        busy, idle, overflow = st.busy, free[i], st.overflow
        admitted = inner_arrive(i, k, now, cont)
        group.busy += st.busy - busy
        if free[i] != idle:
            group.held_moved(now, idle - free[i], warmup)
        if now >= warmup:
            group.arrivals += 1
            if not admitted:
                group.rejected += 1
                group.overflow += st.overflow - overflow
        return admitted

    def release(i: int) -> None:
        group = replicas if i >= first_replica else primary
        busy, idle = st.busy, free[i]
        inner_release(i)
        group.busy += st.busy - busy
        if free[i] != idle:
            group.held_moved(env._now, idle - free[i], warmup)

    def count_done(value: Any) -> None:
        if env._now >= warmup:
            i = value[0]
            (replicas if i >= first_replica else primary).completed += 1

    done: tuple[Callable[[Any], None], ...] = (count_done, *inner_done)
    st.arrive = arrive
    st.release = release
    st.on_work_done = done
    st.recorders.append(figures.record)
    return figures
