"""Hostile sizes (issue 13): whatever scales memory or time is estimated before a run starts.

Every hostile scenario runs through the real console entry point in a subprocess, under a cap
on its address space: it must end with exit 2 or 3 (or, where capsim now copes, 0), with a
message and no traceback, and never be killed for memory. A refusal comes before any
replication starts (the child counts the replications it starts); a generous time limit only
tells a hang from a slow machine (no test here times capsim: speed lives in benchmarks/).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from capsim import graphs
from capsim.analysis.sizing import GALLOP_ABOVE, plan_search
from capsim.engine.runner import KILL_WORKER_ENV
from capsim.model.visits import expected_visits
from modelkit import Call, const, model, open_class, tier

#: The address-space cap of every hostile run (the interpreter, numpy and numba take about 1 GiB
#: of it before capsim allocates anything).
MEMORY_CAP = 2 * 1024**3
#: Seconds after which a hostile run is taken for a hang: far beyond what any of them needs on
#: a loaded machine (a few seconds), far below what a run the guards let through would take.
HANG = 300.0

#: `python -m capsim`, with each replication this process starts counted as a line of the file
#: named by its first argument (a pool's workers are other processes: not counted).
_COUNTING = """\
import runpy, sys
import capsim.engine.runner as runner
tally, sys.argv = sys.argv[1], ["capsim", *sys.argv[2:]]
uncounted = runner.run_replication
def counted(*args, **options):
    with open(tally, "a") as lines:
        lines.write("started\\n")
    return uncounted(*args, **options)
