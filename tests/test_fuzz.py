"""The fuzzer: mutated scenarios through the real command line end calmly, never with a traceback.

Valid scenarios (every file of scenarios/ and tests/oracles/) are mutated the ways a hurried
edit, a bad merge or a hostile pull request would: wrong types, missing keys, extreme numbers,
unicode names, deep nesting, YAML tags and anchors, duplicate keys, truncation. Each mutant goes
through `capsim run` (and sometimes `validate` or `solve`) in-process, with a short duration and a
small `--max-requests`, so that the valid ones finish fast. Every one must end with exit code 0,
1, 2 or 3, a message on stderr when it is not 0, no traceback, in bounded time.

The default budget keeps this file well under a minute; set ``CAPSIM_FUZZ_EXAMPLES=N`` for the
long on-demand run (docs/robustness.md records its count).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from capsim.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted([*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("tests/oracles/*.yaml")])
SEED_TEXTS = {path.name: path.read_text(encoding="utf-8") for path in SEEDS}
#: Data files the examples name (traces, rate series), copied beside every scenario under test.
EXAMPLE_DATA = ROOT / "scenarios" / "traffic"


def beside_example_data(folder: Path) -> Path:
    """`folder` with the examples' data files in it, as they sit beside the examples."""
    if not (folder / EXAMPLE_DATA.name).exists():
        shutil.copytree(EXAMPLE_DATA, folder / EXAMPLE_DATA.name)
    return folder


EXAMPLES = int(os.environ.get("CAPSIM_FUZZ_EXAMPLES", "120"))
#: Seconds one mutant may take, start to finish, through the CLI.
TIME_LIMIT = 20.0

runner = CliRunner()

EXTREMES: list[Any] = [
    0,
    -1,
    -0.0,
    1e-300,
    1e300,
    -1e300,
    10**30,
    -(10**30),
    2**63,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    None,
    "",
    " ",
    "0s",
    "-5ms",
    "1e400s",
    "1e3",
    "010",
    "12:30",
    "no",
    "0x10",
    "1e9/s",
    "1e-9/s",
    "0.5/s",
    "150%",
    "-1%",
    "NaN",
    "∞",
    "ü" * 3,
    "x" * 5000,
    [],
    {},
    [1, 2, 3],
    {"dist": "lognormal", "mean": "1e300s", "cv": 1e300},
    {"dist": "uniform", "min": "5ms", "max": "1ms"},
    {"dist": "empirical", "samples": []},
    {"dist": "empirical", "file": "../../etc/passwd"},
    {"dist": "gamma", "mean": 0, "cv": 0},
    {"model": "lru", "capacity": 10**15, "keys": 10**18, "zipf": 0.9},
    {"model": "lru", "capacity": 1, "keys": 1, "zipf": -3},
]
NAMES = ["app", "db", "cache", "cdn", "ü-tier", "名前", "a" * 300, "no", "on", "1", "x.y", "🙂"]
TAGS = [
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!timestamp 2001-12-14",
    "!!float '1e3'",
    "!!int '12'",
    "!!str 5",
    "!custom 1",
    "!!omap [a: 1]",
]


# ---- mutations of parsed data ------------------------------------------------------------------
def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


def _deep(levels: int) -> Any:
    value: Any = "20ms"
    for level in range(levels):
        value = [value] if level % 2 else {"x": value}
    return value


def mutate_data(data: Any, rnd: random.Random) -> Any:
    """One structural mutation at a random place of the scenario's data."""
    path = rnd.choice(_paths(data))
    target = _get(data, path)
    kind = rnd.choice(
        ["extreme", "extreme", "delete", "retype", "rename", "add", "nest", "wrap", "swap"]
    )
    if kind == "extreme":
        return _set(data, path, rnd.choice(EXTREMES))
    if kind == "delete" and path:
        del _get(data, path[:-1])[path[-1]]
        return data
    if kind == "retype":
        replacement = {dict: [target], list: {"x": target}}.get(type(target), [target])
        return _set(data, path, replacement)
    if kind == "rename" and path and isinstance(path[-1], str):
        parent = _get(data, path[:-1])
        parent[rnd.choice(NAMES)] = parent.pop(path[-1])
        return data
    if kind == "add" and isinstance(target, dict):
        target[rnd.choice([*NAMES, "servcie_time", "instances", "calls"])] = rnd.choice(EXTREMES)
        return data
    if kind == "nest":
        return _set(data, path, _deep(rnd.choice([5, 50, 300])))
    if kind == "wrap":
        return _set(data, path, {"dist": rnd.choice(["exponential", "bogus"]), "mean": target})
    if kind == "swap":
        other = rnd.choice(_paths(data))
        if other and path and other[: len(path)] != path and path[: len(other)] != other:
            value = _get(data, other)
            return _set(data, path, value)
    return _set(data, path, rnd.choice(EXTREMES))


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000)


