"""The clock: the only code that puts timers straight onto SimPy's private schedule.

A `_Timer` is the least a SimPy event needs to be stepped by `Environment.step`; the engine
schedules millions of them, so they go onto the environment's heap without building a full
Event."""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy

_NORMAL = 1  # simpy.events.NORMAL: the priority of an ordinary timeout


class _Timer:
    """The least a SimPy event needs to be stepped by Environment.step: callbacks, _ok, _value.

    A Timeout would do, but builds a full Event and makes two more Python calls; the engine
    schedules millions of these, so they go straight onto the environment's heap instead.
    """

    __slots__ = ("_value", "callbacks")
    _ok = True
    _value: Any
    callbacks: tuple[Callable[[Any], None], ...] | None


def _scheduler(
    env: simpy.Environment,
) -> Callable[[float, tuple[Callable[[Any], None]], Any], None]:
    """later(delay, callbacks, value): run each callback with the timer after `delay`."""
    heap: list[Any] = env._queue  # holds _Timer objects too: duck-typed events
    eid = env._eid

    def later(delay: float, callbacks: tuple[Callable[[Any], None]], value: Any) -> None:
        timer = _Timer()
        timer.callbacks = callbacks
        timer._value = value
        heappush(heap, (env._now + delay, _NORMAL, next(eid), timer))

    return later


def _scheduler_at(
    env: simpy.Environment,
) -> Callable[[float, tuple[Callable[[Any], None]], Any], None]:
    """at(when, callbacks, value): like `_scheduler`'s later, at the absolute time `when`."""
    heap: list[Any] = env._queue
    eid = env._eid

    def at(when: float, callbacks: tuple[Callable[[Any], None]], value: Any) -> None:
        timer = _Timer()
        timer.callbacks = callbacks
        timer._value = value
        heappush(heap, (when, _NORMAL, next(eid), timer))

    return at
