"""`capsim sweep`: what-if tables over one or more keys, with common random numbers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import capsim
from capacitykit import mmc_scenario
from capsim.analysis.sweep import parse_vary, run_sweep
from capsim.cli.app import app
from capsim.errors import ScenarioError, UsageError

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("traffic.web.rate=100/s..800/s:8", [f"{100 * i}/s" for i in range(1, 9)]),
        ("tiers.app.instances=2..10:5", ["2", "4", "6", "8", "10"]),
        ("tiers.app.service_time=10ms..50ms:3", ["10ms", "30ms", "50ms"]),
        ("tiers.cache.hit_ratio=50%..90%:3", ["50%", "70%", "90%"]),
        ("x=6k/min..12k/min:3", ["6000/min", "9000/min", "12000/min"]),
        ("x=0.5..0.9:3", ["0.5", "0.7", "0.9"]),
        ("tiers.app.instances=4,8,16", ["4", "8", "16"]),
        (
            "x=20ms,{dist: exponential, mean: 5ms}",
            ['"20ms"', '{"dist": "exponential", "mean": "5ms"}'],
        ),
    ],
)
def test_values_are_interpolated_in_the_unit_of_from_or_listed(text, values):
    assert list(parse_vary(text).values) == values


@pytest.mark.parametrize("text", ["noequals", "x=", "x=1..5:0", "x=fast..slow", "x=10ms..1/s"])
def test_bad_vary_values_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_vary(text)


def test_more_workers_never_raise_p99_under_common_random_numbers(tmp_path):
    path = mmc_scenario(tmp_path, duration="20s")
    result = run_sweep(
        path, [parse_vary("tiers.server.concurrency=4..7:4")], capsim_version=capsim.__version__
    )
    p99 = [point["classes"]["requests"]["latency"]["p99"] for point in result["points"]]
    utilization = [point["tiers"]["server"]["utilization"] for point in result["points"]]
    assert [p["values"]["tiers.server.concurrency"] for p in result["points"]] == [4, 5, 6, 7]
    assert p99 == sorted(p99, reverse=True)
    # Same arrivals and service times at every point: the work is the same, the workers differ;
    # only the few requests straddling the window's edges (in service at other moments) differ.
    busy = [u * c for u, c in zip(utilization, [4, 5, 6, 7], strict=True)]
    assert max(busy) == pytest.approx(min(busy), rel=1e-3)
    assert result["points"][0]["passed"] is False and result["points"][1]["passed"] is True


def test_two_varies_make_a_grid(tmp_path):
    path = mmc_scenario(tmp_path, duration="5s")
    result = run_sweep(
        path,
        [
            parse_vary("tiers.server.concurrency=4,6"),
            parse_vary("traffic.requests.rate=100/s..300/s:3"),
        ],
        capsim_version=capsim.__version__,
    )
    assert len(result["points"]) == 6
    assert result["points"][-1]["values"] == {
        "tiers.server.concurrency": 6,
        "traffic.requests.rate": "300/s",
    }


def test_an_invalid_point_names_the_override(tmp_path):
    path = mmc_scenario(tmp_path, duration="5s")
    with pytest.raises(ScenarioError, match=r"--set tiers\.server\.concurrency=0"):
        run_sweep(
            path, [parse_vary("tiers.server.concurrency=0,2")], capsim_version=capsim.__version__
        )


def test_the_command_prints_a_table_json_and_markdown(tmp_path):
    path = mmc_scenario(tmp_path, duration="5s")
    args = ["sweep", str(path), "--vary", "traffic.requests.rate=100/s..300/s:3"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "300/s" in table.stdout
    data = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    assert data["command"] == "sweep" and len(data["points"]) == 3
    assert runner.invoke(app, [*args, "-f", "markdown"]).stdout.startswith("# capsim sweep")
    assert runner.invoke(app, ["sweep", str(path), "--vary", "x=1..z"]).exit_code == 2


#: A database whose one replica takes 90% of the queries while its primary idles: the tier's
#: pooled share is about half the replica's.
READ_REPLICA = """\
name: read-replica
seed: 4
simulation: {duration: 10s, warmup: 1s, replications: 1}
traffic:
  reads: {entry: db, rate: 80/s}
tiers:
  db:
    type: database
    replicas: 1
    read_ratio: 0.9
    service_time: {dist: exponential, mean: 10ms}
slos:
  - {tier: db, utilization: 60%}
"""


def test_a_database_column_shows_the_busiest_group_its_verdict_is_judged_on(tmp_path):
    path = tmp_path / "replica.yaml"
    path.write_text(READ_REPLICA)
    result = run_sweep(
        path, [parse_vary("traffic.reads.rate=40/s,80/s")], capsim_version=capsim.__version__
    )
    for point in result["points"]:
        db = point["tiers"]["db"]
        (verdict,) = point["slos"]
        assert db["group"] == "replicas" == verdict["group"]
        assert db["utilization"] == verdict["observed"]  # the figure the verdict judged
        assert db["pooled"]["utilization"] < 0.6 * db["utilization"]
    # At 80/s the replica is about 72% busy: the column says so, not the pooled ~40%.
    assert [point["passed"] for point in result["points"]] == [True, False]
    table = runner.invoke(app, ["sweep", str(path), "--vary", "traffic.reads.rate=40/s,80/s"])
    assert table.exit_code == 0, table.output
    assert "(replicas)" in table.stdout
    assert "its busiest group's share" in table.stdout
