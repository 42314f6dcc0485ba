"""Autoscaling: the Kubernetes HPA, every sync period, on a tier with `autoscale`.

`install` wraps `arrive` and `release`, counts the service time drawn (the utilization metric)
and starts the sync loop. Scale-to-zero tiers are `serverless`'s instead.

A spot instance the cloud takes back (`spot`) is, for the HPA, a pod being replaced: it counts
as a starting pod (not ready, so no metric, and it damps a scale-up as starting pods do), so
the desired count is unchanged and the HPA does not launch another; its replacement is ready
`replace_after` later. The HPA may remove it meanwhile (starting pods go first): the slot stays
off and no replacement comes up. A draining instance that is taken back is simply gone."""

from __future__ import annotations

import math
from collections import deque

import simpy

from capsim.engine.events.clock import after, pending_timers
from capsim.engine.events.draws import _counted_draw
from capsim.engine.events.scaling_policy import scale_up_limit
from capsim.engine.events.signatures import Cont
from capsim.engine.events.station import Station
from capsim.model.types import Autoscale

_OFF, _STARTING, _READY, _DRAINING, _REPLACING = range(5)  # an autoscaled instance's states


def _hpa_recommendation(
    scaler: Autoscale, total: float, ready: int, starting: int, current: int
) -> int:
    """The HPA's desired count from the metric's total over ready instances (replica_calculator).

    desired = ceil(ready x average / target), unless the ratio is within the tolerance of 1.
    When scaling up with instances still starting, those count as using nothing, which damps
    the step; if that reverses the direction or lands within the tolerance, nothing changes.
    """
    if ready == 0:
        return current  # no metrics yet: the HPA leaves the count alone
    ratio = total / (ready * scaler.target)
    if starting and ratio > 1.0:
        damped = total / ((ready + starting) * scaler.target)
        if damped < 1.0 or abs(damped - 1.0) <= scaler.tolerance:
            return current
        return max(math.ceil(damped * (ready + starting) - 1e-9), current)
    if abs(ratio - 1.0) <= scaler.tolerance:
        return current
    return math.ceil(ratio * ready - 1e-9)


def install(st: Station) -> None:
    """The HPA on a tier with `autoscale` (not scale-to-zero): wraps `arrive` (counts offered
    requests; a switched-off instance refuses) and `release` (a draining instance switches off
    when its last request leaves), counts the service time drawn, and syncs every period."""
    scaler = st.tier.autoscale
    if scaler is None or scaler.scale_to_zero:
        return
    sim, servers = st.sim, st.servers
    if sim.routable is None:
        sim.routable = [True] * servers
    routable = sim.routable
    alive, free = st.alive, st.free
    initial = min(max(st.tier.instances, scaler.min), scaler.max)
    state = [_READY if i < initial else _OFF for i in range(servers)]
    for i in range(initial, servers):
        alive[i] = False
        free[i] = 0
        routable[i] = False
    st.live_count = initial
    drawn = [0.0]  # service time drawn so far: work started, finished or not
    st.service[:] = [_counted_draw(draw, drawn) for draw in st.service]
    offered = [0]
    admit = st.arrive

    def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
        offered[0] += 1
        if alive[i]:
            return admit(i, k, now, cont)
        return st.refuse(now)

    free_worker = st.release

    def release(i: int) -> None:
        free_worker(i)
        if state[i] == _DRAINING and st.at[i] == 0:
            switch_off(st, state, i)

    st.arrive = arrive
    st.release = release
    _replace_spot_as_starting(st, state)
    _revive_after_faults(st, state)
    _Scaler(st, scaler, state, drawn, offered)


def _replace_spot_as_starting(st: Station, state: list[int]) -> None:
    """An interrupted spot instance is replaced as a starting pod (the module's docstring)."""
    replacement = st.sim.spot_replacement
    if replacement is None:
        return

    def lost(i: int) -> None:
        state[i] = _OFF if state[i] == _DRAINING else _REPLACING

    def back(i: int) -> bool:
        if state[i] != _REPLACING:
            return False  # removed by the HPA while being replaced
        state[i] = _READY
        return True

    replacement.lost, replacement.back = lost, back


def _revive_after_faults(st: Station, state: list[int]) -> None:
    """When its faults end, a lost instance the HPA still counts serves again (one that was
    starting comes back ready); one it switched off, or that was draining, stays off."""

    def revives(i: int) -> bool:
        if state[i] in (_OFF, _DRAINING):
            state[i] = _OFF
            return False
        if state[i] == _STARTING:
            state[i] = _READY
        return True

    st.sim.revives = revives


def switch_off(st: Station, state: list[int], i: int) -> None:
    state[i] = _OFF
    st.alive[i] = False
    assert st.sim.routable is not None
    st.sim.routable[i] = False
    st.free[i] = 0
    st.count_live(-1)


