"""Round 6 of the differential fuzzer: the event-only features, dressed neutral and live.

The earlier generators (`scenariogen`) draw only what the vectorised path runs, so the event
path's own features (timeouts, retries, circuit breakers, bulkheads, hedges, pools, rate limits,
bounded queues, state-reading balancing, autoscaling, KEDA, partitions, redelivery, priorities,
faults, blocking workers that make calls, closed classes) were never compared with anything.
Two ways in:

* `dressed_pair(seed)`: a scenario both paths run (`scenariogen.random_round5_scenario`), and
  the same scenario *dressed* with event-only settings chosen so that they never act: a call
  timeout of an hour, retries that nothing fails, a breaker that never sees an error, bulkheads
  and pools and waiting rooms and rate limits far above any load, least_connections over one
  instance, an autoscaler or a KEDA scaler whose min is its max, partitions behind one worker
  (a free worker takes the oldest head: one FIFO), priorities with one class, faults after the
  run ends, blocking consumers and services with more workers than could ever be held (their
  occupancy is the only figure that may change). The event path runs the dressed scenario and
  must agree with the vectorised path on the plain one: every counter the settings add stays 0,
  and every figure agrees within the replications' noise. A setting that changes what is
  simulated while it should not act (an accounting slip in a call site, a pool that delays, a
  scaler that moves a min=max tier) shows as a disagreement.
* `live_scenario(seed)`: the same draw with the event-only settings set to act (short timeouts,
  retries with backoff, error-rate faults and lost instances, small pools, tight rate limits,
  closed classes, autoscaling, KEDA, partitions, batches, priorities, LIFO, hedges, regions
  down...). Only the event path runs it; the laws that hold whatever the settings are checked
  (counts add up, shares in [0, 1], percentiles in order), the vectorised path must refuse it
  with a reason, and a seed gives the same answer twice.

Every draw goes through the real scenario layer (`scenariogen.load`), so a draw the scenario
format refuses is itself a finding (the generator writes only what docs/scenario-reference.md
documents).
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import scenariogen

Data = dict[str, Any]

#: A duration that never elapses in the fuzzer's runs (a few simulated seconds).
NEVER = "1h"
#: A count no fuzzer run reaches (requests waiting, calls in flight, tokens).
HUGE = 1_000_000
#: Workers of a blocking tier dressed neutral: more than could ever be held at once.
MANY_WORKERS = 512


# ---- the dressed pair --------------------------------------------------------------------------
@dataclass
class Pair:
    """A scenario both paths run, and the same with neutral event-only settings."""

    plain: Data
    dressed: Data
    used: set[str] = field(default_factory=set)  # the settings dressed on
    held: list[str] = field(default_factory=list)  # tiers whose workers block in `dressed`


def dressed_pair(
    seed: int, requests: int = 4000, draw: Callable[[int, int], Data] | None = None
) -> Pair:
    """The round-5 draw of `seed` (or `draw`'s: `scenariogen.random_wide_scenario` adds regions,
    a cdn with a shield, shards, affinity), its tiers that make calls sometimes given many
    workers, plain and dressed. The dressing draws from a stream of its own."""
    plain = (draw or scenariogen.random_round5_scenario)(seed, requests)
    rnd = random.Random(seed * 7727 + 6)
    held = [n for n, t in plain["tiers"].items() if _may_block(t) and rnd.random() < 0.4]
    for name in held:
        _many_workers(plain["tiers"][name])
    dressed = copy.deepcopy(plain)
    used: set[str] = {"blocking with calls"} if held else set()
    for name in held:
        dressed["tiers"][name].pop("blocking", None)  # the default: blocking
    _dress(rnd, dressed, used)
    used |= shapes(dressed)
    return Pair(plain, dressed, used, held)


#: Shapes of the calls (not settings) that `dressed_pair` and `live_scenario` report in `used`.
SHAPES = frozenset({"consecutive parallel groups"})


def shapes(data: Data) -> set[str]:
    """The shapes of `data`'s calls worth covering: two parallel groups in a row (each starts
    when the one before has joined; a past bug of the vectorised path)."""
    for tier in data["tiers"].values():
        for steps in scenariogen._call_lists(tier):
            for first, second in itertools.pairwise(steps):
                if _is_parallel(first) and _is_parallel(second):
                    return {"consecutive parallel groups"}
    return set()


def _is_parallel(step: Any) -> bool:
    return isinstance(step, dict) and "parallel" in step


def _dress(rnd: random.Random, data: Data, used: set[str]) -> None:
    tiers: Data = data["tiers"]
    classes_count = len(data["traffic"])
    for name, tier in tiers.items():
        _dress_tier(rnd, name, tier, tiers, classes_count, used)
        for steps in scenariogen._call_lists(tier):
            _dress_steps(rnd, steps, tiers, used)
        if tier["type"] == "cache" and "on_miss" in tier and rnd.random() < 0.5:
            tier["on_miss"] = _guarded(rnd, tier["on_miss"], tiers, used)
        if tier["type"] == "load_balancer" and rnd.random() < 0.5:
            tier["backends"] = _guarded(rnd, tier["backends"], tiers, used, balancer=True)
    if rnd.random() < 0.4:
        _late_fault(rnd, data, used)


def _dress_tier(
    rnd: random.Random, name: str, tier: Data, tiers: Data, classes_count: int, used: set[str]
) -> None:
    kind = tier["type"]
    if rnd.random() < 0.3:
        tier["timeout"] = NEVER
        used.add("tier timeout")
    if rnd.random() < 0.3:
        tier["max_depth" if kind == "queue" else "max_queue"] = HUGE
        used.add("max_queue")
    if rnd.random() < 0.25:
        tier["rate_limit"] = {"rate": f"{HUGE}/s", "burst": HUGE}
        used.add("rate_limit")
    if kind != "queue" and rnd.random() < 0.2:
        tier["drop_abandoned"] = True
        used.add("drop_abandoned")
    if _never_waits(tier) and rnd.random() < 0.5:
        classes = [f"c{k}" for k in range(classes_count)]
        tier["priorities"] = rnd.sample(classes, len(classes))
        used.add("priorities")
    if kind == "database" and rnd.random() < 0.5:
        tier["pool"] = {"size": HUGE, "max_waiting": HUGE, "timeout": NEVER}
        used.add("pool")
    if kind == "queue":
        _dress_queue(rnd, tier, used)
    elif _one_server(tier) and rnd.random() < 0.5:
        tier["balancing"] = rnd.choice(["least_connections", "power_of_two"])
        used.add("state balancing")
    if kind not in ("queue", "load_balancer") and _autoscalable(tier) and rnd.random() < 0.3:
        count = tier.get("instances", 1)
        tier["autoscale"] = {"metric": "utilization", "target": "60%", "min": count, "max": count}
        used.add("autoscale min=max")


def _dress_queue(rnd: random.Random, tier: Data, used: set[str]) -> None:
    if rnd.random() < 0.3:
        tier["max_retries"] = 3
        used.add("max_retries")
    workers = tier.get("consumers", 1) * tier.get("concurrency", 1)
    if "priorities" not in tier and rnd.random() < 0.4:  # a partition keeps publish order
        # One worker takes the partition whose oldest message is oldest: one FIFO, whatever
        # their number. With more partitions than messages, none holds two: one FIFO again.
        tier["partitions"] = rnd.choice([1, 3, 16]) if workers == 1 else HUGE
        used.add("partitions")
    elif rnd.random() < 0.3:
        consumers = tier.get("consumers", 1)
        tier["autoscale"] = {"target": 100, "min": consumers, "max": consumers}
        used.add("keda min=max")


def _never_waits(tier: Data) -> bool:
    """A tier given `MANY_WORKERS` (see `_many_workers`): nothing ever waits there."""
    workers = tier.get("consumers", tier.get("instances", 1)) * tier.get("concurrency", 1)
    return workers >= MANY_WORKERS // 2


def _one_server(tier: Data) -> bool:
    """One instance, and for a database no more than one replica: balancing has no choice."""
    if tier.get("instances", 1) != 1 or "affinity" in tier or "shards" in tier:
        return False
    return tier["type"] != "database" or tier.get("replicas", 0) <= 1


def _autoscalable(tier: Data) -> bool:
    if tier["type"] == "database" and tier.get("replicas", 0) > 0:
        return False
    return not any(key in tier for key in ("affinity", "shards", "regions"))


def _makes_calls(tier: Data) -> bool:
    return bool(scenariogen._call_lists(tier))


def _may_block(tier: Data) -> bool:
    """A service or queue that makes calls: blocking by default."""
    return tier["type"] in ("service", "queue") and _makes_calls(tier)


def _many_workers(tier: Data) -> None:
    """So many workers that none ever waits, on both scenarios of the pair: the dressed one's
    workers are then held through their calls (blocking, the default) and only its occupancy
    may differ from the plain one's."""
    if tier["type"] == "queue":
        tier["consumers"] = MANY_WORKERS // max(1, tier.get("concurrency", 1))
    else:
        tier["concurrency"] = MANY_WORKERS // max(1, tier.get("instances", 1))


