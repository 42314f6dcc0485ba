"""Plain-text renderers of a Report: JSON, GitHub-flavoured Markdown, long-format CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from capsim.analysis.report import Report
from capsim.outputs import cells
from capsim.outputs.escape import Markdown, markdown_cell, markdown_text


def render_json(report: Report) -> str:
    """Strict JSON (no NaN or infinity), indented by 2, keys in the order of docs/results.md."""
    return json.dumps(report.data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _markdown_table(header: list[str], rows: list[list[str]], right: range) -> list[str]:
    """A GFM table; the columns in `right` (numbers) are right-aligned."""
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |"]
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    """The result as GitHub-flavoured Markdown: a heading, tables, verdicts, warnings."""
    data = report.data
    lines = [
        f"# capsim result: {markdown_text(data['scenario'])}",
        "",
        markdown_text(cells.run_line(data)),
        "",
    ]
    lines += ["## Request classes", ""]
    percentiles, shares = cells.percentile_columns(data), cells.share_columns(data)
    header = ["class", "offered", "throughput", "errors", *percentiles, *(h for _, h in shares)]
    lines += _markdown_table(
        header,
        [
            [
                name,
                cells.rate(entry["offered_rate"]),
                cells.rate(entry["throughput"]),
                cells.errors(entry),
                *cells.class_figures(entry, percentiles, shares),
            ]
            for name, entry in data["classes"].items()
        ],
        right=range(1, len(header)),
    )
    lines += ["", "## Tiers", ""]
    lines += _markdown_table(
        [
            "tier",
            "utilization",
            "occupancy",
            "throughput",
            "queue mean",
            "wait p99",
            "rejected",
            "status",
        ],
        [
            [
                name,
                cells.percent(entry["utilization"]),
                cells.percent(entry.get("occupancy")),
                cells.rate(entry["throughput"]),
                cells.number(entry["queue_length"]["mean"]),
                cells.percentile(entry, "wait", "p99"),
                cells.count(entry["rejected"]),
                cells.tier_status(entry)
                if entry["stable"]
                else Markdown(f"**{cells.OVERLOADED}**"),
            ]
            for name, entry in data["tiers"].items()
        ],
        right=range(1, 7),
    )
    hedges = cells.hedge_rows(data)
    if hedges:
        lines += ["", "## Hedged calls (by callee)", ""]
        lines += _markdown_table(["tier", *cells.HEDGE_COLUMNS], hedges, right=range(1, 7))
    costs = cells.cost_rows(data)
    if costs:
        lines += ["", "## Cost", ""]
        lines += _markdown_table(["cost of", *cells.COST_COLUMNS], costs, right=range(2, 6))
    if data.get("slos"):
        lines += ["", "## SLOs", ""]
        lines += _markdown_table(
            ["verdict", "objective", "observed", "limit"],
            [
                [
                    "✓ PASS" if v["passed"] else "✗ FAIL",
                    v["slo"],
                    cells.slo_observed(v),
                    cells.slo_limit(v),
                ]
                for v in data["slos"]
            ],
            right=range(2, 4),
        )
    if cells.any_low_sample(data):
        lines += ["", f"\\{cells.LOW_SAMPLE_NOTE}"]
    lines += ["", f"**{markdown_text(cells.verdict_line(data))}**"]
    engine = cells.engine_line(data)
    if engine:
        lines += ["", markdown_text(engine)]
    if report.warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {markdown_text(warning)}" for warning in report.warnings]
    return "\n".join(lines) + "\n"


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dotted metric, value) pairs; a [low, high] interval becomes `.low` and `.high`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else key, item)
    elif isinstance(value, list) and len(value) == 2 and prefix.startswith("ci95."):
        yield f"{prefix}.low", value[0]
        yield f"{prefix}.high", value[1]
    else:
        yield prefix, value


#: A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(text: str) -> str:
    """Text from data as a cell a spreadsheet shows as text, never runs as a formula (OWASP's
    advice): a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'` before it."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _csv_value(value: Any) -> str:
    if isinstance(value, str):
        return _csv_text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return " ".join(str(item) for item in value)  # low_sample: figure names
    return str(value)


def render_csv(report: Report) -> str:
    """Long format, one figure per row: `section,name,metric,value` (sections class, tier, slo,
    overloaded, tier_cost, class_cost and cost when priced, and a final `run` row with `passed`).

    Nested figures get dotted metric names (`latency.p99`, `ci95.latency.mean.low`); a missing
    figure is an empty cell. Easy to pivot in a spreadsheet.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "name", "metric", "value"])
    data = report.data
    for section, key in (("class", "classes"), ("tier", "tiers")):
        for name, entry in data[key].items():
            for metric, value in _flatten("", entry):
                writer.writerow([section, _csv_text(name), metric, _csv_value(value)])
    for verdict in data.get("slos", []):
        for metric, value in verdict.items():
            if metric != "slo":
                writer.writerow(["slo", _csv_text(verdict["slo"]), metric, _csv_value(value)])
    for failure in data.get("overloaded") or []:
        for metric, value in failure.items():
            if metric != "tier":
                writer.writerow(
                    ["overloaded", _csv_text(failure["tier"]), metric, _csv_value(value)]
                )
    bill = data.get("cost")
    if bill:
        for section, key in (("tier_cost", "tiers"), ("class_cost", "classes")):
            for name, entry in bill[key].items():
                for metric, value in _flatten("", entry):
                    writer.writerow([section, _csv_text(name), metric, _csv_value(value)])
        for metric in ("currency", "total_per_hour", "total_per_month", "per_million_requests"):
            writer.writerow(["cost", "total", metric, _csv_value(bill[metric])])
    if "passed" in data:
        writer.writerow(["run", _csv_text(data["scenario"]), "passed", _csv_value(data["passed"])])
    return buffer.getvalue()
