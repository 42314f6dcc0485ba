"""Where two visits can reach a tier at the same instant: whether the vectorised path must carry
the chains of ancestors that order simultaneous visits as the event path does.

The vectorised path orders the visits that arrive at a tier at the same instant by the chains of
times of the events that brought them (`capsim.engine.vectorised._Batch`), then by the sender's
round, the sender's arrival order and the call's place. Carrying the chains costs CPU, and they
decide nothing unless two visits *from different events* meet at one instant: at a tier's
arrivals or at a parallel group's join. Visits of one sender in one round are ordered by the
rest of the key exactly as by their chains; entry arrivals of one class by their ranks.

Two visits from different events meet only when their times are equal as numbers. A time is a
continuous draw plus constants: a Poisson (or MMPP) arrival, or a work end after a service time
with no atom (exponential, lognormal, gamma, non-degenerate uniform), followed by pure delays
(a publish time, a network round trip, a tier with no work at all). Two such times coincide
with probability zero (up to rounding: two draws within an ulp, about 1e-16 relative). Ties
need one of these, which `tie_reason` looks for (conservatively: a model where one is present
but cannot matter still gets the chains):

* an atom in a service time (a constant, zero for some classes only, an empirical sample, a
  degenerate uniform) at a tier that makes calls: a visit that waited starts at another's work
  end, and both then add the same constants;
* such a tier's answers (or a tier that calls one) feeding a caller that calls again after the
  answer or joins it in a parallel group;
* two classes with lattice arrivals (constant, batches, a trace) that can reach one tier
  through tiers with no work;
* a tier with no work reached inside a parallel group or by a publish (the request splits, and
  its parts can reach one tier at the same instant through different senders);
* a lattice class passing through tiers with no work to a caller that calls again after them.
"""

from __future__ import annotations

import math

from capsim.model.distributions import Distribution
from capsim.model.types import (
    BatchArrivals,
    Call,
    Model,
    OneOf,
    Parallel,
    Step,
    Tier,
    TraceArrivals,
    TrafficClass,
)


def atomless(dist: Distribution | None) -> bool:
    """Whether two draws of `dist` are equal with probability zero (no value has a mass)."""
    if dist is None:
        return False
    kind, params = dist.kind, dist.params
    if kind == "exponential":
        return params[0] > 0.0
    if kind == "lognormal":
        return params[1] > 0.0
    if kind == "gamma":
        return params[0] > 0.0 and math.isfinite(params[0]) and params[1] > 0.0
    if kind == "uniform":
        return params[1] > params[0]
    return False  # constant, empirical (a finite sample), or a kind this module does not know


def passes_through(tier: Tier) -> bool:
    """Whether the tier has no work at all for any class: a visit leaves it when it arrives."""
    return all(
        work.service_time.kind == "constant" and work.service_time.params[0] == 0.0
        for work in tier.work
    )


def has_atoms(tier: Tier) -> bool:
    """Whether some class's service time at the tier has an atom (and the tier has work)."""
    return not passes_through(tier) and not all(atomless(w.service_time) for w in tier.work)


def lattice(traffic: TrafficClass) -> bool:
    """Whether the class's arrivals can fall on instants another lattice class also uses."""
    return traffic.arrivals == "constant" or isinstance(
        traffic.process, (TraceArrivals, BatchArrivals)
    )


def tie_reason(model: Model) -> str:
    """Why visits from different events may reach a tier (or a join) at the same instant in
    this model, in plain words; "" when they cannot (with probability one)."""
    tiers = [model.tiers[i] for i in sorted(_reached(model))]
    for tier in tiers:
        if has_atoms(tier) and _calls(tier):
            return f"tier '{tier.name}' has a service time with an atom and makes calls"
    split = _split_pass_through(model, tiers)
    if split:
        return split
    reaches = {t.index: _pass_through_reach(model, t.entry) for t in model.classes if lattice(t)}
    crossing = _crossing_lattices(model, reaches)
    if crossing:
        return crossing
    tied = _tied_answers(model, set().union(*reaches.values()) if reaches else set())
    for tier in tiers:
        if any(_answers_used(tier, work.calls, tied) for work in tier.work):
            return f"tier '{tier.name}' calls again after, or joins, answers that may tie"
    return ""


