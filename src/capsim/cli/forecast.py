"""`capsim forecast`: saturation and SLO-breach dates under growth, and a sized capacity plan."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

import capsim
from capsim.cli.common import (
    SEARCH_REPLICATIONS,
    CapacityFormat,
    CapacityFormatOption,
    ExecutorOption,
    MaxRequests,
    OutputOption,
    PercentilesOption,
    Progress,
    SchedulerOption,
    SearchDuration,
    SearchReplications,
    SeedOption,
    SetOption,
    ShareOverOption,
    WorkersOption,
    announce,
    executor_for,
    exit_codes,
    load_model,
    search_duration,
    show_result,
    with_load,
)
from capsim.errors import UsageError


def _share(progress: Progress, first: int, shares: int, prefix: str) -> Any:
    """Progress of one part of the forecast (the search, a plan step) as its share of the
    whole, so that the share done never goes back when the next part starts. Within a part
    it never goes back either: a search that re-measures (a verification after its curve)
    restarts its own count, which would otherwise move the bar backwards."""
    done = [0.0]

    def report(fraction: float, what: str) -> None:
        done[0] = max(done[0], min(max(fraction, 0.0), 1.0))
        progress((first + done[0]) / shares, prefix + what)

    return report


#: Registered on capsim's app by `capsim.cli.app`.
commands = typer.Typer()


def _show(data: dict[str, Any], fmt: CapacityFormat, output: Path | None) -> None:
    from capsim.outputs.forecast import render_forecast

    show_result(data, fmt.value, output, render_forecast)


def _window(
    start: str | None, horizon: str, step: str, events: list[str] | None
) -> tuple[Any, Any]:
    """The forecast's horizon (--from, --horizon, with every --event inside it) and --step."""
    from capsim.analysis import forecast as fc

    day0 = fc.parse_date(start, "--from") if start is not None else date.today()
    span = fc.parse_span(horizon, "--horizon")
    every = fc.parse_span(step, "--step")
    window = fc.Horizon(day0, span.after(day0))
    parsed = [fc.parse_event(text, window) for text in events or []]
    return fc.Horizon(day0, window.end, parsed), every


def _trend(growth: str | None, history: Path | None) -> Any:
    """The growth: --growth as written, or fitted to the --history file."""
    from capsim.analysis import forecast as fc
    from capsim.safeio import read_capped

    if growth is not None:
        return fc.parse_growth(growth)
    assert history is not None
    raw = read_capped(history, fc.MAX_FORECAST_FILE_BYTES, "a history file")
    text = fc.decode_text(history, raw, "a CSV of date,rate lines")
    return fc.fit_growth(fc.read_history(history, text), f"--history {history}")


@commands.command()
def forecast(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (today's load and fleet).")],
    growth: Annotated[
        str | None,
        typer.Option("--growth", help="Compound growth of the load: 8%/month, 60%/year."),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            "--history",
            help="CSV of past peaks (date,rate): fit a log-linear trend instead of --growth.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="The scenario's load is the load on this date (default today)."
        ),
    ] = None,
    horizon: Annotated[
        str, typer.Option("--horizon", help="How far to look: 24mo, 18 months, 52w, 2y, 90d.")
    ] = "24mo",
    step: Annotated[
        str, typer.Option("--step", help="Size the fleet at every step of the horizon.")
    ] = "3mo",
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event", help="A seasonal spike: DATE=FACTOR, e.g. 2027-11-26=3x (repeatable)."
        ),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan/--no-plan", help="Size the fleet at each step (a `size` search per step)."
        ),
    ] = True,
    set_: SetOption = None,
    seed: SeedOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    load: Annotated[
        str | None,
        typer.Option(
            "--load",
            help="The load on the --from date: the scenario's open rates scaled by a factor "
            "(3x, 150%) or to a total open rate (3000/s); growth is applied from there.",
        ),
    ] = None,
    replications: SearchReplications = SEARCH_REPLICATIONS,
    duration: SearchDuration = None,
    output_format: CapacityFormatOption = CapacityFormat.table,
    output: OutputOption = None,
    max_requests: MaxRequests = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """When each tier saturates and the first SLO breaks as the load grows, and what to buy.

    One `saturate` search at today's load gives the rates; the growth curve turns them into
    dates (docs/forecast.md). The plan is a `size` search at each step's load.
    """
    from capsim.analysis import forecast as fc
    from capsim.analysis.points import open_rate
    from capsim.analysis.saturate import find_saturation
    from capsim.analysis.sizing import size_tiers

    with exit_codes():
        if (growth is None) == (history is None):
            raise UsageError("give exactly one of --growth (e.g. 8%/month) or --history FILE")
        window, every = _window(start, horizon, step, event)
        trend = _trend(growth, history)
        model, factor = with_load(load_model(scenario, set_, seed, percentiles, share_over), load)
        rate_now = open_rate(model)
        if rate_now <= 0:
            raise UsageError(
                "capsim forecast grows the open classes' rates, and this scenario has none"
            )
        point_duration = search_duration(duration)
        steps = len(fc.plan_days(window, every)) if plan else 0
        with executor_for(executor, workers, scheduler) as where, Progress("forecast") as progress:
            # One share of the bar for the saturation search, one for each plan step.
            sized: list[float] = []

            def saturation(m: Any) -> dict[str, Any]:
                return find_saturation(
                    m,
                    capsim_version=capsim.__version__,
                    replications=replications,
                    duration=point_duration,
                    progress=_share(progress, 0, 1 + steps, ""),
                    max_requests=max_requests,
                    executor=where,
                )

            def size_at(m: Any, load: float) -> dict[str, Any]:
                sized.append(load)
                step = f"plan step {len(sized)}/{steps} ({load:.2f}x the load now): "
                return size_tiers(
                    m,
                    capsim_version=capsim.__version__,
                    load=load,
                    replications=replications,
                    duration=point_duration,
                    progress=_share(progress, len(sized), 1 + steps, step),
                    max_requests=max_requests,
                    executor=where,
                    announce=announce,
                )

            data = fc.forecast(
                model,
                capsim_version=capsim.__version__,
                growth=trend,
                horizon=window,
                step=every,
                find_saturation=saturation,
                size_at=size_at if plan else None,
                open_rate=rate_now,
            )
        if load is not None:
            data["load"] = factor
        _show(data, output_format, output)
