"""Stories of `capsim solve` counting retried attempts in the load a callee is offered.

A payments service with 2 workers and room for 2 waiting turns away about a fifth of the
150 calls a second it gets; the API retries each refused call up to 3 times. The simulation
offers payments about 191 to 198 attempts a second; solve used to offer it the 150 calls
alone. A retried call now counts its expected attempts, 1 + p + p^2 + p^3 at the callee's
loss p, and the class fails only where every attempt fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.analysis.sizing_start import judge
from capsim.model.types import Model, Slo

PAYMENTS = """\
name: payments
seed: 3
simulation: {{duration: 20s, warmup: 2s, replications: 1}}
traffic:
  orders: {{entry: api, rate: 150/s}}
tiers:
  api:
    concurrency: 200
    blocking: false
    service_time: {{dist: exponential, mean: 1ms}}
    calls:
      - {call}
  payments:
    concurrency: 2
    max_queue: 2
    service_time: {{dist: exponential, mean: 10ms}}
"""


def payments(tmp_path: Path, call: str) -> Model:
    path = tmp_path / "payments.yaml"
    path.write_text(PAYMENTS.format(call=call))
    return capsim.build_model(capsim.load_scenario(path))


def test_each_refused_attempt_comes_back_as_a_retry(tmp_path: Path) -> None:
    data = capsim.solve(
        payments(tmp_path, "{tier: payments, retries: {max: 3}}"), capsim_version="t"
    )
    tier = data["tiers"]["payments"]
    p = tier["rejected_rate"] / tier["offered_rate"]
    assert 0.1 < p < 0.3
    assert tier["offered_rate"] == pytest.approx(150 * (1 + p + p**2 + p**3), rel=1e-6)
    # An order fails only when all four attempts are refused.
    assert data["classes"]["orders"]["error_rate"] == pytest.approx(p**4, rel=1e-6)


def test_the_attempts_match_what_the_simulation_offers(tmp_path: Path) -> None:
    model = payments(tmp_path, "{tier: payments, retries: {max: 3}}")
    estimate = capsim.solve(model, capsim_version="t")["tiers"]["payments"]
    measured = capsim.simulate(model).data["tiers"]["payments"]
    assert estimate["offered_rate"] == pytest.approx(measured["offered_rate"], rel=0.1)
    assert estimate["utilization"] == pytest.approx(measured["utilization"], abs=0.05)


def test_a_retry_budget_caps_the_extra_attempts(tmp_path: Path) -> None:
    # At most 10% of first attempts are retried, whatever the loss.
    call = "{tier: payments, retries: {max: 3, budget: 10%}}"
    tier = capsim.solve(payments(tmp_path, call), capsim_version="t")["tiers"]["payments"]
    assert tier["offered_rate"] == pytest.approx(150 * 1.1, rel=1e-6)


def test_calls_without_retries_offer_each_call_once(tmp_path: Path) -> None:
    data = capsim.solve(payments(tmp_path, "payments"), capsim_version="t")
    tier = data["tiers"]["payments"]
    assert tier["offered_rate"] == pytest.approx(150.0)
    assert data["classes"]["orders"]["error_rate"] == pytest.approx(
        tier["rejected_rate"] / 150.0, rel=1e-6
    )


def test_size_s_analytic_start_judges_the_retried_load(tmp_path: Path) -> None:
    # A 70% utilization objective: the calls alone keep payments 66% busy; with their retries
    # it is 75% busy, so the analytic start must give it more than this.
    def verdict(call: str) -> bool:
        model = payments(tmp_path, call)
        slo = Slo(
            text="payments utilization <= 70%",
            statistic="utilization",
            limit=0.7,
            tier_index=model.tier_index["payments"],
        )
        result = judge(model, [slo], capsim.__version__)
        assert result is not None
        return result.meets

    assert verdict("payments") is True
    assert verdict("{tier: payments, retries: {max: 3}}") is False
