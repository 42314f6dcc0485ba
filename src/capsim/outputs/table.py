"""The terminal view of a Report: rich tables rendered to a string."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from capsim.analysis.headroom import Headroom
from capsim.analysis.report import Report
from capsim.outputs import cells
from capsim.outputs.escape import terminal_data
from capsim.outputs.fit import DEFAULT_WIDTH, Cell, Column, fitted_tables

#: Width of the rendered table when the caller does not say (files, pipes, tests).
WIDTH = DEFAULT_WIDTH

CLASS_COLUMNS = [
    Column("class", justify="left"),
    *(Column(name) for name in ("offered", "throughput", "errors")),
]
TIER_COLUMNS = [
    Column("tier", justify="left"),
    *(
        Column(name)
        for name in ("utilization", "occupancy", "throughput", "queue mean", "wait p99", "rejected")
    ),
    Column("status", justify="left"),
]
HEDGE_COLUMNS = [Column("tier", justify="left"), *(Column(name) for name in cells.HEDGE_COLUMNS)]
SLO_COLUMNS = [
    Column("verdict", justify="left"),
    Column("objective", justify="left", prose=True),
    Column("observed"),
    Column("limit"),
]


def plain_cells(row: list[Any]) -> list[Any]:
    """Table cells as rich `Text`: a string from data is shown as it is, never read as markup
    (`[red]`, `[link=...]`)."""
    return [Text(cell) if isinstance(cell, str) else cell for cell in row]


def _class_columns(data: dict[str, Any]) -> list[Column]:
    """The class table's columns: the usual percentiles, every one asked for beside them
    (--percentiles) and a share column per latency limit counted (--share-over)."""
    percentiles, shares = cells.percentile_columns(data), cells.share_columns(data)
    return [*CLASS_COLUMNS, *(Column(name) for name in (*percentiles, *(h for _, h in shares)))]


def _class_rows(data: dict[str, Any]) -> list[list[Cell]]:
    percentiles, shares = cells.percentile_columns(data), cells.share_columns(data)
    rows: list[list[Cell]] = []
    for name, entry in data["classes"].items():
        rows.append(
            [
                Text(name),
                cells.rate(entry["offered_rate"]),
                cells.rate(entry["throughput"]),
                cells.errors(entry),
                *cells.class_figures(entry, percentiles, shares),
            ]
        )
    return rows


def _tier_rows(data: dict[str, Any]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for name, entry in data["tiers"].items():
        status = Text(cells.tier_status(entry), style="" if entry["stable"] else "bold red")
        rows.append(
            [
                Text(name),
                cells.percent(entry["utilization"]),
                cells.percent(entry.get("occupancy")),
                cells.rate(entry["throughput"]),
                cells.number(entry["queue_length"]["mean"]),
                cells.percentile(entry, "wait", "p99"),
                cells.count(entry["rejected"]),
                status,
            ]
        )
    return rows


def _slo_rows(data: dict[str, Any]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for verdict in data["slos"]:
        mark = (
            Text("✓ PASS", style="green") if verdict["passed"] else Text("✗ FAIL", style="bold red")
        )
        rows.append(
            [mark, Text(verdict["slo"]), cells.slo_observed(verdict), cells.slo_limit(verdict)]
        )
    return rows


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


def render_table(
    report: Report,
    color: bool = True,
    width: int = WIDTH,
    *,
    verbose: bool = False,
    footer: Sequence[str] = (),
) -> str:
    """The result as terminal tables; with `color=False` plain text without escape codes.

    Warnings are not repeated here: the command line prints them once, on stderr. The engine
    line (which path ran, and why) is shown with `verbose`; `footer` lines close the view.
    """
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
    data = terminal_data(report.data)
    console.print(Text(cells.run_line(data), style="bold"))
    blocks = [
        ("Request classes", _class_columns(data), _class_rows(data)),
        ("Tiers", TIER_COLUMNS, _tier_rows(data)),
    ]
    hedges: list[list[Cell]] = [plain_cells(row) for row in cells.hedge_rows(data)]
    if hedges:
        blocks.append(("Hedged calls (by callee)", HEDGE_COLUMNS, hedges))
    if data.get("slos"):
        blocks.append(("SLOs", SLO_COLUMNS, _slo_rows(data)))
    for title, columns, rows in blocks:
        for table in fitted_tables(title, columns, rows, width):
            console.print(table)
    if cells.any_low_sample(data):
        console.print(Text(cells.LOW_SAMPLE_NOTE, style="dim"))
    for line in _worst_windows(data):
        console.print(Text(line))
    verdict = cells.verdict_line(data)
    console.print(Text(verdict, style="green" if report.passed else "bold red"))
    engine = cells.engine_line(data)
    if engine and verbose:
        console.print(Text(engine, style="dim"))
    if footer:
        console.print()
    for line in terminal_data(list(footer)):
        # A command cut over two lines cannot be pasted: the terminal wraps them, not rich.
        console.print(Text(line), soft_wrap=True)
    # Rich pads every line to the console width; trailing blanks only get in a reader's way.
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def next_steps(headroom: Headroom | None, scenario: str, options: str = "") -> list[str]:
    """The footer of `run`'s table: the bottleneck, its headroom, and the commands to dig further.

    `scenario` is the path as the user should type it, `options` the what-if options (--set,
    --load) the commands should carry so that they look at the same system.
    """
    lines = ["Next steps:"]
    if headroom is not None:
        text = (
            f"  {headroom.tier} is the bottleneck: the analytic bound puts its saturation near "
            f"{cells.rate(headroom.saturation_rate)}"
        )
        factor = headroom.factor
        if factor is not None and factor >= 1:
            text += (
                f", {factor:.2f}x the {cells.rate(headroom.offered_rate)} offered now "
                "(an upper bound: waits grow with load)."
            )
        elif factor is not None:
            text += (
                f": overloaded, {cells.rate(headroom.offered_rate)} is offered now, "
                f"{1 / factor:.2f}x what it can carry."
            )
        else:
            text += "."
        if headroom.profile_peak is not None:
            text += (
                " (offered rates are at the profile's peak, "
                f"{cells.rate(headroom.profile_peak)}, not its final rate.)"
            )
        if headroom.autoscale_max is not None and headroom.autoscale_max != headroom.instances:
            text += (
                f" That is with the {headroom.instances} instance(s) it starts with: it "
                f"autoscales up to {headroom.autoscale_max}."
            )
        lines.append(text)
    target = f"{scenario}{options}"
    commands = [
        ("find the saturation load and the p99 knee by simulation", f"capsim saturate {target}"),
        ("find the cheapest capacity that meets every SLO", f"capsim size {target}"),
        ("write a sizing report with plots", f"capsim report {target} -o report.html"),
    ]
    for why, command in commands:
        lines += [f"  {why}:", f"    {command}"]
    return lines
