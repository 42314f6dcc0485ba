"""Stories of a saturation search that narrows its brackets with few runs.

The knee and the SLO limit each start from two curve points that bracket them. A pair of
rates `--precision` apart around the interpolated crossing, measured together, narrows the
bracket to the precision in one round where bisection needs one point per halving. The
answers keep their guarantees: the SLO limit is a measured rate that passes, below the
ceiling, verified at full length. (How many points a search of a simulated pool takes depends
on its noise: a pair that misses the crossing leaves bisection to finish, so the pairs are told
on an exact figure and the whole search by its answer.)
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
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


def saturated(path: Path, **options: Any) -> dict[str, Any]:
    model = capsim.build_model(capsim.load_scenario(path))
    return saturate.find_saturation(model, capsim_version=capsim.__version__, **options)


class NoiselessSearcher:
    """A stand-in for the search's measurements: each rate's figure is an M/M/1 pool's exact
    p99 (10 ms work), whose reciprocal falls linearly to saturation at 100/s, as the guess of a
    crossing assumes; `batches` records the rates measured together."""

    def __init__(self) -> None:
        self.batches: list[list[float]] = []

    def at(self, rate: float, what: str, near: bool = False) -> SimpleNamespace:
        return self.at_all([rate], what)[0]

    def at_all(self, rates: list[float], what: str, near: bool = False) -> list[SimpleNamespace]:
        self.batches.append(list(rates))
        return [SimpleNamespace(rate=r, p99=math.log(100) * E_S / (1 - r / 100)) for r in rates]


def narrowed(guessing: bool) -> tuple[float, float, list[list[float]]]:
    """[40/s, 90/s] narrowed to 2% around where the p99 reaches 200 ms (76.97/s)."""
    searcher = NoiselessSearcher()

    def guess(low: SimpleNamespace, high: SimpleNamespace) -> float | None:
        return saturate._crossing(low.rate, high.rate, low.p99, high.p99, 0.200)

    low, high = saturate._bisect(
        searcher,  # type: ignore[arg-type]
        40.0,
        90.0,
        lambda point: point.p99 <= 0.200,
        0.02,
        "searching the SLO limit",
        guess if guessing else None,
    )
    return low, high, searcher.batches


def test_a_pair_around_the_guessed_crossing_narrows_the_bracket_in_one_round() -> None:
    limit = 100 * (1 - math.log(100) * E_S / 0.200)
    low, high, batches = narrowed(guessing=True)
    # The bracket's ends are read for the guess, then one batch of two points settles it.
    assert batches[2:] == [[pytest.approx(limit * 0.99), pytest.approx(limit * 1.01)]]
    assert low < limit < high and (high - low) / high <= 0.02
    # Bisection alone measures one point at a time, one per halving of the bracket's width.
    low, high, batches = narrowed(guessing=False)
    assert low < limit < high and (high - low) / high <= 0.02
    assert [len(batch) for batch in batches] == [1] * 6  # 50/s wide: 6 halvings to 2%


#: An M/M/4 pool's search is measured with 10 replications of 30 s: with 3 (the scenario's own)
#: a point's verdict near the limit is decided by its interval's noise, and the answer landed
#: between 7.8% and 0.5% below the exact limit over 8 seeds; with 10, between 4.5% below and
#: 2.4% above over 6.
SEARCH = {"replications": 10, "duration": 30.0}


def test_the_slo_limit_is_narrowed_to_the_precision_near_the_exact_limit(tmp_path: Path) -> None:
    path = mmc_scenario(tmp_path, sizing="fixed")  # p99 <= 60 ms
    result = saturated(path, **SEARCH)
    phases = result["search"]["runs_by_phase"]
    assert phases["curve"] >= len(saturate.GRID) and phases["verification"] >= 1
    assert result["search"]["runs"] == sum(phases.values())
    best = result["max_rate_meeting_slos"]
    assert best == pytest.approx(rate_where_p99_is(0.060), rel=0.05)
    assert best <= result["slo_ceiling"] and result["verification"]["meets_slos"] is True
    # Narrowed to --precision: the next rate up failed, as a search point or verified.
    measured = [*result["curve"], *result["verification"]["attempts"]]
    failed_above = [p["rate"] for p in measured if p["rate"] > best and not p["meets_slos"]]
    assert (min(failed_above) - best) / min(failed_above) <= 0.02
