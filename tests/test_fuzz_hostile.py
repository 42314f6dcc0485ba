"""Hostile scenarios found by the fuzzing round of issue 15: each once ended in a traceback or
ran for a minute; each is now refused at validation with the place, what is wrong and what
would be valid (or, for extreme but legal values, runs without crashing)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from capsim.errors import ScenarioError
from capsim.model.distributions import Distribution
from capsim.scenario import load_scenario, loader, validate_file
from capsim.scenario.loader import parse_yaml_text

BASE = """\
name: base
simulation: {{duration: 2s, warmup: 0.5s}}
traffic:
  api: {{entry: app, rate: 50/s}}
tiers:
  app: {{service_time: {service}}}
"""


def problems_of(folder: Path, service: str) -> list[str]:
    path = folder / "s.yaml"
    path.write_text(BASE.format(service=service), encoding="utf-8")
    return [p.format() for p in validate_file(path)]


@pytest.mark.parametrize(
    ("service", "says"),
    [
        # 1 / cv^2 is infinite: the builder divided by zero.
        ("{dist: gamma, mean: 5ms, cv: 1e-300}", "outside [1e-06, 1e+06]"),
        ("{dist: gamma, mean: 5ms, cv: 1e10}", "outside [1e-06, 1e+06]"),
        # cv^2 overflows: the draws were NaN and the vectorised path stopped half-way.
        ("{dist: lognormal, mean: 5ms, cv: 1e300}", "cv 1e+300 is above 1e+06"),
        # sigma of 300: every moment overflowed (OverflowError in the run-size guard).
        ("{dist: lognormal, p50: 5ms, p99: 1e300s}", "more than 1e+12 times p50"),
        ("{dist: lognormal, p50: 1e-300s, p99: 1s}", "more than 1e+12 times p50"),
    ],
)
def test_spreads_beyond_floating_point_are_refused_where_they_are_written(
    tmp_path: Path, service: str, says: str
) -> None:
    found = problems_of(tmp_path, service)
    assert len(found) == 1 and says in found[0], found
    assert "s.yaml:6:" in found[0] and "tiers.app.service_time" in found[0]


@pytest.mark.parametrize(
    "service",
    [
        "{dist: gamma, mean: 5ms, cv: 1e-6}",
        "{dist: gamma, mean: 5ms, cv: 1e6}",
        "{dist: lognormal, mean: 5ms, cv: 1e6}",
        "{dist: lognormal, p50: 1ms, p99: 1e9s}",
    ],
)
def test_the_widest_spreads_allowed_are_accepted(tmp_path: Path, service: str) -> None:
    assert problems_of(tmp_path, service) == []


@pytest.mark.parametrize(
    "dist",
    [
        Distribution.constant(1e300),
        Distribution.exponential(1e300),
        Distribution.uniform(0.0, 1e308),
        Distribution.gamma(1e300, 1.0),
        Distribution.lognormal(1e300, 1.0),
    ],
    ids=lambda d: d.kind,
)
def test_a_moment_beyond_floating_point_is_infinite_not_an_overflow_error(
    dist: Distribution,
) -> None:
    assert math.isfinite(dist.moment(1)) or dist.kind == "uniform"
    assert dist.moment(3) == math.inf


def test_a_flood_of_values_is_refused_at_the_limit_without_reading_the_rest() -> None:
    points = ", ".join(f"{{at: {i}ms, rate: 5/s}}" for i in range(loader.MAX_NODES))
    text = BASE.format(service="5ms").replace("rate: 50/s}", f"rate: 50/s, profile: [{points}]}}")
    started = time.process_time()
    with pytest.raises(ScenarioError) as error:
        parse_yaml_text(text, "flood.yaml")
    assert time.process_time() - started < 10.0
    problem = error.value.problems[0]
    assert "more than 100,000 values" in problem.message and "profile: {file:" in problem.message
    assert problem.file == "flood.yaml" and problem.line == 4


def test_a_document_just_under_the_limit_still_loads() -> None:
    points = ", ".join(f"{{at: {i}ms, rate: 5/s}}" for i in range(1000))
    text = BASE.format(service="5ms").replace("rate: 50/s}", f"rate: 50/s, profile: [{points}]}}")
    assert len(parse_yaml_text(text, "ok.yaml").data["traffic"]["api"]["profile"]) == 1000


def test_solve_names_an_infinite_load_per_worker_instead_of_crashing(tmp_path: Path) -> None:
    """Service times up to 1e308 s leave a capacity of 0/s: the load per worker is infinite,
    null in the JSON, and the table's overload line formatted it as a number (TypeError)."""
    from typer.testing import CliRunner

    from capsim.cli.app import app

    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(service="{dist: uniform, min: 0s, max: 1e308s}"), encoding="utf-8")
    done = CliRunner().invoke(app, ["solve", str(path)])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert "OVERLOADED: app (rho inf: 50.0/s offered, 0.0/s capacity)" in done.output


