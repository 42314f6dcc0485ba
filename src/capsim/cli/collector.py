"""Python's cyclic garbage collector paused while capsim starts (issue 15: whole-process cost).

Starting `capsim run` creates a few hundred thousand long-lived objects (the modules of numpy,
pydantic, typer and rich, the scenario schema's classes, the command's options) and almost no
garbage; the collector, triggered by allocations, walked them again and again: ~40 ms of CPU of
a ~0.65 s run of web-shop (137 young, 13 middle and one full collection). `pause` stops it
before the imports; `resume`, called once the command line is parsed, moves every object alive
then to the permanent generation (`gc.freeze`: never walked again) and turns it back on, so the
command itself (loading the scenario, simulating) is collected as before. Only the `capsim`
entry point pauses: called as a library, or by typer's test runner, nothing changes.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop the cyclic collector until `resume` (only if it is on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Freeze what start-up made and turn the collector back on, if `pause` stopped it."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
