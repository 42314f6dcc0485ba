"""The clock: the simulated time and the schedule of events, and the only code that reads it.

`Clock` holds what the event path used of SimPy's `Environment` (`_now`, `_queue`, `_eid`,
under the same names): a class of the event path's own, so that the compiled event path
(`accelerator`) reads and sets the time as a typed field of a native class instead of an
attribute looked up in an instance's dict, once or more per event (docs/performance.md).

Every entry of the schedule is a tuple `(when, priority, id, fn, arg)`: at `when`, `run_until`
sets the clock and calls `fn(arg)`; equal times run by priority, then by id (the order they were
scheduled). The hot paths (the end of a worker's work, arrivals, a call the fast lane decided)
push their function and its argument themselves (`schedule_of`): no event object at all
(measured: a bare loop of such entries takes 25% less CPU per event than one of `_Timer`
objects with a tuple of callbacks, docs/performance.md). Everything else goes through a
`_Timer`, the least a SimPy event needs (its `callbacks`, its `_value`), fired by `_fire`:
`_scheduler` and `_scheduler_at` push one, `after` makes one whose `callbacks` list the caller
appends to (what `env.timeout(delay, value)` gave). SimPy's own scheduling is not used, so every
entry has this shape. `pending_timers` and `events_processed` read the heap for faults, the
autoscaler and the run's event count; `cancel` voids an entry in place.
"""

from __future__ import annotations

import heapq
import itertools
import types
from collections.abc import Callable, Iterator
from typing import Any, Final

# Final: the compiled event path writes these in as constants, not looked up per event.
_NORMAL: Final = 1  # simpy.events.NORMAL: the priority of an ordinary timeout
_URGENT: Final = 0  # simpy.events.URGENT: before ordinary events at the same time


class Clock:
    """The simulated time (`_now`, seconds) and the schedule (`_queue`, a heap of `(when,
    priority, id, fn, arg)`; `_eid` gives the ids): SimPy's `Environment` as the event path
    uses it, with SimPy's names, and nothing else."""

    __slots__ = ("_eid", "_now", "_queue")

    def __init__(self) -> None:
        self._now: float = 0.0
        self._queue: list[Any] = []
        self._eid: Iterator[int] = itertools.count()

    @property
    def now(self) -> float:
        """The simulated time, as SimPy's `Environment.now`."""
        return self._now


# -- the schedule's heap -----------------------------------------------------------------------
#
# `heapq` orders the entries by comparing tuples: in C, but each comparison goes through two
# generic comparisons of the times (equal? then less?). Compiled (`accelerator`), the same
# algorithm written out here compares the times as C doubles (measured: ~25% less time per push
# and pop). As Python source it would be far slower than heapq's C, so the source runs heapq's
# own: `push_entry` and `pop_entry` are one or the other. Both are heapq's algorithm step for
# step on the same order (time, priority, id: ids are unique), so the heap holds the same
# entries at the same positions (`pending_timers`, `cancel`) and the events run in the same
# order, to the bit (tests/test_engine_house.py checks the two against each other).


