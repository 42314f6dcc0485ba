"""`capsim calibrate`, `capsim backtest` and `capsim fit-usl`: from measurements to a model and back."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import capsim
from capsim.cli.common import (
    DurationOption,
    ExecutorOption,
    FormatOption,
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
    emit,
    executor_for,
    exit_codes,
    size_option,
    statistics_overrides,
    stderr_console,
    usl_saturation,
)
from capsim.errors import UsageError
from capsim.textsafe import describe_unsafe, first_unsafe, visible

if TYPE_CHECKING:
    from capsim.analysis.calibration import MetricNames
    from capsim.measurements import Measurement

#: Registered on capsim's app by `capsim.cli.app`.
commands = typer.Typer()


class InputFormat(str, Enum):
    otlp_json = "otlp-json"
    otlp_proto = "otlp-proto"
    prometheus = "prometheus"
    k6_summary = "k6-summary"
    k6_json = "k6-json"
    locust_stats = "locust-stats"
    locust_history = "locust-history"
    csv = "csv"


FilesArgument = Annotated[
    list[Path], typer.Argument(help="Measurement files (format told from the content).")
]
InputFormatOption = Annotated[
    InputFormat | None,
    typer.Option("--input-format", help="Read every FILE as this format instead of detecting it."),
]
ClassByOption = Annotated[
    str | None,
    typer.Option(
        "--class-by",
        help="Span attribute of the root span naming the request class "
        "(default: the root span's name).",
    ),
]
TraceSamplingOption = Annotated[
    str | None,
    typer.Option(
        "--trace-sampling",
        help="Share of traces the tracer kept (0.1 or 10%), when the spans' tracestate does "
        "not say (ot=th): rates are divided by it.",
    ),
]
MaxInputOption = Annotated[
    str,
    typer.Option(
        "--max-input", help="Refuse (exit 3) a measurement file larger than this (a size: 2GiB)."
    ),
]
RateMetricOption = Annotated[
    str | None,
    typer.Option(
        "--rate-metric", help="Regular expression: Prometheus series names that are request rates."
    ),
]
CpuMetricOption = Annotated[
    str | None,
    typer.Option(
        "--cpu-metric",
        help="Regular expression: series names that are busy CPU seconds per second.",
    ),
]
LatencyMetricOption = Annotated[
    str | None,
    typer.Option(
        "--latency-metric",
        help="Regular expression: latency histogram series (with an `le` label).",
    ),
]
TierLabelOption = Annotated[
    str | None,
    typer.Option(
        "--tier-label", help="Prometheus label naming the tier (default: tier, service, job, ...)."
    ),
]
CpuUtilizationOption = Annotated[
    bool,
    typer.Option(
        "--cpu-utilization",
        help="The CPU series are utilizations (busy fraction of the tier's workers), not busy "
        "cores: they are multiplied by the tier's workers (--workers for calibrate, the "
        "scenario's for backtest).",
    ),
]
ClassLabelOption = Annotated[
    str | None,
    typer.Option(
        "--class-label",
        help="Prometheus label naming the class (default: class, route, handler, ...).",
    ),
]


def _read(files: list[Path], input_format: InputFormat | None, max_input: str) -> list[Measurement]:
    from capsim.measurements import read_measurements

    cap = int(size_option(max_input, "--max-input"))
    return read_measurements(files, input_format.value if input_format else None, cap)


def _metric_names(
    rate: str | None,
    cpu: str | None,
    latency: str | None,
    tier_label: str | None,
    class_label: str | None,
    cpu_utilization: bool = False,
    workers: dict[str, int] | None = None,
) -> MetricNames:
    import re
    from dataclasses import replace

    from capsim.analysis.calibration import MetricNames

    names = MetricNames()
    for option, value in (
        ("--rate-metric", rate),
        ("--cpu-metric", cpu),
        ("--latency-metric", latency),
    ):
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise UsageError(f"{option} {value!r}: not a regular expression: {error}") from None
    return replace(
        names,
        rate=rate or names.rate,
        cpu=cpu or names.cpu,
        latency=latency or names.latency,
        tier_labels=(tier_label,) if tier_label else names.tier_labels,
        class_labels=(class_label,) if class_label else names.class_labels,
        cpu_utilization=cpu_utilization,
        workers=tuple(sorted((workers or {}).items())),
    )


def _trace_sampling(text: str | None) -> float | None:
    """--trace-sampling as a share in (0, 1] (a ratio or a percentage)."""
    if text is None:
        return None
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise UsageError(
            f"--trace-sampling {text!r}: give the share of traces kept, above 0 and at most 1 "
            "(0.1 or 10%)"
        )
    return value


def _workers(items: list[str] | None) -> dict[str, int]:
    workers = {}
    for item in items or []:
        tier, _, count = item.partition("=")
        if not tier or not count.isdigit() or int(count) < 1:
            raise UsageError(
                f"--workers {item!r}: give TIER=N with N a whole number >= 1, e.g. --workers db=8"
            )
        workers[tier.strip()] = int(count)
    return workers


def _color(output: Path | None) -> bool:
    return output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@commands.command()
def calibrate(
    files: FilesArgument,
    scenario_output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the calibrated scenario (YAML) to this file."),
    ] = None,
    output_format: FormatOption = OutputFormat.table,
    input_format: InputFormatOption = None,
    class_by: ClassByOption = None,
    trace_sampling: TraceSamplingOption = None,
    workers: Annotated[
        list[str] | None,
        typer.Option(
            "--workers",
            help="TIER=N: workers of a tier (traces show only a lower bound). Repeatable.",
            metavar="TIER=N",
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The scenario's name.")] = "calibrated",
    rate_metric: RateMetricOption = None,
    cpu_metric: CpuMetricOption = None,
    latency_metric: LatencyMetricOption = None,
    tier_label: TierLabelOption = None,
    class_label: ClassLabelOption = None,
    cpu_utilization: CpuUtilizationOption = False,
    max_input: MaxInputOption = "512MiB",
) -> None:
    """Write a scenario from measurements: OTLP JSON traces, Prometheus query_range results
    (k6 and Locust results are summarised as load steps).

    Every figure in the YAML has a comment: where it came from, its sample size and its 95%
    interval. The summary (table, json or markdown) goes to stdout.
    """
    from capsim.analysis.calibration import calibrate as calibrate_measurements
    from capsim.outputs import write_output
    from capsim.outputs.calibration import calibration_document, render_document
    from capsim.scenario import validate_text
    from capsim.scenario.writer import render_scenario_yaml

    with exit_codes():
        _check_scenario_name(name)
        measurements = _read(files, input_format, max_input)
        result = calibrate_measurements(
            measurements,
            class_by=class_by,
            sampling=_trace_sampling(trace_sampling),
            workers=_workers(workers),
            name=name,
            metric_names=_metric_names(
                rate_metric,
                cpu_metric,
                latency_metric,
                tier_label,
                class_label,
                cpu_utilization,
                _workers(workers),
            ),
        )
        _check_workers_tiers(_workers(workers), result.scenario)
        if scenario_output is not None:
            header = [
                f"Calibrated by capsim {capsim.__version__} from {', '.join(visible(str(f)) for f in files)}.",
                "Each figure's comment says where it came from, its sample size and its 95% interval;",
                "see docs/calibration.md. Check the worker counts: traces only bound them from below.",
                "",
            ]
            text = render_scenario_yaml(result.scenario, result.notes, header)
            problems = validate_text(text, scenario_output)
            for problem in problems:
                stderr_console().print(f"error: {problem.format()}", markup=False, soft_wrap=True)
            if problems:
                raise UsageError(
                    f"{visible(str(scenario_output))}: the calibrated scenario does not validate, "
                    "so it was not written (a capsim bug; please report it)"
                )
            write_output(text, scenario_output)
        result.summary["warnings"] = list(result.warnings)
        for warning in result.warnings:
            stderr_console().print(f"warning: {warning}", markup=False, soft_wrap=True)
        document = calibration_document(
            result.summary, str(scenario_output) if scenario_output else None
        )
        emit(render_document(document, output_format.value, color=_color(None)), None)


def _check_workers_tiers(workers: dict[str, int], scenario: dict[str, Any]) -> None:
    """Each --workers names a tier the measurements show: a misspelt one (accounts_read for
    accounts-read) would otherwise be ignored, its tier left at the traces' lower bound."""
    tiers = sorted(scenario.get("tiers", {}))
    unknown = [tier for tier in workers if tier not in tiers]
    if unknown:
        raise UsageError(
            f"--workers {visible(unknown[0])}={workers[unknown[0]]}: the measurements show no "
            f"tier {visible(unknown[0])!r}; their tiers are {', '.join(tiers)}"
        )


