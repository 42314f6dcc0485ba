"""Analysis: turns replications' measurements into figures, intervals and SLO verdicts."""

from __future__ import annotations

from capsim.analysis.report import Report
from capsim.analysis.summary import summarise

__all__ = ["Report", "summarise"]
