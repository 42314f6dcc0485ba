"""The vectorised engine path: requests computed in bulk with numpy, exactly, in flat memory.

How it works
------------
Time is cut into chunks of entry arrivals. In each chunk every tier is processed once, in an
order where all of a tier's arrivals before the chunk's end are known when it is processed:
the tier takes every visit that arrived before the chunk's end (later ones wait for the next
chunk, so each tier sees its visits in arrival order across chunks), assigns instances, draws
service times and runs the FIFO kernel of each instance (`capsim.engine.kernels`) with the
workers' free times carried from the previous chunk.

After its own work a visit runs its tier's calls as a small program of *rounds* (a sequential
call is one round, a parallel group runs its branches' rounds side by side and joins with a
max). Visits advance through rounds in vectorised groups (`_Task`); a group splits when only
some of its visits have their calls answered, so a visit never waits for an unrelated one.
Every random draw is made per tier in the tier's arrival order (service, routing, balancing,
publish), and simultaneous arrivals are ordered by a total key (see `_Batch`), so chunking never
changes the answer.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from capsim.engine import streams, ties
from capsim.engine.arrivals import ArrivalEpochs
from capsim.engine.histogram import Histogram, censored
from capsim.engine.kernels import SingleWorker, fifo_multi, fifo_single
from capsim.engine.result import GROUP_NAMES, ClassRun, RunResult, TierRun
from capsim.engine.timeseries import TierSeries, bucket_of, interval_mass, new_series
from capsim.errors import SimulationError
from capsim.graphs import find_cycle, strongly_connected
from capsim.model import features
from capsim.model.types import (
    Call,
    MmppArrivals,
    Model,
    OneOf,
    Parallel,
    Step,
    Tier,
    TrafficClass,
)

ProgressCallback = Callable[[float, str], None]

#: Entry arrivals per chunk: memory is proportional to this, not to the run's length.
CHUNK_REQUESTS = 1 << 14
#: Exponential gaps are drawn in blocks of this size whatever the chunk size, so that chunking
#: never changes which draws make which arrivals.
_ARRIVAL_BLOCK = 1 << 16
#: Points of the queue-length trace, evenly spaced over the measurement window.
TRACE_POINTS = 50

_ROUND_ROBIN, _RANDOM = 0, 1
#: Times of an event's chain of ancestors kept to order simultaneous visits (see `_Batch`):
#: the event that scheduled it, that event's scheduler, and one more. Chains that agree that
#: far go by the rest of the key.
_DEPTH = 3
_ALGORITHM_CODES = {"round_robin": _ROUND_ROBIN, "random": _RANDOM}


# ---------------------------------------------------------------------------------------------
# Eligibility
# ---------------------------------------------------------------------------------------------


def can_vectorise(model: Model) -> tuple[bool, str]:
    """Whether the vectorised path can run `model` exactly, and why (or why not), in plain words.

    The state-dependent features it refuses are classified in `capsim.model.features`."""
    for traffic in model.classes:
        reason = features.class_refusal(model, traffic)
        if reason:
            return False, reason
    reason = features.model_refusal(model)
    if reason:
        return False, reason
    for tier in model.tiers:
        reason = _tier_obstacle(model, tier)
        if reason:
            return False, reason
    cycle = _call_cycle(model)
    if cycle:
        return False, (
            "the call graph has a cycle (" + " -> ".join(cycle) + "); requests that revisit a "
            "tier need the event path"
        )
    uneven = _uneven_parallel(model)
    if uneven:
        return False, uneven
    programs = _compile_programs(model)
    if _processing_order(model, programs) is None:
        return False, _called_again_reason(model, programs)
    return True, (
        "every class is open and every tier is FIFO with fixed capacity, state-independent "
        "routing and non-blocking (or call-free) workers"
    )


def _uneven_parallel(model: Model) -> str:
    """Why a parallel group's branches cannot run in step ("" when they can).

    The vectorised path runs a parallel group's branches round by round together: a branch's
    second publish of a `repeat` waits for every first-round answer of the group. Its time is
    still its own, but when another branch's synchronous answer comes back in the next chunk,
    that publish reaches its queue after the queue has been processed past its time (found by
    the differential fuzzer: a SimulationError at a chunk boundary)."""
    for tier in model.tiers:
        for work in tier.work:
            for step in _parallels(work.calls):
                repeated = [c for c in ties.calls_in(step.branches) if c.repeat > 1]
                waited = [
                    c for c in ties.calls_in(step.branches) if not model.tiers[c.tier].is_async
                ]
                if repeated and waited:
                    return (
                        f"tier '{tier.name}' publishes to '{model.tiers[repeated[0].tier].name}' "
                        f"{repeated[0].repeat} times in a parallel group beside a synchronous "
                        f"call to '{model.tiers[waited[0].tier].name}', whose rounds the "
                        "vectorised path cannot keep apart"
                    )
    return ""


def _parallels(steps: tuple[Step, ...]) -> list[Parallel]:
    found: list[Parallel] = []
    for step in steps:
        if isinstance(step, Parallel):
            found.append(step)
            found.extend(_parallels(step.branches))
    return found


def _tier_obstacle(model: Model, tier: Tier) -> str:
    """The first event-only feature of the tier or of one of its calls ("" when none)."""
    reason = features.tier_refusal(model, tier)
    if reason:
        return reason
    for work in tier.work:
        for call in ties.calls_in(work.calls):
            reason = features.call_refusal(model, tier, call)
            if reason:
                return reason
    return ""


def _callees(model: Model, tier: Tier) -> set[int]:
    return {call.tier for work in tier.work for call in ties.calls_in(work.calls)}


def _call_cycle(model: Model) -> list[str]:
    """Tier names along a cycle of the call graph, or [] when it is feed-forward (without
    recursion: a chain of thousands of tiers is as deep on the stack as a chain of two)."""
    successors = {t.index: sorted(_callees(model, t)) for t in model.tiers}
    for component in strongly_connected(range(len(model.tiers)), successors):
        start = component[0]
        if len(component) > 1 or start in successors[start]:
            loop = find_cycle(start, successors) or [start, start]
            return [model.tiers[i].name for i in loop]
    return []


# ---------------------------------------------------------------------------------------------
# Programs: a tier's calls for one class, compiled into rounds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CallOp:
    """One call made in a round from register `reg`; made when low <= u[column] < high."""

    tier: int
    reg: int
    column: int  # routing column deciding the call, -1: always made
    low: float
    high: float
    waited: bool  # False: asynchronous publish to a queue tier
    publish: int  # publish column (asynchronous calls), -1 otherwise
    algorithm: int  # balancing code at the callee for this call, -1: the callee's own
    slot: int  # this call's place in the program: orders a visit's simultaneous calls
    half_rtt: float = 0.0  # network between regions: each way takes half the round trip


@dataclass
class _Round:
    """What happens at one round's start, then the calls it makes.

    `moves` are register moves, `to = max(from...)` (a copy has one source), in program order:
    a parallel step that ends at this round joins before the next step copies the joined clock
    into its branches, and an outer branch's copy comes before the copies of a step inside it.
    """

    moves: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    calls: list[_CallOp] = field(default_factory=list)


@dataclass
class _Program:
    """A tier's calls for one class: rounds, registers, and the draws they need per visit."""

    rounds: list[_Round]
    registers: int
    columns: int  # routing uniforms per visit
    publishes: list[int]  # callee queue tier of each publish column


def _compile_programs(model: Model) -> list[list[_Program]]:
    """programs[tier][class]."""
    return [[_compile(model, work.calls) for work in tier.work] for tier in model.tiers]