def _check_scenario_name(name: str) -> None:
    """--name becomes the scenario's `name`: refused before anything is read if validation would
    refuse it in the written scenario."""
    unsafe = first_unsafe(name)
    if unsafe is not None:
        raise UsageError(
            f"--name '{visible(name)}' holds {describe_unsafe(name, unsafe)}; give a name "
            "without control characters"
        )
    if not name.strip():
        raise UsageError("--name must not be empty")


@commands.command()
def backtest(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (the model to test).")],
    files: FilesArgument,
    set_: SetOption = None,
    seed: SeedOption = None,
    replications: ReplicationsOption = None,
    duration: DurationOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    output_format: FormatOption = OutputFormat.table,
    output: OutputOption = None,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    input_format: InputFormatOption = None,
    class_by: ClassByOption = None,
    trace_sampling: TraceSamplingOption = None,
    latency_tolerance: Annotated[
        str,
        typer.Option(
            "--latency-tolerance", help="Largest relative error of a latency percentile (20%)."
        ),
    ] = "20%",
    think_time: Annotated[
        str,
        typer.Option(
            "--think-time",
            help="Think time of a stepped load test's users between requests (default 0s: "
            "each user sends its next request as soon as the last answers).",
        ),
    ] = "0s",
    alone: Annotated[
        bool,
        typer.Option(
            "--alone",
            help="Simulate each step of a stepped load test with the class it drives alone "
            "(the scenario's other classes left out, as fit-usl --scenario saturates it): for a "
            "test run against a system that served nothing else. Default: they keep their rates.",
        ),
    ] = False,
    utilization_tolerance: Annotated[
        str,
        typer.Option(
            "--utilization-tolerance", help="Largest relative error of a utilization (10%)."
        ),
    ] = "10%",
    rate_metric: RateMetricOption = None,
    cpu_metric: CpuMetricOption = None,
    latency_metric: LatencyMetricOption = None,
    tier_label: TierLabelOption = None,
    class_label: ClassLabelOption = None,
    cpu_utilization: CpuUtilizationOption = False,
    max_input: MaxInputOption = "512MiB",
) -> None:
    """Simulate at the measured load and compare predicted with measured p50/p95/p99 per class
    and utilization per tier. Exit 0 when every figure is within tolerance, 1 when the model
    is off."""
    from capsim.analysis.backtest import is_stepped, measured_load
    from capsim.measurements import LoadTest
    from capsim.outputs.calibration import backtest_document, render_document

    with exit_codes(), executor_for(executor, workers, scheduler) as where:
        tolerances = _tolerances(latency_tolerance, utilization_tolerance)
        measurements = _read(files, input_format, max_input)
        base_overrides = [
            *(set_ or []),
            *capsim.simulation_overrides(seed, replications, duration),
            *statistics_overrides(percentiles, share_over),
        ]
        base = capsim.load_scenario(scenario, base_overrides)
        scenario_workers = {tier.name: tier.workers for tier in capsim.build_model(base).tiers}
        names = _metric_names(
            rate_metric,
            cpu_metric,
            latency_metric,
            tier_label,
            class_label,
            cpu_utilization,
            scenario_workers,
        )
        load = measured_load(measurements, class_by, names, _trace_sampling(trace_sampling))
        plan = _BacktestPlan(scenario, base, base_overrides, tolerances, where)
        rows: list[Any] = []
        notes: list[str] = []
        warnings: list[str] = []
        stepped = [m for m in measurements if isinstance(m, LoadTest) and is_stepped(m)]
        if load.rates or not stepped:
            rows, notes, warnings = _backtest_measured_load(plan, load)
        think = _think_time(think_time)
        for test in stepped:
            test_rows, note = _backtest_load_test(plan, test, think, alone)
            rows += test_rows
            notes.append(note)
        if not rows:
            raise UsageError(
                "nothing to compare: the measurements hold no latency percentiles of a scenario class "
                "and no utilization of a scenario tier"
            )
        notes += _bucket_notes(rows)
        data = _backtest_data(plan, files, rows, load.warnings + notes + warnings)
        emit(
            render_document(backtest_document(data), output_format.value, color=_color(output)),
            output,
        )
        if not data["passed"]:
            raise typer.Exit(1)


