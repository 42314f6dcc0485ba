"""The capacity commands: saturate, size, sweep and compare (registered on capsim's app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import capsim
from capsim.cli.common import (
    CapacityFormat,
    CapacityFormatOption,
    ExecutorOption,
    LoadOption,
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
    say,
    search_duration,
    show_result,
    statistics_overrides,
    stderr_console,
    with_load,
)

#: Registered on capsim's app by `capsim.cli.app`.
commands = typer.Typer()


def _show(data: dict[str, Any], fmt: CapacityFormat, output: Path | None) -> None:
    from capsim.outputs.capacity import render_capacity

    show_result(data, fmt.value, output, render_capacity)


@commands.command()
def saturate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    set_: SetOption = None,
    seed: SeedOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    replications: SearchReplications = 3,
    duration: SearchDuration = None,
    precision: Annotated[
        float,
        typer.Option(
            "--precision",
            help="Relative precision of the searched rates (0.02: within 2%).",
            show_default="0.02",
        ),
    ] = 0.02,
    knee_factor: Annotated[
        float,
        typer.Option(
            "--knee-factor",
            help="The knee is where p99 reaches this x its low-load value.",
            show_default="2",
        ),
    ] = 2.0,
    output_format: CapacityFormatOption = CapacityFormat.table,
    output: OutputOption = None,
    load: LoadOption = None,
    max_requests: MaxRequests = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Find the bottleneck and the load at which the system saturates.

    Scales every open class's rate together (the mix stays as written), starts from the analytic
    bounds and confirms by simulation: the saturation rate, the knee of p99 and the highest rate
    at which every SLO holds (by the upper end of its 95% interval).
    """
    from capsim.analysis.saturate import find_saturation

    with exit_codes():
        # --load moves the starting point ("offered now"); the search scans the load from there.
        model, factor = with_load(load_model(scenario, set_, seed, percentiles, share_over), load)
        with executor_for(executor, workers, scheduler) as where, Progress("saturate") as progress:
            data = find_saturation(
                model,
                capsim_version=capsim.__version__,
                replications=replications,
                duration=search_duration(duration),
                precision=precision,
                knee_factor=knee_factor,
                progress=progress,
                max_requests=max_requests,
                executor=where,
            )
        if load is not None:
            data["load"] = factor
        _show(data, output_format, output)


def _rate_text(rate: float) -> str:
    text = f"{rate:.6g}"
    return f"{rate:.0f}/s" if "e" in text else f"{text}/s"


def _sized_scenario_edits(
    scenario: Path, set_: list[str] | None, data: dict[str, Any], factor: float
) -> tuple[dict[str, Any], dict[str, str], str]:
    """What `size --write` changes: the sized capacities and, at a load other than 1x, every
    open class's rate (and profile) at that load, each with a comment saying so; and a header."""
    was = {t["path"]: t["was"] for t in data["tiers"].values() if t.get("sized")}
    # Only what changed: an unchanged value keeps its line and its comment.
    values: dict[str, Any] = {
        path: value for path, value in data["overrides"].items() if was.get(path) != value
    }
    scaled = "" if factor == 1 else f" at {factor:.3g}x load"
    comments = {path: f"capsim size{scaled} (was {was.get(path, '?')})" for path in values}
    written = capsim.load_scenario(scenario, set_ or [])
    _write_copies_as_the_scenario_does(values, comments, data["overrides"], was, written)
    _consumers_as_written(written, values, comments)
    if factor != 1:
        for name, spec in written.traffic.items():
            if spec.rate is not None:
                path = f"traffic.{name}.rate"
                values[path] = _rate_text(spec.rate * factor)
                comments[path] = f"{factor:.3g}x the original {_rate_text(spec.rate)} (--load)"
            if isinstance(spec.profile, list):
                for index, point in enumerate(spec.profile):
                    path = f"traffic.{name}.profile.{index}.rate"
                    values[path] = _rate_text(point.rate * factor)
                    comments[path] = f"{factor:.3g}x the original (--load)"
            elif spec.profile is not None:
                # A profile read from a file is written out inline, scaled: the file stays as is.
                path = f"traffic.{name}.profile"
                values[path] = [
                    {"at": at, "rate": _rate_text(rate * factor)}
                    for at, rate in spec.profile.points
                ]
                comments[path] = f"{factor:.3g}x the profile in {spec.profile.file} (--load)"
    header = (
        f"Sized by `capsim size --load {factor:.3g}x`: the open traffic below is {factor:.3g}x\n"
        "the original, and the capacities meet every SLO at it."
        if factor != 1
        else "Sized by `capsim size`: the capacities below meet every SLO at this traffic."
    )
    return values, comments, header


def _consumers_as_written(written: Any, values: dict[str, Any], comments: dict[str, str]) -> None:
    """A queue whose consumers the scenario gives as `instances` (the key every tier takes) is
    written under that key: a `consumers` key beside it would contradict it."""
    for name, tier in written.tiers.items():
        path = f"tiers.{name}.consumers"
        if getattr(tier, "type", None) == "queue" and tier.instances is not None and path in values:
            values[f"tiers.{name}.instances"] = values.pop(path)
            comments[f"tiers.{name}.instances"] = comments.pop(path)


