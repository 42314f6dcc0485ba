"""Every model feature, classified once: which engine paths run it and what it reports.

Each field of the model's dataclasses that the engine reads is a `Feature` with a role:

* ``data``: does not change what the engine simulates (names, indices, costs, sizing bounds),
  or is lowered by the model builder into fields the engine reads (a cache's `hit_ratio`
  becomes a call with a probability);
* ``both``: both engine paths simulate it, exactly (the differential tests hold them to it);
* ``event_only``: the simulated outcome depends on the system's state (who is waiting, how long
  the callee took, what arrived recently), so only the event path runs it. The feature's
  `refuse` gives the vectorised path's reason in plain words ("" when this value is fine, such
  as round-robin balancing), or `via` names the feature whose refusal covers it (a pool's size
  is refused with the pool).

Call features marked `guarded` make the call a call site with its own state in the event path
(a timeout, retries, a breaker, a bulkhead, hedges). `reports` are the result keys a feature
adds: a tier feature's under `tiers.<tier>`, a call feature's under the *callee's* entry.

`vectorised.can_vectorise` asks `refusal` / `call_refusal` / `class_refusal` in registry order,
and `analysis.summary` asks `callees_reporting` which tiers carry the retry and hedge figures.
A test fails when a dataclass field is missing here, so a new key cannot be silently ignored by
one engine path: add it here as `event_only` with a reason until the vectorised path runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from capsim.model.types import Call, Model, Parallel, Step, Tier, TrafficClass

Role = Literal["data", "both", "event_only"]

#: Balancing the vectorised path runs exactly (it draws the choice; the others read the state).
VECTORISED_BALANCING: tuple[str, ...] = ("round_robin", "random")
#: Arrival kinds the vectorised path generates (all of them today).
VECTORISED_ARRIVALS: tuple[str, ...] = ("poisson", "constant", "trace", "mmpp", "batch")

#: Call figures reported together on the callee when any resilience field is set.
RESILIENCE_KEYS: tuple[str, ...] = (
    "retries",
    "call_timeouts",
    "short_circuited",
    "bulkhead_rejected",
)


@dataclass(frozen=True)
class Feature:
    """One field of one model dataclass: its role in the engine, and what it reports."""

    owner: str  # the dataclass: "Tier", "Call", ...
    field: str
    role: Role
    what: str  # one line: what it changes
    refuse: Callable[..., str] | None = None  # event_only: the vectorised path's reason, or ""
    via: str = ""  # event_only without `refuse`: "Owner.field" whose refusal covers this one
    guarded: bool = False  # Call only: the event path runs the call through a call site
    reports: tuple[str, ...] = ()  # result keys it adds (a call's: on the callee's entry)
    # Load or capacity changes during the run when it is set: an overload can begin late in the
    # window (the summary's stability test looks for a late onset only then).
    changes_conditions: bool = False

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.field}"


def _data(owner: str, field: str, what: str, reports: tuple[str, ...] = ()) -> Feature:
    return Feature(owner=owner, field=field, role="data", what=what, reports=reports)


def _both(owner: str, field: str, what: str, reports: tuple[str, ...] = ()) -> Feature:
    return Feature(owner=owner, field=field, role="both", what=what, reports=reports)


def _parts(owner: str, via: str, fields: tuple[str, ...]) -> tuple[Feature, ...]:
    """The fields of a setting that is event-only as a whole (`via` refuses it)."""
    return tuple(
        Feature(owner=owner, field=f, role="event_only", what=f"part of {via}", via=via)
        for f in fields
    )


def _same_paths(owner: str, fields: tuple[str, ...], what: str) -> tuple[Feature, ...]:
    return tuple(_both(owner, f, what) for f in fields)


# ---------------------------------------------------------------------------------------------
# Tiers: refusals in the order the vectorised path checks them (the first reason is shown)
# ---------------------------------------------------------------------------------------------


def _refuse_autoscale(model: Model, tier: Tier) -> str:
    if tier.autoscale is None:
        return ""
    if tier.autoscale.scale_to_zero:
        return (
            f"tier '{tier.name}' is serverless, so its instances start and stop with its requests"
        )
    return f"tier '{tier.name}' autoscales, so its instances change with its load"


def _refuse_when_set(
    attribute: str, reason: str, *, off: object = None
) -> Callable[[Model, Tier], str]:
    """A refusal for a field that is off when it equals `off`; `reason` names the tier."""

    def refuse(model: Model, tier: Tier) -> str:
        return "" if getattr(tier, attribute) == off else reason.format(name=tier.name)

    return refuse


def _refuse_batches(model: Model, tier: Tier) -> str:
    return f"tier '{tier.name}' consumes its messages in batches" if tier.batch_size > 1 else ""


def _refuse_discipline(model: Model, tier: Tier) -> str:
    if tier.queue_discipline == "fifo":
        return ""
    return f"tier '{tier.name}' serves its queue {tier.queue_discipline.upper()}"


def _refuse_balancing(model: Model, tier: Tier) -> str:
    if tier.balancing in VECTORISED_BALANCING:
        return ""
    return (
        f"tier '{tier.name}' uses {tier.balancing} balancing, which depends on the system's state"
    )


def _refuse_max_queue(model: Model, tier: Tier) -> str:
    if tier.max_queue is None:
        return ""
    what = "max_depth" if tier.is_async else "max_queue"
    return f"tier '{tier.name}' has a {what}, whose rejections depend on the queue's state"


def _refuse_blocking(model: Model, tier: Tier) -> str:
    if not (tier.blocking and any(work.calls for work in tier.work)):
        return ""
    return (
        f"tier '{tier.name}' has blocking workers that make calls (a worker is held until its "
        "calls return), which needs the event path"
    )


def _refuse_tier_timeout(model: Model, tier: Tier) -> str:
    if tier.timeout is None:
        return ""
    return f"tier '{tier.name}' has a timeout, whose drops depend on the queue's state"


def _refuse_pool(model: Model, tier: Tier) -> str:
    if tier.pool is None:
        return ""
    return f"tier '{tier.name}' has a connection pool, which needs the event path"


def _refuse_spot(model: Model, tier: Tier) -> str:
    if tier.pricing is None or not tier.pricing.interrupts:
        return ""
    return (
        f"tier '{tier.name}' runs on spot instances that are interrupted and replaced "
        "during the run, which changes its capacity mid-run"
    )


_T = "Tier"
TIER_FEATURES: tuple[Feature, ...] = (
    Feature(
        owner=_T,
        field="pricing",
        changes_conditions=True,
        role="event_only",
        what="how the tier is billed; spot interruptions lose instances mid-run",
        refuse=_refuse_spot,
        reports=("spot",),
    ),
    Feature(
        owner=_T,
        field="autoscale",
        changes_conditions=True,
        role="event_only",
        what="instances change with the load (or per request: serverless)",
        refuse=_refuse_autoscale,
        reports=("autoscale",),
    ),
    Feature(
        owner=_T,
        field="consumer_scaling",
        changes_conditions=True,
        role="event_only",
        what="a queue's consumers follow its backlog (KEDA)",
        refuse=_refuse_when_set(
            "consumer_scaling",
            "tier '{name}' scales its consumers on its backlog, so its workers change with "
            "its queue",
        ),
        reports=("autoscale",),
    ),
    Feature(
        owner=_T,
        field="rate_limit",
        role="event_only",
        what="a token bucket refuses requests",
        refuse=_refuse_when_set(
            "rate_limit", "tier '{name}' has a rate limit, whose refusals depend on recent arrivals"
        ),
        reports=("rate_limited",),
    ),
    Feature(
        owner=_T,
        field="max_retries",
        role="event_only",
        what="a queue redelivers failed messages",
        refuse=_refuse_when_set(
            "max_retries", "tier '{name}' redelivers failed messages (max_retries)", off=0
        ),
        reports=("redeliveries", "dead_letters"),
    ),
    Feature(
        owner=_T,
        field="cold_lru",
        changes_conditions=True,
        role="event_only",
        what="hits decided by a simulated LRU that starts empty",
        refuse=_refuse_when_set(
            "cold_lru", "tier '{name}' is a cold cache, whose hit ratio rises as it fills"
        ),
        reports=("cold_cache",),
    ),
    Feature(
        owner=_T,
        field="batch_size",
        role="event_only",
        what="queue consumers take messages in batches",
        refuse=_refuse_batches,
    ),
    Feature(
        owner=_T,
        field="partitions",
        role="event_only",
        what="at most one consumer per partition at a time",
        refuse=_refuse_when_set(
            "partitions", "tier '{name}' has partitions, which cap its consumers' parallelism"
        ),
    ),
    Feature(
        owner=_T,
        field="priorities",
        role="event_only",
        what="waiting requests served by class priority",
        refuse=_refuse_when_set(
            "priorities", "tier '{name}' serves its classes by priority", off=()
        ),
    ),
    Feature(
        owner=_T,
        field="queue_discipline",
        role="event_only",
        what="FIFO or LIFO waiting line",
        refuse=_refuse_discipline,
    ),
    Feature(
        owner=_T,
        field="balancing",
        role="event_only",
        what="how an instance is picked (least_connections and power_of_two read the state)",
        refuse=_refuse_balancing,
    ),
    Feature(
        owner=_T,
        field="pool",
        role="event_only",
        what="a database connection pool in front of the workers",
        refuse=_refuse_pool,
        reports=("pool",),
    ),
    Feature(
        owner=_T,
        field="max_queue",
        role="event_only",
        what="a bounded waiting room (a queue's max_depth)",
        refuse=_refuse_max_queue,
        reports=("rejected",),
    ),
    Feature(
        owner=_T,
        field="timeout",
        role="event_only",
        what="a waiting request is dropped after this long",
        refuse=_refuse_tier_timeout,
        reports=("timed_out",),
    ),
    Feature(
        owner=_T,
        field="blocking",
        role="event_only",
        what="a worker is held while its calls run",
        refuse=_refuse_blocking,
    ),
    Feature(
        owner=_T,
        field="batch_linger",
        role="event_only",
        what="how long a batch waits to fill",
        via="Tier.batch_size",
    ),
    Feature(
        owner=_T,
        field="health_check",
        role="event_only",
        what="balancing learns of dead instances late",
        via="Model.faults",
    ),
    Feature(
        owner=_T,
        field="drop_abandoned",
        role="event_only",
        what="skip waiting requests whose caller gave up",
        via="Call.timeout",
        reports=("dropped",),
    ),
    Feature(
        owner=_T,
        field="edges",
        role="event_only",
        what="a cdn's edges each have their own cold cache (a warm "
        "cdn's hit ratio is lowered into its calls)",
        via="Tier.cold_lru",
    ),
    *_same_paths(
        _T,
        ("kind", "instances", "concurrency", "replicas", "work", "publish_time"),
        "the tier's shape: servers, workers, work per class, a queue's publish cost",
    ),
    _data(_T, "name", "identifies the tier"),
    _data(_T, "index", "identifies the tier"),
    _data(_T, "synthetic", "made by the builder (an origin shield)"),
    _data(_T, "hit_ratio", "lowered into work[k].calls (a miss is a call with probability)"),
    _data(_T, "on_miss", "lowered into work[k].calls"),
    _data(_T, "consumers", "lowered into concurrency"),
    _data(_T, "zones", "lowered into the faults' lost servers"),
    _data(_T, "cost_per_instance_hour", "cost figures of the analysis"),
    _data(_T, "sizing", "what capsim size may change"),
    _data(_T, "region", "the region of a tier's copy: lowered into calls' network delays"),
    _data(_T, "ttl_hits", "re-lowered into hit_ratio and work[k].calls when the load is scaled"),
)


# ---------------------------------------------------------------------------------------------
# Calls: refusals in the order the vectorised path checks each call
# ---------------------------------------------------------------------------------------------


def _refuse_hedge(model: Model, caller: Tier, call: Call) -> str:
    if call.hedge is None:
        return ""
    return (
        f"tier '{caller.name}' hedges its calls to '{model.tiers[call.tier].name}' "
        f"({call.hedge.text}): a copy is sent only when the first has not answered "
        "in time, which depends on how long the callee takes"
    )


def _refuse_timing(model: Model, caller: Tier, call: Call) -> str:
    if call.timeout is None and call.retry is None:
        return ""
    return (
        f"tier '{caller.name}' calls '{model.tiers[call.tier].name}' with a timeout or "
        "retries, whose outcome depends on how long the callee takes"
    )


def _refuse_protection(model: Model, caller: Tier, call: Call) -> str:
    if call.circuit_breaker is None and call.bulkhead is None:
        return ""
    return (
        f"tier '{caller.name}' calls '{model.tiers[call.tier].name}' through a circuit "
        "breaker or a bulkhead, which depend on the calls' outcomes"
    )


def _refuse_call_algorithm(model: Model, caller: Tier, call: Call) -> str:
    if call.algorithm is None or call.algorithm in VECTORISED_BALANCING:
        return ""
    return (
        f"tier '{caller.name}' sends calls to '{model.tiers[call.tier].name}' with "
        f"{call.algorithm} balancing, which depends on the system's state"
    )


_C = "Call"
CALL_FEATURES: tuple[Feature, ...] = (
    Feature(
        owner=_C,
        field="hedge",
        role="event_only",
        what="copies of a slow call to other instances",
        refuse=_refuse_hedge,
        guarded=True,
        reports=("hedges",),
    ),
    Feature(
        owner=_C,
        field="timeout",
        role="event_only",
        what="the caller gives up on an attempt",
        refuse=_refuse_timing,
        guarded=True,
        reports=RESILIENCE_KEYS,
    ),
    Feature(
        owner=_C,
        field="retry",
        role="event_only",
        what="failed and timed-out attempts are retried",
        refuse=_refuse_timing,
        guarded=True,
        reports=RESILIENCE_KEYS,
    ),
    Feature(
        owner=_C,
        field="circuit_breaker",
        role="event_only",
        what="calls short-circuited while open",
        refuse=_refuse_protection,
        guarded=True,
        reports=RESILIENCE_KEYS,
    ),
    Feature(
        owner=_C,
        field="bulkhead",
        role="event_only",
        what="at most this many calls in flight",
        refuse=_refuse_protection,
        guarded=True,
        reports=RESILIENCE_KEYS,
    ),
    Feature(
        owner=_C,
        field="algorithm",
        role="event_only",
        what="a load balancer's choice of instance",
        refuse=_refuse_call_algorithm,
    ),
    *_same_paths(_C, ("tier", "probability", "repeat"), "which tier, how often"),
    _both(_C, "network_delay", "the round trip of a call to another region"),
    _data(_C, "write", "lowered into the call's target (the callee's primary region)"),
)


# ---------------------------------------------------------------------------------------------
# Classes and the model
# ---------------------------------------------------------------------------------------------


def _refuse_closed(model: Model, traffic: TrafficClass) -> str:
    if not traffic.is_closed:
        return ""
    return (
        f"class '{traffic.name}' is a closed workload (users with think time), "
        "whose arrivals depend on responses"
    )


def _refuse_arrivals(model: Model, traffic: TrafficClass) -> str:
    if traffic.arrivals in VECTORISED_ARRIVALS:
        return ""
    return f"class '{traffic.name}' has arrivals '{traffic.arrivals}'"


def _refuse_faults(model: Model, owner: Model) -> str:
    if not model.faults:
        return ""
    return f"the scenario has faults ({model.faults[0].text}), which change tiers mid-run"


_K = "TrafficClass"
CLASS_FEATURES: tuple[Feature, ...] = (
    Feature(
        owner=_K,
        field="users",
        role="event_only",
        what="a closed workload: users wait for their answer",
        refuse=_refuse_closed,
    ),
    Feature(
        owner=_K,
        field="arrivals",
        role="event_only",
        what="the arrival process's kind",
        refuse=_refuse_arrivals,
    ),
    Feature(
        owner=_K,
        field="think_time",
        role="event_only",
        what="a closed class's pause between requests",
        via="TrafficClass.users",
    ),
    *_same_paths(_K, ("entry", "rate", "process"), "open arrivals (engine/arrivals.py)"),
    Feature(
        owner=_K,
        field="profile",
        role="both",
        what="the offered rate changes over the run",
        changes_conditions=True,
    ),
    _both(_K, "network_delay", "the round trip of clients served from another region"),
    _data(_K, "name", "identifies the class"),
    _data(_K, "response_size", "bytes of each answer, for per-GB prices"),
    _data(_K, "index", "identifies the class"),
)

_M = "Model"
MODEL_FEATURES: tuple[Feature, ...] = (
    Feature(
        owner=_M,
        field="faults",
        changes_conditions=True,
        role="event_only",
        what="instances die, slow down or fail mid-run",
        refuse=_refuse_faults,
    ),
    *_same_paths(
        _M,
        ("seed", "simulation", "classes", "tiers", "timeseries", "timeseries_bucket", "share_over"),
        "what is run and recorded",
    ),
    *(
        _data(_M, f, "judged or shown by the analysis")
        for f in (
            "name",
            "slos",
            "description",
            "currency",
            "source",
            "tier_index",
            "class_index",
            "percentiles",
            "traffic_moves",
        )
    ),
)

#: The settings inside a feature, and the plain data the engine reads on both paths.
PART_FEATURES: tuple[Feature, ...] = (
    *_parts("Pool", "Tier.pool", ("size", "max_waiting", "timeout")),
    *_parts(
        "Autoscale",
        "Tier.autoscale",
        (
            "max",
            "metric",
            "target",
            "min",
            "sync_period",
            "scale_up_stabilization",
            "scale_down_stabilization",
            "tolerance",
            "max_scale_up",
            "max_scale_up_instances",
            "startup_time",
            "cooldown",
            "scale_up_period",
            "scale_up_select",
            "scale_to_zero",
            "cold_start",
            "keep_warm",
            "initial",
        ),
    ),
    *_parts(
        "ConsumerScaling",
        "Tier.consumer_scaling",
        (
            "metric",
            "target",
            "min",
            "max",
            "initial",
            "per_consumer",
            "polling_interval",
            "cooldown_period",
            "tolerance",
            "scale_down_stabilization",
            "startup_time",
            "activation_threshold",
            "max_scale_up",
            "max_scale_up_instances",
            "scale_up_period",
            "scale_up_select",
        ),
    ),
    *_parts("RateLimit", "Tier.rate_limit", ("rate", "burst")),
    *_parts("Pricing", "Tier.pricing", ("spot_discount", "interruption_rate", "replace_after")),
    *(
        _data("Pricing", f, "prices of the cost figures (docs/cost.md)")
        for f in (
            "on_demand",
            "reserved",
            "reserved_discount",
            "per_million_requests",
            "per_gb_second",
            "memory_gb",
            "per_gb",
        )
    ),
    *_parts("ColdLru", "Tier.cold_lru", ("capacity", "keys", "zipf")),
    *_parts("HealthCheck", "Tier.health_check", ("interval", "unhealthy_after", "healthy_after")),
    *_parts("Retry", "Call.retry", ("max", "backoff", "base", "cap", "jitter", "budget")),
    *_parts(
        "CircuitBreaker",
        "Call.circuit_breaker",
        ("error_rate", "window", "min_calls", "open_for", "probes"),
    ),
    *_parts("Hedge", "Call.hedge", ("max", "after", "quantile")),
    *_parts(
        "Fault",
        "Model.faults",
        ("at", "until", "tier", "lose", "error_rate", "slowdown", "text", "losing"),
    ),
    *_same_paths("Work", ("service_time", "calls", "read_ratio"), "a tier's work per class"),
    *_same_paths(
        "OneOf",
        ("options", "network_delays"),
        "one call of several, by probability, and the round trip to each",
    ),
    _both(
        "OneOf",
        "fallbacks",
        "where an option refused on the spot goes; only event-path features refuse on the spot "
        "(a lost instance, a full waiting room, a rate limit, a pool), so on the vectorised "
        "path nothing falls back",
    ),
    *_same_paths("Parallel", ("branches",), "fan-out, joined on the slowest"),
    *_same_paths("ProfilePoint", ("at", "rate"), "a traffic profile"),
    *_same_paths("TraceArrivals", ("times", "loop"), "a replayed trace"),
    _data("TraceArrivals", "source", "where the trace came from, for messages"),
    *_same_paths("MmppArrivals", ("rates", "mean_sojourn"), "a two-state MMPP"),
    *_same_paths(
        "BatchArrivals",
        ("batch_rate", "size_kind", "size_mean", "size_samples"),
        "batches of simultaneous arrivals",
    ),
    *_same_paths("Simulation", ("duration", "warmup", "replications"), "the run's length"),
    *_same_paths("Sizing", ("of", "min", "max", "fixed"), "read by capsim size only"),
    *(
        _data("Slo", f, "judged by the analysis after the run")
        for f in ("text", "statistic", "limit", "class_index", "tier_index", "line", "threshold")
    ),
    _data("Slo", "not_judged_by_solve", "solve's verdict is withheld, with this reason"),
)

FEATURES: tuple[Feature, ...] = (
    *TIER_FEATURES,
    *CALL_FEATURES,
    *CLASS_FEATURES,
    *MODEL_FEATURES,
    *PART_FEATURES,
)
BY_NAME: dict[str, Feature] = {feature.name: feature for feature in FEATURES}
GUARDED_CALL_FIELDS: tuple[str, ...] = tuple(f.field for f in CALL_FEATURES if f.guarded)


# ---------------------------------------------------------------------------------------------
# Questions the engines and the summary ask
# ---------------------------------------------------------------------------------------------


def _first_refusal(features: tuple[Feature, ...], *args: Any) -> str:
    for feature in features:
        if feature.refuse is not None:
            reason = feature.refuse(*args)
            if reason:
                return reason
    return ""


def model_refusal(model: Model) -> str:
    """Why the vectorised path cannot run `model` because of a model-wide feature ("" if none)."""
    return _first_refusal(MODEL_FEATURES, model, model)


def class_refusal(model: Model, traffic: TrafficClass) -> str:
    """Why the vectorised path cannot run this class ("" when it can)."""
    return _first_refusal(CLASS_FEATURES, model, traffic)


def tier_refusal(model: Model, tier: Tier) -> str:
    """Why the vectorised path cannot run this tier's own settings ("" when it can)."""
    return _first_refusal(TIER_FEATURES, model, tier)


