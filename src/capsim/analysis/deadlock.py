"""Blocking tiers that call themselves back: when nested visits can hold every worker.

A blocking worker stays held while its calls are outstanding. When one of those calls comes
back to the same tier (a service that calls itself through its own load balancer, or through
another tier that calls it back), the nested visit needs a second worker of the same pool
while the first waits for it. A chain of nested visits as deep as the tier has workers holds
all of them, and the next nested visit waits for a worker that none of them will free: the
pool is deadlocked (thread-pool starvation), for good without a timeout.

The scenario format writes such a call with a probability, so the nesting depth is geometric:
a visit calls back with probability q (the *return probability*, the most likely loop of
synchronous calls back to the tier), and one request alone nests W + 1 deep, holding all W
workers, with probability q^W. At the rate r of visits that start a chain, such requests come
at r (1 - q) q^W per second: the pool deadlocks within 1 / that (the *expected time to
deadlock*, an upper bound: under load the chains of concurrent requests share the workers and
it comes sooner). docs/calibration.md, "A service that calls itself", defines the figures.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from capsim.engine.result import TierRun
from capsim.model.types import Call, Model, OneOf, Parallel, Step
from capsim.units import format_duration

#: A lone request deadlocking the pool once in this many seconds or more is not worth a word.
_NEGLIGIBLE_SECONDS = 10 * 365 * 86400.0


@dataclass(frozen=True)
class DeadlockRisk:
    """A blocking tier whose visits can call it back while they hold their worker."""

    tier: str
    loop: tuple[str, ...]  # the tiers from the tier back to itself, both ends included
    return_probability: float  # q: a visit's chance to call the tier back (most likely loop)
    workers: int  # W: every worker of the tier (instances x concurrency)

    @property
    def lone_request(self) -> float:
        """q^W: the chance one request alone nests W + 1 deep and holds every worker."""
        return self.return_probability**self.workers

    def seconds_to_deadlock(self, visit_rate: float) -> float:
        """Expected seconds until a lone request deadlocks the pool, at `visit_rate` visits per
        second to the tier (all visits, nested ones included); inf without traffic."""
        chains = visit_rate * (1.0 - self.return_probability)  # visits that start a chain
        per_second = chains * self.lone_request
        return 1.0 / per_second if per_second > 0 else math.inf

    def workers_for(self, visit_rate: float, seconds: float) -> int | None:
        """The fewest workers with which a lone request deadlocks the pool less than once in
        `seconds` at `visit_rate`: r (1 - q) q^W <= 1 / seconds; None without traffic."""
        q = self.return_probability
        chains = visit_rate * (1.0 - q) * seconds
        if chains <= 0 or q <= 0:
            return None
        if q >= 1:
            return None  # every visit calls back: no pool is deep enough
        return max(1, math.ceil(math.log(1.0 / chains) / math.log(q)))

    def as_dict(self, visit_rate: float, run_seconds: float) -> dict[str, Any]:
        expected = self.seconds_to_deadlock(visit_rate)
        return {
            "loop": list(self.loop),
            "return_probability": self.return_probability,
            "workers": self.workers,
            "lone_request": self.lone_request,
            "expected_seconds": None if math.isinf(expected) else expected,
            "within_run": expected <= run_seconds,
        }

    def sentence(self, visit_rate: float, run_seconds: float) -> str:
        """What the risk is, in one sentence for a warning or a note."""
        expected = self.seconds_to_deadlock(visit_rate)
        loop = " -> ".join(self.loop)
        text = (
            f"tier '{self.tier}' can DEADLOCK: its blocking workers call it back ({loop}, "
            f"probability {self.return_probability:.3g} a visit) while they hold their worker, "
            f"so a request nested {self.workers + 1} deep holds all {self.workers} workers and "
            f"waits for one of them: {self.return_probability:.3g}^{self.workers} = "
            f"{self.lone_request:.3g} of requests alone"
        )
        if math.isinf(expected):
            return text + " (no traffic reaches it)"
        text += f", once in about {format_duration(expected)} at {visit_rate:.4g} visits/s"
        if expected <= run_seconds:
            return text + (
                f", within the {format_duration(run_seconds)} simulated: expect the run to "
                "stall (throughput 0); give the tier more workers, a timeout on the call "
                "(the only thing that breaks such a deadlock in a real system), or make it "
                "non-blocking"
            )
        return text + " (sooner under load, when concurrent requests share the workers)"


def deadlock_risks(model: Model) -> list[DeadlockRisk]:
    """Every blocking tier that a loop of synchronous calls leads back to, with the most likely
    such loop. A call with a `timeout`, or a tier with a waiting `timeout`, breaks the loop (a
    stalled visit is given up on and its worker freed). Whether a risk is worth reporting is
    the caller's choice (`worth_a_word`)."""
    edges = _synchronous_edges(model)
    risks = []
    for tier in model.tiers:
        if not tier.blocking or tier.is_async or tier.workers <= 0 or tier.timeout is not None:
            continue  # a waiting timeout drops the nested visit, which frees its caller
        found = _most_likely_loop(edges, tier.index)
        if found is None:
            continue
        probability, path = found
        names = tuple(model.tiers[i].name for i in path)
        risks.append(DeadlockRisk(tier.name, names, probability, tier.workers))
    return risks