@pytest.mark.parametrize(
    ("count", "text"),
    [(5e300, "5 x 10^300"), (1.7976931348623157e308, "1.8 x 10^308"), (4.32e11, "432,000,000,000")],
)
def test_astronomical_counts_in_refusals_are_powers_of_ten_not_walls_of_digits(
    count: float, text: str
) -> None:
    from capsim.units import format_count

    assert format_count(count) == text


def test_a_run_of_1e300_seconds_is_refused_in_a_line_a_person_can_read(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from capsim.cli.app import app

    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(service="5ms").replace("duration: 2s", "duration: 1e300s"))
    done = CliRunner().invoke(app, ["run", str(path)])
    assert done.exit_code == 3
    assert "about 5 x 10^301 requests" in done.output and len(done.output) < 400, done.output


def test_a_bucket_of_1e300_buckets_is_refused_in_a_readable_line(tmp_path: Path) -> None:
    text = BASE.format(service="5ms").replace("warmup: 0.5s}", "warmup: 0.5s, timeseries: 1e-300s}")
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    (problem,) = validate_file(path)
    assert "makes 2.5 x 10^300 buckets" in problem.message and len(problem.message) < 200


def test_a_closed_class_is_solved_in_seconds_not_minutes_or_hours(tmp_path: Path) -> None:
    """`capsim run` of 400 users (think 1 s) or 1,000 users (think 0 s) never finished: the
    footer's capacity searches solved the same closed network thousands of times (18,810
    solutions of 10 distinct networks for 50 users), each in time growing with the square of
    the users. Solutions are now kept: 50 users took 26 s of CPU, now about 1 s."""
    from typer.testing import CliRunner

    from capsim.cli.app import app

    path = tmp_path / "s.yaml"
    path.write_text(
        "name: closed\nsimulation: {duration: 2s, warmup: 0.5s}\n"
        "traffic:\n  api: {entry: app, users: 50, think_time: 0s}\n"
        "tiers:\n  app: {service_time: 5ms, calls: [db]}\n  db: {service_time: 2ms}\n",
        encoding="utf-8",
    )
    started = time.process_time()
    done = CliRunner().invoke(app, ["run", str(path), "--format", "json"])
    assert time.process_time() - started < 10.0
    assert done.exit_code in (0, 1), done.output
    assert '"throughput"' in done.stdout


@pytest.mark.parametrize(
    ("seed", "says"),
    [
        ("123456789012345678901234567890", None),  # kept exactly, not 123...77877719597056
        ("1e3", None),
        ("1e300", "is written as a float, which holds no whole number above 2^53 exactly"),
        ("2.5", "is not a whole number"),
        ("-5", "is negative"),
    ],
)
def test_a_seed_is_the_seed_written_or_refused_where_it_is_written(
    tmp_path: Path, seed: str, says: str | None
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(service="5ms") + f"seed: {seed}\n", encoding="utf-8")
    found = [p.format() for p in validate_file(path)]
    if says is None:
        assert found == []
        assert load_scenario(path).seed == (int(float(seed)) if "e" in seed else int(seed))
    else:
        assert len(found) == 1 and says in found[0] and "s.yaml:7:7: seed" in found[0], found


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_a_hundred_thousand_local_workers_are_refused_before_any_starts(
    tmp_path: Path, executor: str
) -> None:
    """`--workers 100000 --executor process` started thousands of Python processes at once
    (found by trying it: over 4,000 before it was stopped, the machine's load at 880)."""
    from typer.testing import CliRunner

    from capsim.cli.app import app

    path = tmp_path / "s.yaml"
    path.write_text(BASE.format(service="5ms"), encoding="utf-8")
    args = ["run", str(path), "--replications", "3", "--workers", "100000", "--executor", executor]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 3, done.output
    assert "--workers 100,000 would start 100,000 processes" in done.output
    assert "give fewer, or run them on a Dask cluster with --scheduler" in done.output
