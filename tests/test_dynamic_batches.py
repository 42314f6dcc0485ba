"""Queue consumers that take messages in batches, and partitions that cap their parallelism."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import capsim
from capsim.analysis.solve import solve
from capsim.cli.app import app
from capsim.engine.events import run_events
from capsim.engine.runner import choose_path
from capsim.engine.vectorised import _tier_obstacle
from capsim.model.types import Call, Model
from capsim.scenario import validate_file
from modelkit import Distribution, const, exp, model, open_class, tier

runner = CliRunner()


def queue(
    rate: float,
    service: Distribution,
    consumers: int = 1,
    arrivals: str = "constant",
    duration: float = 60.0,
    **settings: object,
) -> Model:
    # A front tier that does nothing but publish to the queue `jobs`.
    m = model(
        [
            tier("api", const(0.0), concurrency=1000, calls=(Call(1),)),
            tier("jobs", service, kind="queue", concurrency=consumers),
        ],
        [open_class("web", 0, rate, arrivals=arrivals)],
        duration=duration,
    )
    jobs = replace(m.tiers[1], **settings)  # type: ignore[arg-type]
    return replace(m, tiers=(m.tiers[0], jobs))


def consumed_per_second(m: Model) -> float:
    return run_events(m, 0).tiers[1].completed / m.simulation.duration


def test_batching_lifts_a_consumer_from_one_message_per_service_time_to_a_batch():
    # One consumer, 10 ms a go, 500 messages/s offered: one at a time it does 100/s; in batches
    # of up to 100 it keeps up (each 10 ms go takes the ~5 messages that arrived meanwhile).
    assert consumed_per_second(queue(500.0, const(0.01))) == pytest.approx(100.0, rel=0.01)
    batched = queue(500.0, const(0.01), batch_size=100, batch_linger=0.05)
    assert consumed_per_second(batched) == pytest.approx(500.0, rel=0.01)


def test_a_batch_waits_at_most_linger_for_its_first_message():
    # 10 messages/s against batches of 100 with a 0.45 s linger: every batch leaves 0.45 s after
    # its first message with the 5 that came by then, so the consumer works 10 ms per 5.
    m = queue(10.0, const(0.01), batch_size=100, batch_linger=0.45)
    result = run_events(m, 0)
    jobs = result.tiers[1]
    batches = jobs.busy_time / 0.01
    assert jobs.completed / batches == pytest.approx(5.0, rel=0.03)
    assert jobs.age is not None
    # A message waits 0.45, 0.35, ..., 0.05 s for its batch, then 10 ms: 0.26 s on average.
    assert jobs.age.total / jobs.age.n == pytest.approx(0.26, abs=0.01)


def test_partitions_cap_the_consumers_working_at_once():
    # 8 consumers, 100 ms each (exponential), offered 30/s: enough consumers for 80/s, but with
    # 2 partitions only 2 work at once, so at most 20/s (M/M/min(c, N) = M/M/2 saturated).
    capped = queue(30.0, exp(0.1), consumers=8, arrivals="poisson", duration=200.0, partitions=2)
    assert consumed_per_second(capped) == pytest.approx(20.0, rel=0.05)
    wide = queue(30.0, exp(0.1), consumers=8, arrivals="poisson", duration=200.0, partitions=8)
    assert consumed_per_second(wide) == pytest.approx(30.0, rel=0.05)
    # Below saturation, utilisation is the offered work over every consumer's time.
    light = queue(10.0, exp(0.1), consumers=4, arrivals="poisson", duration=400.0, partitions=2)
    jobs = run_events(light, 0).tiers[1]
    assert jobs.busy_time / (4 * 400.0) == pytest.approx(10.0 * 0.1 / 4, rel=0.05)


SCENARIO = """\
name: batches
simulation: {{duration: 20s, warmup: 0s}}
traffic:
  web: {{entry: api, rate: 200/s}}
tiers:
  api: {{service_time: 1ms, concurrency: 10, calls: [jobs]}}
  jobs: {{type: queue, service_time: 20ms, consumers: 4, {extra}}}
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(extra=extra))
    return path


