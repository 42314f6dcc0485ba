"""The figures of a sizing report, as plot specifications shared by the HTML and Markdown forms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from capsim.analysis.saturate import KNEE_AT_SATURATION
from capsim.outputs import cells
from capsim.outputs.svg import PALETTE, Bars, Chart, Marker, Series
from capsim.units import format_duration
from capsim.vocabulary import LATENCY_STATISTICS

if TYPE_CHECKING:
    from capsim.analysis.sizing_report import SizingReport

#: What the report says where the over-time plots would be, for a result without `timeseries`.
NO_TIMESERIES = (
    "Time series are not available for this run: the result has no `timeseries`, so "
    "occupancy, utilization, queue length and in-flight requests over time cannot be plotted."
)


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
    return f"{cells.significant(value)}/s"


def _count(value: float) -> str:
    return cells.significant(value)


def cost_header(code: str | None) -> list[str]:
    """The header of the cost table, every money column labelled with its currency."""
    label = cells.currency(code)
    return [
        "tier",
        "pricing",
        "units",
        f"price/unit-hour ({label})",
        f"per hour ({label})",
        f"per month ({label})",
    ]


#: Values whose largest is at least this many times their smallest get a log axis: on a linear
#: one the small values would sit squashed against the bottom.
LOG_SPAN = 10.0


def spans_decades(values: Any) -> bool:
    """Whether the positive finite `values` span at least LOG_SPAN (a decade) from low to high."""
    usable = [v for v in values if isinstance(v, int | float) and math.isfinite(v) and v > 0]
    return bool(usable) and max(usable) >= LOG_SPAN * min(usable)


def latency_slos(result: dict[str, Any], statistic: str | None = None) -> list[dict[str, Any]]:
    """The class latency SLO verdicts (of one statistic when given)."""
    return [
        slo
        for slo in result.get("slos", [])
        if "class" in slo
        and slo.get("statistic") in LATENCY_STATISTICS
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
    log = spans_decades(y for s in series for y in s.ys)
    if log:
        caption += " The latency axis is logarithmic: p99 spans more than a decade."
    return Figure(
        "p99-vs-load",
        caption,
        Chart(
            key="p99-vs-load",
            title="p99 latency against load",
            x_label="offered load (requests/s)",
            y_label="p99 latency" + (" (log scale)" if log else ""),
            series=series,
            markers=markers,
            x_format=_rate,
            y_format=_duration,
            y_min=None if log else 0.0,
            y_log=log,
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
    bucket = float(timeseries.get("bucket") or 0)
    log = field == "p99" and spans_decades(y for s in series for y in s.ys)
    return Figure(
        key,
        f"{title} per {what}, per time bucket of {_duration(bucket)}, "
        "counted from the start of the warm-up."
        + (" The axis is logarithmic: the values span more than a decade." if log else ""),
        Chart(
            key=key,
            title=title,
            x_label="simulated time",
            y_label=label + (" (log scale)" if log else ""),
            series=series,
            markers=[Marker("x", warmup, "end of warm-up", color="#AAAAAA")] if warmup else [],
            x_format=_duration,
            y_format=fmt,
            y_min=None if log else 0.0,
            y_log=log,
            # The axis ends where the data ends: the last bucket's end.
            x_min=float(t[0]),
            x_max=float(t[-1]) + bucket,
            x_time=True,
        ),
    )


def _held_over_time(timeseries: dict[str, Any], warmup: float | None) -> Figure | None:
    """Workers held per tier over time: the figure that saturates a tier (occupancy, which for a
    tier whose workers never wait on calls is its utilization), with a dashed utilization line
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
                    f"{name} utilization",
                    t,
                    [math.nan if u is None else u for u in busy],
                    color=color,
                    dashed=True,
                )
            )
    if not series:
        return None
    bucket = float(timeseries.get("bucket") or 0)
    return Figure(
        "occupancy-over-time",
        "Share of each tier's workers held per time bucket of "
        f"{_duration(bucket)}, counted from the start of the "
        "warm-up: occupancy, the figure that saturates (a blocking worker is held while it waits "
        "on its calls, a queue's consumer while it handles a message). Where a tier's workers "
        "are held longer than they work, its utilization (the work alone) is the dashed line in "
        "the same colour: a tier can be full at a low utilization.",
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
            # The axis ends where the data ends: the last bucket's end.
            x_min=float(t[0]),
            x_max=float(t[-1]) + bucket,
            x_time=True,
        ),
    )


