"""Random valid scenarios that both engine paths accept, for the differential fuzzer.

`random_scenario(seed)` writes a scenario as YAML data (a dict), the way a user would, and
`load(data)` turns it into a Model through the real scenario layer. What a scenario may hold:

* 1 to 3 classes, Poisson or constant arrivals (constant ones often share a rate, so several
  classes arrive at the same instants), some with a rate profile (ramps and steps); and the
  bursty processes: a two-state MMPP, batch arrivals (constant, geometric or empirical sizes)
  and a replayed trace (Poisson timestamps written to a file, looped);
* 2 to 7 tiers of every kind the vectorised path runs: services, load balancers, caches with
  `on_miss`, databases with replicas and a read ratio, queues with a publish time and consumers
  that make calls (always with an explicit `blocking: false`, whatever the default);
* calls: plain, with a probability, `one_of`, `parallel` (nested, and often two or three
  parallel steps in a row), `repeat` (publishes to a queue);
* per-tier class overrides (`classes:`) of the service time, the calls and the read ratio;
* service times constant (zero included: ties), exponential, lognormal, gamma, uniform;
* instances, concurrency, round robin or random balancing.

Tiers only call tiers declared after them (no cycle). A draw the vectorised path refuses
(sequential calls sharing a downstream tier) is redrawn from the same seed's stream. Rates are
then scaled so that no tier is offered more than `MAX_LOAD` of its workers at peak, and the
run length so that a replication simulates about `requests` requests.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path
from typing import Any

import yaml

from capsim.engine.vectorised import can_vectorise
from capsim.model.build import build_model
from capsim.model.types import Model
from capsim.model.visits import mean_work
from capsim.scenario import scenario_from_document
from capsim.scenario.loader import parse_yaml_text

#: Highest offered load per worker at any tier, at peak rates: queues are busy, never unstable.
MAX_LOAD = 0.75
#: Draws of a seed's stream before giving up on finding a scenario the vectorised path runs.
ATTEMPTS = 50

Data = dict[str, Any]


def ms(seconds: float) -> str:
    return f"{seconds * 1000.0:.4f}ms"


def per_second(rate: float) -> str:
    return f"{rate:.6f}/s"


def _distribution(rnd: random.Random, mean: float) -> Any:
    kind = rnd.choice(
        ["constant", "constant", "zero", "exponential", "lognormal", "gamma", "uniform"]
    )
    if kind == "zero":
        return ms(0.0)
    if kind == "constant":
        return ms(mean)
    if kind == "exponential":
        return {"dist": "exponential", "mean": ms(mean)}
    if kind in ("lognormal", "gamma"):
        return {"dist": kind, "mean": ms(mean), "cv": rnd.choice([0.5, 1.0, 1.5])}
    return {"dist": "uniform", "min": ms(0.5 * mean), "max": ms(1.5 * mean)}


def _service_mean(rnd: random.Random) -> float:
    return rnd.choice([0.0005, 0.001, 0.002, 0.005, 0.010, 0.020])


def _call(rnd: random.Random, callees: list[str], kinds: dict[str, str], depth: int) -> Any:
    """One step of a calls list, to some of `callees`."""
    target = rnd.choice(callees)
    roll = rnd.random()
    if kinds[target] == "queue" and roll < 0.4:
        return {"tier": target, "repeat": rnd.randint(2, 3)}
    if roll < 0.3:
        return target
    if roll < 0.5:
        return {"tier": target, "probability": round(rnd.uniform(0.2, 0.9), 3)}
    if roll < 0.65 and len(callees) > 1:
        options = rnd.sample(callees, rnd.randint(2, min(3, len(callees))))
        weights = [rnd.uniform(0.1, 1.0) for _ in options]
        total = sum(weights) / rnd.choice([1.0, 0.9, 0.7])
        # Rounded down, so that the probabilities never sum to more than 1.
        shares = [math.floor(1000 * w / total) / 1000 for w in weights]
        return {"one_of": dict(zip(options, shares, strict=True))}
    if depth < 2:
        width = rnd.randint(1, min(3, len(callees)))
        return {"parallel": [_call(rnd, callees, kinds, depth + 1) for _ in range(width)]}
    return target


def _calls(rnd: random.Random, callees: list[str], kinds: dict[str, str]) -> list[Any]:
    if not callees:
        return []
    steps: list[Any] = []
    for _ in range(rnd.choice([1, 1, 2, 2, 3])):
        if rnd.random() < 0.25:
            # Consecutive parallel steps: each starts when the previous one has joined.
            for _ in range(rnd.randint(2, 3)):
                width = rnd.randint(1, min(2, len(callees)))
                steps.append({"parallel": [_call(rnd, callees, kinds, 1) for _ in range(width)]})
        else:
            steps.append(_call(rnd, callees, kinds, 0))
    return steps


def _tier(
    rnd: random.Random, kind: str, callees: list[str], kinds: dict[str, str], classes: list[str]
) -> Data:
    mean = _service_mean(rnd)
    tier: Data = {"type": kind}
    if kind == "load_balancer":
        tier["backends"] = rnd.choice(callees)
        tier["algorithm"] = rnd.choice(["round_robin", "random"])
        if rnd.random() < 0.5:
            tier["service_time"] = _distribution(rnd, mean)
        if rnd.random() < 0.4:
            tier["classes"] = {rnd.choice(classes): {"service_time": ms(0.005)}}
        return tier
    tier["service_time"] = _distribution(rnd, mean)
    if kind == "cache":
        tier["hit_ratio"] = round(rnd.uniform(0.3, 0.95), 3)
        if callees:
            tier["on_miss"] = rnd.choice(callees)
    if kind == "database":
        tier["replicas"] = rnd.randint(0, 2)
        tier["read_ratio"] = round(rnd.uniform(0.5, 1.0), 3)
    if kind == "queue":
        tier["consumers"] = rnd.randint(1, 3)
        tier["publish_time"] = _distribution(rnd, 0.001)
    else:
        tier["instances"] = rnd.choice([1, 1, 2, 3])
        tier["balancing"] = rnd.choice(["round_robin", "random"])
    tier["concurrency"] = rnd.choice([1, 1, 2, 4])
    calls = _calls(rnd, callees, kinds) if kind != "cache" and rnd.random() < 0.7 else []
    if calls:
        tier["calls"] = calls
    # Explicit, whatever the default: a worker that makes calls is released after its own
    # work (blocking workers with calls need the event path).
    tier["blocking"] = False if (calls or kind == "cache") else rnd.choice([True, False])
    overrides: Data = {}
    for name in classes:
        if rnd.random() < 0.3:
            override: Data = {"service_time": _distribution(rnd, _service_mean(rnd))}
            if kind != "cache" and callees and (calls or rnd.random() < 0.3):
                override["calls"] = _calls(rnd, callees, kinds)
                tier["blocking"] = False
            if kind == "database" and rnd.random() < 0.5:
                override["read_ratio"] = round(rnd.uniform(0.0, 1.0), 3)
            overrides[name] = override
    if overrides:
        tier["classes"] = overrides
    return tier


def _traffic(rnd: random.Random, entries: list[str], classes: list[str]) -> Data:
    traffic: Data = {}
    shared_constant = rnd.choice([10.0, 20.0, 50.0])
    for name in classes:
        spec: Data = {"entry": rnd.choice(entries)}
        if rnd.random() < 0.35:
            spec["arrivals"] = "constant"
            spec["rate"] = shared_constant if rnd.random() < 0.7 else rnd.choice([5.0, 25.0])
        else:
            spec["rate"] = rnd.choice([5.0, 20.0, 50.0, 100.0])
            process = rnd.random()
            if process < 0.1:
                spec["arrivals"] = {"mmpp": rnd.choice([0.3, 1.0, 3.0])}  # mean sojourn, s
            elif process < 0.2:
                spec["arrivals"] = {"batch": _batch_size(rnd)}
            elif process < 0.28:
                spec["arrivals"] = {"trace": rnd.randrange(10**9)}  # the trace's own seed
            elif rnd.random() < 0.3:
                spec["profile"] = "ramp" if rnd.random() < 0.5 else "step"
        traffic[name] = spec
    return traffic


def _batch_size(rnd: random.Random) -> Data:
    kind = rnd.choice(["constant", "geometric", "empirical"])
    if kind == "constant":
        return {"dist": "constant", "value": rnd.choice([2, 3, 5])}
    if kind == "geometric":
        return {"dist": "geometric", "mean": rnd.choice([1.5, 2.0, 4.0])}
    return {"dist": "empirical", "samples": rnd.choice([[1, 2, 8], [1, 1, 4], [3]])}


#: MMPP rates as multiples of the class's mean rate (equal sojourns: the mean is the average).
MMPP_LOW, MMPP_HIGH = 0.4, 1.6
#: Where the fuzzer's trace files go (one per class and seed, rewritten on each draw).
TRACE_FOLDER = Path(tempfile.gettempdir()) / "capsim-fuzz-traces"


def _batch_mean(size: Data) -> float:
    if size["dist"] == "constant":
        return float(size["value"])
    if size["dist"] == "geometric":
        return float(size["mean"])
    return sum(size["samples"]) / len(size["samples"])


def _write_trace(seed: int, rate: float, length: float) -> str:
    """Poisson timestamps at `rate` over `length` seconds (at least one), in a file of their own."""
    rnd = random.Random(seed)
    times, clock = [], 0.0
    while True:
        clock += rnd.expovariate(rate)
        if clock >= length and times:
            break
        times.append(clock)
    TRACE_FOLDER.mkdir(exist_ok=True)
    path = TRACE_FOLDER / f"trace-{seed}-{rate:.6f}-{length:.1f}.txt"
    path.write_text("".join(f"{t:.6f}\n" for t in times))
    return path.name  # relative to the scenario's folder, TRACE_FOLDER (see `load`)


def _arrival_process(spec: Data, rate: float, length: float) -> None:
    """The process drawn for `spec`, written out at the class's mean `rate`: an MMPP averaging
    it, batches of its mean size at rate / mean size, or a trace of Poisson times looped."""
    process = spec.get("arrivals")
    if not isinstance(process, dict):
        return
    if "mmpp" in process:
        sojourn = f"{process['mmpp']}s"
        spec["arrivals"] = {
            "mmpp": {
                "rates": [per_second(MMPP_LOW * rate), per_second(MMPP_HIGH * rate)],
                "mean_sojourn": [sojourn, sojourn],
            }
        }
        del spec["rate"]
    elif "batch" in process:
        size = process["batch"]
        spec["arrivals"] = {"batch": {"size": size}}
        spec["rate"] = per_second(rate / _batch_mean(size))  # batches a second
    elif "trace" in process:
        spec["arrivals"] = {"trace": _write_trace(process["trace"], rate, length), "loop": True}
        del spec["rate"]
    elif "tied_trace" in process:
        written = _write_tied_trace(process["tied_trace"], rate, length)
        spec["arrivals"] = {"trace": written, "loop": True}
        del spec["rate"]


def _draw(rnd: random.Random, seed: int) -> Data:
    class_names = [f"c{k}" for k in range(rnd.randint(1, 3))]
    count = rnd.randint(2, 7)
    names = [f"t{i}" for i in range(count)]
    kinds = {
        name: rnd.choice(["service", "service", "load_balancer", "cache", "database", "queue"])
        for name in names
    }
    kinds[names[0]] = rnd.choice(["service", "load_balancer", "cache"])
    kinds[names[-1]] = rnd.choice(["service", "database", "queue"])
    tiers: Data = {}
    for index, name in enumerate(names):
        callees = names[index + 1 :]
        kind = kinds[name]
        if kind == "load_balancer" and not callees:
            kind = kinds[name] = "service"
        tiers[name] = _tier(rnd, kind, callees, kinds, class_names)
    entries = [n for n in names[: max(1, count // 2)] if kinds[n] != "queue"] or [names[0]]
    return {
        "name": f"fuzz-{seed}",
        "seed": seed,
        "simulation": {"duration": 1.0, "warmup": 0.1},
        "traffic": _traffic(rnd, entries, class_names),
        "tiers": tiers,
    }


def load(data: Data) -> Model:
    """The Model of scenario data, through the scenario layer (as `capsim run` reads a file
    in TRACE_FOLDER, where its traces are)."""
    text = yaml.safe_dump(data, sort_keys=False)
    document = parse_yaml_text(text, f"{data['name']}.yaml")
    TRACE_FOLDER.mkdir(exist_ok=True)
    return build_model(scenario_from_document(document, TRACE_FOLDER))


def _peak_load(model: Model, data: Data) -> float:
    """The highest offered load per worker over the tiers, at the classes' peak rates."""
    demand = mean_work(model)
    peaks = [_peak_rate(spec) for spec in data["traffic"].values()]
    loads = [
        sum(peaks[k] * float(demand[k, tier.index]) for k in range(len(peaks))) / tier.workers
        for tier in model.tiers
    ]
    return max(loads)


