"""A tier's calls for one request: compiled steps, sequences, parallel groups."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

from capsim.engine.events import admission, network
from capsim.engine.events.resilience import _CallSite
from capsim.engine.events.signatures import Cont, Draw, Enter, Pick, Runner
from capsim.model.features import is_guarded
from capsim.model.types import (
    Call,
    OneOf,
    Parallel,
    Step,
)

if TYPE_CHECKING:
    from capsim.engine.events.station import Station
    from capsim.engine.events.tier import _TierSim


class CallStep(NamedTuple):
    """A compiled call: made when `uniform() < probability`, `repeat` times one after another.

    `target` is the callee's station for a call without a call site (None: guarded), so that a
    call alone in its program can be run by `admission.direct_runner`."""

    enter: Enter
    pick: Pick
    probability: float
    repeat: int
    uniform: Draw
    target: Station | None = None


class OneOfStep(NamedTuple):
    """Exactly one of `targets`, the first whose cumulative bound exceeds `uniform()`."""

    bounds: list[float]
    targets: tuple[tuple[Enter, Pick], ...]
    uniform: Draw
    stations: tuple[Station, ...] = ()  # the targets' stations (`admission.direct_runner`)


class ParallelStep(NamedTuple):
    """Every branch at once; done when the slowest is."""

    branches: tuple[Any, ...]  # of CallStep | OneOfStep | ParallelStep


#: A compiled step; `_Sequence` tells them apart by type.
Step_ = CallStep | OneOfStep | ParallelStep


# ---- calls: sequences, parallel groups ------------------------------------------------------


class _Sequence:
    """Runs a tier's call steps one after another for one request; stops at the first error."""

    __slots__ = ("done", "k", "left", "position", "steps")

    def __init__(self, steps: tuple[Any, ...], k: int, done: Cont) -> None:
        self.steps = steps
        self.k = k
        self.done = done
        self.position = 0
        self.left = 0

    def resume(self, ok: bool) -> None:
        if not ok:
            self.done(False)
            return
        if self.left:
            self.left -= 1
            step = self.steps[self.position]
            if not step.enter(self.k, step.pick, self.resume):
                self.done(False)
            return
        self.position += 1
        self.advance()

    def advance(self) -> None:
        steps = self.steps
        j = self.position
        k = self.k
        while j < len(steps):
            step = steps[j]
            kind = type(step)
            if kind is CallStep:
                if step.probability < 1.0 and step.uniform() >= step.probability:
                    j += 1
                    continue
                self.position = j
                self.left = step.repeat - 1
                if not step.enter(k, step.pick, self.resume):
                    self.done(False)
                return
            if kind is OneOfStep:
                x = step.uniform()
                for bound, (enter, pick) in zip(step.bounds, step.targets, strict=True):
                    if x < bound:
                        self.position = j
                        self.left = 0
                        if not enter(k, pick, self.resume):
                            self.done(False)
                        return
                j += 1
                continue
            # Every branch at once, one join.
            self.position = j
            self.left = 0
            branches = step.branches
            join = _Join(len(branches), self.resume)
            for branch in branches:
                _Sequence((branch,), k, join.branch_done).advance()
            return
        self.done(True)


class _Join:
    """Waits for every branch of a parallel group; fails if any branch failed."""

    __slots__ = ("done", "left", "ok")

    def __init__(self, count: int, done: Cont) -> None:
        self.left = count
        self.ok = True
        self.done = done

    def branch_done(self, ok: bool) -> None:
        if not ok:
            self.ok = False
        self.left -= 1
        if self.left == 0:
            self.done(self.ok)


def _compile_step(step: Step, caller: _TierSim, tiers: list[_TierSim]) -> Step_:
    """A model Step as the named tuple `_Sequence` runs."""
    if isinstance(step, Call):
        target = tiers[step.tier]
        enter = target.enter
        station: Station | None = target.station
        if step.network_delay > 0:  # another region: the call crosses the network
            enter = network.delayed(caller.env, enter, step.network_delay)
            station = None
        if is_guarded(step):  # the features registry says which calls need a call site
            site = _CallSite(caller, target, step)
            site.target_enter = enter  # a timeout counts the network's time too
            enter = site.enter
            station = None
        return CallStep(
            enter,
            target.pick(step.algorithm),
            step.probability,
            max(step.repeat, 1),
            caller.routing_draw,
            station,
        )
    if isinstance(step, OneOf):
        bounds = list(itertools.accumulate(p for _, p in step.options))
        delays = step.network_delays or (0.0,) * len(step.options)
        fallbacks = step.fallbacks or (None,) * len(step.options)
        targets = tuple(
            (
                _falling_back(
                    _over_network(caller, tiers[t].enter, rtt),
                    None if fallback is None else tiers[fallback],
                ),
                tiers[t].pick(None),
            )
            for (t, _), rtt, fallback in zip(step.options, delays, fallbacks, strict=True)
        )
        plain = not step.network_delays and not step.fallbacks
        # Only options reached as they are may run their callee's plain enter inlined.
        stations = tuple(tiers[t].station for t, _ in step.options) if plain else ()
        return OneOfStep(bounds, targets, caller.routing_draw, stations)
    assert isinstance(step, Parallel)
    return ParallelStep(tuple(_compile_step(b, caller, tiers) for b in step.branches))