class _Scaler:
    """The HPA's loop: every sync period, measure, recommend, stabilise, add or remove."""

    def __init__(
        self,
        st: Station,
        scaler: Autoscale,
        state: list[int],
        drawn: list[float],
        offered: list[int],
    ) -> None:
        self.st, self.scaler, self.state = st, scaler, state
        self.drawn, self.offered = drawn, offered
        assert st.sim.routable is not None
        self.routable = st.sim.routable
        self.last = (0.0, 0.0, 0.0, 0.0)
        # The recommendations of the stabilization windows, as monotone queues: the lowest
        # of the scale-up window and the highest of the scale-down window are at the front,
        # so a sync costs the same whatever the window holds (a sync every millisecond
        # over a 300 s window would otherwise scan 300,000 recommendations).
        self.lowest: deque[tuple[float, int]] = deque()
        self.highest: deque[tuple[float, int]] = deque()
        after(st.env, scaler.sync_period).callbacks.append(self.sync)

    def ready(self, event: simpy.Event) -> None:
        i, started = event.value  # type: ignore[misc]
        if self.state[i] == _STARTING and self.st.epoch[i] == started:
            self.state[i] = _READY
            self.routable[i] = True

    def add(self, count: int) -> int:
        """Launch up to `count` instances; returns how many (a lost slot cannot be launched,
        so a lost zone or region may leave none to launch)."""
        st, state = self.st, self.state
        launched = 0
        for i in range(st.servers):
            if launched == count:
                break
            if state[i] == _OFF and not st.down[i]:
                launched += 1
                state[i] = _STARTING
                st.alive[i] = True
                st.free[i] = st.concurrency
                st.epoch[i] += 1
                st.count_live(+1)
                timer = after(st.env, self.scaler.startup_time, (i, st.epoch[i]))
                timer.callbacks.append(self.ready)
        return launched

    def remove(self, count: int) -> None:
        # Lost instances (being replaced after a spot interruption, or down for a fault) and
        # those still starting go first (newest first), then ready ones (last first).
        st, state = self.st, self.state
        for wanted in (_STARTING, _READY):
            for i in reversed(range(st.servers)):
                if not count:
                    return
                if wanted == _STARTING and self.lost(i):
                    count -= 1
                    state[i] = _OFF  # already down: nothing comes back up
                elif state[i] == wanted:
                    count -= 1
                    self.routable[i] = False
                    if wanted == _STARTING or st.at[i] == 0:
                        switch_off(st, state, i)
                    else:
                        state[i] = _DRAINING

    def lost(self, i: int) -> bool:
        """Instance i counts for the HPA but is down (a spot replacement, or a fault)."""
        state = self.state[i]
        return state == _REPLACING or (state in (_STARTING, _READY) and not self.st.alive[i])

    def busy_until(self, now: float) -> float:
        # Work drawn so far, less what is still ahead of the work in progress.
        timers = pending_timers(self.st.env, self.st.work_done_fn)
        ahead = sum(when - now for _, when, _ in timers if when > now)
        return self.drawn[0] - ahead

    def measure(self, now: float) -> float:
        # The metric's total over ready instances for the period ending now.
        st, scaler = self.st, self.scaler
        queue, held_total, _ = st.integrals(now)
        figures = (self.busy_until(now), held_total, queue, float(self.offered[0]))
        previous, self.last = self.last, figures
        period = scaler.sync_period
        busy_delta, held_delta, queue_delta, offered_delta = (
            a - b for a, b in zip(figures, previous, strict=True)
        )
        if scaler.metric == "utilization":
            return busy_delta / (st.concurrency * period)
        if scaler.metric == "occupancy":
            return held_delta / (st.concurrency * period)
        if scaler.metric == "queue_length":
            return queue_delta / period
        if scaler.metric == "in_flight":  # waiting, in service or held for calls
            return (queue_delta + held_delta) / period
        return offered_delta / period

    def sync(self, event: simpy.Event) -> None:
        st, scaler, state = self.st, self.scaler, self.state
        now = st.env._now
        total = self.measure(now)
        ready_count = sum(1 for i in range(st.servers) if state[i] == _READY and st.alive[i])
        starting = sum(1 for s in state if s in (_STARTING, _REPLACING))
        current = ready_count + starting
        wanted = _hpa_recommendation(scaler, total, ready_count, starting, current)
        wanted = min(max(wanted, scaler.min), scaler.max)
        up, down = self._stabilised(now, wanted)
        result = current
        # No change at all while cooling down from the last one.
        scaling = st.sim.scaling
        cooling = bool(scaling) and now - scaling[-1][0] < scaler.cooldown
        if cooling:
            result = current
        elif up > current:
            limit = scale_up_limit(
                scaling,
                now,
                current,
                percent=scaler.max_scale_up,
                pods=scaler.max_scale_up_instances,
                # Default: one sync's worth (a change at the previous sync is outside it).
                period=scaler.scale_up_period or scaler.sync_period,
                select=scaler.scale_up_select,
            )
            result = up if limit is None else min(up, limit)
        elif down < current:
            result = down
        if result > current:
            result = current + self.add(result - current)
        elif result < current:
            self.remove(current - result)
        if result != current:
            scaling.append((now, current, result))
        if now + scaler.sync_period < st.horizon:
            after(st.env, scaler.sync_period).callbacks.append(self.sync)

    def _stabilised(self, now: float, wanted: int) -> tuple[int, int]:
        """(lowest recommendation over the scale-up window, highest over the scale-down one)."""
        scaler, lowest, highest = self.scaler, self.lowest, self.highest
        while lowest and lowest[-1][1] >= wanted:
            lowest.pop()
        lowest.append((now, wanted))
        while lowest[0][0] < now - scaler.scale_up_stabilization:
            lowest.popleft()
        while highest and highest[-1][1] <= wanted:
            highest.pop()
        highest.append((now, wanted))
        while highest[0][0] < now - scaler.scale_down_stabilization:
            highest.popleft()
        return lowest[0][1], highest[0][1]