def _peak_rate(spec: Data) -> float:
    rate = float(spec["rate"])
    process = spec.get("arrivals")
    if isinstance(process, dict) and "mmpp" in process:
        return rate * MMPP_HIGH
    return rate * 2.0 if spec.get("profile") else rate


def _finish(data: Data, scale: float, requests: int) -> Data:
    """Rates scaled by `scale`, profiles written out, the run sized to about `requests`."""
    total = 0.0
    for spec in data["traffic"].values():
        spec["rate"] = float(spec["rate"]) * scale
        total += float(spec["rate"])
    duration = round(max(2.0, requests / max(total, 1e-9)), 1)
    warmup = round(max(0.5, 0.1 * duration), 1)
    for spec in data["traffic"].values():
        rate = float(spec["rate"])
        shape = spec.pop("profile", None)
        if shape == "ramp":
            spec["profile"] = [
                {"at": f"{warmup:.1f}s", "rate": per_second(rate)},
                {"at": f"{warmup + duration / 2:.1f}s", "rate": per_second(2 * rate)},
            ]
        elif shape == "step":
            middle = f"{warmup + duration / 3:.1f}s"
            spec["profile"] = [
                {"at": "0s", "rate": per_second(2 * rate)},
                {"at": middle, "rate": per_second(2 * rate)},
                {"at": middle, "rate": per_second(rate)},
            ]
        spec["rate"] = per_second(rate)
        _arrival_process(spec, rate, duration + warmup)
    data["simulation"] = {"duration": f"{duration:.1f}s", "warmup": f"{warmup:.1f}s"}
    return data


