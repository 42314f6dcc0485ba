"""The sizing report as Markdown with its plots as image files written next to it.

Plots are PNG when matplotlib is installed (it is not a capsim dependency) and SVG otherwise:
GitHub, GitLab and most Markdown viewers show SVG images as well as PNG ones.
"""

from __future__ import annotations

import importlib.util
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsim.errors import UsageError
from capsim.outputs import cells
from capsim.outputs.escape import markdown_link, markdown_prose, markdown_text
from capsim.outputs.files import is_regular_destination, write_file_group
from capsim.outputs.forecast import forecast_figures, forecast_sentences, forecast_tables
from capsim.outputs.report_figures import (
    NO_TIMESERIES,
    Figure,
    cost_header,
    report_figures,
    summary_sentences,
)
from capsim.outputs.rows import REPORT_PERCENTILES, REPORT_VERDICTS, class_rows, slo_rows, tier_rows
from capsim.outputs.svg import PALETTE, Bars, Chart, render
from capsim.outputs.text import markdown_rows, markdown_table
from capsim.textsafe import visible

if TYPE_CHECKING:
    from capsim.analysis.sizing_report import SizingReport


def png_available() -> bool:
    """Whether PNG plots can be drawn (matplotlib is importable)."""
    return importlib.util.find_spec("matplotlib") is not None


