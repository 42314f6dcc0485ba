"""Protection: rate limits, LIFO queues, dropping abandoned requests, bulkheads, breakers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.summary import summarise
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.runner import choose_path
from capsim.model.types import CircuitBreaker, Fault, Model, RateLimit
from capsim.scenario import validate_file
from modelkit import Call, ProfilePoint, const, model, open_class, tier

runner = CliRunner()

# Three requests, at 0.1, 0.2 and 0.3 s, then nothing.
THREE = (ProfilePoint(0.0, 10.0), ProfilePoint(0.35, 10.0), ProfilePoint(0.35, 0.0))


def three_requests(*tiers: dict[str, object]) -> Model:
    return model(list(tiers), [open_class("web", 0, 10.0, arrivals="constant", profile=THREE)])


def test_a_rate_limit_refuses_what_its_token_bucket_cannot_cover() -> None:
    # 10/s against 5/s with a burst of 1: the bucket refills half a token between arrivals, so
    # every other request is refused (the first one spends the full bucket).
    m = model(
        [tier("api", const(0.01))],
        [open_class("web", 0, 10.0, arrivals="constant")],
        duration=10.0,
    )
    m = replace(m, tiers=(replace(m.tiers[0], rate_limit=RateLimit(rate=5.0, burst=1)),))
    result = run_events(m, 0)
    web, api = result.classes[0], result.tiers[0]
    assert web.arrivals in (99, 100)  # the last arrival falls at 10 s give or take rounding
    assert api.rate_limited == web.arrivals // 2 and web.errors == api.rate_limited
    assert web.completed == web.arrivals - api.rate_limited
    assert api.arrivals == web.arrivals and api.rejected == api.rate_limited
    assert choose_path(m) == (
        "events",
        "tier 'api' has a rate limit, whose refusals depend on recent arrivals",
    )


def test_a_burst_passes_up_to_the_bucket_size() -> None:
    # 20 requests in 0.2 s (100/s) against 1/s with a burst of 5: five pass, fifteen do not.
    burst = (ProfilePoint(0.0, 100.0), ProfilePoint(0.205, 100.0), ProfilePoint(0.205, 0.0))
    m = model(
        [tier("api", const(0.001), concurrency=100)],
        [open_class("web", 0, 100.0, arrivals="constant", profile=burst)],
        duration=2.0,
    )
    m = replace(m, tiers=(replace(m.tiers[0], rate_limit=RateLimit(rate=1.0, burst=5)),))
    result = run_events(m, 0)
    assert result.classes[0].completed == 5 and result.tiers[0].rate_limited == 15


@pytest.mark.parametrize(
    ("discipline", "latencies"), [("fifo", [1.0, 1.9, 2.8]), ("lifo", [1.0, 1.8, 2.9])]
)
def test_lifo_serves_the_newest_waiting_request_first(discipline: str, latencies: list[float]):
    # One worker, 1 s each. The first is served at once; then FIFO takes 0.2 s before 0.3 s,
    # LIFO 0.3 s before 0.2 s.
    m = three_requests(tier("app", const(1.0)))
    m = replace(m, tiers=(replace(m.tiers[0], queue_discipline=discipline),))
    web = run_events(m, 0).classes[0]
    assert web.completed == 3
    assert (web.latency.min, web.latency.total, web.latency.max) == pytest.approx(
        (latencies[0], sum(latencies), latencies[2])
    )


def caller_gives_up(drop_abandoned: bool) -> Model:
    # The app gives up on the db after 0.5 s; the db's one worker takes 1 s per request.
    m = three_requests(
        tier("app", const(0.0), concurrency=10, calls=(Call(1, timeout=0.5),)),
        tier("db", const(1.0)),
    )
    db = replace(m.tiers[1], drop_abandoned=drop_abandoned)
    return replace(m, tiers=(m.tiers[0], db))


def test_a_callee_that_drops_abandoned_requests_does_no_wasted_work() -> None:
    # All three calls time out (at 0.6, 0.7, 0.8 s). Without dropping, the db works 3 s on
    # answers no one waits for; dropping, it skips the two that were still waiting at 1.1 s.
    wasted = run_events(caller_gives_up(False), 0).tiers[1]
    dropping = run_events(caller_gives_up(True), 0).tiers[1]
    assert wasted.busy_time == pytest.approx(3.0) and wasted.dropped == 0
    assert dropping.busy_time == pytest.approx(1.0) and dropping.dropped == 2
    assert dropping.call_timeouts == 3


def test_a_bulkhead_caps_the_calls_in_flight_from_one_tier_to_another() -> None:
    m = three_requests(
        tier("app", const(0.0), concurrency=10, calls=(Call(1, bulkhead=2),)),
        tier("db", const(1.0), concurrency=10),
    )
    result = run_events(m, 0)
    web, db = result.classes[0], result.tiers[1]
    assert (web.completed, web.errors) == (2, 1)
    assert db.arrivals == 2 and db.bulkhead_rejected == 1


def breaker_model() -> Model:
    # 10 calls a second; the db answers every call with an error from 10 s to 20 s.
    breaker = CircuitBreaker(error_rate=0.5, window=5.0, min_calls=10, open_for=3.0, probes=2)
    m = model(
        [
            tier("app", const(0.0), concurrency=10, calls=(Call(1, circuit_breaker=breaker),)),
            tier("db", const(0.01), concurrency=4),
        ],
        [open_class("web", 0, 10.0, arrivals="constant")],
        duration=30.0,
    )
    return replace(m, faults=(Fault(10.0, 20.0, 1, error_rate=1.0),), timeseries=True)


def test_a_circuit_breaker_opens_on_errors_probes_while_open_and_closes_after_recovery():
    m = replace(breaker_model(), timeseries_bucket=1.0)
    result = run_events(m, 0)
    db = result.tiers[1]
    # Opens after 10 failures (10 - 11 s); then every 3 s two probes fail and it opens again,
    # until the fault ends at 20 s: 11 - 20 s short-circuits about 90 calls less the probes.
    assert 70 <= db.short_circuited <= 90
    series = summarise(m, [result], capsim_version="test").data["timeseries"]
    db_offered = np.asarray(series["tiers"]["db"]["in_flight"])
    web_errors = series["classes"]["web"]["error_rate"]
    assert web_errors[:10] == [0.0] * 10
    assert all(e == 1.0 for e in web_errors[11:20])  # failed fast or by the db
    assert web_errors[24:] == [0.0] * 6  # closed again after the first good probes
    assert db_offered[:10].sum() > 0


SCENARIO = """\
name: protect
simulation: {{duration: 5s, warmup: 0s}}
traffic:
  web: {{entry: app, rate: 50/s}}
