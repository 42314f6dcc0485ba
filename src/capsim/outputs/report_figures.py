"""The figures of a sizing report, as plot specifications shared by the HTML and Markdown forms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from capsim.outputs import cells
from capsim.outputs.svg import PALETTE, Bars, Chart, Marker, Series
from capsim.units import format_duration

if TYPE_CHECKING:
    from capsim.analysis.sizing_report import SizingReport

#: What the report says where the over-time plots would be, for a result without `timeseries`.
NO_TIMESERIES = (
    "Time series are not available for this run: the result has no `timeseries`, so "
    "occupancy, utilisation, queue length and in-flight requests over time cannot be plotted."
)
_LATENCY_STATISTICS = ("mean", "p50", "p90", "p95", "p99", "p999", "max")


@dataclass(frozen=True)
class Figure:
    """One plot of the report: `key` names its file and its `data-chart`; `caption` explains it."""

    key: str
    caption: str
    spec: Chart | Bars


def _duration(value: float) -> str:
    return format_duration(value)


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _rate(value: float) -> str:
    return f"{value:,.4g}/s"


def _money(value: float) -> str:
    return f"{value:,.2f}/month"


def _count(value: float) -> str:
    return f"{value:.4g}"


def latency_slos(result: dict[str, Any], statistic: str | None = None) -> list[dict[str, Any]]:
    """The class latency SLO verdicts (of one statistic when given)."""
    return [
        slo
        for slo in result.get("slos", [])
        if "class" in slo
        and slo.get("statistic") in _LATENCY_STATISTICS
        and (statistic is None or slo["statistic"] == statistic)
    ]


def class_colors(result: dict[str, Any]) -> dict[str, str]:
    """One colour per class, the same in every plot (and for the class's SLO lines)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(result.get("classes", {}))}


def cdf_figure(report: SizingReport) -> Figure:
    colors = class_colors(report.result)
    # Each CDF starts from 0 at its smallest latency, so that a mass of equal latencies (cache
    # hits at a constant lookup time) shows as the vertical step it is.
    series = [
        Series(
            name,
            [cdf["latency"][0], *cdf["latency"]],
            [0.0, *cdf["fraction"]],
            color=colors.get(name),
        )
        for name, cdf in report.cdf.items()
        if cdf["latency"]
    ]
    markers = [
        Marker(
            "x",
            slo["limit"],
            f"SLO {slo['class']} {slo['statistic']} ≤ {_duration(slo['limit'])}",
            color=colors.get(slo["class"], "#444444"),
        )
        for slo in latency_slos(report.result)
    ]
    return Figure(
        "latency-cdf",
        "End-to-end latency distribution per class (log scale): the fraction of requests that "
        "finished within each latency. Dashed lines, in the class's colour, are its latency SLOs.",
        Chart(
            key="latency-cdf",
            title="End-to-end latency CDF per class",
            x_label="latency",
            y_label="fraction of requests",
            series=series,
            markers=markers,
            x_log=True,
            x_format=_duration,
            y_format=_percent,
            y_min=0.0,
            y_max=1.0,
        ),
    )


def load_figure(report: SizingReport) -> Figure | None:
    curve = report.curve
    if curve is None:
        return None
    colors = class_colors(report.result)
    series = [
        Series(name, curve["rate"], entry["p99"], color=colors.get(name), points=True)
        for name, entry in curve["classes"].items()
    ]
    markers: list[Marker] = []
    if curve.get("knee") is not None:
        markers.append(
            Marker("x", curve["knee"], f"knee ≈ {_rate(curve['knee'])}", color="#333333")
        )
    if curve.get("current_rate"):
        markers.append(
            Marker("x", curve["current_rate"], "scenario's load", color="#AAAAAA", dashed=False)
        )
    for slo in latency_slos(report.result, "p99"):
        markers.append(
            Marker(
                "y",
                slo["limit"],
                f"SLO {slo['class']} p99 ≤ {_duration(slo['limit'])}",
                color=colors.get(slo["class"], "#CC0000"),
            )
        )
    unstable = [
        _rate(rate)
        for rate, stable in zip(curve["rate"], curve["stable"], strict=True)
        if not stable
    ]
    factor = curve.get("knee_factor") or 2
    caption = (
        "p99 latency per class against the total offered rate of the open classes, scaled "
        "together with the mix as written, from capsim saturate's search. The knee (dark dashed "
        f"line) is the lowest load at which some class's p99 reaches {factor:g}x its value at "
        "the lightest load; dashed horizontal lines in a class's colour are its p99 SLO."
    )
    if unstable:
        caption += (
            f" At {', '.join(unstable)} a tier was overloaded: no steady state, so no p99 is "
            "drawn there."
        )
    return Figure(
        "p99-vs-load",
        caption,
        Chart(
            key="p99-vs-load",
            title="p99 latency against load",
            x_label="offered load (requests/s)",
            y_label="p99 latency",
            series=series,
            markers=markers,
            x_format=_rate,
            y_format=_duration,
            y_min=0.0,
        ),
    )


def _over_time(
    timeseries: dict[str, Any],
    field: str,
    key: str,
    title: str,
    label: str,
    fmt: Any,
    section: str = "tiers",
    warmup: float | None = None,
) -> Figure | None:
    t = timeseries.get("t") or []
    series = [
        Series(name, t, [math.nan if v is None else v for v in entry[field]])
        for name, entry in (timeseries.get(section) or {}).items()
        if isinstance(entry.get(field), list) and len(entry[field]) == len(t)
    ]
    if not series:
        return None
    what = "tier" if section == "tiers" else "class"
    return Figure(
        key,
        f"{title} per {what}, per time bucket of {_duration(float(timeseries.get('bucket') or 0))}, "
        "counted from the start of the warm-up.",
        Chart(
            key=key,
            title=title,
            x_label="simulated time",
            y_label=label,
            series=series,
            markers=[Marker("x", warmup, "end of warm-up", color="#AAAAAA")] if warmup else [],
            x_format=_duration,
            y_format=fmt,
            y_min=0.0,
        ),
    )


def _held_over_time(timeseries: dict[str, Any], warmup: float | None) -> Figure | None:
    """Workers held per tier over time: the figure that saturates a tier (occupancy, which for a
    tier whose workers never wait on calls is its utilisation), with a dashed utilisation line
    beside it for every tier whose workers are held longer than they work."""
    t = timeseries.get("t") or []
    series = []
    for index, (name, entry) in enumerate((timeseries.get("tiers") or {}).items()):
        busy = entry.get("utilization")
        occupied = entry.get("occupancy")
        if not isinstance(busy, list) or len(busy) != len(t):
            continue
        if not isinstance(occupied, list) or len(occupied) != len(t):
            occupied = busy
        held = [_larger(o, u) for o, u in zip(occupied, busy, strict=True)]
        color = PALETTE[index % len(PALETTE)]
        series.append(Series(name, t, held, color=color))
        if any(
            math.isfinite(h) and u is not None and h - u > 0.01
            for h, u in zip(held, busy, strict=True)
        ):
            series.append(
                Series(
                    f"{name} utilisation",
                    t,
                    [math.nan if u is None else u for u in busy],
                    color=color,
                    dashed=True,
                )
            )
    if not series:
        return None
    return Figure(
        "occupancy-over-time",
        "Share of each tier's workers held per time bucket of "
        f"{_duration(float(timeseries.get('bucket') or 0))}, counted from the start of the "
        "warm-up: occupancy, the figure that saturates (a blocking worker is held while it waits "
        "on its calls, a queue's consumer while it handles a message). Where a tier's workers "
        "are held longer than they work, its utilisation (the work alone) is the dashed line in "
        "the same colour: a tier can be full at a low utilisation.",
        Chart(
            key="occupancy-over-time",
            title="Workers held over time (occupancy)",
            x_label="simulated time",
            y_label="occupancy",
            series=series,
            markers=[Marker("x", warmup, "end of warm-up", color="#AAAAAA")] if warmup else [],
            x_format=_duration,
            y_format=_percent,
            y_min=0.0,
        ),
    )


def _larger(occupied: float | None, busy: float | None) -> float:
    values = [v for v in (occupied, busy) if v is not None]
    return max(values) if values else math.nan


def _changes(values: Any) -> bool:
    numbers = [v for v in values or [] if isinstance(v, int | float)]
    return bool(numbers) and max(numbers) - min(numbers) > 1e-6 * max(abs(max(numbers)), 1.0)


def timeseries_figures(report: SizingReport) -> list[Figure]:
    """Occupancy (with utilisation beside it where they differ), queue length, in-flight
    requests, (when they change) instances per tier and p99 per class over time, from the
    result's `timeseries`."""
    timeseries = report.result.get("timeseries")
    if not isinstance(timeseries, dict):
        return []
    warmup = report.result.get("warmup")
    figures = [
        _held_over_time(timeseries, warmup),
        _over_time(
            timeseries,
            "queue_length",
            "queue-over-time",
            "Queue length over time",
            "requests waiting",
            _count,
            warmup=warmup,
        ),
        _over_time(
            timeseries,
            "in_flight",
            "in-flight-over-time",
            "Requests in flight over time",
            "requests in flight",
            _count,
            warmup=warmup,
        ),
    ]
    tiers = timeseries.get("tiers") or {}
    if any(_changes(entry.get("instances")) for entry in tiers.values()):
        figures.append(
            _over_time(
                timeseries,
                "instances",
                "instances-over-time",
                "Instances over time",
                "instances",
                _count,
                warmup=warmup,
            )
        )
    figures.append(
        _over_time(
            timeseries,
            "p99",
            "p99-over-time",
            "p99 latency over time",
            "p99 latency",
            _duration,
            section="classes",
            warmup=warmup,
        )
    )
    return [figure for figure in figures if figure is not None]


def cost_figure(report: SizingReport) -> Figure | None:
    if not report.costs:
        return None
    names = list(report.costs)
    return Figure(
        "cost-per-tier",
        "Cost per tier per month (priced units × price per unit-hour × 730.5 hours).",
        Bars(
            key="cost-per-tier",
            title="Cost per tier",
            labels=names,
            values=[report.costs[name]["per_month"] for name in names],
            value_format=_money,
        ),
    )


def report_figures(report: SizingReport) -> list[Figure]:
    """Every figure the report shows, in reading order."""
    figures: list[Figure | None] = [cdf_figure(report), load_figure(report)]
    figures += timeseries_figures(report)
    figures.append(cost_figure(report))
    return [figure for figure in figures if figure is not None]


def summary_sentences(report: SizingReport) -> list[str]:
    """The verdict, the bottleneck and the knee in plain sentences."""
    result = report.result
    sentences = [cells.verdict_line(result)]
    failed = [slo for slo in result.get("slos", []) if not slo["passed"]]
    for slo in failed:
        sentences.append(
            f"Failed: {slo['slo']} (observed {cells.slo_observed(slo)}, limit {cells.slo_limit(slo)})."
        )
    bottleneck = report.bottleneck
    if bottleneck:
        text = (
            f"Bottleneck: {bottleneck['tier']}, its workers held {_percent(bottleneck['occupancy'])} "
            "of the time"
        )
        if bottleneck.get("saturation_rate"):
            text += (
                f"; at the same mix it would saturate near {_rate(bottleneck['saturation_rate'])} "
                f"of open traffic (now {_rate(bottleneck['offered_rate'])})"
            )
        if not bottleneck.get("stable", True):
            text += f"; it is {cells.OVERLOADED}"
        sentences.append(text + ".")
    curve = report.curve
    if curve and curve.get("knee") is not None:
        who = f"p99 of {curve['knee_class']}" if curve.get("knee_class") else "p99"
        factor = curve.get("knee_factor") or 2
        sentences.append(
            f"Latency knee: {who} reaches {factor:g}x its light-load value near "
            f"{_rate(curve['knee'])}."
        )
    if curve and curve.get("max_rate_meeting_slos") is not None:
        sentences.append(
            f"Every SLO holds up to about {_rate(curve['max_rate_meeting_slos'])} of open traffic."
        )
    if report.costs:
        total = sum(cost["per_month"] for cost in report.costs.values())
        sentences.append(f"Cost of the priced tiers: {_money(total)}.")
    return sentences
