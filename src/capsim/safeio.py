"""Reading input files with a hard cap: at most cap + 1 bytes, whatever the file claims to be.

A file's reported size cannot be trusted: `/dev/zero`, a symlink to it, a FIFO, `/dev/stdin` fed
by `yes` and `/proc` files all report 0 (or anything) and never end, and a sparse file reports a
size but costs nothing to make. `read_capped` reads in chunks and stops one byte past the cap, so
memory stays bounded and Ctrl-C or SIGTERM is seen between chunks. Every reader of user files
goes through it: scenarios, samples files, baselines, compare inputs, and the measurement files
of later commands.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
from pathlib import Path

from capsim.errors import UsageError
from capsim.textsafe import visible

#: The chunk read at a time: small enough for an interrupt to be seen at once.
CHUNK_BYTES = 1024 * 1024
#: What `-` stands for as an input path.
STDIN = "-"


class InputError(UsageError):
    """An input file could not be read, or is larger than its cap; `reason` says why, alone."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read {visible(self.path)}: {reason}")


def size_text(size: int) -> str:
    """`10 MiB`, `512 KiB`, `300 bytes`: a cap as a person would say it."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size:,} bytes"


def too_large(cap: int, what: str) -> str:
    return (
        f"it is larger than {size_text(cap)}, the most {what} may be (reading stopped after "
        f"{size_text(cap)}); if this is the right file, it is not {what}"
    )


def os_reason(error: OSError) -> str:
    """The system's words for a failed open or read, with a hint for the common ones."""
    reason = error.strerror or str(error)
    hints = {
        "ENOENT": "check the path",
        "EACCES": "check the file's permissions (and its folders')",
        "EPERM": "check the file's permissions (and its folders')",
        "ELOOP": "a symbolic link in the path points, directly or not, to itself",
        "ENAMETOOLONG": "a name in the path is longer than the file system allows",
        "EISDIR": "give the path of a file, not of a folder",
        "ENOTDIR": "a part of the path that should be a folder is a file",
    }
    hint = hints.get(errno.errorcode.get(error.errno or 0, ""), "")
    return f"{reason}; {hint}" if hint else reason


def _read_stream(fd: int, cap: int) -> bytes | None:
    """At most cap + 1 bytes of `fd`; None when there were more than `cap`."""
    data = bytearray()
    while True:
        chunk = os.read(fd, min(CHUNK_BYTES, cap + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > cap:
            return None


#: (device, inode) -> what it was read as, for every regular file this command has read: an
#: output path naming one of them would destroy an input (`capsim run s.yaml -o s.yaml`).
_FILES_READ: dict[tuple[int, int], str] = {}


def forget_inputs() -> None:
    """Start a new command: no file has been read yet."""
    _FILES_READ.clear()


def input_read_as(path: str | Path) -> str | None:
    """What this command read the file at `path` (symlinks followed) as (`a scenario`), if it
    read it; None for a file it did not read, a path that does not exist, or a non-file."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return _FILES_READ.get((info.st_dev, info.st_ino)) if stat.S_ISREG(info.st_mode) else None


def _wait_for_a_writer(fd: int, info: os.stat_result, name: str, seconds: float) -> None:
    """For a named pipe opened without waiting: wait at most `seconds` for its first bytes (or
    its end), then read it as any file."""
    if stat.S_ISFIFO(info.st_mode):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        if not poller.poll(int(seconds * 1000)):
            raise InputError(
                name,
                f"it is a named pipe and nothing was written to it within {seconds:g} s; "
                "save the data in a file",
            )
    os.set_blocking(fd, True)


def read_capped(path: str | Path, cap: int, what: str, pipe_wait: float | None = None) -> bytes:
    """The bytes of `path` (or standard input for `-`), refusing more than `cap` of them.

    `what` names the input in the messages (`a scenario`, `a baseline`). Raises InputError with
    the path and the reason: missing, a folder, permission denied, a symlink loop, a name too
    long, or larger than the cap (which the message names). With `pipe_wait`, a named pipe
    must start giving bytes (or end) within that many seconds: opening it does not wait for a
    writer, which may never come.
    """
    name = str(path)
    if name == STDIN:
        data = _read_stream(sys.stdin.fileno(), cap)
        if data is None:
            raise InputError("standard input", too_large(cap, what))
        return data
    flags = os.O_RDONLY | getattr(os, "O_NOCTTY", 0)
    if pipe_wait is not None:
        flags |= os.O_NONBLOCK
    try:
        fd = os.open(name, flags)
    except OSError as error:
        raise InputError(name, os_reason(error)) from None
    try:
        info = os.fstat(fd)
        if pipe_wait is not None:
            _wait_for_a_writer(fd, info, name, pipe_wait)
        if stat.S_ISREG(info.st_mode):
            _FILES_READ[(info.st_dev, info.st_ino)] = what
        if stat.S_ISDIR(info.st_mode):
            noun = what if what.endswith(" file") else f"{what} file"
            raise InputError(name, f"it is a folder; give the path of {noun}")
        data = _read_stream(fd, cap)
    except OSError as error:
        raise InputError(name, os_reason(error)) from None
    finally:
        os.close(fd)
    if data is None:
        raise InputError(name, too_large(cap, what))
    return data