def _before(entry: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
    """Whether `entry` runs before `other`: as the tuples compare (time, priority, id)."""
    when: float = entry[0]
    other_when: float = other[0]
    if when != other_when:  # a NaN compares as the tuples would: never before
        return when < other_when
    if entry[1] != other[1]:
        return bool(entry[1] < other[1])
    return bool(entry[2] < other[2])


def _sift_down(heap: list[Any], start: int, position: int) -> None:
    """heapq's `_siftdown`: the entry at `position` moves up towards `start` to its place."""
    entry = heap[position]
    while position > start:
        parent_position = (position - 1) >> 1
        parent = heap[parent_position]
        if not _before(entry, parent):
            break
        heap[position] = parent
        position = parent_position
    heap[position] = entry


def _sift_up(heap: list[Any], position: int) -> None:
    """heapq's `_siftup`: the entry at `position` goes down to a leaf, then back up."""
    end = len(heap)
    start = position
    entry = heap[position]
    child = 2 * position + 1
    while child < end:
        right = child + 1
        if right < end and not _before(heap[child], heap[right]):
            child = right
        heap[position] = heap[child]
        position = child
        child = 2 * position + 1
    heap[position] = entry
    _sift_down(heap, start, position)


def typed_push(heap: list[Any], entry: tuple[Any, ...]) -> None:
    """`heapq.heappush` for schedule entries (see above)."""
    heap.append(entry)
    _sift_down(heap, 0, len(heap) - 1)


def typed_pop(heap: list[Any]) -> Any:
    """`heapq.heappop` for schedule entries (see above)."""
    last = heap.pop()
    if not heap:
        return last
    first = heap[0]
    heap[0] = last
    _sift_up(heap, 0)
    return first


def runs_compiled() -> bool:
    """Whether this module was loaded compiled: mypyc's functions are not Python functions."""
    return not isinstance(_before, types.FunctionType)


#: How the schedule's entries are pushed and popped: heapq's, or compiled, the typed ones.
push_entry: Callable[[list[Any], tuple[Any, ...]], None] = heapq.heappush
pop_entry: Callable[[list[Any]], Any] = heapq.heappop
if runs_compiled():
    push_entry, pop_entry = typed_push, typed_pop


class _Timer:
    """A timer that runs each of its `callbacks` with itself (they read its `_value`)."""

    __slots__ = ("_value", "callbacks")
    _ok = True
    _value: Any
    callbacks: Any  # a tuple or list of callables

    @property
    def value(self) -> Any:
        """The timer's value, as a SimPy event's `value`."""
        return self._value


def _fire(timer: _Timer) -> None:
    """The schedule's `fn` for a `_Timer`: each callback, with the timer."""
    for callback in timer.callbacks:
        callback(timer)


def _void(arg: Any) -> None:
    """The `fn` of a cancelled entry (`cancel`): nothing happens at its time."""


def _scheduler(
    env: Clock,
) -> Callable[[float, tuple[Callable[[Any], None]], Any], None]:
    """later(delay, callbacks, value): run each callback with the timer after `delay`."""
    heap: list[Any] = env._queue
    new_id = env._eid.__next__

    def later(delay: float, callbacks: tuple[Callable[[Any], None]], value: Any) -> None:
        timer = _Timer()
        timer.callbacks = callbacks
        timer._value = value
        push_entry(heap, (env._now + delay, _NORMAL, new_id(), _fire, timer))

    return later


def _scheduler_at(
    env: Clock,
) -> Callable[[float, tuple[Callable[[Any], None]], Any], None]:
    """at(when, callbacks, value): like `_scheduler`'s later, at the absolute time `when`."""
    heap: list[Any] = env._queue
    new_id = env._eid.__next__

    def at(when: float, callbacks: tuple[Callable[[Any], None]], value: Any) -> None:
        timer = _Timer()
        timer.callbacks = callbacks
        timer._value = value
        push_entry(heap, (when, _NORMAL, new_id(), _fire, timer))

    return at


def after(env: Clock, delay: float, value: Any = None) -> _Timer:
    """A timer due after `delay` whose `callbacks` (a list, empty) the caller appends to: what
    `env.timeout(delay, value)` gave, on this schedule."""
    timer = _Timer()
    timer.callbacks = []
    timer._value = value
    queue: list[Any] = env._queue
    push_entry(queue, (env._now + delay, _NORMAL, next(env._eid), _fire, timer))
    return timer


def schedule_of(env: Clock) -> tuple[list[Any], Iterator[int]]:
    """(heap, ids): the schedule, for a hot path that pushes `(when, _NORMAL, next(ids), fn,
    arg)` itself rather than call `later`."""
    return env._queue, env._eid


def pending_timers(env: Clock, fn: object) -> Iterator[tuple[int, float, Any]]:
    """(position, when, arg) of every entry on the schedule that will call `fn`."""
    queue: list[Any] = env._queue
    for position, item in enumerate(queue):
        if item[3] is fn:
            yield position, item[0], item[4]


def cancel(env: Clock, position: int) -> None:
    """Void the entry at `position` of the schedule (from `pending_timers`): it keeps its time
    and id, so the heap's order holds, and does nothing then."""
    queue: list[Any] = env._queue
    when, priority, ident, _, _ = queue[position]
    queue[position] = (when, priority, ident, _void, None)


def events_processed(env: Clock, besides: int = 0) -> int:
    """Events SimPy processed so far: scheduled minus still waiting, less `besides` of ours."""
    return max(next(env._eid) - len(env._queue) - besides, 0)


def run_until(env: Clock, horizon: float) -> None:
    """Process the schedule's events up to `horizon`, as `env.run(until=horizon)` does.

    The same order as SimPy's `run`: an URGENT stop entry at the horizon (ahead of ordinary
    entries at that instant), then the earliest entry popped, the clock set and its `fn(arg)`
    called, until the stop entry's function ends the loop (raising `_Stopped`). Inline, without
    SimPy's `step` and its StopSimulation machinery per event (measured: 3-6% of the event
    path's CPU time), and without an event object per entry (see the module). The stop entry
    takes one id and counts as one processed event, as SimPy's stop event did, so
    `events_processed` is unchanged.
    """
    if horizon <= env._now:
        raise ValueError(f"until ({horizon}) must be greater than the current simulation time")
    queue: list[Any] = env._queue
    push_entry(queue, (horizon, _URGENT, next(env._eid), _stop, None))
    pop = pop_entry
    try:
        while True:
            now, _, _, fn, arg = pop(queue)
            env._now = now
            fn(arg)
    except _Stopped:
        return


class _Stopped(Exception):
    """Raised by the stop event at the horizon: the end of `run_until`'s loop."""


def _stop(arg: Any) -> None:
    raise _Stopped
