"""The sizing report as one self-contained HTML file: inline CSS and SVG, no scripts, no network."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from capsim.outputs import cells
from capsim.outputs.report_figures import (
    NO_TIMESERIES,
    cost_header,
    report_figures,
    summary_sentences,
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


def _slo_rows(result: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [
        [
            ("✓ pass" if v["passed"] else "✗ FAIL", "ok" if v["passed"] else "bad"),
            (str(v["slo"]), ""),
            (cells.slo_observed(v), "n"),
            (cells.slo_limit(v), "n"),
        ]
        for v in result.get("slos", [])
    ]


def _class_rows(result: dict[str, Any]) -> list[list[tuple[str, str]]]:
    percentiles = cells.percentile_columns(result, ("mean", *cells.SHOWN_PERCENTILES))
    shares = cells.share_columns(result)
    return [
        [
            (name, ""),
            (cells.rate(entry["offered_rate"]), "n"),
            (cells.rate(entry["throughput"]), "n"),
            (cells.errors(entry), "n"),
            *((text, "n") for text in cells.class_figures(entry, percentiles, shares)),
        ]
        for name, entry in result.get("classes", {}).items()
    ]


def _tier_rows(result: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [
        [
            (name, ""),
            (str(entry.get("kind", "")), ""),
            (cells.count(entry.get("workers")), "n"),
            (cells.percent(entry["utilization"]), "n"),
            (cells.percent(entry.get("occupancy")), "n"),
            (cells.rate(entry["throughput"]), "n"),
            (cells.number(entry["queue_length"]["mean"]), "n"),
            (cells.percentile(entry, "wait", "p99"), "n"),
            (cells.count(entry["rejected"]), "n"),
            (cells.tier_status(entry), "ok" if entry["stable"] else "bad"),
        ]
        for name, entry in result.get("tiers", {}).items()
    ]


def _cost_rows(report: SizingReport) -> list[list[tuple[str, str]]]:
    return [
        [
            (name, ""),
            (cells.count(cost["units"]), "n"),
            (cells.significant(cost["per_instance_hour"]), "n"),
            (f"{cost['per_hour']:,.2f}", "n"),
            (f"{cost['per_month']:,.2f}", "n"),
        ]
        for name, cost in report.costs.items()
    ]


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
        parts.append(_table(["verdict", "objective", "observed", "limit"], _slo_rows(result)))

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
    parts.append(_table(cells.report_class_header(result), _class_rows(result)))
    if cells.any_low_sample(result):
        parts.append(f'<p class="note">{escape(cells.LOW_SAMPLE_NOTE)}</p>')
    parts.append('<h2 id="tiers">Tiers</h2>')
    parts.append(
        _table(
            [
                "tier",
                "type",
                "workers",
                "utilization",
                "occupancy",
                "throughput",
                "queue mean",
                "wait p99",
                "rejected",
                "status",
            ],
            _tier_rows(result),
        )
    )
    if report.costs:
        parts.append('<h2 id="costs">Cost per tier</h2>')
        parts.append(_table(cost_header(report.currency), _cost_rows(report)))
        if not report.currency:
            parts.append(f'<p class="note" id="no-currency">{escape(cells.NO_CURRENCY_NOTE)}</p>')
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
