"""Spot interruptions: the cloud takes back spot instances and a replacement comes up later.

A tier whose `cost.spot` has an `interruption_rate` runs its instances above the reserved base
(`cost.reserved.instances`; all of them without one) on spot capacity (docs/cost.md#spot). Each
spot instance has its own Poisson clock of interruptions, drawn from the tier's SPOT stream. An
interruption loses the instance as a fault does (`faults.kill`: its waiting line and its work in
progress fail, and `faults.install` has guarded `arrive` so that it refuses at once while down);
the replacement is up `replace_after` later (`faults.revive`), and its own clock starts then. An
instance already down for a fault is not interrupted again; its clock simply runs on.

On an autoscaled tier the spot slots run up to `autoscale.max`, and only a slot the autoscaler
has launched (starting, ready or draining) can be interrupted: a switched-off slot's clock runs
on without effect, so interruptions fall at the rate over live spot instance-time. What the
autoscaler makes of a lost instance is its own (`autoscaling.install` replaces `lost` and
`back`: the replacement counts as a starting pod, and a slot it removes meanwhile stays off).

`install` is called right after `faults.install`; its `record(run)` gives the run the
interruptions counted in the window and the live instances' worker-time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from capsim.engine import streams
from capsim.engine.events import faults
from capsim.engine.events.clock import after
from capsim.engine.events.draws import _buffered
from capsim.engine.events.station import Station
from capsim.engine.result import TierRun


def spot_instances(st: Station) -> range:
    """The servers that run on spot capacity: those above the reserved base (on an autoscaled
    tier, every slot it may grow to)."""
    pricing = st.tier.pricing
    base = pricing.reserved if pricing is not None else 0
    return range(min(base, st.servers), st.servers)


@dataclass
class Replacement:
    """How a lost spot instance comes back: `lost(i)` right after it is killed, `back(i)` when
    its replacement is up; `back` says whether the instance serves again (then it is revived).
    A fixed tier always takes its replacement; the autoscaler replaces both (`autoscaling`)."""

    lost: Callable[[int], None]
    back: Callable[[int], bool]


def install(st: Station) -> None:
    """Schedule the interruptions of every spot instance, and record those in the measurement
    window (with the live instances' worker-time) in the tier's run."""
    pricing = st.tier.pricing
    if pricing is None or not pricing.interrupts:
        return
    counted = [0]
    env, down, warmup = st.env, st.down, st.warmup
    mean_gap = 1.0 / pricing.interruption_rate
    rng = st.window.tier_rng(st.tier.name, streams.SPOT)
    gap = _buffered(lambda n: rng.exponential(mean_gap, n))
    replace_after = pricing.replace_after
    alive = st.alive
    replacement = Replacement(lost=lambda i: None, back=lambda i: True)
    st.sim.spot_replacement = replacement

    def arm(i: int) -> None:
        after(env, gap()).callbacks.append(lambda _: interrupt(i))

    def interrupt(i: int) -> None:
        if down[i] or not alive[i]:  # down for a fault, or switched off: nothing to take back
            arm(i)
            return
        if env._now >= warmup:
            counted[0] += 1
        down[i] += 1
        faults.kill(st, i)
        replacement.lost(i)
        after(env, replace_after).callbacks.append(lambda _: replaced(i))

    def replaced(i: int) -> None:
        down[i] -= 1
        serves = replacement.back(i)  # even while a fault still holds it down
        if down[i] == 0 and serves:
            faults.revive(st, i)
        arm(i)

    def record(run: TierRun) -> None:
        run.spot_interruptions = counted[0]
        live = st.live_integral(st.horizon) - st.before_window[2]
        run.live_worker_time = live * st.tier.concurrency

    for i in spot_instances(st):
        arm(i)
    st.recorders.append(record)