def _larger(occupied: float | None, busy: float | None) -> float:
    values = [v for v in (occupied, busy) if v is not None]
    return max(values) if values else math.nan


def _changes(values: Any) -> bool:
    numbers = [v for v in values or [] if isinstance(v, int | float)]
    return bool(numbers) and max(numbers) - min(numbers) > 1e-6 * max(abs(max(numbers)), 1.0)


def timeseries_figures(report: SizingReport) -> list[Figure]:
    """Occupancy (with utilization beside it where they differ), queue length, in-flight
    requests, arrivals, (when they change) instances per tier and p99 per class over time, from
    the result's `timeseries`."""
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
        _over_time(
            timeseries,
            "arrivals",
            "arrivals-over-time",
            "Arrivals over time",
            "requests per second (every attempt)",
            _rate,
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
        f"Cost per tier per month in {cells.currency(report.currency)}: its instances under its "
        "pricing model plus its request, GB-second and per-GB prices at the run's load, per "
        "hour × 730 hours (docs/cost.md)."
        + ("" if report.currency else " " + cells.NO_CURRENCY_NOTE),
        Bars(
            key="cost-per-tier",
            title="Cost per tier",
            labels=names,
            values=[report.costs[name]["per_month"] for name in names],
            value_format=lambda value: f"{cells.money(value, report.currency)}/month",
        ),
    )


def usl_figure(report: SizingReport) -> Figure | None:
    """`capsim report --usl`: the load test's throughput against concurrency with its USL fit."""
    if not report.usl:
        return None
    from capsim.outputs.calibration import usl_chart_spec

    return Figure(
        "usl",
        "Throughput against concurrency of the load test (points), the Universal Scalability "
        "Law fitted to it (line), its peak concurrency N* and peak throughput X_max, and "
        "capsim saturate's saturation rate on this scenario (docs/calibration.md).",
        usl_chart_spec(report.usl),
    )


def report_figures(report: SizingReport) -> list[Figure]:
    """Every figure the report shows, in reading order."""
    figures: list[Figure | None] = [cdf_figure(report), load_figure(report)]
    figures += timeseries_figures(report)
    figures.append(cost_figure(report))
    figures.append(usl_figure(report))
    return [figure for figure in figures if figure is not None]


#: Notes of `capsim saturate` that say why no rate meets every SLO.
_NO_RATE_NOTES = ("the SLOs fail even at", "max_rate_meeting_slos is unknown")


def _no_rate_meeting_slos(curve: dict[str, Any]) -> str:
    """Why the load curve found no rate at which every SLO holds, from the search's notes."""
    why = [n for n in curve.get("notes", []) if any(cue in n for cue in _NO_RATE_NOTES)]
    sentence = "No load on the curve was found at which every SLO holds"
    return sentence + (f": {why[0]}." if why else ".")


#: What each saturation figure is, as the report's summary labels it (docs/report.md).
RUN_ESTIMATE = "the run's utilization-law estimate (this one load: throughput over the share held)"
VERIFIED_SEARCH = "capsim saturate's verified search (stable below it, saturated above)"
ANALYTIC_BOUND = "the analytic bound (capsim solve's queueing formulas, light-load demands)"


def _saturation_source(bottleneck: dict[str, Any]) -> str:
    if bottleneck.get("source") == "capsim saturate":
        return "verified search"
    return "this run's utilization-law estimate"


#: Occupancy above utilization by more than this: the tier's workers wait on their calls.
HELD_THROUGH_CALLS = 0.1


