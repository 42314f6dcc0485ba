"""Counting the work a command does, for stories that must not time it (speed lives in
benchmarks/): a refusal that comes before any replication starts, an exact solution kept small."""

from __future__ import annotations

from typing import Any

import pytest

import capsim.engine.runner as runner


def replications_started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The replication indices this process starts from now on (a pool's workers are other
    processes: not counted), as a list that grows as they start."""
    started: list[int] = []
    uncounted = runner.run_replication

    def counted(model: Any, replication: int, *args: Any, **options: Any) -> Any:
        started.append(replication)
        return uncounted(model, replication, *args, **options)

    monkeypatch.setattr(runner, "run_replication", counted)
    return started
