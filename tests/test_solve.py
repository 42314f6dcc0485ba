"""`capsim solve` answers from queueing formulas, exactly where theory is exact.

The analytic path has no noise, so wherever a formula is exact for the scenario its answer must
equal the oracle to 1e-6 (relative); where it is an approximation it must say so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import capsim
from capsim.analysis.solve import UnstableModelError, solve

ORACLES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "oracles" / "oracles.json").read_text()
)
SCENARIOS = Path(__file__).parent / "oracles"
E_S = 0.010  # mean service time of the single-queue oracle scenarios


def solved(name: str, *overrides: str) -> dict[str, Any]:
    model = capsim.build_model(capsim.load_scenario(SCENARIOS / f"{name}.yaml", overrides))
    return solve(model, capsim_version=capsim.__version__)


def _row(family: str, **match: float) -> dict[str, Any]:
    for row in ORACLES[family]:
        if all(abs(row[key] - value) < 1e-9 for key, value in match.items()):
            return row
    raise LookupError(f"no {family} row with {match}")


def test_an_mm1_server_at_80_percent_matches_the_closed_forms():
    result = solved("mm1-rho080")
    row = _row("mm1", rho=0.8)
    latency = result["classes"]["requests"]["latency"]
    assert latency["mean"] == pytest.approx(row["W"] * E_S, rel=1e-9)
    assert latency["p99"] == pytest.approx(row["sojourn_pct"]["p99"] * E_S, rel=1e-6)
    assert result["tiers"]["server"]["utilization"] == pytest.approx(0.8)
    assert result["classes"]["requests"]["method"]["exact"] is True


def test_an_mm4_pool_waits_as_erlang_c_says():
    result = solved("mmc4-rho080")
    row = _row("mmc", c=4, rho=0.8)
    tier = result["tiers"]["server"]
    assert tier["wait"]["mean"] == pytest.approx(row["Wq"] * E_S, rel=1e-9)
    assert tier["wait"]["p99"] == pytest.approx(row["wait_pct"]["p99"] * E_S, rel=1e-6)
    assert result["classes"]["requests"]["latency"]["p99"] == pytest.approx(
        row["sojourn_pct"]["p99"] * E_S, rel=1e-6
    )
    assert "Erlang C" in tier["method"]["formula"]


def test_constant_service_gets_the_pollaczek_khinchine_mean():
    result = solved("md1-rho080")
    row = _row("md1", rho=0.8)
    assert result["classes"]["requests"]["latency"]["mean"] == pytest.approx(row["W"] * E_S)
    assert "Pollaczek" in result["tiers"]["server"]["method"]["formula"]


def test_a_full_waiting_room_blocks_as_mm1k_says():
    result = solved("mm1k-rho080")
    row = _row("mm1k", offered_rho=0.8)
    tier = result["tiers"]["server"]
    assert tier["rejected_rate"] / tier["offered_rate"] == pytest.approx(row["P_block"], rel=1e-9)
    assert result["classes"]["requests"]["latency"]["mean"] == pytest.approx(
        row["W_admitted"] * E_S, rel=1e-9
    )


def test_an_overloaded_pool_with_a_waiting_room_is_stable_and_exact():
    result = solved("mmck-pool-rho120")
    row = _row("mmck_conn_pool", offered_rho=1.2)
    tier = result["tiers"]["server"]
    assert tier["throughput"] == pytest.approx(row["throughput"] / E_S, rel=1e-9)
    assert tier["utilization"] == pytest.approx(row["server_util"], rel=1e-9)


def test_erlang_b_is_the_loss_of_a_pool_without_waiting_room():
    result = solved("erlang-b-exponential")
    row = _row("erlang_b", offered_load_a=8.0)
    tier = result["tiers"]["server"]
    assert tier["rejected_rate"] / tier["offered_rate"] == pytest.approx(row["P_block"], rel=1e-9)
    assert "Erlang B" in tier["method"]["formula"]


@pytest.mark.parametrize(
    ("scenario", "case"),
    [
        ("jackson-feed-forward-384", "feed-forward lam0=384.0"),
        ("jackson-loop-240", "app<->db loop lam0=240.0"),
    ],
)
def test_a_jackson_network_has_the_product_form_end_to_end_mean(scenario, case):
    row = next(r for r in ORACLES["jackson"] if r["name"] == case)
    result = solved(scenario)
    assert result["classes"]["requests"]["latency"]["mean"] == pytest.approx(
        row["end_to_end_mean_sojourn"], rel=1e-6
    )
    for station in row["stations"]:
        assert result["tiers"][station["name"]]["utilization"] == pytest.approx(
            station["utilisation"], rel=1e-6
        )
    assert result["bottleneck"]["tier"] == "app"
    assert result["bottleneck"]["saturation_rate"] == pytest.approx(
        row["bottleneck_saturation_rate"]
    )


@pytest.mark.parametrize(
    ("scenario", "case", "users"), [("closed-mva-a", 0, 27), ("closed-mva-b", 1, 30)]
)
def test_closed_users_get_the_exact_mva_throughput_and_response(scenario, case, users):
    table = ORACLES["closed"][case]
    row = next(r for r in table["rows"] if r["N"] == users)
    result = solved(scenario, f"traffic.users.users={users}")
    cls = result["classes"]["users"]
    assert cls["throughput"] == pytest.approx(row["X"], rel=1e-9)
    assert cls["latency"]["mean"] == pytest.approx(row["R"], rel=1e-9)
    assert cls["bounds"]["n_star"] == pytest.approx(table["N_star"], rel=1e-9)


def test_round_robin_over_ten_servers_is_an_erlang_10_arrival_queue():
    result = solved("balancing-round-robin-rho080")
    row = _row("lb_round_robin", lam_per_server=0.8, n_servers=10)
    assert result["classes"]["requests"]["latency"]["mean"] == pytest.approx(
        row["mean_sojourn"] * E_S, rel=1e-9
    )


def test_an_unstable_station_is_an_error_that_names_it_and_the_saturation_rate():
    with pytest.raises(UnstableModelError) as error:
        solved("jackson-loop-240", "traffic.requests.rate=480/s")
    message = str(error.value)
    assert message.startswith("app: rho=1.25 >= 1 (600/s offered, 480/s capacity)")
    assert "saturates at 384 req/s" in message
    unstable = error.value
    assert (unstable.tier, unstable.rho) == ("app", pytest.approx(1.25))
    assert (unstable.offered_rate, unstable.capacity) == (pytest.approx(600), pytest.approx(480))
    assert unstable.saturation_rate == pytest.approx(384)


def test_the_command_prints_json_with_a_method_beside_each_group(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "capsim",
            "solve",
            str(SCENARIOS / "mmc4-rho080.yaml"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout)
    assert data["tiers"]["server"]["method"]["exact"] is True
    assert data["classes"]["requests"]["method"]["formula"]
    assert data["bottleneck"]["tier"] == "server"


def test_the_command_prints_the_table_and_exits_1_on_an_unstable_scenario():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "capsim",
            "solve",
            str(SCENARIOS / "mm1-rho080.yaml"),
            "--set",
            "traffic.requests.rate=120/s",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "OVERLOADED: server (rho 1.2: 120.0/s offered, 100.0/s capacity)" in result.stdout
    assert "--set tiers.server.instances=..." in result.stdout
    assert "Traceback" not in result.stderr


def test_tiers_with_zero_service_time_never_queue_and_limit_nothing(tmp_path):
    scenario = tmp_path / "zero.yaml"
    scenario.write_text(
        "name: zero\n"
        "traffic:\n  web: {entry: app, rate: 10/s}\n"
        "tiers:\n"
        "  app: {type: service, service_time: 0s, calls: [db]}\n"
        "  db: {type: database, service_time: 0ms}\n"
    )
    result = solve(capsim.build_model(capsim.load_scenario(scenario)), capsim_version="test")
    assert result["classes"]["web"]["latency"]["mean"] == 0.0
    assert result["tiers"]["db"]["wait"]["mean"] == 0.0
    assert result["bottleneck"]["saturation_rate"] is None
    table = subprocess.run(
        [sys.executable, "-m", "capsim", "solve", str(scenario)], capture_output=True, text=True
    )
    assert table.returncode == 0, table.stderr
    assert "no tier limits throughput" in table.stdout


def test_utilisation_objectives_show_as_percentages():
    model = capsim.build_model(
        capsim.load_scenario(
            SCENARIOS / "mmc4-rho080.yaml", ["slos=[{tier: server, utilization: 90%}]"]
        )
    )
    result = solve(model, capsim_version="test")
    assert result["slos"][0]["statistic"] == "utilization"
    assert result["slos"][0]["observed"] == pytest.approx(0.8)
    assert result["slos"][0]["passed"] is True


@pytest.mark.parametrize(
    ("family", "servers", "capacity"), [("mm1k", 1, 10), ("mmck_conn_pool", 10, 30)]
)
def test_finite_waiting_rooms_get_the_exact_admitted_sojourn_percentiles(family, servers, capacity):
    # Every row, overloaded ones included (offered rho 1.2 and 1.5 are stable with a limit).
    from capsim.analysis.formulas import mmck

    for row in ORACLES[family]:
        figures = mmck(servers, capacity, row["lam"], 1.0)
        for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            expected = row["sojourn_pct_admitted"][key]
            assert figures.sojourn_quantile(q) == pytest.approx(expected, rel=1e-6), (
                row["lam"],
                key,
            )


def test_wait_percentiles_of_a_pool_with_a_large_waiting_room_are_ordered_and_bounded():
    from capsim.analysis.formulas import mmck

    figures = mmck(20, 520, 19.0, 1.0)
    quantiles = [figures.wait_quantile(q) for q in (0.5, 0.9, 0.95, 0.99, 0.999)]
    assert quantiles == sorted(quantiles)
    # No admitted request waits longer than the whole waiting room takes to drain, on average
    # 500 / (20 mu) = 25 mean service times, by more than a few standard deviations.
    assert quantiles[-1] < 40.0