def _held_through_calls(bottleneck: dict[str, Any]) -> str:
    """A caveat on one run's extrapolation of a tier whose workers are held through their calls
    (a blocking tier, a queue's consumers): those calls take longer as the load grows, so the
    tier saturates sooner than its share held scaled in proportion says (docs/report.md)."""
    if bottleneck.get("source") == "capsim saturate":
        return ""
    held, work = bottleneck.get("occupancy") or 0.0, bottleneck.get("utilization") or 0.0
    if held - work <= HELD_THROUGH_CALLS:
        return ""
    return (
        "; its workers are held through its calls, which take longer as the load grows, so it "
        "may saturate sooner (the load curve, without --no-curve, measures where)"
    )


def saturation_figures(
    result: dict[str, Any], bottleneck: dict[str, Any]
) -> list[tuple[str, float]]:
    """Every saturation rate the report shows, each with what it is: the run's overload
    entries (utilization law), the search's, the analytic bound; the first two only once."""
    figures: list[tuple[str, float]] = []
    for failure in result.get("overloaded") or []:
        value = failure.get("saturation_rate")
        if isinstance(value, int | float):
            figures.append((f"{RUN_ESTIMATE} for {failure['tier']}", float(value)))
    searched = bottleneck.get("saturation_rate")
    if isinstance(searched, int | float):
        label = VERIFIED_SEARCH if bottleneck.get("source") == "capsim saturate" else RUN_ESTIMATE
        if label != RUN_ESTIMATE or not figures:
            figures.append((label, float(searched)))
    analytic = bottleneck.get("analytic_rate")
    if isinstance(analytic, int | float):
        figures.append((ANALYTIC_BOUND, float(analytic)))
    return figures


def _knee_sentence(curve: dict[str, Any]) -> str:
    """Where p99 bends; when saturate put the knee at saturation because p99 never reached the
    factor below it (its note says so), the sentence says that rather than claim p99 got there."""
    factor = curve.get("knee_factor") or 2
    if any(note.startswith(KNEE_AT_SATURATION) for note in curve.get("notes", [])):
        return (
            f"Latency knee: p99 stayed below {factor:g}x its light-load value up to "
            f"saturation; the knee is put at the saturation estimate, {_rate(curve['knee'])}."
        )
    who = f"p99 of {curve['knee_class']}" if curve.get("knee_class") else "p99"
    near = _rate(curve["knee"])
    return f"Latency knee: {who} reaches {factor:g}x its light-load value near {near}."


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
                f"of open traffic ({_saturation_source(bottleneck)}; now "
                f"{_rate(bottleneck['offered_rate'])})"
            ) + _held_through_calls(bottleneck)
        elif bottleneck.get("offered_rate"):
            text += (
                f"; it is saturated at the {_rate(bottleneck['offered_rate'])} of open traffic "
                "offered now (the report's load curve, without --no-curve, finds where it "
                "saturates)"
            )
        if not bottleneck.get("stable", True):
            text += f"; it is {cells.OVERLOADED}"
        sentences.append(text + ".")
        figures = saturation_figures(result, bottleneck)
        if len(figures) > 1:
            sentences.append(
                "Saturation figures, each by its own method (docs/report.md): "
                + "; ".join(f"{_rate(value)} {label}" for label, value in figures)
                + ". They differ by the noise and the assumptions of each method; the verified "
                "search is the one to plan with."
            )
    curve = report.curve
    if curve and curve.get("knee") is not None:
        sentences.append(_knee_sentence(curve))
    if curve and curve.get("max_rate_meeting_slos") is not None:
        sentences.append(
            f"Every SLO holds up to about {_rate(curve['max_rate_meeting_slos'])} of open traffic."
        )
    elif curve and result.get("slos"):
        sentences.append(_no_rate_meeting_slos(curve))
    if report.costs:
        total = sum(cost["per_month"] for cost in report.costs.values())
        sentences.append(
            f"Cost of the priced tiers: {cells.money(total, report.currency)} per month."
        )
    return sentences
