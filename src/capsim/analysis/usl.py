"""The Universal Scalability Law against a stepped load test, and beside `capsim saturate` on a
(calibrated) scenario: what `capsim fit-usl` prints and `capsim report --usl` plots.

Figures (docs/calibration.md#the-universal-scalability-law): λ, σ, κ with 95% intervals, the
peak concurrency N* and the peak throughput X_max; beside them saturate's saturation rate,
bottleneck, and the relative difference (saturation rate − X_max) / X_max.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from capsim.analysis.backtest import matching_class
from capsim.analysis.fitting import fit_usl
from capsim.errors import UsageError
from capsim.measurements import LoadTest
from capsim.measurements.loadtests import load_test_warning

#: Points of the fitted curve drawn in the plot.
CURVE_POINTS = 60


def usl_summary(tests: Sequence[LoadTest], sources: Sequence[str]) -> dict[str, Any]:
    """The USL fitted to every load step with a known concurrency, as the JSON of fit-usl."""
    steps = [step for test in tests for step in test.steps if step.users > 0]
    if not steps:
        raise UsageError(
            "no load steps with a concurrency in these files: the USL is fitted to k6 --out json "
            "(vus points), Locust _stats_history.csv or a concurrency,throughput CSV"
        )
    concurrency = np.array([s.users for s in steps])
    throughput = np.array([s.throughput for s in steps])
    try:
        result = fit_usl(concurrency, throughput)
    except ValueError as error:
        raise UsageError(f"{error}") from None
    finite_peak = bool(np.isfinite(result.peak_concurrency))
    reach = max(concurrency.max(), min(result.peak_concurrency, 4 * concurrency.max()))
    grid = np.linspace(0, reach * 1.1, CURVE_POINTS)[1:]
    peak_throughput = float(result.peak_throughput) if np.isfinite(result.peak_throughput) else None
    return {
        "sources": list(sources),
        "lambda": result.lam,
        "sigma": result.sigma,
        "kappa": result.kappa,
        "peak_concurrency": float(result.peak_concurrency) if finite_peak else None,
        "peak_throughput": peak_throughput,
        "ci95": {k: list(v) for k, v in result.intervals.items()},
        "r_squared": result.r_squared,
        "points": result.points,
        "concurrency": list(result.concurrency),
        "throughput": list(result.throughput),
        "fitted": [float(v) for v in result.throughput_at(concurrency)],
        "curve": {
            "concurrency": [float(v) for v in grid],
            "throughput": [float(v) for v in result.throughput_at(grid)],
        },
        "notes": [w for test in tests if (w := load_test_warning(test))]
        + ([] if finite_peak else ["κ = 0: no retrograde region, no finite peak N*"]),
    }


def driven_class(tests: Sequence[LoadTest], classes: Sequence[str]) -> str | None:
    """The scenario class the load tests' requests are named after (the first that matches)."""
    for test in tests:
        for total in test.totals:
            found = matching_class(total.name, classes)
            if found is not None:
                return found
    return None


def only_class(scenario: Any, keep: str) -> Any:
    """`scenario` (a validated Scenario) with its other classes left out: their traffic, their
    per-class work at each tier and their SLOs, as a load test that drove `keep` alone saw it."""
    tiers = {
        name: tier.model_copy(
            update={"classes": {k: v for k, v in tier.classes.items() if k == keep}}
        )
        if isinstance(getattr(tier, "classes", None), dict)
        else tier
        for name, tier in scenario.tiers.items()
    }
    return scenario.model_copy(
        update={
            "traffic": {keep: scenario.traffic[keep]},
            "tiers": tiers,
            "slos": [slo for slo in scenario.slos if slo.class_ in (None, keep)],
        }
    )


def steady(scenario: Any) -> Any:
    """`scenario` (a validated Scenario) with its classes' rate profiles left out, each at its
    `rate` (else its profile's peak): a load test holds its load steady at each step, so
    its plateau is a steady state's. A scenario without a profile is returned as it is."""
    traffic = {}
    for name, spec in scenario.traffic.items():
        profile = getattr(spec, "profile", None)
        rate = spec.rate
        if rate is None and isinstance(profile, list):
            rate = max(point.rate for point in profile) or None
        steady_spec = profile is not None and rate is not None
        traffic[name] = (
            spec.model_copy(update={"profile": None, "rate": rate}) if steady_spec else spec
        )
    if all(traffic[name] is spec for name, spec in scenario.traffic.items()):
        return scenario
    return scenario.model_copy(update={"traffic": traffic})


def saturation_beside_usl(
    scenario: Any,
    source: str,
    tests: Sequence[LoadTest],
    peak_throughput: float | None,
    saturate: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """`saturate(scenario)` (capsim saturate's search on a Scenario) next to the USL's X_max.
    When the load test drove one class of a scenario with several (its requests are named
    after it), that class alone is saturated, as the test loaded it; otherwise every open class
    in the scenario's mix; either without rate profiles (`steady`)."""
    driven = driven_class(tests, list(scenario.traffic))
    if driven is not None and len(scenario.traffic) > 1:
        scenario = only_class(scenario, driven)
    scenario = steady(scenario)
    if driven is None and len(scenario.traffic) == 1:
        driven = next(iter(scenario.traffic))
    found = saturate(scenario)
    rate = found.get("saturation_rate")
    difference = (rate - peak_throughput) / peak_throughput if rate and peak_throughput else None
    return {
        "scenario": source,
        "class": driven if driven is not None else "every open class, in the scenario's mix",
        "saturation_rate": rate,
        "bottleneck": found.get("bottleneck"),
        "difference_from_peak_throughput": difference,
    }
