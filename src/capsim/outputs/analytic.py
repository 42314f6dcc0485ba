"""Renderers of `capsim solve`'s analytic estimates (table, JSON, Markdown)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from capsim.analysis.report import Report
from capsim.errors import UsageError
from capsim.outputs import cells
from capsim.outputs.escape import markdown_text, terminal_data
from capsim.outputs.fit import DEFAULT_WIDTH, Column, fitted_tables
from capsim.outputs.text import render_csv_data, render_json


def _rows(data: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    classes = []
    for name, entry in data["classes"].items():
        latency = entry["latency"]
        classes.append(
            [
                name,
                cells.rate(entry["throughput"]),
                cells.percent(entry.get("error_rate")),
                cells.time(latency["mean"]),
                cells.time(latency.get("p99")),
                "exact" if entry["method"]["exact"] else "approx.",
                entry["method"]["formula"],
            ]
        )
    tiers = []
    for name, entry in data["tiers"].items():
        tiers.append(
            [
                name,
                cells.rate(entry["offered_rate"]),
                cells.percent(entry["utilization"]),
                cells.percent(entry["occupancy"]),
                cells.time(entry["wait"]["mean"]),
                cells.time(entry["wait"].get("p99")),
                cells.rate(_saturates_at(entry)),
                _status(entry),
                "exact" if entry["method"]["exact"] else "approx.",
                entry["method"]["formula"],
            ]
        )
    return classes, tiers


def _status(entry: dict[str, Any]) -> str:
    """The tier's status cell: stable, OVERLOADED, or DEADLOCK (docs/calibration.md)."""
    if (entry.get("deadlock") or {}).get("within_run"):
        return "DEADLOCK"
    return "stable" if entry.get("stable", True) else "OVERLOADED"


def _saturates_at(tier: dict[str, Any]) -> float | None:
    """The table's "saturates at": the tier's `max_rate`, or its rate limit's when lower."""
    limit = tier.get("rate_limit")
    if limit is None or limit["max_rate"] is None or tier["max_rate"] is None:
        return tier["max_rate"]
    return min(tier["max_rate"], limit["max_rate"])


CLASS_HEADER = ["class", "throughput", "errors", "mean latency", "p99", "", "formula"]
TIER_HEADER = [
    "tier",
    "offered",
    "utilization",
    "occupancy",
    "wait mean",
    "wait p99",
    "saturates at",  # max_rate: total open traffic (the mix as written), not the tier's arrivals
    "status",
    "",
    "formula",
]


def _rho(value: float | None) -> str:
    """The offered load per worker; null in the data when it is infinite (a service time so
    long that the capacity is 0/s)."""
    return "inf" if value is None else f"{value:.3g}"


def _overload_lines(data: dict[str, Any]) -> list[str]:
    """One line per overloaded tier: its load, its capacity and the key that adds capacity."""
    return [
        f"OVERLOADED: {entry['tier']} (rho {_rho(entry['rho'])}: {cells.rate(entry['offered_rate'])} "
        f"offered, {cells.rate(entry['capacity'])} capacity); add capacity with "
        f"--set tiers.{entry['tier']}.{entry['add']}=... or lower the load"
        for entry in data.get("overloaded") or []
    ]


def _group_lines(data: dict[str, Any]) -> list[str]:
    """A line per database with replicas naming each station group's load, as `run`'s table
    shows them (`db · primary`), so that a tier pooled at 19% beside a saturation rate set by
    its 44%-busy primary reads as it is (docs/cli.md, `capsim solve`)."""
    lines = []
    for name, entry in data.get("tiers", {}).items():
        groups = entry.get("groups") or {}
        if not groups:
            continue
        parts = [
            f"{group} {cells.percent(figures.get('occupancy'))} held at "
            f"{cells.rate(figures.get('offered_rate'))}"
            + ("" if figures.get("stable", True) else " (OVERLOADED)")
            for group, figures in groups.items()
        ]
        lines.append(f"{name}: {', '.join(parts)} (it saturates with its busiest group)")
    return lines


