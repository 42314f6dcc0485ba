"""A queue tier's consumers in batches, and at most one consumer per partition at a time.

`install` replaces `arrive` on a queue tier with `batch` or `partitions`: messages go round
robin to partitions; a free consumer takes the ready batch (full, or its first message has
lingered `linger`) whose first message is oldest. A batch's service time is drawn once; its
messages share one answer. Finished batches may answer an error under a fault (FAULT stream).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import Any

from capsim.engine import streams
from capsim.engine.events import consumer_scaling
from capsim.engine.events.clock import _Timer
from capsim.engine.events.draws import _buffered
from capsim.engine.events.signatures import Cont
from capsim.engine.events.station import Station, Waiting


def install(st: Station) -> None:
    """Scale a queue's consumers on its backlog (`consumer_scaling`), or replace `arrive` on a
    queue tier consumed in batches or by partition (the scenario allows one or the other)."""
    tier = st.tier
    consumer_scaling.install(st)
    if not (tier.is_async and (tier.batch_size > 1 or tier.partitions is not None)):
        return
    _Consumers(st)


class _Consumers:
    """The partitions' lines and the free consumers of one queue tier."""

    def __init__(self, st: Station) -> None:
        tier = st.tier
        self.st = st
        self.size, self.linger = tier.batch_size, tier.batch_linger
        self.exclusive = tier.partitions is not None
        # Partitions are made when a message first lands in one and forgotten when empty, so
        # `partitions: 10000000` costs what its messages cost, not ten million queues.
        self.partition_count = tier.partitions or 1
        self.parts: dict[int, deque[Waiting]] = {}
        self.part_live: dict[int, int] = {}  # messages still waiting per partition
        self.consuming: set[int] = set()  # partitions a consumer holds (exclusive only)
        self.idle = tier.concurrency  # free consumers
        self.turn = itertools.count()
        self.error_draw = (
            _buffered(st.window.tier_rng(tier.name, streams.FAULT).random) if st.faults else None
        )
        self.on_linger = (self.dispatch,)
        self.on_batch_done = (self.batch_done,)
        self.on_give_up = (self.give_up,)
        st.arrive = self.arrive
        st.waiting_elsewhere.append(self.entries)

    def entries(self) -> list[Waiting]:
        """Every message in the partitions' lines (given-up ones included)."""
        return [entry for queue in self.parts.values() for entry in queue]

    def head(self, p: int) -> Waiting | None:
        queue = self.parts.get(p)
        if queue is None:
            return None
        while queue and not queue[0].live:
            queue.popleft()  # given up on (timeout) while it waited
        if queue:
            return queue[0]
        if p not in self.consuming:
            del self.parts[p]
            self.part_live.pop(p, None)
        return None

    def dispatch(self, event: Any = None) -> None:
        # Free consumers take the ready batch whose first message is oldest, until none.
        now = self.st.env._now
        while self.idle:
            best = -1
            oldest = math.inf
            # Ties between equally old batches go to the lowest partition.
            for p in list(self.parts):
                if p in self.consuming:
                    continue
                first = self.head(p)
                if (
                    first is None
                    or first.arrived > oldest
                    or (first.arrived == oldest and p > best)
                ):
                    continue
                if self.part_live[p] >= self.size or now >= first.arrived + self.linger - 1e-12:
                    best, oldest = p, first.arrived
            if best < 0:
                return
            self.consume(best, now)

    def consume(self, p: int, now: float) -> None:
        st = self.st
        queue = self.parts[p]
        batch: list[Waiting] = []
        while queue and len(batch) < self.size:
            entry = queue.popleft()
            if entry.live:
                entry.live = False
                batch.append(entry)
        taken = len(batch)
        self.part_live[p] -= taken
        st.queue_moved(now, -taken)
        st.held_moved(now, +1)
        self.idle -= 1
        if self.exclusive:
            self.consuming.add(p)
        warmup, horizon = st.warmup, st.horizon
        if now >= warmup:
            for entry in batch:
                if now > entry.arrived:
                    st.wait_recorder.record(now - entry.arrived)
                else:
                    st.zero_waits += 1
        k = batch[0].k
        s = st.service[k]()  # per batch
        end = now + s
        if end > warmup:
            st.busy += (end if end < horizon else horizon) - (now if now > warmup else warmup)
        st.later(s, self.on_batch_done, (p, batch))
        first = self.head(p)
        if first is not None and first.arrived + self.linger > now:
            st.later(first.arrived + self.linger - now, self.on_linger, None)

    def batch_done(self, event: _Timer) -> None:
        st = self.st
        p, batch = event._value
        now = st.env._now
        k = batch[0].k
        error_draw, error_now = self.error_draw, st.error_now[0]
        if error_draw is not None and error_now > 0.0 and error_draw() < error_now:
            if now >= st.warmup:
                st.rejected += len(batch)
            self.finish(p, batch, False)
            return
        if now >= st.warmup:
            st.completed += len(batch)
        run_calls = st.runners[k]
        if run_calls is None:
            self.finish(p, batch, True)
        elif st.blocking:
            run_calls(k, lambda ok: self.finish(p, batch, ok))
        else:
            # The consumer goes on without its calls; its messages are done (their age, their
            # outcome) when the calls answer, as on a queue without partitions or batches.
            self.free(p)
            self.dispatch()
            run_calls(k, lambda ok: self.answer(batch, ok))

    def finish(self, p: int, batch: list[Waiting], ok: bool) -> None:
        self.free(p)
        self.answer(batch, ok)
        self.dispatch()

    def free(self, p: int) -> None:
        """The consumer of partition `p` is free (and the partition with it)."""
        self.st.held_moved(self.st.env._now, -1)
        self.idle += 1
        self.consuming.discard(p)

    @staticmethod
    def answer(batch: list[Waiting], ok: bool) -> None:
        for entry in batch:
            entry.cont(ok)

    def give_up(self, event: _Timer) -> None:
        entry = event._value
        if not entry.live:
            return
        entry.live = False
        self.part_live[entry.place] -= 1
        self.st.time_out(entry)

    def arrive(self, i: int, k: int, now: float, cont: Cont) -> bool:
        st = self.st
        if st.max_queue is not None and st.waiting_now >= st.max_queue:
            return st.refuse(now)
        if st.waiting_now >= st.overflow_limit:
            if now >= st.warmup:
                st.overflow += 1
            return st.refuse(now)
        p = next(self.turn) % self.partition_count  # round robin, as a producer without keys
        entry = Waiting(now, k, cont, p)
        if p not in self.parts:
            self.parts[p] = deque()
            self.part_live[p] = 0
        self.parts[p].append(entry)
        self.part_live[p] += 1
        st.queue_moved(now, +1)
        if st.queue_timeout is not None:
            st.later(st.queue_timeout, self.on_give_up, entry)
        if self.part_live[p] == 1 and self.linger > 0.0:
            st.later(self.linger, self.on_linger, None)  # the new batch is due then at the latest
        self.dispatch()
        return True
