"""Stories of a saturation search under a daily profile: its points run the peak, not the day.

A payments API's day, compressed: a quiet morning, a ramp, then its peak held for a minute or
more. `saturate` answers on the peak (its rate axis is the highest total rate, a tier's share
held is read on its busiest minute), so each search point runs that plateau alone, held steady,
with the usual run lengths of a steady scenario; the answer is still verified on the whole day.
Where the peak is not held for a minute, or something else changes during the run (a fault),
the points keep running the whole timeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import capsim
from capsim.analysis.peak_window import peak_plateau, peak_window
from capsim.analysis.saturate import find_saturation
from capsim.model.types import Model

DAY = """\
name: day
seed: 3
simulation: {{duration: {duration}, warmup: 15s}}
traffic:
  pay:
    entry: api
    profile:
      - {{at: 0s, rate: 400/s}}
      - {{at: 30s, rate: 400/s}}
      - {{at: 60s, rate: 1000/s}}
  refund:
    entry: api
    profile:
      - {{at: 0s, rate: 40/s}}
      - {{at: 30s, rate: 40/s}}
      - {{at: 60s, rate: 100/s}}
tiers:
  api:
    instances: 4
    concurrency: 8
    service_time: {{dist: exponential, mean: 20ms}}
slos:
  - {{class: pay, p99: 250ms}}
{faults}"""


def day(tmp_path: Path, duration: str = "105s", faults: str = "") -> Model:
    path = tmp_path / "day.yaml"
    path.write_text(DAY.format(duration=duration, faults=faults))
    return capsim.build_model(capsim.load_scenario(path))


def test_the_peak_plateau_is_where_every_class_holds_its_peak_rate(tmp_path: Path) -> None:
    start, end, rates = peak_plateau(day(tmp_path)) or (0.0, 0.0, [])
    # The ramp ends at 60 s; the run ends at 15 s warm-up + 105 s = 120 s.
    assert (start, end) == (60.0, 120.0)
    assert rates == [1000.0, 100.0]


def test_the_search_model_is_the_plateau_held_steady_after_the_warm_up(tmp_path: Path) -> None:
    window = peak_window(day(tmp_path))
    assert window is not None
    steady = window.model
    assert [c.rate for c in steady.classes] == [1000.0, 100.0]
    assert all(not c.profile for c in steady.classes)
    assert (steady.simulation.duration, steady.simulation.warmup) == (60.0, 15.0)


def test_a_peak_held_less_than_a_minute_keeps_the_whole_timeline(tmp_path: Path) -> None:
    # The window ends 50 s into the plateau: the busiest minute would include the ramp.
    assert peak_window(day(tmp_path, duration="95s")) is None


def test_a_fault_during_the_day_keeps_the_whole_timeline(tmp_path: Path) -> None:
    fault = "faults:\n  - {at: 90s, tier: api, lose: 1, for: 10s}\n"
    assert peak_window(day(tmp_path, faults=fault)) is None


def test_a_steady_scenario_has_no_peak_window(tmp_path: Path) -> None:
    path = tmp_path / "steady.yaml"
    path.write_text(
        "name: steady\ntraffic: {pay: {entry: api, rate: 100/s}}\n"
        "tiers: {api: {concurrency: 4, service_time: 10ms}}\n"
    )
    assert peak_window(capsim.build_model(capsim.load_scenario(path))) is None


def searched(model: Model, monkeypatch: pytest.MonkeyPatch, whole_day: bool) -> dict[str, Any]:
    if whole_day:
        monkeypatch.setattr("capsim.analysis.saturate.peak_window", lambda model: None)
    return find_saturation(model, capsim_version=capsim.__version__)


@pytest.mark.slow
def test_the_peak_search_answers_as_the_whole_day_search_for_far_fewer_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = day(tmp_path)
    peak = searched(model, monkeypatch, whole_day=False)
    whole = searched(model, monkeypatch, whole_day=True)
    # 32 workers / 20 ms = 1,600/s of the peak's mix.
    assert peak["analytic"]["saturation_rate"] == pytest.approx(1600.0)
    assert peak["saturation_rate"] == pytest.approx(whole["saturation_rate"], rel=0.03)
    assert peak["bottleneck"] == whole["bottleneck"] == "api"
    # The p99 objective judged on the peak alone is at least as strict as on the whole day.
    assert peak["max_rate_meeting_slos"] <= whole["max_rate_meeting_slos"] * 1.02
    assert peak["max_rate_meeting_slos"] == pytest.approx(whole["max_rate_meeting_slos"], rel=0.06)
    # Verified on the scenario's own timeline, as before.
    assert peak["verification"]["duration"] == 105.0
    assert any("run that peak alone" in note for note in peak["notes"])
    assert peak["search"]["requests"] < 0.5 * whole["search"]["requests"]