def _summary_line(data: dict[str, Any]) -> str:
    bottleneck = data["bottleneck"]
    stalled = [d["tier"] for d in data.get("deadlocks") or [] if d["within_run"]]
    if stalled:
        return (
            f"DEADLOCK: {', '.join(stalled)} can hold every worker with nested visits (note "
            "below): no load is sustained for good; "
            + _summary_line({**data, "deadlocks": []}).replace(
                "bottleneck:", "without it, bottleneck"
            )
        )
    if bottleneck["tier"] is None:
        return "no tier receives traffic"
    if bottleneck["saturation_rate"] is None:
        return "no tier limits throughput: every tier's work per request is zero"
    headroom = (
        bottleneck["saturation_rate"] / bottleneck["offered_rate"]
        if bottleneck["offered_rate"]
        else None
    )
    saturates = "passes at most" if bottleneck.get("by") == "rate_limit" else "saturates at"
    name = bottleneck["tier"] + ("'s rate_limit" if bottleneck.get("by") == "rate_limit" else "")
    text = (
        f"bottleneck: {name}, {saturates} {cells.rate(bottleneck['saturation_rate'])} "
        f"(offered {cells.rate(bottleneck['offered_rate'])}"
    )
    return text + (f", {headroom:.2f}x headroom)" if headroom else ")")


def _with_formula_keys(rows: list[list[str]], legend: dict[str, str]) -> list[list[str]]:
    """Rows whose last cell (a formula's long name) is replaced by a short key: [1], [2], ...

    The formulas are listed once under the tables, so the table stays one line per row.
    """
    keyed = []
    for row in rows:
        formula = row[-1]
        key = legend.setdefault(formula, f"[{len(legend) + 1}]")
        keyed.append([*row[:-1], key])
    return keyed


def render_solve_table(report: Report, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    data = terminal_data(report.data)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
    )
    console.print(
        f"scenario {data['scenario']}{_scaled(data)} · analytic estimates (no simulation)",
        markup=False,
    )
    class_rows, tier_rows = _rows(data)
    legend: dict[str, str] = {}
    for title, header, rows in (
        ("Request classes", CLASS_HEADER, _with_formula_keys(class_rows, legend)),
        ("Tiers", TIER_HEADER, _with_formula_keys(tier_rows, legend)),
    ):
        columns = [
            Column(name, justify="right" if 0 < i < len(header) - 2 else "left")
            for i, name in enumerate(header)
        ]
        for table in fitted_tables(title, columns, rows, width):
            console.print(table)
    console.print("formulas:", markup=False)
    for formula, key in legend.items():
        console.print(f"  {key} {formula}", markup=False)
    console.print(_summary_line(data), markup=False)
    for line in _group_lines(data):
        console.print(line, markup=False)
    for line in _overload_lines(data):
        console.print(line, markup=False)
    for verdict in data["slos"]:
        passes, fails = cells.RESULT_VERDICTS
        unjudged = "? not judged" if verdict.get("reason") else "? no formula"
        mark = {True: passes, False: fails, None: unjudged}[verdict["passed"]]
        console.print(
            f"{mark}  {verdict['slo']}  (estimate {cells.slo_observed(verdict)}"
            + (f" with {verdict['after_loss']}" if verdict.get("after_loss") else "")
            + ")"
            + (f": {verdict['reason']}" if verdict.get("reason") else ""),
            markup=False,
        )
    for note in terminal_data(report.warnings):
        console.print(f"note: {note}", markup=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def render_solve_markdown(report: Report) -> str:
    data = report.data
    lines = [f"# {markdown_text(data['scenario'])}: analytic estimates", ""]
    if _scaled(data):
        lines += [markdown_text(_scaled(data).removeprefix(" · ")), ""]
    class_rows, tier_rows = _rows(data)
    for title, header, rows in (
        ("Request classes", CLASS_HEADER, class_rows),
        ("Tiers", TIER_HEADER, tier_rows),
    ):
        lines += [
            f"## {title}",
            "",
            "| " + " | ".join(h or "exact?" for h in header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(markdown_text(cell) for cell in row) + " |" for row in rows]
        lines.append("")
    lines.append(markdown_text(_summary_line(data)))
    lines += (
        ["", *(f"**{markdown_text(line)}**" for line in _overload_lines(data))]
        if data.get("overloaded")
        else []
    )
    return "\n".join(lines) + "\n"


def _scaled(data: dict[str, Any]) -> str:
    """` · open traffic at 3x (--load)` when the estimates are at a load given with --load."""
    load = data.get("load")
    return "" if load is None or load == 1 else f" · open traffic at {load:.3g}x (--load)"


def render_solve(
    report: Report, fmt: str, *, color: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    name = fmt.lower()
    if name == "table":
        return render_solve_table(report, color=color, width=width)
    if name == "json":
        return render_json(report)
    if name in ("markdown", "md"):
        return render_solve_markdown(report)
    if name == "csv":
        return render_csv_data(report.data)
    raise UsageError(f"capsim solve prints table, json, markdown or csv, not {fmt!r}")