def _dress_steps(rnd: random.Random, steps: list[Any], tiers: Data, used: set[str]) -> None:
    for index, step in enumerate(steps):
        if isinstance(step, dict) and "parallel" in step:
            _dress_steps(rnd, step["parallel"], tiers, used)
        elif isinstance(step, str | dict) and "one_of" not in step and rnd.random() < 0.5:
            steps[index] = _guarded(rnd, step, tiers, used)


def _guarded(
    rnd: random.Random, step: Any, tiers: Data, used: set[str], *, balancer: bool = False
) -> Data:
    """The call `step` with guards that never act."""
    call: Data = {"tier": step} if isinstance(step, str) else dict(step)
    callee = tiers[call["tier"]]
    if callee["type"] == "queue":
        if rnd.random() < 0.5:
            call["bulkhead"] = HUGE
            used.add("bulkhead")
        return call
    roll = rnd.random()
    if roll < 0.3:
        call["timeout"] = NEVER
        call["retries"] = {"max": rnd.randint(0, 3), "budget": "10%"}
        used.add("timeout and retries")
    elif roll < 0.5:
        call["timeout"] = NEVER
        used.add("call timeout")
    elif roll < 0.7:
        call["circuit_breaker"] = {"error_rate": "50%", "window": "10s", "min_calls": 5}
        used.add("circuit_breaker")
    elif roll < 0.85:
        call["bulkhead"] = HUGE
        used.add("bulkhead")
    elif "repeat" not in call:
        call["hedge"] = {"after": NEVER, "max": rnd.randint(1, 2)}
        used.add("hedge")
    return call


