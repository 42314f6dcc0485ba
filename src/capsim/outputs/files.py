"""Writing outputs: regular files atomically, devices, FIFOs and standard output directly.

A regular file (or a new path) is written through a temporary file in the same folder renamed
into place, so a reader never sees a half-written result. Anything else is not a file to
replace: `/dev/null` and other devices, FIFOs, and `-` or `/dev/stdout` (standard output) are
opened and written as they are. A symbolic link is followed: its target is written (atomically,
when it is a regular file) and the link stays. docs/robustness.md, "Output paths", says it all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from capsim.errors import UsageError
from capsim.safeio import input_read_as, os_reason
from capsim.textsafe import visible

#: Paths that name standard output (written to `sys.stdout`, never opened or replaced).
STDOUT_NAMES = ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")
#: Paths that name an open descriptor of this process: written in place (appended), never
#: replaced, since the file behind them belongs to whoever opened it (a shell's redirection).
_DESCRIPTOR = re.compile(r"/dev/std(?:err|in)|/(?:dev/fd|proc/self/fd)/\d+")


def _new_file_mode(path: Path) -> int:
    """The mode the file would get from a plain open(): kept if it exists, else 0o666 - umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _cannot(path: str | Path, reason: str) -> UsageError:
    return UsageError(f"cannot write {visible(str(path))}: {reason}")


def is_stdout(path: str | Path) -> bool:
    """Whether `path` means standard output (`-`, `/dev/stdout`, `/dev/fd/1`)."""
    return str(path) in STDOUT_NAMES


