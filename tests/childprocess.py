"""What a test's child process needs to take Ctrl-C as one started from a terminal does."""

from __future__ import annotations

import signal


def sigint_at_its_default() -> None:
    """A `preexec_fn`: SIGINT at its default disposition in the child. A test session started
    in the background (nohup, `cmd &` in a script, some CI runners) ignores SIGINT, a child
    inherits that, and Python then keeps ignoring it: a test that sends SIGINT to see capsim
    stop would watch it run on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
