"""`capsim solve` with a closed class of 100,000 users answers in a moment.

The exact solution of a closed network (a log-domain convolution) does work that grows with
the square of the population: 0.15 s for 1,000 users at three stations, hours for 100,000.
Beyond `CLOSED_EXACT_USERS` (1,000) users, solve uses the large-population approximation
(`formulas.closed_network_large`: M/M/c stations fed at the class's throughput, the throughput
from Little's law over the loop) and says so. These stories hold it to the exact solution at
populations where both can run, within the errors docs/cli.md states.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.analysis import formulas

#: (demands, servers): one single-worker station; three multi-worker stations.
NETWORKS = [((0.01,), (1,)), ((0.01, 0.02, 0.005), (4, 8, 2))]
#: Populations as shares of the knee N* (where the bottleneck saturates).
AWAY_FROM_THE_KNEE = (0.5, 0.8, 1.2, 2.0)


def knee_think_time(demands: tuple[float, ...], servers: tuple[int, ...], knee: int) -> float:
    """The think time that puts the knee N* = (sum D + Z) / max(D / c) at `knee` users."""
    bottleneck = max(d / c for d, c in zip(demands, servers, strict=True))
    return knee * bottleneck - sum(demands)


@pytest.mark.parametrize(("demands", "servers"), NETWORKS)
def test_the_approximation_is_within_its_stated_error_of_the_exact_solution(
    demands: tuple[float, ...], servers: tuple[int, ...]
) -> None:
    think = knee_think_time(demands, servers, 1000)
    for share in (*AWAY_FROM_THE_KNEE, 1.0):
        users = int(1000 * share)
        exact = formulas._closed_network(demands, servers, think, users)
        approximate = formulas.closed_network_large(demands, servers, think, users)
        assert approximate.exact is False and exact.exact is True
        assert approximate.throughput == pytest.approx(exact.throughput, rel=0.01)
        # Off the knee the response time is within 4%; at the knee itself, within 27%.
        bound = 0.27 if share == 1.0 else 0.04
        assert approximate.response_time == pytest.approx(exact.response_time, rel=bound)
        for a, e in zip(approximate.utilization, exact.utilization, strict=True):
            assert a == pytest.approx(e, abs=0.01)


def test_the_exact_solution_is_kept_up_to_1000_users_and_the_approximation_beyond() -> None:
    demands, servers = (0.01, 0.02, 0.005), (4, 8, 2)
    assert formulas.closed_network(demands, servers, 1.0, 1000).exact is True
    assert formulas.closed_network(demands, servers, 1.0, 1001).exact is False


SHOP = """\
name: big-shop
traffic:
  shoppers: {{entry: web, users: {users}, think_time: {{dist: exponential, mean: 30s}}}}
tiers:
  web: {{concurrency: 64, blocking: false, service_time: {{dist: exponential, mean: 10ms}},
        calls: [db]}}
  db: {{concurrency: 16, service_time: {{dist: exponential, mean: 4ms}}}}
"""


def test_solve_answers_for_100000_users_at_once_and_names_its_method(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100,000 users thinking 30 s: about 3,333 requests/s offered if nothing waited, while the
    # database saturates at 16 / 4 ms = 4,000/s: below the knee (N* = 120,000), so the
    # throughput is close to N / (Z + D) and the response time close to the work alone.
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP.format(users=100_000))
    model = capsim.build_model(capsim.load_scenario(path))
    # The exact solution's work grows with the square of the users: it is never asked about
    # more than CLOSED_EXACT_USERS of them (the approximation's is a bisection, whatever N).
    asked: list[int] = []
    exact = formulas._closed_network

    def counted(demands, servers, think_time, users):  # type: ignore[no-untyped-def]
        asked.append(users)
        return exact(demands, servers, think_time, users)

    monkeypatch.setattr(formulas, "_closed_network", counted)
    data = capsim.solve(model, capsim_version="test")
    assert max(asked, default=0) <= formulas.CLOSED_EXACT_USERS
    shoppers = data["classes"]["shoppers"]
    assert shoppers["method"]["formula"].startswith(
        "large-population approximation of the closed network (100,000 users, more than the "
        "1,000 solved exactly)"
    )
    assert shoppers["method"]["exact"] is False
    # Well below the knee nearly nobody waits: the throughput is within 0.1% of the bound
    # N / (Z + D), the response time within 5% of the work alone (D: the web tier's 10 ms and
    # the database's 4 ms).
    bounds = shoppers["bounds"]
    assert shoppers["throughput"] == pytest.approx(bounds["throughput_max"], rel=0.001)
    assert shoppers["latency"]["mean"] == pytest.approx(bounds["response_min"], rel=0.05)
    assert data["tiers"]["db"]["utilization"] == pytest.approx(
        shoppers["throughput"] * 0.004 / 16, rel=1e-6
    )
    assert data["tiers"]["db"]["method"]["exact"] is False


def test_past_the_knee_the_throughput_is_the_bottleneck_s_and_the_users_wait(
    tmp_path: Path,
) -> None:
    # 200,000 users would offer 6,664/s: the database carries 4,000/s, and the other users
    # wait in line. Little's law over the loop: R = N / X - Z = 200,000 / 4,000 - 30 = 20 s.
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP.format(users=200_000))
    data = capsim.solve(capsim.build_model(capsim.load_scenario(path)), capsim_version="test")
    shoppers = data["classes"]["shoppers"]
    assert shoppers["throughput"] == pytest.approx(4000, rel=0.001)
    assert shoppers["latency"]["mean"] == pytest.approx(20.0, rel=0.01)
