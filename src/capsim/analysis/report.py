"""Report: the one result object every renderer reads (the JSON result of docs/results.md as a dict, plus warnings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    """A run's result. `data` is the JSON result of docs/results.md (strict JSON: no NaN);
    `warnings` are plain sentences for the user (an overloaded tier, an SLO without data)."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every SLO passed (or there are none) and no tier is overloaded."""
        return bool(self.data.get("passed", True))

    @property
    def unstable_tiers(self) -> list[str]:
        """Names of the tiers whose queue kept growing through the run."""
        return [name for name, tier in self.data.get("tiers", {}).items() if not tier["stable"]]


def overload_failures(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A result's overload failures: its `overloaded` list or, for a result written before that
    key existed, every tier marked `stable: false` (without a saturation estimate)."""
    listed = data.get("overloaded")
    if isinstance(listed, list):
        return [entry for entry in listed if isinstance(entry, dict) and "tier" in entry]
    return [
        {"tier": name, "growth_rate": entry.get("growth_rate"), "saturation_rate": None}
        for name, entry in (data.get("tiers") or {}).items()
        if isinstance(entry, dict) and entry.get("stable") is False
    ]
