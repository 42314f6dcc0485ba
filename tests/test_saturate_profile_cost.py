"""Stories of a saturation search on a daily profile: a bounded number of points, at the peak.

A payments API with 2 workers at 40 ms carries 50 requests/s. Its day, compressed: 8/s in the
morning, a ramp, then a plateau at its peak of 20/s for a minute. The rate axis of the search is
the peak, so the share of the workers held is read on the busiest minute, from the run's time
series. The report hands the search its model with time series off (its many runs need no
per-bucket figures), as a scenario with `simulation: {timeseries: false}` does: the share held
was then the whole window's mean, 1.2x below the peak's, the estimate 59/s, and the
confirmation at 0.9x of it found the tier overloaded and moved the estimate by a bisection of
whole-timeline points (16 points instead of 10; minutes on checkout-platform, whose report
ran for over 16 minutes "moving its saturation estimate").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import capsim
from capsim.analysis.saturate import find_saturation, max_search_points

DAILY = """\
name: daily
seed: 3
simulation: {{duration: 105s, warmup: 15s{timeseries}}}
traffic:
  pay:
    entry: api
    profile:
      - {{at: 0s, rate: 8/s}}
      - {{at: 30s, rate: 8/s}}
      - {{at: 60s, rate: 20/s}}
tiers:
  api:
    concurrency: 2
    service_time: {{dist: exponential, mean: 40ms}}
"""


def saturated(tmp_path: Path, timeseries: str) -> dict[str, Any]:
    path = tmp_path / "daily.yaml"
    path.write_text(DAILY.format(timeseries=timeseries))
    model = capsim.build_model(capsim.load_scenario(path))
    return find_saturation(model, capsim_version=capsim.__version__)


def test_a_daily_profile_without_time_series_is_searched_at_its_peak_in_few_points(
    tmp_path: Path,
) -> None:
    result = saturated(tmp_path, ", timeseries: false")
    # Utilization law on the one tier: 2 workers / 40 ms = 50/s at the peak.
    assert result["analytic"]["saturation_rate"] == pytest.approx(50.0)
    assert result["saturation_rate"] == pytest.approx(50.0, rel=0.05)
    # Read on the busiest minute, the estimate holds: its confirmation needs no move, so the
    # search is the grid and the knee, far inside its stated bound.
    assert result["confirmation"]["below"]["stable"] is True
    assert result["confirmation"]["below"]["moves"] == []
    assert "saturation" not in result["search"]["runs_by_phase"]
    assert result["evaluations"] <= 10 < result["search"]["max_points"] == max_search_points(0.02)
    # Each point counted once in `search.runs`: the points near saturation ran longer (the
    # peak's plateau held steady, docs/capacity.md), not a re-run for noise; nothing was re-run.
    assert result["search"]["runs"] == result["evaluations"]
    # The same search as with the time series the profile implies: same points, same answers.
    with_them = saturated(tmp_path, "")
    for key in ("saturation_rate", "knee_rate", "evaluations", "curve"):
        assert result[key] == with_them[key], key
