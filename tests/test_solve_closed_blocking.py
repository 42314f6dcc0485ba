"""Stories of `capsim solve` on a closed class whose requests hold blocking workers through calls.

A web tier of 64 threads holds each thread while the database (16 cores, 4 ms a query)
answers, and a population of users, each thinking 100 ms, keeps it busy. Past the knee the
database carries close to its 4,000/s and the users wait for a thread. solve used to count
the database's time twice (inside the web's holding time and at its own station) and solved
the loop as a product-form network it is not: 1,321/s at 500 users, 437/s at 1,001 and 1.3/s
at 200,000, where the simulation measures about 3,900/s. It now solves the loop by Little's
law over the call graph's response time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.model.types import Model

LOOP = """\
name: loop
seed: 7
simulation: {{duration: 5s, warmup: 2s, replications: 1}}
traffic:
  shoppers: {{entry: web, users: {users}, think_time: {{dist: exponential, mean: 100ms}}}}
tiers:
  web: {{concurrency: 64, blocking: true, service_time: {{dist: exponential, mean: 10ms}},
        calls: [db]}}
  db: {{concurrency: 16, service_time: {{dist: exponential, mean: 4ms}}}}
"""


def loop(tmp_path: Path, users: int) -> Model:
    path = tmp_path / f"loop-{users}.yaml"
    path.write_text(LOOP.format(users=users))
    return capsim.build_model(capsim.load_scenario(path))


def solved(tmp_path: Path, users: int) -> dict:
    return capsim.solve(loop(tmp_path, users), capsim_version="test")


def test_a_few_users_are_served_as_fast_as_they_think(tmp_path: Path) -> None:
    # 5 users, nobody waits: X = N / (Z + D) = 5 / (100 ms + 10 ms + 4 ms).
    data = solved(tmp_path, 5)
    shoppers = data["classes"]["shoppers"]
    assert shoppers["throughput"] == pytest.approx(5 / 0.114, rel=1e-3)
    assert shoppers["latency"]["mean"] == pytest.approx(0.014, rel=1e-3)
    assert shoppers["method"]["formula"].startswith("closed loop through blocking callers")
    assert shoppers["method"]["exact"] is False


@pytest.mark.parametrize("users", [500, 2000])
def test_past_the_knee_the_database_carries_what_the_simulation_measures(
    tmp_path: Path, users: int
) -> None:
    model = loop(tmp_path, users)
    estimate = capsim.solve(model, capsim_version="test")
    measured = capsim.simulate(model).data
    # The database's own throughput (its 16 cores nearly full): within 5%.
    assert estimate["tiers"]["db"]["throughput"] == pytest.approx(
        measured["tiers"]["db"]["throughput"], rel=0.05
    )
    assert estimate["tiers"]["db"]["utilization"] == pytest.approx(
        measured["tiers"]["db"]["utilization"], abs=0.06
    )
    # The users wait for a web thread: Little's law over the loop, R = N / X - Z.
    shoppers = estimate["classes"]["shoppers"]
    assert shoppers["latency"]["mean"] == pytest.approx(
        users / shoppers["throughput"] - 0.1, rel=1e-4
    )
    assert estimate["tiers"]["web"]["occupancy"] > 0.98


def test_the_answer_does_not_jump_where_the_exact_solution_stops(tmp_path: Path) -> None:
    # 1,000 users are within the exact solver's reach, 1,001 beyond it: one loop, one answer.
    at, past = solved(tmp_path, 1000), solved(tmp_path, 1001)
    assert past["classes"]["shoppers"]["throughput"] == pytest.approx(
        at["classes"]["shoppers"]["throughput"], rel=1e-3
    )
    # Ever more users only wait longer: the throughput stays at the loop's capacity.
    crowd = solved(tmp_path, 200_000)
    assert crowd["classes"]["shoppers"]["throughput"] == pytest.approx(
        at["classes"]["shoppers"]["throughput"], rel=1e-3
    )
