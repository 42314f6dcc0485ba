"""Every simulating command runs where it is told (serial, a process pool, a Dask cluster) and
gives byte-identical answers wherever it ran; a dead worker or a stop says what happened."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest
from typer.testing import CliRunner

from capsim.cli.app import app
from childprocess import sigint_at_its_default, stderr_until

runner = CliRunner()

#: Two tiers on the event path (least-connections balancing), an empirical sample table that the
#: workers never read from disk, and an SLO that the searches can meet.
SCENARIO = """\
name: executors
seed: 5
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  web: {entry: front, rate: 320/s}
tiers:
  front:
    instances: 4
    concurrency: 2
    balancing: least_connections
    service_time: {dist: exponential, mean: 3ms}
    calls: [server]
    cost: {per_instance_hour: 0.2}
  server:
    concurrency: 8
    service_time: {dist: empirical, file: samples.csv}
    cost: {per_instance_hour: 0.5}
    sizing: {of: concurrency, min: 1, max: 64}
slos:
  - {class: web, p99: 100ms}
"""
SAMPLES = "service_time\n4ms\n6ms\n9ms\n12ms\n20ms\n31ms\n"

COMMANDS = {
    "run": ["run", "{path}", "--format", "json"],
    "sweep": ["sweep", "{path}", "--vary", "tiers.front.instances=3..6:4", "--format", "json"],
    "saturate": ["saturate", "{path}", "--duration", "4s", "--replications", "2", "-f", "json"],
    "size": ["size", "{path}", "--duration", "4s", "--replications", "2", "-f", "json"],
}


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    (tmp_path / "samples.csv").write_text(SAMPLES)
    path = tmp_path / "executors.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real LocalCluster, kept small: 2 worker processes with 1 thread each."""
    import logging

    local = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        yield local.scheduler_address
    finally:
        local.close()


def _invoke(command: str, path: Path, *options: str) -> bytes:
    args = [part.format(path=path) for part in COMMANDS[command]]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


@pytest.mark.parametrize("command", list(COMMANDS))
def test_serial_process_and_dask_give_byte_identical_json(
    command: str, scenario: Path, cluster: str
) -> None:
    serial = _invoke(command, scenario)
    assert json.loads(serial)  # a real answer, not an empty one
    process = _invoke(command, scenario, "--executor", "process", "--workers", "2")
    one_process = _invoke(command, scenario, "--executor", "process", "--workers", "1")
    dask = _invoke(command, scenario, "--executor", "dask", "--scheduler", cluster)
    assert process == serial
    assert one_process == serial
    assert dask == serial


def test_a_scheduler_address_alone_means_dask(scenario: Path, cluster: str) -> None:
    serial = _invoke("sweep", scenario)
    assert _invoke("sweep", scenario, "--scheduler", cluster) == serial


def test_the_scheduler_address_comes_from_the_environment(
    scenario: Path, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster)
    serial = _invoke("run", scenario)
    assert _invoke("run", scenario, "--executor", "dask") == serial


