"""Writing outputs to files atomically: a reader never sees a half-written result."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from capsim.errors import UsageError


def _new_file_mode(path: Path) -> int:
    """The mode the file would get from a plain open(): kept if it exists, else 0o666 - umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_output(text: str, path: str | Path) -> None:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder and os.replace."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise UsageError(
            f"cannot write {target}: {error.strerror or error}; check that the folder "
            f"{folder} exists and is writable"
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _new_file_mode(target))
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise UsageError(f"cannot write {target}: {error.strerror or error}") from None
        raise
