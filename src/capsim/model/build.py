"""Turn a validated `Scenario` into the frozen, index-based `Model` the engine runs."""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import numpy as np

from capsim.errors import ScenarioError
from capsim.model.distributions import Distribution
from capsim.model.partitions import partition_tiers
from capsim.model.providers import split_entries
from capsim.model.regions import place_in_regions
from capsim.model.types import (
    ArrivalProcess,
    Autoscale,
    BatchArrivals,
    Call,
    CircuitBreaker,
    ColdLru,
    ConsumerScaling,
    Fault,
    HealthCheck,
    Hedge,
    LoseRule,
    MmppArrivals,
    Model,
    OneOf,
    Parallel,
    Pool,
    Pricing,
    ProfilePoint,
    RateLimit,
    Retry,
    Simulation,
    Sizing,
    Slo,
    Step,
    Tier,
    TraceArrivals,
    TrafficClass,
    TtlHits,
    Work,
    slo_value_text,
)
from capsim.model.visits import expected_visits
from capsim.scenario import Scenario, check_scenario
from capsim.scenario.schema import (
    AnyTier,
    AutoscaleSpec,
    BatchArrivalsSpec,
    CacheTier,
    CallSpec,
    CdnTier,
    ConstantDist,
    ConstantSize,
    CostSpec,
    DatabaseTier,
    EmpiricalDist,
    EmpiricalSize,
    ExponentialDist,
    ForwardCall,
    GammaDist,
    GeometricSize,
    HealthCheckSpec,
    LoadBalancerTier,
    LognormalDist,
    LruModel,
    MmppArrivalsSpec,
    OneOfCall,
    ParallelCall,
    QueueAutoscaleSpec,
    QueueTier,
    RateLimitSpec,
    ShareOverSpec,
    TierCall,
    TraceArrivalsSpec,
    TrafficSpec,
    TtlModel,
    UniformDist,
    forward_target,
)
from capsim.units import format_duration, format_ratio

#: Tier types whose workers are held while their calls are outstanding unless `blocking: false`:
#: a thread-per-request service, and a queue consumer that handles one message at a time.
BLOCKING_BY_DEFAULT = ("service", "queue")

EXACT_KEYS = (
    1_000_000  # beyond this many keys Che's sum is split into an exact head and an integral
)