runner.run_replication = counted
runpy.run_module("capsim", run_name="__main__", alter_sys=True)
"""


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def capsim(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str, int]:
    """Run `python -m capsim ARGS` under the memory cap: (exit code, stdout, stderr, the number
    of replications it started)."""
    with tempfile.TemporaryDirectory() as folder:
        tally = Path(folder) / "replications"
        try:
            completed = subprocess.run(
                [sys.executable, "-c", _COUNTING, str(tally), *args],
                capture_output=True,
                text=True,
                timeout=HANG,
                preexec_fn=_capped,
                env={**os.environ, **(env or {})},
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"capsim {' '.join(args)} did not end within {HANG:.0f} s: a hang")
        started = len(tally.read_text().splitlines()) if tally.exists() else 0
    return completed.returncode, completed.stdout, completed.stderr, started


def scenario(folder: Path, tiers: dict[str, Any], **extra: Any) -> Path:
    data = {
        "name": "hostile",
        "seed": 1,
        "simulation": {"duration": "10s", "warmup": "1s"},
        "traffic": {"api": {"entry": "a", "rate": "10/s"}},
        "tiers": tiers,
        **extra,
    }
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def refused(
    result: tuple[int, str, str, int], code: int, *fragments: str, before_any_run: bool = True
) -> None:
    """The run stopped with `code`, saying why, with no traceback; by default before it started
    any replication (the estimate, not the work, found the problem)."""
    returncode, _, stderr, started = result
    assert returncode == code, stderr
    assert "Traceback" not in stderr and stderr.startswith("error: ")
    if before_any_run:
        assert started == 0, f"refused after starting {started} replication(s)"
    for fragment in fragments:
        assert fragment in stderr


def ran(result: tuple[int, str, str, int]) -> dict[str, Any]:
    returncode, stdout, stderr, _ = result
    assert returncode == 0, stderr
    assert "Traceback" not in stderr
    data: dict[str, Any] = json.loads(stdout)
    return data


def service(**extra: Any) -> dict[str, Any]:
    return {"type": "service", "service_time": "1ms", "concurrency": 4, **extra}


# ---- memory the guard did not count ----------------------------------------------------------
@pytest.mark.parametrize(
    "duration, warmup",
    [("10us", "1s"), ("1ms", "1h"), ("10us", "10s"), ("1s", "0s")],
    ids=["10us-after-1s", "1ms-after-1h", "10us-after-10s", "plain"],
)
def test_automatic_time_series_buckets_stay_within_2000_over_the_whole_run(
    tmp_path: Path, duration: str, warmup: str
) -> None:
    path = scenario(tmp_path, {"a": service()})
    args = ["run", str(path), "--timeseries", "--format", "json", "--duration", duration]
    args += ["--set", f"simulation.warmup={warmup}", "--set", "traffic.api.rate=1/s"]
    data = ran(capsim(args))
    assert 1 <= len(data["timeseries"]["t"]) <= 2000


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--replications", "1000000", "--duration", "100ms"], "the results of 1,000,000"),
        (["--replications", "30000", "--set", "simulation.timeseries=5ms"], "30,000 replication"),
        (
            ["--replications", "100", "--set", "simulation.timeseries=5ms", "--max-memory", "1GiB"],
            "the results of 100 replication(s)",
        ),
    ],
    ids=["a-million-replications", "series-times-replications", "series-per-replication"],
)
def test_results_kept_per_replication_count_in_the_memory_estimate(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    path = scenario(tmp_path, {"a": service()}, simulation={"duration": "10s", "warmup": "0s"})
    refused(capsim(["run", str(path), *args]), 3, fragment, "--max-memory")


@pytest.mark.parametrize(
    "vary",
    [
        ["tiers.a.service_time=1ms..2ms:100000000"],
        ["tiers.a.concurrency=1..1000000000:1000000000"],
        ["traffic.api.rate=1/s..10/s:401"],
        ["tiers.a.concurrency=1..300:300", "traffic.api.rate=1/s..9/s:300"],
    ],
    ids=["durations", "whole-numbers", "one-too-many", "grid"],
)
def test_a_sweep_counts_its_points_before_building_any(tmp_path: Path, vary: list[str]) -> None:
    path = scenario(tmp_path, {"a": service()})
    args = ["sweep", str(path)] + [part for v in vary for part in ("--vary", v)]
    refused(capsim(args), 2, "more than", "400")


@pytest.mark.parametrize("partitions", [10_000_000, 2**40])
def test_queue_partitions_cost_what_their_messages_cost(tmp_path: Path, partitions: int) -> None:
    path = scenario(
        tmp_path,
        {
            "a": service(calls=["q"]),
            "q": {"type": "queue", "consumers": 2, "partitions": partitions, "service_time": "1ms"},
        },
    )
    data = ran(capsim(["run", str(path), "--format", "json"]))
    assert data["tiers"]["q"]["throughput"] > 0


# ---- deep structures -------------------------------------------------------------------------
def _chain(length: int, probability: float = 1.0) -> dict[str, Any]:
    tiers = {
        f"t{i}": {"type": "service", "service_time": "10us", "concurrency": 4}
        for i in range(length)
    }
    for i in range(length - 1):
        tiers[f"t{i}"]["calls"] = [{"tier": f"t{i + 1}", "probability": probability}]
    tiers["a"] = service(calls=["t0"])
    return tiers


@pytest.mark.parametrize("engine", ["events", "auto"])
@pytest.mark.parametrize("length", [1000, pytest.param(2500, marks=pytest.mark.slow)])
def test_a_call_chain_thousands_of_tiers_deep_runs(
    tmp_path: Path, length: int, engine: str
) -> None:
    path = scenario(tmp_path, _chain(length))
    data = ran(capsim(["run", str(path), "--format", "json", "--engine", engine]))
    # Every request goes down the whole chain (those still in it at the end excepted).
    assert data["tiers"][f"t{length - 1}"]["throughput"] == pytest.approx(
        data["tiers"]["a"]["throughput"], rel=0.05
    )


@pytest.mark.parametrize(
    "retries",
    [{"max": 200, "backoff": "none"}, {"max": 5000, "backoff": "none", "jitter": "none"}],
    ids=["200", "5000"],
)
def test_retries_with_no_backoff_refused_at_once_run(
    tmp_path: Path, retries: dict[str, Any]
) -> None:
    # b turns every call away at once (no waiting room, one worker busy 10 ms): each refusal is
    # retried at once, as deep as `max`.
    path = scenario(
        tmp_path,
        {
            "a": service(concurrency=100, calls=[{"tier": "b", "retries": retries}]),
            "b": {"type": "service", "service_time": "10ms", "max_queue": 0},
        },
        traffic={"api": {"entry": "a", "rate": "200/s"}},
    )
    data = ran(capsim(["run", str(path), "--format", "json", "--duration", "2s"]))
    assert data["tiers"]["b"]["retries"] > 0


@pytest.mark.parametrize("size", [201, 400])
def test_a_loop_spanning_more_than_200_tiers_is_refused_by_validation(
    tmp_path: Path, size: int
) -> None:
    tiers = _chain(size)
    tiers[f"t{size - 1}"]["calls"] = [{"tier": "t0", "probability": 0.5}]
    refused(capsim(["validate", str(scenario(tmp_path, tiers))]), 2, f"loop of {size} tiers")


def test_a_loop_of_200_tiers_is_solved_and_loops_that_never_end_are_still_found(
    tmp_path: Path,
) -> None:
    tiers = _chain(200)
    tiers["t199"]["calls"] = [{"tier": "t0", "probability": 0.5}]
    returncode, _, stderr, _ = capsim(["validate", str(scenario(tmp_path, tiers))])
    assert returncode == 0, stderr
    tiers["t199"]["calls"] = [{"tier": "t0", "repeat": 2}, {"tier": "a", "probability": 0.5}]
    refused(capsim(["validate", str(scenario(tmp_path, tiers))]), 2, "call cycle")


@pytest.mark.parametrize(
    "tiers, classes, fragment",
    [(2000, 2000, "4,000,000 pairs"), (500, 401, "200,500 pairs"), (10_001, 1, "10,001 tiers")],
    ids=["square", "just-over", "too-many-tiers"],
)
def test_tiers_times_classes_is_bounded_by_validation(
    tmp_path: Path, tiers: int, classes: int, fragment: str
) -> None:
    # Every tier describes its work for every class: the model grows with the product.
    data = {
        "name": "wide",
        "traffic": {f"c{k}": {"entry": f"t{k % tiers}", "rate": "1/s"} for k in range(classes)},
        "tiers": {f"t{i}": {"service_time": "1ms"} for i in range(tiers)},
    }
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    refused(capsim(["run", str(path)]), 2, fragment)


def test_the_visits_of_45000_tiers_are_sparse() -> None:
    size = 45_000
    tiers = [
        tier(f"t{i}", const(1e-5), calls=(Call(i + 1, 0.999),) if i + 1 < size else ())
        for i in range(size)
    ]
    built = model(tiers, [open_class("api", 0, 1.0)])
    # A dense solution of the traffic equations holds a 45,000 x 45,000 matrix (16 GB) and
    # takes hours; the sparse one holds a few entries per tier and solves no linear system
    # (the chain has no loop).
    tracemalloc.start()
    try:
        visits = expected_visits(built)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024**2, f"peak {peak / 1024**2:.0f} MiB"
    assert visits[0, 0] == 1.0 and visits[0, -1] == pytest.approx(0.999 ** (size - 1))


@pytest.mark.parametrize("seed", range(6))
def test_sparse_visits_equal_the_dense_solution_of_the_traffic_equations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = 12
    calls: dict[int, dict[int, float]] = {i: {} for i in range(size)}
    for a in range(size):
        for b in rng.choice(size, size=3, replace=False):
            calls[a][int(b)] = float(rng.uniform(0.0, 0.3))  # row sums below 1: finite
    dense = np.zeros((size, size))
    for a, row in calls.items():
        for b, value in row.items():
            dense[a, b] = value
    entry = np.zeros(size)
    entry[0] = 1.0
    exact = np.linalg.solve((np.eye(size) - dense).T, entry)
    solved = graphs.expected_visits(0, calls)
    assert solved is not None
    for node in range(size):
        assert solved.get(node, 0.0) == pytest.approx(exact[node], rel=1e-9, abs=1e-12)


def test_components_come_callers_first_and_a_cycle_is_found_without_recursion() -> None:
    size = 50_000
    successors = {i: [i + 1] for i in range(size - 1)}
    successors[size - 1] = [size // 2]  # a loop over the second half
    components = graphs.strongly_connected(range(size), successors)
    assert [len(c) for c in components[: size // 2]] == [1] * (size // 2)
    assert sorted(components[-1]) == list(range(size // 2, size))
    cycle = graphs.find_cycle(0, successors)
    assert cycle is not None and cycle[0] == cycle[-1] == size // 2


# ---- work the guard did not count ------------------------------------------------------------
@pytest.mark.parametrize(
    "calls, fragment",
    [
        ([{"tier": "b", "repeat": 100_000}], "100,000 tier visits"),
        ([{"parallel": ["b"] * 12_000}], "12,000 tier visits"),
        (["b"] * 11_000, "11,000 tier visits"),
        ([{"tier": "b", "repeat": 200}, {"tier": "c", "repeat": 200}], "20,400 tier visits"),
    ],
    ids=["repeat", "parallel", "call-steps", "repeats-compound"],
)
def test_a_request_that_fans_out_beyond_10000_visits_is_refused(
    tmp_path: Path, calls: list[Any], fragment: str
) -> None:
    path = scenario(
        tmp_path,
        {
            "a": service(calls=calls),
            "b": service(calls=[{"tier": "c", "repeat": 100}] if len(calls) == 2 else []),
            "c": service(),
        },
    )
    refused(capsim(["run", str(path)]), 3, fragment, "at most 10,000 per request")


@pytest.mark.parametrize(
    "call",
    [
        {"tier": "b", "retries": {"max": 100_000, "backoff": "none"}},
        {"tier": "b", "repeat": 100, "retries": {"max": 200, "backoff": "constant", "base": "1ns"}},
    ],
    ids=["retries", "retried-repeats"],
)
def test_a_call_that_may_be_attempted_beyond_10000_times_per_visit_is_refused(
    tmp_path: Path, call: dict[str, Any]
) -> None:
    path = scenario(tmp_path, {"a": service(calls=[call]), "b": service(max_queue=0)})
    refused(capsim(["run", str(path)]), 3, "every retry allowed", "retries.max")


@pytest.mark.parametrize(
    "tiers, extra, fragment",
    [
        ({"a": service(autoscale={"max": 10, "sync_period": "1us"})}, {}, "sync_period"),
        ({"a": service(autoscale={"max": 10, "sync_period": "50us"})}, {}, "sync_period"),
        (
            {"a": service(instances=2, health_check={"interval": "1us"})},
            {"faults": [{"at": "1s", "tier": "a", "lose": 1}]},
            "health_check.interval",
        ),
    ],
    ids=["sync-1us", "sync-50us", "health-check-1us"],
)
def test_a_periodic_timer_firing_too_often_is_refused(
    tmp_path: Path, tiers: dict[str, Any], extra: dict[str, Any], fragment: str
) -> None:
    path = scenario(tmp_path, tiers, **extra)
    refused(capsim(["run", str(path)]), 3, fragment, "at most 100,000 times")


@pytest.mark.parametrize(
    "calls, limit",
    [(["b"], "1.5e4"), ([{"tier": "b", "repeat": 50}], "5e5"), ([{"parallel": ["b", "b"]}], "2e4")],
    ids=["one-call", "repeat", "parallel"],
)
def test_tier_visits_count_against_max_requests(
    tmp_path: Path, calls: list[Any], limit: str
) -> None:
    path = scenario(tmp_path, {"a": service(calls=calls), "b": service()})
    args = ["run", str(path), "--set", "traffic.api.rate=1000/s", "--max-requests", limit]
    refused(capsim(args), 3, "tier visits", "--max-requests")


# ---- a dead process-pool worker --------------------------------------------------------------
@pytest.mark.parametrize("victim", [0, 3, 7])
def test_a_killed_pool_worker_stops_the_run_with_exit_3(tmp_path: Path, victim: int) -> None:
    path = scenario(tmp_path, {"a": service()})
    args = ["run", str(path), "--replications", "8", "--executor", "process", "--workers", "2"]
    result = capsim(args, env={KILL_WORKER_ENV: str(victim)})
    message = "a worker process of the pool was killed by signal 9 (SIGKILL)"
    refused(result, 3, message, before_any_run=False)  # the pool's workers had started


def test_without_a_death_the_pool_gives_the_serial_results_byte_for_byte(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"a": service()})
    common = ["run", str(path), "--replications", "4", "--format", "json"]
    serial = capsim(common)
    pooled = capsim([*common, "--executor", "process", "--workers", "2"])
    assert serial[0] == pooled[0] == 0 and serial[1] == pooled[1]


# ---- size ------------------------------------------------------------------------------------
SIZED = """\
# kept: a comment
name: sized
seed: 1
simulation: {duration: 5s, warmup: 1s}
traffic:
  api: {entry: app, rate: 100/s}
