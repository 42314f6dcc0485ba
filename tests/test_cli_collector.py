"""The `capsim` entry point pauses Python's cyclic collector while it starts and turns it back on,
with start-up's objects frozen, once the command line is parsed; as a library nothing changes."""

from __future__ import annotations

import gc
import subprocess
import sys

from capsim.cli import collector


def test_resume_turns_the_collector_back_on_with_what_start_up_made_frozen():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        collector.pause()
        assert not gc.isenabled()
        kept = [[] for _ in range(100)]
        collector.resume()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        gc.unfreeze()
        gc.enable()


def test_resume_without_a_pause_changes_nothing():
    frozen = gc.get_freeze_count()
    collector.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_command_runs_with_the_collector_on():
    # `capsim --version` exits before any command; `capsim schema` is a command.
    probe = (
        "import gc, sys\n"
        "from capsim.cli import collector\n"
        "real = collector.resume\n"
        "def resume():\n"
        "    real()\n"
        "    sys.stderr.write(f'collector on: {gc.isenabled()}, frozen: {gc.get_freeze_count() > 0}\\n')\n"
        "collector.resume = resume\n"
        "sys.argv = ['capsim', 'schema']\n"
        "from capsim.cli.entry import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "collector on: True, frozen: True" in done.stderr
