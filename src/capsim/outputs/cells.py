"""Human forms of result figures for the table and Markdown views (null shows as a dash)."""

from __future__ import annotations

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


def verdict_line(data: dict[str, Any]) -> str:
    slos = data.get("slos", [])
    if not slos:
        return "No SLOs defined."
    failed = sum(1 for v in slos if not v["passed"])
    if not failed:
        return f"All {len(slos)} SLOs met." if len(slos) > 1 else "The SLO is met."
    return f"{failed} of {len(slos)} SLOs failed."


#: Columns of the hedged-calls table (docs/results.md#hedged-calls).
HEDGE_COLUMNS = ("calls", "hedges sent", "won", "cancelled", "abandoned", "extra load")


def hedge_rows(data: dict[str, Any]) -> list[list[str]]:
    """One row per tier called with a hedge: [tier, *HEDGE_COLUMNS]; [] when none is."""
    rows = []
    for name, entry in data["tiers"].items():
        hedges = entry.get("hedges")
        if hedges is None:
            continue
        rows.append(
            [
                name,
                count(hedges["calls"]),
                f"{count(hedges['sent'])} ({percent(hedges['share'])})",
                count(hedges["won"]),
                count(hedges["cancelled"]),
                count(hedges["abandoned"]),
                percent(hedges["extra_load"]),
            ]
        )
    return rows