def is_regular_destination(path: str | Path) -> bool:
    """Whether `path` (symlinks followed) is a regular file or does not exist yet.

    False for standard output, devices, FIFOs, sockets, folders and open descriptors
    (`/dev/fd/N`): those are written directly, or refused, never replaced.
    """
    name = str(path)
    if is_stdout(name) or _DESCRIPTOR.fullmatch(name):
        return False
    try:
        return stat.S_ISREG(os.stat(name).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # the write itself says what is wrong (a loop, a name too long)


def _final_target(path: Path) -> Path:
    """The file a write to `path` should replace: the end of its symlink chain, if it is one."""
    try:
        return Path(os.path.realpath(path, strict=False)) if path.is_symlink() else path
    except OSError as error:
        raise _cannot(path, os_reason(error)) from None


def _write_directly(data: bytes, path: str) -> None:
    """Write to a device, a FIFO or a descriptor path as it is: opened, written, closed.

    Opened for appending: a device or a FIFO does not care, and a shell's `2>>log` behind
    `/dev/stderr` is added to, not truncated.
    """
    try:
        with open(path, "ab") as stream:
            stream.write(data)
    except OSError as error:
        raise _cannot(path, os_reason(error)) from None


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (a test's capture): write text
        sys.stdout.write(data.decode("utf-8"))
    else:
        buffer.write(data)
        buffer.flush()


def check_destination(path: str | Path | None) -> None:
    """Refuse, before anything is simulated, a destination no write could succeed at: a folder,
    a read-only file, a file in a folder that does not exist. The write checks again (a full
    disk, or what changed meanwhile, is found then); standard output and descriptors pass."""
    if path is None or is_stdout(path) or _DESCRIPTOR.fullmatch(str(path)):
        return
    target = _final_target(Path(path))
    _check_replaceable(target, may_replace_input=True)  # the inputs are not read yet
    folder = target.parent if str(target.parent) else Path(".")
    try:
        missing = not folder.is_dir()
    except OSError as error:  # a name too long: is_dir() does not swallow that one
        raise _cannot(path, os_reason(error)) from None
    if missing:
        raise _cannot(
            path, f"the folder {visible(str(folder))} does not exist; create it or choose another path"
        )


def _check_not_an_input(target: Path) -> None:
    """Refuse to replace a file this command read (its scenario, a baseline, a measurement file,
    a samples file): `run shop.yaml -o shop.yaml` would lose the scenario for its results."""
    what = input_read_as(target)
    if what is not None:
        raise _cannot(
            target,
            f"it is {what} this command reads; writing there would replace it. Give another path",
        )


def _check_replaceable(target: Path, may_replace_input: bool = False) -> None:
    """Refuse what a plain open() would refuse: a folder, or a file we may not write; and a
    file this command read, unless `may_replace_input` (`size --write` rewriting its scenario)."""
    if not may_replace_input:
        _check_not_an_input(target)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return
    except OSError as error:
        raise _cannot(target, os_reason(error)) from None
    if stat.S_ISDIR(info.st_mode):
        raise _cannot(target, "it is a folder; give the path of a file")
    if not os.access(target, os.W_OK):
        raise _cannot(target, "permission denied; the file is read-only for you")


def _temporary_in(folder: Path, target: Path) -> tuple[int, str]:
    try:
        # A short fixed prefix: the target's own name may already be as long as names can be.
        return tempfile.mkstemp(dir=folder, prefix=".capsim-", suffix=".tmp")
    except OSError as error:
        raise _cannot(
            target, f"{os_reason(error)} (writing into the folder {visible(str(folder))})"
        ) from None


def _replace_atomically(data: bytes, target: Path, may_replace_input: bool = False) -> None:
    """Write `data` to a temporary file next to `target`, then rename it onto `target`."""
    _check_replaceable(target, may_replace_input)
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = _temporary_in(folder, target)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _new_file_mode(target))
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _cannot(target, os_reason(error)) from None
        raise


def write_bytes(data: bytes, path: str | Path, may_replace_input: bool = False) -> None:
    """Write `data` to `path`: atomically for a regular file, directly for anything else.

    A file the command read is not replaced unless `may_replace_input` (see `_check_replaceable`).
    """
    name = str(path)
    if is_stdout(name):
        _write_stdout(data)
    elif not is_regular_destination(name):
        try:
            if stat.S_ISDIR(os.stat(name).st_mode):
                raise _cannot(name, "it is a folder; give the path of a file")
        except OSError as error:
            raise _cannot(name, os_reason(error)) from None
        _write_directly(data, name)
    else:
        _replace_atomically(data, _final_target(Path(name)), may_replace_input)


def write_output(text: str, path: str | Path, may_replace_input: bool = False) -> None:
    """Write `text` (UTF-8) to `path` (see `write_bytes`; `-` is standard output)."""
    write_bytes(text.encode("utf-8", errors="backslashreplace"), path, may_replace_input)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder` itself (flock on its descriptor), for a group of renames."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise _cannot(folder, os_reason(error)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_file_group(files: Mapping[str, bytes], folder: Path) -> None:
    """Write several files of one output (a Markdown report and its images) into `folder`.

    Every file is written complete into a temporary folder beside them, then, holding a lock on
    `folder`, renamed into place in the given order (the images first, the document last): two
    runs writing the same report never mix one's document with the other's images.
    """
    folder = folder if str(folder) else Path(".")
    targets = {name: _final_target(folder / name) for name in files}
    for target in targets.values():
        _check_replaceable(target)
    try:
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".capsim-"))
    except OSError as error:
        raise _cannot(folder / next(iter(files), ""), os_reason(error)) from None
    try:
        staged: dict[str, Path] = {}
        for name, data in files.items():
            temporary = staging / f"{len(staged)}.tmp"
            with open(temporary, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, _new_file_mode(targets[name]))
            staged[name] = temporary
        home = folder.resolve()
        with _folder_lock(folder):
            for name, temporary in staged.items():
                if targets[name].parent.resolve() == home:
                    os.replace(temporary, targets[name])
                else:  # a symlink to a file elsewhere (maybe another file system)
                    _replace_atomically(files[name], targets[name])
    except OSError as error:
        raise _cannot(folder, os_reason(error)) from None
    finally:
        for leftover in staging.iterdir() if staging.exists() else ():
            with contextlib.suppress(OSError):
                leftover.unlink()
        with contextlib.suppress(OSError):
            staging.rmdir()
