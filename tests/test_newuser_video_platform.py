"""A platform engineer new to capsim gates a video-on-demand backend in CI and runs its searches
on a Dask cluster (scenarios/video-platform.yaml): a CDN with an origin shield in front of an
origin pool, a metadata API (autoscaled) with a cache and a database with replicas, creators'
uploads feeding a partitioned transcoding queue, an evening peak and a release-night burst.

What the engineer relies on: `capsim check` against a baseline passes an unchanged scenario and
a capacity increase, fails fewer transcoding consumers (overloaded: named first) and a slower
database (its utilization and the API's latencies regressed); the searches give the serial
answer byte for byte on a `dask scheduler` with `dask worker`s started in another folder (the
origin's empirical samples travel in the model), also when a worker dies mid-run; a wrong
`--scheduler` (a silent port, another protocol, a port that cannot exist) is a clear exit 2 or 3
in bounded time, never a hang or "out of memory"; progress lines in a CI log end with
`stopped after` when the work was interrupted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import capsim
from capsim.analysis.points import open_rate
from capsim.analysis.saturate import find_saturation
from capsim.engine.executors import SerialExecutor
from capsim.errors import Interrupted
from childprocess import sigint_at_its_default, stderr_until

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "video-platform.yaml"

#: A small scenario with an empirical sample file beside it (the workers never read it).
SMALL = """\
name: small
seed: 3
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  play: {entry: origin, rate: 60/s}
tiers:
  origin:
    instances: 2
    concurrency: 4
    balancing: least_connections   # the event path: a replication reports as it goes
    service_time: {dist: empirical, file: fetch-times.csv}
"""


def _capsim(*args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "capsim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
        env={**os.environ, **env},
        preexec_fn=sigint_at_its_default,
    )


def _finished(process: subprocess.Popen[str], seconds: float) -> tuple[str, str, float]:
    started = time.monotonic()
    stdout, stderr = process.communicate(timeout=seconds)
    return stdout, stderr, time.monotonic() - started


@pytest.fixture
def small(tmp_path: Path) -> Path:
    (tmp_path / "fetch-times.csv").write_text("62ms\n111ms\n95ms\n240ms\n48ms\n130ms\n")
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


# ---- a sweep says its points' warnings ----------------------------------------------------------
def test_a_sweep_cut_short_of_the_release_night_says_so_once_for_every_point(small: Path) -> None:
    # A sweep with --duration 3min of the video platform said nothing on stderr, table or JSON,
    # although its profile's evening peak and burst came after the end of every point's run.
    profiled = small.read_text().replace(
        "rate: 60/s}", "rate: 60/s, profile: [{at: 0s, rate: 60/s}, {at: 2min, rate: 90/s}]}"
    )
    small.write_text(profiled)
    sweep = _capsim("sweep", str(small), "--vary", "tiers.origin.instances=2,3", "--duration", "5s")
    stdout, stderr, _elapsed = _finished(sweep, 300)
    assert sweep.returncode == 0, stderr
    profile = [line for line in stderr.splitlines() if "its profile changes after the run" in line]
    assert len(profile) == 1, stderr
    assert profile[0].startswith("warning: class 'play'") and profile[0].endswith("(every point)")
    assert "warning" not in stdout


# ---- a wrong --scheduler: a clear message, in bounded time --------------------------------------
@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts connections (the kernel does, from its backlog) and never
    says a word: a port-forward with nothing ready behind it, a firewall that holds them."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


@pytest.fixture
def ssh_like_port() -> Iterator[int]:
    """A server that greets every connection in another protocol (an SSH banner) and stays."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def greet() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.sendall(b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n" + b"\x00\x00\x05\xdc" * 8)
            held.append(connection)

    threading.Thread(target=greet, daemon=True).start()
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()
        for connection in held:
            connection.close()


