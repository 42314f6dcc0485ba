"""Human forms of result figures for the table and Markdown views (null shows as a dash)."""

from __future__ import annotations

import math
from typing import Any

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


def significant(value: float, digits: int = 4) -> str:
    """`value` to `digits` significant digits with thousands separators, never in exponent
    notation: 14110.3 -> `14,110`, 0.0123456 -> `0.01235`, 2.5 -> `2.5`."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{round(value):,}"
    text = f"{value:,.{digits - 1 - magnitude}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


#: How costs are labelled when the scenario names no `currency`.
NO_CURRENCY = "price units"
#: The sentence a priced view adds when the scenario names no currency.
NO_CURRENCY_NOTE = (
    "Costs are in the units of the scenario's prices: add `currency: USD` (or EUR, GBP, ...) "
    "at the top of the scenario to name them."
)


def currency(code: str | None) -> str:
    """The label of money figures: the scenario's ISO 4217 code, or `price units`."""
    return code or NO_CURRENCY


def money(value: float | None, code: str | None, decimals: int = 2) -> str:
    """`1,234.56 USD`: an amount with thousands separators and its currency."""
    if value is None:
        return MISSING
    return f"{value:,.{decimals}f} {currency(code)}"


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
    load = data.get("load")
    scaled = "" if load is None or load == 1 else f" · open traffic at {load:.3g}x (--load)"
    return (
        f"scenario {data['scenario']}{scaled} · seed {data['seed']} · {runs} × "
        f"{time(data['duration'])} measured · capsim {data['capsim_version']}"
    )


def engine_line(data: dict[str, Any]) -> str | None:
    engine = data.get("engine")
    if not engine:
        return None
    reason = f" ({engine['reason']})" if engine.get("reason") else ""
    return f"engine: {engine['path']}{reason}"


def verdict_line(data: dict[str, Any]) -> str:
    slos = data.get("slos", [])
    if not slos:
        return "No SLOs defined."
    failed = sum(1 for v in slos if not v["passed"])
    if not failed:
        return f"All {len(slos)} SLOs met." if len(slos) > 1 else "The SLO is met."
    return f"{failed} of {len(slos)} SLOs failed."
