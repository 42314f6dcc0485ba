"""Serverless: a scale-to-zero tier starts an instance for a request that finds no free worker.

`install` replaces `arrive` and `release`: a request takes a warm worker, else a slot of an
instance already starting, else starts one (a cold start), else waits in the activator's buffer.
An instance idle for `keep_warm` is switched off (never below `min`).
"""

from __future__ import annotations

from collections import deque

from capsim.engine.events.autoscaling import _OFF, _READY, _STARTING
from capsim.engine.events.clock import _Timer
from capsim.engine.events.signatures import Cont
from capsim.engine.events.station import Station, Waiting
from capsim.engine.result import TierRun


def install(st: Station) -> None:
    """Replace `arrive` and `release` on a tier with `autoscale: {scale_to_zero: true}`."""
    scaler = st.tier.autoscale
    if scaler is None or not scaler.scale_to_zero:
        return
    env, warmup, servers = st.env, st.warmup, st.servers
    free, at, alive = st.free, st.at, st.alive
    concurrency = st.concurrency
    start, later = st.start, st.later
    max_queue, queue_timeout = st.max_queue, st.queue_timeout
    initial = scaler.initial if scaler.initial is not None else st.tier.instances
    state = [_READY if i < initial else _OFF for i in range(servers)]
    for i in range(initial, servers):
        alive[i] = False
        free[i] = 0
    st.live_count = initial
    running = [initial]  # instances starting or ready
    claimed = [0] * servers  # slots of a starting instance promised to waiting requests
    pending: list[list[Waiting]] = [[] for _ in range(servers)]
    idle_mark = [0] * servers  # bumped whenever an instance becomes idle or busy
    buffer: deque[Waiting] = deque()  # the activator's: requests no slot could take
    cold_start, keep_warm = scaler.cold_start, scaler.keep_warm
    cold_starts = [0]  # instances started for a request, in the window
    st.waiting_elsewhere.append(lambda: [*buffer, *(e for line in pending for e in line)])

    def record(run: TierRun) -> None:
        run.cold_starts = cold_starts[0]

    st.recorders.append(record)

    def take(i: int, entry: Waiting, now: float) -> None:
        # A waiting request takes a worker of instance i.
        entry.live = False
        st.queue_moved(now, -1)
        free[i] -= 1
        at[i] += 1
        idle_mark[i] += 1
        st.held_moved(now, +1)
        start(i, entry.k, entry.arrived, now, entry.cont)

    def warmed(event: _Timer) -> None:
        i = event._value
        state[i] = _READY
        claimed[i] = 0
        now = env._now
        for entry in pending[i]:
            if entry.live:  # not given up on while the instance started
                take(i, entry, now)
        pending[i] = []
        while free[i] and buffer:
            entry = buffer.popleft()
            if entry.live:
                take(i, entry, now)
        settle(i, now)

    on_warmed = (warmed,)

    def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
        for j in range(servers):
            if state[j] == _READY and free[j]:
                # A warm worker: start at once (the common path of start()).
                free[j] -= 1
                at[j] += 1
                idle_mark[j] += 1
                st.held_moved(now, +1)
                start(j, k, now, now, cont)
                return True
        entry = Waiting(now, k, cont, -1)
        target = -1
        for j in range(servers):
            if state[j] == _STARTING and claimed[j] < concurrency:
                target = j
                break
        if target < 0 and running[0] < servers:
            target = state.index(_OFF)
            state[target] = _STARTING
            alive[target] = True
            free[target] = concurrency
            running[0] += 1
            st.count_live(+1)
            if now >= warmup:
                cold_starts[0] += 1
            later(cold_start, on_warmed, target)
        if target < 0:
            if max_queue is not None and len(buffer) >= max_queue:
                return st.refuse(now)
            if st.waiting_now >= st.overflow_limit:
                if now >= warmup:
                    st.overflow += 1
                return st.refuse(now)
            buffer.append(entry)
        else:
            claimed[target] += 1
            pending[target].append(entry)
        st.queue_moved(now, +1)
        if queue_timeout is not None:
            later(queue_timeout, on_give_up, entry)
        return True

    def give_up(event: _Timer) -> None:
        entry = event._value
        if not entry.live:
            return
        entry.live = False
        st.time_out(entry)

    on_give_up = (give_up,)

    def release(i: int) -> None:
        now = env._now
        at[i] -= 1
        while buffer:
            entry = buffer.popleft()
            if entry.live:
                # The freed worker goes straight to the longest-buffered request.
                st.held_moved(now, -1)
                free[i] += 1
                take(i, entry, now)
                return
        free[i] += 1
        st.held_moved(now, -1)
        settle(i, now)

    def settle(i: int, now: float) -> None:
        # An instance with every worker free starts its keep-warm clock.
        if free[i] == concurrency and state[i] == _READY:
            idle_mark[i] += 1
            later(keep_warm, on_idle_long, (i, idle_mark[i]))

    def idle_long(event: _Timer) -> None:
        i, mark = event._value
        if state[i] == _READY and idle_mark[i] == mark and running[0] > scaler.min:
            state[i] = _OFF
            alive[i] = False
            free[i] = 0
            running[0] -= 1
            st.count_live(-1)

    on_idle_long = (idle_long,)
    for i in range(initial):
        settle(i, 0.0)
    st.arrive = arrive
    st.release = release
