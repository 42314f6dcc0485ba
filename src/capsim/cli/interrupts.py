"""Whether the user has already been told about a Ctrl-C/SIGTERM stop (so the entry point does
not say it a second time). Set by `exit_codes`, read by `capsim.cli.entry`."""

from __future__ import annotations

_reported = [False]


def report_interrupt() -> None:
    _reported[0] = True


def interrupt_was_reported() -> bool:
    return _reported[0]
