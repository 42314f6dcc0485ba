"""The compiled event path (`CAPSIM_COMPILE=1`, mypyc) gives the Python source's results to the
bit, and says when it ran.

The test builds it: a copy of the project's source with the modules of
`accelerator.COMPILED` compiled in place by mypyc, as setup.py's `CAPSIM_COMPILE=1` build does
(mypy, which brings mypyc, and a C compiler: the test environment has mypy, CI has gcc; without
them the build fails and so does this test, saying what is missing). Then the same scenarios and
seeds run on the event path three ways, each in a fresh interpreter: this tree's source, the
compiled copy, and the compiled copy with CAPSIM_PURE_PYTHON=1 (the source again). Every figure
of every result is hashed (tests/fingerprintkit.py); the three must agree.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from capsim.engine import accelerator

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

#: Shapes the compiled modules run differently: least connections, a pool with a timeout and
#: blocking workers (the W3 variant); the fast lane and caches (web-shop); retries, timeouts and
#: breakers; a queue with consumers; an autoscaler. Short runs, two seeds each.
SCENARIOS = {
    "benchmarks/scenarios/w3-variant.yaml": ("simulation.duration=20s",),
    "scenarios/web-shop.yaml": ("simulation.duration=10s", "simulation.warmup=2s"),
    "scenarios/retry-storm.yaml": (),
    "scenarios/queue.yaml": ("simulation.duration=10s", "simulation.warmup=1s"),
    "scenarios/spike-autoscale.yaml": (),
}
SEEDS = (1, 29)

# One interpreter: every scenario and seed on the event path, hashed; and whether it ran compiled.
RUN = """
import json, sys
src, tests, root = sys.argv[1:4]
sys.path[:0] = [src, tests]
from fingerprintkit import fingerprint
from capsim.engine import accelerator
from capsim.engine.runner import run_replication
from capsim.model.build import build_model
from capsim.scenario import load_scenario
cases = json.loads(sys.argv[4])
found = {}
for path, overrides in cases["scenarios"].items():
    for seed in cases["seeds"]:
        model = build_model(load_scenario(f"{root}/{path}", [f"seed={seed}", *overrides]))
        found[f"{path} seed {seed}"] = fingerprint([run_replication(model, 0, "events")])
import capsim.engine.events.instances as instances
print(json.dumps({"compiled": accelerator.compiled(), "instances": instances.__file__,
                  "fingerprints": found}))
"""


def compiled_paths() -> list[str]:
    """The compiled modules' files, as setup.py names them."""
    return ["src/" + name.replace(".", "/") + ".py" for name in accelerator.COMPILED]


@pytest.fixture(scope="module")
def compiled_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `src` of a copy of the project whose event path is compiled in place."""
    root = tmp_path_factory.mktemp("compiled")
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    shutil.copytree(ROOT / "src", root / "src", ignore=skip)
    built = subprocess.run(  # in place; with mypy's settings, as setup.py's build
        [sys.executable, "-m", "mypyc", "--config-file", str(ROOT / "pyproject.toml")]
        + runpy.run_path(str(ROOT / "setup.py"))["MYPY_OPTIONS"]
        + [path.removeprefix("src/") for path in compiled_paths()],
        cwd=root / "src",
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, (
        "the compiled event path did not build (CAPSIM_COMPILE=1 needs mypy, for mypyc, and a "
        f"C compiler such as gcc; compiler found: {shutil.which('cc') or shutil.which('gcc')}):"
        f"\n{built.stdout[-2000:]}\n{built.stderr[-4000:]}"
    )
    return root / "src"


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    """The scenarios run from this tree's source."""
    return _run(ROOT / "src")


def _run(src: Path, **env: str) -> dict[str, Any]:
    cases = json.dumps({"scenarios": SCENARIOS, "seeds": SEEDS})
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(src), str(TESTS), str(ROOT), cases],
        env={**{k: v for k, v in os.environ.items() if k != "CAPSIM_PURE_PYTHON"}, **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_compiled_event_path_gives_the_sources_results_to_the_bit(
    compiled_src: Path, source: dict[str, Any]
) -> None:
    compiled = _run(compiled_src)
    assert source["compiled"] is False
    assert compiled["compiled"] is True, f"loaded from {compiled['instances']}"
    assert compiled["fingerprints"] == source["fingerprints"]
    assert len(source["fingerprints"]) == len(SCENARIOS) * len(SEEDS)


def test_pure_python_runs_the_source_where_the_compiled_modules_are_installed(
    compiled_src: Path, source: dict[str, Any]
) -> None:
    pure = _run(compiled_src, CAPSIM_PURE_PYTHON="1")
    assert pure["compiled"] is False
    assert pure["instances"].endswith("instances.py")
    assert pure["fingerprints"] == source["fingerprints"]


def test_setup_compiles_the_modules_the_accelerator_names() -> None:
    setup = runpy.run_path(str(ROOT / "setup.py"))
    assert setup["compiled_modules"]() == list(accelerator.COMPILED)
    assert all((ROOT / path).is_file() for path in compiled_paths())


def test_the_version_and_the_runs_json_say_the_event_path_ran_compiled(
    compiled_src: Path,
) -> None:
    def capsim(src: Path, *args: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "capsim", *args],
            env={**os.environ, "PYTHONPATH": str(src), **env},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert capsim(compiled_src, "--version").endswith(" (compiled event path)\n")
    assert "compiled" not in capsim(ROOT / "src", "--version")
    run = ("run", str(ROOT / "benchmarks/scenarios/w3-variant.yaml"), "--format", "json")
    run += ("--set", "simulation.duration=5s")
    compiled = json.loads(capsim(compiled_src, *run))
    pure = json.loads(capsim(compiled_src, *run, CAPSIM_PURE_PYTHON="1"))
    assert compiled["engine"].pop("compiled") is True
    assert "compiled" not in pure["engine"]
    assert compiled == pure