def call_refusal(model: Model, caller: Tier, call: Call) -> str:
    """Why the vectorised path cannot run this call of `caller` ("" when it can)."""
    return _first_refusal(CALL_FEATURES, model, caller, call)


def is_guarded(call: Call) -> bool:
    """Whether the call has a feature the event path runs through a call site (a timeout,
    retries, a breaker, a bulkhead or hedges)."""
    return any(getattr(call, name) is not None for name in GUARDED_CALL_FIELDS)


def _is_set(value: object) -> bool:
    """Whether a setting is on; a setting object may say it is inert (`Pricing` without spot
    interruptions: `changes_conditions` False)."""
    if not getattr(value, "changes_conditions", True):
        return False
    return value is not None and value is not False and value != 0 and value != ()


def conditions_change(model: Model) -> bool:
    """Whether load or capacity changes during the run (a profile, faults, autoscaling, a cache
    warming up: the features marked `changes_conditions`)."""
    owners: dict[str, tuple[object, ...]] = {
        "Model": (model,),
        "TrafficClass": model.classes,
        "Tier": model.tiers,
    }
    return any(
        _is_set(getattr(owner, feature.field))
        for feature in FEATURES
        if feature.changes_conditions
        for owner in owners[feature.owner]
    )


#: Settings that change only their own tier's capacity during the run (an autoscaler, KEDA,
#: spot interruptions), not the load that tier sends to the others.
OWN_CAPACITY_FIELDS = ("autoscale", "consumer_scaling", "pricing")


