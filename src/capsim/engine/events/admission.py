"""Admission in front of a tier's instances: a queue tier's redelivered messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from capsim.engine.events.signatures import Cont

if TYPE_CHECKING:
    from capsim.engine.events.tier import _TierSim


class _Delivery:
    """One message of a queue tier with `max_retries`: a failed consumption is redelivered (to
    the back of the queue) up to `max_retries` times, then the message is dead-lettered."""

    __slots__ = ("arrive", "enqueued", "k", "left", "record_age", "sim")

    def __init__(
        self,
        sim: _TierSim,
        k: int,
        enqueued: float,
        max_retries: int,
        arrive: Callable[[int, int, float, Cont], bool],
        record_age: Callable[[float], None],
    ) -> None:
        self.sim = sim
        self.k = k
        self.enqueued = enqueued
        self.left = max_retries
        self.arrive = arrive
        self.record_age = record_age

    def __call__(self, ok: bool) -> None:
        sim = self.sim
        now = sim.env._now
        counted = now >= sim._window.warmup
        if not ok and self.left > 0:
            self.left -= 1
            if counted:
                sim.redeliveries += 1
            if self.arrive(0, self.k, now, self):
                return
        if not ok:
            if counted:
                sim.dead_letters += 1
            return
        if counted:
            self.record_age(now - self.enqueued)
