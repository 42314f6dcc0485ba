"""The public surface: `capsim.__all__` holds what the CLI and users call, every name in it (and in
`capsim.engine.__all__`) resolves, and `import capsim` stays cheap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import capsim
import capsim.engine

CLI = Path(capsim.__file__).parent / "cli"


@pytest.mark.parametrize("name", capsim.__all__)
def test_every_public_name_of_capsim_resolves(name: str) -> None:
    assert getattr(capsim, name) is not None


@pytest.mark.parametrize("name", capsim.engine.__all__)
def test_every_entry_point_of_the_engine_resolves(name: str) -> None:
    assert getattr(capsim.engine, name) is not None


def test_what_the_cli_calls_on_capsim_is_public() -> None:
    used = {
        name
        for path in CLI.glob("*.py")
        for name in re.findall(r"\bcapsim\.([a-z_]\w*)\(", path.read_text(encoding="utf-8"))
    }
    assert used, "the CLI calls capsim's library functions"
    assert used - set(capsim.__all__) == set()


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = capsim.nothing_here  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = capsim.engine.nothing_here  # type: ignore[attr-defined]


def test_the_public_errors_are_the_ones_the_library_raises() -> None:
    from capsim.analysis.solve import UnstableModelError
    from capsim.errors import ScenarioError

    assert capsim.UnstableModelError is UnstableModelError
    assert capsim.ScenarioError is ScenarioError
    assert issubclass(capsim.UnstableModelError, capsim.CapsimError)


def test_importing_capsim_loads_neither_numpy_nor_simpy() -> None:
    code = "import sys, capsim; print(sorted(m for m in ('numpy', 'simpy') if m in sys.modules))"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"
