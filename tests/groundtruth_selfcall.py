"""A ground truth whose service calls itself (SimPy alone, no capsim code).

`front` (one pool of `workers` blocking workers, FIFO) serves `GET /page` at `rate`/s: a
worker takes the request (its SERVER span starts then), works `page_mean` (exponential), then
calls its own `GET /fragment` through its load balancer (a CLIENT span of front, then a SERVER
span of front under it: the fragment needs a second worker of the same pool while the page's
worker waits), and answers. The fragment works `fragment_mean` (exponential) and calls nothing:
the nesting is one deep, whatever the load. Traces are written with `groundtruth.write_otlp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from groundtruth import Record


@dataclass(frozen=True)
class SelfCallTruth:
    rate: float = 100.0
    workers: int = 8
    page_mean: float = 0.005
    fragment_mean: float = 0.003


class SelfCallSystem:
    def __init__(self, truth: SelfCallTruth, seed: int) -> None:
        self.truth = truth
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(seed)
        self.pool = simpy.Resource(self.env, truth.workers)
        self.record = Record(latency={"page": []}, arrivals={"page": []})
        self.next_id = 0

    def ident(self, width: int) -> str:
        self.next_id += 1
        return f"{self.next_id:0{width}x}"

    def _span(self, trace, span_id, parent, name, kind, start, end) -> None:
        self.record.spans.append(
            {
                "trace": trace,
                "id": span_id,
                "parent": parent,
                "name": name,
                "kind": kind,
                "service": "front",
                "start": start,
                "end": end,
                "attributes": {},
            }
        )

    def _work(self, seconds: float):
        start = self.env.now
        yield self.env.timeout(seconds)
        self.record.busy.setdefault("front", []).append((start, self.env.now))

    def page(self):
        arrival = self.env.now
        trace, root = self.ident(32), self.ident(16)
        with self.pool.request() as worker:
            yield worker
            start = self.env.now
            yield from self._work(float(self.rng.exponential(self.truth.page_mean)))
            client, called = self.ident(16), self.env.now
            with self.pool.request() as second:  # the fragment, through the balancer
                yield second
                nested = self.env.now
                yield from self._work(float(self.rng.exponential(self.truth.fragment_mean)))
                self._span(trace, self.ident(16), client, "GET /fragment", 2, nested, self.env.now)
            self._span(trace, client, root, "GET /fragment", 3, called, self.env.now)
        self._span(trace, root, None, "GET /page", 2, start, self.env.now)
        self.record.latency["page"].append(self.env.now - arrival)
        self.record.arrivals["page"].append(arrival)

    def arrivals(self, until: float):
        while True:
            yield self.env.timeout(float(self.rng.exponential(1.0 / self.truth.rate)))
            if self.env.now >= until:
                return
            self.env.process(self.page())


def run_selfcall(truth: SelfCallTruth, seconds: float, seed: int = 7) -> SelfCallSystem:
    system = SelfCallSystem(truth, seed)
    system.env.process(system.arrivals(seconds))
    system.env.run(until=seconds + 5.0)
    return system