def random_scenario(seed: int, requests: int = 4000) -> Data:
    """A random scenario that both engine paths run, about `requests` requests a replication."""
    rnd = random.Random(seed)
    for _ in range(ATTEMPTS):
        data = _draw(rnd, seed)
        model = load(_finish(_copy(data), 1.0, requests))
        if not can_vectorise(model)[0]:
            continue
        peak = _peak_load(model, data)
        scale = min(1.0, MAX_LOAD / peak) if peak > 0 else 1.0
        return _finish(data, scale, requests)
    raise AssertionError(f"seed {seed}: no vectorisable scenario in {ATTEMPTS} draws")


def _copy(data: Data) -> Data:
    return yaml.safe_load(yaml.safe_dump(data))


# ---- the wide generator: every feature the vectorised path claims ------------------------------
#: Regions of a wide scenario, with their round trip.
REGIONS = ("eu", "us")
RTT = 0.030


def random_wide_scenario(seed: int, requests: int = 4000) -> Data:
    """`random_scenario`'s draw widened with the rest of what both paths run: regions (copies
    of tiers, network delays, writes to a primary), a cdn with an origin shield, LRU and TTL
    hit ratios, sharded databases and caches, affinity, empirical and two-percentile lognormal
    service times, explicit Poisson arrivals, constant arrivals along a rate profile, blocking
    call-free tiers and sizing keys. The
    widening draws from a stream of its own, so `random_scenario(seed)` is unchanged.

    Not drawn: `repeat` on a synchronous callee. Its second call waits for the first one's
    answer from the same tier, which the vectorised path refuses (its processing order), so
    such a scenario always runs on the event path."""
    rnd = random.Random(seed)
    widen = random.Random(seed * 7919 + 17)
    for _ in range(ATTEMPTS):
        data = _draw(rnd, seed)
        _widen(widen, data)
        model = load(_finish(_copy(data), 1.0, requests))
        if not can_vectorise(model)[0]:
            continue
        peak = _model_peak_load(model, data)
        scale = min(1.0, MAX_LOAD / peak) if peak > 0 else 1.0
        return _finish(data, scale, requests)
    raise AssertionError(f"seed {seed}: no vectorisable wide scenario in {ATTEMPTS} draws")