def test_a_silent_server_at_the_scheduler_address_is_exit_3_in_bounded_time(
    small: Path, silent_port: int
) -> None:
    # Dask's client waited for ever on its handshake here (capsim hung past 200 s).
    address = f"tcp://127.0.0.1:{silent_port}"
    run = _capsim("run", str(small), "--scheduler", address, CAPSIM_DASK_WORKER_TIMEOUT="2")
    _stdout, stderr, _elapsed = _finished(run, 120)
    assert run.returncode == 3, stderr
    assert f"the server at {address} accepted the connection but did not answer" in stderr
    assert "within 2 s" in stderr and "8787 is its dashboard" in stderr
    assert "Traceback" not in stderr


def test_a_server_of_another_protocol_is_exit_3_not_out_of_memory(
    small: Path, ssh_like_port: int
) -> None:
    # Dask read the banner as a frame length of exabytes: "capsim ran out of memory", then a
    # traceback from the half-made client's __del__ a minute later.
    address = f"tcp://127.0.0.1:{ssh_like_port}"
    run = _capsim("run", str(small), "--scheduler", address, CAPSIM_DASK_WORKER_TIMEOUT="20")
    _stdout, stderr, elapsed = _finished(run, 120)
    assert run.returncode == 3, stderr
    assert f"the server at {address} answered, but not as a Dask scheduler" in stderr
    assert "out of memory" not in stderr and "Traceback" not in stderr
    assert elapsed < 60  # not the client's 60 s close


def test_a_port_that_cannot_exist_is_exit_2_before_any_connection(small: Path) -> None:
    # It was tried for 30 s and reported as a scheduler that timed out (exit 3).
    run = _capsim("run", str(small), "--scheduler", "tcp://127.0.0.1:99999")
    _stdout, stderr, _elapsed = _finished(run, 120)
    assert run.returncode == 2, stderr
    assert "port 99999 is not a TCP port (1 to 65535)" in stderr


# ---- progress lines in a CI log ------------------------------------------------------------------
def test_an_interrupted_command_closes_its_progress_lines_with_stopped(small: Path) -> None:
    sweep = _capsim(
        "sweep", str(small), "--vary", "tiers.origin.instances=2,3", "--duration", "20000s",
        CAPSIM_PROGRESS_INTERVAL="0",
    )  # fmt: skip
    before = stderr_until(sweep, "simulating", 120.0)
    sweep.send_signal(signal.SIGINT)
    _stdout, after, _elapsed = _finished(sweep, 120)
    lines = (before + after).splitlines()
    assert sweep.returncode == 130, after
    closing = [line for line in lines if not line.startswith("capsim sweep: point")]
    # It said "finished evaluating" before saying that it had been interrupted.
    assert closing[0].startswith("capsim sweep: stopped after "), lines
    assert "finished evaluating" not in after
    assert any(line.startswith("interrupted after 0 of 4") for line in closing), lines


# ---- Ctrl-C while saturate stretches points for their samples ----------------------------------
#: A rare class whose p99 objective decides the search and is short of samples at every point.
RARE = """\
name: rare
seed: 4
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  web: {entry: app, rate: 200/s}
  export: {entry: app, rate: 0.5/s}
tiers:
  app:
    concurrency: 4
    service_time: {dist: exponential, mean: 10ms}
    classes:
      export: {service_time: 50ms}
slos:
  - {class: export, p99: 55ms}
"""


class CtrlCWhenAPointIsStretched(SerialExecutor):
    """Runs batches here, as `--executor serial` does, and stops as Ctrl-C would (a
    KeyboardInterrupt out of the executor) when a rate comes back longer with the same
    replications: saturate stretching a point for its deciding objective's samples."""

    def __init__(self) -> None:
        self.first: dict[float, tuple[float, int]] = {}

    def run(self, tasks, on_result, progress=None, tick=None):  # type: ignore[no-untyped-def]
        for task in tasks:
            simulation = task.model.simulation
            before = self.first.get(round(open_rate(task.model), 6))
            if before and simulation.duration > before[0] and simulation.replications == before[1]:
                raise KeyboardInterrupt
        for task in tasks:
            simulation = task.model.simulation
            self.first.setdefault(
                round(open_rate(task.model), 6), (simulation.duration, simulation.replications)
            )
        super().run(tasks, on_result, progress, tick)


