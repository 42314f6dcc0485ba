"""Work left at the end of the measured window: unfinished requests, and backlogs not drained.

The engines count every request of the window still unanswered at its end in its class's
latency at its age then, and every visit still waiting for a worker in its tier's wait (and a
queue's message age) at its wait so far: lower bounds, so that a run cut off in the middle of a
backlog cannot look faster than it was (docs/results.md#work-left-at-the-end-of-the-window).
This module reports those counts and judges whether a tier's backlog at the end is so large
that the tier had not recovered when the window ended (`undrained`), which fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capsim.engine.result import ClassRun, TierRun
from capsim.units import format_duration

#: A replication's backlog at the end is *large* when more than this share of the tier's
#: arrivals in the window are still waiting for a worker when it ends: their waits are not
#: known (only lower bounds), so every percentile from the p99 down would be decided by them.
UNDRAINED_SHARE = 0.01
#: ... and at least this many requests wait (a handful in line at the end is no backlog).
UNDRAINED_MIN = 10


def class_figures(per_run: list[ClassRun]) -> dict[str, Any]:
    """`unfinished` (mean per replication) and `oldest_unfinished` (seconds, the largest)."""
    replications = len(per_run)
    return {
        "unfinished": round(sum(c.unfinished for c in per_run) / replications),
        "oldest_unfinished": max(c.oldest_unfinished for c in per_run),
    }


def tier_figures(per_run: list[TierRun]) -> dict[str, Any]:
    """`backlog_at_end` (mean per replication) and `oldest_at_end` (seconds, the largest)."""
    replications = len(per_run)
    return {
        "backlog_at_end": round(sum(t.backlog_at_end for t in per_run) / replications),
        "oldest_at_end": max(t.oldest_waiting for t in per_run),
    }


def backlog_is_large(tier_run: TierRun) -> bool:
    """Whether one replication left a large backlog at the end (`UNDRAINED_SHARE`)."""
    waiting = tier_run.backlog_at_end
    return waiting >= UNDRAINED_MIN and waiting > UNDRAINED_SHARE * tier_run.arrivals


@dataclass(frozen=True)
class Undrained:
    """A tier that had not drained by the end of the window, in a planner's figures."""

    backlog_at_end: int  # requests still waiting for a worker at the end, mean per replication
    share: float  # of the tier's arrivals in the window (pooled over replications)
    oldest: float  # seconds the oldest of them had waited (the largest over replications)
    clear_time: float | None  # seconds the tier's workers, all up and busy, need to serve them

    def as_dict(self) -> dict[str, Any]:
        return {
            "backlog_at_end": self.backlog_at_end,
            "share": self.share,
            "oldest": self.oldest,
            "clear_time": self.clear_time,
        }


def assess_undrained(per_run: list[TierRun], capacity: float | None) -> Undrained | None:
    """The tier's backlog at the end is large in at least half of the replications (as a tier
    is overloaded when at least half of them grow): its figures, else None. `capacity` is the
    tier's requests per second with every worker up and held (`summary.capacity_when_up`)."""
    large = sum(1 for t in per_run if backlog_is_large(t))
    if not per_run or 2 * large < len(per_run):
        return None
    waiting = sum(t.backlog_at_end for t in per_run) / len(per_run)
    arrivals = sum(t.arrivals for t in per_run)
    return Undrained(
        backlog_at_end=round(waiting),
        share=sum(t.backlog_at_end for t in per_run) / arrivals if arrivals else 1.0,
        oldest=max(t.oldest_waiting for t in per_run),
        clear_time=waiting / capacity if capacity else None,
    )


def undrained_text(figures: dict[str, Any]) -> str:
    """`not drained: 7,103 waiting at the end (26% of its arrivals), the oldest for 23.5s`."""
    return (
        f"not drained: {figures['backlog_at_end']:,} waiting at the end "
        f"({_percent(figures['share'])} of its arrivals), the oldest for "
        f"{format_duration(figures['oldest'])}"
    )


def undrained_sentence(failure: dict[str, Any], *, queue: bool = False) -> str:
    """The warning for a tier whose backlog had not drained by the end of the window (`queue`:
    the tier is a queue, whose backlog is messages waiting for a consumer)."""
    figures = failure["undrained"]
    waiting = (
        "messages were still waiting for a consumer"
        if queue
        else ("requests were still waiting for a worker")
    )
    where = f"tier '{failure['tier']}'"
    text = (
        f"{where} had not drained by the end of the window, which fails the run: "
        f"{figures['backlog_at_end']:,} {waiting} "
        f"({_percent(figures['share'])} of its arrivals in the window, more than "
        f"{_percent(UNDRAINED_SHARE)}), the oldest for {format_duration(figures['oldest'])}"
    )
    if figures.get("clear_time") is not None:
        text += (
            f"; at full capacity ({failure['capacity']:,.1f}/s) they need "
            f"{format_duration(figures['clear_time'])} more to serve them, even with no new arrivals"
        )
    return text + (
        ". Their waits so far are counted in its figures (lower bounds); run longer "
        "(simulation.duration) to judge its recovery."
    )


def _percent(share: float) -> str:
    return f"{100 * share:.2g}%" if share < 0.1 else f"{100 * share:.0f}%"
