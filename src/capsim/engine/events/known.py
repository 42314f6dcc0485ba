"""Known answers: a visit whose answer is known when its work starts, carried up its chain of
callers at once, with no event for the end of its work.

A request that meets a free worker at a tier where its class makes no call has a known answer:
the worker is busy from now to `end = now + service`, then the request answers its caller. If
each caller up the chain only passes that answer on (a non-blocking tier hands its caller's
continuation down unchanged), holds a blocking worker until it comes (`HeldWorker`), or is the
request's class (`Answer`), then everything the event at `end` would do is known now: free the
worker here, free each blocking caller's worker, count the answer and its latency. That event
(`instances.work_done` and the continuations it calls) is not scheduled. Its timer id is still
taken, so every later event has the id it would have had (the order of simultaneous events and
the run's event count are unchanged), and its effects are applied exactly as the event would
apply them, in the same order, the moment anything could observe them:

- The workers are *held* (`Holds`: per station, a heap of `(end, id, instance, chain)`) and
  freed by `Holds.settle(now)` in the order of their ends, before the station is next touched:
  an arrival or a release there, a pick that counts requests per instance, the integrals. Each
  is freed as the release with nobody waiting frees it (`at`, `free`, and the integral of held
  workers with the end as the clock), so the integral is the same sum of the same products.
- If a request starts waiting at an instance that holds such a worker, its release is no longer
  a plain one (it starts the waiting request, at exactly `end`): the event is put back on the
  schedule, with its own time and id (`Holds.materialise`), and frees every worker of its chain
  there, in the chain's order.
- The answer is counted when deferred (`completed`, the request no longer pending) and its
  latency kept in the class's `AnswerBook`, added to the latencies, in the order of `(end, id)`,
  before any later answer of the class is (`AnswerBook.catch_up`) and at the end of the run.

So the run computes the same numbers: the same draws (nothing at `end` draws, unless a
materialised event starts a waiting request, which then draws at its own time), the same sums
in the same order. Only events at exactly the same time as a held worker's end can meet it in
another order than their ids say (a touch at `now` frees the workers held until `now`, whatever
their ids), which matters only for exact ties: zero or constant service times and arrivals.
`ENABLED = False` restores the event-by-event way; `tests/test_known_answers.py` compares the
two on many scenarios and seeds, figure for figure.

When it applies (the one predicate, `applies`): the visit's station and every blocking caller's
station is a plain tier (`instances`' hooks unwrapped, so no faults, spot interruptions,
autoscaling, serverless, consumers or replica groups; not a queue; no cold cache; no time
series; no health checks; no fast lane at the station, whose held workers are counted apart),
the request's class makes no call at that tier, its worker is free when it arrives, nobody
waits at any instance of the chain (so each release is a plain one), and its work ends before
the horizon. The chain must end at an open class's `Answer` (or `_ignore`, a request of the
warm-up): a call site (timeout, retry, breaker, bulkhead, hedge), a pool, a parallel group or a
sequence of several calls, a network, a queue's delivery or a closed user stands in between and
takes the ordinary path.
"""

from __future__ import annotations

from heapq import heappop, heappush
from types import MethodType
from typing import TYPE_CHECKING, Any

from capsim.engine.events.clock import _NORMAL, _Timer, schedule_of
from capsim.engine.events.signatures import Cont

if TYPE_CHECKING:
    from capsim.engine.events.station import Station
    from capsim.engine.result import ClassRun

#: False: every visit schedules the end of its work (the reference the mechanism is tested against).
ENABLED = True


def applies(st: Station) -> bool:
    """Whether visits at this station (and blocking workers held here) may be carried at once:
    a plain tier, as the module says. Decided once every class is built (the fast lane's
    stations are known then)."""
    tier = st.tier
    return bool(
        ENABLED
        and st.base_hooks == (st.arrive, st.release, st.start, st.on_work_done)
        and st.held_until is None
        and tier.autoscale is None
        and st.series is None
        and not st.faults
        and not tier.is_async
        and tier.cold_lru is None
        and st.sim.routable is None
    )


