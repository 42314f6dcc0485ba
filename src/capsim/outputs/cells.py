"""Human forms of result figures for the table and Markdown views (null shows as a dash)."""

from __future__ import annotations

import math
from typing import Any

from capsim.analysis.report import overload_failures
from capsim.analysis.unfinished import undrained_text
from capsim.units import COUNT_STATISTICS, RATIO_STATISTICS, format_duration
from capsim.vocabulary import LATENCY_STATISTICS

#: What a missing figure (null in the JSON) looks like in a table.
MISSING = "—"
#: What an unstable tier's status says, in every human view.
OVERLOADED = "OVERLOADED — not steady state"
#: A tier whose backlog had not drained by the end of the window (docs/results.md).
NOT_DRAINED = "NOT DRAINED — backlog left at the end"
#: The words of an SLO verdict: (passed, failed). A result shouts both; a report says a pass
#: quietly.
RESULT_VERDICTS = ("✓ PASS", "✗ FAIL")
REPORT_VERDICTS = ("✓ pass", "✗ FAIL")
#: Marks a percentile estimated from too few values (the result's `low_sample`).
LOW_SAMPLE_MARK = "*"
#: The footnote that explains the mark, under any table that shows it.
LOW_SAMPLE_NOTE = (
    "* low sample: a q-percentile estimated from fewer than 10/(1-q) values "
    "(p99 from fewer than 1,000, p999 from fewer than 10,000)"
)


def time(value: float | None) -> str:
    return MISSING if value is None else format_duration(value)


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f}%"


def rate(value: float | None) -> str:
    """`1,234.5/s`; a rate under 0.1/s keeps two significant digits (`0.04/s`, not `0.0/s`)."""
    if value is None:
        return MISSING
    if 0 < abs(value) < 0.1:
        return f"{significant(value, 2)}/s"
    return f"{value:,.1f}/s" if abs(value) < 1e5 else f"{value:,.0f}/s"


def rate_difference(value: float) -> str:
    """A signed rate: `+29.5/s`, `-0.05/s`."""
    return ("+" if value >= 0 else "-") + rate(abs(value))


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


def statistic_figure(statistic: str | None, value: float | None) -> str:
    """A figure in the unit of the SLO statistic it measures: a share, a count or a time."""
    if value is None:
        return MISSING
    if statistic in RATIO_STATISTICS:
        return f"{value * 100:.3g}%"
    if statistic in COUNT_STATISTICS:
        return count(value)
    return time(value)


def slo_observed(verdict: dict[str, Any]) -> str:
    """An SLO's observed figure in the unit of its statistic, marked when from a low sample, and
    naming the span it was judged on when that is the tier's busiest minute."""
    shown = statistic_figure(verdict.get("statistic"), verdict["observed"])
    shown += LOW_SAMPLE_MARK if verdict.get("low_sample") else ""
    where = []
    if verdict.get("none_completed"):  # only unfinished requests' ages: it fails
        where.append("no request completed")
    if verdict.get("group"):  # a database's busiest station group (docs/scenario-reference.md)
        where.append(f"{verdict['group']} group")
    peak = verdict.get("peak")
    if peak:  # judged at the tier's busiest minute (docs/results.md)
        where.append(f"busiest {time(peak['span'])} from t = {time(peak['at'])}")
    return shown + (f" ({', '.join(where)})" if where else "")


def slo_limit(verdict: dict[str, Any]) -> str:
    return statistic_figure(verdict.get("statistic"), verdict["limit"])


def percentile(entry: dict[str, Any], figure: str, name: str) -> str:
    """A percentile of `entry[figure]` (latency, wait, age), marked when from a low sample."""
    value = entry[figure].get(name)
    low = f"{figure}.{name}" in entry.get("low_sample", ())
    return time(value) + (LOW_SAMPLE_MARK if low and value is not None else "")


#: The tier figures the human views show (and mark): a low sample elsewhere is in the JSON only.
SHOWN_TIER_PERCENTILES = frozenset({"wait.p99"})


def any_low_sample(data: dict[str, Any]) -> bool:
    """Whether a figure the human views mark rests on a low sample: a class latency percentile,
    a tier's wait p99 or an SLO verdict (so the footnote never explains a mark that is not there).
    """
    classes = data.get("classes", {}).values()
    tiers = data.get("tiers", {}).values()
    return (
        any(key.startswith("latency.") for c in classes for key in c.get("low_sample") or ())
        or any(key in SHOWN_TIER_PERCENTILES for t in tiers for key in t.get("low_sample") or ())
        or any(v.get("low_sample") for v in data.get("slos", []))
    )


def tier_status(entry: dict[str, Any]) -> str:
    if entry["stable"]:
        return "stable"
    if entry.get("deadlock"):
        return "DEADLOCKED — served nothing more"
    return NOT_DRAINED if "undrained" in entry else OVERLOADED


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


def overload_text(failure: dict[str, Any]) -> str:
    """`orders (backlog +23/s, saturates near 3,450.0/s)`; a database's overloaded group is
    named as its row is (`db · replicas (...)`)."""
    details = overload_details(failure)
    name = str(failure["tier"]) + (f" · {failure['group']}" if failure.get("group") else "")
    return f"{name} ({details})" if details else name


