"""The discrete-event path: runs any Model on an event loop of SimPy's shape, with callbacks,
not processes.

A request never becomes a process. Each tier keeps its own per-instance FIFO (a deque of
waiting entries and a free-worker count), and the only events are timers on the schedule
(`clock.Clock`: what SimPy's ``Environment`` held, with its names), stepped by
``clock.run_until`` (SimPy's ``Environment.run``, inline): an arrival, the end of a worker's
own work, a publish, a think, a queue or pool timeout. A request's path is a chain of continuations ``cont(ok)``; an error is
simply ``cont(False)`` travelling back up.

Random numbers are drawn in batches of `BATCH` per stream and handed out one at a time by an
itertools chain, so no request makes a numpy call.

The package, module by module:

- `run`: `run_events`, one replication: builds tiers and classes, runs the clock, gathers results.
- `station`: `Station`, one tier's instances as named state (workers, waiting lines, live
  instances, counters, integrals) and the hooks features wrap; its docstring is the extension
  contract. `Waiting` is a request in a waiting line.
- Tier features, each with `install(station)`, installed in this order: `instances` (workers
  and a waiting line per instance), `faults`, `balancing` (choosing an instance: round robin,
  random, least connections, power of two, read replicas; health checks), `autoscaling`,
  `serverless`, `consumers` (batches, partitions), and last `admission` (the tier's `enter`:
  a rate limit, a database's connection pool, a queue tier's publishing and redelivered
  messages). A feature that reports figures registers its `record(run)` with the station.
- `tier`: `_TierSim`, a tier as callers see it: builds its Station (features installed) and
  keeps what the tier holds as a caller (response times for hedges, bulkheads, retry jitter).
- `caches`: cold LRU caches simulated key by key.
- `consumer_scaling`: a queue's consumers scaled on its backlog or lag (KEDA), installed by
  `consumers`.
- `clock`: the clock and the schedule (`Clock`; a heap of entries `(when, priority, id, fn,
  arg)`, pushed and popped by `push_entry`/`pop_entry`), stepped by `run_until`; `_Timer`s for
  everything but the hot paths (`_scheduler`, `after`).
- `draws`: buffered random draws and draws that count, slow down or log.
- `windows`: the measurement window, time buckets, RNG stream addresses.
- `calls`: compiled call steps, sequences and parallel groups.
- `network`: the round-trip time of a call or a client that crosses regions.
- `resilience`: timeouts, retries, budgets, circuit breakers, bulkheads, hedges (call sites),
  and `CallCounts`, what call sites did to a callee, counted on the callee's station.
- `disciplines`: waiting lines with priorities between classes.
- `classes`: request classes, open and closed, and their per-bucket tracking.
- `lanes`: the fast lane: a class's own arrival that meets a free worker at a plain entry tier
  and makes no call there is answered at once, with no event for the end of its work; where
  only that class reaches the tier, arrivals that will take the lane run ahead of their time.
- `signatures`: the callable types (`Cont`, `Pick`, `Draw`, `Enter`, `Runner`).

The hot modules (`capsim.engine.accelerator.COMPILED`) may be installed compiled with mypyc
(`CAPSIM_COMPILE=1`), from this same source and with the same results; `CAPSIM_PURE_PYTHON=1`
runs the source all the same. So code here avoids what mypyc rejects or runs differently
(two functions of one name in one scope, a float attribute set to an int).
"""

# First: with CAPSIM_PURE_PYTHON=1 it makes the modules below load from their source.
from capsim.engine import accelerator  # noqa: F401
from capsim.engine.events.autoscaling import _hpa_recommendation
from capsim.engine.events.draws import BATCH
from capsim.engine.events.run import PROGRESS_STEPS, run_events
from capsim.engine.events.windows import TRACE_POINTS

__all__ = ["BATCH", "PROGRESS_STEPS", "TRACE_POINTS", "_hpa_recommendation", "run_events"]
