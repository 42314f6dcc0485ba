"""Stories of a saturation search that narrows its brackets with few runs.

The knee and the SLO limit each start from two curve points that bracket them. A pair of
rates `--precision` apart around the interpolated crossing, measured together, narrows the
bracket to the precision in one round where bisection needs one point per halving. The
answers keep their guarantees: the SLO limit is a measured rate that passes, below the
ceiling, verified at full length.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import capsim
from capacitykit import mmc_scenario
from capsim.analysis import saturate
from capsim.analysis.formulas import mmc

E_S = 0.010


def rate_where_p99_is(limit: float, servers: int = 4) -> float:
    """The M/M/4 rate whose exact p99 (Erlang C) is `limit`."""
    low, high = 1.0, servers / E_S * (1 - 1e-9)
    for _ in range(100):
        middle = 0.5 * (low + high)
        p99 = mmc(servers, middle, E_S).sojourn_quantile(0.99) or float("inf")
        low, high = (middle, high) if p99 < limit else (low, middle)
    return low


def saturated(path: Path) -> dict[str, Any]:
    model = capsim.build_model(capsim.load_scenario(path))
    return saturate.find_saturation(model, capsim_version=capsim.__version__)


def test_the_knee_and_the_slo_limit_take_a_pair_of_points_each_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = mmc_scenario(tmp_path, sizing="fixed")  # p99 <= 60 ms
    result = saturated(path)
    phases = result["search"]["runs_by_phase"]
    assert phases["curve"] == len(saturate.GRID) and phases["verification"] == 1
    assert phases["knee"] == 2  # the first pair straddles the knee
    assert phases["slo limit"] <= 4
    assert result["search"]["runs"] == sum(phases.values()) == result["evaluations"] + 1

    best = result["max_rate_meeting_slos"]
    assert best == pytest.approx(rate_where_p99_is(0.060), rel=0.05)
    assert best <= result["slo_ceiling"] and result["verification"]["meets_slos"] is True
    failed_above = [p["rate"] for p in result["curve"] if p["rate"] > best and not p["meets_slos"]]
    assert (min(failed_above) - best) / min(failed_above) <= 0.02  # narrowed to --precision

    # Bisection alone (no pairs) needs more points for the same precision.
    monkeypatch.setattr(saturate, "STRADDLES", 0)
    bisected = saturated(path)["search"]["runs_by_phase"]
    assert bisected["knee"] + bisected["slo limit"] > phases["knee"] + phases["slo limit"]