def _tolerances(latency: str, utilization: str) -> tuple[float, float]:
    """--latency-tolerance and --utilization-tolerance as ratios."""
    from capsim.units import UnitError, parse_ratio

    tolerances = []
    for option, text in (
        ("--latency-tolerance", latency),
        ("--utilization-tolerance", utilization),
    ):
        try:
            tolerances.append(parse_ratio(text))
        except UnitError as error:
            raise UsageError(
                f"{option} {text!r}: {error}; give a ratio such as 20% or 0.2"
            ) from None
    return tolerances[0], tolerances[1]


@dataclass(frozen=True)
class _BacktestPlan:
    """What every backtest simulation starts from: the scenario with --set, --seed,
    --replications, --duration, --percentiles and --share-over applied, the tolerances
    (latency, utilization) and the executor the simulations run on."""

    scenario: Path
    base: Any  # the loaded Scenario
    base_overrides: list[str]
    tolerances: tuple[float, float]
    executor: Any = "serial"
    #: The tiers the simulations found overloaded (filled by `simulate`): a model that has no
    #: steady state at a load the measured system served is off, whatever its figures.
    overloaded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return list(self.base.traffic)

    @property
    def open_classes(self) -> list[str]:
        return [
            name
            for name, spec in self.base.traffic.items()
            if getattr(spec, "rate", None) is not None
        ]

    def simulate(self, overrides: list[str], alone: str | None = None) -> tuple[Any, Any]:
        """The model with these overrides added (and only the class `alone` when given), and
        its simulated report."""
        from capsim.analysis.usl import only_class

        scenario = capsim.load_scenario(self.scenario, [*self.base_overrides, *overrides])
        model = capsim.build_model(only_class(scenario, alone) if alone else scenario)
        with Progress("backtest") as progress:
            report = capsim.simulate(model, executor=self.executor, progress=progress)
        known = {entry["tier"] for entry in self.overloaded}
        self.overloaded.extend(
            entry for entry in report.data.get("overloaded") or [] if entry["tier"] not in known
        )
        return model, report