def conditions_change_at(model: Model, tier: Tier) -> bool:
    """Whether load or capacity changes during the run at `tier`: `conditions_change`, except
    that another tier's own capacity (`OWN_CAPACITY_FIELDS`) may change."""
    return tier.index in tiers_where_conditions_change(model)


def tiers_where_conditions_change(model: Model) -> set[int]:
    """`conditions_change_at` for every tier at once, in time linear in the tiers (asked tier
    by tier, a model of thousands of tiers took minutes)."""
    if _changes(model, [], ()):
        return {tier.index for tier in model.tiers}  # the model or a class changes
    own = [_changes(model, [tier], ()) for tier in model.tiers]
    shared = [_changes(model, [tier], OWN_CAPACITY_FIELDS) for tier in model.tiers]
    sharing = sum(shared)
    return {
        tier.index for tier in model.tiers if own[tier.index] or sharing - shared[tier.index] > 0
    }


def _changes(model: Model, tiers: list[Tier], ignored: tuple[str, ...]) -> bool:
    owners: dict[str, tuple[object, ...]] = {
        "Model": (model,),
        "TrafficClass": model.classes,
        "Tier": tuple(tiers),
    }
    return any(
        _is_set(getattr(owner, feature.field))
        for feature in FEATURES
        if feature.changes_conditions and feature.field not in ignored
        for owner in owners[feature.owner]
    )


def _calls(steps: tuple[Step, ...]) -> Iterator[Call]:
    """The Call steps, inside parallel groups too (a one_of's options carry no call settings)."""
    for step in steps:
        if isinstance(step, Call):
            yield step
        elif isinstance(step, Parallel):
            yield from _calls(step.branches)


def callees_reporting(model: Model, key: str) -> set[int]:
    """Tiers whose entry carries `key` because some caller calls them with a call feature that
    reports it (`retries` for timeouts, retries, breakers and bulkheads; `hedges`)."""
    reporting = [f.field for f in CALL_FEATURES if key in f.reports]
    return {
        call.tier
        for tier in model.tiers
        for work in tier.work
        for call in _calls(work.calls)
        if any(getattr(call, name) is not None for name in reporting)
    }
