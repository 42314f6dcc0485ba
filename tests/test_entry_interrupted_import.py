"""Ctrl-C that lands while a compiled module initialises (scipy's HiGHS wrapper, say) does not
reach capsim as a KeyboardInterrupt: the module's import fails with `ImportError:
initialization failed`, raised from the interrupt. Seen in a full test run: the user's Ctrl-C
at 0.4 s printed that traceback and exited 1. It is a stop like any other: one line, exit 130."""

from __future__ import annotations

import pytest

import capsim.cli.app
from capsim.cli import entry


def _import_interrupted_by_ctrl_c() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as interrupt:
        raise ImportError("initialization failed") from interrupt


def _import_that_really_fails() -> None:
    raise ImportError("No module named 'missing'")


def test_an_import_cut_short_by_ctrl_c_is_a_clean_stop(monkeypatch, capsys) -> None:
    monkeypatch.setattr(capsim.cli.app, "main", _import_interrupted_by_ctrl_c)
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == entry.INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted while capsim was starting; nothing was run." in err
    assert "Traceback" not in err


def test_an_import_that_fails_on_its_own_is_not_called_an_interrupt(monkeypatch) -> None:
    monkeypatch.setattr(capsim.cli.app, "main", _import_that_really_fails)
    with pytest.raises(ImportError, match="missing"):
        entry.main()