def _calls(tier: Tier) -> list[Call]:
    return [call for work in tier.work for call in calls_in(work.calls)]


def calls_in(steps: tuple[Step, ...]) -> list[Call]:
    """The calls of `steps`, one_of options (each with its probability) and parallel branches
    included, in order."""
    calls: list[Call] = []
    for step in steps:
        if isinstance(step, Call):
            calls.append(step)
        elif isinstance(step, OneOf):
            calls.extend(Call(tier, probability) for tier, probability in step.options)
        elif isinstance(step, Parallel):
            calls.extend(calls_in(step.branches))
    return calls


def _reached(model: Model) -> set[int]:
    """Tiers some class's requests can reach (the others' settings cannot make ties)."""
    reached: set[int] = set()
    stack = [traffic.entry for traffic in model.classes]
    while stack:
        index = stack.pop()
        if index not in reached:
            reached.add(index)
            stack.extend(call.tier for call in _calls(model.tiers[index]))
    return reached


def _split_pass_through(model: Model, tiers: list[Tier]) -> str:
    """A tier with no work reached by a publish or inside a parallel group of several branches."""
    for tier in tiers:
        for work in tier.work:
            for step in _parallel_groups(work.calls):
                if len(step.branches) < 2:
                    continue
                for call in calls_in(step.branches):
                    if passes_through(model.tiers[call.tier]):
                        return (
                            f"tier '{tier.name}' calls '{model.tiers[call.tier].name}', which "
                            "has no work, in a parallel group"
                        )
        for call in _calls(tier):
            callee = model.tiers[call.tier]
            if callee.is_async and passes_through(callee):
                return f"tier '{tier.name}' publishes to '{callee.name}', which has no work"
    return ""


def _parallel_groups(steps: tuple[Step, ...]) -> list[Parallel]:
    found: list[Parallel] = []
    for step in steps:
        if isinstance(step, Parallel):
            found.append(step)
            found.extend(_parallel_groups(step.branches))
    return found


def _pass_through_reach(model: Model, entry: int) -> set[int]:
    """Tiers a visit reaches from `entry` without any work on the way (`entry` included)."""
    reached: set[int] = set()
    stack = [entry]
    while stack:
        index = stack.pop()
        if index in reached:
            continue
        reached.add(index)
        if passes_through(model.tiers[index]):
            stack.extend(call.tier for call in _calls(model.tiers[index]))
    return reached


def _crossing_lattices(model: Model, reaches: dict[int, set[int]]) -> str:
    """Two lattice classes that can reach one tier through tiers with no work."""
    lattices = sorted(reaches)
    for position, first in enumerate(lattices):
        for second in lattices[position + 1 :]:
            common = reaches[first] & reaches[second]
            if common:
                return (
                    f"classes '{model.classes[first].name}' and '{model.classes[second].name}' "
                    f"both arrive at fixed instants and can meet at tier "
                    f"'{model.tiers[min(common)].name}'"
                )
    return ""


def _tied_answers(model: Model, lattice_reach: set[int]) -> set[int]:
    """Tiers whose answers to their callers may coincide for different visits: a service time
    with an atom, no work on a lattice class's way, or a callee's such answer (spread from
    callee to caller, once per tier: a chain of thousands of tiers stays linear)."""
    callers: dict[int, set[int]] = {t.index: set() for t in model.tiers}
    for tier in model.tiers:
        for call in _calls(tier):
            if not model.tiers[call.tier].is_async:
                callers[call.tier].add(tier.index)
    tied = {t.index for t in model.tiers if has_atoms(t)}
    tied |= {i for i in lattice_reach if passes_through(model.tiers[i])}
    stack = list(tied)
    while stack:
        for caller in callers[stack.pop()]:
            if caller not in tied:
                tied.add(caller)
                stack.append(caller)
    return tied


def _answers_used(tier: Tier, steps: tuple[Step, ...], tied: set[int]) -> bool:
    """Whether `steps` use an answer from a tier in `tied`: another step after it (a call made
    at its time) or a join of several branches."""
    reaches_tied = any(call.tier in tied for call in calls_in(steps))
    if not reaches_tied:
        return False
    if len(steps) > 1:
        return True
    step = steps[0]
    if isinstance(step, Parallel):
        return len(step.branches) > 1 or _answers_used(tier, step.branches, tied)
    return False
