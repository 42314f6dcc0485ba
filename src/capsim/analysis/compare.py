"""`capsim compare A B`: two scenarios (or saved results) side by side, with their differences.

Scenarios are simulated with their own seeds; when both have the same seed and the same number
of replications the runs share their random numbers, and a difference is judged by a paired t
interval over replications. A saved result pairs the same way through its per-replication
figures (`per_replication`); one without them (an older capsim's) carries only its ci95
intervals: a difference is then judged by an unpaired (Welch-style) interval built from them.
docs/capacity.md has the rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capsim.analysis.check import renamed_stream_notes
from capsim.analysis.points import Progress, open_rate, scale_open_traffic
from capsim.analysis.report import overload_failures
from capsim.analysis.results import (
    MAX_RESULT_BYTES,
    NotAResult,
    decode_result,
    parse_result_json,
    validate_result,
)
from capsim.analysis.sizing import parse_load
from capsim.analysis.stats import student_t_quantile, t_interval
from capsim.analysis.summary import (
    percentile_table,
    share_key,
    summarise,
    tier_estimates,
    time_statistics,
)
from capsim.engine.executors import Executor
from capsim.engine.result import RunResult
from capsim.engine.runner import DEFAULT_MAX_REQUESTS, run_batch
from capsim.errors import UsageError
from capsim.model.build import build_model
from capsim.model.types import STATISTICS, Model
from capsim.safeio import read_capped
from capsim.scenario import load_scenario
from capsim.textsafe import visible

#: Class figures compared, as dotted keys of a class entry of `capsim run`'s JSON.
CLASS_METRICS: tuple[str, ...] = (
    "latency.mean",
    "latency.p50",
    "latency.p95",
    "latency.p99",
    "throughput",
    "error_rate",
)
TIER_METRICS: tuple[str, ...] = ("utilization", "occupancy")
#: A queue's message age (publish to done), compared beside its utilization and occupancy.
QUEUE_METRICS: tuple[str, ...] = ("age.mean", "age.p99")


def read_result(path: Path) -> dict[str, Any] | None:
    """A saved `capsim run --format json` result, or None when the file is a scenario.

    A file named `.json`, or whose JSON object has `capsim_version`, `classes`, `tiers` or
    `command`, is a result and must be a well-formed one (`capsim.analysis.results`); other
    text is a scenario, read again by the scenario loader.
    """
    source = str(path)
    raw = read_capped(source, MAX_RESULT_BYTES, "a scenario or a capsim result")
    named_json = path.suffix.lower() == ".json"
    if not named_json and not raw.lstrip().startswith(b"{"):
        return None
    text = decode_result(raw, source)
    try:
        data = parse_result_json(text, source)
    except NotAResult:
        if named_json or any(f'"{key}"'.encode() in raw for key in _RESULT_KEYS):
            raise
        return None  # a scenario in YAML's flow style: the scenario loader says what is wrong
    if named_json or (isinstance(data, dict) and _RESULT_KEYS & data.keys()):
        return validate_result(data, source)
    return None


def _asked_metrics(*results: dict[str, Any]) -> list[str]:
    """Class figures compared beyond CLASS_METRICS: the percentiles asked for with
    `--percentiles` and the shares over limits (`share_over.<limit>`) either side reports."""
    found: dict[str, None] = {}
    for data in results:
        for entry in data["classes"].values():
            found.update((f"latency.{k}", None) for k in entry["latency"] if k not in STATISTICS)
            found.update((f"share_over.{k}", None) for k in entry.get("share_over", {}))
    return list(found)


_RESULT_KEYS = {"capsim_version", "classes", "tiers", "command"}


def _get(entry: dict[str, Any], dotted: str) -> float | None:
    node: Any = entry
    # A share's key is a number of seconds with a point in it (`share_over.0.3`).
    parts = ["share_over", dotted[11:]] if dotted.startswith("share_over.") else dotted.split(".")
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _class_estimates(model: Model, runs: list[RunResult]) -> dict[str, dict[str, list[float]]]:
    """Per class and metric, one estimate per replication (for paired intervals)."""
    out: dict[str, dict[str, list[float]]] = {}
    percentiles = percentile_table(model)
    for traffic in model.classes:
        per_metric: dict[str, list[float]] = {m: [] for m in CLASS_METRICS}
        for run in runs:
            measured = run.classes[traffic.index]
            stats = time_statistics(measured.latency, percentiles)
            for stat, value in stats.items():
                per_metric.setdefault(f"latency.{stat}", []).append(
                    math.nan if value is None else float(value)
                )
            for limit in model.share_over:
                per_metric.setdefault(f"share_over.{share_key(limit)}", []).append(
                    measured.latency.share_over(limit)
                )
            per_metric["throughput"].append(measured.completed / run.duration)
            finished = measured.completed + measured.errors
            per_metric["error_rate"].append(measured.errors / finished if finished else 0.0)
        out[traffic.name] = per_metric
    return out


def _tier_estimates(model: Model, runs: list[RunResult]) -> dict[str, dict[str, list[float]]]:
    """Per tier and metric, one estimate per replication: the ones its ci95 and a saved
    result's `per_replication` are taken from (`summary.tier_estimates`), so that a scenario
    pairs with a saved result on the same figures."""
    return {tier.name: tier_estimates(tier, runs) for tier in model.tiers}


def _saved_estimates(data: dict[str, Any], key: str) -> dict[str, dict[str, list[float]]]:
    """A saved result's per-replication figures (`per_replication`, docs/results.md), as
    floats (NaN where a replication measured nothing); {} when it keeps none (an older capsim)
    or a figure is not a list of one number (or null) per replication."""
    kept = data.get("per_replication")
    section = kept.get(key) if isinstance(kept, dict) else None
    if not isinstance(section, dict):
        return {}
    replications = int(data.get("replications") or 1)
    out: dict[str, dict[str, list[float]]] = {}
    for name, figures in section.items():
        if not isinstance(figures, dict):
            continue
        out[name] = {
            metric: [math.nan if v is None else float(v) for v in values]
            for metric, values in figures.items()
            if isinstance(values, list)
            and len(values) == replications
            and all(
                v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                for v in values
            )
        }
    return out


class _Side:
    """One side of the comparison: its result data and, when simulated here, its replications."""

    def __init__(self, label: str, data: dict[str, Any], kind: str) -> None:
        self.label = label
        self.data = data
        self.kind = kind
        self.classes: dict[str, dict[str, list[float]]] = {}
        self.tiers: dict[str, dict[str, list[float]]] = {}


def _load_side(path: Path, overrides: Sequence[str], load: str | None = None) -> _Side | Model:
    """A saved result as a side, or the model of a scenario still to simulate (its open traffic
    scaled by `load`, a factor or a total open rate, when given)."""
    saved = read_result(path)
    if saved is not None:
        if overrides or load is not None:
            option = "--set" if overrides else "--load"
            raise UsageError(
                f"{option} changes scenarios, but {visible(str(path))} is a saved result"
            )
        side = _Side(visible(str(path)), saved, "result")
        side.classes = _saved_estimates(saved, "classes")
        side.tiers = _saved_estimates(saved, "tiers")
        return side
    model = build_model(load_scenario(path, overrides))
    if load is not None:
        model = scale_open_traffic(model, parse_load(load, open_rate(model)))
    return model


def _simulated_side(path: Path, model: Model, runs: list[RunResult], capsim_version: str) -> _Side:
    # A file name may hold any byte but "/" and NUL: the label is text any output can hold.
    side = _Side(
        visible(str(path)), summarise(model, runs, capsim_version=capsim_version).data, "scenario"
    )
    side.classes = _class_estimates(model, runs)
    side.tiers = _tier_estimates(model, runs)
    return side


def _sides(
    paths: tuple[Path, Path],
    overrides: Sequence[str],
    capsim_version: str,
    progress: Progress | None,
    max_requests: float,
    executor: Executor | None,
    load: str | None = None,
) -> tuple[_Side, _Side]:
    """Both sides; the scenarios among them simulated together (one batch on the executor)."""
    loaded = [_load_side(path, overrides, load) for path in paths]
    models = [side for side in loaded if isinstance(side, Model)]
    batches = iter(
        run_batch(
            models,
            executor=executor,
            progress=progress,
            labels=[f"scenario {model.name}" for model in models],
            max_requests=max_requests,
        )
        if models
        else []
    )
    a, b = (
        side
        if isinstance(side, _Side)
        else _simulated_side(path, side, next(batches), capsim_version)
        for path, side in zip(paths, loaded, strict=True)
    )
    return a, b


def _half_width_se(
    entry: dict[str, Any], metric: str, replications: int, value: float
) -> float | None:
    """The standard error behind a saved ci95: its half-width over t. An interval cut at the
    figure's possible values (0, or 1 for a share: docs/results.md) keeps its other end, whose
    distance from the figure is the half-width."""
    interval = (entry.get("ci95") or {}).get(metric)
    if not interval or replications < 2 or None in interval:
        return None
    t = student_t_quantile(0.975, replications - 1)
    low, high = float(interval[0]), float(interval[1])
    if low == 0.0 < high:
        return max(high - value, 0.0) / t
    if high == 1.0 > low and metric in ("error_rate", "utilization", "occupancy"):
        return max(value - low, 0.0) / t
    return (high - low) / 2.0 / t


def _difference(
    a: _Side,
    b: _Side,
    section: str,
    name: str,
    metric: str,
    paired: bool,
) -> dict[str, Any]:
    entry_a = a.data[section].get(name)
    entry_b = b.data[section].get(name)
    value_a = _get(entry_a, metric) if entry_a else None
    value_b = _get(entry_b, metric) if entry_b else None
    out: dict[str, Any] = {"a": value_a, "b": value_b, "diff": None, "rel_diff": None}
    out["low_sample"] = [
        side
        for side, entry in (("a", entry_a), ("b", entry_b))
        if entry and metric in entry.get("low_sample", ())
    ]
    out["ci95_diff"] = None
    out["significant"] = None
    if value_a is None or value_b is None:
        return out
    out["diff"] = value_b - value_a
    out["rel_diff"] = (value_b - value_a) / value_a if value_a else None
    interval: tuple[float, float] | None = None
    method = None
    estimates = a.classes if section == "classes" else a.tiers
    estimates_b = b.classes if section == "classes" else b.tiers
    if paired and metric in estimates.get(name, {}) and metric in estimates_b.get(name, {}):
        pairs = [
            y - x
            for x, y in zip(estimates[name][metric], estimates_b[name][metric], strict=True)
            if math.isfinite(x) and math.isfinite(y)
        ]
        interval = t_interval(pairs) if len(pairs) >= 2 else None
        method = "paired t over replications (common random numbers)"
    else:
        se_a = _half_width_se(entry_a or {}, metric, int(a.data.get("replications", 1)), value_a)
        se_b = _half_width_se(entry_b or {}, metric, int(b.data.get("replications", 1)), value_b)
        if se_a is not None and se_b is not None:
            df = min(int(a.data["replications"]), int(b.data["replications"])) - 1
            half = student_t_quantile(0.975, df) * math.hypot(se_a, se_b)
            interval = (out["diff"] - half, out["diff"] + half)
            method = "unpaired t from the two ci95 intervals"
    if interval is not None:
        out["ci95_diff"] = [interval[0], interval[1]]
        out["significant"] = not (interval[0] <= 0.0 <= interval[1])
        out["method"] = method
    return out


def compare(
    first: str | Path,
    second: str | Path,
    *,
    capsim_version: str,
    overrides: Sequence[str] = (),
    progress: Progress | None = None,
    max_requests: float = DEFAULT_MAX_REQUESTS,
    executor: Executor | None = None,
    load: str | None = None,
) -> dict[str, Any]:
    """Both sides' key figures and B - A per class and tier, with noise judged where possible.

    `load` (`--load`) scales each scenario side's open traffic: a factor, or a total open rate
    that each side reaches with its own mix."""
    a, b = _sides(
        (Path(first), Path(second)),
        overrides,
        capsim_version,
        progress,
        max_requests,
        executor,
        load,
    )
    paired = (
        all(side.kind == "scenario" or side.classes or side.tiers for side in (a, b))
        and a.data.get("seed") == b.data.get("seed")
        and a.data.get("replications") == b.data.get("replications")
        and int(a.data.get("replications", 1)) >= 2
    )
    class_metrics = [*CLASS_METRICS, *_asked_metrics(a.data, b.data)]
    classes = {
        name: {m: _difference(a, b, "classes", name, m, paired) for m in class_metrics}
        for name in dict.fromkeys([*a.data["classes"], *b.data["classes"]])
    }
    tiers = {
        name: {m: _difference(a, b, "tiers", name, m, paired) for m in _tier_metrics(a, b, name)}
        for name in dict.fromkeys([*a.data["tiers"], *b.data["tiers"]])
    }
    notes = []
    if not paired and a.kind == b.kind == "scenario":
        notes.append(
            "the two runs do not share seed and replications (>= 2), so differences are judged "
            "without pairing"
        )
    elif not paired and "result" in (a.kind, b.kind):
        notes.append(
            "a saved result is compared by its ci95 intervals, without pairing: pairing needs "
            "the same seed and replications (>= 2) on both sides, and per-replication figures "
            "in each saved result (an older capsim's results keep none: refresh them)"
        )
    notes.extend(renamed_stream_notes(b.data, a.data, "A"))
    if int(a.data.get("replications", 1)) < 2 or int(b.data.get("replications", 1)) < 2:
        notes.append(
            "a side has a single replication: no confidence intervals, so no difference is "
            "judged against noise (use --replications 5)"
        )
    if progress:
        progress(1.0, "done")
    return {
        "capsim_version": capsim_version,
        "command": "compare",
        "a": _side_summary(a),
        "b": _side_summary(b),
        "paired": paired,
        "classes": classes,
        "tiers": tiers,
        "slos": {"a": a.data.get("slos", []), "b": b.data.get("slos", [])},
        "notes": notes,
    }


def _tier_metrics(a: _Side, b: _Side, name: str) -> tuple[str, ...]:
    """Utilization and occupancy; and message age where either side's tier is a queue."""
    entries = [side.data["tiers"].get(name) or {} for side in (a, b)]
    queue = any(isinstance(entry.get("age"), dict) for entry in entries)
    return (*TIER_METRICS, *QUEUE_METRICS) if queue else TIER_METRICS


def _side_summary(side: _Side) -> dict[str, Any]:
    return {
        "source": side.label,
        "kind": side.kind,
        "scenario": side.data.get("scenario"),
        "seed": side.data.get("seed"),
        "replications": side.data.get("replications"),
        "duration": side.data.get("duration"),
        "passed": _passed(side.data),
        "overloaded": overload_failures(side.data),
    }


def _passed(data: dict[str, Any]) -> bool | None:
    """The side's verdict; an overloaded tier fails it even in a result file that predates the
    rule (docs/results.md, "Overload fails the run")."""
    passed = data.get("passed")
    if overload_failures(data):
        return False
    return passed if isinstance(passed, bool) else None