def _compile(model: Model, steps: tuple[Step, ...]) -> _Program:
    rounds: list[_Round] = []
    counters = {"registers": 1, "columns": 0, "slots": 0}
    publishes: list[int] = []

    def round_at(index: int) -> _Round:
        while len(rounds) <= index:
            rounds.append(_Round())
        return rounds[index]

    def call_op(
        call_tier: int,
        reg: int,
        column: int,
        low: float,
        high: float,
        alg: str | None,
        rtt: float = 0.0,
    ) -> tuple[_CallOp, bool]:
        callee = model.tiers[call_tier]
        publish = -1
        if callee.is_async:
            publish = len(publishes)
            publishes.append(call_tier)
        code = _ALGORITHM_CODES[alg] if alg is not None else -1
        slot = counters["slots"]
        counters["slots"] += 1
        op = _CallOp(
            tier=call_tier,
            reg=reg,
            column=column,
            low=low,
            high=high,
            waited=not callee.is_async,
            publish=publish,
            algorithm=code,
            slot=slot,
            half_rtt=rtt / 2.0,
        )
        return op, not callee.is_async

    def sequence(items: tuple[Step, ...], reg: int, at: int) -> int:
        for step in items:
            at = single(step, reg, at)
        return at

    def single(step: Step, reg: int, at: int) -> int:
        if isinstance(step, Call):
            column = -1
            if step.probability < 1.0:
                column = counters["columns"]
                counters["columns"] += 1
            for _ in range(step.repeat):
                op, _ = call_op(
                    step.tier,
                    reg,
                    column,
                    0.0,
                    step.probability,
                    step.algorithm,
                    step.network_delay,
                )
                round_at(at).calls.append(op)
                at += 1
            return at
        if isinstance(step, OneOf):
            column = counters["columns"]
            counters["columns"] += 1
            low = 0.0
            delays = step.network_delays or (0.0,) * len(step.options)
            for (tier_index, probability), rtt in zip(step.options, delays, strict=True):
                op, _ = call_op(tier_index, reg, column, low, low + probability, None, rtt)
                round_at(at).calls.append(op)
                low += probability
            return at + 1
        branch_regs = []
        end = at
        for branch in step.branches:
            branch_reg = counters["registers"]
            counters["registers"] += 1
            branch_regs.append(branch_reg)
            round_at(at).moves.append((branch_reg, (reg,)))
            end = max(end, single(branch, branch_reg, at))
        round_at(end).moves.append((reg, tuple(branch_regs)))
        return end

    end = sequence(steps, 0, 0)
    round_at(end)  # the final round only joins; the visit is done at its start
    return _Program(
        rounds=rounds,
        registers=counters["registers"],
        columns=counters["columns"],
        publishes=publishes,
    )


def _completion_deps(model: Model, programs: list[list[_Program]]) -> list[set[int]]:
    """Tiers that must be processed before a visit to each tier can complete (itself included).
    The call graph has no cycle here (`can_vectorise` refuses one first)."""
    waited = {
        index: sorted(
            {
                op.tier
                for program in tier_programs
                for rnd in program.rounds
                for op in rnd.calls
                if op.waited
            }
        )
        for index, tier_programs in enumerate(programs)
    }
    deps: list[set[int]] = [set() for _ in model.tiers]
    # Callees first, so that each tier's callees are known when it is reached.
    for component in reversed(strongly_connected(range(len(model.tiers)), waited)):
        for index in component:
            deps[index] = {index}.union(*(deps[callee] for callee in waited[index]))
    return deps


def _called_again_reason(model: Model, programs: list[list[_Program]]) -> str:
    """Why `_processing_order` found no order, naming the caller and the tier it calls again
    (a `repeat` or a second call after one whose answer depends on that tier)."""
    deps = _completion_deps(model, programs)
    for tier_index, tier_programs in enumerate(programs):
        for program in tier_programs:
            earlier: set[int] = set()
            for rnd in program.rounds:
                again = [op.tier for op in rnd.calls if op.tier in earlier]
                if again:
                    return (
                        f"tier '{model.tiers[tier_index].name}' calls "
                        f"'{model.tiers[again[0]].name}' again after a call whose answer "
                        f"depends on '{model.tiers[again[0]].name}' (a repeat, or sequential "
                        "calls that share a downstream tier), so its arrivals cannot be "
                        "computed before it is processed"
                    )
                for op in rnd.calls:
                    if op.waited:
                        earlier |= deps[op.tier]
    return (
        "a tier is called again after a call whose answer itself depends on that tier "
        "(sequential calls that share a downstream tier), so its arrivals cannot be "
        "computed before it is processed"
    )


def _processing_order(model: Model, programs: list[list[_Program]]) -> list[int] | None:
    """An order of tiers in which each tier's arrivals are known before it is processed.

    A call made in round r of a tier's program depends on the tier and on every tier the
    answers of its earlier rounds depend on. None when these dependencies form a cycle. Tiers
    free to go in any order go by name, so that the order of `tiers:` in the scenario changes
    not even the last bit of a sum (engine/streams.py keys the draws by name too).
    """
    deps = _completion_deps(model, programs)
    count = len(model.tiers)
    edges: list[set[int]] = [set() for _ in range(count)]
    for tier_index, tier_programs in enumerate(programs):
        for program in tier_programs:
            earlier: set[int] = {tier_index}
            for rnd in program.rounds:
                for op in rnd.calls:
                    for before in earlier:
                        edges[before].add(op.tier)
                for op in rnd.calls:
                    if op.waited:
                        earlier = earlier | deps[op.tier]
    indegree = [0] * count
    for targets in edges:
        for target in targets:
            indegree[target] += 1
    ready = [i for i in range(count) if indegree[i] == 0]
    order: list[int] = []

    def by_name(index: int) -> str:
        return model.tiers[index].name

    while ready:
        ready.sort(key=by_name)
        current = ready.pop(0)
        order.append(current)
        for target in sorted(edges[current], key=by_name):
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return order if len(order) == count else None


# ---------------------------------------------------------------------------------------------
# Runtime: batches of visits, tasks that run programs, return addresses
# ---------------------------------------------------------------------------------------------


class _Root:
    """Where a class's entry visits report: latency of each request."""

    __slots__ = ("arrivals", "engine")

    def __init__(self, engine: _Run, arrivals: np.ndarray) -> None:
        self.engine = engine
        self.arrivals = arrivals

    def complete(
        self,
        reg: int,
        positions: np.ndarray,
        done: np.ndarray,
        chain: np.ndarray,
        class_index: int,
    ) -> _Task | None:
        self.engine.record_latency(class_index, self.arrivals[positions], done)
        return None


@dataclass
class _Batch:
    """Visits pushed to a tier: arrival times, and where each visit's completion goes.

    Visits that arrive at the same instant are served in the order in which the event path
    runs the events that bring them. SimPy runs simultaneous events in the order they were
    scheduled: by the time of the event that scheduled each, then, when those tie, by the order
    in which *those* ran, and so on back along each event's chain of ancestors. So the key is,
    after the arrival time, that chain's times (`sent`, `_DEPTH` rows: the scheduling event's
    time, its own scheduler's, ...; see `_Task.ancestors` for how a visit's chain grows through
    its rounds), then the round of the sender's program that sent them (`sent_round`), then the
    sender's own arrival order (`sent_seq`; for a class's own arrivals, the rank of the class's
    previous one in the order the event path ran the classes' arrivals, see `_ClassOrder`),
    then which sender (`source`: k for class k's own arrivals, then the tiers, n_classes + tier
    index) and which call of the sender's program (`slot`). The order is total, so the chunking
    cannot change it. Clients in another region send each arrival over the network when it
    comes: for them the chain starts at the arrival and `sent_seq` is its own rank.
    """

    times: np.ndarray
    class_index: int
    algorithm: int
    parent: _Task | _Root | None
    reg: int
    positions: np.ndarray  # position of each visit in the parent task
    sent: np.ndarray  # (_DEPTH, n): the chain of times of the events that brought each visit
    sent_seq: np.ndarray
    sent_round: int
    source: int
    slot: int
    back: float = 0.0  # the answer's way back to the parent over the network (half the RTT)


class _Task:
    """Visits of one class at one tier running their program together, at round `round`."""

    __slots__ = (
        "ancestors",
        "arrived",
        "back",
        "class_index",
        "own_seq",
        "own_start",
        "parent",
        "parent_positions",
        "parent_reg",
        "pending",
        "program",
        "publish",
        "registers",
        "round",
        "tier",
        "uniforms",
    )

    def __init__(
        self,
        tier: int,
        class_index: int,
        program: _Program,
        registers: np.ndarray,
        uniforms: np.ndarray,
        publish: np.ndarray,
        parent: _Task | _Root | None,
        parent_reg: int,
        parent_positions: np.ndarray,
        ancestors: np.ndarray,
        own_start: np.ndarray,
        own_seq: np.ndarray,
        round_index: int = 0,
        arrived: np.ndarray | None = None,
        back: float = 0.0,
    ) -> None:
        self.back = back  # added to each visit's end on its way back to the parent
        self.arrived = arrived  # arrival times, kept for queue tiers (message age)
        # ancestors[reg]: (_DEPTH, n), for each visit, the times of the chain of events behind
        # the event that set its register `reg` (its own time is the register): the visit's
        # next call from `reg` is made in that event, and simultaneous calls reach their callee
        # in the order of these chains (see `_Batch`).
        self.ancestors = ancestors
        self.own_start = own_start  # when each visit's own work started at this tier
        self.own_seq = own_seq  # each visit's place in this tier's arrival order
        self.tier = tier
        self.class_index = class_index
        self.program = program
        self.registers = registers
        self.uniforms = uniforms
        self.publish = publish
        self.parent = parent
        self.parent_reg = parent_reg
        self.parent_positions = parent_positions
        self.round = round_index
        self.pending = np.zeros(registers.shape[1], dtype=np.int32)

    def subset(self, rows: np.ndarray) -> _Task:
        return _Task(
            self.tier,
            self.class_index,
            self.program,
            self.registers[:, rows],
            self.uniforms[rows],
            self.publish[rows],
            self.parent,
            self.parent_reg,
            self.parent_positions[rows],
            self.ancestors[:, :, rows],
            self.own_start[rows],
            self.own_seq[rows],
            self.round + 1,
            None if self.arrived is None else self.arrived[rows],
            self.back,
        )

    def complete(
        self,
        reg: int,
        positions: np.ndarray,
        done: np.ndarray,
        chain: np.ndarray,
        class_index: int,
    ) -> _Task | None:
        """Answers to calls arrived for `positions` at `done`, in events with the chains of
        ancestors `chain`: the visits now ready, as a task to run."""
        self.registers[reg, positions] = done
        self.ancestors[reg][:, positions] = chain
        self.pending[positions] -= 1
        ready = positions[self.pending[positions] == 0]
        if ready.size == 0:
            return None
        self.pending[ready] = -1  # advanced: no longer this task's
        return self.subset(ready)


