"""KEDA-style scaling of a queue's consumers on its backlog or lag (`Tier.consumer_scaling`).

`install` runs on a queue tier with a scaler (called by `consumers.install`): the queue's one
instance starts with `initial` consumers' workers of the `max` it may have, and every
`polling_interval` the scaler reads the backlog (messages waiting) or the lag (waiting or being
consumed) and sets the consumer count (docs/dynamic.md#scaling-queue-consumers-on-backlog-keda):

* from 0 consumers, a poll that sees more than `activation_threshold` messages (default 0: any)
  starts one (KEDA's activation);
* with no such poll since `cooldown_period` and `min` 0, the count goes to 0 (KEDA's cooldown);
* otherwise the HPA's rule for an external metric with an average-value target: nothing changes
  when |metric / (target x current) - 1| <= tolerance, else ceil(metric / target), within
  [max(min, 1), max]; a scale-down takes the highest recommendation of the last
  `scale_down_stabilization`; a scale-up stays within the HPA's scale-up policies when the
  scaler has them (`scaling_policy`).

A new consumer takes messages after `startup_time`; a removed one stops taking messages at once
and goes when its message is done. The instance count of the time series (and the worker time of
utilization) counts consumers, a draining consumer until its last worker is done.

A lost region kills the queue's one instance (`faults.kill`) with every consumer in it
(`lost`): none is live until it is back (`back`, with the consumers the scaler counted, ready),
and the scaler does not poll meanwhile.
"""

from __future__ import annotations

import math
from collections import deque

import simpy

from capsim.engine.events.clock import after
from capsim.engine.events.scaling_policy import scale_up_limit
from capsim.engine.events.station import Station
from capsim.engine.result import TierRun
from capsim.model.types import ConsumerScaling


def install(st: Station) -> None:
    """Scale the consumers of a queue tier that has `consumer_scaling`."""
    scaling = st.tier.consumer_scaling
    if scaling is None:
        return
    _ConsumerScaler(st, scaling)


