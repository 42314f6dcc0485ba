"""The optional compiled event path: which modules it is, whether they were loaded compiled.

capsim installs as pure Python. Built with `CAPSIM_COMPILE=1` (setup.py; docs/performance.md,
"The compiled event path"), the event path's hot modules listed in `COMPILED` are compiled
with mypyc from the same source, as extension modules next to their `.py` files, which Python
then imports instead. They give the same results to the bit: the same code, the same floats,
the same draws in the same order (tests/test_accelerator.py holds the two builds to it).

`CAPSIM_PURE_PYTHON=1` in the environment runs the Python source even where the compiled
modules are installed: this module, imported by `capsim.engine.events` before any of them,
then puts a finder first on `sys.meta_path` that loads those modules from their `.py` files.

`compiled()` says whether the event path runs compiled (every module of `COMPILED` loaded from
an extension module); `capsim --version` and a run's JSON (`engine.compiled`) report it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: The modules the accelerated build compiles (setup.py reads this tuple): the event path's
#: per-request code (profiled on the W3 variant and web-shop, docs/performance.md).
COMPILED = (
    "capsim.engine.events.clock",
    "capsim.engine.events.station",
    "capsim.engine.events.instances",
    "capsim.engine.events.admission",
    "capsim.engine.events.calls",
    "capsim.engine.events.classes",
    "capsim.engine.events.lanes",
    "capsim.engine.events.balancing",
)

#: The environment variable that asks for the Python source even where compiled modules exist.
PURE_VARIABLE = "CAPSIM_PURE_PYTHON"


class _SourceFirst:
    """A meta path finder that loads the modules of `COMPILED` from their `.py` source."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in COMPILED or not path:
            return None
        source_name = name.rpartition(".")[2] + ".py"
        for folder in path:
            source = Path(folder) / source_name
            if source.is_file():
                return importlib.util.spec_from_file_location(name, source)
        return None


def _loaded_compiled(name: str) -> bool:
    module = sys.modules.get(name)
    where = getattr(module, "__file__", None) or ""
    return where.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled() -> bool:
    """Whether the event path runs compiled: every module of `COMPILED`, loaded, is compiled."""
    import capsim.engine.events  # noqa: F401  (loads every module of COMPILED)

    return all(_loaded_compiled(name) for name in COMPILED)


def _prefer_source_when_asked() -> None:
    if os.environ.get(PURE_VARIABLE) == "1" and not any(
        isinstance(finder, _SourceFirst) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _SourceFirst())


_prefer_source_when_asked()
