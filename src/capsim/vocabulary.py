"""The names every layer shares: the tier types and the latency statistics of a result.

The scenario schema accepts them, the model types them, the summary computes them and the views
show them; each reads them from here (how an SLO statistic is shown lives in `capsim.units`).
"""

from __future__ import annotations

#: A tier's `type`, in the order docs/scenario-reference.md presents them.
TIER_TYPES: tuple[str, ...] = ("service", "load_balancer", "cache", "cdn", "database", "queue")

#: The statistics of every latency (and wait, age) distribution a result reports, in order;
#: `--percentiles` adds percentiles beyond these.
LATENCY_STATISTICS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "p99", "p999", "max")