tiers:
  app:
    type: service
    concurrency: 2
    service_time: 10ms   # the app's own work
    calls: [db]
  db: {type: service, service_time: 5ms, concurrency: 2}
slos:
  - {class: api, p99: 200ms}
"""


@pytest.mark.parametrize(
    "sets, expected",
    [
        (["traffic.api.rate=300/s"], {("traffic", "api", "rate"): "300/s"}),
        (["tiers.db.service_time=8ms", "seed=7"], {("tiers", "db", "service_time"): "8ms"}),
        (["tiers.app.calls=[{tier: db, repeat: 2}]"], {("tiers", "app", "calls"): [{"tier": "db", "repeat": 2}]}),
    ],
    ids=["rate", "two-scalars", "a-list"],
)  # fmt: skip
def test_size_write_keeps_the_overrides_the_sizing_used(
    tmp_path: Path, sets: list[str], expected: dict[tuple[str, ...], Any]
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SIZED, encoding="utf-8")
    written = tmp_path / "sized.yaml"
    args = ["size", str(path), "--write", str(written), "--format", "json"]
    args += [part for s in sets for part in ("--set", s)]
    data = ran(capsim(args))
    result = yaml.safe_load(written.read_text(encoding="utf-8"))
    for keys, value in expected.items():
        node = result
        for key in keys:
            node = node[key]
        assert node == value
    assert result["tiers"]["app"]["instances"] == data["tiers"]["app"]["instances"]
    # The written scenario, run as it is, is the scenario that was sized.
    again = ran(capsim(["size", str(written), "--format", "json"]))
    assert again["tiers"]["app"]["instances"] == data["tiers"]["app"]["instances"]


@pytest.mark.parametrize("rate, service_time", [("100000/s", "1s"), ("20000/s", "5s")])
def test_a_sizing_for_100k_instances_is_estimated_and_refused_before_it_starts(
    tmp_path: Path, rate: str, service_time: str
) -> None:
    path = scenario(
        tmp_path,
        {"a": {"type": "service", "service_time": service_time, "sizing": {"max": 1_000_000}}},
        traffic={"api": {"entry": "a", "rate": rate}},
        slos=[{"class": "api", "p99": "30s"}],
    )
    result = capsim(["size", str(path), "--max-requests", "1e7"])
    refused(result, 3, "this sizing would simulate about", "search measurements")


def test_the_search_plan_grows_with_the_log_of_a_large_tier() -> None:
    built = model([tier("a", const(1.0))], [open_class("api", 0, 1000.0)], duration=5.0)
    from capsim.analysis.sizing import dimensions

    dims = dimensions(built, 0)
    small = plan_search({"a": GALLOP_ABOVE}, dims, built, built)
    large = plan_search({"a": 100_000}, dims, built, built)
    assert small.least_points == small.likely_points == 3
    assert large.least_points == 3 and 3 < large.likely_points < 40
