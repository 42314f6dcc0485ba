"""Stories: a rate limit in `capsim solve`'s network, and what `size` makes of it.

A gateway whose token bucket lets 100 requests/s through, in front of payment workers that
could carry 200/s. Offered 250/s, the run serves 100/s, payments stable and half busy, and
refuses 60%: solve must say the same (docs/dynamic.md, "Rate limit"), and size must say that
the limit, not the capacity behind it, fails an error-rate objective (docs/capacity.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.solve import served_shares, solve
from capsim.cli.app import app

runner = CliRunner()

GATEWAY = """\
name: rate-limited
seed: 1
simulation: {{duration: 60s}}
traffic:
  pay: {{entry: gateway, rate: {rate}/s}}
tiers:
  gateway:
    concurrency: 100
    blocking: false
    service_time: 1ms
    rate_limit: {{rate: 100/s, burst: 20}}
    calls: [payments]
  payments:
    concurrency: 4
    service_time: {{dist: exponential, mean: 20ms}}
    {payments_limit}
slos:
  - {{class: pay, error_rate: {error_rate}}}
"""


def _text(rate: float, error_rate: str = "1%", payments_limit: str = "") -> str:
    return GATEWAY.format(rate=rate, error_rate=error_rate, payments_limit=payments_limit)


def _model(tmp_path: Path, text: str) -> capsim.Model:
    path = tmp_path / "rl.yaml"
    path.write_text(text)
    return capsim.build_model(capsim.load_scenario(path))


def _solved(tmp_path: Path, text: str) -> dict:
    return solve(_model(tmp_path, text), capsim_version="test")


def test_solve_offers_the_tiers_behind_a_rate_limit_what_it_lets_through(tmp_path: Path) -> None:
    data = _solved(tmp_path, _text(250))
    gateway, payments, pay = (
        data["tiers"]["gateway"],
        data["tiers"]["payments"],
        data["classes"]["pay"],
    )
    # The gateway is offered 250/s, lets 100/s through and refuses 150/s (60%) as errors.
    assert gateway["offered_rate"] == 250 and gateway["throughput"] == pytest.approx(100)
    assert gateway["rejected_rate"] == pytest.approx(150)
    assert gateway["rate_limit"] == {
        "rate": 100, "max_rate": 100, "refused_rate": pytest.approx(150),
        "refused_share": pytest.approx(0.6),
    }  # fmt: skip
    # Payments gets 100/s of 20 ms on 4 workers: half busy and stable, not OVERLOADED (rho 1.25).
    assert payments["offered_rate"] == pytest.approx(100) and payments["stable"] is True
    assert payments["utilization"] == pytest.approx(0.5)
    assert data["overloaded"] == []
    assert pay["throughput"] == pytest.approx(100) and pay["error_rate"] == pytest.approx(0.6)
    # The limit, not payments' 200/s, bounds what the system serves.
    assert data["bottleneck"] == {
        "tier": "gateway", "saturation_rate": 100, "offered_rate": 250, "by": "rate_limit"
    }  # fmt: skip
    assert any("gateway's rate_limit (100.0/s" in note and "refuses 60.0%" in note
               for note in data["notes"])  # fmt: skip


def test_the_run_agrees_with_solve_behind_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "rl.yaml"
    path.write_text(_text(250))
    run = capsim.run_file(str(path)).data
    assert run["tiers"]["payments"]["utilization"] == pytest.approx(0.5, abs=0.03)
    assert run["classes"]["pay"]["error_rate"] == pytest.approx(0.6, abs=0.01)


def test_a_limit_behind_a_limit_sees_what_the_first_lets_through(tmp_path: Path) -> None:
    data = _solved(tmp_path, _text(250, payments_limit="rate_limit: {rate: 40/s, burst: 5}"))
    payments = data["tiers"]["payments"]
    assert payments["offered_rate"] == pytest.approx(100)  # not 250
    assert payments["rate_limit"]["refused_share"] == pytest.approx(0.6)
    assert payments["utilization"] == pytest.approx(40 * 0.020 / 4)
    assert data["classes"]["pay"]["error_rate"] == pytest.approx(1 - 0.4 * 0.4)


def test_below_its_rate_a_limit_changes_nothing(tmp_path: Path) -> None:
    data = _solved(tmp_path, _text(60))
    assert data["tiers"]["payments"]["offered_rate"] == pytest.approx(60)
    assert data["tiers"]["gateway"]["rate_limit"]["refused_rate"] == 0
    assert data["classes"]["pay"]["error_rate"] == 0
    assert data["bottleneck"]["tier"] == "gateway" and data["bottleneck"]["saturation_rate"] == 100
    assert not [note for note in data["notes"] if "rate_limit" in note]


def test_the_tiers_behind_a_limit_get_only_what_it_lets_through_in_sizes_lower_bounds(
    tmp_path: Path,
) -> None:
    model = _model(tmp_path, _text(250))
    assert served_shares(model) == {"gateway": pytest.approx(0.4), "payments": pytest.approx(0.4)}


def test_size_says_the_rate_limit_fails_the_error_rate_whatever_the_capacity(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rl.yaml"
    path.write_text(_text(250))
    result = runner.invoke(app, ["size", str(path)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "no capacity meets pay error_rate <= 1%: gateway's rate_limit (100/s" in message
    # Over the 60 s window at most 20 + 100 x 60 of 250 x 60 requests pass.
    assert f"at least {1 - 6020 / 15000:.1%} of pay's requests are refused" in message
    assert "raise tiers.gateway.rate_limit.rate" in message


def test_size_starts_the_tier_behind_a_limit_from_what_it_lets_through(tmp_path: Path) -> None:
    # 60% errors allowed: payments needs 1 instance for the 100/s the gateway lets through,
    # not the 2 that 250/s would take; the analytic start is the answer, one point measured.
    path = tmp_path / "rl.yaml"
    path.write_text(_text(250, error_rate="70%"))
    result = runner.invoke(app, ["size", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["search"]["started_at"] == {"gateway": 1, "payments": 1}
    assert answer["tiers"]["payments"]["instances"] == 1
    assert answer["search"]["evaluations"] == 1


def test_runs_footer_names_the_rate_limit_as_the_bottleneck(tmp_path: Path) -> None:
    path = tmp_path / "rl.yaml"
    path.write_text(_text(250))
    result = runner.invoke(app, ["run", str(path)])
    footer = " ".join(result.output.split())
    assert (
        "gateway's rate_limit is the bottleneck: it lets through at most 100.0/s of the "
        "250.0/s offered now (it refuses the rest)." in footer
    )
    assert "payments is the bottleneck" not in footer