def test_saturate_stopped_while_stretching_points_still_lists_the_points_it_measured(
    tmp_path: Path,
) -> None:
    # A 13-minute saturate of the video platform, stopped in this phase, said "nothing completed
    # to report" although its whole curve had been measured.
    path = tmp_path / "rare.yaml"
    path.write_text(RARE)
    model = capsim.build_model(capsim.load_scenario(path))
    with pytest.raises(Interrupted) as stop:
        find_saturation(
            model,
            capsim_version=capsim.__version__,
            replications=2,
            duration=4.0,
            executor=CtrlCWhenAPointIsStretched(),
        )
    listed = stop.value.completed_points
    assert len(listed) >= 5, listed  # the curve's points, stable and overloaded
    assert any(line.endswith("stable") for line in listed)
    assert any(line.endswith("overloaded") for line in listed)


# ---- a search's re-runs report as they go (a CI log's progress lines) ---------------------------
NOISY = """\
name: noisy
seed: 1
simulation: {duration: 20s, warmup: 2s, replications: 2}
traffic:
  web: {entry: app, rate: 200/s}
tiers:
  app: {concurrency: 4, service_time: {dist: exponential, mean: 10ms}}
slos:
  - {class: web, p99: 51ms}
"""


def test_saturate_reports_each_replication_of_a_point_measured_again_for_noise(
    tmp_path: Path,
) -> None:
    # Those re-runs reported once, at their start: a saturate of the video platform printed
    # nothing for 90 to 121 s at a time in a CI log.
    path = tmp_path / "noisy.yaml"
    path.write_text(NOISY)
    said: list[str] = []
    find_saturation(
        capsim.build_model(capsim.load_scenario(path)),
        capsim_version=capsim.__version__,
        replications=2,
        duration=2.0,
        progress=lambda _fraction, what: said.append(what),
    )
    again = [what for what in said if what.startswith("re-measuring a point that failed")]
    assert again, said  # this objective, just above the light load's p99, needs re-runs
    started = [what for what in again if ", replication" not in what]
    for label in started:
        # Such a re-run has at least 5 replications (NOISE_RERUN_REPLICATIONS), each reported.
        replications = {
            what.split(":")[0] for what in again if what.startswith(f"{label}, replication")
        }
        assert len(replications) >= 5, (label, again)


# ---- the scenario, as solve sees it --------------------------------------------------------------
def test_solve_judges_the_release_peak_and_names_the_api_as_the_bottleneck() -> None:
    solve = _capsim("solve", str(SCENARIO))
    stdout, stderr, _elapsed = _finished(solve, 120)
    assert solve.returncode == 0, stderr
    assert "bottleneck: api" in stdout
    assert "class play: solved at its profile's peak, 1,400.0/s" in " ".join(stdout.split())
    assert "class browse: solved at its profile's peak, 420.0/s" in " ".join(stdout.split())
    # Its api occupancy objective fails at the 4 instances the api starts with; the note says
    # so (the simulated HPA goes to 5 and holds 66%).
    assert "FAIL  api occupancy <= 80%" in stdout
    assert (
        "note: tier api autoscales (4..20 instances): solved at the 4 it starts with; capsim run "
        "simulates the autoscaler and its lag"
    ) in " ".join(stdout.split())


# ---- the CI gate ---------------------------------------------------------------------------------
def _check(baseline: Path, *sets: str) -> dict[str, object]:
    options = [option for value in sets for option in ("--set", value)]
    check = _capsim(
        "check", str(SCENARIO), "--baseline", str(baseline), "--format", "json", *options
    )
    stdout, stderr, _elapsed = _finished(check, 1200)
    assert "Traceback" not in stderr
    verdict = json.loads(stdout)
    assert check.returncode == verdict["exit_code"], stderr
    return dict(verdict)


