"""How `capsim solve` judges the objectives of a tier that a fault hits (docs/how-the-model-works.md,
"Faults in solve"): its steady state is the one without faults, so a tier objective there is
judged on the survivors of the worst loss, or not judged, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from capsim.analysis.solve_attempts import steady_errors
from capsim.model.types import Call, Fault, Model, OneOf, Parallel, Slo, Step


def _judged_after_loss(statistic: str) -> bool:
    """The tier figures solve estimates again on the survivors of a loss."""
    return statistic in ("utilization", "occupancy") or statistic.startswith("wait_")


@dataclass(frozen=True)
class TierUnderFaults:
    """What the faults of a run do to one tier, as solve sees it."""

    servers: int  # the tier's servers without faults
    fewest_live: int  # servers live at the worst moment of the run
    losing: str  # the text of the faults that lose its servers at that moment
    unmodelled: str | None  # a fault solve has no steady state for (a slowdown, errors)


def _text(fault: Fault, model: Model) -> str:
    return fault.text or f"a fault on tier '{model.tiers[fault.tier].name}'"


def _worst_loss(faults: list[Fault]) -> tuple[int, list[Fault]]:
    """The most servers lost at once by these faults, and the faults losing them."""
    worst: tuple[int, list[Fault]] = (0, [])
    for moment in sorted({f.at for f in faults}):
        active = [f for f in faults if f.at <= moment and (f.until is None or moment < f.until)]
        lost = set().union(*(set(f.lose) for f in active))
        if len(lost) > worst[0]:
            worst = (len(lost), [f for f in active if f.lose])
    return worst


def tiers_under_faults(model: Model) -> dict[int, TierUnderFaults]:
    """Each tier some fault hits, by index."""
    hit: dict[int, TierUnderFaults] = {}
    for index in sorted({f.tier for f in model.faults}):
        tier = model.tiers[index]
        faults = [f for f in model.faults if f.tier == index]
        lost, losing = _worst_loss([f for f in faults if f.lose])
        other = [f for f in faults if f.slowdown != 1.0 or f.error_rate > 0]
        hit[index] = TierUnderFaults(
            servers=tier.servers,
            fewest_live=max(tier.servers - lost, 0),
            losing="; ".join(_text(f, model) for f in losing),
            unmodelled=_text(other[0], model) if other else None,
        )
    return hit


def _waits_on_its_calls(statistic: str) -> bool:
    """The tier figures that count a blocking worker's time waiting for its calls."""
    return statistic == "occupancy" or statistic.startswith(("wait_", "age_"))


def step_callees(steps: tuple[Step, ...]) -> set[int]:
    """The tiers that `steps` call (every option of a choice, every branch of a fan-out)."""
    found: set[int] = set()
    for step in steps:
        if isinstance(step, Call):
            found.add(step.tier)
        elif isinstance(step, OneOf):
            found.update(index for index, _ in step.options)
        elif isinstance(step, Parallel):
            found |= step_callees(step.branches)
    return found


def _waited_for(model: Model, index: int) -> set[int]:
    """The tiers whose answers a worker of tier `index` waits for: its synchronous callees and
    theirs, transitively (a publish to a queue is answered at once)."""
    seen: set[int] = set()
    todo = [index]
    while todo:
        tier = model.tiers[todo.pop()]
        for callee in set().union(*(step_callees(work.calls) for work in tier.work)):
            if callee not in seen and model.tiers[callee].kind != "queue":
                seen.add(callee)
                todo.append(callee)
    seen.discard(index)
    return seen


def _faulted_callee(model: Model, slo: Slo, hit: dict[int, TierUnderFaults]) -> str | None:
    """The name of a tier a fault hits whose answers the objective's tier waits for, when the
    objective's figure counts that wait (occupancy, waits, age of a blocking tier)."""
    index = slo.tier_index
    if index is None or not model.tiers[index].blocking or not _waits_on_its_calls(slo.statistic):
        return None
    faulted = sorted(_waited_for(model, index) & set(hit))
    return model.tiers[faulted[0]].name if faulted else None


def _not_judged(verdict: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**verdict, "passed": None, "reason": reason}


def _survivors_model(model: Model, index: int, live: int) -> Model:
    tiers = list(model.tiers)
    tiers[index] = replace(tiers[index], instances=live)
    return replace(model, tiers=tuple(tiers), faults=())


