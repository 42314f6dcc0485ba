"""Renderers for calibrate, backtest and fit-usl: tables (rich), Markdown, JSON, and the USL plot."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from capsim.analysis.stats import sanitise
from capsim.outputs import cells
from capsim.outputs.escape import markdown_text
from capsim.outputs.svg import Chart, Marker, Series, render_chart
from capsim.outputs.text import markdown_table, render_csv_data
from capsim.textsafe import visible


@dataclass
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Document:
    """What a command shows: a title, tables, closing lines and (Markdown only) figures."""

    title: str
    data: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


def render_document(document: Document, fmt: str, *, color: bool = False, width: int = 120) -> str:
    if fmt == "json":
        return (
            json.dumps(sanitise(document.data), indent=2, allow_nan=False, ensure_ascii=False)
            + "\n"
        )
    if fmt == "csv":
        return render_csv_data(sanitise(document.data))  # type: ignore[arg-type]
    if fmt == "markdown":
        out = [f"# {markdown_text(document.title)}", ""]
        for section in document.sections:
            out += [f"## {markdown_text(section.title)}", ""]
            out += markdown_table(section.header, section.rows, range(1, len(section.header)))
            out.append("")
        out += [f"- {markdown_text(line)}" for line in document.lines]
        for figure in document.figures:
            out += ["", figure]
        return "\n".join(out).rstrip() + "\n"
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
    )
    # Text from data (file names, scenario names, notes) is shown as it is: no rich markup and
    # no control character (docs/robustness.md, "Text from data").
    console.print(visible(document.title), markup=False)
    for section in document.sections:
        table = Table(
            title=Text(visible(section.title)), box=box.SIMPLE_HEAVY, title_justify="left"
        )
        for i, name in enumerate(section.header):
            table.add_column(Text(visible(name)), justify="left" if i == 0 else "right")
        for row in section.rows:
            table.add_row(*(Text(visible(cell)) for cell in row))
        console.print(table)
    for line in document.lines:
        console.print(visible(line), markup=False, soft_wrap=True)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _interval(pair: Sequence[float] | None, form: Any = cells.time) -> str:
    if not pair or not all(isinstance(v, int | float) and math.isfinite(v) for v in pair):
        return cells.MISSING
    return f"[{form(pair[0])}, {form(pair[1])}]"


def calibration_document(summary: dict[str, Any], output: str | None) -> Document:
    classes = [
        [
            name,
            c["entry"],
            cells.rate(c["rate"]),
            _interval(c.get("rate_ci95"), cells.rate),
            "yes" if c.get("profile") else "no",
            cells.time(c.get("latency", {}).get("p50")),
            cells.time(c.get("latency", {}).get("p99")),
        ]
        for name, c in summary["classes"].items()
    ]
    work = []
    for tier, t in summary["tiers"].items():
        for cls, c in t.get("classes", {}).items():
            calls = ", ".join(
                f"{target} p={f['probability']:.3f}" + (" async" if f["asynchronous"] else "")
                for target, f in c.get("calls", {}).items()
            )
            work.append(
                [
                    tier,
                    cls,
                    str(c["visits"]),
                    c["family"],
                    cells.time(c["mean"]),
                    _interval(c.get("mean_ci95")),
                    f"{c['cv']:.3g}",
                    calls or cells.MISSING,
                ]
            )
    sections = [
        Section(
            "Request classes",
            ["class", "entry", "rate", "95% CI", "profile", "p50", "p99"],
            classes,
        )
    ]
    if work:
        sections.append(
            Section(
                "Service times (self time) and calls",
                ["tier", "class", "visits", "fit", "mean", "95% CI", "cv", "calls"],
                work,
            )
        )
    demand_rows = [
        [
            d["tier"],
            cls,
            cells.time(value),
            _interval(d["intervals"][cls]) if not d.get("interval_unknown") else "unknown*",
            str(d["intervals_used"]),
            f"{d['r_squared']:.3f}",
        ]
        for d in summary.get("demands", [])
        for cls, value in d["demands"].items()
    ]
    if demand_rows:
        sections.append(
            Section(
                "Service demand from aggregates",
                ["tier", "class", "demand", "95% CI", "intervals", "R²"],
                demand_rows,
            )
        )
    steps = [
        [
            s["source"],
            s["tool"],
            cells.count(s["users"]),
            cells.rate(s["throughput"]),
            cells.time(s["latency"].get("p50")),
            cells.time(s["latency"].get("p99")),
        ]
        for s in summary.get("load_steps", [])
    ]
    if steps:
        sections.append(
            Section("Load steps", ["file", "tool", "users", "throughput", "p50", "p99"], steps)
        )
    lines = [
        f"* {d['tier']}: 95% CI unknown: {d['interval_unknown']}"
        for d in summary.get("demands", [])
        if d.get("interval_unknown")
    ]
    lines.append(
        f"scenario written to {output}" if output else "no scenario written (give -o FILE)"
    )
    return Document(
        title="capsim calibrate · " + ", ".join(summary["sources"]),
        data=summary,
        sections=sections,
        lines=lines,
    )


_BACKTEST_FORMS = {"utilization": cells.percent, "throughput": cells.rate}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _predicted_cell(figure: str, value: Any) -> str:
    """A predicted figure, or the missing mark where the simulation had none (no request of the
    class completed)."""
    return _BACKTEST_FORMS.get(figure, cells.time)(value) if _finite(value) else cells.MISSING


def backtest_document(data: dict[str, Any]) -> Document:
    rows = [
        [
            f"{r['what']} {r['name']}",
            r["figure"],
            _BACKTEST_FORMS.get(r["figure"], cells.time)(r["measured"])
            + (cells.LOW_SAMPLE_MARK if r.get("measured_low_sample") else ""),
            _predicted_cell(r["figure"], r["predicted"])
            + (cells.LOW_SAMPLE_MARK if r.get("predicted_low_sample") else ""),
            f"{r['error'] * 100:+.1f}%" if _finite(r["error"]) else cells.MISSING,
            f"±{r['tolerance'] * 100:.0f}%",
            "ok" if r["passed"] else "OFF",
        ]
        for r in data["comparisons"]
    ]
    lines = [_backtest_verdict(data), *[f"note: {n}" for n in data.get("notes", [])]]
    return Document(
        title=f"capsim backtest · {data['scenario']}",
        data=data,
        sections=[
            Section(
                "Predicted against measured",
                ["what", "figure", "measured", "predicted", "error", "tolerance", "verdict"],
                rows,
            )
        ],
        lines=lines,
    )


def _backtest_verdict(data: dict[str, Any]) -> str:
    """The verdict line: PASS, FAIL, or NOT CONFIRMED when no row can confirm the model; a
    pass says how many rows (low-sample percentiles) it did not count."""
    rows = data["comparisons"]
    low = sum(1 for r in rows if r.get("low_sample"))
    caveat = (
        f" ({low} percentile{'s' if low > 1 else ''} marked {cells.LOW_SAMPLE_MARK}, measured or "
        "simulated from fewer than 10/(1-q) values, cannot confirm the model and "
        f"{'are' if low > 1 else 'is'} not counted)"
    )
    if data["passed"]:
        return "PASS: the model predicts the measurements within tolerance" + (
            caveat if low else ""
        )
    if data.get("overloaded"):
        tiers = ", ".join(entry["tier"] for entry in data["overloaded"])
        return (
            f"FAIL: the model is off: tier OVERLOADED at the measured load ({tiers}: not in "
            "steady state), a load the measured system served"
        )
    if all(r["passed"] for r in rows):
        return (
            "NOT CONFIRMED: every compared figure is a percentile measured or simulated from "
            "fewer than 10/(1-q) values (marked *); measure (or simulate, --duration) longer"
        )
    return "FAIL: the model is off (rows marked OFF)"


def usl_chart_spec(data: dict[str, Any]) -> Chart:
    """The USL plot: measured steps, the fitted curve, N* and X_max, and capsim saturate's
    saturation rate when it was run beside the fit."""
    measured = Series("measured", data["concurrency"], data["throughput"], points=True, dashed=True)
    fitted = Series("USL fit", data["curve"]["concurrency"], data["curve"]["throughput"])
    markers = []
    if data["peak_concurrency"] is not None:
        markers.append(
            Marker("x", data["peak_concurrency"], f"N* = {data['peak_concurrency']:.3g}")
        )
    if data["peak_throughput"] is not None:
        markers.append(
            Marker("y", data["peak_throughput"], f"X_max = {cells.rate(data['peak_throughput'])}")
        )
    saturate = data.get("saturate") or {}
    if saturate.get("saturation_rate"):
        markers.append(
            Marker(
                "y",
                saturate["saturation_rate"],
                f"saturate: {cells.rate(saturate['saturation_rate'])}",
                color="#D55E00",
            )
        )
    return Chart(
        key="usl",
        title="Throughput against concurrency (Universal Scalability Law)",
        x_label="concurrency N",
        y_label="throughput X(N) /s",
        series=[measured, fitted],
        markers=markers,
        y_min=0.0,
    )


def usl_chart(data: dict[str, Any]) -> str:
    return render_chart(usl_chart_spec(data))


USL_HEADER = ["parameter", "estimate", "95% CI"]


def usl_rows(data: dict[str, Any]) -> list[list[str]]:
    """λ, σ, κ, N* and X_max with their 95% intervals, as table cells."""

    def row(name: str, key: str, form: Any) -> list[str]:
        value = data[key]
        return [
            name,
            cells.MISSING if value is None else form(value),
            _interval(data["ci95"].get(key), form),
        ]

    def number(value: float) -> str:
        return f"{value:.4g}"

    return [
        row("λ (throughput of one user)", "lambda", cells.rate),
        row("σ (contention)", "sigma", number),
        row("κ (coherency)", "kappa", number),
        row("N* peak concurrency", "peak_concurrency", number),
        row("X_max peak throughput", "peak_throughput", cells.rate),
    ]


def usl_comparison(data: dict[str, Any]) -> str | None:
    """capsim saturate's answer beside X_max, as one sentence (None when it was not run)."""
    saturate = data.get("saturate")
    if not saturate:
        return None
    versus = saturate["difference_from_peak_throughput"]
    rate = saturate["saturation_rate"]
    return (
        f"capsim saturate on {saturate['scenario']} ({saturate.get('class', '')}): "
        + (
            f"saturates at {cells.rate(rate)} (bottleneck {saturate['bottleneck']})"
            if rate
            else "no saturation rate found"
        )
        + (f", {versus * 100:+.1f}% from the USL's X_max" if versus is not None else "")
    )


def usl_document(data: dict[str, Any], with_chart: bool) -> Document:
    rows = usl_rows(data)
    points = [
        [cells.count(n), cells.rate(x), cells.rate(f)]
        for n, x, f in zip(data["concurrency"], data["throughput"], data["fitted"], strict=True)
    ]
    lines = [
        f"R² {data['r_squared']:.4f} over {data['points']} steps",
        "λ, σ, κ intervals: weighted least-squares covariance (Student t); N* and X_max: residual bootstrap",
    ]
    comparison = usl_comparison(data)
    if comparison:
        lines.append(comparison)
    lines += [f"note: {n}" for n in data.get("notes", [])]
    return Document(
        title="capsim fit-usl · " + ", ".join(data["sources"]),
        data=data,
        sections=[
            Section("USL parameters", USL_HEADER, rows),
            Section("Steps", ["N", "measured X", "fitted X"], points),
        ],
        lines=lines,
        figures=[usl_chart(data)] if with_chart else [],
    )
