"""The sizing report as one self-contained HTML file: inline CSS and SVG, no scripts, no network."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from capsim.outputs import cells
from capsim.outputs.forecast import forecast_figures, forecast_sentences, forecast_tables
from capsim.outputs.report_figures import (
    NO_TIMESERIES,
    cost_header,
    report_figures,
    summary_sentences,
)
from capsim.outputs.rows import (
    REPORT_PERCENTILES,
    REPORT_VERDICTS,
    Rows,
    class_rows,
    slo_rows,
    tier_rows,
)
from capsim.outputs.svg import render
from capsim.textsafe import visible

if TYPE_CHECKING:
    from capsim.analysis.sizing_report import SizingReport

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:980px;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}.meta{color:#555;font-size:.9rem}
.verdict{padding:.8rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.pass{background:#e6f4ea;border:1px solid #34a853}.fail{background:#fce8e6;border:1px solid #d93025}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem}th{background:#f6f6f6;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.ok{color:#188038}td.bad{color:#c5221f;font-weight:600}
figure{margin:1rem 0}figcaption{color:#555;font-size:.85rem;max-width:640px}
.note{background:#fff8e1;border-left:4px solid #f9ab00;padding:.5rem .8rem}
"""


def _table(header: list[str], rows: list[list[tuple[str, str]]]) -> str:
    """An HTML table; each cell is (text, css class)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>"
            for text, css in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cells(table: Rows) -> list[list[tuple[str, str]]]:
    """A class, tier or SLO table's cells with their css class: `n` for a figure, `ok` or `bad`
    for the marking cell (a status, a verdict), none for text."""
    return [
        [
            (text, ("ok" if row.ok else "bad") if field.marks else "n" if field.numeric else "")
            for field, text in zip(table.fields, row.cells, strict=True)
        ]
        for row in table.rows
    ]


def _rows_table(table: Rows) -> str:
    return _table(table.header, _cells(table))


def _cost_rows(report: SizingReport) -> list[list[tuple[str, str]]]:
    return [
        [
            (name, ""),
            (cost.get("pricing", "on_demand"), ""),
            (cells.count(cost["units"]), "n"),
            (cells.significant(cost["per_instance_hour"]), "n"),
            (f"{cost['per_hour']:,.2f}", "n"),
            (f"{cost['per_month']:,.2f}", "n"),
        ]
        for name, cost in report.costs.items()
    ]


def _forecast_section(data: dict[str, Any]) -> list[str]:
    """The forecast: its sentences, plots and tables (docs/forecast.md#in-the-report)."""
    parts = ['<h2 id="forecast">Forecast</h2><ul>']
    parts += [f"<li>{escape(sentence)}</li>" for sentence in forecast_sentences(data)]
    parts.append("</ul>")
    for figure in forecast_figures(data):
        parts.append(
            f'<figure id="figure-{figure.key}">{render(figure.spec, standalone=False)}'
            f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
        )
    for title, header, rows in forecast_tables(data):
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(_table(header, [[(cell, "") for cell in row] for row in rows]))
    parts += [f'<p class="note">{escape(note)}</p>' for note in data.get("notes", [])]
    return parts


def _usl_section(usl: dict[str, Any]) -> list[str]:
    """`capsim report --usl`: the USL's parameters and capsim saturate's rate beside X_max."""
    from capsim.outputs.calibration import USL_HEADER, usl_comparison, usl_rows

    rows = [[(text, "n" if k else "") for k, text in enumerate(row)] for row in usl_rows(usl)]
    parts = [
        '<h2 id="usl">Scalability: the Universal Scalability Law</h2>',
        f"<p>Fitted to {escape(', '.join(visible(s) for s in usl['sources']))}: "
        f"R² {usl['r_squared']:.4f} over {usl['points']} steps.</p>",
        _table(USL_HEADER, rows),
    ]
    comparison = usl_comparison(usl)
    if comparison:
        parts.append(f'<p id="usl-versus-saturate">{escape(visible(comparison))}</p>')
    parts += [f'<p class="note">{escape(note)}</p>' for note in usl.get("notes", [])]
    return parts


def render_report_html(report: SizingReport) -> str:
    """The whole report as one HTML document (about 20-100 KB: plots are inline SVG)."""
    result = report.result
    title = f"capsim sizing report: {result['scenario']}"
    passed = bool(result.get("passed", True))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(cells.run_line(result))}</p>',
    ]
    if report.description.strip():
        lines = [escape(visible(line.strip())) for line in report.description.strip().splitlines()]
        parts.append(f'<p class="description">{"<br>".join(line for line in lines if line)}</p>')
    sentences = summary_sentences(report)
    parts.append(
        f'<div class="verdict {"pass" if passed else "fail"}" id="verdict">'
        f"{escape(sentences[0])}</div>"
    )
    parts.append('<h2 id="summary">Summary</h2><ul>')
    parts += [f"<li>{escape(sentence)}</li>" for sentence in sentences[1:]]
    parts.append("</ul>")
    if result.get("slos"):
        parts.append(_rows_table(slo_rows(result, REPORT_VERDICTS)))

    parts.append('<h2 id="plots">Plots</h2>')
    for figure in report_figures(report):
        parts.append(
            f'<figure id="figure-{figure.key}">{render(figure.spec, standalone=False)}'
            f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
        )
    if report.curve is None and report.curve_note:
        parts.append(f'<p class="note">{escape(report.curve_note)}</p>')
    if not isinstance(result.get("timeseries"), dict):
        parts.append(
            f'<p class="note" id="no-timeseries">{escape(NO_TIMESERIES).replace("`timeseries`", "<code>timeseries</code>")}</p>'
        )
    if not report.costs:
        parts.append(
            '<p class="note" id="no-costs">No tier has a price (<code>cost: {per_instance_hour: ...}'
            "</code> in the scenario), so there is no cost plot.</p>"
        )

    parts.append('<h2 id="classes">Request classes</h2>')
    parts.append(_rows_table(class_rows(result, REPORT_PERCENTILES)))
    if cells.any_low_sample(result):
        parts.append(f'<p class="note">{escape(cells.LOW_SAMPLE_NOTE)}</p>')
    parts.append('<h2 id="tiers">Tiers</h2>')
    parts.append(_rows_table(tier_rows(result, described=True)))
    if report.costs:
        parts.append('<h2 id="costs">Cost per tier</h2>')
        parts.append(_table(cost_header(report.currency), _cost_rows(report)))
        if not report.currency:
            parts.append(f'<p class="note" id="no-currency">{escape(cells.NO_CURRENCY_NOTE)}</p>')
    if report.forecast is not None:
        parts += _forecast_section(report.forecast)
    if report.usl:
        parts += _usl_section(report.usl)
    if report.warnings:
        parts.append('<h2 id="warnings">Warnings</h2><ul>')
        parts += [f"<li>{escape(warning)}</li>" for warning in report.warnings]
        parts.append("</ul>")
    engine = cells.engine_line(result)
    if engine:
        parts.append(f'<p class="meta">{escape(engine)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
