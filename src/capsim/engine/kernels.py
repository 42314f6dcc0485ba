"""FIFO queue kernels for the vectorised path: exact start times of requests at one server.

Both kernels take the arrivals at one server in arrival order and their service times, plus the
server's state carried from the previous chunk, and return the start times and the new state.
They are exact: chunking a stream of arrivals and carrying the state gives bit for bit the same
start times as one call on the whole stream, and a request that finds a worker free starts at
its arrival exactly (it never waits a rounding error).

The multi-worker recursion has an optional compiled form: when numba is installed (the `fast`
extra), `fifo_multi` switches to a jitted heap loop once the Python loop has done enough work in
this process to pay for importing numba (about 0.25 s). Both forms give bit-identical start and
free times, so numba changes how fast a run is, never what it answers. Set CAPSIM_NUMBA=0 to
keep the Python loop.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: A window of this many earlier requests per worker is searched first when rebuilding the set
#: of busy workers at the start of a congested stretch (it doubles until it is enough).
_LOOKBACK_PER_WORKER = 4
#: Above this share of cheaply flagged requests, count exactly (one sort) before looping.
_CHEAP_FLAG_SHARE = 0.05
#: Above this share of congested requests, the plain heap loop beats the stretch-wise one.
_LOOP_ALL_SHARE = 0.3
#: Above this share of cheaply flagged requests, go straight to the plain loop.
_LOOP_ALL_CHEAP_SHARE = 0.6
#: Requests through the Python heap loop, in one process, after which loading the compiled
#: kernel pays off: the loop runs about 5 M requests/s, importing numba and loading the cached
#: kernel takes about 0.25 s. Rent until the rent equals the price, then buy: never more than
#: about twice the cost of the better choice in hindsight.
COMPILE_AFTER = 3_000_000

CompiledLoop = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class _Accelerator:
    """The compiled heap loop of this process: loaded at most once."""

    looped = 0  # requests run through the Python heap loop so far
    tried = False
    loop: CompiledLoop | None = None


class SingleWorker(NamedTuple):
    """What one worker's closed form carries from chunk to chunk.

    `served` is the running sum of every service time so far, `anchor` the running maximum of
    A_k - served_{k-1}, `free_at` the last request's done time and `correction` what the closed
    form of the current busy period is corrected by (see `fifo_single`). Carrying the sums
    themselves (not just the free time) makes a chunked stream compute exactly the same
    floating-point numbers as one call on the whole stream.
    """

    served: float
    anchor: float
    free_at: float
    correction: float

    @staticmethod
    def free_from(free_at: float) -> SingleWorker:
        """A worker with nothing served yet, free from `free_at` (-inf: free from the start)."""
        return SingleWorker(0.0, free_at, free_at, 0.0)


def fifo_single(
    arrivals: np.ndarray, service: np.ndarray, carried: SingleWorker
) -> tuple[np.ndarray, np.ndarray, SingleWorker]:
    """One worker: start and done times by the max-plus (Lindley) closed form, and the state.

    D_n = cumS_n + max_{k<=n}(A_k - cumS_{k-1}): one cumsum and one running max. A request
    whose own term A_n - cumS_{n-1} reaches the running maximum finds the worker free: it starts
    at its arrival and is done at A_n + S_n, exactly as on the event path (a start rebuilt from
    the sums would land a rounding error after the arrival and count as a wait). The closed
    form of the rest of its busy period is shifted by the same rounding correction, and each
    waiting request starts at exactly the previous one's done time: a zero service time ends
    when it starts, so requests released together stay simultaneous.
    """
    n = arrivals.size
    if n == 0:
        return np.zeros(0), np.zeros(0), carried
    # Three float buffers, reused in place (allocating is what costs most at this size).
    # cumS, continuing the carried sum one addition at a time (as one pass over the whole would).
    done = service.copy()
    done[0] += carried.served
    np.cumsum(done, out=done)
    served = float(done[-1])
    term = arrivals.copy()  # A_n - cumS_{n-1}
    term[0] -= carried.served
    term[1:] -= done[:-1]
    running = term.copy()
    running[0] = max(running[0], carried.anchor)
    np.maximum.accumulate(running, out=running)
    anchor = float(running[-1])
    idle = running == term  # the own term is the running maximum: the worker is free
    done += running  # the closed form
    # Each busy period's correction: its opener's exact done minus its closed form.
    openers = np.flatnonzero(idle)
    corrections = np.empty(openers.size + 1)
    corrections[0] = carried.correction
    np.subtract(arrivals[openers] + service[openers], done[openers], out=corrections[1:])
    period = np.cumsum(idle, dtype=np.int32)
    done += np.take(corrections, period, out=running)
    done[0] = max(done[0], carried.free_at)
    if bool((done[1:] < done[:-1]).any()):
        np.maximum.accumulate(done, out=done)  # rounding: never done before the previous one
    start = term
    start[0] = carried.free_at
    start[1:] = done[:-1]
    start[openers] = arrivals[openers]
    # Rounding of the running sums must never start a request before it arrived.
    np.maximum(start, arrivals, out=start)
    state = SingleWorker(served, anchor, float(done[-1]), float(corrections[-1]))
    return start, done, state


def fifo_multi(
    arrivals: np.ndarray, service: np.ndarray, free_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`c` workers, one FIFO queue: start times and the new free times of the workers.

    The compiled heap loop when it is loaded (see the module's docstring), else `fifo_multi_python`;
    both answer exactly the same.
    """
    if not _Accelerator.tried and _Accelerator.looped >= COMPILE_AFTER:
        load_compiled()
    loop = _Accelerator.loop
    if loop is not None:
        return fifo_multi_compiled(loop, arrivals, service, free_at)
    return fifo_multi_python(arrivals, service, free_at)