def _subset_batch(batch: _Batch, mask: np.ndarray) -> _Batch:
    return _Batch(
        times=batch.times[mask],
        class_index=batch.class_index,
        algorithm=batch.algorithm,
        parent=batch.parent,
        reg=batch.reg,
        positions=batch.positions[mask],
        sent=batch.sent[:, mask],
        sent_seq=batch.sent_seq[mask],
        sent_round=batch.sent_round,
        source=batch.source,
        slot=batch.slot,
        back=batch.back,
    )


def _arrival_order(taken: list[_Batch], times: np.ndarray) -> np.ndarray | None:
    """The order in which a tier takes the visits of `taken` (concatenated times `times`):
    by arrival time, simultaneous ones in the order they left their senders; None when the
    concatenation is already in that order."""
    n = times.size
    if n < 2:
        return None
    if bool((times[1:] > times[:-1]).all()):
        return None
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    if bool((ordered[1:] > ordered[:-1]).all()):
        return order
    # Ties: the full key (see _Batch).
    sent = np.concatenate([b.sent for b in taken], axis=1)
    sent_seq = np.concatenate([b.sent_seq for b in taken])
    sent_round = np.concatenate([np.full(b.times.size, b.sent_round) for b in taken])
    source = np.concatenate([np.full(b.times.size, b.source, dtype=np.int64) for b in taken])
    slot = np.concatenate([np.full(b.times.size, b.slot, dtype=np.int64) for b in taken])
    return np.lexsort((slot, source, sent_seq, sent_round, *sent[::-1], times))


