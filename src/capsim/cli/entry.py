"""The command line's entry point (`capsim`, `python -m capsim`), kept light on purpose.

Ctrl-C (or SIGTERM) can come at any moment, also while capsim is still starting: importing
numpy and the commands, reading the options, importing what a command needs. A stop there is a
clean stop like any other: one line saying nothing ran, exit code 130, never a traceback. This
module imports nothing heavy itself, so that the stop is caught even during those imports.

It also asks numpy's BLAS for one thread (unless the environment already says how many) before
numpy is imported: capsim's arrays are small, so a BLAS thread pool never speeds a command up,
while its threads, started when numpy loads, spin on the other cores for a while (about 0.2 s of
CPU per `capsim run` on 2 cores). Dask does the same for its workers.
"""

from __future__ import annotations

import signal
import sys

from capsim.cli.interrupts import interrupt_was_reported, sigterm_as_ctrl_c

#: The exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT), as shells use.
INTERRUPTED = 130

_STOPPED_EARLY = "interrupted while capsim was starting; nothing was run."


def main() -> None:
    """Run the command line; a stop before a command could say so itself is said here."""
    try:
        signal.signal(signal.SIGTERM, sigterm_as_ctrl_c)
        _one_blas_thread()
        from capsim.cli import collector

        collector.pause()  # resumed once the command line is parsed (capsim.cli.collector)
        from capsim.cli.app import main as run_command_line

        run_command_line()
    except KeyboardInterrupt:
        _say_stopped_early()
        sys.exit(INTERRUPTED)
    except Exception as error:
        # Ctrl-C while a compiled module initialises surfaces as that module's ImportError
        # ("initialization failed"), raised from the KeyboardInterrupt.
        if not _raised_by_an_interrupt(error):
            raise
        _say_stopped_early()
        sys.exit(INTERRUPTED)
    except SystemExit as stop:
        # typer turns a Ctrl-C it sees (before a command's own handling) into a silent 130.
        if stop.code == INTERRUPTED and not interrupt_was_reported():
            _say_stopped_early()
        raise


#: The thread counts of the BLAS libraries numpy may be built with (and of OpenMP), as Dask
#: sets them for its workers (`distributed.nanny.pre-spawn-environ`).
BLAS_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _one_blas_thread() -> None:
    """One BLAS thread unless the environment says otherwise; read when numpy is imported, so
    this runs first (the environment is inherited by `--executor process` workers too)."""
    import os

    for name in BLAS_THREADS:
        os.environ.setdefault(name, "1")


def _raised_by_an_interrupt(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the causes of `error` (a bounded walk)."""
    seen: BaseException | None = error
    for _ in range(32):
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _say_stopped_early() -> None:
    try:
        sys.stderr.write(_STOPPED_EARLY + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: the exit code still tells
        pass