class _ConsumerScaler:
    """The scaler's state: consumers asked for, workers still owed by removed consumers, the
    last time a message was seen, and the scale-down window's recommendations."""

    def __init__(self, st: Station, scaling: ConsumerScaling) -> None:
        self.st, self.scaling = st, scaling
        self.per = scaling.per_consumer
        self.consumers = scaling.initial  # running or starting
        self.starting: deque[list[int]] = deque()  # consumers per start, oldest first
        self.owed = 0  # busy workers of removed consumers, retired when their message is done
        self.last_active = 0.0  # the scaler counts from t = 0 as active (no cooldown at once)
        self.highest: deque[tuple[float, int]] = deque()
        st.free[0] = scaling.initial * self.per
        st.live_count = scaling.initial  # the integral of live instances counts consumers
        self.take = st.release  # a worker that frees up takes the next message
        st.release = self.release
        st.recorders.append(self.record)
        st.sim.killed, st.sim.revived = self.lost, self.back
        self.polling = True  # a poll is due; the scaler stops while the queue is lost
        after(st.env, scaling.polling_interval).callbacks.append(self.poll)

    # -- workers ------------------------------------------------------------------------------
    def release(self, i: int) -> None:
        if self.owed == 0:
            self.take(i)
            return
        # The worker of a removed consumer goes instead of taking the next message.
        st = self.st
        self.owed -= 1
        st.at[i] -= 1
        st.held_moved(st.env._now, -1)
        st.count_live(-1 / self.per)

    def add_workers(self, consumers: int) -> None:
        # Each new worker arrives as a worker just released: it takes a waiting message or waits.
        st = self.st
        for _ in range(consumers * self.per):
            st.at[0] += 1
            st.held_moved(st.env._now, +1)
            self.take(0)

    def ready(self, event: simpy.Event) -> None:
        batch = event.value
        assert isinstance(batch, list)
        if self.starting and self.starting[0] is batch:
            self.starting.popleft()
        self.add_workers(batch[0])

    # -- the queue lost with its region ---------------------------------------------------------
    def lost(self, i: int) -> None:
        """The queue's one instance died (`faults.kill`, which took its messages and work):
        every consumer goes with it, starting ones too, and none is live or billed until it is
        back; the scaler stops polling."""
        st = self.st
        for batch in self.starting:
            batch[0] = 0  # its start-up timer adds no worker
        self.starting.clear()
        self.owed = 0
        st.count_live(-st.live_count)
        st.held_moved(st.env._now, -st.held)  # `kill` freed the workers of all `max` consumers

    def back(self, i: int) -> None:
        """The queue serves again (`faults.revive`) with the consumers the scaler counted when
        it was lost, ready (a starting one skips the rest of its start-up); the scaler polls
        again `polling_interval` later."""
        st = self.st
        st.free[0] = self.consumers * self.per
        st.count_live(self.consumers - st.live_count)
        if not self.polling and st.env._now + self.scaling.polling_interval < st.horizon:
            self.polling = True
            after(st.env, self.scaling.polling_interval).callbacks.append(self.poll)

    # -- scaling ------------------------------------------------------------------------------
    def add(self, count: int) -> None:
        self.st.count_live(+count)
        if self.scaling.startup_time <= 0.0:
            self.add_workers(count)
            return
        batch = [count]
        self.starting.append(batch)
        timer = after(self.st.env, self.scaling.startup_time, batch)
        timer.callbacks.append(self.ready)

    def remove(self, count: int) -> None:
        # Consumers still starting go first (newest first), then running ones.
        st = self.st
        while count and self.starting:
            batch = self.starting[-1]
            gone = min(count, batch[0])
            batch[0] -= gone
            count -= gone
            st.count_live(-gone)
            if batch[0] == 0:
                self.starting.pop()
        workers = count * self.per
        idle = min(st.free[0], workers)
        st.free[0] -= idle
        st.count_live(-idle / self.per)
        self.owed += workers - idle

    def metric(self) -> float:
        st = self.st
        if self.scaling.metric == "lag":
            return float(st.waiting_now + st.held)
        return float(st.waiting_now)

    def recommend(self, now: float, metric: float, current: int) -> int:
        """The consumer count this poll asks for (before the scale-down window)."""
        scaling = self.scaling
        active = metric > scaling.activation_threshold
        if current == 0:
            return max(scaling.min, 1) if active else 0  # KEDA's activation
        idle_for = now - self.last_active
        if not active and scaling.min == 0 and idle_for >= scaling.cooldown_period - 1e-9:
            return 0  # KEDA's cooldown: back to zero
        ratio = metric / (scaling.target * current)
        if abs(ratio - 1.0) <= scaling.tolerance:
            return current
        wanted = math.ceil(metric / scaling.target - 1e-9)
        return min(max(wanted, scaling.min, 1), scaling.max)

    def limited_up(self, now: float, wanted: int, current: int) -> int:
        """A scale-up within the HPA's scale-up policies, when the scaler has any."""
        scaling = self.scaling
        limit = scale_up_limit(
            self.st.sim.scaling,
            now,
            current,
            percent=scaling.max_scale_up,
            pods=scaling.max_scale_up_instances,
            period=scaling.scale_up_period,
            select=scaling.scale_up_select,
        )
        return wanted if limit is None else min(wanted, limit)

    def stabilised_down(self, now: float, wanted: int) -> int:
        """The highest recommendation of the scale-down window (this one included)."""
        highest = self.highest
        while highest and highest[-1][1] <= wanted:
            highest.pop()
        highest.append((now, wanted))
        while highest[0][0] < now - self.scaling.scale_down_stabilization:
            highest.popleft()
        return highest[0][1]

    def poll(self, event: simpy.Event) -> None:
        st, scaling = self.st, self.scaling
        if not st.alive[0]:
            self.polling = False  # lost: `back` starts polling again
            return
        now = st.env._now
        metric = self.metric()
        if metric > scaling.activation_threshold:
            self.last_active = now
        current = self.consumers
        wanted = self.recommend(now, metric, current)
        if wanted == 0 or current == 0:
            result = wanted  # KEDA's own decisions (to and from zero) skip the HPA's window
            self.highest.clear()
        else:
            down = self.stabilised_down(now, wanted)
            result = (
                self.limited_up(now, wanted, current) if wanted > current else min(down, current)
            )
        if result > current:
            self.add(result - current)
        elif result < current:
            self.remove(current - result)
        if result != current:
            self.consumers = result
            st.sim.scaling.append((now, current, result))
        if now + scaling.polling_interval < st.horizon:
            after(st.env, scaling.polling_interval).callbacks.append(self.poll)
        else:
            self.polling = False

    def record(self, run: TierRun) -> None:
        """Utilization is over the workers of the consumers that existed (draining included)."""
        st = self.st
        consumer_time = st.live_integral(st.horizon) - st.before_window[2]
        run.live_worker_time = consumer_time * self.per