def test_a_batched_partitioned_queue_runs_on_events(tmp_path: Path) -> None:
    path = write(tmp_path, "batch: {size: 50, linger: 20ms}, partitions: 2")
    m = capsim.build_model(capsim.load_scenario(path))
    jobs = m.tiers[1]
    assert (jobs.batch_size, jobs.batch_linger, jobs.partitions) == (50, 0.02, 2)
    assert choose_path(m)[0] == "events"
    assert _tier_obstacle(m, jobs) == "tier 'jobs' consumes its messages in batches"
    data = capsim.run_file(path).data
    assert data["tiers"]["jobs"]["throughput"] == pytest.approx(200.0, rel=0.1)


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ("batch: {size: 0}", "tiers.jobs.batch.size", "positive integer"),
        ("batch: {linger: 5ms}", "tiers.jobs.batch.size", "size"),
        ("batch: {size: 10, linger: soon}", "tiers.jobs.batch.linger", "soon"),
        ("batch: {size: 10, wait: 5ms}", "tiers.jobs.batch.wait", "wait"),
        ("partitions: 0", "tiers.jobs.partitions", "positive integer"),
        ("partitions: 3, queue_discipline: lifo", "tiers.jobs.queue_discipline", "fifo"),
        ("batch: {size: 5}, priorities: [web]", "tiers.jobs.priorities", "priorities"),
    ],
)
def test_bad_batch_and_partition_settings_are_refused_with_their_location(
    tmp_path: Path, extra: str, path: str, message: str
) -> None:
    scenario = write(tmp_path, extra)
    problems = validate_file(scenario, [])
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    result = runner.invoke(app, ["run", str(scenario)])
    assert result.exit_code == 2 and "Traceback" not in result.output


PARTITIONED = """\
name: partitioned-orders
seed: 3
simulation: {duration: 800s, warmup: 20s}
traffic:
  checkout: {entry: api, rate: 50/s}
tiers:
  api: {service_time: 1ms, concurrency: 10, calls: [orders]}
  orders:
    type: queue
    consumers: 6
    partitions: 4
    service_time: {dist: exponential, mean: 50ms}
"""


def round_robin_partition_wait(partitions: int, rate: float, mean: float) -> float:
    # Each partition gets every N-th message: Erlang-N gaps at rate / N into one exponential
    # worker, a GI/M/1 queue. sigma solves sigma = A*(mu (1 - sigma)), A* the gaps' transform.
    lam, mu, sigma = rate / partitions, 1.0 / mean, 0.5
    for _ in range(500):
        sigma = (partitions * lam / (partitions * lam + mu * (1.0 - sigma))) ** partitions
    return sigma / (mu * (1.0 - sigma))


def test_solve_waits_at_each_partition_not_at_one_pooled_queue(tmp_path: Path) -> None:
    # 6 consumers on 4 partitions, 50 ms a message, 50 messages/s: every partition has a
    # consumer for it, so each is its own FIFO of one worker fed every 4th message (E4/M/1),
    # not one M/M/4 queue (Erlang C says 10 ms; the partitions wait about 41 ms).
    path = tmp_path / "orders.yaml"
    path.write_text(PARTITIONED)
    model = capsim.build_model(capsim.load_scenario(path))
    orders = solve(model, capsim_version="test")["tiers"]["orders"]
    expected = round_robin_partition_wait(4, 50.0, 0.05)
    assert expected == pytest.approx(0.0415, abs=0.0005)
    assert orders["wait"]["mean"] == pytest.approx(expected, rel=1e-6)
    assert orders["utilization"] == pytest.approx(50.0 * 0.05 / 4)
    assert orders["queue_length"]["mean"] == pytest.approx(50.0 * expected, rel=1e-6)
    assert "E4/M/1" in str(orders["method"])
    # The run agrees: 40,000 messages, the mean wait within 10% (about 4 standard errors).
    run = capsim.run_file(str(path)).data["tiers"]["orders"]
    assert run["wait"]["mean"] == pytest.approx(expected, rel=0.10)
