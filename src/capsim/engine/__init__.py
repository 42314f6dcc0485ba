"""The engine: runs a Model and returns RunResults. The only layer that imports simpy.

Entry points (imported on first use, so `import capsim.engine.histogram` stays cheap):

- `run_replications` / `run_replication`: the runner, which picks a path (`choose_path`), checks
  the run's size first (`estimate_requests`, `check_run_size`) and runs replications serially or
  in a process pool;
- `run_events`: one replication on the event path (any model; `capsim.engine.events`);
- `run_vectorised`: one replication on the vectorised path, for models `can_vectorise` accepts;
- `RunResult`, `ClassRun`, `TierRun`: what one replication measured; `Histogram`: the streaming
  histogram every percentile comes from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "ClassRun",
    "EnginePath",
    "Histogram",
    "RunResult",
    "TierRun",
    "can_vectorise",
    "check_run_size",
    "choose_path",
    "estimate_requests",
    "run_events",
    "run_replication",
    "run_replications",
    "run_vectorised",
]

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "ClassRun": "capsim.engine.result",
    "RunResult": "capsim.engine.result",
    "TierRun": "capsim.engine.result",
    "Histogram": "capsim.engine.histogram",
    "EnginePath": "capsim.engine.runner",
    "check_run_size": "capsim.engine.runner",
    "choose_path": "capsim.engine.runner",
    "estimate_requests": "capsim.engine.runner",
    "run_replication": "capsim.engine.runner",
    "run_replications": "capsim.engine.runner",
    "run_events": "capsim.engine.events",
    "can_vectorise": "capsim.engine.vectorised",
    "run_vectorised": "capsim.engine.vectorised",
}

if TYPE_CHECKING:
    from capsim.engine.events import run_events
    from capsim.engine.histogram import Histogram
    from capsim.engine.result import ClassRun, RunResult, TierRun
    from capsim.engine.runner import (
        EnginePath,
        check_run_size,
        choose_path,
        estimate_requests,
        run_replication,
        run_replications,
    )
    from capsim.engine.vectorised import can_vectorise, run_vectorised


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'capsim.engine' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value  # found once
    return value
