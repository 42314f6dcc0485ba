"""The code reads in pieces: no function in src/capsim is longer than 200 lines (issue 14),
where the event path's 900-line `_build` and a 386-line `solve` used to be.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "capsim"
LONGEST = 200


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function and method under `root`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                where = f"{path.relative_to(root.parents[1])}:{node.lineno} {node.name}"
                found.append((lines, where))
    return found


def test_no_function_is_longer_than_200_lines() -> None:
    found = function_lengths(SOURCE)
    assert len(found) > 1000  # the walk saw the whole package's functions
    too_long = [f"{where} ({lines} lines)" for lines, where in found if lines > LONGEST]
    assert too_long == [], "split these functions: " + ", ".join(too_long)


def test_the_length_check_sees_a_long_function(tmp_path: Path) -> None:
    package = tmp_path / "src" / "capsim" / "engine"
    package.mkdir(parents=True)
    body = "\n".join(f"    x{i} = {i}" for i in range(LONGEST))
    (package / "long.py").write_text(f"def long() -> None:\n{body}\n")
    assert function_lengths(package) == [(LONGEST + 1, "capsim/engine/long.py:1 long")]


def test_the_capacity_searches_read_in_pieces_too() -> None:
    # Issue 15: size_tiers (191 lines) and find_saturation (214) were split into named steps.
    analysis = SOURCE / "analysis"
    found = [
        (lines, where)
        for lines, where in function_lengths(analysis)
        if any(f"analysis/{name}.py:" in where for name in ("sizing", "sizing_start", "saturate"))
    ]
    assert len(found) > 40
    too_long = [f"{where} ({lines} lines)" for lines, where in found if lines > 100]
    assert too_long == [], "split these functions: " + ", ".join(too_long)
