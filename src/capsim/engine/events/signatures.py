"""The shapes of the callables the event path passes around: continuations, pickers, draws, enters."""

from __future__ import annotations

from collections.abc import Callable

Cont = Callable[[bool], None]
Pick = Callable[[int], int]
Draw = Callable[[], float]
# enter(class, pick, cont) -> admitted. False: refused on the spot, `cont` is never called.
# True: `cont(ok)` is called exactly once, possibly before enter returns.
Enter = Callable[[int, Pick, Cont], bool]
# run(class, done): a tier's calls for one request, then done(ok).
Runner = Callable[[int, Cont], None]
