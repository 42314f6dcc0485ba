"""The terminal view of a Report: rich tables rendered to a string."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from capsim.analysis.report import Report
from capsim.outputs import cells
from capsim.outputs.escape import terminal_data
from capsim.outputs.fit import DEFAULT_WIDTH, Cell, Column, fitted_tables
from capsim.outputs.rows import Rows, class_rows, slo_rows, tier_rows

if TYPE_CHECKING:  # the analytic headroom (and its solver) only when a footer is asked for
    from capsim.analysis.headroom import Headroom

#: Width of the rendered table when the caller does not say (files, pipes, tests).
WIDTH = DEFAULT_WIDTH

HEDGE_COLUMNS = [Column("tier", justify="left"), *(Column(name) for name in cells.HEDGE_COLUMNS)]
COST_COLUMNS = [Column("cost of", justify="left"), *(Column(name) for name in cells.COST_COLUMNS)]


def plain_cells(row: list[Any]) -> list[Any]:
    """Table cells as rich `Text`: a string from data is shown as it is, never read as markup
    (`[red]`, `[link=...]`)."""
    return [Text(cell) if isinstance(cell, str) else cell for cell in row]


def columns_of(table: Rows) -> list[Column]:
    """The terminal columns of a table: text on the left, figures on the right."""
    return [
        Column(field.header, justify="right" if field.numeric else "left", prose=field.prose)
        for field in table.fields
    ]


def styled_rows(table: Rows, mark: Callable[[bool], str]) -> list[list[Cell]]:
    """The rows as terminal cells: text (names, objectives, words) as rich `Text`, never read as
    markup; the marking cell in the style `mark` gives for whether its row is ok."""
    styled: list[list[Cell]] = []
    for row in table.rows:
        styled.append(
            [
                Text(text, style=mark(row.ok))
                if field.marks
                else text
                if field.numeric
                else Text(text)
                for field, text in zip(table.fields, row.cells, strict=True)
            ]
        )
    return styled


def _status_style(ok: bool) -> str:
    return "" if ok else "bold red"


def _verdict_style(ok: bool) -> str:
    return "green" if ok else "bold red"


def _worst_windows(data: dict[str, Any]) -> list[str]:
    """One line per class with a time series: its peak bucket p99, and when it happened."""
    series = data.get("timeseries")
    if not series:
        return []
    bucket = series["bucket"]
    warmup = data.get("warmup") or 0.0
    # t counts from the start of the warm-up, whose buckets are not candidates.
    after = f", after the {cells.time(warmup)} warm-up" if warmup > 0 else ""
    lines = []
    for name, worst in series.get("worst", {}).items():
        start = worst["t"]
        lines.append(
            f"worst window for {name}: p99 {cells.time(worst['p99'])} in the "
            f"{cells.time(bucket)} from t = {cells.time(start)}{after} "
            "(time series: --format json)"
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
    classes, tiers = class_rows(data), tier_rows(data)
    blocks = [
        ("Request classes", columns_of(classes), styled_rows(classes, _status_style)),
        ("Tiers", columns_of(tiers), styled_rows(tiers, _status_style)),
    ]
    hedges: list[list[Cell]] = [plain_cells(row) for row in cells.hedge_rows(data)]
    if hedges:
        blocks.append(("Hedged calls (by callee)", HEDGE_COLUMNS, hedges))
    costs: list[list[Cell]] = [plain_cells(row) for row in cells.cost_rows(data)]
    if costs:
        blocks.append(("Cost", COST_COLUMNS, costs))
    if data.get("slos"):
        slos = slo_rows(data)
        blocks.append(("SLOs", columns_of(slos), styled_rows(slos, _verdict_style)))
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


#: Share of a tier's arrivals its rate limit must refuse for the footer to name the limit.
RATE_LIMITED_SHARE = 0.001


def rate_limit_lines(data: dict[str, Any], limits: dict[str, float]) -> list[str]:
    """Footer lines for the tiers whose `rate_limit` (`limits`: tier -> tokens per second)
    refused a noticeable share of their arrivals: that limit, not a tier's capacity, is what
    caps the load."""
    lines = []
    for name, rate in limits.items():
        entry = data.get("tiers", {}).get(name) or {}
        refused, arrivals = entry.get("rate_limited") or 0, entry.get("arrivals") or 0
        if arrivals and refused / arrivals >= RATE_LIMITED_SHARE:
            lines.append(
                f"  {name}'s rate_limit ({cells.rate(rate)}) refused {refused:,} requests "
                f"({cells.percent(refused / arrivals)} of its arrivals): beyond it extra load is "
                "turned away as errors, not queued, whatever capacity the tiers behind it have."
            )
    return lines


def _at_the_profiles_peak(headroom: Headroom) -> str:
    """Says that the headroom is judged at the profiles' peak, when one rises above its end."""
    if headroom.profile_peak is None:
        return ""
    return (
        " (offered rates are at the profile's peak, "
        f"{cells.rate(headroom.profile_peak)}, not its final rate.)"
    )


def _rate_limit_bottleneck(headroom: Headroom) -> str:
    """The footer's bottleneck line when a rate limit passes less than any tier can carry."""
    text = (
        f"  {headroom.tier}'s rate_limit is the bottleneck: it lets through at most "
        f"{cells.rate(headroom.saturation_rate)}"
    )
    factor = headroom.factor
    if factor is not None and factor < 1:
        offered = cells.rate(headroom.offered_rate)
        return text + f" of the {offered} offered now (it refuses the rest)."
    if factor is not None:
        return text + f", {factor:.2f}x the {cells.rate(headroom.offered_rate)} offered now."
    return text + "."


def next_steps(
    headroom: Headroom | None, scenario: str, options: str = "", limited: Sequence[str] = ()
) -> list[str]:
    """The footer of `run`'s table: the bottleneck, its headroom, and the commands to dig further.

    `scenario` is the path as the user should type it, `options` the what-if options (--set,
    --load) the commands should carry so that they look at the same system; `limited` the
    `rate_limit_lines` of the run, first.
    """
    lines = ["Next steps:", *limited]
    if headroom is not None and headroom.rate_limit:
        lines.append(_rate_limit_bottleneck(headroom) + _at_the_profiles_peak(headroom))
    elif headroom is not None:
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
        text += _at_the_profiles_peak(headroom)
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