def _backtest_measured_load(
    plan: _BacktestPlan, load: Any
) -> tuple[list[Any], list[str], list[str]]:
    """Simulate at the measured rates (and profiles) of the classes that match the scenario's;
    the comparisons, notes, and the run's warnings."""
    from capsim.analysis.backtest import class_mapping, compare, load_overrides

    mapping = class_mapping(list(load.rates), plan.classes, plan.open_classes)
    if not mapping:
        unnamed = (
            " (* is an unnamed total, such as a k6 summary export's, which names no request: "
            "backtest it against a scenario with one open class, or export k6 --out json, "
            "whose requests carry their URL)"
            if "*" in load.rates
            else ""
        )
        raise UsageError(
            f"no measured class matches a class of {plan.scenario} (measured: "
            f"{', '.join(sorted(load.rates)) or 'none'}; scenario: {', '.join(plan.classes)})"
            f"{unnamed}; name them alike (--class-by for traces)"
        )
    notes = [
        f"measured class {m!r} has no class in the scenario; not compared"
        for m in sorted(load.rates)
        if m not in mapping
    ]
    base = plan.base
    warmup = base.simulation.warmup_or_default if base.simulation else 0.0
    model, report = plan.simulate(load_overrides(load, mapping, warmup))
    workers = {tier.name: tier.workers for tier in model.tiers}
    rows = compare(load, mapping, report.data, workers, *plan.tolerances)
    notes += [
        f"{cls}: simulated at {load.rates[m]:.4g}/s measured ({load.sources.get(m, '?')})"
        + (", with its measured profile" if m in load.profiles else "")
        + (
            ", a constant rate: the measurements show no profile, so the scenario's was left out"
            if m not in load.profiles and getattr(base.traffic[cls], "profile", None)
            else ""
        )
        for m, cls in mapping.items()
    ]
    notes += [
        f"measured tier {tier!r} has no tier in the scenario; its utilization not compared"
        for tier in sorted(load.busy)
        if tier not in workers
    ]
    return rows, notes, list(report.warnings)


def _backtest_load_test(
    plan: _BacktestPlan, test: Any, think: float, alone: bool
) -> tuple[list[Any], str]:
    """Simulate each step of a stepped load test as a closed loop of its users (beside the
    other classes at their rates, or `alone`); the comparisons and a note saying so."""
    from capsim.analysis.backtest import compare_step, idle_users_note, step_class, step_override

    cls = step_class(test, plan.classes, plan.open_classes)
    if cls is None:
        raise UsageError(
            f"{test.source}: cannot tell which class of {plan.scenario} this load test drives; "
            "name its requests like the class, or backtest a scenario with one open class"
        )
    entry = plan.base.traffic[cls].first_entry
    rows: list[Any] = []
    for step in (s for s in test.steps if s.users > 0):
        override = step_override(cls, entry, step.users, think)
        _, report = plan.simulate([override], cls if alone else None)
        rows += compare_step(step, cls, report.data["classes"][cls], *plan.tolerances)
    note = (
        f"{test.source} ({test.tool}): each of its {len(test.steps)} steps simulated with "
        f"{cls} as a closed loop of the step's users, think time {think:g}s"
        + _beside_note(plan, cls, alone)
    )
    idle = idle_users_note([s for s in test.steps if s.users > 0], think)
    return rows, f"{note}; {idle}" if idle else note