def _late_fault(rnd: random.Random, data: Data, used: set[str]) -> None:
    """A fault that starts after the run has ended."""
    simulation = data["simulation"]
    end = float(simulation["warmup"].rstrip("s")) + float(simulation["duration"].rstrip("s"))
    name = rnd.choice(list(data["tiers"]))
    effects: list[Data] = [{"error_rate": "50%"}, {"slowdown": "3x"}]
    if data["tiers"][name]["type"] != "queue":  # a queue has consumers, no instances to lose
        effects.append({"lose": 1})
    effect = rnd.choice(effects)
    data["faults"] = [{"at": f"{end + 10.0:.1f}s", "tier": name, **effect}]
    used.add("late fault")


# ---- the live scenario -------------------------------------------------------------------------
def live_scenario(seed: int, requests: int = 3000) -> tuple[Data, set[str]]:
    """The round-5 draw of `seed` with event-only settings that act (and the settings used):
    short timeouts with retries, breakers, small bulkheads, hedges, small pools and waiting
    rooms, tight rate limits, state-reading balancing, autoscaling, serverless tiers, spot
    instances, KEDA, partitions, batches, redelivery, priorities, LIFO, faults (errors, lost
    instances and zones, slowdowns), blocking workers that make calls, a cold cache and closed
    classes. Only the event path runs it."""
    data = scenariogen.random_round5_scenario(seed, requests)
    rnd = random.Random(seed * 9973 + 61)
    used: set[str] = set()
    tiers: Data = data["tiers"]
    classes = list(data["traffic"])
    for tier in tiers.values():
        _live_tier(rnd, tier, classes, used)
        for steps in scenariogen._call_lists(tier):
            _live_steps(rnd, steps, tiers, used)
        if tier["type"] == "cache" and "on_miss" in tier and rnd.random() < 0.3:
            tier["on_miss"] = _live_call(rnd, tier["on_miss"], tiers, used)
    _live_faults(rnd, data, used)
    _live_classes(rnd, data, used)
    return data, used | shapes(data)


