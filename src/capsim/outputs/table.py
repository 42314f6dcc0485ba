"""The terminal view of a Report: rich tables rendered to a string."""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from capsim.analysis.report import Report
from capsim.outputs import cells
from capsim.outputs.escape import terminal_data

#: Width of the rendered table: wide enough for every column, narrow enough for a laptop.
WIDTH = 120


def plain_cells(row: list[Any]) -> list[Any]:
    """Table cells as rich `Text`: a string from data is shown as it is, never read as markup
    (`[red]`, `[link=...]`)."""
    return [Text(cell) if isinstance(cell, str) else cell for cell in row]


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", padding=(0, 1))


def _classes_table(data: dict[str, Any]) -> Table:
    table = _table("Request classes")
    table.add_column("class")
    percentiles, shares = cells.percentile_columns(data), cells.share_columns(data)
    for name in ("offered", "throughput", "errors", *percentiles, *(h for _, h in shares)):
        table.add_column(name, justify="right")
    for name, entry in data["classes"].items():
        table.add_row(
            Text(name),
            cells.rate(entry["offered_rate"]),
            cells.rate(entry["throughput"]),
            cells.errors(entry),
            *cells.class_figures(entry, percentiles, shares),
        )
    return table


def _tiers_table(data: dict[str, Any]) -> Table:
    table = _table("Tiers")
    table.add_column("tier")
    for name in ("utilisation", "occupancy", "throughput", "queue mean", "wait p99", "rejected"):
        table.add_column(name, justify="right")
    table.add_column("status", no_wrap=True)
    for name, entry in data["tiers"].items():
        status = Text(cells.tier_status(entry), style="" if entry["stable"] else "bold red")
        table.add_row(
            Text(name),
            cells.percent(entry["utilization"]),
            cells.percent(entry.get("occupancy")),
            cells.rate(entry["throughput"]),
            cells.number(entry["queue_length"]["mean"]),
            cells.percentile(entry, "wait", "p99"),
            cells.count(entry["rejected"]),
            status,
        )
    return table


def _hedges_table(rows: list[list[str]]) -> Table:
    table = _table("Hedged calls (by callee)")
    table.add_column("tier")
    for name in cells.HEDGE_COLUMNS:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _slos_table(data: dict[str, Any]) -> Table:
    table = _table("SLOs")
    table.add_column("verdict")
    table.add_column("objective")
    table.add_column("observed", justify="right")
    table.add_column("limit", justify="right")
    for verdict in data["slos"]:
        mark = (
            Text("✓ PASS", style="green") if verdict["passed"] else Text("✗ FAIL", style="bold red")
        )
        table.add_row(
            mark, Text(verdict["slo"]), cells.slo_observed(verdict), cells.slo_limit(verdict)
        )
    return table


def _worst_windows(data: dict[str, Any]) -> list[str]:
    """One line per class with a time series: its peak bucket p99, and when it happened."""
    series = data.get("timeseries")
    if not series:
        return []
    bucket = series["bucket"]
    lines = []
    for name, worst in series.get("worst", {}).items():
        start = worst["t"]
        lines.append(
            f"worst window for {name}: p99 {cells.time(worst['p99'])} in the "
            f"{cells.time(bucket)} from t = {cells.time(start)} (time series: --format json)"
        )
    return lines


def render_table(report: Report, color: bool = True, width: int = WIDTH) -> str:
    """The result as terminal tables; with `color=False` plain text without escape codes."""
    data = report.data
    # Each percentile or share column beyond the usual ones needs about 11 more characters.
    extra = len(cells.percentile_columns(data)) - len(cells.SHOWN_PERCENTILES)
    width += 11 * (extra + len(cells.share_columns(data)))
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    data = terminal_data(data)
    console.print(Text(cells.run_line(data), style="bold"))
    console.print(_classes_table(data))
    console.print(_tiers_table(data))
    hedges = cells.hedge_rows(data)
    if hedges:
        console.print(_hedges_table(hedges))
    if data.get("slos"):
        console.print(_slos_table(data))
    if cells.any_low_sample(data):
        console.print(Text(cells.LOW_SAMPLE_NOTE, style="dim"))
    for line in _worst_windows(data):
        console.print(Text(line))
    verdict = cells.verdict_line(data)
    console.print(Text(verdict, style="green" if report.passed else "bold red"))
    engine = cells.engine_line(data)
    if engine:
        console.print(Text(engine, style="dim"))
    for warning in terminal_data(report.warnings):
        console.print(Text(f"warning: {warning}", style="yellow"))
    # Rich pads every line to the console width; trailing blanks only get in a reader's way.
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
