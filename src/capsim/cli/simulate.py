"""The commands on one scenario: run, solve, validate and schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import capsim
from capsim.cli.common import (
    DurationOption,
    Engine,
    Executor,
    ExecutorOption,
    FormatOption,
    LoadOption,
    OutputFormat,
    OutputOption,
    PercentilesOption,
    Progress,
    ReplicationsOption,
    SchedulerOption,
    SeedOption,
    SetOption,
    ShareOverOption,
    WorkersOption,
    color_for,
    emit,
    executor_for,
    exit_codes,
    report_interrupt,
    say,
    size_option,
    statistics_overrides,
    stderr_console,
    table_width,
    with_load,
)
from capsim.errors import Interrupted
from capsim.textsafe import visible

#: Registered on capsim's app by `capsim.cli.app`.
commands = typer.Typer()


def _what_if_options(set_: list[str] | None, load: str | None) -> str:
    """The --set and --load options as a shell would need them, to repeat in suggested commands."""
    import shlex

    words = [f"--set {shlex.quote(item)}" for item in set_ or []]
    if load is not None:
        words.append(f"--load {shlex.quote(load)}")
    return "".join(f" {word}" for word in words)


def _shell_path(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


@commands.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    set_: SetOption = None,
    seed: SeedOption = None,
    replications: ReplicationsOption = None,
    duration: DurationOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    output_format: FormatOption = OutputFormat.table,
    output: OutputOption = None,
    load: LoadOption = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="Engine path: auto picks the vectorised path when the scenario allows it; "
            "events forces the SimPy event path.",
        ),
    ] = Engine.auto,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    max_requests: Annotated[
        float,
        typer.Option(
            "--max-requests",
            help="Refuse (exit 3) a run that would simulate more requests than this, "
            "over all replications.",
            min=1,
            show_default="100,000,000",
        ),
    ] = 1e8,
    max_memory: Annotated[
        str,
        typer.Option(
            "--max-memory",
            help="Refuse (exit 3) a run whose engine state would need more memory than this "
            "per replication (a size: 4GiB, 500MB).",
        ),
    ] = "4GiB",
    timeseries: Annotated[
        bool,
        typer.Option(
            "--timeseries",
            help="Add figures per time bucket (JSON `timeseries`) even without a profile; "
            "choose the bucket with --set simulation.timeseries=10s.",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also say which engine path ran and why (as the JSON does)."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Drop the next-steps footer under the table."),
    ] = False,
) -> None:
    """Simulate a scenario and print its results.

    The table ends with next steps: the bottleneck tier, its headroom to saturation by the
    analytic bound, and the commands to dig further (--quiet drops them).
    """
    from dataclasses import replace

    from capsim.outputs import render

    with exit_codes():
        overrides = [
            *(set_ or []),
            *capsim.simulation_overrides(seed, replications, duration),
            *statistics_overrides(percentiles, share_over),
        ]
        model, factor = with_load(
            capsim.build_model(capsim.load_scenario(scenario, overrides)), load
        )
        if timeseries:
            model = replace(model, timeseries=True)
        memory_limit = size_option(max_memory, "--max-memory")
        report, interrupted = _simulate_until_stopped(
            model,
            (executor, workers, scheduler),
            engine=engine.value,
            max_requests=max_requests,
            max_memory=memory_limit,
        )
        if load is not None:
            report.data["load"] = factor
        console = stderr_console()
        for warning in report.warnings:
            say(console, f"warning: {warning}")
        if interrupted is not None and output is not None:
            # The file is for complete results only: the partial ones go to the terminal.
            console.print(render(report, "table", color=False), markup=False, soft_wrap=True)
            say(console, f"interrupted: {output} was not written.")
            report_interrupt()
            raise typer.Exit(interrupted.exit_code)
        color = color_for(output)
        footer: list[str] = []
        if output_format is OutputFormat.table and not quiet and interrupted is None:
            footer = _next_steps(model, scenario, set_, load, report.data)
        text = render(
            report,
            output_format.value,
            color=color,
            width=table_width(output),
            verbose=verbose,
            footer=footer,
        )
        emit(text, output)
        if interrupted is not None:
            say(console, f"{interrupted}.")
            report_interrupt()
            raise typer.Exit(interrupted.exit_code)


def _simulate_until_stopped(
    model: Any, where: tuple[Executor | None, int | None, str | None], **options: Any
) -> tuple[Any, Interrupted | None]:
    """`capsim.simulate(model, **options)` on the executor `where` (--executor, --workers,
    --scheduler) with a progress bar; stopped by Ctrl-C or SIGTERM after some replications,
    the partial report and the interruption (else None). The interruption is caught once the
    executor is closed, as it left its context by the exception."""
    try:
        with executor_for(*where) as executor, Progress("run") as progress:
            return capsim.simulate(model, executor=executor, progress=progress, **options), None
    except Interrupted as stop:
        if stop.report is None:
            raise
        return stop.report, stop


def _next_steps(
    model: Any, scenario: Path, set_: list[str] | None, load: str | None, data: dict[str, Any]
) -> list[str]:
    """The footer of the table: the rate limits that refused requests, the bottleneck, its
    headroom by the analytic bound, and the commands to dig further, with the same --set and
    --load."""
    from capsim.analysis.headroom import analytic_headroom
    from capsim.outputs.table import next_steps, rate_limit_lines

    limits = {t.name: t.rate_limit.rate for t in model.tiers if t.rate_limit is not None}
    # A deadlocked pool sustains no load: a saturation rate beside it would promise one.
    deadlocked = any(f.get("deadlock") for f in data.get("overloaded") or [])
    return next_steps(
        None if deadlocked else analytic_headroom(model, capsim.__version__),
        _shell_path(scenario),
        _what_if_options(set_, load),
        rate_limit_lines(data, limits),
    )


@commands.command()
def solve(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    set_: SetOption = None,
    output_format: FormatOption = OutputFormat.table,
    output: OutputOption = None,
    load: LoadOption = None,
) -> None:
    """Instant analytic estimates (queueing formulas), no simulation.

    Per tier: offered load, utilization, mean wait and, where a formula exists, wait
    percentiles; per class: end-to-end mean latency; the bottleneck and the rate at which the
    system saturates. Every figure says which formula produced it and whether it is exact.
    Exit code 1 when a tier is overloaded (the table marks it).
    """
    from capsim.analysis.report import Report
    from capsim.analysis.solve import solve as solve_model
    from capsim.analysis.stats import sanitise
    from capsim.outputs.analytic import render_solve

    with exit_codes():
        model, factor = with_load(
            capsim.build_model(capsim.load_scenario(scenario, set_ or [])), load
        )
        data = solve_model(model, capsim_version=capsim.__version__, mark_overload=True)
        if load is not None:
            data["load"] = factor
        notes = data.get("notes", [])
        report = Report(data=sanitise(data), warnings=list(notes))  # type: ignore[arg-type]
        color = color_for(output)
        emit(
            render_solve(report, output_format.value, color=color, width=table_width(output)),
            output,
        )
        if data["overloaded"]:
            # The estimates are printed; the exit code says a tier has no steady state.
            raise typer.Exit(1)


@commands.command()
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
    set_: SetOption = None,
) -> None:
    """Check scenario files and print every problem found; changes nothing.

    Exit code 0 when every file is valid, 2 when any is not.
    """
    from capsim.scenario import validate_file

    with exit_codes():
        console = stderr_console()
        failed = 0
        for path in scenarios:
            problems = validate_file(path, set_ or [])
            if problems:
                failed += 1
                for problem in problems:
                    say(console, f"error: {problem.format()}")
                say(console, f"{path}: {len(problems)} problem(s)")
            else:
                sys.stdout.write(f"{visible(str(path))}: ok\n")
        if failed:
            raise typer.Exit(2)


@commands.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editors and CI)."""
    from capsim.scenario.schema import render_json_schema

    with exit_codes():
        sys.stdout.write(render_json_schema())