def _beside_note(plan: _BacktestPlan, cls: str, alone: bool) -> str:
    """What ran beside a load test's class: the scenario's other classes at their rates, which
    the load test's file cannot show, or nothing (--alone)."""
    others = [name for name in plan.classes if name != cls]
    if not others:
        return ""
    if alone:
        return f", alone (--alone: {', '.join(others)} left out)"
    return (
        f", beside {', '.join(others)} at the scenario's rates (give --alone if the test "
        "ran without them)"
    )


def _bucket_notes(rows: list[Any]) -> list[str]:
    """A note for each percentile measured from a histogram that passes only because the
    histogram's bucket cannot place it closer."""
    return [
        f"{r.what} {r.name} {r.figure}: measured from a histogram, it lies in the bucket "
        f"{r.bucket[0] * 1000:.4g}ms to {r.bucket[1] * 1000:.4g}ms (interpolated "
        f"{r.measured * 1000:.4g}ms); the prediction is within tolerance of that bucket"
        for r in rows
        if r.within_bucket and abs(r.error) > r.tolerance
    ]


def _backtest_data(
    plan: _BacktestPlan, files: list[Path], rows: list[Any], notes: list[str]
) -> dict[str, Any]:
    """The backtest's result document (docs/calibration.md)."""
    from capsim.analysis.backtest import verdict

    latency, utilization = plan.tolerances
    return {
        "scenario": str(plan.scenario),
        "sources": [str(f) for f in files],
        "tolerances": {"latency": latency, "utilization": utilization},
        "comparisons": [
            {
                "what": r.what,
                "name": r.name,
                "figure": r.figure,
                "measured": r.measured,
                "predicted": r.predicted,
                "error": r.error,
                "tolerance": r.tolerance,
                "passed": r.passed,
                "samples": r.samples,
                "measured_low_sample": r.measured_low_sample,
                "predicted_low_sample": r.predicted_low_sample,
                "low_sample": r.low_sample,
                "bucket": list(r.bucket) if r.bucket else None,
                "within_bucket": r.within_bucket,
            }
            for r in rows
        ],
        "passed": verdict(rows) and not plan.overloaded,
        "overloaded": plan.overloaded,
        "notes": notes,
    }


@commands.command("fit-usl")
def fit_usl(
    files: FilesArgument,
    output_format: FormatOption = OutputFormat.table,
    output: OutputOption = None,
    input_format: InputFormatOption = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also write the plot as an SVG file.")
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            help="Also run `capsim saturate` on this (calibrated) scenario and compare its "
            "saturation rate with X_max.",
        ),
    ] = None,
    max_input: MaxInputOption = "512MiB",
) -> None:
    """Fit the Universal Scalability Law X(N) = λN / (1 + σ(N-1) + κN(N-1)) to throughput
    against concurrency of a stepped load test (k6 --out json, Locust _stats_history.csv, or a
    CSV of concurrency,throughput), with 95% intervals, the peak N* and X_max."""
    from capsim.analysis.usl import usl_summary
    from capsim.measurements import LoadTest
    from capsim.outputs import write_output
    from capsim.outputs.calibration import render_document, usl_chart, usl_document

    with exit_codes():
        measurements = _read(files, input_format, max_input)
        tests = [m for m in measurements if isinstance(m, LoadTest)]
        data = usl_summary(tests, [str(f) for f in files])
        if scenario is not None:
            data["saturate"] = usl_saturation(
                capsim.load_scenario(scenario), str(scenario), tests, data["peak_throughput"]
            )
        document = usl_document(data, with_chart=output_format.value == "markdown")
        if chart is not None:
            write_output(usl_chart(data) + "\n", chart)
        emit(render_document(document, output_format.value, color=_color(output)), output)


def _think_time(text: str) -> float:
    from capsim.units import UnitError, parse_duration

    try:
        value = parse_duration(text)
    except UnitError as error:
        raise UsageError(
            f"--think-time {text!r}: {error}; give a duration such as 0s or 1.5s"
        ) from None
    if value < 0:
        raise UsageError(f"--think-time {text!r}: a think time cannot be negative")
    return value
