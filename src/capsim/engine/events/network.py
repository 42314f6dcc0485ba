"""The network between regions: a call (or a client) that crosses it pays a round-trip time.

`delayed(env, enter, rtt)` is an `enter` whose request reaches the callee `rtt / 2` after it is
sent and whose answer reaches the caller `rtt / 2` after the callee gives it; a refusal at the
callee travels back too (the caller learns of it a whole `rtt` after sending). The wrapped
`enter` therefore always admits: the network takes every request.
"""

from __future__ import annotations

from typing import Any

from capsim.engine.events.clock import Clock, _scheduler, _Timer
from capsim.engine.events.signatures import Cont, Enter, Pick


def _answered(event: _Timer) -> None:
    cont, ok = event._value
    cont(ok)


_ON_ANSWER = (_answered,)


def delayed(env: Clock, enter: Enter, rtt: float) -> Enter:
    """`enter` behind a network with this round-trip time (seconds, > 0)."""
    later = _scheduler(env)
    half = rtt / 2.0

    def reached(event: _Timer) -> None:
        k, pick, cont = event._value

        def answer(ok: bool) -> None:
            later(half, _ON_ANSWER, (cont, ok))

        if not enter(k, pick, answer):
            answer(False)

    on_reach: tuple[Any, ...] = (reached,)

    def send(k: int, pick: Pick, cont: Cont) -> bool:
        later(half, on_reach, (k, pick, cont))
        return True

    return send