def _failed(verdict: dict[str, object]) -> set[str]:
    regressions = verdict["regressions"]
    assert isinstance(regressions, list)
    return {item["check"] for item in regressions if item["status"] == "regressed"}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gate") / "baseline.json"
    run = _capsim("run", str(SCENARIO), "--format", "json", "--output", str(path))
    _stdout, stderr, _elapsed = _finished(run, 1200)
    assert run.returncode == 0, stderr
    return path


@pytest.mark.slow
def test_the_unchanged_scenario_and_more_origin_capacity_pass_the_gate(baseline: Path) -> None:
    unchanged = _check(baseline)
    assert unchanged["exit_code"] == 0 and _failed(unchanged) == set()
    more = _check(baseline, "tiers.origin.instances=3")
    assert more["exit_code"] == 0, more["headline"]


@pytest.mark.slow
def test_too_few_transcoding_consumers_fail_the_gate_overloaded_first(baseline: Path) -> None:
    verdict = _check(baseline, "tiers.transcode.consumers=3")
    assert verdict["exit_code"] == 1
    assert str(verdict["headline"]).startswith("FAIL: tier transcode OVERLOADED")
    overloaded = verdict["overloaded"]
    assert isinstance(overloaded, list) and [o["tier"] for o in overloaded] == ["transcode"]
    assert {"tier transcode utilization", "tier transcode age.p99"} <= _failed(verdict)


@pytest.mark.slow
def test_a_slower_database_fails_the_gate_on_its_utilization_and_the_api_latencies(
    baseline: Path,
) -> None:
    verdict = _check(baseline, "tiers.meta_db.service_time={dist: lognormal, mean: 45ms, cv: 1.2}")
    assert verdict["exit_code"] == 1 and verdict["overloaded"] == []
    failed = _failed(verdict)
    assert "tier meta_db utilization" in failed
    assert {"class browse latency.p99", "class upload latency.mean"} <= failed
    assert not any(name.startswith("class play") for name in failed)  # the CDN path is untouched


# ---- a scheduler and workers of their own, started in another folder ----------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dask(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    command = Path(sys.executable).with_name("dask")
    return subprocess.Popen(
        [str(command) if command.exists() else "dask", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


@pytest.mark.slow
def test_a_sweep_on_workers_elsewhere_matches_serial_even_when_a_worker_dies(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "workers"  # no scenario and no samples file here
    elsewhere.mkdir()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                      cwd=elsewhere)  # fmt: skip
    worker_args = ["worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    doomed = _dask(*worker_args, "--no-nanny", cwd=elsewhere)
    survivor = _dask(*worker_args, cwd=elsewhere)
    try:
        sweep = ["sweep", str(SCENARIO), "--vary", "tiers.transcode.consumers=4,8",
                 "--replications", "2", "--duration", "3min", "--format", "json"]  # fmt: skip
        serial = _capsim(*sweep)
        on_cluster = _capsim(*sweep, "--scheduler", address, "--workers", "2",
                             cwd=tmp_path, CAPSIM_PROGRESS_INTERVAL="0")  # fmt: skip
        stderr_until(on_cluster, "started", 300.0)
        time.sleep(2.0)
        os.killpg(doomed.pid, signal.SIGKILL)  # mid-run: its simulations go to the survivor
        expected, serial_err, _elapsed = _finished(serial, 1800)
        got, stderr, _elapsed = _finished(on_cluster, 1800)
    finally:
        for process in (doomed, survivor, scheduler):
            _stop(process)
    assert serial.returncode == 0, serial_err
    assert on_cluster.returncode == 0, stderr
    assert got == expected
    assert [p["values"] for p in json.loads(got)["points"]] == [
        {"tiers.transcode.consumers": 4},
        {"tiers.transcode.consumers": 8},
    ]
