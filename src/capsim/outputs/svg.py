"""A small SVG plotting kit for reports: line charts (linear or log axes) and bar charts.

No dependencies: the charts are plain SVG text, inline in an HTML report or written next to a
Markdown one. Each chart carries `data-chart` and each series `data-series`, so tests (and
users' scripts) can find them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

#: Colour-blind-safe palettes (Okabe & Ito, then Paul Tol's muted), in the order series get
#: them: 16 colours, so that a scenario of up to 16 tiers draws each in its own colour (with 8,
#: the ninth tier took the first one's and the two could not be told apart).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#882255",
    "#332288",
    "#999933",
    "#117733",
    "#AA4499",
    "#DDCC77",
    "#CC6677",
    "#44AA99",
)
Formatter = Callable[[float], str]
#: Longest legend entry, in characters, before it is cut short with an ellipsis.
_LEGEND_CHARS = 26


def plain(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class Series:
    """One line: points (x, y); points with a non-finite coordinate break the line."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str | None = None
    dashed: bool = False
    points: bool = False  # draw a dot at each point as well


@dataclass(frozen=True)
class Marker:
    """A reference line across the plot: `axis="x"` is vertical at x=value, `"y"` horizontal."""

    axis: str
    value: float
    label: str
    color: str = "#444444"
    dashed: bool = True


@dataclass(frozen=True)
class Chart:
    """A line chart's content and axes; `key` names it in `data-chart`."""

    key: str
    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    markers: Sequence[Marker] = ()
    x_log: bool = False
    y_log: bool = False
    x_format: Formatter = plain
    y_format: Formatter = plain
    y_min: float | None = None
    y_max: float | None = None
    # An x range given exactly (a time axis ends where the data ends), else fitted to the data.
    x_min: float | None = None
    x_max: float | None = None
    x_time: bool = False  # x is a duration in seconds: ticks at round seconds, minutes, hours
    width: int = 640
    height: int = 300
    notes: Sequence[str] = field(default_factory=tuple)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if not (_finite(low) and _finite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


#: Tick steps of a time axis, in seconds: round seconds, minutes and hours.
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 4 * 3600, 6 * 3600,
               12 * 3600, 86400)  # fmt: skip


def time_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Ticks of a time axis at round durations (10 s, 2 min, 1 h ...) covering [low, high]."""
    if not (_finite(low) and _finite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    step = next((s for s in _TIME_STEPS if s >= raw), None)
    if step is None or raw < 1:
        return nice_ticks(low, high, count)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Decades within [low, high]; with fewer than three decades, 2x and 5x of each as well."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    multiples = (1, 2, 5) if last - first < 3 else (1,)
    ticks = [
        m * 10.0**exponent
        for exponent in range(first, last + 1)
        for m in multiples
        if low * (1 - 1e-9) <= m * 10.0**exponent <= high * (1 + 1e-9)
    ]
    return ticks or [low, high]


class _Axis:
    """Maps data values to pixels along one axis."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool) -> None:
        self.log = log
        if log:
            low, high = math.log10(low), math.log10(high)
        if high <= low:
            high = low + 1.0
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start)


def _range(
    values: list[float], log: bool, floor: float | None, ceiling: float | None
) -> tuple[float, float]:
    usable = [v for v in values if _finite(v) and (v > 0 or not log)]
    if floor is not None and not (log and floor <= 0):
        usable.append(floor)
    if ceiling is not None:
        usable.append(ceiling)
    if not usable:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = min(usable), max(usable)
    if log:
        low, high = 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))
        return (low, high if high > low else low * 10)
    if floor is None and low > 0 and low < high * 0.5:
        low = 0.0  # quantities that start near zero read better from zero
    if high == low:
        high = low + (abs(low) or 1.0)
    if ceiling is None:
        ticks = nice_ticks(low, high)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 0.0
        if ticks and ticks[-1] < high:
            high = ticks[-1] + step
    return low, high


def _text(
    x: float, y: float, text: str, anchor: str = "middle", size: int = 11, **extra: str
) -> str:
    attributes = "".join(
        f' {key.replace("_", "-")}="{escape(value)}"' for key, value in extra.items()
    )
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{attributes}>'
        f"{escape(text)}</text>"
    )


def _open(chart_key: str, title: str, width: int, height: int, standalone: bool) -> list[str]:
    # Inline in HTML an <svg> needs no namespace; a standalone .svg file does.
    namespace = 'xmlns="http://www.w3.org/2000/svg" ' if standalone else ""
    return [
        f'<svg {namespace}class="chart" data-chart="{escape(chart_key)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(width / 2, 18, title, size=13, font_weight="bold"),
    ]