def _live_tier(rnd: random.Random, tier: Data, classes: list[str], used: set[str]) -> None:
    kind = tier["type"]
    if _makes_calls(tier) and kind in ("service", "queue") and rnd.random() < 0.6:
        tier.pop("blocking", None)  # the default: held through the calls
        used.add("blocking with calls")
    if rnd.random() < 0.15:
        tier["timeout"] = f"{rnd.choice([5, 20, 100])}ms"
        used.add("tier timeout")
    if kind != "load_balancer" and rnd.random() < 0.15:
        tier["max_depth" if kind == "queue" else "max_queue"] = rnd.randint(0, 5)
        used.add("max_queue")
    if rnd.random() < 0.1:
        tier["rate_limit"] = {"rate": f"{rnd.choice([20, 50, 100])}/s", "burst": rnd.randint(1, 20)}
        used.add("rate_limit")
    if kind != "queue" and rnd.random() < 0.1:
        tier["drop_abandoned"] = True
        used.add("drop_abandoned")
    if len(classes) > 1 and rnd.random() < 0.15:
        tier["priorities"] = rnd.sample(classes, rnd.randint(1, len(classes)))
        used.add("priorities")
    if kind == "database" and rnd.random() < 0.4:
        tier["pool"] = {"size": rnd.randint(1, 4), "max_waiting": rnd.randint(0, 20)}
        if rnd.random() < 0.5:
            tier["pool"]["timeout"] = f"{rnd.choice([5, 50])}ms"
        used.add("pool")
    if kind == "queue":
        _live_queue(rnd, tier, used)
        return
    if rnd.random() < 0.3:
        tier["instances"] = max(2, tier.get("instances", 1))
        tier["balancing"] = rnd.choice(["least_connections", "power_of_two"])
        used.add("state balancing")
    if "priorities" not in tier and rnd.random() < 0.1:
        tier["queue_discipline"] = "lifo"
        used.add("lifo")
    if kind in ("service", "cache") and _autoscalable(tier) and rnd.random() < 0.2:
        _live_autoscale(rnd, tier, used)
    elif kind == "service" and rnd.random() < 0.3:
        tier["cost"] = {
            "per_instance_hour": 0.1,
            "spot": {"discount": "60%", "interruption_rate": "720/h", "replace_after": "500ms"},
        }
        tier["instances"] = max(2, tier.get("instances", 1))
        used.add("spot")
    if kind == "cache" and rnd.random() < 0.2 and "autoscale" not in tier:
        tier["hit_ratio"] = {"model": "lru", "capacity": 50, "keys": 500, "zipf": 0.9, "cold": True}
        used.add("cold cache")


def _live_autoscale(rnd: random.Random, tier: Data, used: set[str]) -> None:
    tier.pop("balancing", None) if tier.get("balancing") == "power_of_two" else None
    if rnd.random() < 0.5:
        tier["autoscale"] = {
            "metric": rnd.choice(["utilization", "occupancy", "in_flight", "queue_length"]),
            "target": rnd.choice(["50%", "80%"]),
            "min": 1,
            "max": 4,
            "sync_period": "500ms",
            "startup_time": rnd.choice(["0s", "200ms"]),
        }
        if tier["autoscale"]["metric"] in ("in_flight", "queue_length"):
            tier["autoscale"]["target"] = rnd.choice([1, 3])
        tier["instances"] = rnd.randint(1, 4)
        used.add("autoscale")
    else:
        tier["autoscale"] = {
            "scale_to_zero": True,
            "min": rnd.randint(0, 1),
            "max_instances": rnd.randint(2, 6),
            "cold_start": rnd.choice(["0s", "30ms"]),
            "keep_warm": rnd.choice(["100ms", "2s"]),
        }
        tier.pop("instances", None)
        used.add("serverless")


def _live_queue(rnd: random.Random, tier: Data, used: set[str]) -> None:
    if rnd.random() < 0.3:
        tier["max_retries"] = rnd.randint(1, 3)
        used.add("max_retries")
    roll = rnd.random()
    if roll < 0.25:
        tier["partitions"] = rnd.randint(1, 4)
        used.add("partitions")
    elif roll < 0.45:
        tier["batch"] = {"size": rnd.randint(2, 5), "linger": rnd.choice(["0s", "20ms"])}
        tier.pop("priorities", None)
        used.add("batch")
    elif roll < 0.65:
        tier["autoscale"] = {
            "target": rnd.choice([1, 5]),
            "min": rnd.randint(0, 1),
            "max": 4,
            "polling_interval": "500ms",
            "cooldown_period": "1s",
        }
        tier.pop("consumers", None)
        used.add("keda")
    elif "priorities" not in tier and rnd.random() < 0.5:
        tier["queue_discipline"] = "lifo"
        used.add("lifo")
    if "partitions" in tier or "batch" in tier:
        tier.pop("priorities", None)


