"""capsim's build backend: setuptools', plus mypy (for mypyc) when CAPSIM_COMPILE=1 asks for the
compiled event path (setup.py; docs/performance.md, "The compiled event path").

So `CAPSIM_COMPILE=1 pip install .` builds it in pip's isolated environment like any other
requirement, and a plain `pip install .` (CAPSIM_COMPILE unset) asks for nothing more than
setuptools: no compiler, no mypy, the same pure-Python package as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  (the hooks this backend does not change)
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
)

#: What the compiled build needs besides setuptools: mypy, which brings mypyc.
COMPILER = ["mypy>=1.10"]


#: Set while setuptools runs setup.py only to learn its requirements (mypy is not there yet) or
#: its metadata: setup.py then leaves the compiled modules out (they are built with the wheel).
REQUIRES_ONLY = "CAPSIM_COMPILE_REQUIRES_ONLY"


def _compiler() -> list[str]:
    return COMPILER if os.environ.get("CAPSIM_COMPILE") == "1" else []


@contextlib.contextmanager
def _requires_only() -> Iterator[None]:
    os.environ[REQUIRES_ONLY] = "1"
    try:
        yield
    finally:
        del os.environ[REQUIRES_ONLY]


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    with _requires_only():
        return [*_setuptools.get_requires_for_build_wheel(config_settings), *_compiler()]


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    with _requires_only():
        return [*_setuptools.get_requires_for_build_editable(config_settings), *_compiler()]


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    with _requires_only():
        return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    with _requires_only():
        return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)
