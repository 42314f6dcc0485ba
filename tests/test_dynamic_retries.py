"""Timeouts and retries on calls: the wasted work they leave behind, and the storms they start."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.runner import choose_path
from capsim.model.types import Model, Retry
from modelkit import Call, ProfilePoint, const, exp, model, open_class, tier

runner = CliRunner()


def caller_and_db(
    call: Call, db_service: float, *, rate: float, duration: float, db_workers: int = 2
) -> Model:
    # app: one blocking worker that does no work of its own and makes the call.
    return model(
        [
            tier("app", const(0.0), concurrency=1000, calls=(call,)),
            tier("db", const(db_service), concurrency=db_workers),
        ],
        [open_class("web", 0, rate, arrivals="constant")],
        duration=duration,
    )


def test_a_timed_out_attempt_keeps_the_callee_busy_while_the_retry_runs_beside_it() -> None:
    # One request at t = 5 s. The db takes 1 s; the caller gives up after 0.3 s and retries at
    # once; the retry times out at 5.6 s and the request fails there.
    call = Call(1, timeout=0.3, retry=Retry(max=1, backoff="none", jitter="none"))
    result = run_events(caller_and_db(call, 1.0, rate=0.2, duration=10.0), 0)
    web, app_run, db = result.classes[0], result.tiers[0], result.tiers[1]
    assert (web.arrivals, web.completed, web.errors) == (1, 0, 1)
    assert db.arrivals == 2 and db.retries == 1 and db.call_timeouts == 2
    assert db.completed == 2  # both attempts ran to the end: wasted work
    assert db.busy_time == pytest.approx(2.0)  # [5, 6) and [5.3, 6.3)
    assert app_run.occupied_time == pytest.approx(0.6)  # the caller let go at 5.6 s


def test_exponential_backoff_spaces_the_attempts_and_stops_at_the_cap() -> None:
    # Attempts at 5, 5.4, 5.85, 6.3 s (waits 0.1, 0.15 = cap, 0.15); each times out after 0.3 s.
    retry = Retry(max=3, backoff="exponential", base=0.1, cap=0.15, jitter="none")
    call = Call(1, timeout=0.3, retry=retry)
    result = run_events(caller_and_db(call, 1.0, rate=0.2, duration=10.0, db_workers=8), 0)
    db, app_run = result.tiers[1], result.tiers[0]
    assert db.arrivals == 4 and db.retries == 3 and db.call_timeouts == 4
    assert app_run.occupied_time == pytest.approx(1.6)
    assert db.busy_time == pytest.approx(4.0)


def test_a_retry_that_succeeds_answers_the_caller() -> None:
    # The db is busy for 1 s with the first attempt; its one worker takes the retry next.
    call = Call(1, timeout=1.5, retry=Retry(max=1, backoff="none", jitter="none"))
    result = run_events(caller_and_db(call, 1.0, rate=0.2, duration=10.0, db_workers=1), 0)
    web = result.classes[0]
    assert (web.completed, web.errors) == (1, 0)
    assert web.latency.max == pytest.approx(1.0)
    assert result.tiers[1].retries == 0


def test_a_refused_call_is_retried_too() -> None:
    # max_queue 0 and one worker: the second of two simultaneous calls is refused on the spot;
    # constant backoff of 1.5 s brings its retry after the first is done.
    calls = (Call(1, retry=Retry(max=1, backoff="constant", base=1.5, jitter="none")),)
    m = model(
        [
            tier("app", const(0.0), concurrency=10, calls=calls),
            tier("db", const(1.0), max_queue=0),
        ],
        [
            open_class("a", 0, 0.2, arrivals="constant"),
            open_class("b", 0, 0.2, arrivals="constant"),
        ],
        duration=10.0,
    )
    result = run_events(m, 0)
    assert sum(c.completed for c in result.classes) == 2
    assert sum(c.errors for c in result.classes) == 0
    assert result.tiers[1].retries == 1
    assert sorted(c.latency.max for c in result.classes) == pytest.approx([1.0, 2.5])


def test_a_retry_budget_caps_retries_at_its_share_of_calls_plus_the_banked_tokens() -> None:
    # Every attempt times out; without a budget each call would retry 3 times.
    retry = Retry(max=3, backoff="none", jitter="none", budget=0.1)
    call = Call(1, timeout=0.1, retry=retry)
    result = run_events(caller_and_db(call, 1.0, rate=10.0, duration=100.0, db_workers=10000), 0)
    calls = result.classes[0].arrivals
    retries = result.tiers[1].retries
    assert calls >= 999
    assert 0.1 * calls - 1 <= retries <= 0.1 * calls + 10


def amplification_model(p: float, retries: int) -> Model:
    # Independent failures: exponential work with no queueing (many workers), so an attempt
    # outlives the timeout tau with probability p = exp(-tau / mean).
    mean = 0.02
    call = Call(1, timeout=mean * math.log(1.0 / p), retry=Retry(max=retries, backoff="none"))
    return model(
        [
            tier("app", const(0.0), concurrency=10000, calls=(call,)),
            tier("db", exp(mean), concurrency=400),
        ],
        [open_class("web", 0, 200.0)],
        duration=100.0,
        warmup=2.0,
    )


@pytest.mark.parametrize(("p", "retries"), [(0.5, 3), (0.3, 1), (0.1, 3)])
def test_attempts_per_request_match_the_retry_amplification_oracle(p: float, retries: int):
    # ORACLES section 9: attempts per request (1 - p^(r+1)) / (1 - p); success 1 - p^(r+1).
    result = run_events(amplification_model(p, retries), 0)
    web, db = result.classes[0], result.tiers[1]
    attempts = (1 - p ** (retries + 1)) / (1 - p)
    assert db.arrivals / web.arrivals == pytest.approx(attempts, rel=0.02)
    assert db.retries / web.arrivals == pytest.approx(attempts - 1, rel=0.05, abs=0.005)
    failure = p ** (retries + 1)
    sd = math.sqrt(failure * (1 - failure) / web.arrivals)
    assert web.errors / web.arrivals == pytest.approx(failure, abs=4 * sd + 1e-3)


def storm(retry: Retry) -> Model:
    # ORACLES section 9's recipe in milliseconds: an M/M/1 db (mean 10 ms) at 60/s, a 100 ms
    # client timeout (10 service times), immediate retries; 120/s for 1 s (100 service times).
    profile = (
        ProfilePoint(0.0, 60.0),
        ProfilePoint(10.0, 60.0),
        ProfilePoint(10.0, 120.0),
        ProfilePoint(11.0, 120.0),
        ProfilePoint(11.0, 60.0),
    )
    call = Call(1, timeout=0.1, retry=retry)
    m = model(
        [
            tier("app", const(0.0), concurrency=100000, calls=(call,)),
            tier("db", exp(0.01)),
        ],
        [open_class("web", 0, 60.0, profile=profile)],
        duration=30.0,
    )
    return replace(m, timeseries=True, timeseries_bucket=1.0)


def goodput(retry: Retry) -> tuple[float, float]:
    """Successful requests per second before the burst and over the last 10 s."""
    m = storm(retry)
    data = summarise(m, [run_events(m, 0)], capsim_version="test").data
    throughput = np.asarray(data["timeseries"]["classes"]["web"]["throughput"])
    return float(throughput[2:10].mean()), float(throughput[20:].mean())


def test_a_burst_tips_three_immediate_retries_into_a_collapse_that_outlives_it() -> None:
    before, after = goodput(Retry(max=3, backoff="none", jitter="none"))
    assert before == pytest.approx(60.0, rel=0.1)
    assert after < 0.1 * before  # collapsed, and still collapsed 20 s after the burst ended


@pytest.mark.parametrize(
    "retry",
    [Retry(max=0, backoff="none"), Retry(max=3, backoff="none", jitter="none", budget=0.1)],
    ids=["no retries", "10% budget"],
)
def test_without_retries_or_with_a_budget_the_same_burst_is_recovered_from(retry: Retry):
    before, after = goodput(retry)
    # Against the offered 60/s, not against `before`, itself a noisy 8 s estimate: two noisy
    # means 10% apart are only ~1.7 sigma apart, one seed in ten would fail with no collapse.
    assert before == pytest.approx(60.0, rel=0.1)
    assert after == pytest.approx(60.0, rel=0.1)


SCENARIO = """\
name: calls
traffic:
  web: {{entry: app, rate: 10/s}}
