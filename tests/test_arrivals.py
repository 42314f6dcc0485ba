"""Real traffic in scenarios: replayed traces, a two-state MMPP, batch arrivals, profile files.

The bursty processes are checked against exact queueing answers on both engine paths:

* MMPP/M/1: the mean sojourn time from the matrix-geometric (QBD) solution, computed here
  (`mmpp_m1_mean_sojourn`, derivation in its docstring), independently of capsim.
* M^X/M/1: the exact mean wait of batch-Poisson arrivals (`batch_m1_mean_sojourn`, source in its
  docstring).

Tolerances are standard-error based, as in tests/test_oracles.py: each case runs R independent
replications (the RNG tree gives each its own streams), the estimate is the mean of their means
and its standard error the sample SD / sqrt(R). The tolerance is T_SIGMA standard errors, the
Student t quantile with R - 1 degrees of freedom at the oracles' false-failure rate (K_SIGMA = 4,
two-sided 6e-5), since the SD is itself estimated. Each test also asserts that the run is long
enough to tell the exact answer from the Poisson one (relative standard error under 4%).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import capsim
from capsim.engine import streams
from capsim.engine.arrivals import ArrivalEpochs
from capsim.engine.runner import run_replications
from capsim.errors import Problem, ResourceLimitError
from capsim.scenario import traffic_files, validate_file
from capsim.scenario.traffic_files import read_rate_series, read_timestamps

REPLICATIONS = 16
T_SIGMA = 5.51  # Student t, 15 degrees of freedom, two-sided 6e-5 (K_SIGMA = 4 with a known SD)
ENGINES = ("events", "vectorised")


def write(folder: Path, text: str, name: str = "traffic.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def report(path: Path, engine: str, overrides: tuple[str, ...] = ()) -> dict:
    model = capsim.build_model(capsim.load_scenario(path, overrides))
    return capsim.simulate(model, engine=engine).data


def replication_means(path: Path, engine: str) -> tuple[np.ndarray, list[int]]:
    """Mean latency and arrivals of the first class, one per replication."""
    model = capsim.build_model(capsim.load_scenario(path))
    runs = run_replications(model, REPLICATIONS, engine=engine)  # type: ignore[arg-type]
    assert all(run.engine_path == engine for run in runs)
    return np.array([run.classes[0].latency.mean for run in runs]), [
        run.classes[0].arrivals for run in runs
    ]


def assert_matches(means: np.ndarray, exact: float) -> float:
    """The replications' mean is within T_SIGMA standard errors of `exact`; returns the SE."""
    error = float(np.std(means, ddof=1) / np.sqrt(means.size))
    estimate = float(np.mean(means))
    assert error / exact < 0.04, f"the run is too short to test: relative SE {error / exact:.3f}"
    assert abs(estimate - exact) <= T_SIGMA * error, (estimate, exact, error)
    return error


# ---- trace replay ------------------------------------------------------------------------------
TRACE_OFFSETS = [0.0, 0.25, 0.5, 1.2, 1.3, 3.05, 3.1, 3.15, 3.2, 7.5]


