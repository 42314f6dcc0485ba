"""capsim: a capacity-planning simulator for web architectures.

The library is usable without the command line::

    import capsim
    report = capsim.run_file("scenarios/web-shop.yaml", overrides=["tiers.app.instances=12"])
    print(report.data["classes"]["browse"]["latency"]["p99"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from capsim.analysis.report import Report
    from capsim.engine.executors import Executor
    from capsim.model.types import Model
    from capsim.scenario.schema import Scenario

__all__ = [
    "CapsimError",
    "Interrupted",
    "Model",
    "Problem",
    "Report",
    "ResourceLimitError",
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "UnstableModelError",
    "UsageError",
    "__version__",
    "build_model",
    "check_result",
    "compare",
    "find_saturation",
    "load_result",
    "load_scenario",
    "render",
    "run_file",
    "run_sweep",
    "simulate",
    "simulation_overrides",
    "size_tiers",
    "solve",
    "validate_file",
    "write_output",
]


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError listing every problem."""
    from capsim.scenario import load_scenario as _load

    return _load(path, overrides)


def build_model(scenario: Scenario) -> Model:
    """Resolve a validated scenario into the frozen model the engine runs."""
    from capsim.model.build import build_model as _build

    return _build(scenario)


def simulate(
    model: Model,
    *,
    replications: int | None = None,
    engine: str = "auto",
    executor: str | Executor = "serial",
    workers: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    max_requests: float | None = None,
    max_memory: float | None = None,
) -> Report:
    """Run every replication of `model` and summarise them into a Report (docs/results.md).

    `executor` is "serial", "process" or "dask" (opened for this call, with `workers`), or an
    open `capsim.engine.executors.Executor` (see `open_executor`) shared by several calls.

    Raises Interrupted on Ctrl-C, carrying the partial Report of the replications completed
    (`.report`, None when none was). Raises ResourceLimitError, before running, when the run would simulate more than
    `max_requests` requests (default `capsim.engine.runner.DEFAULT_MAX_REQUESTS`) or need more
    than `max_memory` bytes per replication (default `capsim.engine.limits.DEFAULT_MAX_MEMORY`).
    """
    from capsim.analysis.summary import summarise
    from capsim.engine.limits import DEFAULT_MAX_MEMORY
    from capsim.engine.runner import DEFAULT_MAX_REQUESTS, run_replications
    from capsim.errors import Interrupted

    try:
        runs = run_replications(
            model,
            replications=replications,
            engine=engine,  # type: ignore[arg-type]
            executor=executor,
            workers=workers,
            progress=progress,
            max_requests=DEFAULT_MAX_REQUESTS if max_requests is None else max_requests,
            max_memory=DEFAULT_MAX_MEMORY if max_memory is None else max_memory,
        )
    except Interrupted as stop:
        if stop.runs:
            stop.report = summarise(
                model, stop.runs, capsim_version=__version__, requested=stop.requested
            )
        raise
    return summarise(model, runs, capsim_version=__version__)


def simulation_overrides(
    seed: int | None = None, replications: int | None = None, duration: str | float | None = None
) -> list[str]:
    """The `--set` overrides equivalent to the --seed/--replications/--duration shortcuts (each
    remembers its option, which a problem with its value names)."""
    from capsim.scenario.overrides import ShortcutOverride

    extra: list[str] = []
    if seed is not None:
        extra.append(ShortcutOverride(f"seed={seed}", f"--seed {seed}"))
    if replications is not None:
        extra.append(
            ShortcutOverride(
                f"simulation.replications={replications}", f"--replications {replications}"
            )
        )
    if duration is not None:
        extra.append(ShortcutOverride(f"simulation.duration={duration}", f"--duration {duration}"))
    return extra


def run_file(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    seed: int | None = None,
    replications: int | None = None,
    duration: str | float | None = None,
    **options: Any,
) -> Report:
    """Load, build and simulate a scenario file in one call (what `capsim run` does)."""
    all_overrides = [*overrides, *simulation_overrides(seed, replications, duration)]
    model = build_model(load_scenario(path, all_overrides))
    return simulate(model, **options)


# ---------------------------------------------------------------------------------------------
# The rest of the public surface, imported from its layer on first use (`import capsim` stays
# cheap: no numpy, SimPy or pydantic until a name is needed).
# ---------------------------------------------------------------------------------------------

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "CapsimError": "capsim.errors",
    "Interrupted": "capsim.errors",
    "Problem": "capsim.errors",
    "ResourceLimitError": "capsim.errors",
    "ScenarioError": "capsim.errors",
    "SimulationError": "capsim.errors",
    "UsageError": "capsim.errors",
    "Scenario": "capsim.scenario.schema",
    "validate_file": "capsim.scenario",
    "Model": "capsim.model.types",
    "Report": "capsim.analysis.report",
    "UnstableModelError": "capsim.analysis.solve",
    "solve": "capsim.analysis.solve",
    "find_saturation": "capsim.analysis.saturate",
    "size_tiers": "capsim.analysis.sizing",
    "run_sweep": "capsim.analysis.sweep",
    "compare": "capsim.analysis.compare",
    "check_result": "capsim.analysis.check",
    "load_result": "capsim.analysis.results",
    "render": "capsim.outputs",
    "write_output": "capsim.outputs",
}

if TYPE_CHECKING:
    from capsim.analysis.check import check_result
    from capsim.analysis.compare import compare
    from capsim.analysis.results import load_result
    from capsim.analysis.saturate import find_saturation
    from capsim.analysis.sizing import size_tiers
    from capsim.analysis.solve import UnstableModelError, solve
    from capsim.analysis.sweep import run_sweep
    from capsim.errors import (
        CapsimError,
        Interrupted,
        Problem,
        ResourceLimitError,
        ScenarioError,
        SimulationError,
        UsageError,
    )
    from capsim.outputs import render, write_output
    from capsim.scenario import validate_file


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capsim' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # found once
    return value