def _model_peak_load(model: Model, data: Data) -> float:
    """The highest offered load per worker over the model's tiers (copies, shards and shields
    included) at peak rates: the model's classes are the scenario's split by region."""
    demand = mean_work(model)
    peak_of = {
        name: _peak_rate(spec) / float(spec["rate"]) for name, spec in data["traffic"].items()
    }
    peaks = []
    for traffic in model.classes:
        base = traffic.name.split("@")[0]
        peaks.append(float(traffic.rate or 0.0) * peak_of.get(base, 2.0))
    return max(
        sum(peaks[k] * float(demand[k, tier.index]) for k in range(len(peaks))) / tier.workers
        for tier in model.tiers
    )


def _widen(rnd: random.Random, data: Data) -> None:
    tiers: Data = data["tiers"]
    for name, tier in tiers.items():
        _widen_tier(rnd, name, tier, tiers)
    for spec in data["traffic"].values():
        if "arrivals" not in spec and rnd.random() < 0.3:
            spec["arrivals"] = "poisson"
        if spec.get("arrivals") == "constant" and rnd.random() < 0.4:
            spec["profile"] = rnd.choice(["ramp", "step"])  # constant arrivals along a profile
    if rnd.random() < 0.35:
        _add_regions(rnd, data)


def _widen_tier(rnd: random.Random, name: str, tier: Data, tiers: Data) -> None:
    kind = tier["type"]
    if "service_time" in tier and rnd.random() < 0.2:
        tier["service_time"] = _odd_distribution(rnd, _service_mean(rnd))
    if kind == "cache" and rnd.random() < 0.5:
        tier["hit_ratio"] = _popularity(rnd)
    if kind == "cache" and rnd.random() < 0.2 and "classes" not in tier:
        tier["shards"] = {"count": rnd.randint(2, 3), "keys": 1000, "zipf": rnd.choice([0.0, 1.0])}
    if kind == "cache" and rnd.random() < 0.3 and "shards" not in tier:
        tier["type"] = "cdn"
        tier["origin_shield"] = {"hit_ratio": round(rnd.uniform(0.2, 0.8), 3)}
        if rnd.random() < 0.5:
            tier["origin_shield"]["service_time"] = ms(0.002)
    if kind == "database" and rnd.random() < 0.25:
        tier["shards"] = {"count": rnd.randint(2, 3), "keys": 1000, "zipf": 1.0}
    if kind == "service" and tier.get("instances", 1) > 1 and rnd.random() < 0.15:
        tier.pop("balancing", None)
        tier["affinity"] = {"by": rnd.choice(["ip_hash", "session"]), "clients": 50, "zipf": 0.5}
    if not _makes_calls(tier) and kind in ("service", "database") and rnd.random() < 0.5:
        tier["blocking"] = True
    if rnd.random() < 0.2 and kind != "load_balancer":
        tier["sizing"] = {"min": 1, "max": 8}


