"""`capsim check` (the CI gate) and `capsim report` (the sizing report), registered on the app."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

import capsim
from capsim.cli.common import (
    DurationOption,
    Engine,
    ExecutorOption,
    LoadOption,
    PercentilesOption,
    Progress,
    ReplicationsOption,
    SchedulerOption,
    SeedOption,
    SetOption,
    ShareOverOption,
    WorkersOption,
    emit,
    executor_for,
    exit_codes,
    idle_cores,
    say,
    search_executor,
    statistics_overrides,
    stderr_console,
    usl_saturation,
    with_load,
)
from capsim.errors import UsageError

#: Registered on capsim's app by `capsim.cli.app`.
commands = typer.Typer()


class Inconclusive(str, Enum):
    fail = "fail"
    passes = "pass"


class CheckFormat(str, Enum):
    """--format of `check`: `table` is the plain-text verdict list (`text`), as SPEC.md names
    the default of every command; `csv` is the JSON's long-format CSV."""

    text = "text"
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class ReportFormat(str, Enum):
    html = "html"
    markdown = "markdown"


EngineOption = Annotated[
    Engine,
    typer.Option("--engine", help="Engine path: auto, events or vectorised (as for `run`)."),
]
MaxRequestsOption = Annotated[
    float,
    typer.Option(
        "--max-requests",
        help="Refuse (exit 3) a run that would simulate more requests than this.",
        min=1,
        show_default="100,000,000",
    ),
]


def parse_tolerance(text: str) -> float:
    """`10%` or `0.1` -> 0.1."""
    value = text.strip()
    try:
        number = float(value[:-1]) / 100.0 if value.endswith("%") else float(value)
    except ValueError:
        raise UsageError(
            f"--tolerance {text!r} is not a number; write a fraction (0.1) or a percentage (10%)"
        ) from None
    if not 0.0 <= number < 100.0 or number != number:
        raise UsageError(f"--tolerance {text!r} must be a fraction of at least 0 (e.g. 10%)")
    if number > 1.0 and not value.endswith("%"):
        raise UsageError(
            f"--tolerance {text!r} would allow a change of {number * 100:g}%: a plain number is "
            f"a fraction (0.1 is 10%); write {value}% for {value} percent, or "
            f"{number * 100:g}% if a change of that size is really meant"
        )
    return number


def _check_folder(path: Path | None, option: str) -> None:
    """Refuse, before simulating, an output file whose folder does not exist, or one no write
    could succeed at (a folder, a read-only file: `outputs.files.check_destination`)."""
    if path is None:
        return
    from capsim.outputs.files import check_destination
    from capsim.safeio import os_reason
    from capsim.textsafe import visible

    folder = path.parent if str(path.parent) else Path(".")
    try:
        exists = folder.is_dir()
    except OSError as error:  # a name too long: is_dir() does not swallow that one
        raise UsageError(
            f"cannot write {visible(str(path))} ({option}): {os_reason(error)}"
        ) from None
    if not exists:
        raise UsageError(
            f"cannot write {visible(str(path))} ({option}): the folder {visible(str(folder))} "
            "does not exist; create it or choose another path"
        )
    check_destination(path)


def _load_baseline(path: Path) -> dict[str, Any]:
    from capsim.analysis.results import load_result
    from capsim.safeio import InputError
    from capsim.textsafe import visible

    try:
        return load_result(path)
    except InputError as error:
        raise UsageError(
            f"cannot read the baseline {visible(error.path)}: {error.reason}. Make one with "
            "`capsim run SCENARIO --format json --output FILE`"
        ) from None