def iso_trace(folder: Path) -> None:
    lines = ["timestamp"] + [
        f"2024-05-01T12:00:{int(t):02d}.{round((t % 1) * 1000):03d}Z" for t in TRACE_OFFSETS
    ]
    (folder / "requests.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def trace_scenario(folder: Path, arrivals: str, duration: str = "10s") -> Path:
    iso_trace(folder)
    return write(
        folder,
        f"""
        name: replay
        simulation: {{duration: {duration}, warmup: 0s, timeseries: 1s}}
        traffic:
          web:
            entry: app
            arrivals: {arrivals}
        tiers:
          app: {{service_time: 10ms}}
        """,
    )


def bucket_counts(data: dict, buckets: int) -> list[int]:
    rates = data["timeseries"]["classes"]["web"]["offered_rate"][:buckets]
    return [round(rate * data["timeseries"]["bucket"]) for rate in rates]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_trace_replays_exactly_its_timestamps(tmp_path: Path, engine: str) -> None:
    path = trace_scenario(tmp_path, "{trace: requests.txt}")
    data = report(path, engine)
    assert data["engine"]["path"] == engine
    web = data["classes"]["web"]
    assert web["arrivals"] == len(TRACE_OFFSETS)
    assert bucket_counts(data, 9) == [3, 2, 0, 4, 0, 0, 0, 1, 0]
    # No request ever waits (gaps of 50 ms or more, 10 ms of work): every latency is the work.
    assert web["latency"]["mean"] == pytest.approx(0.010, abs=1e-12)
    assert web["latency"]["max"] == pytest.approx(0.010, abs=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_speedup_replays_the_trace_faster(tmp_path: Path, engine: str) -> None:
    path = trace_scenario(tmp_path, "{trace: requests.txt, speedup: 2}")
    data = report(path, engine)
    assert data["classes"]["web"]["arrivals"] == len(TRACE_OFFSETS)
    assert bucket_counts(data, 5) == [5, 4, 0, 1, 0]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_looped_trace_repeats_every_span_plus_mean_gap(tmp_path: Path, engine: str) -> None:
    # Period 7.5 s x 10 / 9 = 8.33 s: two whole copies, then the third up to 20 s (t < 3.33 s).
    path = trace_scenario(tmp_path, "{trace: requests.txt, loop: true}", duration="20s")
    data = report(path, engine)
    assert data["classes"]["web"]["arrivals"] == 10 + 10 + 9
    assert not any("trace" in w for w in data.get("warnings", []))


def test_a_trace_that_ends_early_says_so(tmp_path: Path) -> None:
    path = trace_scenario(tmp_path, "{trace: requests.txt}")
    model = capsim.build_model(capsim.load_scenario(path))
    warnings = capsim.simulate(model).warnings
    assert any("ends at 7.5s" in w and "loop: true" in w for w in warnings), warnings


def test_a_trace_turns_the_time_series_on(tmp_path: Path) -> None:
    path = trace_scenario(tmp_path, "{trace: requests.txt}")
    path.write_text(path.read_text().replace(", timeseries: 1s", ""))
    model = capsim.build_model(capsim.load_scenario(path))
    assert model.timeseries and "timeseries" in capsim.simulate(model).data


def test_timestamps_come_from_lines_csv_columns_and_access_logs() -> None:
    expected = [0.0, 0.5, 2.0]
    assert read_timestamps("10\n10.5\n12\n", "a") == expected
    assert read_timestamps("1714564800\n1714564800.5\n1714564802\n", "a") == expected
    csv = "id,at,path\n1,2024-05-01T12:00:00Z,/a\n2,2024-05-01T12:00:00.5Z,/b\n3,2024-05-01T12:00:02Z,/c\n"
    assert read_timestamps(csv, "a", column="at") == expected
    log = (
        '1.2.3.4 - - [01/May/2024:12:00:02 +0000] "GET / HTTP/1.1" 200 5\n'  # out of order
        '1.2.3.4 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 5\n'
        '1.2.3.4 - - [01/May/2024:14:00:00.500 +0200] "GET / HTTP/1.1" 200 5\n'
    )
    assert read_timestamps(log, "access.log") == expected
    assert read_timestamps("http 2024-05-01T12:00:00Z x\nhttp 2024-05-01T12:00:02Z y\n", "a") == [
        0.0,
        2.0,
    ]


# ---- bad traffic files and arrival settings: located messages ---------------------------------
BASE = """
name: shop
traffic:
  web:
    entry: app
    {traffic}
tiers:
  app: {{service_time: 10ms}}
"""


def only(folder: Path, traffic: str) -> Problem:
    found = validate_file(write(folder, BASE.format(traffic=traffic)))
    assert len(found) == 1, [p.format() for p in found]
    return found[0]


def test_a_trace_outside_the_scenario_folder_is_refused(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "secret.txt").write_text("1\n2\n")
    problem = only(inner, "arrivals: {trace: ../secret.txt}")
    assert "outside the scenario's folder" in problem.message
    assert (problem.line, problem.path) == (5, "traffic.web.arrivals.trace")


def test_a_missing_column_lists_the_header(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("when,path\n1,/a\n")
    problem = only(tmp_path, "arrivals: {trace: t.csv, column: time}")
    assert "no column 'time'" in problem.message and "'when', 'path'" in problem.message


def test_a_line_without_a_timestamp_is_named(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("1\n2\nlater\n")
    problem = only(tmp_path, "arrivals: {trace: t.txt}")
    assert problem.message.startswith("t.txt line 3: no timestamp in 'later'")


def test_a_trace_beyond_the_cap_names_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(traffic_files, "MAX_TRACE_TIMESTAMPS", 5)
    (tmp_path / "t.txt").write_text("".join(f"{i}\n" for i in range(6)))
    problem = only(tmp_path, "arrivals: {trace: t.txt}")
    assert "more than 5 timestamps, the most capsim reads from one trace" in problem.message


def test_the_command_line_refuses_a_trace_beyond_the_cap_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("0\n" * (traffic_files.MAX_TRACE_TIMESTAMPS + 1))
    path = write(tmp_path, BASE.format(traffic="arrivals: {trace: t.txt}"))
    done = subprocess.run(
        [sys.executable, "-m", "capsim", "validate", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "more than 1,000,000 timestamps, the most capsim reads" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("traffic", "path", "words"),
    [
        (
            "rate: 5/s, arrivals: {mmpp: {rates: [1/s, 9/s], mean_sojourn: [1s, 1s]}}",
            "traffic.web.rate",
            "takes its rate from the MMPP's rates; remove rate:",
        ),
        (
            "arrivals: {mmpp: {rates: [1/s, 2/s, 3/s], mean_sojourn: [1s, 1s]}}",
            "traffic.web.arrivals.mmpp.rates",
            "needs exactly two values",
        ),
        (
            "arrivals: {mmpp: {rates: [0/s, 0/s], mean_sojourn: [1s, 1s]}}",
            "traffic.web.arrivals.mmpp.rates",
            "at least one of the MMPP's rates must be above 0",
        ),
        (
            "arrivals: {batch: {size: 4}}",
            "traffic.web.arrivals",
            "batch arrivals need rate: (the rate of batches",
        ),
        (
            "rate: 5/s, arrivals: {batch: {size: {dist: geometric, mean: 0.5}}}",
            "traffic.web.arrivals.batch.size.mean",
            "a mean batch size from 1 to 100,000",
        ),
        (
            "rate: 5/s, arrivals: {batch: {size: {dist: zipf}}}",
            "traffic.web.arrivals.batch.size.dist",
            "unknown batch-size distribution 'zipf'",
        ),
        (
            "rate: 5/s, arrivals: {batch: {size: 2}}, profile: [{at: 0s, rate: 1/s}]",
            "traffic.web.profile",
            "profile: shapes poisson or constant arrivals only, not batch arrivals: batches "
            "arrive as a Poisson process at the constant rate",
        ),
        (
            "arrivals: {mmpp: {rates: [1/s, 9/s], mean_sojourn: [1s, 1s]}}, "
            "profile: {file: rates.csv}",
            "traffic.web.profile",
            "not mmpp arrivals: an MMPP's rate over time is its states' rates and sojourns",
        ),
        (
            "arrivals: {trace: t.txt}, profile: {file: rates.csv}",
            "traffic.web.profile",
            "not trace arrivals: a trace's timestamps are its rate over time",
        ),
        (
            "rate: 5/s, arrivals: {batch: {size: 1000000}}",
            "traffic.web.arrivals.batch.size",
            "more than capsim holds at one instant (100,000)",
        ),
        (
            "arrivals: {trace: t.txt, speedup: 1e9}",
            "traffic.web.arrivals.speedup",
            "expected a speedup from 0.000001 to 1000000",
        ),
        (
            "rate: 5/s, arrivals: {burst: 3}",
            "traffic.web.arrivals",
            "expected arrivals as poisson, constant, {trace: file}",
        ),
    ],
)
def test_arrival_settings_are_checked_where_they_are_written(
    tmp_path: Path, traffic: str, path: str, words: str
) -> None:
    (tmp_path / "t.txt").write_text("0\n1\n")
    (tmp_path / "rates.csv").write_text("at,rate\n0s,5/s\n10s,9/s\n")
    text = f"name: shop\ntraffic:\n  web: {{entry: app, {traffic}}}\ntiers:\n  app: {{service_time: 1ms}}\n"
    problems = validate_file(write(tmp_path, text))
    assert len(problems) == 1, [p.format() for p in problems]
    assert problems[0].path == path and words in problems[0].message, problems[0].format()
    assert problems[0].line == 3


# ---- profile from a file -----------------------------------------------------------------------
PROFILE = [
    {"at": "0s", "rate": "50/s"},
    {"at": "5s", "rate": "150/s"},
    {"at": "5s", "rate": "20/s"},
]


def test_a_profile_file_is_the_written_profile(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text("at,rate\n0s,50/s\n5,150\n5s,1200/min\n")
    written = "[" + ", ".join(f"{{at: {p['at']}, rate: {p['rate']}}}" for p in PROFILE) + "]"
    runs = []
    for profile in (written, "{file: rates.csv}"):
        path = write(
            tmp_path,
            f"""
            name: daily
            simulation: {{duration: 10s, warmup: 1s}}
            traffic:
              web: {{entry: app, profile: {profile}}}
            tiers:
              app: {{service_time: {{dist: exponential, mean: 2ms}}}}
            """,
        )
        model = capsim.build_model(capsim.load_scenario(path))
        assert [(p.at, p.rate) for p in model.classes[0].profile] == [
            (0.0, 50.0),
            (5.0, 150.0),
            (5.0, 20.0),
        ]
        runs.append(capsim.simulate(model, engine="events").data["classes"]["web"])
    assert runs[0] == runs[1]


def test_a_bad_rate_series_is_reported_at_its_file_key(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text("at,rate\n0s,5/s\n10s,lots\n")
    problem = only(tmp_path, "profile: {file: rates.csv}")
    assert problem.path == "traffic.web.profile.file" and problem.line == 5
    assert problem.message.startswith("rates.csv line 3: rate:"), problem.message


def test_a_rate_series_out_of_order_names_its_line() -> None:
    with pytest.raises(traffic_files.TrafficFileError, match=r"rates.csv line 3: points must be"):
        read_rate_series("at,rate\n10s,5/s\n5s,5/s\n", "rates.csv")


# ---- MMPP/M/1 against the matrix-geometric solution -----------------------------------------
def mmpp_m1_mean_sojourn(rates: list[float], sojourns: list[float], mu: float) -> float:
    """Mean sojourn time of MMPP/M/1 (FIFO, exponential service of rate mu), exactly.

    The pair (n requests present, phase j of the MMPP) is a level-independent quasi-birth-death
    process. With the phase generator Q = [[-a, a], [b, -b]] (a, b the inverse mean sojourns)
    and Lambda = diag(rates), from level n >= 1 it moves up by A0 = Lambda, within the level by
    A1 = Q - Lambda - mu I and down by A2 = mu I; level 0 has B1 = Q - Lambda. Neuts' matrix-
    geometric theorem gives pi_n = pi_0 R^n, R the minimal non-negative solution of
    A0 + R A1 + R^2 A2 = 0 (found by the fixed-point iteration R <- -(A0 + R^2 A2) A1^-1),
    and pi_0 from pi_0 (B1 + R A2) = 0 with pi_0 (I - R)^-1 1 = 1. The mean number present is
    L = pi_0 R (I - R)^-2 1, and Little's law gives W = L / lambda, lambda = pi_Q Lambda 1 the
    mean arrival rate (pi_Q the phase's stationary distribution).
    """
    a, b = 1.0 / sojourns[0], 1.0 / sojourns[1]
    phases = np.array([[-a, a], [b, -b]])
    lam = np.diag(rates)
    eye = np.eye(2)
    up, local, down = lam, phases - lam - mu * eye, mu * eye
    r = np.zeros((2, 2))
    local_inverse = np.linalg.inv(local)
    for _ in range(100_000):
        following = -(up + r @ r @ down) @ local_inverse
        if np.abs(following - r).max() < 1e-15:
            r = following
            break
        r = following
    inverse = np.linalg.inv(eye - r)
    system = np.column_stack([phases - lam + r @ down, inverse @ np.ones(2)])
    pi0 = np.linalg.lstsq(system.T, np.array([0.0, 0.0, 1.0]), rcond=None)[0]
    present = float(pi0 @ r @ inverse @ inverse @ np.ones(2))
    mean_rate = (rates[0] * sojourns[0] + rates[1] * sojourns[1]) / (sojourns[0] + sojourns[1])
    return present / mean_rate


def test_the_qbd_solution_reduces_to_mm1_when_both_rates_are_equal() -> None:
    assert mmpp_m1_mean_sojourn([50.0, 50.0], [1.0, 3.0], 100.0) == pytest.approx(1 / 50, rel=1e-9)


MMPP_SCENARIO = """
name: bursty
seed: 11
simulation: {duration: 100s, warmup: 10s}
traffic:
  api:
    entry: app
    arrivals: {mmpp: {rates: [50/s, 200/s], mean_sojourn: [400ms, 100ms]}}
tiers:
  app: {service_time: {dist: exponential, mean: 5ms}}
"""


def test_mmpp_m1_mean_latency_matches_the_matrix_geometric_solution(tmp_path: Path) -> None:
    exact = mmpp_m1_mean_sojourn([50.0, 200.0], [0.4, 0.1], 200.0)  # 17.37 ms
    poisson = 1.0 / (200.0 - 80.0)  # M/M/1 at the same mean rate: 8.33 ms
    assert exact > 2 * poisson
    path = write(tmp_path, MMPP_SCENARIO)
    results = {engine: replication_means(path, engine) for engine in ENGINES}
    errors = {engine: assert_matches(results[engine][0], exact) for engine in ENGINES}
    # One generator of arrival times: both paths see the very same arrivals ...
    assert results["events"][1] == results["vectorised"][1]
    # ... and agree on the latency within noise.
    gap = abs(results["events"][0].mean() - results["vectorised"][0].mean())
    assert gap <= T_SIGMA * float(np.hypot(errors["events"], errors["vectorised"]))


def test_an_mmpp_offers_its_stationary_mean_rate(tmp_path: Path) -> None:
    data = report(write(tmp_path, MMPP_SCENARIO), "vectorised", ("simulation.replications=4",))
    # 80/s over 400 s in all: the MMPP count's SD is about 4% of its mean over 100 s (bursts).
    assert data["classes"]["api"]["offered_rate"] == pytest.approx(80.0, rel=0.06)


def test_solve_uses_the_matrix_geometric_solution_for_a_lone_mmpp(tmp_path: Path) -> None:
    from capsim.analysis.solve import solve

    model = capsim.build_model(capsim.load_scenario(write(tmp_path, MMPP_SCENARIO)))
    api = solve(model, capsim_version="test")["classes"]["api"]
    assert api["method"] == {"formula": "MMPP(2)/M/1 (matrix-geometric)", "exact": True}
    exact = mmpp_m1_mean_sojourn([50.0, 200.0], [0.4, 0.1], 200.0)
    assert api["latency"]["mean"] == pytest.approx(exact, rel=1e-9)


def test_solve_says_it_has_no_formula_where_there_is_none(tmp_path: Path) -> None:
    from capsim.analysis.solve import solve

    text = MMPP_SCENARIO.replace(
        "{dist: exponential, mean: 5ms}", "{dist: gamma, mean: 5ms, cv: 0.5}"
    )
    model = capsim.build_model(capsim.load_scenario(write(tmp_path, text)))
    solution = solve(model, capsim_version="test")
    assert solution["classes"]["api"]["method"]["exact"] is False
    assert solution["tiers"]["app"]["method"]["exact"] is False
    assert any(
        "class 'api' has mmpp arrivals: solve has no formula for them here and treats them as "
        "Poisson at their mean rate (80/s)" in note
        for note in solution["notes"]
    ), solution["notes"]


# ---- M^X/M/1 against its exact formula ---------------------------------------------------------
def batch_m1_mean_sojourn(batch_rate: float, mean: float, second: float, service: float) -> float:
    """Mean sojourn of a request in M^X/M/1 (FIFO, exponential service of mean `service`).

    Gross, Shortle, Thompson & Harris, Fundamentals of Queueing Theory (4th ed., 2008), section
    3.2 (bulk input, M^[X]/M/1): L = rho (E[X^2] + E[X]) / (2 E[X] (1 - rho)) with
    rho = lam E[X] E[S]; W = L / (lam E[X]) by Little's law.
    """
    rho = batch_rate * mean * service
    present = rho * (second + mean) / (2.0 * mean * (1.0 - rho))
    return present / (batch_rate * mean)


BATCH_SCENARIO = """
name: batches
seed: 5
simulation: {duration: 100s, warmup: 10s}
traffic:
  jobs:
    entry: app
    rate: 20/s
    arrivals: {batch: {size: {dist: geometric, mean: 3}}}
tiers:
  app: {service_time: {dist: exponential, mean: 10ms}}
"""


def test_batch_poisson_mean_latency_matches_mx_m1(tmp_path: Path) -> None:
    # Geometric sizes of mean 3: E[X^2] = (2 - p) / p^2 = 15 with p = 1/3; rho = 0.6.
    exact = batch_m1_mean_sojourn(20.0, 3.0, 15.0, 0.010)  # 75 ms
    assert exact == pytest.approx(0.075)
    path = write(tmp_path, BATCH_SCENARIO)
    results = {engine: replication_means(path, engine) for engine in ENGINES}
    errors = {engine: assert_matches(results[engine][0], exact) for engine in ENGINES}
    assert results["events"][1] == results["vectorised"][1]
    gap = abs(results["events"][0].mean() - results["vectorised"][0].mean())
    assert gap <= T_SIGMA * float(np.hypot(errors["events"], errors["vectorised"]))


def test_solve_uses_the_exact_mx_g1_formula_for_batches(tmp_path: Path) -> None:
    from capsim.analysis.solve import solve

    model = capsim.build_model(capsim.load_scenario(write(tmp_path, BATCH_SCENARIO)))
    jobs = solve(model, capsim_version="test")["classes"]["jobs"]
    assert jobs["method"] == {"formula": "M^X/G/1 (batch Poisson arrivals)", "exact": True}
    assert jobs["latency"]["mean"] == pytest.approx(batch_m1_mean_sojourn(20.0, 3.0, 15.0, 0.01))
    assert jobs["offered_rate"] == pytest.approx(60.0)


def lindley_latencies(arrivals: np.ndarray, work: float, horizon: float) -> np.ndarray:
    """Latencies at one FIFO worker with constant `work`, of the requests done by `horizon`."""
    done = np.empty_like(arrivals)
    free = 0.0
    for i, arrived in enumerate(arrivals):
        free = done[i] = max(arrived, free) + work
    return (done - arrivals)[done < horizon]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_request_of_a_batch_arrives_at_the_same_instant(tmp_path: Path, engine: str) -> None:
    # Batches of exactly 4 requests, 10 ms of work each at one worker: a batch alone waits
    # 0, 10, 20 and 30 ms. The generator's times come in runs of four equal times, and the run's
    # latencies are exactly those of a FIFO replay of them (Lindley's recursion).
    path = write(
        tmp_path,
        BATCH_SCENARIO.replace("rate: 20/s", "rate: 2/s")
        .replace("duration: 100s, warmup: 10s", "duration: 200s, warmup: 0s")
        .replace("{dist: geometric, mean: 3}", "4")
        .replace("{dist: exponential, mean: 10ms}", "10ms"),
    )
    model = capsim.build_model(capsim.load_scenario(path))
    rng = streams.class_stream(model.seed, 0, model.classes[0].name, streams.ARRIVALS)
    epochs = ArrivalEpochs(model.classes[0].process, rng)  # type: ignore[arg-type]
    times = np.concatenate([epochs.next_block() for _ in range(2)])
    times = times[times < model.horizon]
    runs = times.reshape(-1, 4)
    assert (runs == runs[:, :1]).all() and (np.diff(runs[:, 0]) > 0).all()
    expected = lindley_latencies(times, 0.010, model.horizon)
    jobs = capsim.simulate(model, engine=engine).data["classes"]["jobs"]
    assert jobs["arrivals"] == times.size
    assert jobs["latency"]["mean"] == pytest.approx(float(expected.mean()), rel=1e-12)
    assert jobs["latency"]["max"] == pytest.approx(float(expected.max()), rel=1e-12)
    assert (
        float(expected.min()) == pytest.approx(0.010) and np.mean(expected > 0.040 - 1e-9) >= 0.25
    )


def test_the_same_seed_gives_the_same_bursty_run(tmp_path: Path) -> None:
    path = write(tmp_path, MMPP_SCENARIO.replace("100s", "20s"))
    first, second = report(path, "events"), report(path, "events")
    assert (first["classes"], first["tiers"]) == (second["classes"], second["tiers"])


def test_an_mmpp_switching_too_often_is_refused_before_running(tmp_path: Path) -> None:
    path = write(tmp_path, MMPP_SCENARIO.replace("[400ms, 100ms]", "[1ns, 1ns]"))
    model = capsim.build_model(capsim.load_scenario(path))
    # 2 x 110 s of warm-up and run / 2 ns of mean cycle: 1.1e11 changes of state.
    with pytest.raises(
        ResourceLimitError, match=r"its MMPP would change state about 110,000,000,000 "
    ):
        capsim.simulate(model)


@pytest.mark.slow
def test_mmpp_m1_at_rho_070_matches_the_matrix_geometric_solution(tmp_path: Path) -> None:
    exact = mmpp_m1_mean_sojourn([100.0, 300.0], [0.4, 0.1], 200.0)  # 58.0 ms (M/M/1: 16.7)
    text = (
        MMPP_SCENARIO.replace("[50/s, 200/s]", "[100/s, 300/s]")
        .replace("duration: 100s, warmup: 10s", "duration: 400s, warmup: 20s")
        .replace("seed: 11", "seed: 3")
    )
    path = write(tmp_path, text)
    results = {engine: replication_means(path, engine) for engine in ENGINES}
    for engine in ENGINES:
        assert_matches(results[engine][0], exact)
    assert results["events"][1] == results["vectorised"][1]


@pytest.mark.slow
def test_batches_of_empirical_sizes_at_rho_080_match_mx_m1(tmp_path: Path) -> None:
    # Sizes 1, 2 or 8, equally likely: E[X] = 11/3, E[X^2] = 23; 10 ms of work: rho = 0.8.
    batch_rate = 0.8 / (11 / 3 * 0.010)
    exact = batch_m1_mean_sojourn(batch_rate, 11 / 3, 23.0, 0.010)
    text = (
        BATCH_SCENARIO.replace("rate: 20/s", f"rate: {batch_rate!r}/s")
        .replace("{dist: geometric, mean: 3}", "{dist: empirical, samples: [1, 2, 8]}")
        .replace("duration: 100s, warmup: 10s", "duration: 400s, warmup: 20s")
    )
    path = write(tmp_path, text)
    results = {engine: replication_means(path, engine) for engine in ENGINES}
    for engine in ENGINES:
        assert_matches(results[engine][0], exact)
    assert results["events"][1] == results["vectorised"][1]
