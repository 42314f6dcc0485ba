"""Stories of `capsim solve` on a pool of 64 blocking workers that calls itself back.

Each 5 ms visit calls the tier back with probability 0.5 and holds its worker until the nested
visit answers. A lone request deadlocks the pool once in 0.5^64 (never), and solve's bound,
workers / demand, is 3,200 requests/s; yet the simulation stalls from about 1,800/s: the
chains of concurrent requests share the workers, and when their parents hold all 64, the
nested visits wait for a worker none of them frees. solve said nothing of it beyond a note
("capsim saturate finds where"). It now counts the parents of concurrent requests (a compound
Poisson count, exact for an infinite pool) and gives the load at which they are expected to
fill the pool within the run: about 2,100/s, an upper bound of the simulated collapse.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import capsim
from capsim.analysis.solve import solve_bottleneck
from capsim.analysis.solve_collapse import _log_parents_pmf
from capsim.model.types import Model

SELF_CALLING = """\
name: selfcall
seed: 1
simulation: {{duration: 20s, warmup: 2s}}
traffic:
  page: {{entry: front, rate: {rate}/s}}
tiers:
  front:
    concurrency: 64
    service_time: {{dist: exponential, mean: 5ms}}
    calls: [{{tier: front, probability: 0.5}}]
"""


def pool(tmp_path: Path, rate: float) -> Model:
    path = tmp_path / "selfcall.yaml"
    path.write_text(SELF_CALLING.format(rate=rate))
    return capsim.build_model(capsim.load_scenario(path))


def test_the_parents_count_is_the_compound_poisson_sum_of_the_depths() -> None:
    # N_j ~ Poisson(a q^(j-1)) requests j stages deep hold j - 1 parents each: convolve the
    # distributions of (j - 1) N_j directly and compare with the recursion.
    a, q, top = 12.0, 0.6, 60
    pmf = np.zeros(top + 1)
    pmf[0] = 1.0
    for j in range(2, 80):
        mean = a * q ** (j - 1)
        part = np.zeros(top + 1)
        for n in range(0, top // (j - 1) + 1):
            part[n * (j - 1)] = math.exp(-mean + n * math.log(mean) - math.lgamma(n + 1))
        pmf = np.convolve(pmf, part)[: top + 1]
    for count in (0, 5, 20, 45, 60):
        assert math.exp(_log_parents_pmf(a, q, count)) == pytest.approx(pmf[count], rel=1e-9)


def test_solve_puts_the_pool_s_collapse_below_its_bound(tmp_path: Path) -> None:
    data = capsim.solve(pool(tmp_path, 1000), capsim_version="t")
    front = data["tiers"]["front"]
    collapse = front["collapse"]
    assert 1800 < collapse["rate"] < 2400  # the simulation stalls from about 1,800/s
    assert collapse["within_run"] is False and front["stable"] is True
    assert front["max_rate"] == collapse["rate"]
    assert data["bottleneck"] == {
        "tier": "front",
        "saturation_rate": collapse["rate"],
        "offered_rate": 1000.0,
    }
    # run's footer quotes the same saturation (it promised 3,200/s)
    assert solve_bottleneck(pool(tmp_path, 1000)) == data["bottleneck"]


def test_at_its_collapse_rate_the_pool_stalls_and_well_below_it_runs(tmp_path: Path) -> None:
    collapse = capsim.solve(pool(tmp_path, 1000), capsim_version="t")["tiers"]["front"]["collapse"]
    at = pool(tmp_path, round(collapse["rate"]))
    solved = capsim.solve(at, capsim_version="t")
    assert solved["tiers"]["front"]["stable"] is False and solved["passed"] is False
    assert capsim.simulate(at).data["tiers"]["front"]["stable"] is False  # stalled
    below = pool(tmp_path, 1200)  # expected once in about 3 hours by the bound
    assert (
        capsim.solve(below, capsim_version="t")["tiers"]["front"]["collapse"]["within_run"] is False
    )
    assert capsim.simulate(below).data["tiers"]["front"]["stable"] is True