def _png(spec: Chart | Bars) -> bytes:
    """Draw a figure with matplotlib (imported here only: it is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    figure, axes = plt.subplots(figsize=(spec.width / 100, 3.2), dpi=100)
    try:
        if isinstance(spec, Bars):
            axes.barh(list(spec.labels), list(spec.values), color=PALETTE[: len(spec.labels)])
            axes.invert_yaxis()
            axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: spec.value_format(v)))
        else:
            for index, series in enumerate(spec.series):
                xs = [x if x is not None else math.nan for x in series.xs]
                ys = [y if y is not None else math.nan for y in series.ys]
                axes.plot(
                    xs,
                    ys,
                    label=series.name,
                    color=series.color or PALETTE[index % 8],
                    linestyle="--" if series.dashed else "-",
                    marker="o" if series.points else None,
                )
            for marker in spec.markers:
                draw = axes.axvline if marker.axis == "x" else axes.axhline
                draw(
                    marker.value,
                    color=marker.color,
                    linestyle="--" if marker.dashed else "-",
                    label=marker.label,
                )
            if spec.x_log:
                axes.set_xscale("log")
            if spec.y_log:
                axes.set_yscale("log")
            if spec.y_min is not None:
                axes.set_ylim(bottom=spec.y_min)
            if spec.y_max is not None:
                axes.set_ylim(top=spec.y_max)
            axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: spec.x_format(v)))
            axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: spec.y_format(v)))
            axes.set_xlabel(spec.x_label)
            axes.set_ylabel(spec.y_label)
            axes.legend(fontsize="small", loc="best")
            axes.grid(True, color="#e5e5e5")
        axes.set_title(spec.title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def figure_files(figures: list[Figure], stem: str, png: bool | None = None) -> dict[str, bytes]:
    """File name -> content of every plot: `{stem}-{key}.png` (or `.svg` without matplotlib)."""
    use_png = png_available() if png is None else png
    files: dict[str, bytes] = {}
    for figure in figures:
        if use_png:
            files[f"{stem}-{figure.key}.png"] = _png(figure.spec)
        else:
            files[f"{stem}-{figure.key}.svg"] = render(figure.spec).encode("utf-8")
    return files


def write_report_markdown(text: str, files: dict[str, bytes], output: Path) -> None:
    """Write the Markdown report and its images as one group (`write_file_group`): every file
    complete in a temporary folder first, then renamed into place, the images before the text.

    The report must go to a file: its images are written next to it, which a device, a FIFO or
    standard output has no room for (`--format html` writes one self-contained document there).
    """
    if not is_regular_destination(output):
        raise UsageError(
            f"cannot write {visible(str(output))}: a Markdown report is a file with its plots as "
            "image files next to it, so -o must be a file path; use --format html to write "
            "one self-contained document to standard output, a device or a pipe"
        )
    write_file_group({**files, output.name: text.encode("utf-8")}, output.parent)


def _forecast_section(data: dict[str, Any], figures: list[Figure], names: list[str]) -> list[str]:
    """The forecast: its sentences, plots and tables (docs/forecast.md#in-the-report)."""
    lines = ["", "## Forecast", ""]
    lines += [f"- {markdown_text(sentence)}" for sentence in forecast_sentences(data)] + [""]
    for figure, name in zip(figures, names, strict=True):
        alt = markdown_text(figure.spec.title)
        lines += [f"![{alt}]({markdown_link(name)})", "", f"*{markdown_text(figure.caption)}*", ""]
    for title, header, rows in forecast_tables(data):
        lines += [f"### {markdown_text(title)}", ""]
        lines += [*markdown_table(header, rows, right=range(0)), ""]
    lines += [f"> {markdown_text(note)}" for note in data.get("notes", [])]
    return lines


def _usl_lines(usl: dict[str, Any]) -> list[str]:
    """`capsim report --usl`: the USL's parameters and capsim saturate's rate beside X_max."""
    from capsim.outputs.calibration import USL_HEADER, usl_comparison, usl_rows

    sources = ", ".join(markdown_text(source) for source in usl["sources"])
    lines = ["", "## Scalability: the Universal Scalability Law", ""]
    lines += [f"Fitted to {sources}: R² {usl['r_squared']:.4f} over {usl['points']} steps.", ""]
    lines += markdown_table(USL_HEADER, usl_rows(usl), right=range(1, 3))
    comparison = usl_comparison(usl)
    if comparison:
        lines += ["", markdown_text(comparison)]
    lines += ["", *(f"> {markdown_text(note)}" for note in usl.get("notes", []))]
    return lines


def render_report_markdown(
    report: SizingReport, stem: str, png: bool | None = None
) -> tuple[str, dict[str, bytes]]:
    """The report's Markdown text and its image files (names relative to the Markdown file)."""
    result = report.result
    figures = report_figures(report)
    forecast = forecast_figures(report.forecast) if report.forecast is not None else []
    files = figure_files(figures + forecast, stem, png)
    names = list(files)
    sentences = summary_sentences(report)
    lines = [
        f"# capsim sizing report: {markdown_text(result['scenario'])}",
        "",
        markdown_text(cells.run_line(result)),
        "",
    ]
    if report.description.strip():
        lines += [markdown_prose(report.description), ""]
    mark = "✅" if result.get("passed", True) else "❌"
    lines += [f"**{mark} {markdown_text(sentences[0])}**", ""]
    lines += ["## Summary", ""]
    lines += [f"- {markdown_text(sentence)}" for sentence in sentences[1:]] + [""]
    if result.get("slos"):
        lines += markdown_rows(slo_rows(result, REPORT_VERDICTS), bold_failures=False)
        lines.append("")
    lines += ["## Plots", ""]
    for figure, name in zip(figures, names[: len(figures)], strict=True):
        alt = markdown_text(figure.spec.title)
        lines += [f"![{alt}]({markdown_link(name)})", "", f"*{markdown_text(figure.caption)}*", ""]
    if report.curve is None and report.curve_note:
        lines += [f"> {markdown_text(report.curve_note)}", ""]
    if not isinstance(result.get("timeseries"), dict):
        lines += [f"> {NO_TIMESERIES}", ""]
    if not report.costs:
        lines += [
            "> No tier has a price (`cost: {per_instance_hour: ...}`), so there is no cost plot.",
            "",
        ]
    lines += ["## Request classes", ""]
    lines += markdown_rows(class_rows(result, REPORT_PERCENTILES))
    if cells.any_low_sample(result):
        lines += ["", f"\\{cells.LOW_SAMPLE_NOTE}"]
    lines += ["", "## Tiers", ""]
    lines += markdown_rows(tier_rows(result, described=True))
    if report.costs:
        lines += ["", "## Cost per tier", ""]
        lines += markdown_table(
            cost_header(report.currency),
            [
                [
                    name,
                    cost.get("pricing", "on_demand"),
                    cells.count(cost["units"]),
                    cells.significant(cost["per_instance_hour"]),
                    f"{cost['per_hour']:,.2f}",
                    f"{cost['per_month']:,.2f}",
                ]
                for name, cost in report.costs.items()
            ],
            right=range(2, 6),
        )
        if not report.currency:
            lines += ["", cells.NO_CURRENCY_NOTE]
    if report.forecast is not None:
        lines += _forecast_section(report.forecast, forecast, names[len(figures) :])
    if report.usl:
        lines += _usl_lines(report.usl)
    if report.warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {markdown_text(warning)}" for warning in report.warnings]
    engine = cells.engine_line(result)
    if engine:
        lines += ["", markdown_text(engine)]
    return "\n".join(lines) + "\n", files
