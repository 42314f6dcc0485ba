"""Story: a report's load curve, the slow part of a report, uses the cores nobody is using.

Its points are independent simulations whose results do not depend on where they run, so
when at least two cores are idle (the load average says so) and the user named no executor,
the report runs them on a process pool of those cores; otherwise serially, as every other
command does by default.
"""

from __future__ import annotations

from capsim.cli.common import Executor, search_executor


def test_a_report_runs_its_curve_on_the_idle_cores_unless_told_otherwise() -> None:
    # Three of four cores idle: a pool of three runs the curve's points together.
    assert search_executor(None, None, None, idle=3) == (Executor.process, 3)
    # One idle core, or none: serial, as every other command.
    assert search_executor(None, None, None, idle=1) == (None, None)
    # What the user said stands.
    assert search_executor(Executor.serial, None, None, idle=8) == (Executor.serial, None)
    assert search_executor(None, 2, None, idle=8) == (None, 2)
    assert search_executor(None, None, "tcp://127.0.0.1:8786", idle=8) == (None, None)