def fifo_multi_compiled(
    loop: CompiledLoop, arrivals: np.ndarray, service: np.ndarray, free_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`fifo_multi` by `loop` (from `load_compiled`): Kiefer–Wolfowitz over every request."""
    if arrivals.size == 0:
        return arrivals.copy(), free_at.copy()
    heap = np.sort(np.asarray(free_at, dtype=np.float64))  # a sorted array is a valid min-heap
    start = loop(
        np.ascontiguousarray(arrivals, dtype=np.float64),
        np.ascontiguousarray(service, dtype=np.float64),
        heap,
    )
    heap.sort()
    return start, heap


def fifo_multi_python(
    arrivals: np.ndarray, service: np.ndarray, free_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`c` workers, one FIFO queue, in numpy and Python: start times and new free times.

    The Kiefer–Wolfowitz recursion kept as a heap of the workers' free times, run only where it
    matters. Every request first gets its infinite-server departure d = A + S; a request whose
    arrival finds fewer than c earlier requests still in service (by those departures) starts at
    once, exactly, as long as no earlier request has waited. Only the congested stretches go
    through the heap loop, which hands back to the vectorised part as soon as every request that
    waited in the stretch has left (from then on the system is again what the infinite-server
    departures say). `free_at` holds the c free times carried from the previous chunk.
    """
    n = arrivals.size
    c = free_at.size
    start = arrivals.copy()
    if n == 0:
        return start, free_at.copy()
    departures = arrivals + service
    carried = np.sort(free_at)
    if not bool((departures > arrivals).all()):
        # Zero service times break the counting below (ties with later arrivals): plain loop.
        # So do service times too small to move the clock (a + s == a: 1e-16 s at 22 s).
        start[:] = _plain_loop(arrivals, service, carried.tolist())
        return start, _top(carried, start + service, c)
    # Cheap, conservative flag first: some request at least c places back (or a carried free
    # time) is still in service. A flag only sends a stretch through the exact loop.
    running = np.maximum.accumulate(np.concatenate((carried, departures)))
    congested = running[:n] > arrivals
    share = np.count_nonzero(congested) / n
    if _CHEAP_FLAG_SHARE < share <= _LOOP_ALL_CHEAP_SHARE:
        # Exact count of requests still in service at each arrival.
        ordered = np.sort(departures)
        in_service = np.arange(n) - np.searchsorted(ordered, arrivals, side="right")
        in_service += c - np.searchsorted(carried, arrivals, side="right")
        congested = in_service >= c
        share = np.count_nonzero(congested) / n
    first = np.flatnonzero(congested)
    if first.size == 0:
        return start, _top(carried, departures, c)
    if share > _LOOP_ALL_SHARE:
        # Mostly congested: the plain loop from the first congested request is faster.
        position = int(first[0])
        heap = _busy_at(position, arrivals, departures, carried, c)
        start[position:] = _plain_loop(arrivals[position:], service[position:], heap)
        return start, _top(carried, start + service, c)
    arrival_list = arrivals.tolist()
    service_list = service.tolist()
    congested_list = congested.tolist()
    position = int(first[0])
    while position < n:
        heap = _busy_at(position, arrivals, departures, carried, c)
        position = _heap_loop(arrival_list, service_list, start, heap, position, n, congested_list)
        if position >= n:
            break
        later = np.searchsorted(first, position)
        if later >= first.size:
            break
        position = int(first[later])
    return start, _top(carried, start + service, c)


def _top(carried: np.ndarray, departures: np.ndarray, c: int) -> np.ndarray:
    """The c largest free times: after FIFO service they are the workers' free times."""
    values = np.concatenate((carried, departures))
    if values.size > c:
        values = np.partition(values, values.size - c)[values.size - c :]
    return np.sort(values)


def _busy_at(
    position: int,
    arrivals: np.ndarray,
    departures: np.ndarray,
    carried: np.ndarray,
    c: int,
) -> list[float]:
    """Free times of the c workers when request `position` arrives, from infinite-server departures.

    Valid where no earlier request is still delayed by waiting: then the workers busy at that
    instant are exactly the earlier requests (and carried free times) not yet departed.
    """
    at = arrivals[position]
    busy_carried = carried[carried > at]
    window = _LOOKBACK_PER_WORKER * c
    while True:
        low = max(0, position - window)
        recent = departures[low:position]
        busy = recent[recent > at]
        if busy.size + busy_carried.size >= c or low == 0:
            break
        window *= 2
    values = np.concatenate((busy_carried, busy))
    if values.size > c:
        values = np.sort(values)[-c:]
    heap = values.tolist()
    heap.extend([at] * (c - len(heap)))
    heapq.heapify(heap)
    return heap


def _plain_loop(arrivals: np.ndarray, service: np.ndarray, heap: list[float]) -> list[float]:
    """Kiefer–Wolfowitz over every request: start = max(arrival, earliest free worker)."""
    _Accelerator.looped += arrivals.size
    replace = heapq.heapreplace
    starts: list[float] = []
    record = starts.append
    for a, s in zip(arrivals.tolist(), service.tolist(), strict=True):
        free = heap[0]
        if a > free:
            free = a
        record(free)
        replace(heap, free + s)
    return starts


def _heap_loop(
    arrival_list: list[float],
    service_list: list[float],
    start: np.ndarray,
    heap: list[float],
    position: int,
    n: int,
    congested: list[bool],
) -> int:
    """Kiefer–Wolfowitz over requests from `position`; returns where the system regenerated.

    It stops at the first request that finds every request that waited gone and that is not
    flagged `congested`: from there the vectorised answer (start = arrival) is exact again.
    """
    replace = heapq.heapreplace
    waited_index: list[int] = []
    waited_start: list[float] = []
    last_delayed_departure = -np.inf
    i = position
    while i < n:
        a = arrival_list[i]
        if a >= last_delayed_departure and not congested[i]:
            break
        free = heap[0]
        if free > a:
            done = free + service_list[i]
            replace(heap, done)
            waited_index.append(i)
            waited_start.append(free)
            if done > last_delayed_departure:
                last_delayed_departure = done
        else:
            replace(heap, a + service_list[i])
        i += 1
    _Accelerator.looped += i - position
    if waited_index:
        start[np.asarray(waited_index, dtype=np.intp)] = waited_start
    return i


def fifo_reference(
    arrivals: np.ndarray, service: np.ndarray, free_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The plain heap recursion over every request: the reference the fast kernels must match."""
    heap = np.sort(free_at).tolist()
    start = np.asarray(_plain_loop(arrivals, service, heap), dtype=np.float64)
    return start, np.sort(np.asarray(heap, dtype=np.float64))


def load_compiled() -> CompiledLoop | None:
    """The compiled heap loop, jitted (or loaded from numba's cache) on the first call; None
    when numba is not installed, fails, or CAPSIM_NUMBA=0."""
    if not _Accelerator.tried:
        _Accelerator.tried = True
        _Accelerator.loop = _jit_heap_loop()
    return _Accelerator.loop


def compiled_in_use() -> bool:
    """Whether `fifo_multi` runs the compiled loop in this process (so far)."""
    return _Accelerator.loop is not None


def _jit_heap_loop() -> CompiledLoop | None:
    if os.environ.get("CAPSIM_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None
    try:
        # Eager compilation for one signature: a failure shows here, not in the middle of a run.
        jitted: CompiledLoop = numba.njit(
            "float64[:](float64[:], float64[:], float64[:])", cache=True, nogil=True
        )(_heap_loop_arrays)
    except Exception:  # an optional accelerator: whatever goes wrong, the Python loop answers
        return None
    return jitted


def _heap_loop_arrays(arrivals: np.ndarray, service: np.ndarray, heap: np.ndarray) -> np.ndarray:
    """Kiefer–Wolfowitz over every request on a binary min-heap of free times held in an array
    (the body numba compiles). Same arithmetic as `_plain_loop`: start = max(arrival, earliest
    free), that worker's free time becomes start + service; `heap` ends as the new free times."""
    n = arrivals.size
    c = heap.size
    start = np.empty(n)
    for i in range(n):
        free = heap[0]
        a = arrivals[i]
        if a > free:
            free = a
        start[i] = free
        value = free + service[i]
        # Replace the root and sift it down.
        j = 0
        while True:
            child = 2 * j + 1
            if child >= c:
                break
            right = child + 1
            if right < c and heap[right] < heap[child]:
                child = right
            if heap[child] >= value:
                break
            heap[j] = heap[child]
            j = child
        heap[j] = value
    return start