tiers:
  app:
    service_time: 1ms
    blocking: false
    calls: [{{tier: db, {call}}}]
  db: {{service_time: 5ms}}
"""


def write(tmp_path: Path, call: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(call=call))
    return path


def test_a_call_with_retries_runs_on_the_event_path_and_reports_its_retries(tmp_path: Path):
    import capsim

    path = write(tmp_path, "timeout: 500ms, retries: {max: 2, budget: 10%}")
    m = capsim.build_model(capsim.load_scenario(path))
    call = m.tiers[0].work[0].calls[0]
    assert isinstance(call, Call)
    assert call.timeout == 0.5
    assert call.retry == Retry(max=2, backoff="exponential", base=0.05, cap=2.0, budget=0.1)
    path_name, reason = choose_path(m)
    assert path_name == "events"
    assert reason == (
        "tier 'app' calls 'db' with a timeout or retries, whose outcome depends on how long "
        "the callee takes"
    )
    result = runner.invoke(app, ["run", str(path), "--duration", "2s", "--format", "json"])
    assert result.exit_code == 0
    assert '"retries": 0' in result.stdout and '"call_timeouts": 0' in result.stdout


@pytest.mark.parametrize(
    ("call", "line", "message"),
    [
        ("timeout: 0s", 8, "'0s' is not greater than 0; timeout must be a duration greater"),
        ("retries: {max: -1}", 8, "-1 is negative; max must be a whole number of 0 or more"),
        (
            "retries: {backoff: linear}",
            8,
            "unknown backoff 'linear' (valid: exponential, constant, none)",
        ),
        ("retries: {jitter: half}", 8, "jitter 'half' (valid: full, none)"),
        ("retries: {budget: 150%}", 8, "'150%' is outside [0, 1]"),
        (
            "retries: {tries: 3}",
            8,
            "unknown key 'tries' (valid keys: max, backoff, base, cap, jitter, budget)",
        ),
    ],
)
def test_bad_timeouts_and_retries_are_refused_with_their_location(
    tmp_path: Path, call: str, line: int, message: str
) -> None:
    from capsim.scenario import validate_file

    path = write(tmp_path, call)
    [problem] = validate_file(path, [])
    assert problem.line == line
    assert problem.path.startswith("tiers.app.calls[0].")
    assert message in problem.message
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
