"""The plain tier: each instance's workers and waiting line (FIFO, LIFO or by priority).

`install` gives a Station its first hooks: `arrive` takes a free worker or joins the instance's
line, `start` draws the service time and sets the timer that ends the work, `on_work_done`
runs the request's calls (holding the worker while they are out if the tier is blocking) and
`release` hands the worker to the next live entry of the line.

Speed: `arrive`, `start`, `release` and `work_done` are the path every request takes. They keep
the integral updates and the timer push inline (not `Station.queue_moved`/`held_moved` or the
clock's `later`), and hold the station's lists, the SimPy heap and (after `bind`) the final
`release` and `on_work_done` hooks as closure variables. Measured on the W3 variant (CPU time,
medians of interleaved rounds): with the integral updates as method calls and the hooks read
from the station at each call, the run was 4-6% slower than the single-closure engine; inlined
and bound, within 1%. Since then (issue 15, docs/performance.md): the integral of held workers
is kept only where something reads it (`held_is_read`), and `work_done` frees a worker inline
when nobody waits and `release` is unwrapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from capsim.engine.events.clock import _NORMAL, _Timer, push_entry, schedule_of
from capsim.engine.events.resilience import _given_up, _HedgeCopy
from capsim.engine.events.signatures import Cont
from capsim.engine.events.station import Station, Waiting


def held_is_read(st: Station) -> bool:
    """Whether anything reads the tier's integral of held workers (see `install`)."""
    tier = st.tier
    return bool(
        st.blocking
        or tier.autoscale is not None
        or st.series is not None
        or st.faults
        or tier.is_async
    )