class Holds:
    """One station's workers held by carried visits: a heap of `(end, id, instance, chain)`,
    freed in order by `settle`; `chain` is the tuple of `Holds` the carried event frees."""

    __slots__ = ("heap", "pushed", "release_worker", "st", "track_held")

    def __init__(self, st: Station, release_worker: Any, track_held: bool) -> None:
        self.st = st
        self.heap: list[tuple[float, int, int, tuple[Holds, ...]]] = []
        self.release_worker = release_worker
        self.track_held = track_held
        self.pushed: set[int] = set()  # ids of carried events put back on the schedule

    def settle(self, now: float) -> None:
        """Free every worker held until `now` or before, in the order of their ends."""
        heap, st = self.heap, self.st
        waiting, at, free = st.waiting, st.at, st.free
        while heap and heap[0][0] <= now:
            end, ident, i, _ = heappop(heap)
            if waiting[i]:  # its event was put back on the schedule: we are at its time
                self.release_worker(i)
                continue
            at[i] -= 1
            free[i] += 1
            if self.track_held:  # `held_moved(end, -1)`, at the end of the work
                st.held_area += st.held * (end - st.held_since)
                st.held_since = end
                st.held -= 1

    def materialise(self, i: int) -> None:
        """A request starts waiting at instance i: the carried events holding its workers go
        back on the schedule, each at its own time and id."""
        heap, env = self.heap, self.st.env
        queue, _ = schedule_of(env)
        for end, ident, place, chain in heap:
            if place == i and ident not in chain[0].pushed:
                chain[0].pushed.add(ident)
                timer = _Timer()
                timer.callbacks = _ON_CARRIED
                timer._value = (ident, chain)
                heappush(queue, (end, _NORMAL, ident, timer))


def _carried(event: _Timer) -> None:
    """A carried event put back on the schedule: free its workers now, in its chain's order."""
    ident, chain = event._value
    chain[0].pushed.discard(ident)
    now = chain[0].st.env._now
    for holds in chain:
        holds.settle(now)


_ON_CARRIED = (_carried,)


class HeldWorker:
    """The continuation of a blocking worker's calls: the worker of instance `i` of the station
    whose `holds` these are is freed (`free(i)`) when they answer, then `cont` is called.
    Inspectable: `carry` reads the chain of callers through it."""

    __slots__ = ("cont", "free", "holds", "i")

    cont: Cont
    free: Any  # the station's release of a worker whose calls have answered
    holds: Holds | None  # None: its station does not carry visits
    i: int

    def done(self, ok: bool) -> None:
        self.free(self.i)
        self.cont(ok)


class AnswerBook:
    """One open class's answers: counts, requests pending, and latencies recorded in the order
    their answers come, those carried at once (`deferred`: `(end, id, latency)`) included."""

    __slots__ = ("buffer", "deferred", "env", "flush", "limit", "pending", "run")

    def __init__(self, env: Any, run: ClassRun, pending: dict[int, float], recorder: Any) -> None:
        self.env = env
        self.run = run
        self.pending = pending
        self.buffer: list[float] = recorder.buffer  # `Recorder`'s own buffer (flushed in place)
        self.limit: int = recorder.limit
        self.flush = recorder.flush
        self.deferred: list[tuple[float, int, float]] = []

    def record(self, latency: float) -> None:
        """As `Recorder.record`: the same batches."""
        buffer = self.buffer
        buffer.append(latency)
        if len(buffer) >= self.limit:
            self.flush()

    def catch_up(self, now: float) -> None:
        """Record the carried answers due by `now`, in the order they come."""
        deferred = self.deferred
        while deferred and deferred[0][0] <= now:
            self.record(heappop(deferred)[2])


class Answer:
    """The continuation of an open class's request counted in the window (its `done`)."""

    __slots__ = ("arrived", "book", "ident")

    arrived: float
    book: AnswerBook
    ident: int

    def done(self, ok: bool) -> None:
        book = self.book
        book.pending.pop(self.ident, None)
        if ok:
            book.run.completed += 1
            now = book.env._now
            if book.deferred and book.deferred[0][0] <= now:
                book.catch_up(now)
            buffer = book.buffer
            buffer.append(now - self.arrived)
            if len(buffer) >= book.limit:
                book.flush()
        else:
            book.run.errors += 1


def carry(first: Holds, i: int, end: float, ident: int, cont: Cont, ignore: Cont) -> bool:
    """Carry a visit whose work at instance i of `first`'s station ends at `end` (the timer id
    `ident` taken) up its chain of callers, if every link is one the module allows; False,
    changing nothing, if not (the caller then schedules the end of the work)."""
    chain = [first]
    places = [i]
    while cont is not ignore:
        if type(cont) is not MethodType:
            return False
        owner = cont.__self__  # type: ignore[attr-defined]
        kind = type(owner)
        if kind is HeldWorker:
            holds = owner.holds
            if holds is None or holds.st.waiting[owner.i]:
                return False
            chain.append(holds)
            places.append(owner.i)
            cont = owner.cont
            continue
        if kind is not Answer:
            return False
        book = owner.book
        book.pending.pop(owner.ident, None)
        book.run.completed += 1
        heappush(book.deferred, (end, ident, end - owner.arrived))
        break
    links = tuple(chain)
    for holds, place in zip(links, places, strict=True):
        heappush(holds.heap, (end, ident, place, links))
    return True