def _check_text(outcome: Any, load: float | None = None) -> str:
    """The plain-text view of a check, for the CI log (`load`: the --load factor, if any; no
    control character from data)."""
    from capsim.outputs.junit import overload_message, regression_message, slo_message
    from capsim.textsafe import visible

    lines = [outcome.headline()]
    if load is not None:
        lines.append(f"open traffic at {load:.3g}x the scenario's (--load)")
    for entry in outcome.overloaded:
        lines.append(f"  FAIL  {overload_message(entry)}")
    for verdict in outcome.slos:
        lines.append(f"  {'PASS' if verdict['passed'] else 'FAIL'}  SLO {slo_message(verdict)}")
    if outcome.baseline is not None:
        lines.append(
            f"against baseline {outcome.baseline} (tolerance {outcome.tolerance * 100:g}%; "
            f"inconclusive counts as {outcome.inconclusive_policy}):"
        )
        flagged = [c for c in outcome.regressions if c.status != "pass"]
        for check in flagged:
            word = check.status.upper() if outcome.check_fails(check) else check.status
            lines.append(f"  {word}  {regression_message(check)}")
        within = len(outcome.regressions) - len(flagged)
        lines.append(f"  {within} of {len(outcome.regressions)} figures within tolerance")
    lines += [f"note: {note}" for note in outcome.notes]
    return "\n".join(visible(line) for line in lines) + "\n"


@commands.command()
def check(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="A saved `capsim run --format json` result: also fail when a figure regressed "
            "beyond --tolerance and beyond the noise of the confidence intervals.",
        ),
    ] = None,
    tolerance: Annotated[
        str,
        typer.Option(
            "--tolerance", help="Relative change allowed against the baseline (10% or 0.1)."
        ),
    ] = "10%",
    inconclusive: Annotated[
        Inconclusive,
        typer.Option(
            "--inconclusive",
            help="What a change beyond tolerance but within noise counts as.",
            case_sensitive=False,
        ),
    ] = Inconclusive.fail,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit", help="Write JUnit XML: one test case per SLO and regression check."
        ),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a Markdown summary table.")
    ] = None,
    output_format: Annotated[
        CheckFormat,
        typer.Option(
            "--format",
            "-f",
            help="What to print on stdout (or --output): the verdicts as text (also called "
            "table), json, markdown or csv.",
            case_sensitive=False,
        ),
    ] = CheckFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the verdicts (--format) to this file instead of stdout; the exit code "
            "is the same.",
        ),
    ] = None,
    set_: SetOption = None,
    seed: SeedOption = None,
    replications: ReplicationsOption = None,
    duration: DurationOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    load: LoadOption = None,
    engine: EngineOption = Engine.auto,
    max_requests: MaxRequestsOption = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """CI gate: simulate, then exit 0 when every SLO holds and nothing regressed, 1 otherwise.

    Exit 2 for invalid input (scenario, baseline, options), 3 when the run cannot complete.
    Under GitHub Actions (GITHUB_ACTIONS=true) it prints `::error` annotations at the SLOs'
    lines; when GITHUB_STEP_SUMMARY is set it appends the Markdown summary to that file.
    """
    from capsim.analysis.check import check_result
    from capsim.outputs.github import render_summary, workflow_annotations
    from capsim.textsafe import visible

    with exit_codes():
        relative = parse_tolerance(tolerance)
        _check_folder(junit, "--junit")
        _check_folder(markdown, "--markdown")
        _check_folder(output, "--output")
        base = _load_baseline(baseline) if baseline is not None else None
        overrides = [
            *(set_ or []),
            *capsim.simulation_overrides(seed, replications, duration),
            *statistics_overrides(percentiles, share_over),
        ]
        loaded = capsim.load_scenario(scenario, overrides)
        model, factor = with_load(capsim.build_model(loaded), load)
        with executor_for(executor, workers, scheduler) as where, Progress("check") as progress:
            report = capsim.simulate(
                model,
                engine=engine.value,
                executor=where,
                progress=progress,
                max_requests=max_requests,
            )
        if load is not None:
            report.data["load"] = factor
        console = stderr_console()
        for warning in report.warnings:
            say(console, f"warning: {warning}")
        outcome = check_result(
            report.data,
            baseline=base,
            baseline_name=visible(str(baseline)) if baseline is not None else None,
            tolerance=relative,
            inconclusive="pass" if inconclusive is Inconclusive.passes else "fail",
            tier_lines={
                n: loaded.problem("", ("tiers", n), at_key=True).line for n in loaded.tiers
            },
        )
        summary = render_summary(outcome)
        _write_check_files(outcome, summary, scenario, junit, markdown)
        emit(
            _check_view(outcome, summary, output_format, factor if load is not None else None),
            output,
        )
        if os.environ.get("GITHUB_ACTIONS") == "true":
            _annotate(workflow_annotations(outcome, str(scenario)), output_format, output)
        if outcome.exit_code:
            raise typer.Exit(outcome.exit_code)