def _write_copies_as_the_scenario_does(
    values: dict[str, Any],
    comments: dict[str, str],
    overrides: dict[str, Any],
    was: dict[str, Any],
    spec: Any,
) -> None:
    """Replace (in place) the sized values of a tier's regional copies, `tiers.T@R.KEY`, which
    no scenario can name, with what the scenario writes (docs/regions.md, "Limits"): instances
    per region in the mapping form `tiers.T.regions: {R: {instances: N}, ...}`; any other
    quantity, or instances of a tier with zones, autoscale or affinity (which take no mapping
    form), once for the tier: the largest of its copies', the comment naming each copy's."""
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for path in overrides:
        _, name, key = path.split(".", 2)
        if "@" in name:
            tier, region = name.split("@", 1)
            groups.setdefault((tier, key), {})[region] = path
    for (tier, key), paths in groups.items():
        if not any(path in values for path in paths.values()):
            continue
        for path in paths.values():
            values.pop(path, None)
            comments.pop(path, None)
        counts = {region: overrides[path] for region, path in paths.items()}
        before = ", ".join(f"{r} {was.get(path, '?')}" for r, path in paths.items())
        tier_spec = spec.tiers[tier]
        per_region = key == "instances" and not (
            tier_spec.zones or tier_spec.autoscale or getattr(tier_spec, "affinity", None)
        )
        if per_region:
            target = f"tiers.{tier}.regions"
            values[target] = {region: {"instances": n} for region, n in counts.items()}
            comments[target] = f"capsim size (was {before})"
            continue
        target = f"tiers.{tier}.{key}"
        values[target] = max(counts.values())
        each = ", ".join(f"{r} {n}" for r, n in counts.items())
        comments[target] = (
            f"capsim size (was {before})"
            if len(set(counts.values())) == 1
            else f"capsim size: the largest of its copies ({each}); was {before}"
        )