def _call_lists(tier: Data) -> list[list[Any]]:
    lists = [tier["calls"]] if "calls" in tier else []
    lists += [o["calls"] for o in tier.get("classes", {}).values() if "calls" in o]
    return lists


def _makes_calls(tier: Data) -> bool:
    return bool(_call_lists(tier)) or "on_miss" in tier or "backends" in tier


def _odd_distribution(rnd: random.Random, mean: float) -> Any:
    if rnd.random() < 0.5:
        samples = [ms(mean * f) for f in rnd.choice([[0.5, 1.0, 1.5], [0.2, 0.2, 2.6], [1.0]])]
        return {"dist": "empirical", "samples": samples}
    return {"dist": "lognormal", "p50": ms(mean * 0.7), "p99": ms(mean * rnd.choice([3.0, 8.0]))}


def _popularity(rnd: random.Random) -> Data:
    if rnd.random() < 0.5:
        return {"model": "lru", "capacity": rnd.choice([100, 500]), "keys": 2000, "zipf": 0.9}
    return {"model": "ttl", "ttl": "2s", "keys": 2000, "zipf": 0.9, "rate": "200/s"}


def _add_regions(rnd: random.Random, data: Data) -> None:
    """Two regions RTT apart: some tiers in one region only, a primary for a database called
    with `write: true`, classes from both regions by share or pinned to one."""
    data["regions"] = {
        REGIONS[0]: {"share": "60%", "rtt": {REGIONS[1]: ms(RTT)}},
        REGIONS[1]: {"share": "40%"},
    }
    data["routing"] = {"policy": rnd.choice(["geo", "latency", "weighted"])}
    tiers: Data = data["tiers"]
    entries = {spec["entry"] for spec in data["traffic"].values()}
    for name, tier in tiers.items():
        if name not in entries and rnd.random() < 0.3:
            tier["regions"] = [rnd.choice(REGIONS)]
        if tier["type"] == "database" and "shards" not in tier:
            tier["primary"] = rnd.choice(tier.get("regions", REGIONS))
    primaries = [n for n, t in tiers.items() if "primary" in t]
    for tier in tiers.values():
        for steps in _call_lists(tier):
            for index, step in enumerate(steps):
                target = step if isinstance(step, str) else None
                if target in primaries and rnd.random() < 0.8:
                    steps[index] = {"tier": target, "write": True}
    for spec in data["traffic"].values():
        if rnd.random() < 0.3 or isinstance(spec.get("arrivals"), dict):
            spec["region"] = rnd.choice(REGIONS)


# ---- the busy generator: many workers, high load, files, zero publishes ------------------------
#: The busy generator's highest offered load per worker at peak: long queues, many waits.
BUSY_LOAD = 0.9


def random_busy_scenario(seed: int, requests: int = 4000) -> Data:
    """`random_scenario`'s draw made busier, with what the other generators leave out: tiers
    of many workers (up to 8 instances of up to 64 workers: the multi-worker kernel's
    congested stretches and heap loop), loads up to `BUSY_LOAD`, zero publish times (messages
    that join a queue the instant they are sent), traces replayed faster (`speedup`) or once
    (no `loop`: the class stops when the trace ends), profiles read from a file, and service
    times sampled from a file. The widening draws from a stream of its own."""
    rnd = random.Random(seed)
    widen = random.Random(seed * 104729 + 31)
    for _ in range(ATTEMPTS):
        data = _draw(rnd, seed)
        plan = _busy(widen, data, seed)
        model = load(_finish_busy(_finish(_copy(data), 1.0, requests), plan))
        if not can_vectorise(model)[0]:
            continue
        peak = _model_peak_load(model, data)
        scale = min(1.0, BUSY_LOAD / peak) if peak > 0 else 1.0
        return _finish_busy(_finish(data, scale, requests), plan)
    raise AssertionError(f"seed {seed}: no vectorisable busy scenario in {ATTEMPTS} draws")


def _busy(rnd: random.Random, data: Data, seed: int) -> Data:
    """Widens the tiers in place; returns what is written once the run's length is known:
    per class, a profile file (True) or a trace's speedup and loop."""
    for name, tier in data["tiers"].items():
        if tier["type"] != "load_balancer" and rnd.random() < 0.4:
            tier["concurrency"] = rnd.choice([8, 16, 64])
            if tier["type"] != "queue":
                tier["instances"] = rnd.choice([1, 2, 8])
        if tier["type"] == "queue" and rnd.random() < 0.4:
            tier["publish_time"] = ms(0.0)
        if "service_time" in tier and rnd.random() < 0.15:
            tier["service_time"] = {"dist": "empirical", "file": _samples_file(rnd, seed, name)}
    plan: Data = {}
    for name, spec in data["traffic"].items():
        process = spec.get("arrivals")
        if isinstance(process, dict) and "trace" in process:
            plan[name] = {"speedup": rnd.choice([1, 2]), "loop": rnd.random() < 0.6}
        elif "arrivals" not in spec and "profile" not in spec and rnd.random() < 0.25:
            plan[name] = True
    return plan


