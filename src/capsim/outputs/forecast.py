"""Renderer of `capsim forecast` (table, JSON, Markdown); figures defined in docs/forecast.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from capsim.analysis.forecast import DAYS_PER_MONTH
from capsim.errors import UsageError
from capsim.outputs import cells
from capsim.outputs.capacity import Block, _markdown, _table
from capsim.outputs.escape import terminal_data
from capsim.outputs.fit import DEFAULT_WIDTH, Column
from capsim.outputs.report_figures import Figure
from capsim.outputs.svg import PALETTE, Bars, Chart, Marker, Series
from capsim.outputs.text import render_csv_data


def _growth_line(growth: dict[str, Any]) -> str:
    text = f"growth {cells.percent(growth['monthly'])}/month (compound, from {growth['source']})"
    fit = growth.get("fit")
    if fit:
        low, high = fit["monthly_ci95"]
        text += (
            f" · 95% interval {cells.percent(low)} .. {cells.percent(high)}/month"
            f" · R² {fit['r2']:.3f} over {fit['points']} peaks"
        )
    return text


#: A plan's capacity cell lists every tier: wider than a terminal for a real platform, it wraps
#: at spaces rather than being cut (docs/cli.md: no figure is cut short).
CAPACITY = Column("capacity", justify="left", prose=True)


def _capacity_text(tiers: dict[str, Any]) -> str:
    parts = []
    for name, t in tiers.items():
        of = t.get("sized")
        value = t.get(of) if of else t.get("instances")
        parts.append(f"{name} {value}" + (f" {of}" if of else ""))
    return ", ".join(parts)


def _breach_cause(breach: dict[str, Any]) -> str:
    """What breaks first: the SLO nearest its limit, or a tier saturating while every SLO
    still holds (saturate capped the SLO limit at that tier's saturation)."""
    above = cells.rate(breach["rate"])
    if breach.get("saturation"):
        return (
            f"none before saturation: on {breach['date']} {breach['saturation']} saturates "
            f"(above {above}) with every SLO still met; nearest its limit there: {breach['slo']}"
        )
    return f"{breach['date']} ({breach['slo']}, above {above})"


def _views(data: dict[str, Any]) -> tuple[list[str], list[Block]]:
    code = data.get("currency")
    breach = data["first_slo_breach"]
    lines = [
        f"scenario {data['scenario']} · from {data['from']} until {data['until']} · "
        f"{cells.rate(data['offered_rate'])} open traffic now"
        + (f" (at {data['load']:.3g}x, --load)" if data.get("load") not in (None, 1) else ""),
        _growth_line(data["growth"]),
        "first SLO breach: "
        + (
            _breach_cause(breach)
            + (f" on event {breach['by_event']}" if breach.get("by_event") else "")
            if breach["date"]
            else "not determined: no rate met every SLO (see the notes)"
            if not breach.get("determined", True)
            else "none inside the horizon"
            + (f" (SLOs hold up to {cells.rate(breach['rate'])})" if breach["rate"] else "")
        ),
    ]
    tier_rows = [
        [
            name,
            cells.rate(t["saturation_rate"]),
            t["saturates_on"]
            or ("not inside the horizon" if t["saturation_rate"] is not None else "not measured"),
            t.get("by_event") or cells.MISSING,
        ]
        for name, t in data["tiers"].items()
    ]
    blocks: list[Block] = [("Tiers", ["tier", "saturates at", "saturates on", "event"], tier_rows)]
    if data["plan"]:
        plan_rows = [
            [
                step["date"],
                step["why"],
                f"{step['load']:.3g}x",
                cells.rate(step["rate"]),
                _capacity_text(step["tiers"]) if step["tiers"] else f"none: {step['error']}",
                cells.money(step["cost_per_hour"], code),
                cells.money(step["cost_per_month"], code),
                "yes" if step["verified"] else "NO",
            ]
            for step in data["plan"]
        ]
        blocks.append(
            (
                "Capacity plan",
                ["date", "step", "load", "rate", CAPACITY, "cost/hour", "cost/month", "verified"],
                plan_rows,
            )
        )
    return lines, blocks


def render_forecast(
    data: dict[str, Any], fmt: str, *, color: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    """A forecast in format `fmt` (table, json, markdown or csv)."""
    name = fmt.lower()
    if name == "json":
        return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    if name == "csv":
        return render_csv_data(data)
    if name == "table":
        data = terminal_data(data)
    lines, blocks = _views(data)
    notes = list(data.get("notes", []))
    if name == "table":
        return _table(lines, blocks, notes, color, width)
    if name in ("markdown", "md"):
        return _markdown("forecast", data, lines, blocks, notes)
    raise UsageError(f"capsim forecast prints table, json, markdown or csv, not {fmt!r}")


# --- The forecast section of `capsim report --forecast FILE` ---------------------------------

#: Points of the trend line drawn over the horizon.
_TREND_POINTS = 120


def _months_axis(start: date) -> Callable[[float], str]:
    """Months from `start` as the calendar month they fall in (2027-06)."""

    def label(months: float) -> str:
        return (start + timedelta(days=round(months * DAYS_PER_MONTH))).strftime("%Y-%m")

    return label


def _months(start: date, text: str) -> float:
    return (date.fromisoformat(text) - start).days / DAYS_PER_MONTH


def _load_figure(data: dict[str, Any]) -> Figure:
    """The open traffic over the horizon (trend and events) against each tier's saturation rate
    and the highest rate meeting every SLO, with the first breach marked."""
    start, end = date.fromisoformat(data["from"]), date.fromisoformat(data["until"])
    span = (end - start).days / DAYS_PER_MONTH
    monthly, now = float(data["growth"]["monthly"]), float(data["offered_rate"])
    xs = [span * i / (_TREND_POINTS - 1) for i in range(_TREND_POINTS)]
    series = [Series("trend", xs, [now * (1.0 + monthly) ** x for x in xs], color=PALETTE[0])]
    events = data.get("events") or []
    if events:
        at = [_months(start, e["date"]) for e in events]
        spikes = [
            now * (1.0 + monthly) ** x * e["multiplier"] for x, e in zip(at, events, strict=True)
        ]
        series.append(Series("seasonal events", at, spikes, color=PALETTE[1], points=True))
    markers = [
        Marker("y", t["saturation_rate"], f"{name} saturates", color=PALETTE[2 + i % 5])
        for i, (name, t) in enumerate(data["tiers"].items())
        if t.get("saturation_rate")
    ]
    breach = data["first_slo_breach"]
    if breach.get("rate"):
        markers.append(Marker("y", breach["rate"], "SLOs hold up to", color="#CC0000"))
    if breach.get("date"):
        markers.append(
            Marker(
                "x",
                _months(start, breach["date"]),
                f"{breach['saturation']} saturates {breach['date']}"
                if breach.get("saturation")
                else f"first SLO breach {breach['date']}",
            )
        )
    return Figure(
        "forecast-load",
        "Open traffic over the horizon: the trend "
        f"(compound {cells.percent(monthly)}/month from {data['growth']['source']}) and the "
        "seasonal events on their days, against each tier's saturation rate and the highest "
        "rate at which every SLO holds (horizontal lines, from capsim saturate's search). The "
        "vertical line is the first SLO breach.",
        Chart(
            key="forecast-load",
            title="Load over the horizon",
            x_label="date",
            y_label="open traffic (requests/s)",
            series=series,
            markers=markers,
            x_format=_months_axis(start),
            y_format=cells.rate,
            y_min=0.0,
            x_min=0.0,
            x_max=span,
        ),
    )


def _saturation_figure(data: dict[str, Any]) -> Figure | None:
    """Months until each tier saturates, for the tiers that saturate inside the horizon."""
    start = date.fromisoformat(data["from"])
    dated = [(name, t["saturates_on"]) for name, t in data["tiers"].items() if t["saturates_on"]]
    if not dated:
        return None
    return Figure(
        "forecast-saturation",
        "Months from the forecast's start until each tier saturates (its saturation rate is "
        "reached by the trend or an event), with the date. Tiers that do not saturate inside "
        "the horizon are not drawn; the table lists them.",
        Bars(
            key="forecast-saturation",
            title="Saturation date per tier",
            labels=[f"{name} ({day})" for name, day in dated],
            values=[_months(start, day) for _, day in dated],
            value_format=lambda months: f"{months:.1f} months",
            x_label="months from " + data["from"],
        ),
    )


def _plan_cost_figure(data: dict[str, Any]) -> Figure | None:
    """The capacity plan's cost per month at each step."""
    steps = [s for s in data["plan"] if s.get("cost_per_month") is not None]
    if not steps:
        return None
    start = date.fromisoformat(data["from"])
    code = data.get("currency")
    return Figure(
        "forecast-cost",
        f"Cost per month of the sized plan at each step, in {cells.currency(code)}: the total "
        "cost per hour of the configuration capsim size finds at that step's load × 730 hours, "
        "under each tier's pricing model (docs/cost.md)."
        + ("" if code else " " + cells.NO_CURRENCY_NOTE),
        Chart(
            key="forecast-cost",
            title="Plan cost per month",
            x_label="date",
            y_label=f"cost per month ({cells.currency(code)})",
            series=[
                Series(
                    "plan",
                    [_months(start, s["date"]) for s in steps],
                    [s["cost_per_month"] for s in steps],
                    color=PALETTE[0],
                    points=True,
                )
            ],
            x_format=_months_axis(start),
            y_format=lambda value: f"{value:,.0f}",
            y_min=0.0,
        ),
    )


def forecast_figures(data: dict[str, Any]) -> list[Figure]:
    """The forecast section's plots, in reading order."""
    figures = [_load_figure(data), _saturation_figure(data), _plan_cost_figure(data)]
    return [figure for figure in figures if figure is not None]


def forecast_sentences(data: dict[str, Any]) -> list[str]:
    """The forecast in plain sentences: growth, first breach, saturation dates, plan cost."""
    lines, _ = _views(data)
    sentences = [line[0].upper() + line[1:] + "." for line in lines[1:]]
    dated = [
        f"{name} on {t['saturates_on']}" for name, t in data["tiers"].items() if t["saturates_on"]
    ]
    later = [
        name
        for name, t in data["tiers"].items()
        if not t["saturates_on"] and t["saturation_rate"] is not None
    ]
    unmeasured = [name for name, t in data["tiers"].items() if t["saturation_rate"] is None]
    if dated:
        sentences.append("Saturation: " + ", ".join(dated) + ".")
    if later:
        sentences.append(f"Not saturated before {data['until']}: {', '.join(later)}.")
    if unmeasured:
        sentences.append(f"No saturation rate measured (see the notes): {', '.join(unmeasured)}.")
    costs = [s for s in data["plan"] if s.get("cost_per_month") is not None]
    if costs:
        code = data.get("currency")
        dearest = max(costs, key=lambda s: s["cost_per_month"])
        sentences.append(
            f"The plan costs {cells.money(costs[0]['cost_per_month'], code)} per month on "
            f"{costs[0]['date']} and {cells.money(costs[-1]['cost_per_month'], code)} on "
            f"{costs[-1]['date']}; at most {cells.money(dearest['cost_per_month'], code)} "
            f"({dearest['date']}, {dearest['why']})."
        )
    return sentences


def forecast_tables(data: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The forecast's tables (tiers, capacity plan): title, header, rows."""
    _, blocks = _views(data)
    return [
        (
            title,
            [h.header if isinstance(h, Column) else h for h in header],
            [[str(cell) for cell in row] for row in rows],
        )
        for title, header, rows in blocks
    ]