# ---- cache hit ratio: Che's approximation ------------------------------------------------------
def _tail_nodes(
    start: float, stop: float, panels: int = 64, order: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights for integrating over x in [start, stop], on a log scale."""
    base_x, base_w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(math.log(start), math.log(stop), panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2.0
    middle = (edges[1:] + edges[:-1])[:, None] / 2.0
    u = (middle + half * base_x[None, :]).ravel()
    w = (half * base_w[None, :]).ravel()
    x = np.exp(u)
    return x, w * x  # dx = x du


@functools.lru_cache(maxsize=256)
def che_hit_ratio(capacity: float, keys: float, zipf: float, exact_keys: int = EXACT_KEYS) -> float:
    """Hit ratio of an LRU cache of `capacity` items under IRM with Zipf(`zipf`) popularity.

    Remembered (a pure function of its arguments): checking and building a scenario ask for
    the same cache's ratio several times, and each answer costs tens of milliseconds.

    Che's approximation: t solves sum_i (1 - exp(-p_i t)) = capacity, and the hit ratio is
    sum_i p_i (1 - exp(-p_i t)). The first `exact_keys` keys are summed exactly; the rest of a
    larger catalogue is an integral over x in [exact_keys + 1/2, keys + 1/2] (midpoint rule),
    so no per-key array larger than `exact_keys` is ever made.
    """
    keys = math.floor(keys)
    if capacity >= keys:
        return 1.0
    head = np.arange(1, min(keys, exact_keys) + 1, dtype=float) ** -zipf
    if keys > exact_keys:
        x, w = _tail_nodes(exact_keys + 0.5, keys + 0.5)
        tail, tail_w = x**-zipf, w
    else:
        tail, tail_w = np.zeros(0), np.zeros(0)
    total = head.sum() + float(np.dot(tail, tail_w))
    p_head, p_tail = head / total, tail / total
    # Scratch arrays of the head's size (up to `exact_keys` numbers), reused at every step: the
    # same operations on the same numbers as fresh temporaries, so the same result, without
    # allocating and first touching megabytes at each step (about a third of the time).
    e_head, spare = np.empty_like(p_head), np.empty_like(p_head)

    def head_survivals(t: float) -> np.ndarray:
        """exp(-p_head * t), into `e_head` (-p * t and p * -t are the same number)."""
        return np.exp(np.multiply(p_head, -t, out=e_head), out=e_head)

    def occupancy(t: float) -> tuple[float, float]:
        e_head, e_tail = head_survivals(t), np.exp(-p_tail * t)
        value = float(np.sum(np.subtract(1.0, e_head, out=spare)) + np.dot(1.0 - e_tail, tail_w))
        slope = float(np.dot(p_head, e_head) + np.dot(p_tail * e_tail, tail_w))
        return value - capacity, slope

    # The occupancy is increasing and concave in t and at most t, so Newton's method started at
    # t = capacity (left of the root) climbs monotonically to the root without overshooting.
    t = float(capacity)
    for _ in range(1000):
        value, slope = occupancy(t)
        if slope <= 0.0:
            break
        step = -value / slope
        t += step
        if abs(step) <= 1e-13 * t:
            break
    hit = float(
        np.dot(p_head, np.subtract(1.0, head_survivals(t), out=spare))
        + np.dot(p_tail * (1.0 - np.exp(-p_tail * t)), tail_w)
    )
    return min(max(hit, 0.0), 1.0)


def ttl_hit_ratio(
    rate: float, ttl: float, keys: float, zipf: float, reset_on_hit: bool = False
) -> float:
    """Hit ratio of a TTL cache: Poisson requests at `rate` over Zipf(`zipf`) keys.

    Key i gets rate * p_i. A timer set on a miss and not refreshed by hits (`reset_on_hit`
    false: cache-aside SET EX, HTTP max-age) hits with probability x / (1 + x), x = rate_i * ttl
    (Jung, Berger & Balakrishnan 2003); a timer restarted by every request with 1 - exp(-x)
    (Fofack et al. 2014). The overall hit ratio weights each key by p_i.
    """
    keys = math.floor(keys)
    head = np.arange(1, min(keys, EXACT_KEYS) + 1, dtype=float) ** -zipf
    if keys > EXACT_KEYS:
        x, w = _tail_nodes(EXACT_KEYS + 0.5, keys + 0.5)
        tail, tail_w = x**-zipf, w
    else:
        tail, tail_w = np.zeros(0), np.zeros(0)
    total = head.sum() + float(np.dot(tail, tail_w))
    p_head, p_tail = head / total, tail / total

    def hit(p: np.ndarray) -> np.ndarray:
        x = rate * p * ttl
        return -np.expm1(-x) if reset_on_hit else x / (1.0 + x)

    value = float(np.dot(p_head, hit(p_head)) + np.dot(p_tail * hit(p_tail), tail_w))
    return min(max(value, 0.0), 1.0)


def hit_ratio_of(setting: float | LruModel | TtlModel, rate: float | None = None) -> float:
    """A hit-ratio setting as a number: the ratio itself, Che's value for an LRU model, or the
    TTL formula at `setting.rate` or else `rate` (the requests reaching the cache; none: 0)."""
    if isinstance(setting, TtlModel):
        requests = setting.rate if setting.rate is not None else rate
        if not requests:
            return 0.0
        return ttl_hit_ratio(
            requests, setting.ttl, setting.keys, setting.zipf, setting.reset_on_hit
        )
    if isinstance(setting, LruModel):
        return che_hit_ratio(setting.capacity, setting.keys, setting.zipf)
    return float(setting)


# ---- distributions and calls -------------------------------------------------------------------
DistSpec = (
    float | ConstantDist | ExponentialDist | LognormalDist | GammaDist | UniformDist | EmpiricalDist
)


def build_distribution(spec: DistSpec) -> Distribution:
    """The model distribution of a scenario distribution (a bare duration is a constant)."""
    if isinstance(spec, ConstantDist):
        return Distribution.constant(spec.value)
    if isinstance(spec, ExponentialDist):
        return Distribution.exponential(spec.mean)
    if isinstance(spec, LognormalDist):
        if spec.p50 is not None and spec.p99 is not None:
            return Distribution.lognormal_from_percentiles(spec.p50, spec.p99)
        assert spec.mean is not None and spec.cv is not None
        return Distribution.lognormal(spec.mean, spec.cv)
    if isinstance(spec, GammaDist):
        return Distribution.gamma(spec.mean, spec.cv)
    if isinstance(spec, UniformDist):
        return Distribution.uniform(spec.min, spec.max)
    if isinstance(spec, EmpiricalDist):
        return Distribution.empirical(np.asarray(spec.values, dtype=float))
    return Distribution.constant(float(spec))


def _hedge(call: TierCall | ForwardCall) -> Hedge | None:
    spec = call.hedge
    if spec is None:
        return None
    if spec.quantile is not None:
        return Hedge(max=spec.max, quantile=spec.quantile)
    assert isinstance(spec.after, float)
    return Hedge(max=spec.max, after=spec.after)


def _guarded_call(
    call: TierCall | ForwardCall, tier: int, probability: float = 1.0, repeat: int = 1
) -> Call:
    """A model call to `tier` with the timeout, retries, breaker, bulkhead and hedge of `call`."""
    retry = None
    if call.retries is not None:
        spec = call.retries
        retry = Retry(
            max=spec.max,
            backoff=spec.backoff,
            base=spec.base,
            cap=spec.cap,
            jitter=spec.jitter,
            budget=spec.budget,
        )
    breaker = None
    if call.circuit_breaker is not None:
        b = call.circuit_breaker
        breaker = CircuitBreaker(
            error_rate=b.error_rate,
            window=b.window,
            min_calls=b.min_calls,
            open_for=b.open_for,
            probes=b.probes,
        )
    return Call(
        tier,
        probability=probability,
        repeat=repeat,
        timeout=call.timeout,
        retry=retry,
        circuit_breaker=breaker,
        bulkhead=call.bulkhead,
        hedge=_hedge(call),
    )


def _forward_call(
    forward: str | ForwardCall, tier_index: dict[str, int], probability: float = 1.0
) -> Call:
    """A cache's miss call or a load balancer's backend call: a plain name or a call mapping."""
    if isinstance(forward, str):
        return Call(tier_index[forward], probability=probability)
    return _guarded_call(forward, tier_index[forward.tier], probability)


def _build_step(call: CallSpec, tier_index: dict[str, int]) -> Step:
    if isinstance(call, str):
        return Call(tier_index[call])
    if isinstance(call, TierCall):
        return replace(
            _guarded_call(call, tier_index[call.tier], call.probability, call.repeat),
            write=call.write,
        )
    if isinstance(call, OneOfCall):
        return OneOf(tuple((tier_index[name], weight) for name, weight in call.one_of.items()))
    assert isinstance(call, ParallelCall)
    return Parallel(tuple(_build_step(branch, tier_index) for branch in call.parallel))


# ---- tiers -------------------------------------------------------------------------------------
def _works(
    tier: AnyTier,
    classes: list[str],
    tier_index: dict[str, int],
    prefix: tuple[Step, ...] = (),
) -> tuple[Work, ...]:
    """One Work per class: the tier's defaults with that class's overrides applied."""
    works = []
    for class_name in classes:
        override = tier.classes.get(class_name)
        service = getattr(override, "service_time", None)
        service = tier.service_time if service is None else service
        calls = getattr(override, "calls", None)
        calls = getattr(tier, "calls", []) if calls is None else calls
        read_ratio = 1.0
        if isinstance(tier, DatabaseTier):
            override_ratio = getattr(override, "read_ratio", None)
            read_ratio = tier.read_ratio if override_ratio is None else override_ratio
        steps = prefix + tuple(_build_step(call, tier_index) for call in calls)
        works.append(Work(build_distribution(service), steps, read_ratio))
    return tuple(works)


def _health_check(spec: HealthCheckSpec | None) -> HealthCheck | None:
    if spec is None:
        return None
    return HealthCheck(spec.interval, spec.unhealthy_after, spec.healthy_after)


def _initial_instances(spec: AnyTier) -> int:
    """`instances`, or an autoscaled tier's `min` when `instances` is not given."""
    if isinstance(spec, QueueTier):
        return 1
    scaler = spec.autoscale
    if scaler is not None and "instances" not in spec.model_fields_set:
        return int(scaler.min)
    return int(spec.instances)


def _priorities(order: list[str] | None, classes: list[str]) -> tuple[int, ...]:
    """Each class's level: its place in `priorities`; classes left out come last, together."""
    if not order:
        return ()
    return tuple(order.index(name) if name in order else len(order) for name in classes)


def _rate_limit(spec: RateLimitSpec | None) -> RateLimit | None:
    return None if spec is None else RateLimit(spec.rate, spec.burst)


def _autoscale(spec: AutoscaleSpec | None, initial: int) -> Autoscale | None:
    if spec is None:
        return None
    assert spec.max is not None  # the schema sets it from max_instances when that is given
    return Autoscale(
        max=spec.max,
        metric=spec.metric,
        target=spec.target,
        min=spec.min,
        sync_period=spec.sync_period,
        scale_up_stabilization=spec.scale_up_stabilization,
        scale_down_stabilization=spec.scale_down_stabilization,
        tolerance=spec.tolerance,
        max_scale_up=spec.max_scale_up,
        max_scale_up_instances=spec.max_scale_up_instances,
        startup_time=spec.startup_time,
        cooldown=spec.cooldown,
        scale_up_period=spec.scale_up_period,
        scale_up_select=spec.scale_up_select,
        scale_to_zero=spec.scale_to_zero,
        cold_start=spec.cold_start,
        keep_warm=spec.keep_warm,
        initial=initial if spec.scale_to_zero else None,
    )


def _consumer_scaling(spec: QueueTier) -> ConsumerScaling | None:
    """A queue's KEDA-style scaler; its tier then has `max` consumers' workers, of which
    `initial` run at t = 0 (`consumers` if given, else `min`)."""
    scaler: QueueAutoscaleSpec | None = spec.autoscale
    if scaler is None:
        return None
    initial = spec.consumers if "consumers" in spec.model_fields_set else scaler.min
    return ConsumerScaling(
        metric=scaler.metric,
        target=scaler.target,
        min=scaler.min,
        max=scaler.max,
        initial=initial,
        per_consumer=spec.concurrency,
        polling_interval=scaler.polling_interval,
        cooldown_period=scaler.cooldown_period,
        tolerance=scaler.tolerance,
        scale_down_stabilization=scaler.scale_down_stabilization,
        startup_time=scaler.startup_time,
        activation_threshold=scaler.activation_threshold,
        max_scale_up=scaler.max_scale_up,
        max_scale_up_instances=scaler.max_scale_up_instances,
        scale_up_period=scaler.scale_up_period,
        scale_up_select=scaler.scale_up_select,
    )


def _build_faults(scenario: Scenario, tiers: list[Tier]) -> list[Fault]:
    """Each fault on each tier it touches; a zone fault touches every tier with that zone."""
    by_name = {tier.name: tier for tier in tiers}
    faults: list[Fault] = []
    for spec in scenario.faults:
        if spec.region is not None:
            continue  # a region lost: model/regions.py, with the tiers' copies
        until = spec.at + spec.for_ if spec.for_ is not None else None
        span = f" for {format_duration(spec.for_)}" if spec.for_ is not None else ""
        when = f"at {format_duration(spec.at)}{span}"
        if spec.zone is not None:
            rule = LoseRule(zone=spec.zone)
            for tier in tiers:
                lost = rule.servers(tier.servers, tier.zones)
                if lost:
                    text = f"zone {spec.zone} lost {when}"
                    faults.append(
                        Fault(spec.at, until, tier.index, lose=lost, text=text, losing=rule)
                    )
            continue
        assert spec.tier is not None
        tier = by_name[spec.tier]
        if spec.lose is not None:
            count = spec.lose if isinstance(spec.lose, int) else round(spec.lose * tier.servers)
            rule = (
                LoseRule(count=spec.lose)
                if isinstance(spec.lose, int)
                else LoseRule(share=spec.lose)
            )
            lost = rule.servers(tier.servers)
            text = f"{tier.name} loses {count} of {tier.servers} instances {when}"
            faults.append(Fault(spec.at, until, tier.index, lose=lost, text=text, losing=rule))
        elif spec.error_rate is not None:
            text = f"{tier.name} answers {format_ratio(spec.error_rate)} errors {when}"
            faults.append(Fault(spec.at, until, tier.index, error_rate=spec.error_rate, text=text))
        else:
            assert spec.slowdown is not None
            text = f"{tier.name} slows down {spec.slowdown:g}x {when}"
            faults.append(Fault(spec.at, until, tier.index, slowdown=spec.slowdown, text=text))
    return faults


def _needs_rates(scenario: Scenario) -> bool:
    """A TTL hit-ratio model without its own `rate` somewhere."""
    for spec in scenario.tiers.values():
        settings = [getattr(spec, "hit_ratio", None)]
        shield = getattr(spec, "origin_shield", None)
        if shield is not None:
            settings.append(shield.hit_ratio)
        if any(isinstance(s, TtlModel) and s.rate is None for s in settings):
            return True
    return False


def _request_rates(
    tiers: list[Tier], classes: list[TrafficClass], horizon: float
) -> dict[str, float]:
    """Requests per second reaching each tier (forced flow: class rates x expected visits).

    A profile counts at its mean over the run; a closed class at users / think time (its most).
    """
    provisional = Model(
        name="rates", seed=0, simulation=Simulation(), classes=tuple(classes), tiers=tuple(tiers)
    )
    visits = expected_visits(provisional)
    rates = np.zeros(len(tiers))
    for traffic in classes:
        if traffic.is_closed:
            think = traffic.think_time.mean if traffic.think_time is not None else 0.0
            rate = (traffic.users or 0) / think if think > 0 else 0.0
        elif traffic.profile:
            times = np.linspace(0.0, horizon, 2001)
            rate = float(np.mean([traffic.rate_at(t) for t in times]))
        else:
            rate = float(traffic.rate or 0.0)
        rates += rate * visits[traffic.index]
    return {tier.name: float(rates[tier.index]) for tier in tiers}


def _tier_names(scenario: Scenario) -> list[str]:
    """Tier names in index order: each cdn's origin shield right after the cdn."""
    names: list[str] = []
    for name, tier in scenario.tiers.items():
        names.append(name)
        if isinstance(tier, CdnTier) and tier.origin_shield is not None:
            names.append(f"{name}.origin_shield")
    return names


def _sizing(spec: AnyTier) -> Sizing | None:
    """The model form of a tier's `sizing` key (None when the tier has none)."""
    if spec.sizing is None:
        return None
    queue = isinstance(spec, QueueTier)
    default_of = "consumers" if queue else "instances"
    if spec.sizing == "fixed":
        return Sizing(of=default_of, fixed=True)
    of = spec.sizing.of or default_of
    return Sizing(of=of, min=spec.sizing.min, max=spec.sizing.max)


def _pricing(spec: CostSpec | None) -> Pricing | None:
    """A tier's `cost` as its Pricing (docs/cost.md); memory in GB of 2^30 bytes, as billed."""
    if spec is None:
        return None
    return Pricing(
        on_demand=spec.per_instance_hour,
        reserved=spec.reserved.instances if spec.reserved is not None else 0,
        reserved_discount=spec.reserved.discount if spec.reserved is not None else 0.0,
        spot_discount=spec.spot.discount if spec.spot is not None else None,
        interruption_rate=spec.spot.interruption_rate if spec.spot is not None else 0.0,
        replace_after=spec.spot.replace_after if spec.spot is not None else 0.0,
        per_million_requests=spec.per_million_requests,
        per_gb_second=spec.per_gb_second,
        memory_gb=(spec.memory or 0.0) / 2**30,
        per_gb=spec.per_gb,
    )


def _build_tiers(
    scenario: Scenario,
    tier_index: dict[str, int],
    classes: list[str],
    rates: dict[str, float] | None = None,
) -> list[Tier]:
    """The model's tiers; `rates` gives TTL caches their request rate (by tier name)."""
    tiers: list[Tier] = []
    for name, spec in scenario.tiers.items():
        index = tier_index[name]
        blocking = spec.blocking if spec.blocking is not None else spec.type in BLOCKING_BY_DEFAULT
        cost = spec.cost.per_instance_hour if spec.cost is not None else None
        pricing = _pricing(spec.cost)
        sizing = _sizing(spec)
        if isinstance(spec, QueueTier):
            scaling = _consumer_scaling(spec)
            consumers = scaling.max if scaling is not None else spec.consumers
            tiers.append(
                Tier(
                    name=name,
                    index=index,
                    kind=spec.type,
                    instances=1,
                    concurrency=consumers * spec.concurrency,
                    blocking=blocking,
                    balancing="round_robin",
                    work=_works(spec, classes, tier_index),
                    max_queue=spec.max_depth,
                    timeout=spec.timeout,
                    publish_time=build_distribution(spec.publish_time),
                    consumers=consumers,
                    consumer_scaling=scaling,
                    rate_limit=_rate_limit(spec.rate_limit),
                    queue_discipline=spec.queue_discipline,
                    priorities=_priorities(spec.priorities, classes),
                    max_retries=spec.max_retries,
                    batch_size=spec.batch.size if spec.batch is not None else 1,
                    batch_linger=spec.batch.linger if spec.batch is not None else 0.0,
                    partitions=spec.partitions,
                    cost_per_instance_hour=cost,
                    pricing=pricing,
                    sizing=sizing,
                )
            )
            continue
        base = Tier(
            name=name,
            index=index,
            kind=spec.type,
            instances=max(_initial_instances(spec), 1),  # a serverless tier may start at 0
            concurrency=spec.concurrency,
            blocking=blocking,
            balancing=spec.balancing,
            work=(),
            max_queue=spec.max_queue,
            timeout=spec.timeout,
            cost_per_instance_hour=cost,
            pricing=pricing,
            sizing=sizing,
            zones=tuple(spec.zones or ()),
            health_check=_health_check(spec.health_check),
            autoscale=_autoscale(spec.autoscale, _initial_instances(spec)),
            rate_limit=_rate_limit(spec.rate_limit),
            queue_discipline=spec.queue_discipline,
            drop_abandoned=spec.drop_abandoned,
            priorities=_priorities(spec.priorities, classes),
        )
        if isinstance(spec, LoadBalancerTier):
            backend = _forward_call(spec.backends, tier_index)
            forward = (replace(backend, algorithm=spec.algorithm),)
            tiers.append(replace(base, work=_works(spec, classes, tier_index, forward)))
        elif isinstance(spec, (CacheTier, CdnTier)):
            tiers.extend(_cache_tiers(base, spec, classes, tier_index, rates or {}))
        elif isinstance(spec, DatabaseTier):
            pool = None
            if spec.pool is not None:
                pool = Pool(spec.pool.size, spec.pool.max_waiting, spec.pool.timeout)
            work = _works(spec, classes, tier_index)
            tiers.append(replace(base, work=work, replicas=spec.replicas, pool=pool))
        else:
            tiers.append(replace(base, work=_works(spec, classes, tier_index)))
    return tiers


def _edge_hit_ratio(setting: float | LruModel | TtlModel, rate: float | None, edges: int) -> float:
    """The hit ratio of each of `edges` equal caches sharing the requests evenly: a TTL cache at
    1/edges of the rate; an LRU's (Che's) does not depend on the rate; a number is as given."""
    if edges > 1 and isinstance(setting, TtlModel):
        total = setting.rate if setting.rate is not None else rate
        return hit_ratio_of(setting.model_copy(update={"rate": (total or 0.0) / edges}))
    return hit_ratio_of(setting, rate)


def _ttl_hits(setting: float | LruModel | TtlModel) -> TtlHits | None:
    """A TTL model whose rate is the requests reaching the cache (not pinned by `rate`)."""
    if isinstance(setting, TtlModel) and setting.rate is None:
        return TtlHits(setting.ttl, setting.keys, setting.zipf, setting.reset_on_hit)
    return None


def follow_load(model: Model) -> Model:
    """`model` with each TTL cache's hit ratio recomputed at the requests its classes now send
    (after `--load` or a search point scaled them), settled as `build_model` settles it."""
    if not any(t.ttl_hits is not None for t in model.tiers):
        return model
    tiers = list(model.tiers)
    for _ in range(len(tiers)):
        rates = _request_rates(tiers, list(model.classes), model.horizon)
        tiers = [_with_ttl_hit_ratio(t, rates[t.name]) for t in tiers]
    return replace(model, tiers=tuple(tiers))


def _with_ttl_hit_ratio(tier: Tier, rate: float) -> Tier:
    """`tier` with its TTL hit ratio (and the miss call's probability) at `rate` requests/s."""
    setting = tier.ttl_hits
    if setting is None or tier.hit_ratio is None:
        return tier
    per_edge = rate / max(tier.edges, 1)
    hit = (
        ttl_hit_ratio(per_edge, setting.ttl, setting.keys, setting.zipf, setting.reset_on_hit)
        if per_edge > 0
        else 0.0
    )
    work = tuple(replace(w, calls=_miss_call_at(w.calls, tier, hit)) for w in tier.work)
    return replace(tier, hit_ratio=hit, work=work)


def _miss_call_at(calls: tuple[Step, ...], tier: Tier, hit: float) -> tuple[Step, ...]:
    """`calls` whose first step, the call made on a miss, has probability 1 - `hit`."""
    first = calls[0] if calls else None
    miss = 1.0 - (tier.hit_ratio or 0.0)
    if not isinstance(first, Call) or first.tier != tier.on_miss or first.probability != miss:
        return calls
    return (replace(first, probability=1.0 - hit), *calls[1:])


def _cold_lru(setting: float | LruModel | TtlModel) -> ColdLru | None:
    if isinstance(setting, LruModel) and setting.cold:
        return ColdLru(setting.capacity, setting.keys, setting.zipf)
    return None


def _cache_tiers(
    base: Tier,
    spec: CacheTier | CdnTier,
    classes: list[str],
    tier_index: dict[str, int],
    rates: dict[str, float],
) -> list[Tier]:
    """A cache or cdn tier, and the cdn's origin shield right after it when it has one."""
    edges = spec.edges if isinstance(spec, CdnTier) else 1
    hit = _edge_hit_ratio(spec.hit_ratio, rates.get(base.name), edges)
    shield = spec.origin_shield if isinstance(spec, CdnTier) else None
    origin = tier_index[forward_target(spec.on_miss) or ""] if spec.on_miss is not None else None
    miss_target = base.index + 1 if shield is not None else origin
    cold = _cold_lru(spec.hit_ratio)
    prefix: tuple[Step, ...] = ()
    if (hit < 1.0 or cold is not None) and miss_target is not None:
        # A cold cache's engine decides each miss itself; the probability is its steady state.
        # With an origin shield, the call settings of `on_miss` are those of the shield's call
        # to the origin (the cdn's call to its own shield is plain).
        if shield is None and spec.on_miss is not None:
            prefix = (_forward_call(spec.on_miss, tier_index, 1.0 - hit),)
        else:
            prefix = (Call(miss_target, probability=1.0 - hit),)
    work = _works(spec, classes, tier_index, prefix)
    tiers = [
        replace(
            base,
            work=work,
            hit_ratio=hit,
            on_miss=miss_target,
            cold_lru=cold,
            edges=edges,
            ttl_hits=_ttl_hits(spec.hit_ratio),
        )
    ]
    if shield is not None:
        shield_hit = hit_ratio_of(shield.hit_ratio, rates.get(f"{base.name}.origin_shield"))
        # An origin shield runs the same CDN software: its lookup costs the cdn's by default.
        service = shield.service_time if shield.service_time is not None else spec.service_time
        shield_cold = _cold_lru(shield.hit_ratio)
        calls: tuple[Step, ...] = ()
        if (shield_hit < 1.0 or shield_cold is not None) and spec.on_miss is not None:
            calls = (_forward_call(spec.on_miss, tier_index, 1.0 - shield_hit),)
        tiers.append(
            replace(
                base,
                name=f"{base.name}.origin_shield",
                index=base.index + 1,
                kind="cache",
                work=tuple(Work(build_distribution(service), calls) for _ in classes),
                max_queue=None,
                timeout=None,
                hit_ratio=shield_hit,
                on_miss=origin,
                cold_lru=shield_cold,
                ttl_hits=_ttl_hits(shield.hit_ratio),
                synthetic=True,
                cost_per_instance_hour=None,  # priced and sized with its cdn
                sizing=None,
                zones=(),
                health_check=None,
                autoscale=None,
                rate_limit=None,
                queue_discipline="fifo",
                drop_abandoned=False,
                priorities=(),
            )
        )
    return tiers


# ---- traffic and SLOs --------------------------------------------------------------------------
def _build_classes(scenario: Scenario, tier_index: dict[str, int]) -> list[TrafficClass]:
    classes = []
    for index, (name, spec) in enumerate(scenario.traffic.items()):
        profile = tuple(ProfilePoint(at, rate) for at, rate in spec.profile_points)
        rate = spec.rate if spec.rate is not None else (profile[0].rate if profile else None)
        process = _arrival_process(spec)
        if process is not None:
            rate = process.mean_rate
        classes.append(
            TrafficClass(
                name=name,
                index=index,
                entry=tier_index[spec.first_entry],  # a split: model/regions.py
                rate=None if spec.users is not None else rate,
                arrivals=spec.arrival_kind,  # type: ignore[arg-type]
                profile=profile,
                users=spec.users,
                think_time=build_distribution(spec.think_time)
                if spec.think_time is not None
                else None,
                process=process,
                response_size=spec.response_size or 0.0,
            )
        )
    return classes


def _arrival_process(spec: TrafficSpec) -> ArrivalProcess | None:
    """The model of a trace, MMPP or batch `arrivals:` (None for poisson and constant)."""
    arrivals = spec.arrivals
    if isinstance(arrivals, TraceArrivalsSpec):
        times = np.asarray(arrivals.times, dtype=np.float64) / arrivals.speedup
        return TraceArrivals(times=times, loop=arrivals.loop, source=arrivals.trace)
    if isinstance(arrivals, MmppArrivalsSpec):
        mmpp = arrivals.mmpp
        return MmppArrivals(
            rates=(mmpp.rates[0], mmpp.rates[1]),
            mean_sojourn=(mmpp.mean_sojourn[0], mmpp.mean_sojourn[1]),
        )
    if isinstance(arrivals, BatchArrivalsSpec):
        size = arrivals.batch.size
        batch_rate = float(spec.rate or 0.0)
        if isinstance(size, GeometricSize):
            return BatchArrivals(batch_rate, "geometric", size.mean)
        if isinstance(size, EmpiricalSize):
            samples = tuple(size.samples)
            return BatchArrivals(
                batch_rate=batch_rate,
                size_kind="empirical",
                size_mean=sum(samples) / len(samples),
                size_samples=samples,
            )
        value = size.value if isinstance(size, ConstantSize) else size
        return BatchArrivals(batch_rate, "constant", float(value))
    return None


def _build_slos(
    scenario: Scenario, tier_index: dict[str, int], class_index: dict[str, int]
) -> list[Slo]:
    slos = []
    for i, spec in enumerate(scenario.slos):
        line = scenario.problem("", ("slos", i)).line
        subject = spec.class_ if spec.class_ is not None else spec.tier
        for statistic, limit in spec.objectives():
            threshold = None
            if isinstance(limit, ShareOverSpec):
                threshold, limit = limit.limit, limit.max
                text = f"{subject} share over {format_duration(threshold)} <= {format_ratio(limit)}"
            else:
                text = f"{subject} {statistic} <= {slo_value_text(statistic, limit)}"
            slos.append(
                Slo(
                    text=text,
                    statistic=statistic,
                    limit=limit,
                    class_index=class_index[spec.class_] if spec.class_ is not None else None,
                    tier_index=tier_index[spec.tier] if spec.tier is not None else None,
                    line=line,
                    threshold=threshold,
                )
            )
    return slos


def _exact_miss_ratio(setting: float | LruModel | TtlModel) -> float:
    return 1.0 - hit_ratio_of(setting)


def build_model(scenario: Scenario) -> Model:
    """The runnable model of a scenario; raises ScenarioError for problems of meaning."""
    problems = check_scenario(scenario, _exact_miss_ratio)
    if problems:
        raise ScenarioError(problems)
    names = _tier_names(scenario)
    tier_index = {name: i for i, name in enumerate(names)}
    class_names = list(scenario.traffic)
    class_index = {name: i for i, name in enumerate(class_names)}
    simulation = scenario.simulation
    tiers = _build_tiers(scenario, tier_index, class_names)
    if _needs_rates(scenario):
        # A TTL cache's hit ratio depends on the requests that reach it, which depend on the
        # hit ratios upstream (a cdn before its shield): settle them by repeated passes.
        classes = _build_classes(scenario, tier_index)
        horizon = simulation.duration + simulation.warmup_or_default
        for _ in range(len(tiers)):
            rates = _request_rates(tiers, classes, horizon)
            tiers = _build_tiers(scenario, tier_index, class_names, rates)
    model = Model(
        name=scenario.name,
        seed=scenario.seed,
        simulation=Simulation(
            duration=simulation.duration,
            warmup=simulation.warmup_or_default,
            replications=simulation.replications,
        ),
        classes=tuple(_build_classes(scenario, tier_index)),
        tiers=tuple(tiers),
        slos=tuple(_build_slos(scenario, tier_index, class_index)),
        description=scenario.description,
        currency=scenario.currency,
        source=scenario.source,
        tier_index=tier_index,
        class_index=class_index,
        timeseries=_wants_timeseries(scenario),
        timeseries_bucket=_timeseries_bucket(scenario),
        faults=tuple(_build_faults(scenario, tiers)),
        percentiles=tuple(sorted(set(simulation.percentiles))),
        share_over=_share_limits(scenario),
    )
    return place_in_regions(split_entries(partition_tiers(model, scenario), scenario), scenario)


def _share_limits(scenario: Scenario) -> tuple[float, ...]:
    """Every latency limit whose share is reported: asked for, or named by an SLO."""
    limits = set(scenario.simulation.share_over)
    limits.update(slo.share_over.limit for slo in scenario.slos if slo.share_over is not None)
    return tuple(sorted(limits))


def _wants_timeseries(scenario: Scenario) -> bool:
    """Asked for (`simulation.timeseries`), or implied by what changes over time."""
    setting = scenario.simulation.timeseries
    if setting is not None:
        return setting is not False
    autoscaled = any(getattr(t, "autoscale", None) is not None for t in scenario.tiers.values())
    cold = any(
        isinstance(setting, LruModel) and setting.cold
        for spec in scenario.tiers.values()
        for setting in (
            getattr(spec, "hit_ratio", None),
            getattr(getattr(spec, "origin_shield", None), "hit_ratio", None),
        )
    )
    return (
        autoscaled
        or cold
        or bool(scenario.faults)
        or any(spec.profile for spec in scenario.traffic.values())
        or any(spec.arrival_kind == "trace" for spec in scenario.traffic.values())
    )


def _timeseries_bucket(scenario: Scenario) -> float | None:
    setting = scenario.simulation.timeseries
    return None if isinstance(setting, bool) or setting is None else float(setting)
