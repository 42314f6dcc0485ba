"""A test's child process: taking Ctrl-C as one started from a terminal does, and read as it
goes."""

from __future__ import annotations

import signal
import subprocess
import time


def sigint_at_its_default() -> None:
    """A `preexec_fn`: SIGINT at its default disposition in the child. A test session started
    in the background (nohup, `cmd &` in a script, some CI runners) ignores SIGINT, a child
    inherits that, and Python then keeps ignoring it: a test that sends SIGINT to see capsim
    stop would watch it run on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stderr_until(process: subprocess.Popen[str], text: str, seconds: float) -> str:
    """The stderr of `process` up to the first line holding `text` (a progress line, with
    CAPSIM_PROGRESS_INTERVAL=0: they come often), read as it comes, however busy the machine."""
    assert process.stderr is not None
    deadline = time.monotonic() + seconds
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no line with {text!r} in time:\n{seen}")