def _shifted(chain: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The chain of ancestors of an event scheduled at `times` by events with chains `chain`
    (no rows when the run carries no chains)."""
    if chain.shape[0] == 0:
        return chain
    return np.vstack((times[np.newaxis], chain[:-1]))


def _chain_after(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column: whether chain `a` runs after chain `b` or with it (at least as late in the
    lexicographic order of their times)."""
    after = np.zeros(a.shape[1], dtype=bool)
    decided = np.zeros(a.shape[1], dtype=bool)
    for level in range(a.shape[0]):
        after |= ~decided & (a[level] > b[level])
        decided |= a[level] != b[level]
    return after | ~decided


def _join(registers: np.ndarray, ancestors: np.ndarray, to: int, sources: tuple[int, ...]) -> None:
    """A parallel group's join: register `to` gets the latest of `sources`' times, with the
    chain of the answer that came last (of simultaneous answers, the one whose event ran last:
    the later chain; equal chains, the later branch)."""
    latest = registers[sources[0]].copy()
    chain = ancestors[sources[0]].copy()
    for source in sources[1:]:
        time, other = registers[source], ancestors[source]
        later = time > latest
        tied = time == latest
        if tied.any():
            later |= tied & _chain_after(other, chain)
        latest = np.where(later, time, latest)
        chain = np.where(later, other, chain)
    registers[to] = latest
    ancestors[to] = chain


def _work_end_chains(
    state: _TierState,
    arrivals: np.ndarray,
    start: np.ndarray,
    done: np.ndarray,
    server: np.ndarray,
    by_server: np.ndarray | None,
    sent: np.ndarray,
) -> np.ndarray:
    """The chains of the events that end the visits' own work (visits in the tier's arrival
    order; `sent` the chains of their arrival events). A visit's work-end timer is scheduled
    when it starts: in its arrival event if it found a worker free, else in the work-end event
    of the visit whose worker it took (its freer: `_freers`). `state` carries from chunk to
    chunk what the next chunk's waiting visits may need; `by_server` orders the visits by
    server (None: a single server)."""
    n = arrivals.size
    chains = np.empty((sent.shape[0], n))
    chains[0] = start
    chains[1:] = sent[:-1]
    waiters = np.flatnonzero(start > arrivals)
    order = np.arange(n) if by_server is None else by_server
    at = server[order]
    firsts = np.flatnonzero(np.concatenate(([True], at[1:] != at[:-1])))
    bounds = np.append(firsts, n)
    if state.tier.concurrency == 1:
        if waiters.size:
            freers = _previous_at_server(order, firsts, n, waiters)
            _chains_after_freers(chains, waiters, freers, state.chains[server[waiters]].T)
        lasts = order[bounds[1:] - 1]
        state.chains[server[lasts]] = chains[:, lasts].T
        return chains
    for group in range(firsts.size):
        rows = order[bounds[group] : bounds[group + 1]]
        _multi_worker_chains(state, int(server[rows[0]]), rows, arrivals, start, done, chains)
    return chains


def _previous_at_server(
    order: np.ndarray, firsts: np.ndarray, n: int, waiters: np.ndarray
) -> np.ndarray:
    """With one worker a waiting visit's freer is the visit before it at its server: for each
    of `waiters`, that visit (-1: the server's last visit of an earlier chunk)."""
    place = np.empty(n, dtype=np.int64)
    place[order] = np.arange(n)
    at = place[waiters]
    opens = np.zeros(n, dtype=bool)
    opens[firsts] = True
    return np.where(opens[at], -1, order[np.maximum(at - 1, 0)])


def _chains_after_freers(
    chains: np.ndarray, waiters: np.ndarray, freers: np.ndarray, outside: np.ndarray
) -> None:
    """Each waiter's work-end timer is scheduled in its freer's work-end event: its chain is
    that event's time (its start) followed by the freer's chain. `freers` are visits of the
    chunk, or negative for a freer of an earlier chunk, whose chain is then `outside`'s column
    (depth x waiters). Level by level, so that a freer that waited itself has its own chain
    before it is copied."""
    inside = freers >= 0
    source = np.maximum(freers, 0)
    for level in range(1, chains.shape[0]):
        chains[level, waiters] = np.where(inside, chains[level - 1, source], outside[level - 1])


def _multi_worker_chains(
    state: _TierState,
    index: int,
    rows: np.ndarray,
    arrivals: np.ndarray,
    start: np.ndarray,
    done: np.ndarray,
    chains: np.ndarray,
) -> None:
    """The chains of the waiting visits `rows` (one server with several workers, arrival
    order) after their freers, and what the server carries to the next chunk.

    A waiting visit takes a worker in the work-end event that freed it: a visit (of this chunk
    or carried) whose work ended when the waiter started. Simultaneous work ends run in the
    order they were scheduled, taken here by their start times, then their arrival order
    (exact for the scheduling time, approximate beyond it); the waiters that start at one
    instant take them in their FIFO order."""
    ends = state.worker_ends[index]
    count = ends.done.size
    ids = np.concatenate((np.arange(-count, 0), rows))  # negative: the carried work ends
    ended = np.concatenate((ends.done, done[rows]))
    began = np.concatenate((ends.start, start[rows]))
    waiting = rows[start[rows] > arrivals[rows]]
    when = start[waiting]
    fifo = bool((when[1:] >= when[:-1]).all())
    workers = state.tier.concurrency
    if fifo and ended.size > workers:
        # Only the work ends some waiter started at, and the latest ones (those the next
        # chunk's waiters may take), need sorting.
        needed = ended >= np.partition(ended, ended.size - workers)[-workers]
        if when.size:
            at = np.minimum(np.searchsorted(when, ended), when.size - 1)
            needed |= when[at] == ended
        ids, ended, began = ids[needed], ended[needed], began[needed]
    by_end = np.argsort(ended, kind="stable")  # ids ascend: ties in their order
    ordered_ends = ended[by_end]
    if bool((ordered_ends[1:] == ordered_ends[:-1]).any()):
        by_end = np.lexsort((ids, began, ended))
        ordered_ends = ended[by_end]
    if waiting.size:
        if fifo:
            rank = np.arange(when.size) - np.searchsorted(when, when, side="left")
            place = np.searchsorted(ordered_ends, when, side="left") + rank
            place = np.minimum(place, ordered_ends.size - 1)
            freers = ids[by_end[place]]
            found = ordered_ends[place] == when
        else:  # not FIFO starts (cannot happen): each takes the latest work end before it
            place = np.searchsorted(ordered_ends, when, side="right") - 1
            freers = ids[by_end[np.maximum(place, 0)]]
            found = place >= 0
        found &= freers >= -count  # a carried work end exists for each negative id
        freers = freers[found]
        outside = np.zeros((chains.shape[0], freers.size))
        carried = freers < 0
        outside[:, carried] = ends.chains[:, freers[carried] + count]
        _chains_after_freers(chains, waiting[found], freers, outside)
    keep = by_end[-workers:]
    kept_ids = ids[keep]
    from_chunk = kept_ids >= 0
    kept_chains = np.empty((chains.shape[0], keep.size))
    kept_chains[:, from_chunk] = chains[:, kept_ids[from_chunk]]
    kept_chains[:, ~from_chunk] = ends.chains[:, kept_ids[~from_chunk] + count]
    state.worker_ends[index] = _WorkEnds(ended[keep], began[keep], kept_chains)


@dataclass(frozen=True)
class _WorkEnds:
    """The latest work ends at one server with several workers (one per worker at most): when
    each ended, when it started, and its event's chain of ancestors (depth x workers)."""

    done: np.ndarray
    start: np.ndarray
    chains: np.ndarray

    @staticmethod
    def none(depth: int) -> _WorkEnds:
        return _WorkEnds(np.zeros(0), np.zeros(0), np.zeros((depth, 0)))


class _ClassOrder:
    """The event path's order of running the classes' own arrivals, as global ranks.

    The event path schedules a class's next arrival while it runs the current one, so of two
    arrivals of different classes at the same instant, the one whose predecessor ran first runs
    first; predecessors at the same instant go by their own predecessors, and so on back to the
    first arrivals, scheduled at the start in the classes' declaration order. That is the
    lexicographic order of each arrival's chain of times read backwards (its time, its
    predecessor's, ...) ended by the start. `rank` computes it for one chunk's arrivals, each
    class's latest arrival of the earlier chunks (all before the chunk) ending its chains.
    """

    def __init__(self, classes: int) -> None:
        # Rank of each class's latest arrival; before any, its place in the declaration order.
        self.latest = np.arange(classes, dtype=np.int64) - classes
        self.ranked = 0  # arrivals ranked so far: the next one's rank

    def rank(self, blocks: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each class's arrivals of the chunk (`blocks[k]`, in time order): their ranks and
        their predecessors' ranks. Every call continues the previous one."""
        sizes = [block.size for block in blocks]
        total = sum(sizes)
        own = self.ranked + self._order(blocks, sizes, total)
        self.ranked += total
        found, start = [], 0
        for k, size in enumerate(sizes):
            mine = own[start : start + size]
            found.append((mine, np.concatenate(([self.latest[k]], mine[:-1]))[:size]))
            if size:
                self.latest[k] = mine[-1]
            start += size
        return found

    def _order(self, blocks: list[np.ndarray], sizes: list[int], total: int) -> np.ndarray:
        """Each arrival's place (0 .. total - 1) in the order of running the chunk's arrivals
        (`blocks` concatenated)."""
        if sum(1 for size in sizes if size) <= 1:
            return np.arange(total, dtype=np.int64)  # one class: its own order
        times = np.concatenate(blocks)
        order = np.argsort(times, kind="stable")  # merges the classes' sorted runs
        ordered = times[order]
        tied = ordered[1:] == ordered[:-1]
        places = np.empty(total, dtype=np.int64)
        if not tied.any():
            places[order] = np.arange(total)
            return places
        # Chains: each arrival's predecessor; a class's first one points to its chain's end, one
        # per class after the arrivals, ranked by the latest arrival of the earlier chunks.
        ends = len(blocks)
        starts = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        present = np.array(sizes) > 0
        previous = np.arange(-1, total + ends - 1, dtype=np.int64)
        previous[total:] = np.arange(total, total + ends)
        previous[starts[present]] = total + np.flatnonzero(present)
        chain_ends = total + np.argsort(self.latest, kind="stable")  # in their rank order
        rank = np.empty(total + ends, dtype=np.int64)
        rank[chain_ends] = np.arange(ends)
        # The first rank of a group of simultaneous arrivals: the place of its first one.
        first = np.concatenate(([0], np.flatnonzero(~tied) + 1))
        rank[order] = ends + np.repeat(first, np.diff(np.append(first, total)))
        by_rank = np.concatenate((chain_ends, order))
        return _chain_ranks(rank, previous, by_rank)[:total] - ends


#: More doublings than any chain needs (2^64 arrivals): a guard against an endless loop.
_MOST_DOUBLINGS = 64


def _chain_ranks(rank: np.ndarray, previous: np.ndarray, by_rank: np.ndarray) -> np.ndarray:
    """Ranks of the chains (rank[i], rank[previous[i]], rank[previous[previous[i]]], ...)
    compared lexicographically, all distinct: 0 .. n - 1. `rank` is each item's place in a
    sort by its first key, items with equal keys at the place of the first of them, and
    `by_rank` the items in that order; chain ends point to themselves and have distinct ranks,
    below every other item's. Prefix doubling: each pass compares chains twice as long,
    re-sorting only the groups still tied and keeping the others' ranks, until no group is
    tied (at the latest when every chain has reached its end)."""
    jump, count = previous, rank.size
    for _ in range(_MOST_DOUBLINGS):
        sizes = np.bincount(rank, minlength=count)
        still = sizes[rank[by_rank]] > 1
        if not still.any():
            return rank
        tied = by_rank[still]  # in rank order: the sort below mostly merges
        groups = rank[tied]
        order = np.argsort(groups * count + rank[jump[tied]], kind="stable")
        items, groups, keys = tied[order], groups[order], rank[jump[tied]][order]
        opens = np.concatenate(([True], groups[1:] != groups[:-1]))
        split = opens | np.concatenate(([True], keys[1:] != keys[:-1]))
        # A group's items sit at the places groups[0], groups[0] + 1 ...: each new group
        # starts at its own first item's place.
        at = np.arange(items.size)
        place = groups + at - np.maximum.accumulate(np.where(opens, at, 0))
        rank = rank.copy()
        rank[items] = np.maximum.accumulate(np.where(split, place, 0))
        by_rank = by_rank.copy()
        by_rank[still] = items
        jump = jump[jump]
    raise SimulationError("the vectorised path could not order simultaneous arrivals")


# ---------------------------------------------------------------------------------------------
# Per-tier state and measurement
# ---------------------------------------------------------------------------------------------


@dataclass
class _TierState:
    tier: Tier
    servers: int
    groups: list[np.ndarray]  # server indices of each balancing group (primaries, replicas)
    single: list[SingleWorker]  # closed-form state of each server (concurrency 1)
    free_multi: list[np.ndarray]  # free times of each server's workers (concurrency > 1)
    round_robin: list[int]  # next server of each group
    inbox: list[_Batch] = field(default_factory=list)
    service_streams: list[np.random.Generator] = field(default_factory=list)
    routing: np.random.Generator | None = None
    balancing: np.random.Generator | None = None
    publish_streams: list[list[np.random.Generator]] = field(default_factory=list)
    route_columns: int = 0
    read_column: int = -1
    # queue-length bookkeeping across chunks
    arrivals_seen: int = 0  # visits taken so far: the next one's place in the arrival order
    pending_starts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    processed_until: float = -math.inf
    # Chains of the last visit's work-end event at each server with one worker, and the latest
    # work ends at each server with several (`_work_end_chains`).
    chains: np.ndarray = field(default_factory=lambda: np.zeros((1, _DEPTH)))
    worker_ends: list[_WorkEnds] = field(default_factory=list)
    # A database with replicas: each group's own queue bookkeeping, measured apart
    # (`TierRun.groups`, primaries then replicas).
    group_states: list[_TierState] = field(default_factory=list)


class _Run:
    """One replication in progress."""

    def __init__(
        self,
        model: Model,
        replication: int,
        chunk_requests: int,
        tie_chains: bool | None = None,
    ) -> None:
        self.model = model
        self.replication = replication
        self.chunk_requests = chunk_requests
        self.window_start = model.simulation.warmup
        self.window_end = model.horizon
        self.programs = _compile_programs(model)
        order = _processing_order(model, self.programs)
        if order is None:
            raise SimulationError("the vectorised path cannot order this model's tiers")
        self.order = order
        # Rows of the chains of ancestors carried (see `_Batch`): none where no two visits
        # from different events can meet at one instant (`capsim.engine.ties`).
        if tie_chains is None:
            tie_chains = bool(ties.tie_reason(model))
        self.depth = _DEPTH if tie_chains else 0
        self.timings = dict.fromkeys(("draw", "recurse", "route", "summarise"), 0.0)
        self.queue: deque[_Task] = deque()
        self.classes = [ClassRun(latency=Histogram(model.share_over)) for _ in model.classes]
        self.tiers = [TierRun(workers=t.workers) for t in model.tiers]
        self.trace_times = np.linspace(
            self.window_start, self.window_end, TRACE_POINTS, endpoint=False
        )
        for run in self.tiers:
            run.trace_times = self.trace_times.copy()
            run.queue_trace = np.zeros(TRACE_POINTS)
        for tier, run in zip(model.tiers, self.tiers, strict=True):
            if tier.is_async:
                run.age = Histogram()
        self.states = [self._tier_state(t) for t in model.tiers]
        for state, run in zip(self.states, self.tiers, strict=True):
            if state.group_states:
                run.groups = {
                    name: TierRun(
                        workers=group.servers * state.tier.concurrency,
                        queue_trace=np.zeros(TRACE_POINTS),
                        trace_times=self.trace_times.copy(),
                    )
                    for name, group in zip(GROUP_NAMES, state.group_states, strict=True)
                }
        self.requests = 0
        # Work left at the window's end: (histogram, ages then, a queue's series or None).
        self.unfinished: list[tuple[Histogram, np.ndarray, TierSeries | None]] = []
        # The latest arrivals of each class, latest first (its chain of ancestors: the
        # first arrival is scheduled at the start, by nothing before it).
        self.last_arrivals = [
            np.array([0.0] + [-math.inf] * (self.depth - 1))[: self.depth] for _ in model.classes
        ]
        self.class_order = _ClassOrder(len(model.classes))
        self.series = new_series(model)
        if self.series is not None:
            for tier, series in zip(model.tiers, self.series.tiers, strict=True):
                series.instance_time[:] = tier.servers * self.series.spans

    # ---- setup --------------------------------------------------------------------------
    def _tier_state(self, tier: Tier) -> _TierState:
        seed, rep, index, name = self.model.seed, self.replication, tier.index, tier.name
        servers = tier.servers
        if tier.kind == "database" and tier.replicas > 0:
            groups = [np.arange(tier.instances), np.arange(tier.instances, servers)]
        else:
            groups = [np.arange(servers)]
        state = _TierState(
            tier=tier,
            servers=servers,
            groups=groups,
            single=[SingleWorker.free_from(-math.inf)] * servers,
            free_multi=[np.full(tier.concurrency, -math.inf) for _ in range(servers)],
            round_robin=[0] * len(groups),
            chains=np.zeros((servers, self.depth)),
            worker_ends=[_WorkEnds.none(self.depth)] * servers,
        )
        if len(groups) > 1:
            state.group_states = [
                _TierState(
                    tier=tier, servers=m.size, groups=[m], single=[], free_multi=[], round_robin=[]
                )
                for m in groups
            ]
        state.service_streams = [
            streams.tier_class_stream(seed, rep, name, streams.SERVICE, traffic.name)
            for traffic in self.model.classes
        ]
        programs = self.programs[index]
        state.route_columns = max((p.columns for p in programs), default=0)
        if tier.kind == "database":
            state.read_column = state.route_columns
            state.route_columns += 1
        if state.route_columns:
            state.routing = streams.tier_stream(seed, rep, name, streams.ROUTING)
        if self._may_balance_randomly(tier):
            state.balancing = streams.tier_stream(seed, rep, name, streams.BALANCING)
        state.publish_streams = [
            self._publish_streams(name, traffic.name, program)
            for traffic, program in zip(self.model.classes, programs, strict=True)
        ]
        return state

    def _publish_streams(
        self, tier: str, name: str, program: _Program
    ) -> list[np.random.Generator]:
        """One stream per publish column of class `name`'s program at `tier`, keyed by the
        callee queue's name and how many publishes to it come before (not by the column)."""
        seen: dict[int, int] = {}
        children = []
        for callee in program.publishes:
            occurrence = seen.get(callee, 0)
            seen[callee] = occurrence + 1
            callee_name = self.model.tiers[callee].name
            children.append(
                streams.publish_stream(
                    self.model.seed, self.replication, tier, name, callee_name, occurrence
                )
            )
        return children

    def _may_balance_randomly(self, tier: Tier) -> bool:
        if tier.servers <= 1:
            return False
        if tier.balancing == "random":
            return True
        return any(
            op.tier == tier.index and op.algorithm == _RANDOM
            for programs in self.programs
            for program in programs
            for rnd in program.rounds
            for op in rnd.calls
        )

    # ---- the run ------------------------------------------------------------------------
    def run(self, progress: ProgressCallback | None) -> None:
        horizon = self.window_end
        # Two orders of the classes. Ties between simultaneous arrivals are broken as on the
        # event path, which starts the classes in their declaration order (`_ClassOrder` ranks
        # the blocks in that order). The arrivals enter by class name, not by their place in
        # `traffic:`: that order decides the order of sums (a figure's last bits), which must
        # not move when the scenario lists its classes in another order; the tie order is a
        # total key of each visit (see `_Batch`), so the order of entering cannot change it.
        by_name = sorted(range(len(self.model.classes)), key=lambda k: self.model.classes[k].name)
        peak_rate = sum(_peak_rate(self.model.classes[k]) for k in by_name)
        span = self.chunk_requests / peak_rate if peak_rate > 0 else horizon
        chunks = max(1, math.ceil(horizon / span))
        sources = [_arrival_source(self.model, c, self.replication) for c in self.model.classes]
        for chunk in range(chunks):
            low = chunk * span
            last = chunk == chunks - 1
            high = horizon if last else (chunk + 1) * span
            began = time.perf_counter()
            blocks = [source.take(low, high) for source in sources]
            ranks = self.class_order.rank(blocks)
            for k in by_name:
                self._enter(sources[k].traffic, blocks[k], *ranks[k])
            self.timings["draw"] += time.perf_counter() - began
            bound = math.inf if last else high
            for tier_index in self.order:
                self._process(tier_index, bound)
            if progress:
                progress((chunk + 1) / chunks, f"chunk {chunk + 1}/{chunks}")
        for run in self.tiers:
            # The queue at the window's opening counts too (the first trace point).
            for counted in (run, *(run.groups or {}).values()):
                counted.queue_max = max(counted.queue_max, int(counted.queue_trace.max(initial=0)))
        leftover = sum(len(s.inbox) for s in self.states)
        if leftover:
            raise SimulationError("the vectorised path left visits unprocessed")
        self.record_censored()

    def _enter(
        self, traffic: TrafficClass, arrivals: np.ndarray, ranks: np.ndarray, before: np.ndarray
    ) -> None:
        """Class `traffic`'s arrivals of a chunk, with their ranks in the event path's order of
        running the classes' arrivals and their predecessors' (see `_ClassOrder`)."""
        count = arrivals.size
        self.requests += count
        if count == 0:
            return
        in_window = (arrivals >= self.window_start) & (arrivals < self.window_end)
        self.classes[traffic.index].arrivals += int(np.count_nonzero(in_window))
        if self.series is not None:
            counts = self.series.classes[traffic.index].arrivals
            counts += np.bincount(
                bucket_of(arrivals, self.series.bucket, counts.size), minlength=counts.size
            )
        root = _Root(self, arrivals)
        # As on the event path, each arrival is scheduled when the class's previous one runs
        # (the first at the start): its chain of ancestors is the class's earlier arrivals.
        # Clients in another region send it over the network when it runs: the arrival itself
        # heads the chain of the event that brings it.
        half_rtt = traffic.network_delay / 2.0  # clients served from another region
        sent = self._arrival_chains(traffic.index, arrivals, bool(half_rtt))
        self.states[traffic.entry].inbox.append(
            _Batch(
                times=arrivals + half_rtt if half_rtt else arrivals,
                class_index=traffic.index,
                algorithm=-1,
                parent=root,
                reg=0,
                positions=np.arange(count),
                sent=sent,
                sent_seq=ranks if half_rtt else before,
                sent_round=0,
                source=traffic.index,
                slot=0,
                back=half_rtt,
            )
        )

    def _arrival_chains(self, class_index: int, arrivals: np.ndarray, sent_now: bool) -> np.ndarray:
        """The chains of ancestors of the events that bring a class's `arrivals` to its entry:
        each is scheduled when the class's previous arrival runs, or, when the clients send it
        over the network (`sent_now`), when it runs itself."""
        depth, count = self.depth, arrivals.size
        if depth == 0:
            return np.empty((0, count))
        earlier = self.last_arrivals[class_index]
        times = np.concatenate((earlier[::-1], arrivals))
        self.last_arrivals[class_index] = times[-depth:][::-1].copy()
        newest = depth - (0 if sent_now else 1)  # the first ancestor of the first arrival
        return np.stack([times[newest - level : newest - level + count] for level in range(depth)])

    def record_latency(self, class_index: int, arrived: np.ndarray, done: np.ndarray) -> None:
        began = time.perf_counter()
        keep = (arrived >= self.window_start) & (done < self.window_end)
        run = self.classes[class_index]
        latency = (done - arrived)[keep]
        run.completed += int(latency.size)
        run.latency.add(latency)
        # Unanswered at the window's end: counted at their age then, lower bounds, once every
        # completion is in (`record_censored`).
        late = (arrived >= self.window_start) & (arrived < self.window_end) & ~keep
        if late.any():
            ages = self.window_end - arrived[late]
            self.unfinished.append((run.latency, ages, None))
            run.unfinished += int(ages.size)
            run.oldest_unfinished = max(run.oldest_unfinished, float(ages.max()))
        if self.series is not None:
            finished = done < self.window_end
            self.series.classes[class_index].add_completions(
                done[finished], (done - arrived)[finished], self.series.bucket
            )
        self.timings["summarise"] += time.perf_counter() - began

    # ---- one tier, one chunk ------------------------------------------------------------
    def _process(self, tier_index: int, bound: float) -> None:
        state = self.states[tier_index]
        tier = state.tier
        began = time.perf_counter()
        taken: list[_Batch] = []
        kept: list[_Batch] = []
        for batch in state.inbox:
            if batch.times.size == 0:
                continue
            if batch.times[-1] < bound:
                taken.append(batch)
                continue
            early = batch.times < bound
            if early.any():
                taken.append(_subset_batch(batch, early))
            if not early.all():
                kept.append(_subset_batch(batch, ~early))
        state.inbox = kept
        previous = state.processed_until
        state.processed_until = bound
        if not taken:
            self.timings["route"] += time.perf_counter() - began
            return
        if len(taken) == 1:
            times = taken[0].times
            sent = taken[0].sent
            classes = np.full(times.size, taken[0].class_index, dtype=np.int32)
            algorithms = np.full(times.size, taken[0].algorithm, dtype=np.int8)
        else:
            times = np.concatenate([b.times for b in taken])
            sent = np.concatenate([b.sent for b in taken], axis=1)
            classes = np.concatenate(
                [np.full(b.times.size, b.class_index, dtype=np.int32) for b in taken]
            )
            algorithms = np.concatenate(
                [np.full(b.times.size, b.algorithm, dtype=np.int8) for b in taken]
            )
        n = times.size
        order = _arrival_order(taken, times)
        arrivals = times if order is None else times[order]
        first_seq = state.arrivals_seen
        state.arrivals_seen += n
        sorted_classes = classes if order is None else classes[order]
        sorted_algorithms = algorithms if order is None else algorithms[order]
        self.timings["route"] += time.perf_counter() - began

        # Draws, in the tier's arrival order.
        began = time.perf_counter()
        service = np.empty(n)
        present = np.unique(sorted_classes) if len(self.model.classes) > 1 else np.zeros(1, int)
        for class_index in present.tolist():
            dist = tier.work[class_index].service_time
            if present.size == 1:
                service[:] = dist.sample(state.service_streams[class_index], n)
            else:
                mask = sorted_classes == class_index
                service[mask] = dist.sample(
                    state.service_streams[class_index], int(np.count_nonzero(mask))
                )
        uniforms = (
            state.routing.random((n, state.route_columns))
            if state.routing is not None
            else np.zeros((n, 0))
        )
        balance = state.balancing.random(n) if state.balancing is not None else None
        publish_columns = max((len(p.publishes) for p in self.programs[tier_index]), default=0)
        publish = np.zeros((n, publish_columns))
        for class_index in present.tolist():
            children = state.publish_streams[class_index]
            if not children:
                continue
            mask = sorted_classes == class_index
            count = int(np.count_nonzero(mask))
            program = self.programs[tier_index][class_index]
            for column, (child, callee) in enumerate(zip(children, program.publishes, strict=True)):
                dist = self.model.tiers[callee].publish_time
                if dist is not None:
                    publish[mask, column] = dist.sample(child, count)
        self.timings["draw"] += time.perf_counter() - began

        # Instances and FIFO recursion.
        began = time.perf_counter()
        server = self._assign_servers(state, uniforms, balance, sorted_algorithms, sorted_classes)
        self.timings["route"] += time.perf_counter() - began
        began = time.perf_counter()
        by_server = None if state.servers == 1 else np.argsort(server, kind="stable")
        start, done = self._recurse(state, arrivals, service, server, by_server)
        chains = (
            _work_end_chains(
                state,
                arrivals,
                start,
                done,
                server,
                by_server,
                sent if order is None else sent[:, order],
            )
            if self.depth
            else np.empty((0, n))
        )
        self.timings["recurse"] += time.perf_counter() - began

        began = time.perf_counter()
        self._measure(state, self.tiers[tier_index], arrivals, start, done, previous, bound)
        if state.group_states:
            self._measure_groups(
                state, self.tiers[tier_index], arrivals, start, done, server, previous, bound
            )
        self.timings["summarise"] += time.perf_counter() - began

        # Hand each batch its visits' own-work end, and run their programs.
        began = time.perf_counter()
        seq = np.arange(first_seq, first_seq + n)
        if order is not None:
            unsorted_done = np.empty(n)
            unsorted_done[order] = done
            unsorted_start = np.empty(n)
            unsorted_start[order] = start
            unsorted_seq = np.empty(n, dtype=np.int64)
            unsorted_seq[order] = seq
            unsorted_uniforms = np.empty_like(uniforms)
            unsorted_uniforms[order] = uniforms
            unsorted_publish = np.empty_like(publish)
            unsorted_publish[order] = publish
            unsorted_chains = np.empty_like(chains)
            unsorted_chains[:, order] = chains
        else:
            unsorted_done, unsorted_uniforms, unsorted_publish = done, uniforms, publish
            unsorted_start, unsorted_seq, unsorted_chains = start, seq, chains
        offset = 0
        for batch in taken:
            size = batch.times.size
            part = slice(offset, offset + size)
            offset += size
            program = self.programs[tier_index][batch.class_index]
            registers = np.empty((program.registers, size))
            registers[0] = unsorted_done[part]
            ancestors = np.empty((program.registers, self.depth, size))
            ancestors[0] = unsorted_chains[:, part]
            self.queue.append(
                _Task(
                    tier_index,
                    batch.class_index,
                    program,
                    registers,
                    unsorted_uniforms[part],
                    unsorted_publish[part],
                    batch.parent,
                    batch.reg,
                    batch.positions,
                    ancestors,
                    unsorted_start[part],
                    unsorted_seq[part],
                    0,
                    batch.times if tier.is_async else None,
                    batch.back,
                )
            )
        summarised = self.timings["summarise"]
        self._drain()
        # Latencies recorded while draining count as summarising, not routing.
        self.timings["route"] += (
            time.perf_counter() - began - (self.timings["summarise"] - summarised)
        )

    def _assign_servers(
        self,
        state: _TierState,
        uniforms: np.ndarray,
        balance: np.ndarray | None,
        algorithms: np.ndarray,
        classes: np.ndarray,
    ) -> np.ndarray:
        tier = state.tier
        n = classes.size
        if state.servers == 1:
            return np.zeros(n, dtype=np.int64)
        own = _ALGORITHM_CODES[tier.balancing]
        codes = np.where(algorithms < 0, own, algorithms)
        if len(state.groups) == 1:
            group_of = np.zeros(n, dtype=np.int64)
        else:
            reads = np.array([tier.work[k].read_ratio for k in range(len(self.model.classes))])
            # Reads go to the replicas (group 1), writes to the primaries (group 0).
            is_read = uniforms[:, state.read_column] < reads[classes]
            group_of = is_read.astype(np.int64)
        server = np.empty(n, dtype=np.int64)
        for group_index, members in enumerate(state.groups):
            in_group = group_of == group_index
            size = members.size
            for code in (_ROUND_ROBIN, _RANDOM):
                mask = in_group & (codes == code)
                count = int(np.count_nonzero(mask))
                if count == 0:
                    continue
                if code == _ROUND_ROBIN:
                    turn = (state.round_robin[group_index] + np.arange(count)) % size
                    state.round_robin[group_index] = int(
                        (state.round_robin[group_index] + count) % size
                    )
                else:
                    assert balance is not None
                    turn = np.minimum((balance[mask] * size).astype(np.int64), size - 1)
                server[mask] = members[turn]
        return server

    def _recurse(
        self,
        state: _TierState,
        arrivals: np.ndarray,
        service: np.ndarray,
        server: np.ndarray,
        by_server: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start and done times of the visits at their servers (`by_server`: the visits by
        server, each server's in arrival order; None for a single server)."""
        concurrency = state.tier.concurrency
        if by_server is None:
            return self._recurse_server(state, 0, arrivals, service, concurrency)
        start = np.empty_like(arrivals)
        done = np.empty_like(arrivals)
        bounds = np.searchsorted(server[by_server], np.arange(state.servers + 1))
        for index in range(state.servers):
            rows = by_server[bounds[index] : bounds[index + 1]]
            if rows.size:
                start[rows], done[rows] = self._recurse_server(
                    state, index, arrivals[rows], service[rows], concurrency
                )
        return start, done

    @staticmethod
    def _recurse_server(
        state: _TierState, index: int, arrivals: np.ndarray, service: np.ndarray, workers: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if workers == 1:
            start, done, state.single[index] = fifo_single(arrivals, service, state.single[index])
            return start, done
        start, free_times = fifo_multi(arrivals, service, state.free_multi[index])
        state.free_multi[index] = free_times
        return start, start + service

    def _measure_groups(
        self,
        state: _TierState,
        run: TierRun,
        arrivals: np.ndarray,
        start: np.ndarray,
        done: np.ndarray,
        server: np.ndarray,
        previous: float,
        bound: float,
    ) -> None:
        """A database's primaries and replicas, each measured as a tier of its own servers."""
        assert run.groups is not None
        is_replica = server >= state.tier.instances
        for name, group, rows in zip(
            GROUP_NAMES, state.group_states, (~is_replica, is_replica), strict=True
        ):
            if rows.any():
                self._measure(
                    group,
                    run.groups[name],
                    arrivals[rows],
                    start[rows],
                    done[rows],
                    previous,
                    bound,
                    in_series=False,
                )

    def _measure(
        self,
        state: _TierState,
        run: TierRun,
        arrivals: np.ndarray,
        start: np.ndarray,
        done: np.ndarray,
        previous: float,
        bound: float,
        *,
        in_series: bool = True,
    ) -> None:
        low, high = self.window_start, self.window_end
        # Arrivals are sorted: count the window's by bisection.
        run.arrivals += int(np.searchsorted(arrivals, high) - np.searchsorted(arrivals, low))
        waited = start > arrivals
        waiting_arrivals = arrivals[waited]
        waiting_starts = start[waited]
        if arrivals[0] >= low and float(done.max()) < high:
            # Every visit lies inside the window (start >= arrival >= low, start <= done < high):
            # the clipping and window masks below would change nothing.
            run.completed += int(done.size)
            busy = float(np.sum(done - start))
            run.queue_time += float(np.sum(waiting_starts - waiting_arrivals))
            run.wait.add(start - arrivals)
        else:
            run.completed += int(np.count_nonzero((done >= low) & (done < high)))
            clipped_start = np.clip(start, low, high)
            busy = float(np.sum(np.clip(done, low, high) - clipped_start))
            run.queue_time += float(
                np.sum(clipped_start[waited] - np.clip(waiting_arrivals, low, high))
            )
            started = (start >= low) & (start < high)
            run.wait.add((start - arrivals)[started])
            self._censor_waits(state, run, arrivals[(arrivals < high) & (start >= high)], in_series)
        run.busy_time += busy
        run.occupied_time += busy
        if in_series and self.series is not None:
            # Every tier here is non-blocking or call-free: held = busy, present = arrival..done.
            edges = self.series.edges
            series = self.series.tiers[state.tier.index]
            busy_mass = interval_mass(start, done, edges)
            series.busy_time += busy_mass
            series.occupied_time += busy_mass
            series.queue_time += interval_mass(waiting_arrivals, waiting_starts, edges)
            series.present_time += interval_mass(arrivals, done, edges)
            # Counts inside the window, as the totals (nothing is refused on this path).
            series.arrivals += self._per_bucket(arrivals)
            series.completed += self._per_bucket(done)
        # Queue length: waiting requests of earlier chunks still waiting, plus this chunk's.
        pending = state.pending_starts
        if waiting_arrivals.size or pending.size:
            # One server serves FIFO, so its starts are already in order.
            ordered_starts = waiting_starts if state.servers == 1 else np.sort(waiting_starts)
            # Just after each waiting arrival (the queue's maxima are there).
            at = waiting_arrivals
            length = (
                pending.size
                - np.searchsorted(pending, at, side="right")
                + np.arange(1, at.size + 1)
                - np.searchsorted(ordered_starts, at, side="right")
            )
            first, end = np.searchsorted(at, (low, high))
            if end > first:
                run.queue_max = max(run.queue_max, int(length[first:end].max()))
            points = (self.trace_times >= previous) & (self.trace_times < bound)
            if points.any():
                when = self.trace_times[points]
                run.queue_trace[points] = (
                    pending.size
                    - np.searchsorted(pending, when, side="right")
                    + np.searchsorted(waiting_arrivals, when, side="right")
                    - np.searchsorted(ordered_starts, when, side="right")
                )
            if bound == math.inf:
                state.pending_starts = pending[:0]
            else:
                # Only the few starts after the chunk's end are carried: sort just those.
                later = np.concatenate(
                    (pending[pending > bound], ordered_starts[ordered_starts > bound])
                )
                later.sort()
                state.pending_starts = later

    def _censor_waits(
        self, state: _TierState, run: TierRun, arrivals: np.ndarray, in_series: bool
    ) -> None:
        """Visits that arrived at `arrivals` and still wait for a worker at the window's end:
        their waits so far go in `wait` (and a queue's message ages so far in `age`, in the
        last bucket of the series), lower bounds, as the event path counts them."""
        if arrivals.size == 0:
            return
        waited = self.window_end - arrivals
        self.unfinished.append((run.wait, waited, None))
        run.backlog_at_end += int(waited.size)
        run.oldest_waiting = max(run.oldest_waiting, float(waited.max()))
        if run.age is not None:
            series = self.series.tiers[state.tier.index] if in_series and self.series else None
            self.unfinished.append((run.age, waited, series))

    def record_censored(self) -> None:
        """The work left at the window's end (`unfinished`), once every completion is in: each
        at its age then, or the shortest completed figure when that is longer
        (`histogram.censored`), as the event path counts it."""
        for histogram, ages, series in self.unfinished:
            values = censored(ages, histogram)
            histogram.add(values)
            if series is not None:
                assert self.series is not None
                end = np.full(values.size, self.window_end)
                series.add_ages(end, values, self.series.bucket)
        self.unfinished.clear()

    # ---- programs -----------------------------------------------------------------------
    def _drain(self) -> None:
        queue = self.queue
        while queue:
            self._advance(queue.popleft())

    def _advance(self, task: _Task) -> None:
        """Run `task`'s rounds until its visits wait for answers or finish."""
        program = task.program
        last = len(program.rounds) - 1
        while True:
            rnd = program.rounds[task.round]
            registers, ancestors = task.registers, task.ancestors
            for to, sources in rnd.moves:
                if len(sources) == 1:
                    registers[to] = registers[sources[0]]
                    ancestors[to] = ancestors[sources[0]]
                else:
                    _join(registers, ancestors, to, sources)
            if task.round == last:
                if task.arrived is not None:
                    self._record_age(task.tier, task.arrived, task.own_start, registers[0])
                if task.parent is not None:
                    done, chain = registers[0], ancestors[0]
                    if task.back:  # the answer crosses the network: an event of its own
                        done, chain = done + task.back, _shifted(chain, done)
                    follow = task.parent.complete(
                        task.parent_reg, task.parent_positions, done, chain, task.class_index
                    )
                    if follow is not None:
                        self.queue.append(follow)
                return
            waiting = task.pending
            waiting[:] = 0
            for op in rnd.calls:
                if op.column >= 0:
                    u = task.uniforms[:, op.column]
                    rows = np.flatnonzero((u >= op.low) & (u < op.high))
                else:
                    rows = np.arange(registers.shape[1])
                if rows.size == 0:
                    continue
                sent_at = registers[op.reg, rows]
                chain = ancestors[op.reg][:, rows]
                if not op.waited:
                    self._publish(task, op, rows, sent_at, chain)
                    continue
                times = sent_at
                if op.half_rtt:  # reached in an event of the network's
                    times, chain = sent_at + op.half_rtt, _shifted(chain, sent_at)
                waiting[rows] += 1
                self._push(task, op, times, chain, task, rows)
            if not waiting.any():
                task.round += 1
                continue
            idle = np.flatnonzero(waiting == 0)
            if idle.size:
                waiting[idle] = -1
                self.queue.append(task.subset(idle))
            return

    def _publish(
        self, task: _Task, op: _CallOp, rows: np.ndarray, sent_at: np.ndarray, chain: np.ndarray
    ) -> None:
        """Rows `rows` of `task` publish to a queue at `sent_at`, in events with the chains
        `chain`; their register moves on to when the publisher has its answer.

        As on the event path: a publish with a publish time enqueues in a timer's event
        scheduled when it was sent; a free one enqueues in the sending event itself and
        answers through a timer of 0 s. Across regions, the message first crosses the network
        (a timer) and the answer comes back by another."""
        cost = task.publish[rows, op.publish]
        half = op.half_rtt
        if half:
            reached = sent_at + half
            via_network = _shifted(chain, sent_at)
            enqueued = reached + cost
            sent = np.where(cost > 0.0, _shifted(via_network, reached), via_network)
            task.registers[op.reg, rows] = enqueued + half
            task.ancestors[op.reg][:, rows] = _shifted(_shifted(via_network, reached), enqueued)
        else:
            enqueued = sent_at + cost
            sent = np.where(cost > 0.0, _shifted(chain, sent_at), chain)
            task.registers[op.reg, rows] = enqueued
            task.ancestors[op.reg][:, rows] = _shifted(chain, sent_at)
        self._push(task, op, enqueued, sent, None, rows)

    def _record_age(
        self, tier_index: int, arrived: np.ndarray, start: np.ndarray, done: np.ndarray
    ) -> None:
        """A queue tier's message age, enqueue to done (its work and calls), if done in the
        window. A message a consumer took before the window's end and had not done by then
        (`in_service_at_end`) is counted at its age then, a lower bound, as the event path
        counts it (those still waiting for a consumer are `_censor_waits`')."""
        run = self.tiers[tier_index]
        age = run.age
        assert age is not None
        high = self.window_end
        keep = (done >= self.window_start) & (done < high)
        age.add((done - arrived)[keep])
        series = self.series.tiers[tier_index] if self.series is not None else None
        if series is not None:
            assert self.series is not None
            series.add_ages(done[keep], (done - arrived)[keep], self.series.bucket)
        held = (start < high) & (done >= high)
        if held.any():
            run.in_service_at_end += int(np.count_nonzero(held))
            self.unfinished.append((age, high - arrived[held], series))

    def _per_bucket(self, times: np.ndarray) -> np.ndarray:
        """How many of `times` fall in each bucket, counting only those inside the window.

        By the edges themselves, as the event path's tiers count (a snapshot at each edge),
        not `bucket_of`, which counts a time a hair below an edge in the next bucket."""
        assert self.series is not None
        edges = self.series.edges
        count = edges.size - 1
        inside = times[(times >= self.window_start) & (times < self.window_end)]
        rows = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, count - 1)
        return np.bincount(rows, minlength=count)

    def _push(
        self,
        sender: _Task,
        op: _CallOp,
        times: np.ndarray,
        sent: np.ndarray,
        parent: _Task | None,
        rows: np.ndarray,
    ) -> None:
        """Visits of `sender`'s rows `rows` call `op.tier` at `times`, in events with the
        chains `sent` (answers go to `parent`)."""
        state = self.states[op.tier]
        if times.size and float(times.min()) < state.processed_until:
            raise SimulationError(
                f"the vectorised path received a visit to tier '{state.tier.name}' after "
                "processing it; this model needs the event path"
            )
        if times.size > 1 and not bool((times[1:] >= times[:-1]).all()):
            order = np.argsort(times, kind="stable")
            times, rows, sent = times[order], rows[order], sent[:, order]
        state.inbox.append(
            _Batch(
                times=times,
                class_index=sender.class_index,
                algorithm=op.algorithm,
                parent=parent,
                reg=op.reg,
                positions=rows,
                sent=sent,
                sent_seq=sender.own_seq[rows],
                sent_round=sender.round,
                source=len(self.model.classes) + sender.tier,
                slot=op.slot,
                back=op.half_rtt,
            )
        )


# ---------------------------------------------------------------------------------------------
# Arrivals
# ---------------------------------------------------------------------------------------------


def _peak_rate(traffic: TrafficClass) -> float:
    rates = [float(traffic.rate or 0.0)] + [p.rate for p in traffic.profile]
    if isinstance(traffic.process, MmppArrivals):
        rates += traffic.process.rates  # a burst must not overfill a chunk
    return max(rates)


class _ArrivalSource:
    """Arrival times of one open class, handed out chunk by chunk.

    Arrivals are points of a unit-rate process (exponential gaps, or a gap of exactly 1 for
    constant arrivals) mapped through the inverse of the cumulative rate, which gives a
    non-homogeneous Poisson process for a profile and plain Poisson otherwise.
    """

    def __init__(self, model: Model, traffic: TrafficClass, replication: int) -> None:
        self.traffic = traffic
        self.rng = streams.class_stream(model.seed, replication, traffic.name, streams.ARRIVALS)
        self.constant = traffic.arrivals == "constant"
        self.level = 0.0  # cumulative intensity of the last point drawn
        self.count = 0
        self.buffer = np.zeros(0)
        segments = traffic.rate_segments()
        self.seg_start = np.array([s[0] for s in segments])
        self.seg_rate = np.array([s[2] for s in segments])
        self.seg_slope = np.array(
            [(s[3] - s[2]) / (s[1] - s[0]) if math.isfinite(s[1]) else 0.0 for s in segments]
        )
        lengths = [
            (s[1] - s[0]) * (s[2] + s[3]) / 2.0 if math.isfinite(s[1]) else math.inf
            for s in segments
        ]
        self.seg_level = np.concatenate(([0.0], np.cumsum(lengths[:-1])))

    def take(self, low: float, high: float) -> np.ndarray:
        """Arrival times in [low, high): every call continues where the last one stopped."""
        blocks = [self.buffer]
        last = float(self.buffer[-1]) if self.buffer.size else -math.inf
        while last < high:
            block = self._block()
            if block.size == 0:
                break
            blocks.append(block)
            last = float(block[-1])
            if not math.isfinite(last):
                break
        if len(blocks) > 1:
            self.buffer = np.concatenate(blocks)
        cut = int(np.searchsorted(self.buffer, high, side="left"))
        taken, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return taken

    def _block(self) -> np.ndarray:
        if self.seg_rate.size == 1 and self.seg_rate[0] <= 0.0:
            return np.zeros(0)
        if self.constant:
            levels = self.level + np.arange(1, _ARRIVAL_BLOCK + 1, dtype=np.float64)
        else:
            levels = self.level + np.cumsum(self.rng.exponential(1.0, _ARRIVAL_BLOCK))
        self.level = float(levels[-1])
        return self._invert(levels)

    def _invert(self, levels: np.ndarray) -> np.ndarray:
        if self.seg_rate.size == 1:
            return levels / self.seg_rate[0]
        seg = np.searchsorted(self.seg_level, levels, side="right") - 1
        excess = levels - self.seg_level[seg]
        rate = self.seg_rate[seg]
        slope = self.seg_slope[seg]
        root = np.sqrt(np.maximum(rate * rate + 2.0 * slope * excess, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = 2.0 * excess / (rate + root)
        times = self.seg_start[seg] + offset
        times[~np.isfinite(times)] = math.inf
        return times


class _ProcessSource:
    """Arrival times of one class with a trace, MMPP or batch arrivals (engine/arrivals.py,
    the same generator as the event path's), handed out chunk by chunk."""

    def __init__(self, model: Model, traffic: TrafficClass, replication: int) -> None:
        assert traffic.process is not None
        self.traffic = traffic
        rng = streams.class_stream(model.seed, replication, traffic.name, streams.ARRIVALS)
        self.epochs = ArrivalEpochs(traffic.process, rng)
        self.buffer = np.zeros(0)
        self.ended = False

    def take(self, low: float, high: float) -> np.ndarray:
        """Arrival times in [low, high): every call continues where the last one stopped."""
        blocks = [self.buffer]
        while not self.ended and not (blocks[-1].size and blocks[-1][-1] >= high):
            block = self.epochs.next_block()
            self.ended = block.size == 0
            blocks.append(block)
        if len(blocks) > 1:
            self.buffer = np.concatenate(blocks)
        cut = int(np.searchsorted(self.buffer, high, side="left"))
        taken, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return taken


def _arrival_source(
    model: Model, traffic: TrafficClass, replication: int
) -> _ArrivalSource | _ProcessSource:
    if traffic.process is not None:
        return _ProcessSource(model, traffic, replication)
    return _ArrivalSource(model, traffic, replication)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def run_vectorised(
    model: Model,
    replication: int,
    progress: ProgressCallback | None = None,
    chunk_requests: int = CHUNK_REQUESTS,
    *,
    tie_chains: bool | None = None,
) -> RunResult:
    """One replication on the vectorised path (the model must pass `can_vectorise`).

    `tie_chains` forces carrying the chains that order simultaneous visits (True) or not
    (False); None carries them where visits from different events can meet at one instant
    (`capsim.engine.ties.tie_reason`), which answers exactly the same as carrying them always."""
    possible, reason = can_vectorise(model)
    if not possible:
        raise SimulationError(f"the vectorised path cannot run this scenario: {reason}")
    run = _Run(model, replication, chunk_requests, tie_chains)
    run.run(progress)
    return RunResult(
        seed=model.seed,
        replication=replication,
        duration=model.simulation.duration,
        warmup=model.simulation.warmup,
        classes=run.classes,
        tiers=run.tiers,
        engine_path="vectorised",
        engine_reason=reason,
        events=run.requests,
        timings=dict(run.timings),
        series=run.series,
    )
