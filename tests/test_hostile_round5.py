"""Hostile inputs, round five (vecties): scenario files and arguments a careless or hostile user
might give. Each must end with a located message (file:line:col where it comes from a file,
what is wrong, what would be valid) and exit 2 (or 3 for a resource limit), in bounded time and
memory, without a traceback, and without touching an output file it did not finish.

What this round found: a tier name with a Cyrillic 'а' was suggested for the Latin 'app'
("unknown tier 'app'; did you mean 'аpp'?", two names that look the same); a number written
with 5,000 digits was "'.inf' is not a finite number", a value the user never wrote; a name of
more than 1,024 characters as a key was "mapping values are not allowed here"; and
`--set tiers.app.calls[0].tier=db`, the way every message writes a path into a list, was
blamed on the scenario file ("unknown key 'calls[0]'; did you mean 'calls'?").
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app
from childprocess import sigint_at_its_default, stderr_until

BASE = """name: base
seed: 1
simulation: {duration: 2s, warmup: 0.5s}
traffic:
  web: {entry: app, rate: 50/s}
tiers:
  app: {service_time: 2ms, calls: [db]}
  db: {service_time: 1ms}
"""
#: Memory a capsim process may map, and the time it may take, for any of these inputs.
MEMORY_CAP = 1536 * 1024 * 1024
TIME_CAP_S = 60.0
#: What an in-process case may take (CPU): far more than any needs, far less than a hang.
CPU_CAP_S = 10.0


def edited(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


def nested_anchors(levels: int) -> str:
    """Billion laughs: each anchor a list of ten aliases of the one before."""
    lines = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n" + BASE


def invoke(*args: str) -> tuple[int, str]:
    """The command in this process, with its CPU time bounded; (exit code, stderr)."""
    began = time.process_time()
    result = CliRunner().invoke(app, list(args))
    assert time.process_time() - began < CPU_CAP_S
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    sigint_at_its_default()


def capsim(*args: str, cwd: Path) -> tuple[int, str]:
    """`python -m capsim ARGS` in a process of its own under the memory and time caps."""
    done = subprocess.run(
        [sys.executable, "-m", "capsim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIME_CAP_S,
        preexec_fn=_limit_memory,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


# ---- the files themselves ------------------------------------------------------------------
FILES: dict[str, tuple[str | bytes, str]] = {
    "empty": ("", "s.yaml: the file is empty; a scenario needs at least name, traffic and tiers"),
    "blank lines": ("\n \n\n", "s.yaml: the file is empty"),
    "binary": (bytes(range(256)) * 4, "the file is not UTF-8 text (byte 0x80); save it as UTF-8"),
    "UTF-16": (BASE.encode("utf-16"), "s.yaml:1:1: the file is not UTF-8 text"),
    "a NUL byte": (BASE + "\x00", "s.yaml:9:1: the file holds the control character U+0000"),
    "billion laughs": (nested_anchors(9), "expands to more than 100,000 values (aliases included)"),
    "deep nesting": (BASE + "x: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    "a duplicated tier": (
        BASE + "  app: {service_time: 3ms}\n",
        "s.yaml:9:3: tiers.app: duplicate key 'app' (first given on line 7)",
    ),
    "a list at the top": ("- a\n- b\n", "s.yaml:1:1: the top level of a scenario must be a mapping"),
    "a Python tag": (
        edited("name: base", "name: !!python/object/apply:os.system [id]"),
        "s.yaml:1:7: name: the YAML tag '!!python/object/apply:os.system' is not allowed",
    ),
    "a key of a million characters": (
        edited("  app: {", "  " + "a" * 1_000_000 + ": {"),
        "YAML reads a key only up to 1,024 characters before its ':', and this one is longer",
    ),
    "5,000 digits": (
        edited("seed: 1", "seed: " + "9" * 5000),
        "s.yaml:2:7: seed: .inf is not a finite number (any number beyond about 1.8e308 counts",
    ),
    "a Cyrillic a": (
        edited("  app: {", "  \u0430pp: {"),
        "unknown tier 'app'; did you mean '\u0430pp'? (they may look alike: '\u0430pp' has "
        "'\u0430' U+0430 CYRILLIC SMALL LETTER A)",
    ),
    "a zero-width space": (
        edited("entry: app", "entry: ap\u200bp"),
        "s.yaml:5:16: traffic.web.entry: 'ap\\u200bp' is not a valid name; use letters, digits, "
        "'_' and '-' (no dots or spaces) ('ap\\u200bp' holds U+200B ZERO WIDTH SPACE)",
    ),
    "a decomposed accent": (
        edited("  db: {", "  cafe\u0301: {service_time: 1ms}\n  db: {"),
        "(no dots or spaces) ('cafe\u0301' holds U+0301 COMBINING ACUTE ACCENT, a separate "
        "accent: write the accented letter itself, 'caf\u00e9')",
    ),
}
#: The cases that need a process of their own (memory or time at stake).
HEAVY = {"billion laughs", "deep nesting", "a key of a million characters", "5,000 digits"}


@pytest.mark.parametrize("case", sorted(set(FILES) - HEAVY))
def test_a_hostile_file_is_refused_with_its_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    content, says = FILES[case]
    scenario = tmp_path / "s.yaml"
    if isinstance(content, bytes):
        scenario.write_bytes(content)
    else:
        scenario.write_text(content, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, err = invoke("run", "s.yaml")
    assert code == 2, err
    assert says in err, err


@pytest.mark.parametrize("case", sorted(HEAVY))
def test_a_heavy_hostile_file_is_refused_within_the_caps(tmp_path: Path, case: str) -> None:
    content, says = FILES[case]
    assert isinstance(content, str)
    (tmp_path / "s.yaml").write_text(content, encoding="utf-8")
    code, err = capsim("run", "s.yaml", cwd=tmp_path)
    assert code == 2, err
    assert says in err, err


def test_a_folder_and_a_symlink_loop_are_not_scenarios(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    monkeypatch.chdir(tmp_path)
    code, err = invoke("run", "folder")
    assert code == 2 and "folder: cannot read the file: it is a folder" in err, err
    code, err = invoke("run", "a.yaml")
    assert code == 2 and "a symbolic link in the path points, directly or not, to itself" in err


# ---- every numeric field: NaN, infinite, negative, zero -----------------------------------
NUMBERS = [
    ("rate: 50/s", "rate: .nan", "5:27: traffic.web.rate: nan is not a finite number"),
    ("rate: 50/s", "rate: 0/s", "5:27: traffic.web.rate: '0/s' is not greater than 0"),
    ("duration: 2s", "duration: .inf", "3:24: simulation.duration: inf is not a finite number"),
    ("duration: 2s", "duration: -2s", "3:24: simulation.duration: '-2s' is not greater than 0"),
    ("warmup: 0.5s", "warmup: -1s", "3:36: simulation.warmup: '-1s' is negative"),
    ("service_time: 2ms", "service_time: -2ms", "7:23: tiers.app.service_time: '-2ms' is negative"),
    (
        "service_time: 2ms",
        "service_time: {dist: exponential, mean: .nan}",
        "7:49: tiers.app.service_time.mean: nan is not a finite number",
    ),
    ("app: {", "app: {instances: .nan, ", "7:20: tiers.app.instances: .nan is not a finite"),
    ("app: {", "app: {concurrency: 2.5, ", "7:22: tiers.app.concurrency: 2.5 is not a whole"),
    ("app: {", "app: {timeout: -1s, ", "7:18: tiers.app.timeout: '-1s' is not greater than 0"),
    (
        "calls: [db]",
        "calls: [{tier: db, probability: .inf}]",
        "7:60: tiers.app.calls[0].probability: inf is not a finite number",
    ),
    (
        "  db: {service_time: 1ms}",
        "  db: {type: database, service_time: 1ms, replicas: 1, read_ratio: .nan}",
        "8:68: tiers.db.read_ratio: nan is not a finite number",
    ),
    (
        "rate: 50/s}",
        "rate: 50/s, profile: [{at: -5s, rate: 5/s}]}",
        "5:48: traffic.web.profile[0].at: '-5s' is negative",
    ),
    (
        "rate: 50/s}",
        "arrivals: {mmpp: {rates: [.inf, 5/s], mean_sojourn: [1s, 1s]}}}",
        "5:47: traffic.web.arrivals.mmpp.rates[0]: inf is not a finite number",
    ),
    ("warmup: 0.5s}", "warmup: 0.5s, replications: .nan}", "3:56: simulation.replications"),
    ("warmup: 0.5s}", "warmup: 0.5s, share_over: [.nan]}", "3:55: simulation.share_over[0]"),
]


@pytest.mark.parametrize(("old", "new", "says"), NUMBERS, ids=[n for _, n, _ in NUMBERS])
def test_a_number_that_cannot_be_is_refused_where_it_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, old: str, new: str, says: str
) -> None:
    (tmp_path / "s.yaml").write_text(edited(old, new), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, err = invoke("run", "s.yaml")
    assert code == 2, err
    assert f"s.yaml:{says}" in err, err
    assert "must be" in err or "write" in err  # what would be valid


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("rate: 50/s", "rate: 1e300/s", "more than the limit of 100,000,000"),
        ("app: {", "app: {instances: 1000000000000, ", "more than the limit of 4 GiB"),
        ("calls: [db]", "calls: [{tier: db, repeat: 1e18}]", "capsim simulates at most 10,000"),
    ],
)
def test_a_huge_number_is_a_resource_limit_before_anything_runs(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    (tmp_path / "s.yaml").write_text(edited(old, new), encoding="utf-8")
    code, err = capsim("run", "s.yaml", cwd=tmp_path)
    assert code == 3 and says in err, err


# ---- --set into lists ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("tiers.app.calls[0].tier=db", "tiers.app.calls[0] is not a mapping, so it has no key"),
        ("tiers.app.calls.7=db", "tiers.app.calls is a list of 1; use an index 0..0 after it"),
        ("tiers.app.calls.-1=db", "use an index 0..0 after it, not '-1'"),
        ("tiers.app.calls[0]={tier: db, probability: 2}", "tiers.app.calls[0].probability: 2"),
        ("tiers.app.service_time.x=1", "tiers.app.service_time is not a mapping"),
    ],
)
def test_set_into_a_list_is_refused_on_the_command_line_not_in_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, override: str, says: str
) -> None:
    (tmp_path / "s.yaml").write_text(BASE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, err = invoke("run", "s.yaml", "--set", override)
    assert code == 2, err
    assert f"--set {override}: " in err and says in err, err


def test_set_with_brackets_reaches_the_same_place_as_dots(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "s.yaml").write_text(
        edited("calls: [db]", "calls: [{tier: db, probability: 0.5}]"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    outputs = []
    for override in ("tiers.app.calls.0.probability=1", "tiers.app.calls[0].probability=1"):
        result = CliRunner().invoke(app, ["run", "s.yaml", "--set", override, "--format", "json"])
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


# ---- outputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "extra", "code"),
    [
        (edited("rate: 50/s", "rate: -1/s"), [], 2),
        (BASE, ["--max-requests", "10"], 3),
    ],
)
def test_a_failed_run_leaves_the_output_file_as_it_was(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, extra: list[str], code: int
) -> None:
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "out.json").write_text('{"old": true}\n')
    monkeypatch.chdir(tmp_path)
    assert invoke("run", "s.yaml", "--output", "out.json", *extra)[0] == code
    assert (tmp_path / "out.json").read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "s.yaml"]


def test_an_interrupted_run_leaves_the_output_file_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(edited("duration: 2s", "duration: 200000s"))
    (tmp_path / "out.json").write_text('{"old": true}\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "capsim", "run", "s.yaml", "-o", "out.json", "--max-requests", "inf"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_memory,
        env={**os.environ, "CAPSIM_PROGRESS_INTERVAL": "0"},
    )
    stderr_until(process, "% done", TIME_CAP_S)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=TIME_CAP_S)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert (tmp_path / "out.json").read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "s.yaml"]


def test_a_full_disk_is_named_with_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "s.yaml").write_text(BASE)
    monkeypatch.chdir(tmp_path)
    code, err = invoke("run", "s.yaml", "--output", "/dev/full", "--format", "json")
    assert code == 2 and "cannot write /dev/full: No space left on device" in err, err