@dataclass(frozen=True)
class _Plot:
    """The plotting area of a chart in pixels, and its two axes."""

    left: float
    right: float
    top: float
    bottom: float
    x_axis: _Axis
    y_axis: _Axis
    x_ticks: list[float]
    y_ticks: list[float]


def _plot(chart: Chart) -> _Plot:
    """Lay the chart out: the axes fit the points that are drawn (a point without a y value is
    not) and the reference lines; the ticks inside them."""
    legend_width = 180 if chart.series or chart.markers else 0
    left, right = 64, chart.width - legend_width - 16
    top, bottom = 32, chart.height - 44
    drawn = [(x, y) for s in chart.series for x, y in zip(s.xs, s.ys, strict=True) if _finite(y)]
    xs = [x for x, _ in drawn] + [m.value for m in chart.markers if m.axis == "x"]
    ys = [y for _, y in drawn] + [m.value for m in chart.markers if m.axis == "y"]
    if chart.x_min is not None and chart.x_max is not None and chart.x_max > chart.x_min:
        x_low, x_high = chart.x_min, chart.x_max
    else:
        x_low, x_high = _range(xs, chart.x_log, None, None)
    y_low, y_high = _range(ys, chart.y_log, chart.y_min, chart.y_max)
    if chart.x_log:
        x_ticks = log_ticks(x_low, x_high)
    elif chart.x_time:
        x_ticks = time_ticks(x_low, x_high)
    else:
        x_ticks = nice_ticks(x_low, x_high)
    y_ticks = log_ticks(y_low, y_high) if chart.y_log else nice_ticks(y_low, y_high)
    return _Plot(
        left,
        right,
        top,
        bottom,
        _Axis(x_low, x_high, left, right, chart.x_log),
        _Axis(y_low, y_high, bottom, top, chart.y_log),
        [t for t in x_ticks if x_low <= t <= x_high],
        [t for t in y_ticks if y_low <= t <= y_high],
    )


def _frame(chart: Chart, plot: _Plot) -> list[str]:
    """The grid, the axes, their tick labels and titles, and the clip path of the data."""
    left, right, top, bottom = plot.left, plot.right, plot.top, plot.bottom
    x_axis, y_axis = plot.x_axis, plot.y_axis
    parts = ['<g class="grid" stroke="#e5e5e5" stroke-width="1">']
    for t in plot.x_ticks:
        parts.append(f'<line x1="{x_axis(t):.1f}" y1="{top}" x2="{x_axis(t):.1f}" y2="{bottom}"/>')
    for t in plot.y_ticks:
        parts.append(f'<line x1="{left}" y1="{y_axis(t):.1f}" x2="{right}" y2="{y_axis(t):.1f}"/>')
    parts.append("</g>")
    parts.append(
        f'<g class="axes" stroke="#333333" stroke-width="1"><line x1="{left}" y1="{bottom}" '
        f'x2="{right}" y2="{bottom}"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/></g>'
    )
    parts.append('<g class="ticks" fill="#333333">')
    for t in plot.x_ticks:
        parts.append(_text(x_axis(t), bottom + 15, chart.x_format(t), size=10))
    for t in plot.y_ticks:
        parts.append(_text(left - 6, y_axis(t) + 3.5, chart.y_format(t), anchor="end", size=10))
    parts.append("</g>")
    parts.append(_text((left + right) / 2, chart.height - 10, chart.x_label, fill="#333333"))
    parts.append(
        f'<text x="14" y="{(top + bottom) / 2:.1f}" font-size="11" text-anchor="middle" '
        f'fill="#333333" transform="rotate(-90 14 {(top + bottom) / 2:.1f})">'
        f"{escape(chart.y_label)}</text>"
    )
    parts.append(
        f'<clipPath id="clip-{escape(chart.key)}"><rect x="{left}" y="{top}" '
        f'width="{right - left}" height="{bottom - top}"/></clipPath>'
    )
    return parts


def _series_parts(chart: Chart, plot: _Plot, index: int, series: Series) -> list[str]:
    """One series: a line through its usable points (broken where one is missing), dots."""
    color = series.color or PALETTE[index % len(PALETTE)]
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(series.xs, series.ys, strict=True):
        usable = _finite(x) and _finite(y)
        usable = usable and (x > 0 or not chart.x_log) and (y > 0 or not chart.y_log)
        if usable:
            segments[-1].append((plot.x_axis(x), plot.y_axis(y)))
        elif segments[-1]:
            segments.append([])
    path = " ".join(
        "M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in segment)
        for segment in segments
        if segment
    )
    dash = ' stroke-dasharray="6 4"' if series.dashed else ""
    parts = [
        f'<g class="series" data-series="{escape(series.name)}" '
        f'clip-path="url(#clip-{escape(chart.key)})">'
    ]
    if path:
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
    for segment in segments:
        # A value with no neighbour draws no line: it is a dot, or it would not be seen.
        if series.points or len(segment) == 1:
            for px, py in segment:
                parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>')
    parts.append("</g>")
    return parts