def _over_network(caller: _TierSim, enter: Enter, rtt: float) -> Enter:
    """`enter` as the caller reaches it: behind the network when it is in another region."""
    return network.delayed(caller.env, enter, rtt) if rtt > 0 else enter


def _falling_back(enter: Enter, fallback: _TierSim | None) -> Enter:
    """`enter`, and when it refuses on the spot, the fallback tier's (a lost cache node's keys
    go to the origin)."""
    if fallback is None:
        return enter
    other_enter, other_pick = fallback.enter, fallback.pick(None)

    def enter_or_fall_back(k: int, pick: Pick, cont: Cont) -> bool:
        return enter(k, pick, cont) or other_enter(k, other_pick, cont)

    return enter_or_fall_back


def _runner(steps: tuple[Step_, ...]) -> Runner | None:
    """The cheapest way to run these steps: none, one call (with the callee's plain enter
    inlined where it has one: `admission.direct_runner`; made always or by its probability),
    one one_of, or a _Sequence."""
    if not steps:
        return None
    first = steps[0]
    if len(steps) == 1 and type(first) is CallStep and first.repeat == 1:
        direct = None
        if first.target is not None:
            direct = admission.direct_runner(
                first.target, first.pick, first.probability, first.uniform
            )
        if direct is not None:
            return direct
        if first.probability >= 1.0:
            return _plain_call(first.enter, first.pick)
        return _maybe_call(first)
    if len(steps) == 1 and type(first) is OneOfStep:
        return _one_of(first)

    def sequence(k: int, done: Cont) -> None:
        _Sequence(steps, k, done).advance()

    return sequence


def _plain_call(enter: Enter, pick: Pick) -> Runner:
    def call(k: int, done: Cont) -> None:
        if not enter(k, pick, done):
            done(False)

    return call


def _maybe_call(step: CallStep) -> Runner:
    """One call made when `uniform() < probability`, through the callee's `enter` (something
    stands in front of its `arrive`): what a `_Sequence` of this one step does, the same draw
    at the same moment, without the sequence (measured: web-shop's Redis misses to PostgreSQL
    behind its pool)."""
    enter, pick, probability, uniform = step.enter, step.pick, step.probability, step.uniform

    def maybe(k: int, done: Cont) -> None:
        if uniform() >= probability:
            done(True)
        elif not enter(k, pick, done):
            done(False)

    return maybe


def _one_of(step: OneOfStep) -> Runner:
    """Exactly one of the targets, each run by its direct runner or through its `enter`."""
    runners = []
    for n, (enter, pick) in enumerate(step.targets):
        direct = None
        if step.stations:
            direct = admission.direct_runner(step.stations[n], pick, 1.0, step.uniform)
        runners.append(direct if direct is not None else _plain_call(enter, pick))
    options = list(zip(step.bounds, runners, strict=True))
    uniform = step.uniform
    if len(options) == 2 and step.stations:
        return _one_of_two(step, runners)

    def one_of(k: int, done: Cont) -> None:
        x = uniform()
        for bound, run in options:
            if x < bound:
                run(k, done)
                return
        done(True)

    return one_of


def _one_of_two(step: OneOfStep, runners: list[Runner]) -> Runner:
    """`_one_of` of two options; an option whose callee has nothing in front of `arrive` and one
    instance is run inline (`admission.direct_runner`'s `call_one`, the same steps): one Python
    call less per request (measured: the W3 variant's app calls its cache or its database)."""
    (first, second), uniform = step.bounds, step.uniform
    run_first, run_second = runners
    inline = admission.inline_target(step.stations[0], step.targets[0][1])
    if inline is None:

        def either(k: int, done: Cont) -> None:
            x = uniform()
            if x < first:
                run_first(k, done)
            elif x < second:
                run_second(k, done)
            else:
                done(True)

        return either
    st, env, warmup, arrive, instance = inline

    def first_inline(k: int, done: Cont) -> None:
        x = uniform()
        if x < first:
            now = env._now
            if now >= warmup:
                st.arrivals += 1
            if not arrive(instance, k, now, done):
                done(False)
        elif x < second:
            run_second(k, done)
        else:
            done(True)

    return first_inline


def _ignore(ok: bool) -> None:
    """The continuation of a request that arrived before the window: nothing to count."""