def overload_details(failure: dict[str, Any]) -> str:
    """`backlog +23/s, saturates near 3,450.0/s`: how fast it grows, where it saturates; for a
    tier that had not drained by the end, what was left (`unfinished.undrained_text`)."""
    if isinstance(failure.get("undrained"), dict):
        return undrained_text(failure["undrained"])
    if failure.get("deadlock"):
        return "nested calls back to it hold every worker"
    details = []
    growth = failure.get("growth_rate")
    if isinstance(growth, int | float):
        details.append(f"backlog +{growth:,.3g}/s" if growth < 10 else f"backlog +{growth:,.0f}/s")
    saturation = failure.get("saturation_rate")
    if isinstance(saturation, int | float):
        details.append(f"saturates near {rate(saturation)}")
    lag = failure.get("autoscale")
    if isinstance(lag, dict) and details:
        details[-1] += f" at its max of {lag['max']} instances: the autoscaler lagged"
    return ", ".join(details)


def _by_state(failures: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The failures as the verdict names them: deadlocked tiers (a stopped pool, not a lack of
    capacity) apart from overloaded ones, each group in its order; empty groups left out."""
    deadlocked = [f for f in failures if f.get("deadlock")]
    overloaded = [f for f in failures if not f.get("deadlock")]
    groups = [("DEADLOCKED", deadlocked), ("OVERLOADED", overloaded)]
    return [(state, group) for state, group in groups if group]


def verdict_line(data: dict[str, Any]) -> str:
    """The run's verdict in one sentence; an overloaded tier is named first and fails it."""
    slos = data.get("slos", [])
    failed = sum(1 for v in slos if not v["passed"])
    overloaded = overload_failures(data)
    if overloaded:
        clauses = []
        for state, failures in _by_state(overloaded):
            tiers = "; ".join(overload_text(f) for f in failures)
            word = "tier" if len(failures) == 1 else "tiers"
            clauses.append(f"{word} {state} — {tiers}")
        slo_part = (
            "no SLOs defined"
            if not slos
            else f"{failed} of {len(slos)} SLOs failed besides"
            if failed
            else f"the {len(slos)} SLO figure(s) are within limits but not steady-state figures"
        )
        return f"FAIL: {'; '.join(clauses)}; {slo_part}."
    if not slos:
        return "No SLOs defined."
    if not failed:
        return f"All {len(slos)} SLOs met." if len(slos) > 1 else "The SLO is met."
    return f"{failed} of {len(slos)} SLOs failed."


#: Columns of the hedged-calls table (docs/results.md#hedged-calls).
HEDGE_COLUMNS = ("calls", "hedges sent", "won", "cancelled", "abandoned", "extra load")
COST_COLUMNS = ("pricing", "units", "per hour", "per month", "per million requests")


def cost_rows(data: dict[str, Any]) -> list[list[str]]:
    """The result's `cost` (docs/cost.md): a row per priced tier, per class and the total,
    [what, *COST_COLUMNS]; [] when nothing is priced."""
    bill = data.get("cost")
    if not bill:
        return []
    code = bill.get("currency")
    rows = [
        [
            f"tier {name}",
            entry["pricing"],
            f"{entry['units']:,.2f}" if "units" in entry else MISSING,
            money(entry["per_hour"], code),
            money(entry["per_month"], code),
            MISSING,
        ]
        for name, entry in bill["tiers"].items()
    ]
    rows += [
        [
            f"class {name}",
            MISSING,
            MISSING,
            money(entry["per_hour"], code),
            money(entry["per_month"], code),
            money(entry["per_million_requests"], code, 4),
        ]
        for name, entry in bill["classes"].items()
    ]
    rows.append(
        [
            "total",
            MISSING,
            MISSING,
            money(bill["total_per_hour"], code),
            money(bill["total_per_month"], code),
            money(bill["per_million_requests"], code, 4),
        ]
    )
    return rows


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


#: The latency percentiles every class table shows; `--percentiles` adds columns beside them.
SHOWN_PERCENTILES = ("p50", "p95", "p99", "p999")
_STANDARD = frozenset(LATENCY_STATISTICS)


def percentile_columns(
    data: dict[str, Any], shown: tuple[str, ...] = SHOWN_PERCENTILES
) -> list[str]:
    """The latency statistics a class table shows: `shown` plus every percentile asked for
    beyond SPEC's (p9999 ...), lowest first."""
    first = next(iter(data.get("classes", {}).values()), None)
    if first is None:
        return list(shown)
    return [k for k in first["latency"] if k in shown or k not in _STANDARD]


def share_columns(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(key of `share_over`, column header) for every latency limit the result counts."""
    first = next(iter(data.get("classes", {}).values()), None)
    keys = list((first or {}).get("share_over", {}))
    return [(key, f"> {format_duration(float(key))}") for key in keys]


def share(value: float | None) -> str:
    """A share of requests, with digits enough for tails: `0.83%`, `0.0012%` (to 3 significant
    digits, never in exponent notation)."""
    return MISSING if value is None else f"{significant(value * 100, 3)}%"
