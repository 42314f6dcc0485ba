"""What every calibration shares: the result object, scenario-safe names, and figures as text."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Path_ = tuple[str | int, ...]


@dataclass
class Calibration:
    """`scenario` is the scenario as a dict, `notes` maps a key path of it to the sentence that
    says where its figure came from (the YAML writer's comments), `summary` holds the tables."""

    scenario: dict[str, Any]
    notes: dict[Path_, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def scenario_name(text: str) -> str:
    """`text` as a scenario name: letters, digits, '_' and '-' (runs of anything else become '_')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "requests"


def duration_text(value: float) -> str:
    """A duration in the scenario's units, 4 significant figures."""
    if value == 0:
        return "0ms"
    if value < 1e-3:
        return f"{value * 1e6:.4g}us"
    if value < 1:
        return f"{value * 1e3:.4g}ms"
    return f"{value:.4g}s"


def rate_text(value: float) -> str:
    return f"{value:.5g}/s"


def latency_figures(durations: np.ndarray) -> dict[str, float]:
    if durations.size == 0:
        return {}
    p50, p95, p99 = np.percentile(durations, [50, 95, 99])
    return {
        "mean": float(durations.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "count": int(durations.size),
    }