def worth_a_word(risk: DeadlockRisk, visit_rate: float) -> bool:
    """Whether the risk is likely enough to report (a lone deadlock within ten years)."""
    return risk.seconds_to_deadlock(visit_rate) < _NEGLIGIBLE_SECONDS


def _synchronous_edges(model: Model) -> dict[int, dict[int, float]]:
    """edges[i][j]: the highest chance, over classes, that a visit of tier i calls tier j
    synchronously (calls to a queue are asynchronous and never hold the caller)."""
    edges: dict[int, dict[int, float]] = {}
    for tier in model.tiers:
        row: dict[int, float] = {}
        for work in tier.work:
            chances: dict[int, float] = {}
            for step in work.calls:
                _step_chances(step, 1.0, chances)
            for target, chance in chances.items():
                if not model.tiers[target].is_async:
                    row[target] = max(row.get(target, 0.0), min(chance, 1.0))
        edges[tier.index] = row
    return edges


def _step_chances(step: Step, scale: float, chances: dict[int, float]) -> None:
    """Adds to `chances` the chance that `step` calls each tier at least once (a lower bound
    when one tier is called by several steps: the highest of them)."""
    if isinstance(step, Call):
        if step.timeout is not None:
            return  # the caller gives up after it and frees its worker: no deadlock for good
        chances[step.tier] = max(chances.get(step.tier, 0.0), scale * step.probability)
    elif isinstance(step, OneOf):
        for target, probability in step.options:
            chances[target] = max(chances.get(target, 0.0), scale * probability)
    elif isinstance(step, Parallel):
        for branch in step.branches:
            _step_chances(branch, scale, chances)


def _most_likely_loop(
    edges: dict[int, dict[int, float]], start: int
) -> tuple[float, list[int]] | None:
    """The most probable path of calls from `start` back to itself (Dijkstra on -log p), or
    None when no path leads back."""
    best: dict[int, float] = {}
    previous: dict[int, int] = {}
    heap: list[tuple[float, int]] = []
    for target, chance in edges[start].items():
        if chance > 0 and -math.log(chance) < best.get(target, math.inf):
            best[target] = -math.log(chance)
            previous[target] = start
            heapq.heappush(heap, (best[target], target))
    done: set[int] = set()
    while heap:
        cost, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node == start:
            return math.exp(-cost), _path(previous, start)
        for target, chance in edges[node].items():
            if chance <= 0:
                continue
            candidate = cost - math.log(chance)
            if candidate < best.get(target, math.inf):
                best[target] = candidate
                previous[target] = node
                heapq.heappush(heap, (candidate, target))
    return None


def _path(previous: dict[int, int], start: int) -> list[int]:
    path = [start]
    node = previous[start]
    while node != start:
        path.append(node)
        node = previous[node]
    path.append(start)
    return path[::-1]


def run_seconds(model: Model) -> float:
    """Simulated seconds of one replication: warm-up and measured window."""
    return model.simulation.warmup + model.simulation.duration


#: What solve's bound leaves out for a tier that calls itself back (docs/calibration.md).
_COLLAPSE_NOTE = (
    "calls itself back while holding its worker: once requests queue for its workers, nested "
    "calls wait behind them while their callers hold workers, and the pool can collapse into "
    "deadlock well below its saturation bound (capsim saturate finds where)"
)


