"""Round 6 of the differential fuzzer: the event path's own features, dressed neutral.

Only the event path runs timeouts, retries, breakers, bulkheads, hedges, pools, rate limits,
bounded queues, state-reading balancing, autoscaling, KEDA, partitions, redelivery,
priorities, faults and blocking workers that make calls, so the earlier rounds never compared
them with anything. `scenariogen_round6.dressed_pair(seed)` gives a scenario both paths run and
the same scenario dressed with those settings at values that never act (an hour's timeout,
retries nothing fails, waiting rooms and pools far above any load, an autoscaler whose min is
its max, a fault after the run ends...). Three stories:

* **a setting that never acts changes no figure**: the event path runs plain and dressed with
  the same seed and replication, event by event (the fast lane off: it changes the order of
  draws by design, and a dynamic setting such as an autoscaler turns it off,
  engine/events/lanes.py), and every figure is identical (the occupancy and the requests
  present of a tier made blocking aside: its workers are now held through its calls), and
  every counter the settings add (retries, timeouts, refusals, short circuits, hedges,
  redeliveries...) is 0. Common random numbers rest on this: `capsim compare` of a scenario
  with and without a fault must see the same run before the fault starts;
* **the dressed event path agrees with the plain vectorised path** within the replications'
  noise (`test_differential_fuzz.disagreements`: a two-sample t-test per figure at 1e-5, plus
  a figure's resolution; no tolerance is widened), and both keep the laws;
* the quick seeds cover every setting the dresser knows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import scenariogen
import scenariogen_round6
from capsim.cli.app import app
from capsim.engine.events import lanes, run_events
from capsim.engine.result import RunResult
from capsim.engine.vectorised import can_vectorise, run_vectorised
from capsim.model.build import build_model
from capsim.model.types import Model
from capsim.scenario import scenario_from_document
from capsim.scenario.loader import parse_yaml_text
from fingerprintkit import fingerprint
from test_differential_fuzz import (
    REPLICATIONS,
    broken_laws,
    disagreements,
    figures,
    histogram_is_monotone,
)

#: Seeds of the exact comparison (one replication per path: fast).
EXACT_QUICK_SEEDS = range(20)
EXACT_SLOW_SEEDS = range(6000, 6200)
#: Seeds of the exact comparison on `scenariogen.random_wide_scenario`'s draws.
WIDE_EXACT_QUICK_SEEDS = range(8)
WIDE_EXACT_SLOW_SEEDS = range(7000, 7100)
#: Seeds of the statistical comparison with the vectorised path.
AGREE_QUICK_SEEDS = range(6)
AGREE_SLOW_SEEDS = range(6000, 6060)
#: What two sums of the same times added in another order may differ by (relative).
ROUNDING = 1e-12
#: Counters of a tier that a neutral setting must leave at 0.
NEUTRAL_COUNTERS = (
    "rejected",
    "timed_out",
    "pool_rejected",
    "retries",
    "call_timeouts",
    "rate_limited",
    "dropped",
    "short_circuited",
    "bulkhead_rejected",
    "redeliveries",
    "dead_letters",
    "hedges",
    "hedge_wins",
    "spot_interruptions",
)
#: Every setting the dresser puts on (the coverage test's list).
DRESSINGS = {
    "tier timeout",
    "max_queue",
    "rate_limit",
    "drop_abandoned",
    "priorities",
    "pool",
    "state balancing",
    "autoscale min=max",
    "keda min=max",
    "max_retries",
    "partitions",
    "blocking with calls",
    "timeout and retries",
    "call timeout",
    "circuit_breaker",
    "bulkhead",
    "hedge",
    "late fault",
    "consecutive parallel groups",
}


def _models(
    seed: int, draw: Callable[[int, int], dict[str, Any]] | None = None
) -> tuple[scenariogen_round6.Pair, Model, Model]:
    pair = scenariogen_round6.dressed_pair(seed, draw=draw)
    return pair, scenariogen.load(pair.plain), scenariogen.load(pair.dressed)


def _comparable(model: Model, run: RunResult, held: list[str]) -> dict[str, float]:
    """The run's figures, but the workers held and the requests present at the tiers made
    blocking (now held through their calls)."""
    return {k: f.value for k, f in figures(model, run).items() if not _held_figure(k, held)}


def _held_figure(key: str, held: list[str]) -> bool:
    """Whether `key` is the occupancy or requests present of a held tier (or of one of its
    copies in a region, `TIER@REGION`, or of its nodes under affinity, `TIER.node-K`)."""
    words = key.split(" ")
    if words[0] == "series":
        words = words[1:]
        if not key.endswith(("occupied_time", "present_time")):
            return False
    elif not key.endswith(" occupancy"):
        return False
    return words[0] == "tier" and words[1].split("@")[0].split(".")[0] in held


def _same(a: float, b: float | None) -> bool:
    """Equal, but for the rounding of a sum of times added in another order."""
    return b is not None and abs(a - b) <= ROUNDING * max(abs(a), abs(b))


def event_by_event(model: Model, replication: int) -> RunResult:
    lanes.ENABLED = False
    try:
        return run_events(model, replication)
    finally:
        lanes.ENABLED = True


def changed_by_dressing(
    seed: int, draw: Callable[[int, int], dict[str, Any]] | None = None
) -> list[str]:
    """What the neutral settings of `seed` (of `draw`, by default round 5's) change on the
    event path (empty when nothing)."""
    pair, plain, dressed = _models(seed, draw)
    assert can_vectorise(plain)[0], f"seed {seed}: the plain scenario needs the event path"
    if pair.used - scenariogen_round6.SHAPES:
        assert not can_vectorise(dressed)[0], f"seed {seed}: dressed, still vectorised"
    before = _comparable(plain, event_by_event(plain, 0), pair.held)
    after_run = event_by_event(dressed, 0)
    after = _comparable(dressed, after_run, pair.held)
    found = [
        f"{key}: plain {before[key]!r}, dressed {after.get(key)!r}"
        for key in before
        if not _same(before[key], after.get(key))
    ]
    for tier, t in zip(dressed.tiers, after_run.tiers, strict=True):
        found += [
            f"tier {tier.name} {counter}: {getattr(t, counter)} (a neutral setting acted)"
            for counter in NEUTRAL_COUNTERS
            if getattr(t, counter)
        ]
    found += [
        f"class {c.name} errors: {r.errors}"
        for c, r in zip(dressed.classes, after_run.classes, strict=True)
        if r.errors
    ]
    return [f"seed {seed} ({', '.join(sorted(pair.used))}): {p}" for p in found]


def dressed_disagreements(seed: int) -> list[str]:
    """The dressed scenario on the event path against the plain one on the vectorised path."""
    pair, plain, dressed = _models(seed)
    events = [run_events(dressed, r) for r in range(REPLICATIONS)]
    vectorised = [run_vectorised(plain, r) for r in range(REPLICATIONS, 2 * REPLICATIONS)]
    problems = [
        p
        for p in disagreements(plain, events, vectorised)
        if not any(p.startswith(f"tier {name} occupancy") for name in pair.held)
    ]
    for run in vectorised:
        problems += broken_laws(plain, run)
    return [f"seed {seed} ({', '.join(sorted(pair.used))}): {p}" for p in problems]


def test_the_quick_seeds_dress_every_setting_the_dresser_knows():
    used: set[str] = set()
    for seed in EXACT_QUICK_SEEDS:
        used |= scenariogen_round6.dressed_pair(seed).used
    assert used == DRESSINGS


@pytest.mark.parametrize("seed", EXACT_QUICK_SEEDS)
def test_settings_that_never_act_change_no_figure_on_the_event_path(seed: int):
    assert changed_by_dressing(seed) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", EXACT_SLOW_SEEDS)
def test_settings_that_never_act_change_no_figure_on_many_more_scenarios(seed: int):
    assert changed_by_dressing(seed) == []


@pytest.mark.parametrize("seed", WIDE_EXACT_QUICK_SEEDS)
def test_settings_that_never_act_change_no_figure_with_regions_cdns_and_shards(seed: int):
    """The wide draws (`scenariogen.random_wide_scenario`: regions and their copies of tiers,
    a cdn with an origin shield, shards, affinity, popularity models) dressed the same way."""
    assert changed_by_dressing(seed, scenariogen.random_wide_scenario) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", WIDE_EXACT_SLOW_SEEDS)
def test_settings_that_never_act_change_no_figure_on_many_more_wide_scenarios(seed: int):
    assert changed_by_dressing(seed, scenariogen.random_wide_scenario) == []


@pytest.mark.parametrize("seed", AGREE_QUICK_SEEDS)
def test_the_dressed_event_path_agrees_with_the_plain_vectorised_path(seed: int):
    assert dressed_disagreements(seed) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", AGREE_SLOW_SEEDS)
def test_the_dressed_event_path_agrees_with_the_plain_vectorised_path_on_more_seeds(seed: int):
    assert dressed_disagreements(seed) == []


# ---- live settings: the event path alone, held to the laws that hold whatever they do ---------
#: Seeds of `scenariogen_round6.live_scenario` (event-only settings that act).
LIVE_QUICK_SEEDS = range(12)
LIVE_SLOW_SEEDS = range(6000, 6300)
#: Every live setting the generator draws (the coverage test's list).
LIVE_SETTINGS = {
    "blocking with calls",
    "tier timeout",
    "max_queue",
    "rate_limit",
    "drop_abandoned",
    "priorities",
    "pool",
    "state balancing",
    "lifo",
    "autoscale",
    "serverless",
    "spot",
    "cold cache",
    "max_retries",
    "partitions",
    "batch",
    "keda",
    "timeout and retries",
    "circuit_breaker",
    "bulkhead",
    "hedge",
    "fault lose",
    "fault slowdown",
    "fault error_rate",
    "closed class",
    "consecutive parallel groups",
}


def live_laws(model: Model, run: RunResult) -> list[str]:
    """The laws every run keeps, whatever its settings do: each request of a class that arrived
    in the window is completed, failed or still unfinished at its end (exactly one); no tier's
    workers are busy or held longer than they were live; counts and times are finite and never
    negative; percentiles are in order."""
    found = []
    for traffic, c in zip(model.classes, run.classes, strict=True):
        if c.completed + c.errors + c.unfinished != c.arrivals:
            found.append(
                f"class {traffic.name}: {c.completed} completed + {c.errors} errors + "
                f"{c.unfinished} unfinished != {c.arrivals} arrivals"
            )
        if not histogram_is_monotone(c.latency):
            found.append(f"class {traffic.name}: percentiles out of order")
    for tier, t in zip(model.tiers, run.tiers, strict=True):
        live = t.live_worker_time if t.live_worker_time is not None else t.workers * run.duration
        for what in ("busy_time", "occupied_time"):
            if getattr(t, what) > live * (1.0 + 1e-9) + 1e-9:
                found.append(f"tier {tier.name}: {what} {getattr(t, what):.6g} > live {live:.6g}")
        for what in ("arrivals", "completed", "rejected", "timed_out", "queue_time", "busy_time"):
            value = float(getattr(t, what))
            if not (math.isfinite(value) and value >= 0.0):
                found.append(f"tier {tier.name}: {what} is {value}")
        if not histogram_is_monotone(t.wait):
            found.append(f"tier {tier.name}: wait percentiles out of order")
    return found


def live_problems(seed: int) -> list[str]:
    data, used = scenariogen_round6.live_scenario(seed)
    model = scenariogen.load(data)
    problems = []
    vectorisable, reason = can_vectorise(model)
    if used - scenariogen_round6.SHAPES and (vectorisable or not reason):
        problems.append(f"the vectorised path does not refuse it with a reason ({reason!r})")
    first, again = run_events(model, 0), run_events(model, 0)
    problems += live_laws(model, first)
    if fingerprint([first.classes, first.tiers]) != fingerprint([again.classes, again.tiers]):
        problems.append("the same seed and replication gave two answers")
    return [f"seed {seed} ({', '.join(sorted(used))}): {p}" for p in problems]


def test_the_quick_seeds_draw_every_live_setting():
    used: set[str] = set()
    for seed in LIVE_QUICK_SEEDS:
        used |= scenariogen_round6.live_scenario(seed)[1]
    assert used == LIVE_SETTINGS


@pytest.mark.parametrize("seed", LIVE_QUICK_SEEDS)
def test_live_event_only_settings_keep_the_laws_and_repeat_exactly(seed: int):
    assert live_problems(seed) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", LIVE_SLOW_SEEDS)
def test_live_event_only_settings_keep_the_laws_on_many_more_scenarios(seed: int):
    assert live_problems(seed) == []


# ---- through the command line: one answer whatever runs the replications ----------------------
#: Live seeds run through `capsim run` serially and on a process pool.
CLI_QUICK_SEEDS = range(2)
CLI_SLOW_SEEDS = range(6000, 6030)


def _cli(path: Path, *options: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(app, ["run", str(path), "--format", "json", *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def executors_disagree(seed: int) -> list[str]:
    """What differs between a serial run of live scenario `seed` and a run on a process pool
    (the JSON, byte for byte), and whether `--engine vectorised` refuses it with its reason."""
    data, used = scenariogen_round6.live_scenario(seed, requests=1500)
    data["simulation"]["replications"] = 3
    path = scenariogen.TRACE_FOLDER / f"live-{seed}.yaml"  # beside its trace and sample files
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    problems = []
    code, serial, stderr = _cli(path)
    if code not in (0, 1):
        return [f"seed {seed}: run failed ({code}): {stderr}"]
    code, pooled, stderr = _cli(path, "--executor", "process", "--workers", "2")
    if pooled != serial:
        problems.append(f"seed {seed}: a process pool gave another JSON ({code}, {stderr})")
    reason = can_vectorise(scenariogen.load(data))[1]
    code, _, stderr = _cli(path, "--engine", "vectorised")
    if used - scenariogen_round6.SHAPES and (code != 2 or reason not in " ".join(stderr.split())):
        problems.append(f"seed {seed}: --engine vectorised: exit {code}, {stderr!r}")
    return problems


@pytest.mark.parametrize("seed", CLI_QUICK_SEEDS)
def test_a_live_scenario_gives_one_json_serially_and_on_a_process_pool(seed: int):
    assert executors_disagree(seed) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", CLI_SLOW_SEEDS)
def test_many_live_scenarios_give_one_json_serially_and_on_a_process_pool(seed: int):
    assert executors_disagree(seed) == []


# ---- the defects round 6 found, one story each -------------------------------------------------
def _run(text: str, settings: str = "") -> RunResult:
    """Scenario `text` with its line SETTINGS replaced by `settings`, run event by event."""
    document = parse_yaml_text(text.replace("SETTINGS", settings), "story.yaml")
    return event_by_event(build_model(scenario_from_document(document, Path("."))), 0)


QUEUE_WITH_CALLS = """
name: partitioned
seed: 3
simulation: {duration: 20s, warmup: 2s}
traffic:
  jobs: {entry: api, rate: 40/s}
tiers:
  api: {service_time: 1ms, concurrency: 8, calls: [events]}
  events:
    type: queue
    service_time: {dist: exponential, mean: 5ms}
    blocking: false
    calls: [mailer]
    SETTINGS
  mailer: {service_time: 40ms, concurrency: 16, blocking: false}
"""


def test_a_partitioned_queue_counts_its_non_blocking_consumers_calls_in_the_message_age():
    """Found by dressing a queue with more partitions than messages (then one FIFO): the
    messages' ages fell by a fifth. A non-blocking consumer is freed after its own work, but
    its message is done when the calls answer: its age covers them (docs/scenario-reference.md,
    `age_*` objectives), as on a queue without partitions. The partitioned path answered the
    message at the end of the consumer's own work, so the 40 ms mailer call was missing from
    every age (and a failed call could never redeliver it)."""
    plain = _run(QUEUE_WITH_CALLS)
    partitioned = _run(QUEUE_WITH_CALLS, "partitions: 1")
    events = 1
    assert plain.tiers[events].age is not None and partitioned.tiers[events].age is not None
    assert plain.tiers[events].age.mean > 0.040  # the mailer's 40 ms are in the age
    assert partitioned.tiers[events].age.mean == plain.tiers[events].age.mean
    assert partitioned.tiers[events].age.n == plain.tiers[events].age.n


FAILING_MAILER = QUEUE_WITH_CALLS.replace(
    "tiers:", "faults:\n  - {at: 0s, tier: mailer, error_rate: 50%}\ntiers:"
)


def test_a_partitioned_queue_redelivers_messages_whose_non_blocking_calls_failed():
    """The other half of the same slip: the message's outcome is its calls' outcome, so a
    failed call redelivers it (`max_retries`) with partitions as without."""
    plain = _run(FAILING_MAILER, "max_retries: 2")
    partitioned = _run(FAILING_MAILER, "max_retries: 2\n    partitions: 1")
    events = 1
    assert plain.tiers[events].redeliveries > 100
    assert partitioned.tiers[events].redeliveries == plain.tiers[events].redeliveries
    assert partitioned.tiers[events].dead_letters == plain.tiers[events].dead_letters


REPLICATED_DATABASE = """
name: late-fault
seed: 5
simulation: {duration: 10s, warmup: 1s}
traffic:
  reads: {entry: db, rate: 200/s}
tiers:
  db:
    type: database
    service_time: {dist: exponential, mean: 2ms}
    replicas: 2
    read_ratio: 0.7
    balancing: random
SETTINGS
"""


def test_a_fault_that_starts_after_the_run_changes_no_figure():
    """Found by dressing scenarios with a fault after the run's end: a database with one
    primary, two replicas and random balancing gave other figures. Once instances can die,
    every chooser picks among the healthy ones, and the primaries' chooser drew a uniform for
    each write even with one primary to choose from; the replicas' chooser shares those
    uniforms, so every read went elsewhere. One instance is no choice, and draws nothing."""
    without = _run(REPLICATED_DATABASE)
    late = _run(REPLICATED_DATABASE, "faults:\n  - {at: 30s, tier: db, lose: 1}")
    db = 0
    assert late.tiers[db].groups is not None and without.tiers[db].groups is not None
    for group, figures_of in without.tiers[db].groups.items():
        assert late.tiers[db].groups[group].arrivals == figures_of.arrivals
        assert late.tiers[db].groups[group].busy_time == figures_of.busy_time
    assert late.classes[0].latency.mean == without.classes[0].latency.mean