# ---- mutations of the text ---------------------------------------------------------------------
def mutate_text(text: str, rnd: random.Random) -> str:
    """One textual mutation: what an editor, a merge or an attacker can do to the file."""
    lines = text.splitlines()
    kind = rnd.choice(
        ["truncate", "duplicate", "tag", "anchor", "bytes", "token", "indent", "deep"]
    )
    index = rnd.randrange(len(lines)) if lines else 0
    if kind == "truncate":
        return text[: rnd.randrange(len(text) + 1)]
    if kind == "duplicate" and lines:
        return "\n".join([*lines[: index + 1], lines[index], *lines[index + 1 :]])
    if kind == "tag" and lines:
        line = lines[index]
        if ":" in line and not line.lstrip().startswith("#"):
            head = line.split(":", 1)[0]
            lines[index] = f"{head}: {rnd.choice(TAGS)}"
        return "\n".join(lines)
    if kind == "anchor":
        bomb = "\n".join(
            ["bomb0: &b0 [x, x, x, x, x, x, x, x, x]"]
            + [f"bomb{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, 9)]
        )
        choice = rnd.choice(
            [
                bomb,
                "defaults: &d {service_time: 1ms}\nother: *d",
                "loop: &l [*l]",
                "merged: {<<: [*missing]}",
            ]
        )
        return text + "\n" + choice + "\n"
    if kind == "bytes":
        position = rnd.randrange(len(text) + 1)
        junk = rnd.choice(
            ["\t", "\x00", "\x07", "\ufeff", "{", "]", ": :", "\u202e", "'", "&", "*"]
        )
        return text[:position] + junk + text[position:]
    if kind == "token":
        words = text.split(" ")
        if words:
            at = rnd.randrange(len(words))
            words[at] = rnd.choice(["1e300", ".nan", "-.inf", "010", "12:30", "no", "~", "1e3"])
        return " ".join(words)
    if kind == "deep":
        depth = rnd.choice([100, 1000, 20_000])
        return text + f"\ndeep: {'[' * depth}1{']' * depth}\n"
    if kind == "indent" and lines:
        lines[index] = "  " * rnd.randrange(1, 4) + lines[index]
        return "\n".join(lines)
    return text


def make_mutant(seed_name: str, seed: int, textual: bool, rounds: int) -> str:
    rnd = random.Random(seed)
    text = SEED_TEXTS[seed_name]
    if textual:
        for _ in range(rounds):
            text = mutate_text(text, rnd)
        return text
    data = yaml.safe_load(text)
    for _ in range(rounds):
        data = mutate_data(data, rnd)
    return _dump(data)


# ---- the command line ---------------------------------------------------------------------------
COMMANDS: list[list[str]] = [
    ["run", "--duration", "0.5s", "--replications", "1", "--format", "json"],
    ["run", "--duration", "0.5s", "--engine", "events", "--set", "simulation.warmup=0.1s"],
    ["run", "--replications", "2", "--format", "csv"],
    ["run", "--duration", "1s", "--format", "markdown"],
    ["validate"],
    ["solve", "--format", "json"],
]


def run_cli(path: Path, command: list[str], max_requests: int = 20_000) -> tuple[Any, float]:
    name, *options = command
    args = [name, str(path), *options]
    if name == "run":
        args += ["--max-requests", str(max_requests)]
    started = time.monotonic()
    result = runner.invoke(app, args)
    return result, time.monotonic() - started


def assert_calm(result: Any, elapsed: float, text: str) -> None:
    where = f"\n--- scenario ---\n{text[:3000]}\n--- stderr ---\n{result.stderr[-3000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}{where}") from result.exception
    assert result.exit_code in (0, 1, 2, 3), f"exit code {result.exit_code}{where}"
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, where
    if result.exit_code:
        assert result.stderr.strip(), f"exit {result.exit_code} without a message{where}"
    assert elapsed < TIME_LIMIT, f"took {elapsed:.1f}s{where}"
    assert len(result.stderr) < 100_000, f"stderr of {len(result.stderr)} characters{where}"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CAPSIM_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed_name=st.sampled_from(sorted(SEED_TEXTS)),
    seed=st.integers(0, 2**32 - 1),
    textual=st.booleans(),
    rounds=st.integers(1, 3),
    command=st.sampled_from(COMMANDS),
)
def test_a_mutated_scenario_ends_calmly(
    tmp_path: Path, seed_name: str, seed: int, textual: bool, rounds: int, command: list[str]
) -> None:
    text = make_mutant(seed_name, seed, textual, rounds)
    path = beside_example_data(tmp_path) / "mutant.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result, elapsed = run_cli(path, command)
    assert_calm(result, elapsed, text)


@pytest.mark.parametrize("name", sorted(SEED_TEXTS))
def test_every_seed_scenario_runs_short_through_the_cli(tmp_path: Path, name: str) -> None:
    path = beside_example_data(tmp_path) / name
    path.write_text(SEED_TEXTS[name], encoding="utf-8")
    result, elapsed = run_cli(path, COMMANDS[0], max_requests=200_000)
    assert_calm(result, elapsed, SEED_TEXTS[name])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "name: a\nname: b\n",  # duplicate keys
        "name: [unclosed\n",  # truncated flow
        "name: !!python/object/apply:os.system ['echo owned']\n",
        "a: &a [*a]\n",
        "\x00",
        "- just\n- a list\n",
    ],
)
def test_a_handful_through_the_real_console_script(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "capsim", "run", str(path), "--duration", "1s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith(f"error: {path}")
    assert "Traceback" not in completed.stderr and completed.stdout == ""
    assert "owned" not in completed.stdout + completed.stderr