def _samples_file(rnd: random.Random, seed: int, tier: str) -> str:
    mean = _service_mean(rnd)
    samples = [mean * f for f in rnd.choice([[0.5, 1.0, 1.5], [0.1, 0.1, 0.1, 3.7], [1.0]])]
    TRACE_FOLDER.mkdir(exist_ok=True)
    path = TRACE_FOLDER / f"samples-{seed}-{tier}.txt"
    path.write_text("".join(f"{ms(s)}\n" for s in samples))
    return path.name


def _finish_busy(data: Data, plan: Data) -> Data:
    """The busy draw's files written for the run's length: a profile file (a ramp up, a
    plateau, a ramp down to half), the traces' speedup and loop."""
    warmup = float(data["simulation"]["warmup"].rstrip("s"))
    duration = float(data["simulation"]["duration"].rstrip("s"))
    for name, settings in plan.items():
        spec = data["traffic"][name]
        if settings is True:
            rate = float(spec["rate"].split("/")[0])
            points = [(0.0, rate / 2), (warmup, rate), (warmup + duration / 2, rate)]
            points.append((warmup + duration, rate / 2))
            TRACE_FOLDER.mkdir(exist_ok=True)
            path = TRACE_FOLDER / f"profile-{data['seed']}-{name}-{rate:.6f}.csv"
            path.write_text("at,rate\n" + "".join(f"{at:.3f},{r:.6f}\n" for at, r in points))
            spec["profile"] = {"file": path.name}
            continue
        trace = spec["arrivals"]
        trace["loop"] = settings["loop"]
        if settings["speedup"] != 1:
            trace["speedup"] = settings["speedup"]
            # A faster replay of the same times: written stretched, so the rate stays.
            trace["trace"] = _stretched(trace["trace"], settings["speedup"])
    return data


def _stretched(name: str, factor: float) -> str:
    path = TRACE_FOLDER / name
    times = [float(line) * factor for line in path.read_text().split()]
    stretched = TRACE_FOLDER / f"x{factor:g}-{name}"
    stretched.write_text("".join(f"{t:.6f}\n" for t in times))
    return stretched.name


# ---- the tied generator: everything constant, so every tie is exact --------------------------
#: The tied generator's highest offered load per worker at peak: long busy periods of ties.
TIED_LOAD = 0.9
#: Constant service and publish times of the tied generator: zero, and a few round values whose
#: sums meet (1 + 1 = 2, 2 + 3 = 5 ...), so visits sent along different paths arrive together.
TIED_TIMES = (0.0, 0.001, 0.002, 0.003, 0.005)


def random_tied_scenario(seed: int, requests: int = 4000) -> Data:
    """`random_scenario`'s draw with every time constant: arrivals constant, all classes at one
    rate (so they meet at every instant), service and publish times from `TIED_TIMES` (zero
    included), up to 4 workers per instance, loads up to `TIED_LOAD`. Simultaneous visits then
    meet at every tier along different paths (rounds of publishes, load balancers, parallel
    groups, chains of queues), so the vectorised path must take them in the event path's order
    (its events' order, see `vectorised._Batch`) to agree. Also drawn: `share_over` limits (the
    exact share of slower requests, compared) and a time-series bucket of its own. The widening
    draws from a stream of its own."""
    rnd = random.Random(seed)
    widen = random.Random(seed * 15485863 + 7)
    for _ in range(ATTEMPTS):
        data = _draw(rnd, seed)
        limits, buckets = _tie(widen, data)
        model = load(_finish(_copy(data), 1.0, requests))
        if not can_vectorise(model)[0]:
            continue
        peak = _model_peak_load(model, data)
        scale = min(1.0, TIED_LOAD / peak) if peak > 0 else 1.0
        finished = _finish(data, scale, requests)
        simulation = finished["simulation"]
        simulation["share_over"] = [ms(limit) for limit in limits]
        simulation["timeseries"] = ms(float(simulation["duration"].rstrip("s")) / buckets)
        return finished
    raise AssertionError(f"seed {seed}: no vectorisable tied scenario in {ATTEMPTS} draws")