def _annotate(annotations: list[str], output_format: CheckFormat, output: Path | None) -> None:
    """GitHub's `::error` workflow commands, which the runner reads on stdout and stderr alike:
    on stdout beside a text view, on stderr when stdout carries JSON or CSV, so that
    `capsim check s.yaml -f json | jq .` works in a workflow too."""
    from capsim.outputs.files import is_stdout

    data_on_stdout = output_format in (CheckFormat.json, CheckFormat.csv) and (
        output is None or is_stdout(output)
    )
    stream = sys.stderr if data_on_stdout else sys.stdout
    stream.write("".join(f"{line}\n" for line in annotations))
    stream.flush()


def _write_check_files(
    outcome: Any, summary: str, scenario: Path, junit: Path | None, markdown: Path | None
) -> None:
    """The gate's files: --junit, --markdown, and the summary appended to GitHub's
    GITHUB_STEP_SUMMARY when it is set."""
    from capsim.outputs.junit import render_junit

    if junit is not None:
        emit(render_junit(outcome, scenario_path=str(scenario)), junit)
    if markdown is not None:
        emit(summary, markdown)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as stream:
                stream.write(summary + "\n")
        except OSError as error:
            raise UsageError(
                f"cannot append to GITHUB_STEP_SUMMARY ({step_summary}): {error.strerror or error}"
            ) from None


def _check_view(outcome: Any, summary: str, output_format: CheckFormat, load: float | None) -> str:
    """The gate's verdicts on stdout, in --format (`load`: the --load factor, if given)."""
    from capsim.analysis.stats import sanitise

    if output_format is CheckFormat.json:
        # A baseline's figures are finite, but arithmetic on them (a change from 1e-300)
        # need not be: the JSON holds null where a figure is not finite.
        return json.dumps(
            sanitise(outcome.as_dict()), indent=2, allow_nan=False, ensure_ascii=False
        )
    if output_format is CheckFormat.markdown:
        return summary
    if output_format is CheckFormat.csv:
        from capsim.outputs.text import render_csv_data

        return render_csv_data(sanitise(outcome.as_dict()))  # type: ignore[arg-type]
    return _check_text(outcome, load)


