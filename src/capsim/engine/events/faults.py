"""Faults: instances that die and come back, error answers, slowdowns.

`install` wraps `arrive` (a dead instance refuses at once, as a refused connection) and
replaces `on_work_done` (finished work may answer an error; a blocking worker whose instance
died while its calls were out fails its request). Slowdowns act on the service draws, which the
Station wraps when the tier has a slowing fault. Error draws come from the tier's FAULT stream.
"""

from __future__ import annotations

import math
from dataclasses import replace

import simpy

from capsim.engine import streams
from capsim.engine.events.clock import after, cancel, pending_timers
from capsim.engine.events.draws import _buffered
from capsim.engine.events.signatures import Cont
from capsim.engine.events.station import Station
from capsim.model.types import Fault


def kill(st: Station, i: int) -> None:
    """Instance i dies with everything in it: its queue and its work in progress fail now."""
    now = st.env._now
    st.alive[i] = False
    st.epoch[i] += 1
    st.count_live(-1)
    failed: list[Cont] = []
    queue = st.waiting[i]
    while queue:
        entry = queue.popleft()
        if entry.live:
            entry.live = False
            st.live[i] -= 1
            st.queue_moved(now, -1)
            failed.append(entry.cont)
    warmup, horizon = st.warmup, st.horizon
    busy = st.busy
    for position, end, work in list(pending_timers(st.env, st.work_done_fn)):
        if work[0] != i:
            continue
        cancel(st.env, position)
        unworked = min(end, horizon) - max(now, warmup)
        if unworked > 0:
            st.busy -= unworked
        if end > now:
            st.cancelled.record(now, end - now)
        failed.append(work[2])
    if st.sim.groups is not None:  # a database's primaries and replicas (`groups`)
        st.sim.groups.killed(i, busy - st.busy, st.concurrency - st.free[i])
    st.held_moved(now, -(st.concurrency - st.free[i]))
    st.free[i] = 0
    st.at[i] = 0
    routable = st.sim.routable
    if routable is not None and st.tier.health_check is None:
        routable[i] = False
    if st.sim.killed is not None:
        st.sim.killed(i)
    if now >= warmup:
        st.rejected += len(failed)
    for cont in failed:
        cont(False)


def revive(st: Station, i: int) -> None:
    """Instance i is back, with every worker free and an empty line."""
    st.alive[i] = True
    st.free[i] = st.concurrency
    st.count_live(+1)
    if st.sim.groups is not None:
        st.sim.groups.revived(i)
    routable = st.sim.routable
    if routable is not None and st.tier.health_check is None:
        routable[i] = True
    if st.sim.revived is not None:
        st.sim.revived(i)


def install(st: Station) -> None:
    """Wrap `arrive` and `on_work_done` and schedule each fault's start and end; a tier whose
    spot instances are interrupted (`spot`) gets the same guards."""
    pricing = st.tier.pricing
    if not st.faults and (pricing is None or not pricing.interrupts):
        return
    env, warmup = st.env, st.warmup
    st.sim.routable = [True] * st.servers
    fault_draw = _buffered(st.window.tier_rng(st.tier.name, streams.FAULT).random)
    alive, epoch, error_now = st.alive, st.epoch, st.error_now
    checked = st.arrive
    work_done = st.on_work_done[0]

    def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
        # A dead instance refuses at once (connection refused).
        if alive[i]:
            return checked(i, k, now, cont)
        return st.refuse(now)

    def faulty_work_done(value: tuple[int, int, Cont]) -> None:
        i, k, cont = value
        p = error_now[0]
        if p > 0.0 and fault_draw() < p:
            if env._now >= warmup:
                st.rejected += 1
            st.release(i)
            cont(False)
            return
        run_calls = st.runners[k]
        if not st.blocking or run_calls is None:
            work_done(value)
            return
        if env._now >= warmup:
            st.completed += 1
        started = epoch[i]

        def calls_done(ok: bool) -> None:
            if epoch[i] == started:
                st.release(i)
                cont(ok)
            else:  # the instance died while its calls were out: its request fails now
                if env._now >= warmup:
                    st.rejected += 1
                cont(False)

        run_calls(k, calls_done)

    st.arrive = arrive
    st.on_work_done = (faulty_work_done,)
    _schedule(st, st.faults)  # health checks: `balancing.install`, right after this


def _every_slot_in_place(st: Station, fault: Fault) -> Fault:
    """A lost zone or region takes every slot in it, also those an autoscaler has not launched
    yet: nothing can be launched there while the fault lasts. (A count or a share takes the
    instances the tier starts with, and the autoscaler launches others elsewhere.)"""
    rule = fault.losing
    if rule is None or not (rule.every or rule.zone is not None) or st.servers == st.tier.servers:
        return fault
    return replace(fault, lose=rule.servers(st.servers, st.tier.zones))


def _schedule(st: Station, faults: list[Fault]) -> None:
    """Each fault begins at `at` and ends at `until`; overlapping faults multiply."""
    env, down = st.env, st.down
    active: list[Fault] = []

    def recompute() -> None:
        st.error_now[0] = 1.0 - math.prod(1.0 - f.error_rate for f in active)
        st.slow[0] = math.prod(f.slowdown for f in active)

    def begin(fault: Fault) -> None:
        active.append(fault)
        recompute()
        for i in fault.lose:
            down[i] += 1
            if down[i] == 1 and st.alive[i]:  # an autoscaler's switched-off slot: not running
                kill(st, i)

    def end(fault: Fault) -> None:
        active.remove(fault)
        recompute()
        revives = st.sim.revives
        for i in fault.lose:
            down[i] -= 1
            if down[i] == 0 and (revives is None or revives(i)):
                revive(st, i)

    faults = [_every_slot_in_place(st, fault) for fault in faults]
    for fault in faults:

        def on_begin(_: simpy.Event, fault: Fault = fault) -> None:
            begin(fault)

        def on_end(_: simpy.Event, fault: Fault = fault) -> None:
            end(fault)

        after(env, fault.at).callbacks.append(on_begin)
        if fault.until is not None and fault.until < st.horizon:
            after(env, fault.until).callbacks.append(on_end)
