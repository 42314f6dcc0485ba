"""Outputs: renderers of a Report (table, JSON, Markdown, CSV) and atomic file writing."""

from __future__ import annotations

from collections.abc import Sequence

from capsim.analysis.report import Report
from capsim.errors import UsageError
from capsim.outputs.files import write_output
from capsim.outputs.fit import DEFAULT_WIDTH
from capsim.outputs.table import render_table
from capsim.outputs.text import render_csv, render_json, render_markdown

#: The formats `render` knows, as `--format` spells them.
FORMATS: tuple[str, ...] = ("table", "json", "markdown", "csv")

__all__ = [
    "FORMATS",
    "render",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_table",
    "write_output",
]


def render(
    report: Report,
    fmt: str,
    *,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
    verbose: bool = False,
    footer: Sequence[str] = (),
) -> str:
    """The report in format `fmt` (table, json, markdown or md, csv).

    Colour, width, the engine line (`verbose`) and the `footer` lines apply to the table only.
    """
    name = fmt.lower()
    if name == "table":
        return render_table(report, color=color, width=width, verbose=verbose, footer=footer)
    if name == "json":
        return render_json(report)
    if name in ("markdown", "md"):
        return render_markdown(report)
    if name == "csv":
        return render_csv(report)
    raise UsageError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
