"""Human forms of result figures for the table and Markdown views (null shows as a dash)."""

from __future__ import annotations

from typing import Any

from capsim.analysis.report import overload_failures
from capsim.units import format_duration

#: What a missing figure (null in the JSON) looks like in a table.
MISSING = "—"
#: What an unstable tier's status says, in every human view.
OVERLOADED = "OVERLOADED — not steady state"


def time(value: float | None) -> str:
    return MISSING if value is None else format_duration(value)


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f}%"


def rate(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:,.1f}/s" if value < 1e5 else f"{value:,.0f}/s"


def count(value: int | float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def number(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.2f}"


def errors(entry: dict[str, Any]) -> str:
    """`12 (0.01%)`: the count and the error rate of a class."""
    rate_text = MISSING if entry["error_rate"] is None else f"{entry['error_rate'] * 100:.3g}%"
    return f"{count(entry['errors'])} ({rate_text})"


def slo_observed(verdict: dict[str, Any]) -> str:
    """An SLO's observed figure in the unit of its statistic."""
    observed = verdict["observed"]
    if verdict.get("statistic") in ("utilization", "occupancy", "error_rate"):
        if observed is None:
            return MISSING
        return f"{observed * 100:.3g}%"
    return time(observed)


def slo_limit(verdict: dict[str, Any]) -> str:
    limit = verdict["limit"]
    if verdict.get("statistic") in ("utilization", "occupancy", "error_rate"):
        return f"{limit * 100:.3g}%"
    return time(limit)


def tier_status(entry: dict[str, Any]) -> str:
    return "stable" if entry["stable"] else OVERLOADED


def run_line(data: dict[str, Any]) -> str:
    """One line naming the run: scenario, seed, replications and measured time."""
    replications = data["replications"]
    runs = "1 replication" if replications == 1 else f"{replications} replications"
    if data.get("partial"):
        runs = f"PARTIAL (interrupted): {replications} of {data['replications_requested']} replications"
    return (
        f"scenario {data['scenario']} · seed {data['seed']} · {runs} × "
        f"{time(data['duration'])} measured · capsim {data['capsim_version']}"
    )


def engine_line(data: dict[str, Any]) -> str | None:
    engine = data.get("engine")
    if not engine:
        return None
    reason = f" ({engine['reason']})" if engine.get("reason") else ""
    return f"engine: {engine['path']}{reason}"


def overload_text(failure: dict[str, Any]) -> str:
    """`orders (backlog +23/s, saturates near 3,450.0/s)`."""
    details = overload_details(failure)
    return f"{failure['tier']} ({details})" if details else str(failure["tier"])


def overload_details(failure: dict[str, Any]) -> str:
    """`backlog +23/s, saturates near 3,450.0/s`: how fast it grows, where it saturates."""
    details = []
    growth = failure.get("growth_rate")
    if isinstance(growth, int | float):
        details.append(f"backlog +{growth:,.3g}/s" if growth < 10 else f"backlog +{growth:,.0f}/s")
    saturation = failure.get("saturation_rate")
    if isinstance(saturation, int | float):
        details.append(f"saturates near {rate(saturation)}")
    return ", ".join(details)


def verdict_line(data: dict[str, Any]) -> str:
    """The run's verdict in one sentence; an overloaded tier is named first and fails it."""
    slos = data.get("slos", [])
    failed = sum(1 for v in slos if not v["passed"])
    overloaded = overload_failures(data)
    if overloaded:
        tiers = "; ".join(overload_text(f) for f in overloaded)
        word = "tier" if len(overloaded) == 1 else "tiers"
        slo_part = (
            "no SLOs defined"
            if not slos
            else f"{failed} of {len(slos)} SLOs failed besides"
            if failed
            else f"the {len(slos)} SLO figure(s) are within limits but not steady-state figures"
        )
        return f"FAIL: {word} OVERLOADED — {tiers}; {slo_part}."
    if not slos:
        return "No SLOs defined."
    if not failed:
        return f"All {len(slos)} SLOs met." if len(slos) > 1 else "The SLO is met."
    return f"{failed} of {len(slos)} SLOs failed."