def test_without_an_address_dask_starts_a_local_cluster(
    scenario: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    serial = _invoke("sweep", scenario)
    assert _invoke("sweep", scenario, "--executor", "dask", "--workers", "2") == serial


def test_check_and_compare_take_the_executor_too(scenario: Path, cluster: str) -> None:
    baseline = scenario.parent / "baseline.json"
    baseline.write_bytes(_invoke("run", scenario))
    check = ["check", str(scenario), "--baseline", str(baseline), "--format", "json"]
    serial = runner.invoke(app, check)
    on_dask = runner.invoke(app, [*check, "--executor", "dask", "--scheduler", cluster])
    assert serial.exit_code == on_dask.exit_code == 0, on_dask.stderr
    assert on_dask.stdout == serial.stdout
    other = scenario.parent / "other.yaml"
    other.write_text(SCENARIO.replace("instances: 4", "instances: 5"))
    pair = ["compare", str(scenario), str(other), "--format", "json"]
    serial = runner.invoke(app, pair)
    pooled = runner.invoke(app, [*pair, "--executor", "process", "--workers", "2"])
    assert serial.exit_code == pooled.exit_code == 0, pooled.stderr
    assert pooled.stdout == serial.stdout
    assert json.loads(serial.stdout)["classes"]


def test_a_report_with_its_load_curve_is_the_same_on_a_pool(scenario: Path) -> None:
    pages = {}
    for executor in ("serial", "process"):
        target = scenario.parent / f"{executor}.md"
        options = ["--duration", "4s", "--executor", executor, "--workers", "2"]
        result = runner.invoke(app, ["report", str(scenario), "-o", str(target), *options])
        assert result.exit_code == 0, result.stderr
        curve = (scenario.parent / f"{executor}-p99-vs-load.svg").read_text()
        pages[executor] = (target.read_text().replace(f"]({executor}-", "]("), curve)
    assert pages["process"] == pages["serial"]
    assert "p99 latency against load" in pages["serial"][0]


def test_a_scheduler_with_another_executor_is_refused(scenario: Path) -> None:
    result = runner.invoke(
        app, ["run", str(scenario), "--executor", "process", "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert result.exit_code == 2
    assert "--scheduler sends simulations to a Dask cluster" in result.stderr
    assert "use --executor dask" in result.stderr


def test_without_distributed_the_error_says_what_to_install(
    scenario: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    result = runner.invoke(
        app, ["sweep", str(scenario), "--vary", "seed=1,2", "--executor", "dask"]
    )
    assert result.exit_code == 2
    assert "pip install 'capsim[dask]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_scheduler_is_exit_3_with_the_address(
    scenario: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPSIM_DASK_WORKER_TIMEOUT", "2")
    address = f"tcp://127.0.0.1:{_free_port()}"
    result = runner.invoke(app, ["run", str(scenario), "--scheduler", address])
    assert result.exit_code == 3, result.stderr
    assert f"cannot reach the Dask scheduler at {address}" in result.stderr
    assert "dask scheduler" in result.stderr


@pytest.mark.parametrize("address", ["htp:/x y", "udp://127.0.0.1:5", "tcp://host:port"])
def test_a_malformed_scheduler_address_is_exit_2_with_the_form_to_write(
    scenario: Path, address: str
) -> None:
    result = runner.invoke(app, ["run", str(scenario), "--scheduler", address])
    assert result.exit_code == 2
    assert f"--scheduler {address!r} is not the address of a Dask scheduler" in result.stderr
    assert "tcp://HOST:PORT" in result.stderr


# ---- a scheduler and workers started as separate processes --------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dask(*args: str, **env: str) -> subprocess.Popen[bytes]:
    command = Path(sys.executable).with_name("dask")
    return subprocess.Popen(
        [str(command) if command.exists() else "dask", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **env},
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


@pytest.fixture
def scheduler() -> Iterator[str]:
    port = _free_port()
    process = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    address = f"tcp://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "dask scheduler exited"
                time.sleep(0.2)
        yield address
    finally:
        _stop(process)


def _workers(address: str, *options: str) -> subprocess.Popen[bytes]:
    return _dask(
        "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1", *options
    )


def _capsim(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "capsim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **env},
        preexec_fn=sigint_at_its_default,
    )


def test_a_sweep_on_a_separate_scheduler_and_workers_matches_serial(
    scenario: Path, scheduler: str
) -> None:
    workers = _workers(scheduler, "--nworkers", "2")
    try:
        sweep = ["sweep", str(scenario), "--vary", "tiers.front.instances=3..6:4", "-f", "json"]
        serial = _capsim(*sweep)
        on_cluster = _capsim(
            *sweep, "--executor", "dask", "--scheduler", scheduler, "--workers", "2"
        )
        expected, _ = serial.communicate(timeout=300)
        got, stderr = on_cluster.communicate(timeout=300)
        assert serial.returncode == 0 and on_cluster.returncode == 0, stderr
        assert got == expected
        assert len(json.loads(got)["points"]) == 4
    finally:
        _stop(workers)


#: Long enough per replication (seconds) that a signal or a kill lands while work is pending.
SLOW = SCENARIO.replace("duration: 20s", "duration: 2000s").replace("rate: 320/s", "rate: 400/s")


def _wait_until_started(process: subprocess.Popen[str]) -> str:
    """Wait (however busy the machine) until `process`, started with CAPSIM_PROGRESS_INTERVAL=0,
    says its simulations were handed to the executor; its stderr so far."""
    return stderr_until(process, "started", 120.0)


def test_a_worker_that_dies_is_exit_3_not_a_hang(tmp_path: Path, scheduler: str) -> None:
    (tmp_path / "samples.csv").write_text(SAMPLES)
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    worker = _workers(scheduler, "--no-nanny")
    try:
        sweep = _capsim(
            "sweep", str(path), "--vary", "tiers.front.instances=4,5", "--scheduler", scheduler,
            "--workers", "1", CAPSIM_DASK_WORKER_TIMEOUT="2", CAPSIM_PROGRESS_INTERVAL="0",
        )  # fmt: skip
        before = _wait_until_started(sweep)
        os.killpg(worker.pid, signal.SIGKILL)
        _stdout, stderr = sweep.communicate(timeout=120)
        stderr = before + stderr
    finally:
        _stop(worker)
    assert sweep.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert "has had no worker for 2 s" in stderr and f"dask worker {scheduler}" in stderr


def test_a_lost_scheduler_is_exit_3_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "samples.csv").write_text(SAMPLES)
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    port = _free_port()
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    address = f"tcp://127.0.0.1:{port}"
    worker = _workers(address)
    try:
        sweep = _capsim(
            "sweep", str(path), "--vary", "tiers.front.instances=4,5", "--scheduler", address,
            "--workers", "1", CAPSIM_DASK_WORKER_TIMEOUT="5", CAPSIM_PROGRESS_INTERVAL="0",
        )  # fmt: skip
        before = _wait_until_started(sweep)
        os.killpg(scheduler.pid, signal.SIGKILL)
        _stdout, stderr = sweep.communicate(timeout=120)
        stderr = before + stderr
    finally:
        _stop(worker)
        _stop(scheduler)
    assert sweep.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert "lost the" in stderr and address in stderr and "scheduler" in stderr


def test_a_simulation_whose_workers_keep_dying_is_exit_3(tmp_path: Path) -> None:
    (tmp_path / "samples.csv").write_text(SAMPLES)
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    # No retry: the first worker that dies under a simulation gives it up.
    scheduler = _dask(
        "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
        DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0",
    )  # fmt: skip
    nanny = _workers(address)  # a nanny that starts the worker process again when it dies
    try:
        sweep = _capsim(
            "sweep", str(path), "--vary", "seed=1,2", "--scheduler", address,
            CAPSIM_PROGRESS_INTERVAL="0",
        )  # fmt: skip
        before = _wait_until_started(sweep)
        worker = _worker_process(nanny.pid)
        os.kill(worker, signal.SIGKILL)
        _stdout, stderr = sweep.communicate(timeout=120)
        stderr = before + stderr
    finally:
        _stop(nanny)
        _stop(scheduler)
    assert sweep.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert "kept dying" in stderr and "--memory-limit" in stderr


def _worker_process(parent: int) -> int:
    """A worker process that `parent` started (a pool's or a nanny's; not a resource tracker)."""
    # A child is listed under the thread that started it, not always the main one.
    for thread in Path(f"/proc/{parent}/task").iterdir():
        for child in (thread / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in command:
                return int(child)
    raise AssertionError(f"process {parent} has no worker process")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_dask_sweep_keeps_its_completed_points_and_exits_130(
    tmp_path: Path, sig: signal.Signals
) -> None:
    (tmp_path / "samples.csv").write_text(SAMPLES)
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    target = tmp_path / "result.json"
    # The first point takes a moment, the second far longer than the test waits: the signal goes
    # once the progress lines say that both replications of the first point are done.
    sweep = _capsim(
        "sweep", str(path), "--vary", "simulation.duration=1s,2000s", "--executor", "dask",
        "--workers", "2", "-o", str(target), CAPSIM_PROGRESS_INTERVAL="0",
    )  # fmt: skip
    before = stderr_until(sweep, "done (2/4)", 60.0)
    sweep.send_signal(sig)
    # The local cluster is stopped, not waited for: waiting would either outlast the time
    # limit (a hang) or complete the 2000 s point, which the completed points would list.
    _stdout, after = sweep.communicate(timeout=300)
    stderr = before + after
    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert "Completed before the interruption" in stderr
    assert "simulation.duration=1s: p99" in stderr and "duration=2000s" not in stderr
    assert not target.exists()


def test_a_pool_worker_that_dies_is_exit_3_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "samples.csv").write_text(SAMPLES)
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    run = _capsim(
        "run", str(path), "--executor", "process", "--workers", "2", CAPSIM_PROGRESS_INTERVAL="0"
    )
    before = _wait_until_started(run)
    os.kill(_worker_process(run.pid), signal.SIGKILL)
    _stdout, stderr = run.communicate(timeout=120)
    stderr = before + stderr
    assert run.returncode == 3, stderr
    assert "a worker process of the pool was killed by signal 9 (SIGKILL)" in stderr
    assert "Traceback" not in stderr