tiers:
  app:
    service_time: 1ms
    {app}
    calls: [{{tier: db, {call}}}]
  db: {{service_time: 5ms, {db}}}
"""


def write(tmp_path: Path, app_keys: str = "", call: str = "", db: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        SCENARIO.format(app=app_keys or "blocking: true", call=call or "repeat: 1", db=db)
    )
    return path


def test_the_keys_reach_the_model_and_the_json(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        app_keys="rate_limit: {rate: 100/s, burst: 20}",
        call="bulkhead: 8, circuit_breaker: {error_rate: 30%, window: 5s, min_calls: 5}",
        db="queue_discipline: lifo, drop_abandoned: true",
    )
    m = capsim.build_model(capsim.load_scenario(path))
    app_tier, db = m.tiers
    assert app_tier.rate_limit == RateLimit(100.0, 20)
    call = app_tier.work[0].calls[0]
    assert isinstance(call, Call) and call.bulkhead == 8
    assert call.circuit_breaker == CircuitBreaker(error_rate=0.3, window=5.0, min_calls=5)
    assert db.queue_discipline == "lifo" and db.drop_abandoned
    result = runner.invoke(app, ["run", str(path), "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["tiers"]["app"]["rate_limited"] == 0
    assert data["tiers"]["db"]["short_circuited"] == 0
    assert data["tiers"]["db"]["bulkhead_rejected"] == 0
    assert data["tiers"]["db"]["dropped"] == 0


@pytest.mark.parametrize(
    ("keys", "path", "message"),
    [
        (
            {"app_keys": "rate_limit: {burst: 5}"},
            "tiers.app.rate_limit.rate",
            "missing required key 'rate'",
        ),
        (
            {"app_keys": "rate_limit: {rate: 0/s}"},
            "tiers.app.rate_limit.rate",
            "not greater than 0",
        ),
        (
            {"db": "queue_discipline: random"},
            "tiers.db.queue_discipline",
            "unknown queue_discipline 'random'",
        ),
        ({"call": "bulkhead: 0"}, "tiers.app.calls[0].bulkhead", "is not positive"),
        (
            {"call": "circuit_breaker: {error_rate: 2}"},
            "tiers.app.calls[0].circuit_breaker.error_rate",
            "outside [0, 1]",
        ),
        (
            {"call": "circuit_breaker: {open: 3s}"},
            "tiers.app.calls[0].circuit_breaker.open",
            "unknown key 'open'",
        ),
        ({"db": "drop_abandoned: sometimes"}, "tiers.db.drop_abandoned", "expected true or false"),
    ],
)
def test_bad_protection_settings_are_refused_with_their_location(
    tmp_path: Path, keys: dict[str, str], path: str, message: str
) -> None:
    scenario = write(tmp_path, **keys)
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output