def _live_steps(rnd: random.Random, steps: list[Any], tiers: Data, used: set[str]) -> None:
    for index, step in enumerate(steps):
        if isinstance(step, dict) and "parallel" in step:
            _live_steps(rnd, step["parallel"], tiers, used)
        elif isinstance(step, str | dict) and "one_of" not in step and rnd.random() < 0.4:
            steps[index] = _live_call(rnd, step, tiers, used)


def _live_call(rnd: random.Random, step: Any, tiers: Data, used: set[str]) -> Data:
    call: Data = {"tier": step} if isinstance(step, str) else dict(step)
    if tiers[call["tier"]]["type"] == "queue":
        if rnd.random() < 0.5:
            call["bulkhead"] = rnd.randint(1, 4)
            used.add("bulkhead")
        return call
    roll = rnd.random()
    if roll < 0.35:
        call["timeout"] = f"{rnd.choice([2, 10, 50])}ms"
        call["retries"] = {
            "max": rnd.randint(1, 3),
            "backoff": rnd.choice(["exponential", "constant", "none"]),
            "base": "5ms",
            "cap": "50ms",
            "jitter": rnd.choice(["full", "none"]),
        }
        if rnd.random() < 0.5:
            call["retries"]["budget"] = "20%"
        used.add("timeout and retries")
    elif roll < 0.5:
        call["circuit_breaker"] = {
            "error_rate": "30%",
            "window": "1s",
            "min_calls": 5,
            "open_for": "300ms",
            "probes": 2,
        }
        call["timeout"] = "5ms"
        used.add("circuit_breaker")
    elif roll < 0.65:
        call["bulkhead"] = rnd.randint(1, 4)
        used.add("bulkhead")
    elif "repeat" not in call:
        call["hedge"] = {"after": rnd.choice(["2ms", "p90"]), "max": rnd.randint(1, 2)}
        used.add("hedge")
    return call


def _live_faults(rnd: random.Random, data: Data, used: set[str]) -> None:
    simulation = data["simulation"]
    warmup = float(simulation["warmup"].rstrip("s"))
    duration = float(simulation["duration"].rstrip("s"))
    faults: list[Data] = []
    for name, tier in data["tiers"].items():
        if rnd.random() >= 0.2:
            continue
        at = f"{warmup + rnd.uniform(0.1, 0.5) * duration:.2f}s"
        lasting = f"{rnd.uniform(0.1, 0.4) * duration:.2f}s"
        effect = rnd.choice(["error_rate", "slowdown", "lose"])
        if effect == "lose" and tier["type"] != "queue" and "autoscale" not in tier:
            tier["instances"] = max(2, tier.get("instances", 1))
            if rnd.random() < 0.5:
                tier["health_check"] = {"interval": "200ms", "unhealthy_after": 2}
            faults.append({"at": at, "for": lasting, "tier": name, "lose": 1})
            used.add("fault lose")
        elif effect == "slowdown":
            faults.append({"at": at, "for": lasting, "tier": name, "slowdown": "3x"})
            used.add("fault slowdown")
        else:
            faults.append({"at": at, "for": lasting, "tier": name, "error_rate": "30%"})
            used.add("fault error_rate")
    if faults:
        data["faults"] = faults


def _live_classes(rnd: random.Random, data: Data, used: set[str]) -> None:
    """Some open classes become closed: users with a think time."""
    for spec in data["traffic"].values():
        if rnd.random() < 0.25:
            rate = float(str(spec.get("rate", "20")).split("/")[0])
            think = rnd.choice([0.05, 0.2])
            users = max(1, round(rate * think))
            entry = spec["entry"]
            spec.clear()
            spec.update({"entry": entry, "users": users, "think_time": f"{think * 1000:.0f}ms"})
            if rnd.random() < 0.5:
                spec["think_time"] = {"dist": "exponential", "mean": f"{think * 1000:.0f}ms"}
            used.add("closed class")