def _tie(rnd: random.Random, data: Data) -> tuple[list[float], int]:
    """Every time of the draw made constant (in place), the classes at one constant rate;
    returns the `share_over` limits and the number of time-series buckets to ask for."""
    rate = rnd.choice([10.0, 20.0, 50.0])
    entries = _entries(data)
    for k in range(len(data["traffic"]), rnd.randint(2, 3)):
        data["traffic"][f"c{k}"] = {}  # at least two classes, to meet each other
    for spec in data["traffic"].values():
        spec.clear()
        spec.update({"entry": rnd.choice(entries), "arrivals": "constant", "rate": rate})
        if rnd.random() < 0.3:
            spec["profile"] = "step"  # constant arrivals along a step: ties after it too
    for tier in data["tiers"].values():
        _tie_times(rnd, tier)
        for override in tier.get("classes", {}).values():
            _tie_times(rnd, override)
        if tier["type"] not in ("load_balancer", "queue") and rnd.random() < 0.3:
            tier["concurrency"] = rnd.choice([2, 3, 4])
    limits = sorted({rnd.choice([0.001, 0.002, 0.005, 0.010, 0.020]) for _ in range(2)})
    return limits, rnd.choice([7, 30, 120])


def _entries(data: Data) -> list[str]:
    names = list(data["tiers"])
    first = names[: max(1, len(names) // 2)]
    return [n for n in first if data["tiers"][n]["type"] != "queue"] or [names[0]]


def _tie_times(rnd: random.Random, tier: Data) -> None:
    if "service_time" in tier:
        tier["service_time"] = ms(rnd.choice(TIED_TIMES))
    if "publish_time" in tier:
        tier["publish_time"] = ms(rnd.choice(TIED_TIMES[:3]))


# ---- round 5: feature combinations the earlier generators do not draw ---------------------------
def random_round5_scenario(seed: int, requests: int = 4000) -> Data:
    """`random_scenario`'s draw reshaped into combinations the other generators leave out:
    classes with different paths (each class its own entry where there are several, and
    calls of its own at the tiers that make calls), parallel groups followed by sequential
    calls, `one_of` inside a parallel group, a cache (a plain hit ratio) missing to a database
    with replicas, queues with two to four consumers, constant and continuous service times
    mixed at one tier (per class), and traces with equal timestamps (several requests at one
    instant; two classes often replay the same trace, so they meet too). The reshaping draws
    from a stream of its own."""
    rnd = random.Random(seed)
    reshape = random.Random(seed * 104729 + 5)
    for _ in range(ATTEMPTS):
        data = _draw(rnd, seed)
        _round5(reshape, data, seed)
        model = load(_finish(_copy(data), 1.0, requests))
        if not can_vectorise(model)[0]:
            continue
        peak = max(_model_peak_load(model, data), _replica_peak_load(model))
        scale = min(1.0, MAX_LOAD / peak) if peak > 0 else 1.0
        return _finish(data, scale, requests)
    raise AssertionError(f"seed {seed}: no vectorisable round-5 scenario in {ATTEMPTS} draws")


def _round5(rnd: random.Random, data: Data, seed: int) -> None:
    tiers: Data = data["tiers"]
    names = list(tiers)
    for k in range(len(data["traffic"]), rnd.randint(2, 3)):
        data["traffic"][f"c{k}"] = {"entry": names[0], "rate": rnd.choice([5.0, 20.0, 50.0])}
    classes = list(data["traffic"])
    # Last tier first: a tier's calls are drawn knowing where its callees' calls lead.
    for index in reversed(range(len(names))):
        tier = tiers[names[index]]
        callees = names[index + 1 :]
        if tier["type"] == "cache" and "on_miss" in tier:
            _miss_to_replicas(rnd, tiers[tier["on_miss"]])
        if tier["type"] == "queue":
            tier["consumers"] = rnd.randint(2, 4)
        calling = tier["type"] not in ("cache", "load_balancer") and len(callees) >= 2
        if calling and rnd.random() < 0.7:
            tier["calls"] = _fan_then_sequence(rnd, callees, tiers)
            tier["blocking"] = False
        _class_paths(rnd, tier, callees, classes, tiers)
    _own_entries(rnd, data, names)
    shared = rnd.randrange(10**9)
    for spec in data["traffic"].values():
        if not isinstance(spec.get("arrivals"), dict) and rnd.random() < 0.4:
            spec.pop("profile", None)
            spec.pop("arrivals", None)
            trace = shared if rnd.random() < 0.6 else rnd.randrange(10**9)
            spec["arrivals"] = {"tied_trace": trace}


def _below(tiers: Data, name: str) -> set[str]:
    """`name` and every tier its calls (of any class) can reach."""
    found: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        tier = tiers[current]
        stack.extend(t for t in (tier.get("on_miss"), tier.get("backends")) if t)
        for calls in _call_lists(tier):
            stack.extend(_targets(calls))
    return found


def _targets(steps: Any) -> list[str]:
    if isinstance(steps, str):
        return [steps]
    if isinstance(steps, list):
        return [t for step in steps for t in _targets(step)]
    if isinstance(steps, dict):
        if "tier" in steps:
            return [steps["tier"]]
        if "one_of" in steps:
            return list(steps["one_of"])
        if "parallel" in steps:
            return _targets(steps["parallel"])
    return []


def _replica_peak_load(model: Model) -> float:
    """The highest offered load per worker over the primaries and the replicas of the
    databases, at peak rates: reads go to the replicas only, so a high read ratio with few
    replicas overloads them while the tier as a whole looks lightly loaded (found: seed 5023,
    the replica of a database at 186% while the tier was at 47%)."""
    demand = mean_work(model)
    peaks = [_class_peak(traffic) for traffic in model.classes]
    loads = [0.0]
    for tier in model.tiers:
        if tier.kind != "database" or tier.replicas == 0:
            continue
        reads = [w.read_ratio for w in tier.work]
        for share, servers in ((reads, tier.replicas), ([1.0 - r for r in reads], tier.instances)):
            offered = sum(p * float(demand[k, tier.index]) * share[k] for k, p in enumerate(peaks))
            loads.append(offered / (servers * tier.concurrency))
    return max(loads)


def _class_peak(traffic: Any) -> float:
    """A class's highest rate: its rate, its profile's highest point, an MMPP's busy state."""
    rates = [float(traffic.rate or 0.0)] + [point.rate for point in traffic.profile]
    rates += list(getattr(traffic.process, "rates", []) or [])
    return max(rates)


def _miss_to_replicas(rnd: random.Random, target: Data) -> None:
    """The cache's origin made a database with read replicas (a service becomes one)."""
    if target["type"] not in ("service", "database"):
        return
    target["type"] = "database"
    target["replicas"] = rnd.randint(1, 2)
    target["read_ratio"] = round(rnd.uniform(0.5, 0.95), 3)
    target.pop("balancing", None) if rnd.random() < 0.5 else None


def _fan_then_sequence(rnd: random.Random, callees: list[str], tiers: Data) -> list[Any]:
    """A parallel group (often with a `one_of` branch), then one or two sequential calls to
    tiers the group's answers do not depend on (else only the event path could run it)."""
    fan: list[Any] = []
    for _ in range(rnd.randint(1, 2)):
        if len(callees) >= 2 and rnd.random() < 0.6:
            options = rnd.sample(callees, 2)
            first = round(rnd.uniform(0.2, 0.7), 3)
            fan.append({"one_of": {options[0]: first, options[1]: round(0.95 - first, 3)}})
        else:
            fan.append(rnd.choice(callees))
    steps: list[Any] = [{"parallel": fan}]
    used = set().union(*(_below(tiers, t) for t in _targets(fan)))
    for _ in range(rnd.randint(1, 2)):
        free = [t for t in callees if not _below(tiers, t) & used]
        if not free:
            break
        target = rnd.choice(free)
        used |= _below(tiers, target)
        steps.append(target if rnd.random() < 0.6 else {"tier": target, "probability": 0.5})
    return steps


def _class_paths(
    rnd: random.Random, tier: Data, callees: list[str], classes: list[str], tiers: Data
) -> None:
    """Per class: its own calls (another path through the tiers) and its own kind of service
    time (constant beside continuous ones at one tier)."""
    if tier["type"] == "load_balancer":
        return
    overrides: Data = tier.setdefault("classes", {})
    for position, name in enumerate(classes):
        override = overrides.setdefault(name, {})
        mean = _service_mean(rnd)
        if position % 2 == 0:
            override["service_time"] = ms(mean)
        else:
            override["service_time"] = {"dist": "exponential", "mean": ms(mean)}
        if callees and tier["type"] != "cache" and rnd.random() < 0.5:
            if len(callees) >= 2 and rnd.random() < 0.5:
                override["calls"] = _fan_then_sequence(rnd, callees, tiers)
            else:
                override["calls"] = [rnd.choice(callees)]
            tier["blocking"] = False


def _own_entries(rnd: random.Random, data: Data, names: list[str]) -> None:
    """Each class enters at a tier of its own where the first half offers several."""
    tiers = data["tiers"]
    entries = [n for n in names[: max(1, len(names) // 2)] if tiers[n]["type"] != "queue"]
    rnd.shuffle(entries)
    for position, spec in enumerate(data["traffic"].values()):
        if entries:
            spec["entry"] = entries[position % len(entries)]


def _write_tied_trace(seed: int, rate: float, length: float) -> str:
    """Timestamps at `rate` on average over `length` seconds, each instant shared by one to
    three requests, written to the millisecond (so nearby ones meet too)."""
    rnd = random.Random(seed)
    times: list[float] = []
    clock = 0.0
    while clock < length or not times:
        clock += rnd.expovariate(rate / 2.0)
        times.extend([round(clock, 3)] * rnd.choice([1, 1, 2, 3]))
    TRACE_FOLDER.mkdir(exist_ok=True)
    path = TRACE_FOLDER / f"tied-trace-{seed}-{rate:.6f}-{length:.1f}.txt"
    path.write_text("".join(f"{t:.3f}\n" for t in times))
    return path.name
