"""`capsim sweep`: a what-if table of the key figures over values of one or more scenario keys.

Each point is the scenario with `--set PATH=VALUE` overrides for the varied keys, run with the
scenario's seed, so every point draws the same random numbers (common random numbers): the
differences between points come from the values, not from the noise.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsim.analysis.busiest_group import GROUP_STATISTICS, busiest_group
from capsim.analysis.points import Progress, headline, scale_open_traffic
from capsim.analysis.summary import summarise
from capsim.engine.executors import Executor
from capsim.engine.result import RunResult
from capsim.engine.runner import DEFAULT_MAX_REQUESTS, run_batch
from capsim.errors import Interrupted, UsageError, clip
from capsim.model.build import build_model
from capsim.model.types import Model
from capsim.scenario import load_scenario
from capsim.scenario.overrides import apply_override
from capsim.units import UnitError, parse_duration, parse_rate, parse_ratio

#: Points of a FROM..TO range when :STEPS is not given.
DEFAULT_STEPS = 5
#: Most points one sweep may run (over the whole grid).
MAX_POINTS = 400

_RANGE_RE = re.compile(
    r"^\s*(?P<start>[^,\[\]{}]+?)\s*\.\.\s*(?P<stop>[^,\[\]{}:]+?)\s*(?::\s*(?P<steps>\S+))?\s*$"
)
_RATE_TEXT = re.compile(r"^\s*[+-]?[\d.eE+-]+\s*[kKMG]?\s*/\s*(?P<unit>[a-z]+)\s*$")
_DURATION_TEXT = re.compile(r"^\s*[+-]?[\d.eE+-]+\s*(?P<unit>ns|us|µs|ms|s|sec|m|min|h|d)\s*$")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0,
                   "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}  # fmt: skip


@dataclass(frozen=True)
class Vary:
    """One varied key: its dotted path and the values (as YAML text) it takes."""

    path: str
    values: tuple[str, ...]


def _yaml_value(text: str) -> Any:
    """A value parsed as YAML, as --set parses it (through the scenario layer)."""
    data, _ = apply_override({}, f"v={text}")
    return data["v"]


def _number(value: float) -> str:
    return f"{value:.6g}"


def _distinct_steps(start_text: str, stop_text: str, steps: int) -> int:
    """`steps`, or fewer between two whole numbers: more steps than the numbers between them
    give each number once (the rounding merges the rest), so no more are made."""
    start, stop = _yaml_value(start_text), _yaml_value(stop_text)
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop))
    if whole and steps > abs(stop - start) + 1:
        return int(abs(stop - start) + 1)
    return steps


def _interpolate(start_text: str, stop_text: str, steps: int) -> list[str]:
    """`steps` values from start to stop, evenly spaced, written in the unit of `start`."""
    start, stop = _yaml_value(start_text), _yaml_value(stop_text)
    fractions = [i / (steps - 1) for i in range(steps)] if steps > 1 else [0.0]
    numbers = isinstance(start, (int, float)) and not isinstance(start, bool)
    if numbers and isinstance(stop, (int, float)) and not isinstance(stop, bool):
        values = [start + (stop - start) * f for f in fractions]
        if isinstance(start, int) and isinstance(stop, int):
            whole = list(dict.fromkeys(round(v) for v in values))
            return [str(v) for v in whole]
        return [_number(v) for v in values]
    if not isinstance(start, str) or not isinstance(stop, str):
        raise UsageError(
            f"cannot interpolate between {start_text!r} and {stop_text!r}; list the values "
            "instead, e.g. PATH=a,b,c"
        )
    try:
        if start.strip().endswith("%"):
            low, high = parse_ratio(start), parse_ratio(stop)
            return [_number(100 * (low + (high - low) * f)) + "%" for f in fractions]
        rate = _RATE_TEXT.match(start)
        if rate:
            low, high = parse_rate(start), parse_rate(stop)
            scale = _RATE_UNITS[rate.group("unit")]
            unit = rate.group("unit")
            return [f"{_number((low + (high - low) * f) * scale)}/{unit}" for f in fractions]
        duration = _DURATION_TEXT.match(start)
        if duration:
            low, high = parse_duration(start), parse_duration(stop)
            unit = duration.group("unit")
            scale = _DURATION_UNITS[unit]
            return [f"{_number((low + (high - low) * f) / scale)}{unit}" for f in fractions]
    except (UnitError, KeyError) as error:
        raise UsageError(
            f"cannot interpolate between {start_text!r} and {stop_text!r}: {error}"
        ) from None
    raise UsageError(
        f"cannot interpolate between {start_text!r} and {stop_text!r}: they are neither numbers, "
        "rates (100/s), durations (20ms) nor percentages (50%); list the values instead, e.g. "
        "PATH=a,b,c"
    )


def parse_vary(text: str) -> Vary:
    """`PATH=FROM..TO[:STEPS]` or `PATH=a,b,c` (values YAML, as in --set)."""
    if "=" not in text:
        raise UsageError(f"--vary {text!r}: write PATH=FROM..TO[:STEPS] or PATH=a,b,c")
    path, value_text = (part.strip() for part in text.split("=", 1))
    if not path or any(not part for part in path.split(".")):
        raise UsageError(f"--vary {text!r}: PATH is a dotted key path such as tiers.app.instances")
    if not value_text:
        raise UsageError(f"--vary {text!r}: give values after '='")
    match = _RANGE_RE.match(value_text)
    if match:
        steps_text = match.group("steps")
        steps = DEFAULT_STEPS
        if steps_text is not None:
            if not steps_text.isdigit() or int(steps_text) < 1:
                raise UsageError(f"--vary {text!r}: STEPS after ':' is a whole number of 1 or more")
            steps = int(steps_text)
        steps = _distinct_steps(match.group("start"), match.group("stop"), steps)
        if steps > MAX_POINTS:
            raise UsageError(
                f"--vary {clip(text, 200)}: {steps:,} steps, more than the {MAX_POINTS} points a "
                "sweep may have; use fewer STEPS"
            )
        values = _interpolate(match.group("start"), match.group("stop"), steps)
    else:
        try:
            items = _yaml_value(f"[{value_text}]")
        except ValueError as error:
            raise UsageError(f"--vary {text!r}: {error}") from None
        if len(items) > MAX_POINTS:
            raise UsageError(
                f"--vary {clip(text, 200)}: {len(items):,} values, more than the {MAX_POINTS} "
                "points a sweep may have"
            )
        values = [json.dumps(item, ensure_ascii=False) for item in items]
    if not values:
        raise UsageError(f"--vary {text!r}: no values")
    return Vary(path, tuple(values))


def _display(value_text: str) -> Any:
    value = _yaml_value(value_text)
    return value if isinstance(value, (int, float, str, bool)) else json.dumps(value)


def run_sweep(
    scenario: str | Path,
    varies: Sequence[Vary],
    *,
    capsim_version: str,
    overrides: Sequence[str] = (),
    progress: Progress | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
    load: float = 1.0,
) -> dict[str, Any]:
    """Run the scenario at every combination of the varied values (a grid when several), with
    every open class's rate multiplied by `load`."""
    if not varies:
        raise UsageError("capsim sweep needs at least one --vary PATH=FROM..TO[:STEPS]")
    size = math.prod(len(v.values) for v in varies)
    if size > MAX_POINTS:
        raise UsageError(f"the sweep has {size:,} points, more than {MAX_POINTS}; use fewer STEPS")
    grid = list(itertools.product(*(v.values for v in varies)))
    models = []
    for combination in grid:
        assigned = [f"{v.path}={value}" for v, value in zip(varies, combination, strict=True)]
        # An invalid point raises ScenarioError naming the --set that made it, before any runs.
        models.append(
            scale_open_traffic(build_model(load_scenario(scenario, [*overrides, *assigned])), load)
        )
    name = models[0].name if models else str(scenario)
    labels = [f"point {i + 1}/{len(grid)}" for i in range(len(grid))]
    try:
        # The points are independent: one batch, so every worker of the executor has work.
        batches = run_batch(
            models, executor=executor, progress=progress, labels=labels, max_requests=max_requests
        )
    except Interrupted as stop:
        stop.completed_points = [
            _describe(_point(varies, grid[i], models[i], runs, capsim_version))
            for i, runs in sorted(stop.completed_models.items())
        ]
        raise
    points = [
        _point(varies, combination, model, runs, capsim_version)
        for combination, model, runs in zip(grid, models, batches, strict=True)
    ]
    last, last_runs = models[-1], batches[-1]
    seed, replications, duration = last.seed, len(last_runs), last_runs[0].duration
    if progress:
        progress(1.0, "done")
    return {
        "capsim_version": capsim_version,
        "scenario": name,
        "command": "sweep",
        "seed": seed,
        "replications": replications,
        "duration": duration,
        "load": load,
        "vary": [{"path": v.path, "values": [_display(x) for x in v.values]} for v in varies],
        "points": points,
        "common_random_numbers": True,
    }


