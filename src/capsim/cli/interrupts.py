"""Ctrl-C and SIGTERM stops: SIGTERM made a Ctrl-C, and whether the user has already been told
about a stop (so the entry point does not say it a second time; set by `exit_codes`, read by
`capsim.cli.entry`). Standard library only: the entry point imports it before anything heavy."""

from __future__ import annotations

_reported = [False]


def report_interrupt() -> None:
    _reported[0] = True


def interrupt_was_reported() -> bool:
    return _reported[0]


def sigterm_as_ctrl_c(signum: int, frame: object) -> None:
    """A SIGTERM handler: stop the way Ctrl-C does (partial results, exit 130)."""
    raise KeyboardInterrupt
