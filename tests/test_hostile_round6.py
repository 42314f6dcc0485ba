"""Hostile inputs, round six (fuzz6): every command's options given values out of range, and
mutants of scenarios that use the event-only settings (pools, autoscalers, partitions, retries,
hedges, breakers, faults, closed classes). Each must end with a clear message (file:line:col
where it comes from a file, what is wrong, what would be valid) and exit 2 (or 3 for a resource
limit), without a traceback.

What this round found: `--replications` of 400 digits crashed `saturate`, `size` and `forecast`
with an OverflowError (the count reached a float); `--load inf` was refused as "must be greater
than 0"; and the scenario reference said that `1e3` and `010` are refused where capsim reads
them (as YAML 1.2 does) as 1000 and ten.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app

BASE = """name: base
seed: 1
simulation: {duration: 2s, warmup: 0.5s}
traffic:
  web: {entry: app, rate: 50/s}
tiers:
  app: {service_time: 2ms, calls: [db]}
  db: {service_time: 1ms}
"""
#: What an in-process case may take (CPU): far more than any needs, far less than a hang.
CPU_CAP_S = 10.0
#: A count no float holds (about 1.8e308 is the largest).
BEYOND_FLOAT = "9" * 400


def invoke(*args: str) -> tuple[int, str]:
    """The command in this process, with its CPU time bounded; (exit code, stderr)."""
    began = time.process_time()
    result = CliRunner().invoke(app, list(args))
    assert time.process_time() - began < CPU_CAP_S
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    return path


SEARCHES = {
    "saturate": [],
    "size": [],
    "forecast": ["--growth", "10%/month"],
}


@pytest.mark.parametrize("command", list(SEARCHES))
def test_a_search_refuses_replications_no_float_can_hold(base: Path, command: str):
    """`run --replications` goes through the scenario's own check ("not a finite number"),
    but the searches took the count as it came, and the first figure computed from it raised
    OverflowError: int too large to convert to float."""
    code, stderr = invoke(command, str(base), *SEARCHES[command], "--replications", BEYOND_FLOAT)
    assert code == 2
    assert "--replications" in stderr
    assert "less than or equal to 1000000000" in stderr


@pytest.mark.parametrize("command", list(SEARCHES))
def test_a_search_of_a_billion_replications_is_a_resource_limit_before_it_starts(
    base: Path, command: str
):
    """The largest count allowed is refused by the run-size guards (exit 3), naming the
    figure to lower, before any replication runs."""
    code, stderr = invoke(command, str(base), *SEARCHES[command], "--replications", "1000000000")
    assert code == 3
    assert "Lower the replications" in stderr or "Shorten the search points" in stderr


@pytest.mark.parametrize("load", ["inf", "nan", "1e309", "1e400x", "inf%"])
@pytest.mark.parametrize("command", ["run", "solve"])
def test_a_load_that_is_not_a_finite_number_says_so(base: Path, command: str, load: str):
    """Before: "--load 'inf' must be greater than 0", which infinity is."""
    code, stderr = invoke(command, str(base), "--load", load)
    assert code == 2
    assert f"--load {load!r} is not a finite load" in stderr
    assert "write a factor (2x, 1.5, 150%)" in stderr


# ---- what the scenario reference says about numbers, held to what the loader does -------------
def _validate(tmp_path: Path, old: str, new: str) -> tuple[int, str]:
    path = tmp_path / "s.yaml"
    assert old in BASE
    path.write_text(BASE.replace(old, new))
    return invoke("validate", str(path))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("rate: 50/s", "rate: 1e3"),  # 1000, as YAML 1.2 reads it
        ("rate: 50/s", "rate: 1.0e3"),
        ("seed: 1", "seed: 010"),  # ten, not octal eight
        ("seed: 1", "seed: 0x10"),
        ("seed: 1", "seed: 0b10"),
        ("rate: 50/s", "rate: 1_000"),
    ],
)
def test_numbers_the_reference_says_are_numbers_are_read_as_numbers(
    tmp_path: Path, old: str, new: str
):
    """docs/scenario-reference.md#units said `1e3` is read as a string and `010` refused; the
    loader reads both as numbers (docs/robustness.md's table), and now the reference says so."""
    code, stderr = _validate(tmp_path, old, new)
    assert code == 0, stderr


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("duration: 2s", "duration: 12:30", "s.yaml:3:24: simulation.duration: '12:30' is not"),
        ("app: {", "app: {blocking: NO, ", "s.yaml:7:19: tiers.app.blocking: expected true or"),
    ],
)
def test_the_yaml_11_traps_the_reference_names_are_refused_where_they_are(
    tmp_path: Path, old: str, new: str, says: str
):
    code, stderr = _validate(tmp_path, old, new)
    assert code == 2
    assert says in stderr