def install(st: Station) -> Callable[[], None]:
    """The base hooks: arrive, start, on_work_done, release; and withdraw for hedges.

    Returns `bind`, to be called once every feature is installed: the hot path then calls the
    final `release` and sets the final `on_work_done` from its own variables (see the note)."""
    env = st.env
    warmup, horizon = st.warmup, st.horizon
    free, at, live, waiting, takes = st.free, st.at, st.live, st.waiting, st.takes
    service = st.service
    max_queue, queue_timeout = st.max_queue, st.queue_timeout
    overflow_limit = st.overflow_limit
    record_wait = st.wait_recorder.record
    heap, eid = schedule_of(env)  # pushed inline below: see the module's note
    new_id = eid.__next__
    push = push_entry  # a local, not a global: the compiled path looks a global up at each use
    later = st.later
    # The integral of held workers, kept on the hot path only where read (see `held_is_read`).
    track_held = held_is_read(st)

    def start(i: int, k: int, arrived: float, now: float, cont: Cont) -> None:
        # A worker of instance i starts on a request that waited since `arrived`.
        if now >= warmup:
            if now > arrived:
                record_wait(now - arrived)
            else:
                st.zero_waits += 1
        end = now + service[k]()
        if end > warmup:
            st.busy += (end if end < horizon else horizon) - (now if now > warmup else warmup)
        push(heap, (end, _NORMAL, new_id(), work_done_fn, (i, k, cont)))

    def arrive(i: int, k: int, now: float, cont: Cont) -> bool:
        if free[i]:
            free[i] -= 1
            at[i] += 1
            if track_held:
                st.held_area += st.held * (now - st.held_since)  # held_moved(now, +1), inlined
                st.held_since = now
                st.held += 1
            # start(), inlined: this is the path most requests take.
            end = now + service[k]()
            if now >= warmup:
                st.zero_waits += 1
            if end > warmup:
                st.busy += (end if end < horizon else horizon) - (now if now > warmup else warmup)
            push(heap, (end, _NORMAL, new_id(), work_done_fn, (i, k, cont)))
            return True
        held_until = st.held_until  # workers held by the fast lane (`lanes`), if any
        if held_until is not None and held_until.reclaim(i, now):
            return arrive(i, k, now, cont)  # one of them has finished its work: take it
        if max_queue is not None and live[i] >= max_queue:
            return st.refuse(now)
        if st.waiting_now >= overflow_limit:
            # Hopelessly overloaded: bound the backlog (and the memory) instead of the RAM.
            if now >= warmup:
                st.overflow += 1
            return st.refuse(now)
        at[i] += 1
        entry = Waiting(now, k, cont, i)
        waiting[i].append(entry)
        live[i] += 1
        if type(cont) is _HedgeCopy:
            cont.queued(entry, withdraw)  # so that a faster copy can withdraw it
        # st.queue_moved(now, +1), inlined (hot path):
        waiting_now = st.waiting_now
        st.queue_area += waiting_now * (now - st.queue_since)
        st.queue_since = now
        st.waiting_now = waiting_now = waiting_now + 1
        if waiting_now > st.queue_max:
            st.queue_max = waiting_now
        if queue_timeout is not None:
            later(queue_timeout, on_drop, entry)
        if held_until is not None:
            held_until.wake_when_free(i)  # the lane scheduled no event for its workers' ends
        return True

    drop_abandoned = st.drop_abandoned

    def release_worker(i: int) -> None:
        at[i] -= 1
        queue = waiting[i]
        take = takes[i]  # the line's discipline (`disciplines`)
        now = env._now
        while queue:
            entry = take()
            if entry.live:
                entry.live = False
                live[i] -= 1
                # st.queue_moved(now, -1), inlined (hot path):
                st.queue_area += st.waiting_now * (now - st.queue_since)
                st.queue_since = now
                st.waiting_now -= 1
                if drop_abandoned and _given_up(entry.cont):
                    drop_given_up(i, now)  # its caller gave up while it waited
                    continue
                start(i, entry.k, entry.arrived, now, entry.cont)
                return
        free[i] += 1
        if track_held:
            st.held_area += st.held * (now - st.held_since)  # held_moved(now, -1), inlined
            st.held_since = now
            st.held -= 1

    def drop_given_up(i: int, now: float) -> None:
        at[i] -= 1
        if now >= warmup:
            st.rejected += 1
            st.dropped += 1

    def withdraw(entry: Waiting) -> bool:
        # A hedge's losing copy leaves the queue unserved (not an error); False if it started.
        if not entry.live:
            return False
        entry.live = False
        i = entry.place
        live[i] -= 1
        at[i] -= 1
        st.queue_moved(env._now, -1)
        return True

    def drop(event: _Timer) -> None:
        entry = event._value
        if not entry.live:
            return
        entry.live = False
        i = entry.place
        live[i] -= 1
        at[i] -= 1
        st.time_out(entry)

    runners, blocking = st.runners, st.blocking

    def held_until_answered(i: int, cont: Cont) -> Cont:
        # A blocking worker's continuation for its calls: the worker is released when they
        # answer. (Its own function, so that work_done keeps i and cont in fast locals, not
        # in cells made for every request.)
        def calls_done(ok: bool) -> None:
            if plain_release and not waiting[i]:
                # release_worker(i) with nobody waiting, inlined (as in work_done)
                now = env._now
                at[i] -= 1
                free[i] += 1
                if track_held:
                    st.held_area += st.held * (now - st.held_since)
                    st.held_since = now
                    st.held -= 1
            else:
                release(i)
            cont(ok)

        return calls_done

    def work_done(value: tuple[int, int, Cont]) -> None:
        i, k, cont = value
        now = env._now
        if now >= warmup:
            st.completed += 1
        run_calls = runners[k]
        if blocking and run_calls is not None:
            run_calls(k, held_until_answered(i, cont))
            return
        if plain_release and not waiting[i]:
            # release_worker(i) with nobody waiting, inlined (hot path: see the module's note)
            at[i] -= 1
            free[i] += 1
            if track_held:
                st.held_area += st.held * (now - st.held_since)
                st.held_since = now
                st.held -= 1
        else:
            release(i)
        if run_calls is None:
            cont(True)
        else:
            run_calls(k, cont)

    on_drop = (drop,)
    # The final hooks, read into closure variables once every feature is installed (`bind`).
    on_work_done: tuple[Callable[[Any], None], ...] = (work_done,)
    work_done_fn: Callable[[Any], None] = work_done  # what the schedule calls: every hook
    release: Callable[[int], None] = release_worker
    plain_release = True  # whether `release` is `release_worker`, unwrapped

    def bind() -> None:
        nonlocal on_work_done, work_done_fn, release, plain_release
        on_work_done = st.on_work_done
        work_done_fn = st.work_done_fn = _each(on_work_done)
        release = st.release
        plain_release = release is release_worker

    st.start = start
    st.arrive = arrive
    st.release = release_worker
    st.withdraw = withdraw
    st.on_work_done = on_work_done
    st.work_done_fn = work_done
    st.base_hooks = (arrive, release_worker, start, on_work_done)
    return bind


def _each(hooks: tuple[Callable[[Any], None], ...]) -> Callable[[Any], None]:
    """One function calling every `on_work_done` hook with the work's `(i, k, cont)`: the hook
    itself when there is one (the schedule calls it directly)."""
    if len(hooks) == 1:
        return hooks[0]

    def each(value: Any) -> None:
        for hook in hooks:
            hook(value)

    return each