def mark_deadlocks(
    model: Model, tiers: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """`capsim solve`'s view: each tier at risk gets a `deadlock` entry (`DeadlockRisk.as_dict`)
    computed at its offered rate; a tier expected to deadlock within the simulated run is not
    in steady state (`stable: false`, `max_rate` 0: no load is sustained for good). Returns
    the entries of the result's `deadlocks`, each with its `tier` and `sentence`, and the notes
    on tiers whose lone deadlocks are too rare to report but whose bound ignores a collapse."""
    found = []
    notes = []
    seconds = run_seconds(model)
    for risk in deadlock_risks(model):
        entry = tiers.get(risk.tier)
        if entry is None:
            continue
        rate = float(entry.get("offered_rate") or 0.0)
        if not worth_a_word(risk, rate):
            entry["method"]["notes"].append(_COLLAPSE_NOTE)
            entry["method"]["exact"] = False
            notes.append(f"{risk.tier} {_COLLAPSE_NOTE}")
            continue
        figures = risk.as_dict(rate, seconds)
        entry["deadlock"] = figures
        if figures["within_run"]:
            entry["stable"] = False
            entry["max_rate"] = 0.0
        found.append({"tier": risk.tier, **figures, "sentence": risk.sentence(rate, seconds)})
    return found, notes


#: A stall shorter than this many sampling intervals of the queue trace is not told apart
#: from a busy moment.
_STALL_INTERVALS = 2


def stalled(tier_runs: list[TierRun]) -> int:
    """How many replications show a pool that stopped (`stopped`)."""
    return sum(stopped(run) for run in tier_runs)


def stopped(run: TierRun) -> bool:
    """Whether the pool stopped in the replication: visits waited for a worker from some
    sample of the window to its end (every sample from there above 0, and some still waiting
    at the end) and their number never fell (no worker was freed to take one; a merely busy
    pool's line goes down now and then, and an idle one's is at 0). The stop is seen when the
    whole last quarter of the window is so, or when it began later (a deadlock in the window's
    last quarter) and lasted at least `_STALL_INTERVALS` sampling intervals, with the oldest
    visit still waiting at the end waiting at least as long as the stop (none was taken from
    the line since it began)."""
    trace = np.asarray(run.queue_trace, dtype=np.float64)
    if run.backlog_at_end <= 0 or trace.size < 2:
        return False
    tail = trace[trace.size * 3 // 4 :]
    if tail.size >= 2 and tail[0] > 0 and bool(np.all(np.diff(tail) >= 0)):
        return True
    start = _stop_began(trace)
    intervals = trace.size - 1 - start
    if intervals < _STALL_INTERVALS:
        return False
    times = np.asarray(run.trace_times, dtype=np.float64)
    if times.size != trace.size:
        return False
    span = float(times[-1] - times[start])
    return run.oldest_waiting >= span


def _stop_began(trace: np.ndarray) -> int:
    """The first sample of the trace's last stretch in which the number waiting is above 0 and
    never falls (the trace's last index when its last sample alone is so)."""
    start = trace.size - 1
    while start > 0 and trace[start - 1] > 0 and trace[start - 1] <= trace[start]:
        start -= 1
    return start


def deadlocks_in_run(
    model: Model, tiers: dict[str, dict[str, Any]], tier_runs: dict[str, list[TierRun]]
) -> dict[str, dict[str, Any]]:
    """`capsim run`'s view: the tiers at risk (`deadlock_risks`) whose pool stopped in any
    replication (`stalled`: a deadlock in one replication is a deadlock the configuration
    reaches within the run), each with its `DeadlockRisk.as_dict` at the run's offered rate,
    `replications_stalled` and its `sentence`. Their entries in `tiers` become `stable: false`
    with a `deadlock` entry."""
    found = {}
    seconds = run_seconds(model)
    for risk in deadlock_risks(model):
        entry = tiers.get(risk.tier)
        runs = tier_runs.get(risk.tier, [])
        count = stalled(runs)
        if entry is None or not count:
            continue
        rate = float(entry.get("offered_rate") or 0.0)
        figures = {**risk.as_dict(rate, seconds), "replications_stalled": count}
        entry["stable"] = False
        entry["deadlock"] = figures
        found[risk.tier] = {**figures, "sentence": _stalled_sentence(risk, count, len(runs))}
    return found


def _stalled_sentence(risk: DeadlockRisk, count: int, runs: int) -> str:
    loop = " -> ".join(risk.loop)
    where = "" if runs == 1 else f" in {count} of {runs} replications"
    return (
        f"tier '{risk.tier}' is DEADLOCKED{where}, which fails the run: every one of its "
        f"{risk.workers} workers is held by a visit waiting for a nested call back to it "
        f"({loop}, probability {risk.return_probability:.3g} a visit), and those calls wait "
        "for a worker none of them will free, so it served nothing more (a lone request "
        f"nested {risk.workers + 1} deep does it: {risk.lone_request:.3g} of requests); give "
        "the tier more workers, a timeout on the call (what breaks such a deadlock in a real "
        "system), or make it non-blocking; its figures are not steady-state figures."
    )