def _marker_parts(chart: Chart, plot: _Plot, marker: Marker) -> list[str]:
    """A reference line across the plot ([] where it cannot be drawn: not finite, or not
    positive on a log axis)."""
    usable = _finite(marker.value) and (
        marker.value > 0 or not (chart.x_log if marker.axis == "x" else chart.y_log)
    )
    if not usable:
        return []
    dash = ' stroke-dasharray="4 3"' if marker.dashed else ""
    parts = [f'<g class="marker" data-marker="{escape(marker.label)}">']
    if marker.axis == "x":
        px = plot.x_axis(marker.value)
        parts.append(
            f'<line x1="{px:.1f}" y1="{plot.top}" x2="{px:.1f}" y2="{plot.bottom}" '
            f'stroke="{marker.color}" stroke-width="1.5"{dash}/>'
        )
    else:
        py = plot.y_axis(marker.value)
        parts.append(
            f'<line x1="{plot.left}" y1="{py:.1f}" x2="{plot.right}" y2="{py:.1f}" '
            f'stroke="{marker.color}" stroke-width="1.5"{dash}/>'
        )
    parts.append("</g>")
    return parts


def _legend(chart: Chart, plot: _Plot) -> list[str]:
    """The legend right of the plot: every series, then every reference line."""
    entries = [
        (series.name, series.color or PALETTE[index % len(PALETTE)], series.dashed, "2")
        for index, series in enumerate(chart.series)
    ]
    entries += [(marker.label, marker.color, marker.dashed, "1.5") for marker in chart.markers]
    if not entries:
        return []
    right = plot.right
    parts = ['<g class="legend">']
    for index, (label, color, dashed, stroke) in enumerate(entries):
        y = plot.top + 8 + index * 16
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<line x1="{right + 10}" y1="{y}" x2="{right + 30}" y2="{y}" stroke="{color}" '
            f'stroke-width="{stroke}"{dash}/>'
        )
        name = label if len(label) <= _LEGEND_CHARS else label[: _LEGEND_CHARS - 1] + "…"
        parts.append(_text(right + 34, y + 4, name, anchor="start", size=10))
    parts.append("</g>")
    return parts


def render_chart(chart: Chart, *, standalone: bool = True) -> str:
    """The chart as one `<svg>` element."""
    plot = _plot(chart)
    parts = _open(chart.key, chart.title, chart.width, chart.height, standalone)
    parts += _frame(chart, plot)
    for index, series in enumerate(chart.series):
        parts += _series_parts(chart, plot, index, series)
    # Reference lines are named in the legend, not on the plot, where labels of nearby lines
    # would overlap each other and the data.
    for marker in chart.markers:
        parts += _marker_parts(chart, plot, marker)
    parts += _legend(chart, plot)
    parts.append("</svg>")
    return "\n".join(parts)


@dataclass(frozen=True)
class Bars:
    """A horizontal bar chart's content: one bar per label (cost per tier)."""

    key: str
    title: str
    labels: Sequence[str]
    values: Sequence[float]
    value_format: Formatter = plain
    x_label: str = ""
    width: int = 640


def render(figure: Chart | Bars, *, standalone: bool = True) -> str:
    """Either kind of figure as one `<svg>` element (`standalone`: with its XML namespace, for an
    .svg file; without, for inlining in HTML)."""
    if isinstance(figure, Chart):
        return render_chart(figure, standalone=standalone)
    return render_bars(figure, standalone=standalone)


def render_bars(bars: Bars, *, standalone: bool = True) -> str:
    """A horizontal bar chart, one bar per label, each with its value written beside it."""
    key, title, labels, values = bars.key, bars.title, bars.labels, bars.values
    value_format, width = bars.value_format, bars.width
    row = 22
    # Room right of the longest bar for its value, written at 10 px (about 6.5 px a character).
    label_room = max([len(value_format(v)) for v in values if _finite(v)] + [8]) * 6.5 + 12
    left, right = 150, width - max(90.0, label_room)
    height = 44 + row * len(labels)
    top = 32
    highest = max([v for v in values if _finite(v)] + [0.0]) or 1.0
    parts = _open(key, title, width, height, standalone)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + index * row
        length = 0.0 if not _finite(value) else max(value, 0.0) / highest * (right - left)
        color = PALETTE[index % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{escape(label)}">')
        parts.append(_text(left - 8, y + 14, label, anchor="end", size=11))
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" fill="{color}"/>'
        )
        parts.append(_text(left + length + 6, y + 14, value_format(value), anchor="start", size=10))
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)