def judge_after_faults(
    model: Model, verdicts: list[dict[str, Any]], solve_model: Callable[[Model], dict[str, Any]]
) -> list[dict[str, Any]]:
    """The tier objectives of `verdicts` (solve's, in `model.slos`' order) re-judged where a
    fault hits their tier: on the survivors of the worst loss (solved again with the tier at
    its fewest live instances, `solve_model`), or not judged with the reason. `before_fault`
    keeps the estimate without the fault."""
    hit = tiers_under_faults(model)
    if not hit:
        return verdicts
    after: dict[int, dict[str, Any]] = {}
    judged = []
    for slo, verdict in zip(model.slos, verdicts, strict=True):
        callee = _faulted_callee(model, slo, hit)
        if callee is not None:
            judged.append(_not_judged(
                {**verdict, "before_fault": verdict["observed"]},
                f"a fault hits {callee}, which this tier's workers wait for: it changes how long "
                "they are held, which solve's steady state does not include; run the "
                "simulation, which judges it phase by phase",
            ))  # fmt: skip
            continue
        state = hit.get(slo.tier_index) if slo.tier_index is not None else None
        if state is None:
            judged.append(verdict)
            continue
        judged.append(_judge_one(model, slo, verdict, state, after, solve_model))
    return judged


def _judge_one(
    model: Model,
    slo: Slo,
    verdict: dict[str, Any],
    state: TierUnderFaults,
    after: dict[int, dict[str, Any]],
    solve_model: Callable[[Model], dict[str, Any]],
) -> dict[str, Any]:
    index = slo.tier_index
    assert index is not None
    tier = model.tiers[index]
    verdict = {**verdict, "before_fault": verdict["observed"]}
    run_it = "run the simulation, which judges it phase by phase"
    if state.unmodelled is not None:
        return _not_judged(
            verdict,
            f"a fault changes how this tier serves during the run ({state.unmodelled}), which "
            f"solve's steady state does not include; {run_it}",
        )
    if state.fewest_live == state.servers:
        return verdict
    if state.fewest_live == 0:
        return _not_judged(
            verdict,
            f"a fault loses every instance of this tier ({state.losing}): the estimate is the "
            f"one before it, and after it the tier serves nothing; {run_it}",
        )
    if tier.servers != tier.instances or not _judged_after_loss(slo.statistic):
        return _not_judged(
            verdict,
            f"a fault loses {state.servers - state.fewest_live} of this tier's "
            f"{state.servers} servers ({state.losing}), and solve re-estimates only the "
            f"utilization, occupancy and wait of a tier of plain instances after a loss; "
            f"{run_it}",
        )
    if index not in after:
        after[index] = solve_model(_survivors_model(model, index, state.fewest_live))
    return _on_survivors(verdict, slo, after[index], tier.name, state)


def _on_survivors(
    verdict: dict[str, Any],
    slo: Slo,
    solved: dict[str, Any],
    name: str,
    state: TierUnderFaults,
) -> dict[str, Any]:
    figures = solved["tiers"][name]
    if slo.statistic.startswith("wait_"):
        observed = figures["wait"].get(slo.statistic.removeprefix("wait_"))
    else:
        observed = figures.get(slo.statistic)
    survivors = f"{state.fewest_live} of {state.servers} instances live ({state.losing})"
    verdict = {**verdict, "observed": observed, "after_loss": survivors}
    if not figures.get("stable", True):
        verdict["passed"] = False
        verdict["reason"] = f"overloaded after the loss: {survivors} have no steady state"
        return verdict
    if observed is None:  # no formula gives this statistic here
        verdict["passed"] = None
        return verdict
    verdict["passed"] = bool(math.isfinite(observed) and observed <= slo.limit)
    return verdict


def fault_notes(model: Model) -> list[str]:
    """What solve's figures say about a run with faults."""
    if not model.faults:
        return []
    errors = steady_errors(model)
    steady = [
        f"tier {model.tiers[index].name} answers {share:.3g} of its work with an error for the "
        "whole run (faults from before the warmup ends to the end): counted in the errors, in "
        "the retries they bring and in the calls it no longer makes"
        for index, share in sorted(errors.items())
    ]
    return [
        *steady,
        "faults: the figures are the steady state without them (but the error rates of faults "
        "lasting the whole run); an objective on a tier a fault "
        "hits is judged on the survivors of its worst loss, or not judged (with the reason), "
        "and one that counts the wait for a callee a fault hits is not judged; "
        "class objectives are judged without the faults: run the simulation to judge the run "
        "phase by phase",
    ]
