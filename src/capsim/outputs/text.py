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
from capsim.outputs.rows import Rows, class_rows, slo_rows, tier_rows


def render_json(report: Report) -> str:
    """Strict JSON (no NaN or infinity), indented by 2, keys in the order of docs/results.md."""
    return json.dumps(report.data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def markdown_table(header: list[str], rows: list[list[str]], right: range | list[int]) -> list[str]:
    """A GFM table; the columns in `right` (numbers) are right-aligned."""
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |"]
    lines.append("| " + " | ".join(align) + " |")
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown_rows(table: Rows, *, bold_failures: bool = True) -> list[str]:
    """A class, tier or SLO table in GFM; with `bold_failures` the marking cell of a row that is
    not ok (an overloaded tier's status) is in bold."""
    marked = [
        [
            Markdown(f"**{text}**") if field.marks and bold_failures and not row.ok else text
            for field, text in zip(table.fields, row.cells, strict=True)
        ]
        for row in table.rows
    ]
    return markdown_table(table.header, marked, right=table.numeric)


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
    lines += markdown_rows(class_rows(data))
    lines += ["", "## Tiers", ""]
    lines += markdown_rows(tier_rows(data))
    hedges = cells.hedge_rows(data)
    if hedges:
        lines += ["", "## Hedged calls (by callee)", ""]
        lines += markdown_table(["tier", *cells.HEDGE_COLUMNS], hedges, right=range(1, 7))
    costs = cells.cost_rows(data)
    if costs:
        lines += ["", "## Cost", ""]
        lines += markdown_table(["cost of", *cells.COST_COLUMNS], costs, right=range(2, 6))
    if data.get("slos"):
        lines += ["", "## SLOs", ""]
        lines += markdown_rows(slo_rows(data), bold_failures=False)
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


def render_csv_data(data: dict[str, Any]) -> str:
    """Any command's JSON result in the long CSV format of `render_csv`: `section,name,metric,value`.

    A top-level figure is a row of section `result` named after the scenario; a top-level
    mapping is a section, whose mappings (one per tier, class, point ...) are named rows and
    whose plain figures have an empty name; a top-level list (a sweep's points, a saturation
    curve, notes) names each row by its position from 0, a plain item's metric being `value`.
    Nested figures get dotted metric names, as in `capsim run --format csv`; a nested list of
    plain values is one cell, space-separated.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "name", "metric", "value"])
    scenario = _csv_text(str(data.get("scenario", "")))
    for key, value in data.items():
        for name, metric, figure in _csv_section(key, value):
            if name is None:
                writer.writerow(["result", scenario, _csv_text(key), _csv_value(figure)])
            else:
                # A metric may hold a name from data (a class's cost): escaped as any text.
                row = [_csv_text(key), _csv_text(name), _csv_text(metric), _csv_value(figure)]
                writer.writerow(row)
    return buffer.getvalue()


def _csv_section(key: str, value: Any) -> Iterator[tuple[str | None, str, Any]]:
    """(name, metric, value) rows of the top-level entry `key`; name None: it is one figure."""
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, dict):
                for metric, figure in _flatten_lists("", item):
                    yield str(name), metric, figure
            else:
                for metric, figure in _flatten(f"{key}.{name}", item):
                    yield "", metric.removeprefix(f"{key}."), figure
    elif isinstance(value, list) and value:
        for position, item in enumerate(value):
            if isinstance(item, dict):
                for metric, figure in _flatten_lists("", item):
                    yield str(position), metric, figure
            else:
                yield str(position), "value", item
    else:
        yield None, "", value


def _flatten_lists(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """`_flatten`, and a list of mappings (a search point's moves) numbered from 0 in the name."""
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        for position, item in enumerate(value):
            yield from _flatten_lists(f"{prefix}.{position}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten_lists(f"{prefix}.{key}" if prefix else key, item)
    else:
        yield from _flatten(prefix, value)