@commands.command()
def size(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    set_: SetOption = None,
    seed: SeedOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    load: Annotated[
        str,
        typer.Option(
            "--load", help="Size for this load: a factor (2x, 150%) or a total open rate (3000/s)."
        ),
    ] = "1x",
    headroom: Annotated[
        str | None,
        typer.Option(
            "--headroom",
            help="Keep this share of every sized tier's workers spare (e.g. 30%: occupancy "
            "<= 70%). Default 10% (occupancy <= 90%); 0% allows the edge and warns about any "
            "tier above 90%.",
        ),
    ] = None,
    redundancy: Annotated[
        str,
        typer.Option(
            "--redundancy", help="n+1: SLOs must hold with one instance of each sized tier lost."
        ),
    ] = "n",
    replications: SearchReplications = 3,
    duration: SearchDuration = None,
    write: Annotated[
        Path | None, typer.Option("--write", help="Write the sized scenario to this file.")
    ] = None,
    output_format: CapacityFormatOption = CapacityFormat.table,
    output: OutputOption = None,
    max_requests: MaxRequests = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Find the cheapest capacity per tier that meets every SLO.

    Tiers are sized by instances unless their `sizing` says otherwise (`fixed`, or
    {of: concurrency} for a thread or connection pool). The answer is verified by simulation and
    is minimal: one unit fewer in any sized tier breaks an SLO, shown in the output.
    """
    from capsim.analysis.points import open_rate
    from capsim.analysis.sizing import (
        DEFAULT_HEADROOM,
        parse_headroom,
        parse_load,
        parse_redundancy,
        size_tiers,
    )
    from capsim.outputs import write_output
    from capsim.safeio import read_capped
    from capsim.scenario.edit import apply_set_overrides, set_values
    from capsim.scenario.loader import MAX_FILE_BYTES

    with exit_codes():
        model = load_model(scenario, set_, seed, percentiles, share_over)
        factor = parse_load(load, open_rate(model))
        spare = parse_headroom(headroom) if headroom is not None else DEFAULT_HEADROOM
        lost = parse_redundancy(redundancy)
        with executor_for(executor, workers, scheduler) as where, Progress("size") as progress:
            data = size_tiers(
                model,
                capsim_version=capsim.__version__,
                load=factor,
                headroom=spare,
                redundancy=lost,
                replications=replications,
                duration=search_duration(duration),
                progress=progress,
                max_requests=max_requests,
                executor=where,
                announce=announce,
            )
        if write is not None:
            values, comments, header = _sized_scenario_edits(scenario, set_, data, factor)
            # The scenario as sized, read again capped like every input (capsim.safeio): the
            # file, the --set overrides and --seed, then the sizes (and the load).
            text = read_capped(scenario, MAX_FILE_BYTES, "a scenario").decode("utf-8-sig")
            used = [*(set_ or []), *capsim.simulation_overrides(seed=seed)]
            text = apply_set_overrides(text, used)
            write_output(set_values(text, values, comments, header), write, may_replace_input=True)
            data["written"] = str(write)
        _show(data, output_format, output)
    _fail_unverified(data)


def _fail_unverified(data: dict[str, Any]) -> None:
    """Exit 1, naming the objectives that failed, when `size`'s answer failed its own
    verification at the scenario's run length (the answer is shown, in every format, first):
    an answer that does not meet its SLOs is never a silent success."""
    if data.get("verified", True):
        return
    failures = "; ".join(data["verification"]["failures"]) or "an objective failed"
    say(
        stderr_console(),
        f"error: the sized answer failed its own verification at the scenario's run length: "
        f"{failures}. The answer shown does not meet every objective (see its SLO tables and "
        "notes): widen the sizing limits of the tiers involved or relax that objective.",
    )
    raise typer.Exit(1)


@commands.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            help="PATH=FROM..TO[:STEPS] or PATH=a,b,c (values YAML, as --set). Repeat for a grid.",
            metavar="PATH=FROM..TO[:STEPS]",
        ),
    ],
    set_: SetOption = None,
    seed: SeedOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    replications: Annotated[
        int | None,
        typer.Option("--replications", help="Shortcut for `simulation.replications`.", min=1),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Shortcut for `simulation.duration`.")
    ] = None,
    output_format: CapacityFormatOption = CapacityFormat.table,
    output: OutputOption = None,
    load: LoadOption = None,
    max_requests: MaxRequests = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """A what-if table of the key figures over the values of one or more scenario keys.

    Every point runs with the scenario's seed (common random numbers), so differences between
    points are differences of the values, not of the noise. With --load, every point's open
    traffic is scaled by the same factor (a total rate is turned into a factor on the scenario
    with its --set values).
    """
    from capsim.analysis.sweep import parse_vary, run_sweep

    with exit_codes():
        varies = [parse_vary(text) for text in vary]
        overrides = [
            *(set_ or []),
            *capsim.simulation_overrides(seed, replications, duration),
            *statistics_overrides(percentiles, share_over),
        ]
        _, factor = with_load(capsim.build_model(capsim.load_scenario(scenario, overrides)), load)
        with executor_for(executor, workers, scheduler) as where, Progress("sweep") as progress:
            data = run_sweep(
                scenario,
                varies,
                capsim_version=capsim.__version__,
                overrides=overrides,
                progress=progress,
                max_requests=max_requests,
                executor=where,
                load=factor,
            )
        _say_point_warnings(data)
        _show(data, output_format, output)


def _say_point_warnings(data: dict[str, Any]) -> None:
    """Each distinct warning of the sweep's points on stderr, once, with the points it concerns
    (a profile cut short by --duration, a verdict from too few samples): `run` says them, and
    a sweep kept them in its JSON alone."""
    points = data.get("points", [])
    concerned: dict[str, list[str]] = {}
    for point in points:
        label = ", ".join(f"{path}={value}" for path, value in point["values"].items())
        for warning in point.get("warnings", []):
            concerned.setdefault(warning, []).append(label)
    console = stderr_console()
    for warning, labels in concerned.items():
        where = "every point" if len(labels) == len(points) else "; ".join(labels)
        say(console, f"warning: {warning} ({where})")


@commands.command()
def compare(
    first: Annotated[
        Path, typer.Argument(help="Scenario A, or a saved `capsim run --format json` result.")
    ],
    second: Annotated[Path, typer.Argument(help="Scenario B, or a saved result.")],
    set_: SetOption = None,
    seed: SeedOption = None,
    percentiles: PercentilesOption = None,
    share_over: ShareOverOption = None,
    replications: Annotated[
        int | None,
        typer.Option(
            "--replications", help="Shortcut for `simulation.replications` (both sides).", min=1
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", help="Shortcut for `simulation.duration` (both sides)."),
    ] = None,
    output_format: CapacityFormatOption = CapacityFormat.table,
    output: OutputOption = None,
    load: LoadOption = None,
    max_requests: MaxRequests = 1e8,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Two scenarios (or two saved results) side by side, with their differences.

    Per class latency percentiles, throughput and error rate, per tier utilization; a difference
    is flagged as beyond noise when its 95% interval excludes zero (paired over replications when
    both scenarios share seed and replications).
    """
    from capsim.analysis.compare import compare as compare_sides

    with exit_codes():
        overrides = [
            *(set_ or []),
            *capsim.simulation_overrides(seed, replications, duration),
            *statistics_overrides(percentiles, share_over),
        ]
        with executor_for(executor, workers, scheduler) as where, Progress("compare") as progress:
            data = compare_sides(
                first,
                second,
                capsim_version=capsim.__version__,
                overrides=overrides,
                progress=progress,
                max_requests=max_requests,
                executor=where,
                load=load,
            )
        _show(data, output_format, output)
