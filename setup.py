"""The optional compiled event path: `CAPSIM_COMPILE=1` compiles its hot modules with mypyc.

Everything else about the package is in pyproject.toml. Without CAPSIM_COMPILE=1 (the default,
and CI's `pip install -e '.[test]'`) this adds nothing: capsim installs as pure Python, no
compiler needed. With it, the modules listed in `capsim.engine.accelerator.COMPILED` are built
as extension modules from the same source (mypy, which brings mypyc, and a C compiler needed):

    pip install mypy
    CAPSIM_COMPILE=1 pip install --no-build-isolation .

See docs/performance.md, "The compiled event path".
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
ACCELERATOR = HERE / "src" / "capsim" / "engine" / "accelerator.py"
#: mypy's settings for the compiled modules (besides pyproject.toml's): the modules they import
#: are read for their types but not checked, since pip's isolated build has none of capsim's
#: dependencies (their types are then Any, which compiles to the same generic operations).
MYPY_OPTIONS = ["--follow-imports=silent", "--no-warn-unused-ignores"]
#: Set by build_support/capsim_build.py while setuptools only collects the requirements.
REQUIRES_ONLY = "CAPSIM_COMPILE_REQUIRES_ONLY"


def compiled_modules() -> list[str]:
    """`COMPILED` of capsim/engine/accelerator.py, read without importing capsim."""
    tree = ast.parse(ACCELERATOR.read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "COMPILED" and node.value is not None:
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{ACCELERATOR}: no COMPILED tuple of module names")


def ext_modules() -> list[object]:
    if os.environ.get("CAPSIM_COMPILE") != "1" or os.environ.get(REQUIRES_ONLY) == "1":
        return []  # pure Python; or the build backend only asks what to install first
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "CAPSIM_COMPILE=1 needs mypyc, which comes with mypy: `pip install mypy`, then "
            "`CAPSIM_COMPILE=1 pip install --no-build-isolation .`"
        ) from None
    paths = ["src/" + name.replace(".", "/") + ".py" for name in compiled_modules()]
    os.chdir(HERE)  # mypycify names the modules from paths relative to the project
    return list(mypycify([*MYPY_OPTIONS, *paths], opt_level="3"))


if __name__ == "__main__":  # run by the build backend (not when a test reads COMPILED)
    setup(ext_modules=ext_modules())
