"""Every model field is classified once (capsim.model.features), and the classification is what
the vectorised path and the summary act on: a new key cannot be silently ignored by one path."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from capsim.analysis.summary import _hedged_tiers, _retried_tiers
from capsim.engine.vectorised import _ALGORITHM_CODES, can_vectorise
from capsim.model import features, types
from capsim.model.distributions import Distribution
from capsim.model.features import BY_NAME, FEATURES, Feature
from capsim.model.types import (
    Autoscale,
    Call,
    CircuitBreaker,
    ColdLru,
    ConsumerScaling,
    Fault,
    Hedge,
    Model,
    Parallel,
    Pool,
    Pricing,
    RateLimit,
    Retry,
    Simulation,
    Tier,
    TrafficClass,
    Work,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: The model dataclasses whose every field must be classified.
CLASSIFIED = (
    types.Tier,
    types.Call,
    types.TrafficClass,
    types.Model,
    types.Pool,
    types.Pricing,
    types.Autoscale,
    types.RateLimit,
    types.ColdLru,
    types.ConsumerScaling,
    types.HealthCheck,
    types.Retry,
    types.CircuitBreaker,
    types.Hedge,
    types.Fault,
    types.Work,
    types.OneOf,
    types.Parallel,
    types.ProfilePoint,
    types.TraceArrivals,
    types.MmppArrivals,
    types.BatchArrivals,
    types.Simulation,
    types.Sizing,
    types.Slo,
)


def _tier(*, name: str, index: int, kind: Any, instances: int, work: tuple[Work, ...]) -> Tier:
    return Tier(
        name=name,
        index=index,
        kind=kind,
        instances=instances,
        concurrency=4,
        blocking=False,
        balancing="round_robin",
        work=work,
    )


def _model(**changes: Any) -> Model:
    """app (round robin, 2 instances) calls db; `changes` are `Tier` fields for app, or
    `call=`/`traffic=`/`faults=` replacements."""
    call = changes.pop("call", Call(1))
    traffic = changes.pop("traffic", TrafficClass("browse", 0, entry=0, rate=10.0))
    faults = changes.pop("faults", ())
    work = Work(Distribution.exponential(0.01), calls=(call,))
    app = _tier(name="app", index=0, kind="service", instances=2, work=(work,))
    db = _tier(
        name="db", index=1, kind="database", instances=1, work=(Work(Distribution.constant(0.002)),)
    )
    return Model(
        name="features",
        seed=1,
        simulation=Simulation(duration=10.0, warmup=1.0),
        classes=(traffic,),
        tiers=(dataclasses.replace(app, **changes), db),
        faults=faults,
    )


#: One value per event-only feature that makes the vectorised path refuse the model.
REFUSED_EXAMPLES: dict[str, dict[str, Any]] = {
    "Tier.autoscale": {"autoscale": Autoscale(max=4)},
    "Tier.consumer_scaling": {
        "consumer_scaling": ConsumerScaling("backlog", 10.0, 0, 4, 1, per_consumer=1)
    },
    "Tier.pricing": {
        "pricing": Pricing(
            on_demand=0.1, spot_discount=0.7, interruption_rate=0.01, replace_after=5
        )
    },
    "Tier.rate_limit": {"rate_limit": RateLimit(rate=5.0, burst=5)},
    "Tier.max_retries": {"max_retries": 2},
    "Tier.cold_lru": {"cold_lru": ColdLru(capacity=10, keys=100, zipf=1.0)},
    "Tier.batch_size": {"batch_size": 5},
    "Tier.partitions": {"partitions": 2},
    "Tier.priorities": {"priorities": (0,)},
    "Tier.queue_discipline": {"queue_discipline": "lifo"},
    "Tier.balancing": {"balancing": "least_connections"},
    "Tier.pool": {"pool": Pool(size=2)},
    "Tier.max_queue": {"max_queue": 10},
    "Tier.timeout": {"timeout": 1.0},
    "Tier.blocking": {"blocking": True},
    "Call.hedge": {"call": Call(1, hedge=Hedge(after=0.05))},
    "Call.timeout": {"call": Call(1, timeout=0.5)},
    "Call.retry": {"call": Call(1, retry=Retry())},
    "Call.circuit_breaker": {"call": Call(1, circuit_breaker=CircuitBreaker())},
    "Call.bulkhead": {"call": Call(1, bulkhead=3)},
    "Call.algorithm": {"call": Call(1, algorithm="power_of_two")},
    "TrafficClass.users": {
        "traffic": TrafficClass(
            "browse", 0, entry=0, users=10, think_time=Distribution.constant(1.0)
        )
    },
    "TrafficClass.arrivals": {
        "traffic": TrafficClass("browse", 0, entry=0, rate=10.0, arrivals="fractal")  # type: ignore[arg-type]
    },
    "Model.faults": {"faults": (Fault(at=1.0, until=None, tier=0, lose=(0,), text="app loses 1"),)},
}


def test_every_field_of_every_model_dataclass_is_classified_once() -> None:
    fields = {f"{cls.__name__}.{f.name}" for cls in CLASSIFIED for f in dataclasses.fields(cls)}
    names = [feature.name for feature in FEATURES]
    assert len(names) == len(set(names)), "a feature is classified twice"
    assert fields - set(names) == set(), "classify these in capsim/model/features.py"
    assert set(names) - fields == set(), "these classified fields no longer exist"


def _covering_refusal(feature: Feature) -> Feature:
    """The feature whose refusal covers this one (itself, or along its `via` chain)."""
    seen = {feature.name}
    while feature.refuse is None:
        assert feature.via in BY_NAME, f"{feature.name}: via '{feature.via}' is not a feature"
        feature = BY_NAME[feature.via]
        assert feature.name not in seen, f"{feature.name}: its via chain loops"
        seen.add(feature.name)
    return feature


@pytest.mark.parametrize("feature", [f for f in FEATURES if f.role == "event_only"], ids=str)
def test_an_event_only_feature_is_refused_by_the_vectorised_path(feature: Feature) -> None:
    covering = _covering_refusal(feature)
    assert covering.role == "event_only"
    assert covering.name in REFUSED_EXAMPLES, f"give {covering.name} an example value here"


@pytest.mark.parametrize("name", sorted(REFUSED_EXAMPLES))
def test_the_vectorised_path_refuses_each_event_only_feature_with_its_reason(name: str) -> None:
    assert can_vectorise(_model())[0], "the base model must run on the vectorised path"
    model = _model(**REFUSED_EXAMPLES[name])
    ok, reason = can_vectorise(model)
    assert not ok
    assert reason == _own_reason(BY_NAME[name], model) != ""


def _own_reason(feature: Feature, model: Model) -> str:
    assert feature.refuse is not None
    app = model.tiers[0]
    owners: dict[str, tuple[Any, ...]] = {
        "Tier": (model, app),
        "Call": (model, app, app.work[0].calls[0]),
        "TrafficClass": (model, model.classes[0]),
        "Model": (model, model),
    }
    return feature.refuse(*owners[feature.owner])


def test_only_event_only_features_refuse_or_are_guarded() -> None:
    for feature in FEATURES:
        if feature.role != "event_only":
            assert feature.refuse is None and not feature.via and not feature.guarded, feature.name


def test_a_call_with_any_guarded_field_is_guarded_and_a_plain_call_is_not() -> None:
    assert not features.is_guarded(Call(1, probability=0.5, repeat=2, algorithm="random"))
    for name in ("hedge", "timeout", "retry", "circuit_breaker", "bulkhead"):
        example = REFUSED_EXAMPLES[f"Call.{name}"]["call"]
        assert features.is_guarded(example), name
    assert set(features.GUARDED_CALL_FIELDS) == {
        "hedge",
        "timeout",
        "retry",
        "circuit_breaker",
        "bulkhead",
    }


def test_the_vectorised_balancing_list_is_the_one_the_vectorised_path_implements() -> None:
    assert set(features.VECTORISED_BALANCING) == set(_ALGORITHM_CODES)


def test_retry_and_hedge_figures_go_to_the_callee_even_inside_a_parallel_group() -> None:
    retried = _model(call=Parallel((Call(1, retry=Retry()),)))
    hedged = _model(call=Call(1, hedge=Hedge(after=0.1)))
    plain = _model()
    assert _retried_tiers(retried) == {1} and _hedged_tiers(retried) == set()
    assert _hedged_tiers(hedged) == {1} and _retried_tiers(hedged) == set()
    assert _retried_tiers(plain) == set() and _hedged_tiers(plain) == set()


def test_every_reported_key_is_defined_in_the_docs() -> None:
    text = "".join(
        (DOCS / name).read_text(encoding="utf-8") for name in ("results.md", "dynamic.md")
    )
    for feature in FEATURES:
        for key in feature.reports:
            defined = f"`{key}`" in text or f".{key}`" in text
            assert defined, (
                f"{feature.name} reports `{key}`, undefined in docs/results.md or dynamic.md"
            )


def test_a_profile_faults_autoscaling_or_a_cold_cache_change_conditions_during_the_run() -> None:
    from capsim.model.types import ProfilePoint

    profiled = TrafficClass(
        "browse", 0, entry=0, rate=10.0, profile=(ProfilePoint(0.0, 5.0), ProfilePoint(5.0, 20.0))
    )
    changing = {
        "profile": _model(traffic=profiled),
        "faults": _model(**REFUSED_EXAMPLES["Model.faults"]),
        "autoscale": _model(**REFUSED_EXAMPLES["Tier.autoscale"]),
        "cold_lru": _model(**REFUSED_EXAMPLES["Tier.cold_lru"]),
        "consumer_scaling": _model(**REFUSED_EXAMPLES["Tier.consumer_scaling"]),
        "pricing": _model(**REFUSED_EXAMPLES["Tier.pricing"]),
    }
    assert not features.conditions_change(_model())
    # Prices alone change nothing the engine simulates: only spot interruptions do.
    assert not features.conditions_change(
        _model(pricing=Pricing(on_demand=0.1, reserved=1, reserved_discount=0.4, spot_discount=0.7))
    )
    for name, model in changing.items():
        assert features.conditions_change(model), name
    marked = {f.field for f in FEATURES if f.changes_conditions}
    assert marked == set(changing)
