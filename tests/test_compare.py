"""`capsim compare A B`: side by side, differences judged against the noise."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import capsim
from capacitykit import mmc_scenario
from capsim.analysis.compare import compare
from capsim.cli.app import app

runner = CliRunner()


def test_one_more_worker_lowers_p99_beyond_noise_with_paired_replications(tmp_path):
    a = mmc_scenario(tmp_path, name="four", servers=4, duration="30s")
    b = mmc_scenario(tmp_path, name="five", servers=5, duration="30s")
    result = compare(a, b, capsim_version=capsim.__version__)
    assert result["paired"] is True
    p99 = result["classes"]["requests"]["latency.p99"]
    assert p99["diff"] < 0 and p99["significant"] is True
    utilization = result["tiers"]["server"]["utilization"]
    # Same work on 5 workers instead of 4 (common random numbers): 4/5 of the busy fraction, up
    # to the few requests straddling the window's edges.
    assert utilization["b"] == pytest.approx(utilization["a"] * 4 / 5, rel=1e-3)
    assert utilization["significant"] is True


def test_a_scenario_against_itself_differs_by_nothing(tmp_path):
    a = mmc_scenario(tmp_path, duration="10s")
    result = compare(a, a, capsim_version=capsim.__version__)
    p99 = result["classes"]["requests"]["latency.p99"]
    assert p99["diff"] == 0.0
    assert p99["significant"] is False


def test_saved_results_are_compared_through_their_ci95(tmp_path):
    # Results of an older capsim keep no per-replication figures: only their intervals.
    files = []
    for servers in (4, 8):
        path = mmc_scenario(tmp_path, name=f"s{servers}", servers=servers, duration="20s")
        out = tmp_path / f"s{servers}.json"
        options = ["--replications", "5", "--duration", "60s"]
        done = runner.invoke(app, ["run", str(path), *options, "-f", "json", "-o", str(out)])
        assert done.exit_code == 0, done.output
        saved = json.loads(out.read_text())
        del saved["per_replication"]
        out.write_text(json.dumps(saved))
        files.append(out)
    result = runner.invoke(app, ["compare", str(files[0]), str(files[1]), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["a"]["kind"] == "result" and data["paired"] is False
    assert any(note.startswith("a saved result is compared by its ci95") for note in data["notes"])
    p99 = data["classes"]["requests"]["latency.p99"]
    assert p99["significant"] is True and p99["diff"] < 0
    assert data["classes"]["requests"]["throughput"]["significant"] is False


def test_a_scenario_against_a_saved_result_in_table_and_markdown(tmp_path):
    path = mmc_scenario(tmp_path, duration="10s")
    out = tmp_path / "run.json"
    runner.invoke(app, ["run", str(path), "-f", "json", "-o", str(out)])
    for fmt in ("table", "markdown"):
        result = runner.invoke(app, ["compare", str(path), str(out), "-f", fmt])
        assert result.exit_code == 0, result.output
        assert "latency.p99" in result.stdout


def test_missing_files_and_other_results_exit_2(tmp_path):
    path = mmc_scenario(tmp_path, duration="5s")
    assert runner.invoke(app, ["compare", str(path), str(tmp_path / "none.yaml")]).exit_code == 2
    solved = tmp_path / "solve.json"
    solved.write_text(json.dumps({"command": "solve", "capsim_version": "0.1.0"}))
    result = runner.invoke(app, ["compare", str(path), str(solved)])
    assert result.exit_code == 2
    assert "capsim solve" in result.stderr


PIPELINE = """\
name: pipeline
seed: 1
simulation: {duration: 20s, warmup: 2s, replications: 3}
traffic:
  events: {entry: api, rate: 100/s}
tiers:
  api: {type: service, concurrency: 4, service_time: 2ms, calls: [store]}
  store:
    type: queue
    consumers: 2
    service_time: 10ms
    batch: {size: 50, linger: LINGER}
"""


def test_a_queue_shows_its_message_age_beside_utilization_as_check_compares_it(tmp_path):
    # 100 messages/s lingering 100 ms make batches of about 11 (mean age about 65 ms); 500 ms
    # make batches of 50 filled in 490 ms (mean age about 255 ms) on consumers less busy.
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(PIPELINE.replace("LINGER", "100ms"))
    b.write_text(PIPELINE.replace("LINGER", "500ms"))
    result = compare(a, b, capsim_version=capsim.__version__)
    store, api = result["tiers"]["store"], result["tiers"]["api"]
    assert list(api) == ["utilization", "occupancy"]  # no age on a service
    assert 0.055 < store["age.mean"]["a"] < 0.075 and 0.23 < store["age.mean"]["b"] < 0.26
    assert store["age.mean"]["significant"] is True and store["age.p99"]["significant"] is True
    assert store["utilization"]["diff"] < 0  # fewer, fuller batches: less busy, yet older
    table = runner.invoke(app, ["compare", str(a), str(b)]).stdout
    assert re.search(r"store\s+age\.mean\s+6\d\.\d\dms\s+2[3-5]\d\.\dms\s+\+", table)