@commands.command()
def report(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Report file: .html (self-contained) or .md."),
    ],
    output_format: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="html or markdown; by default from the file's extension (.md: markdown).",
            case_sensitive=False,
        ),
    ] = None,
    curve: Annotated[
        bool,
        typer.Option(
            "--curve/--no-curve",
            help="Run `capsim saturate`'s search for the p99-against-load curve, its knee and "
            "the saturation rate (simulates the scenario at a dozen or so loads).",
        ),
    ] = True,
    forecast_file: Annotated[
        Path | None,
        typer.Option(
            "--forecast",
            help="A `capsim forecast --format json` file of this scenario: adds a forecast "
            "section (load over the horizon, saturation dates, first SLO breach, plan cost).",
        ),
    ] = None,
    set_: SetOption = None,
    seed: SeedOption = None,
    replications: ReplicationsOption = None,
    duration: DurationOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    load: LoadOption = None,
    engine: EngineOption = Engine.auto,
    max_requests: MaxRequestsOption = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    usl: Annotated[
        list[Path] | None,
        typer.Option(
            "--usl",
            help="A stepped load test (k6 --out json, Locust _stats_history.csv, or a "
            "concurrency,throughput CSV): the report adds its Universal Scalability Law fit "
            "and plot beside the scenario's saturation rate. Repeatable.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Sizing report: verdicts, bottleneck, per-tier tables and plots, in one file.

    HTML is one self-contained file (plots inline as SVG, no scripts, no network). Markdown
    embeds its plots as image files written next to it (PNG with matplotlib installed, else SVG).
    """
    from capsim.analysis.forecast import load_forecast
    from capsim.analysis.sizing_report import build_sizing_report
    from capsim.engine.runner import run_replications
    from capsim.outputs.files import is_regular_destination, is_stdout
    from capsim.outputs.report_markdown import write_report_markdown
    from capsim.textsafe import visible

    with exit_codes():
        _check_folder(output, "--output")
        fmt = output_format
        if fmt is None:
            fmt = (
                ReportFormat.markdown
                if output.suffix.lower() in (".md", ".markdown")
                else ReportFormat.html
            )
        if fmt is ReportFormat.markdown and not is_regular_destination(output):
            write_report_markdown("", {}, output)  # refuses, before anything is simulated
        overrides = [
            *(set_ or []),
            *capsim.simulation_overrides(seed, replications, duration),
            *statistics_overrides(percentiles, share_over),
        ]
        loaded = capsim.load_scenario(scenario, overrides)
        usl_tests, usl_fit = _usl_fit(usl)
        model, factor = with_load(capsim.build_model(loaded), load)
        planned = load_forecast(forecast_file, model.name) if forecast_file else None
        if loaded.simulation.timeseries is not False:
            # The over-time plots need the per-bucket figures; a scenario can still refuse them.
            model = replace(model, timeseries=True)
        if curve:  # the load curve's points run on the idle cores unless told otherwise
            executor, workers = search_executor(executor, workers, scheduler, idle_cores())
        with executor_for(executor, workers, scheduler) as where, Progress("report") as progress:
            runs = run_replications(
                model,
                engine=engine.value,
                executor=where,
                progress=progress,
                max_requests=max_requests,
            )
            sizing = build_sizing_report(
                model,
                runs,
                capsim_version=capsim.__version__,
                curve=curve,
                progress=progress,
                max_requests=max_requests,
                executor=where,
            )
        sizing.forecast = planned
        if load is not None:
            sizing.result["load"] = factor
        if usl_fit is not None:
            sizing.usl = _beside_saturate(usl_fit, usl_tests, loaded, str(scenario), sizing.curve)
        console = stderr_console()
        for warning in sizing.warnings:
            say(console, f"warning: {warning}")
        if fmt is ReportFormat.html:
            from capsim.outputs.report_html import render_report_html

            emit(render_report_html(sizing), output)
        else:
            from capsim.outputs.report_markdown import render_report_markdown

            text, files = render_report_markdown(sizing, output.stem)
            write_report_markdown(text if text.endswith("\n") else text + "\n", files, output)
        if not is_stdout(output):
            console.print(f"wrote {visible(str(output))}", markup=False)


def _usl_fit(files: list[Path] | None) -> tuple[list[Any], dict[str, Any] | None]:
    """The load tests of `capsim report --usl` and their USL fit, before anything is simulated
    (a file that is no load test, or too few steps, is refused first)."""
    if not files:
        return [], None
    from capsim.analysis.usl import usl_summary
    from capsim.measurements import LoadTest, read_measurements

    tests = [m for m in read_measurements(files) if isinstance(m, LoadTest)]
    if not tests:
        raise UsageError(
            "--usl: none of these files is a load test (k6 --out json, Locust "
            "_stats_history.csv or a concurrency,throughput CSV)"
        )
    return tests, usl_summary(tests, [str(f) for f in files])


def _beside_saturate(
    usl: dict[str, Any], tests: list[Any], scenario: Any, source: str, curve: dict[str, Any] | None
) -> dict[str, Any]:
    """The USL fit with, beside its X_max, the saturation rate of the report's own search when
    the test loaded the scenario's mix, else of the class the test drove."""

    curve = curve or {}
    known = (
        {"saturation_rate": curve["saturation_rate"], "bottleneck": curve.get("bottleneck")}
        if curve.get("saturation_rate")
        else None
    )
    return {
        **usl,
        "saturate": usl_saturation(
            scenario, source, tests, usl["peak_throughput"], known, command="report"
        ),
    }
