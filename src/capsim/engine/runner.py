"""Runs replications of a model: chooses the engine path and hands work to an executor."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

from capsim.engine.result import RunResult
from capsim.model.types import Model

EnginePath = Literal["auto", "vectorised", "events"]
ProgressCallback = Callable[[float, str], None]  # (fraction done in [0, 1], what is running)


def choose_path(model: Model, engine: EnginePath = "auto") -> tuple[str, str]:
    """(path, reason): which engine path runs this model, and why, in the user's words."""
    from capsim.engine.vectorised import can_vectorise

    if engine == "events":
        return "events", "the event path was requested (--engine events)"
    possible, reason = can_vectorise(model)
    if engine == "vectorised":
        if not possible:
            from capsim.errors import UsageError

            raise UsageError(f"--engine vectorised cannot run this scenario: {reason}")
        return "vectorised", reason
    return ("vectorised" if possible else "events"), reason


def run_replication(
    model: Model,
    replication: int,
    path: str = "events",
    progress: ProgressCallback | None = None,
) -> RunResult:
    """One independent replication: a pure function of (model, replication index)."""
    if path == "vectorised":
        from capsim.engine.vectorised import run_vectorised

        return run_vectorised(model, replication, progress=progress)
    from capsim.engine.events import run_events

    return run_events(model, replication, progress=progress)


def _run_one(args: tuple[Model, int, str]) -> RunResult:
    model, replication, path = args
    return run_replication(model, replication, path)


def run_replications(
    model: Model,
    replications: int | None = None,
    engine: EnginePath = "auto",
    executor: Literal["serial", "process"] = "serial",
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[RunResult]:
    """Run every replication and return their results in replication order.

    Results do not depend on the executor: each replication draws from its own streams.
    """
    count = replications if replications is not None else model.simulation.replications
    path, reason = choose_path(model, engine)
    results: list[RunResult] = []
    if executor == "process" and count > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for done, result in enumerate(pool.map(_run_one, [(model, i, path) for i in range(count)])):
                results.append(result)
                if progress:
                    progress((done + 1) / count, f"replication {done + 1}/{count}")
    else:
        for i in range(count):

            def part(fraction: float, what: str, i: int = i) -> None:
                if progress:
                    progress((i + fraction) / count, f"replication {i + 1}/{count}: {what}")

            results.append(run_replication(model, i, path, progress=part))
    for result in results:
        result.engine_path = path
        result.engine_reason = reason
    return results
