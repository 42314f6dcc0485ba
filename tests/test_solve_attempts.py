"""Stories of `capsim solve` counting the attempts of calls with timeouts, errors and retries.

An API calls a database with a 30 ms timeout and up to 2 retries 20 ms apart. An attempt the
caller gives up on keeps the database busy, and its retry comes on top: the simulation offers
the database about 2,107 attempts a second for 2,000 calls. solve used to offer it the 2,000
calls alone (its retries counted only the attempts a full waiting room refused), with no error
and no backoff in the API's holding time. It now takes the share of attempts that time out from
the database's response time distribution, counts a fault's steady error rate exactly, and
holds a blocking caller through its attempts (each cut at the timeout) and the backoff.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import capsim
from capsim.model.types import Model

SCENARIO = """\
name: attempts
seed: 1
simulation: {{duration: 20s, warmup: 2s}}
traffic:
  orders: {{entry: api, rate: {rate}/s}}
tiers:
  api:
    concurrency: 400
    service_time: {{dist: exponential, mean: 1ms}}
    calls:
      - {call}
  db:
    concurrency: {workers}
    service_time: {{dist: exponential, mean: 10ms}}
{faults}"""


def model(
    tmp_path: Path, call: str, *, rate: float = 2000, workers: int = 32, faults: str = ""
) -> Model:
    path = tmp_path / "attempts.yaml"
    path.write_text(SCENARIO.format(call=call, rate=rate, workers=workers, faults=faults))
    return capsim.build_model(capsim.load_scenario(path))


RETRIED = (
    "{tier: db, timeout: 30ms, retries: {max: 2, backoff: constant, base: 20ms, jitter: none}}"
)
ERRORS = "faults:\n  - {at: 0s, tier: db, error_rate: 10%}\n"


def test_timed_out_attempts_come_back_as_retries_as_the_simulation_offers_them(
    tmp_path: Path,
) -> None:
    scenario = model(tmp_path, RETRIED)
    estimate = capsim.solve(scenario, capsim_version="t")
    measured = capsim.simulate(scenario).data
    db, api = estimate["tiers"]["db"], estimate["tiers"]["api"]
    # About 5% of attempts wait longer than 30 ms (mostly the 10 ms work's own tail, e^-3).
    assert db["offered_rate"] == pytest.approx(measured["tiers"]["db"]["offered_rate"], rel=0.02)
    assert api["occupancy"] == pytest.approx(measured["tiers"]["api"]["occupancy"], rel=0.05)
    latency = estimate["classes"]["orders"]["latency"]["mean"]
    assert latency == pytest.approx(measured["classes"]["orders"]["latency"]["mean"], rel=0.05)


def test_a_timeout_without_retries_fails_the_share_of_answers_slower_than_it(
    tmp_path: Path,
) -> None:
    # M/M/1 at 50/s of 10 ms: the response is exponential with rate 100 - 50 = 50/s, so a 40 ms
    # timeout fails e^-2 of the calls, and the caller waits E[min(R, 40 ms)] = (1 - e^-2) / 50.
    scenario = model(tmp_path, "{tier: db, timeout: 40ms}", rate=50, workers=1)
    data = capsim.solve(scenario, capsim_version="t")
    assert data["tiers"]["db"]["offered_rate"] == pytest.approx(50.0)
    assert data["classes"]["orders"]["error_rate"] == pytest.approx(math.exp(-2), rel=1e-3)
    waited = (1 - math.exp(-2)) / 50
    assert data["classes"]["orders"]["latency"]["mean"] == pytest.approx(0.001 + waited, rel=1e-3)


def test_a_steady_error_rate_is_retried_exactly(tmp_path: Path) -> None:
    # 10% of the database's answers are errors for the whole run; 2 retries: 1.11 attempts a
    # call, and a call fails when all three fail (0.1%).
    scenario = model(tmp_path, "{tier: db, retries: {max: 2}}", faults=ERRORS)
    data = capsim.solve(scenario, capsim_version="t")
    assert data["tiers"]["db"]["offered_rate"] == pytest.approx(2000 * 1.11, rel=1e-9)
    assert data["classes"]["orders"]["error_rate"] == pytest.approx(0.001, rel=1e-6)


def test_without_retries_a_steady_error_rate_is_the_class_s_errors(tmp_path: Path) -> None:
    data = capsim.solve(model(tmp_path, "db", faults=ERRORS), capsim_version="t")
    assert data["tiers"]["db"]["offered_rate"] == pytest.approx(2000.0)
    assert data["classes"]["orders"]["error_rate"] == pytest.approx(0.1, rel=1e-9)


def test_a_blocking_caller_is_held_through_the_backoff(tmp_path: Path) -> None:
    # 20% errors, 3 retries 50 ms apart: retry n is made with probability 0.2^n, so a call waits
    # 50 ms x (0.2 + 0.04 + 0.008) = 12.4 ms of backoff on average, beside its 1.248 attempts.
    call = "{tier: db, retries: {max: 3, backoff: constant, base: 50ms, jitter: none}}"
    faults = "faults:\n  - {at: 0s, tier: db, error_rate: 20%}\n"
    data = capsim.solve(model(tmp_path, call, rate=100, faults=faults), capsim_version="t")
    db = data["tiers"]["db"]
    attempts = 1 + 0.2 + 0.04 + 0.008
    assert db["offered_rate"] == pytest.approx(100 * attempts, rel=1e-9)
    answer = 0.010 + db["wait"]["mean"]
    held = 0.001 + attempts * answer + 0.05 * (0.2 + 0.04 + 0.008)
    assert data["tiers"]["api"]["occupancy"] == pytest.approx(100 * held / 400, rel=1e-6)


def test_a_retry_storm_that_would_sustain_itself_is_named(tmp_path: Path) -> None:
    # docs/dynamic.md's metastable database: 60/s of 10 ms, a 100 ms timeout, 3 retries. Were
    # every attempt to time out, 240 attempts/s would need 2.4 databases: a burst tips it into
    # a storm the simulation never leaves. A 10% budget bounds it at 66/s (66% busy).
    def notes(retries: str) -> list[str]:
        call = f"{{tier: db, timeout: 100ms, retries: {retries}}}"
        scenario = model(tmp_path, call, rate=60, workers=1)
        return capsim.solve(scenario, capsim_version="t")["notes"]

    storm = [note for note in notes("{max: 3, backoff: none}") if "retry storm" in note]
    assert len(storm) == 1
    assert "offer it 240.0/s" in storm[0] and "2.40 times" in storm[0]
    assert not [note for note in notes("{max: 3, backoff: none, budget: 10%}") if "storm" in note]