def _point(
    varies: Sequence[Vary],
    combination: tuple[str, ...],
    model: Model,
    runs: list[RunResult],
    capsim_version: str,
) -> dict[str, Any]:
    """One row of the sweep: the values it set and the key figures of its runs."""
    report = summarise(model, runs, capsim_version=capsim_version)
    data = report.data
    figures = headline(data)
    return {
        "values": {v.path: _display(value) for v, value in zip(varies, combination, strict=True)},
        "p50": figures["p50"],
        "p99": figures["p99"],
        "error_rate": figures["error_rate"],
        "passed": data["passed"],
        "stable": not report.unstable_tiers,
        "overloaded": data["overloaded"],
        "classes": {
            name: {
                "offered_rate": c["offered_rate"],
                "throughput": c["throughput"],
                "error_rate": c["error_rate"],
                "latency": c["latency"],
                **({"share_over": c["share_over"]} if "share_over" in c else {}),
                **({"ci95": c["ci95"]} if "ci95" in c else {}),
            }
            for name, c in data["classes"].items()
        },
        "tiers": {
            name: {
                **_held_shares(t),
                "stable": t["stable"],
                "wait": {"mean": t["wait"]["mean"], "p99": t["wait"]["p99"]},
            }
            for name, t in data["tiers"].items()
        },
        "slos": data["slos"],
        "warnings": report.warnings,
    }


def _held_shares(tier: dict[str, Any]) -> dict[str, Any]:
    """A tier's utilization and occupancy as its objectives judge them: a database with
    replicas by the higher of its pooled share and its busiest group's (busiest_group.py), with
    `group` naming that group where its share is the figure and `pooled` keeping the tier's."""
    shares: dict[str, Any] = {
        "utilization": tier["utilization"],
        "occupancy": tier.get("occupancy"),
    }
    if not tier.get("groups"):
        return shares
    pooled = dict(shares)
    for statistic in GROUP_STATISTICS:
        group = busiest_group(tier, statistic)
        if group is not None and group[1] > (pooled[statistic] or 0.0):
            shares[statistic] = group[1]
            shares.setdefault("group", group[0])
    return {**shares, "pooled": pooled}


def _describe(point: dict[str, Any]) -> str:
    """One measured point in words, for what an interrupted sweep completed."""
    values = ", ".join(f"{path}={value}" for path, value in point["values"].items())
    p99 = "—" if point["p99"] is None else f"{point['p99'] * 1e3:.4g}ms"
    return f"{values}: p99 {p99}, errors {point['error_rate']:.3%}, SLOs {'met' if point['passed'] else 'missed'}"