def test_the_reference_says_what_the_loader_does_with_numbers():
    reference = (
        Path(__file__).resolve().parent.parent / "docs" / "scenario-reference.md"
    ).read_text()
    assert "`1e3` and `1.0e3` are\n  1000, `010` is ten" in reference
    assert "YAML 1.1 reads `1e3` as a *string*" not in reference


# ---- an override whose path meets the file's own value ------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "option", "says"),
    [
        (
            "simulation: {duration: 2s, warmup: 0.5s}",
            "simulation: infx",
            ["--duration", "1s"],
            "--duration 1s: simulation is not a mapping, so it has no key 'duration'; the "
            "scenario writes simulation at FILE:3:13: change it there, or set it whole "
            "(--set simulation=...)",
        ),
        (
            "simulation: {duration: 2s, warmup: 0.5s}",
            "simulation: [2s, 0.5s]",
            ["--set", "simulation.warmup=1s"],
            "simulation is a list of 2; use an index 0..1 after it, not 'warmup'; the scenario "
            "writes simulation at FILE:3:13",
        ),
        (
            "app: {service_time: 2ms,",
            "app: {service_time: 2ms,",
            ["--set", "tiers.app.service_time.mean=3ms"],
            "tiers.app.service_time is not a mapping, so it has no key 'mean'; the scenario "
            "writes tiers.app.service_time at FILE:7:23: change it there, or set it whole "
            "(--set tiers.app.service_time=...)",
        ),
    ],
)
def test_an_override_blocked_by_the_files_value_says_where_the_file_writes_it(
    tmp_path: Path, old: str, new: str, option: list[str], says: str
):
    """Found by mutating round 6's scenarios: with `simulation: infx` in the file, `run
    --duration 1s` said only "--duration 1s: simulation is not a mapping", naming the option
    the user typed right and not the line of the file that is wrong."""
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace(old, new))
    code, stderr = invoke("run", str(path), *option)
    assert code == 2
    assert says.replace("FILE", str(path)) in " ".join(stderr.split())


# ---- an output that cannot be written is refused before the work ---------------------------------
WRITERS = {
    "run": [],
    "saturate": [],
    "size": [],
    "forecast": ["--growth", "10%/month"],
    "sweep": ["--vary", "tiers.app.instances=1,2"],
    "report": [],
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_an_output_that_is_a_folder_is_refused_before_anything_is_simulated(
    base: Path, command: str
):
    """Found by giving every command's --output a folder: `saturate`, `forecast` and `report`
    ran their whole search (13 s of CPU for a small forecast; a report's load curve takes
    minutes) and only then said "cannot write ...: it is a folder", losing the work."""
    began = time.process_time()
    code, stderr = invoke(command, str(base), *WRITERS[command], "--output", str(base.parent))
    assert code == 2
    assert f"cannot write {base.parent}: it is a folder; give the path of a file" in stderr
    assert "simulating" not in stderr
    assert time.process_time() - began < 2.0


@pytest.mark.parametrize("command", ["run", "saturate", "forecast"])
def test_an_output_in_a_missing_folder_is_refused_before_anything_is_simulated(
    base: Path, command: str
):
    missing = base.parent / "no-such-folder" / "result.json"
    code, stderr = invoke(command, str(base), *WRITERS[command], "--output", str(missing))
    assert code == 2
    assert f"the folder {missing.parent} does not exist; create it or choose another path" in (
        " ".join(stderr.split())
    )
    assert "simulating" not in stderr
    assert not missing.parent.exists()
