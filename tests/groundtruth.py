"""A ground-truth system written with SimPy alone (no capsim code), and exporters that write
what it measured in the real formats: OTLP JSON traces, Prometheus query_range JSON, k6
--out json NDJSON and Locust --csv history.

The system: a `gateway` (root spans: arrival to response) passes requests to `front` (4
workers, blocking), which does its own work, then calls `cache` (always) and
`db` (browse: with probability 0.3; checkout: twice), and checkout publishes to the `orders`
queue, consumed by `worker` (2 consumers). Server spans start when a worker takes the request
(as real instrumentation does); the truth's latency is from arrival to response.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import simpy

EPOCH = 1_780_000_000.0  # seconds since the Unix epoch at simulated time 0


@dataclass(frozen=True)
class Truth:
    gateway_time: float = 0.0002  # constant, never waits (an ingress with ample capacity)
    front_workers: int = 4
    cache_workers: int = 2
    db_workers: int = 2
    consumers: int = 2
    front_mean: dict[str, float] = field(
        default_factory=lambda: {"browse": 0.008, "checkout": 0.015}
    )
    front_cv: float = 0.5  # gamma
    cache_mean: float = 0.001  # exponential
    db_mean: float = 0.012  # lognormal
    db_cv: float = 1.0
    db_probability: float = 0.3  # browse only; checkout calls db twice
    worker_mean: float = 0.020  # exponential


@dataclass
class Record:
    spans: list[dict] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=lambda: {"browse": [], "checkout": []})
    arrivals: dict[str, list[float]] = field(default_factory=lambda: {"browse": [], "checkout": []})
    completions: list[tuple[float, str, float]] = field(
        default_factory=list
    )  # (time, class, latency)
    busy: dict[str, list[tuple[float, float]]] = field(
        default_factory=dict
    )  # tier -> work intervals


class System:
    def __init__(self, truth: Truth, seed: int) -> None:
        self.truth = truth
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(seed)
        self.front = simpy.Resource(self.env, truth.front_workers)
        self.cache = simpy.Resource(self.env, truth.cache_workers)
        self.db = simpy.Resource(self.env, truth.db_workers)
        self.orders = simpy.Store(self.env)
        self.record = Record()
        self.next_id = 0
        for _ in range(truth.consumers):
            self.env.process(self.consumer())

    def ident(self, width: int) -> str:
        self.next_id += 1
        return f"{self.next_id:0{width}x}"

    def span(
        self,
        trace: str,
        parent: str | None,
        name: str,
        kind: int,
        service: str,
        start: float,
        end: float,
        attributes: dict | None = None,
    ) -> str:
        span_id = self.ident(16)
        self.record.spans.append(
            {
                "trace": trace,
                "id": span_id,
                "parent": parent,
                "name": name,
                "kind": kind,
                "service": service,
                "start": start,
                "end": end,
                "attributes": attributes or {},
            }
        )
        return span_id

    def work(self, tier: str, seconds: float):
        start = self.env.now
        yield self.env.timeout(seconds)
        self.record.busy.setdefault(tier, []).append((start, self.env.now))

    def gamma(self, mean: float, cv: float) -> float:
        shape = 1 / cv**2
        return float(self.rng.gamma(shape, mean / shape))

    def lognormal(self, mean: float, cv: float) -> float:
        sigma2 = math.log(1 + cv**2)
        return float(self.rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2)))

    def call(
        self,
        trace: str,
        parent: str,
        resource: simpy.Resource,
        service: str,
        seconds: float,
        name: str,
    ):
        client_start = self.env.now
        client_id = self.ident(16)
        with resource.request() as slot:
            yield slot
            start = self.env.now
            yield from self.work(service, seconds)
            self.span(trace, client_id, name, 2, service, start, self.env.now)
        self.record.spans.append(
            {
                "trace": trace,
                "id": client_id,
                "parent": parent,
                "name": name,
                "kind": 3,
                "service": "front",
                "start": client_start,
                "end": self.env.now,
                "attributes": {"peer.service": service},
            }
        )

    def request(self, cls: str):
        """A request enters at `gateway` (the root span, arrival to response), which calls
        `front` (its server span starts when a front worker takes it)."""
        t = self.truth
        arrival = self.env.now
        self.record.arrivals[cls].append(arrival)
        trace = self.ident(32)
        root = self.ident(16)
        yield from self.work("gateway", t.gateway_time)
        client = self.ident(16)
        client_start = self.env.now
        with self.front.request() as slot:
            yield slot
            start = self.env.now
            front_span = self.ident(16)
            yield from self.work("front", self.gamma(t.front_mean[cls], t.front_cv))
            yield from self.call(
                trace,
                front_span,
                self.cache,
                "cache",
                float(self.rng.exponential(t.cache_mean)),
                "GET",
            )
            if cls == "browse":
                if self.rng.random() < t.db_probability:
                    yield from self.call(
                        trace,
                        front_span,
                        self.db,
                        "db",
                        self.lognormal(t.db_mean, t.db_cv),
                        "SELECT",
                    )
            else:
                for _ in range(2):
                    yield from self.call(
                        trace,
                        front_span,
                        self.db,
                        "db",
                        self.lognormal(t.db_mean, t.db_cv),
                        "UPDATE",
                    )
                producer = self.span(
                    trace,
                    front_span,
                    "orders publish",
                    4,
                    "front",
                    self.env.now,
                    self.env.now,
                    {"messaging.destination.name": "orders"},
                )
                self.orders.put((trace, producer))
            end = self.env.now
        name = "GET /product" if cls == "browse" else "POST /checkout"
        attributes = {"http.route": name.split()[1], "app.class": cls}
        self.record.spans.append(
            {
                "trace": trace,
                "id": front_span,
                "parent": client,
                "name": name,
                "kind": 2,
                "service": "front",
                "start": start,
                "end": end,
                "attributes": attributes,
            }
        )
        self.record.spans.append(
            {
                "trace": trace,
                "id": client,
                "parent": root,
                "name": name,
                "kind": 3,
                "service": "gateway",
                "start": client_start,
                "end": end,
                "attributes": {},
            }
        )
        self.record.spans.append(
            {
                "trace": trace,
                "id": root,
                "parent": None,
                "name": name,
                "kind": 2,
                "service": "gateway",
                "start": arrival,
                "end": end,
                "attributes": attributes,
            }
        )
        self.record.latency[cls].append(end - arrival)
        self.record.completions.append((end, cls, end - arrival))

    def consumer(self):
        while True:
            trace, producer = yield self.orders.get()
            start = self.env.now
            yield from self.work("worker", float(self.rng.exponential(self.truth.worker_mean)))
            self.span(
                trace,
                producer,
                "orders process",
                5,
                "worker",
                start,
                self.env.now,
                {"messaging.destination.name": "orders"},
            )

    def open_arrivals(self, cls: str, plan: list[tuple[float, float]]):
        """Poisson arrivals; `plan` is (until, rate) pieces."""
        for until, rate in plan:
            while True:
                gap = float(self.rng.exponential(1 / rate))
                if self.env.now + gap >= until:
                    yield self.env.timeout(until - self.env.now)
                    break
                yield self.env.timeout(gap)
                self.env.process(self.request(cls))

    def closed_users(self, steps: list[tuple[int, float]]):
        """A stepped closed test of browse requests: (users, seconds) per step, no think time."""
        self.users_log: list[tuple[float, int]] = []
        started = 0
        stop_at: list[float] = []
        for users, seconds in steps:
            self.users_log.append((self.env.now, users))
            end = self.env.now + seconds
            while started < users:
                self.env.process(self.user(stop_at))
                started += 1
            yield self.env.timeout(seconds)
            del end
        stop_at.append(self.env.now)

    def user(self, stop_at: list[float]):
        while not stop_at:
            yield self.env.process(self.request("browse"))


def run_open(
    truth: Truth, seed: int, duration: float, rates: dict[str, list[tuple[float, float]]]
) -> Record:
    system = System(truth, seed)
    for cls, plan in rates.items():
        system.env.process(system.open_arrivals(cls, plan))
    system.env.run(until=duration + 5.0)
    return system.record


def run_closed(
    truth: Truth, seed: int, steps: list[tuple[int, float]]
) -> tuple[Record, list[tuple[float, int]]]:
    system = System(truth, seed)
    system.env.process(system.closed_users(steps))
    system.env.run(until=sum(s for _, s in steps))
    return system.record, system.users_log


# --- exporters --------------------------------------------------------------------------------


def _nanos(t: float) -> str:
    return str(round((EPOCH + t) * 1e9))


def write_otlp(record: Record, path: Path, until: float, ndjson: bool = False) -> None:
    """The Collector file exporter's layout: resourceSpans by service -> scopeSpans -> spans."""
    by_service: dict[str, list[dict]] = {}
    for s in record.spans:
        if s["end"] > until:
            continue
        attributes = [{"key": k, "value": {"stringValue": v}} for k, v in s["attributes"].items()]
        span = {
            "traceId": s["trace"],
            "spanId": s["id"],
            "parentSpanId": s["parent"] or "",
            "name": s["name"],
            "kind": s["kind"],
            "startTimeUnixNano": _nanos(s["start"]),
            "endTimeUnixNano": _nanos(s["end"]),
            "attributes": attributes,
            "status": {},
        }
        by_service.setdefault(s["service"], []).append(span)

    def document(service: str, spans: list[dict]) -> dict:
        return {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeSpans": [{"scope": {"name": "groundtruth"}, "spans": spans}],
                }
            ]
        }

    if ndjson:
        lines = [
            json.dumps(document(service, spans[k : k + 500]))
            for service, spans in by_service.items()
            for k in range(0, len(spans), 500)
        ]
        path.write_text("\n".join(lines) + "\n")
    else:
        merged = {
            "resourceSpans": [
                document(service, spans)["resourceSpans"][0]
                for service, spans in by_service.items()
            ]
        }
        path.write_text(json.dumps(merged))


def _clipped_busy(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    return sum(max(0.0, min(b, high) - max(a, low)) for a, b in intervals)


BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf)


def write_prometheus(
    record: Record, directory: Path, until: float, step: float = 15.0
) -> list[Path]:
    """Three query_range results, as a user would save them:
    sum by (service, route) (rate(http_server_requests_total[15s])),
    sum by (service) (rate(process_cpu_seconds_total[15s])),
    sum by (route, le) (rate(http_server_request_duration_seconds_bucket[15s]))."""
    times = np.arange(step, until + 1e-9, step)
    routes = {"browse": "/product", "checkout": "/checkout"}

    def matrix(series: list[tuple[dict, list[float]]]) -> dict:
        return {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {
                        "metric": labels,
                        "values": [
                            [EPOCH + t, f"{v:.6g}"] for t, v in zip(times, values, strict=True)
                        ],
                    }
                    for labels, values in series
                ],
            },
        }

    arrivals = {cls: np.array(a) for cls, a in record.arrivals.items()}
    rates = [
        (
            {"__name__": "http_server_requests_total", "service": "front", "route": routes[cls]},
            [
                float(((arrivals[cls] >= t - step) & (arrivals[cls] < t)).sum()) / step
                for t in times
            ],
        )
        for cls in routes
    ]
    cpu = [
        ({"service": tier}, [_clipped_busy(intervals, t - step, t) / step for t in times])
        for tier, intervals in sorted(record.busy.items())
    ]
    done = np.array([c[0] for c in record.completions])
    latency = np.array([c[2] for c in record.completions])
    classes = np.array([c[1] for c in record.completions])
    histogram = []
    for cls, route in routes.items():
        for le in BUCKETS:
            histogram.append(
                (
                    {"route": route, "le": "+Inf" if math.isinf(le) else str(le)},
                    [
                        float(
                            (
                                (classes == cls) & (done >= t - step) & (done < t) & (latency <= le)
                            ).sum()
                        )
                        / step
                        for t in times
                    ],
                )
            )
    paths = []
    for name, series in (
        ("requests", rates),
        ("cpu", cpu),
        ("http_server_request_duration_seconds_bucket", histogram),
    ):
        path = directory / f"{name}.json"
        path.write_text(json.dumps(matrix(series)))
        paths.append(path)
    return paths


def write_k6(record: Record, users_log: list[tuple[float, int]], path: Path) -> None:
    """`k6 run --out json`: Metric lines, then Point lines (vus each second, one
    http_req_duration and http_reqs per request; times RFC 3339, durations in ms)."""

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(EPOCH + t, tz=timezone.utc).isoformat().replace("+00:00", "Z")

    lines = [
        {
            "type": "Metric",
            "data": {"name": "http_req_duration", "type": "trend", "contains": "time"},
            "metric": "http_req_duration",
        },
        {
            "type": "Metric",
            "data": {"name": "vus", "type": "gauge", "contains": "default"},
            "metric": "vus",
        },
    ]
    end = max(c[0] for c in record.completions)
    for second in range(int(end) + 1):
        users = [u for t, u in users_log if t <= second][-1]
        lines.append(
            {
                "type": "Point",
                "metric": "vus",
                "data": {"time": stamp(second), "value": users, "tags": None},
            }
        )
    for t, _cls, latency in sorted(record.completions):
        tags = {
            "name": "http://shop/product",
            "method": "GET",
            "status": "200",
            "scenario": "default",
        }
        lines.append(
            {
                "type": "Point",
                "metric": "http_req_duration",
                "data": {"time": stamp(t), "value": latency * 1000, "tags": tags},
            }
        )
        lines.append(
            {
                "type": "Point",
                "metric": "http_reqs",
                "data": {"time": stamp(t), "value": 1, "tags": tags},
            }
        )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")


LOCUST_PERCENTILES = (
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
)


def write_locust_history(
    record: Record,
    users_log: list[tuple[float, int]],
    path: Path,
    window: float = 10.0,
    reset_after: float | None = None,
) -> None:
    """Locust's PREFIX_stats_history.csv: a row a second per name and Aggregated; percentiles of
    the last `window` seconds' responses (in ms), totals since the start, or with `reset_after`
    (Locust's --reset-stats) since `reset_after` seconds after the users last changed."""
    header = [
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
        *LOCUST_PERCENTILES,
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]
    done = np.array([c[0] for c in record.completions])
    latency = np.array([c[2] for c in record.completions]) * 1000
    end = int(done.max())
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for second in range(1, end + 1):
            users = [u for t, u in users_log if t <= second][-1]
            recent = latency[(done > second - window) & (done <= second)]
            since = -math.inf
            if reset_after is not None:
                changes = [t + reset_after for t, _ in users_log[1:] if t + reset_after <= second]
                since = changes[-1] if changes else -math.inf
            total = latency[(done <= second) & (done > since)]
            rate = float(((done > second - window) & (done <= second)).sum()) / window
            if recent.size:
                quantiles = [
                    str(round(v))
                    for v in np.percentile(
                        recent, [50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100]
                    )
                ]
            else:
                quantiles = ["N/A"] * len(LOCUST_PERCENTILES)
            totals = [
                str(total.size),
                "0",
                f"{np.median(total):.0f}" if total.size else "0",
                f"{total.mean():.2f}" if total.size else "0",
                f"{total.min():.0f}" if total.size else "0",
                f"{total.max():.0f}" if total.size else "0",
                "512",
            ]
            writer.writerow(
                [
                    str(int(EPOCH) + second),
                    str(users),
                    "",
                    "Aggregated",
                    f"{rate:.2f}",
                    "0.00",
                    *quantiles,
                    *totals,
                ]
            )


def write_locust_stats(record: Record, path: Path, name: str = "/browse") -> None:
    """Locust's PREFIX_stats.csv (its columns as Locust 2.x writes them): one row per request
    name, then Aggregated, each the totals of the whole test (response times in ms)."""
    header = [
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
        *LOCUST_PERCENTILES,
    ]
    done = np.array([c[0] for c in record.completions])
    latency = np.array([c[2] for c in record.completions]) * 1000
    length = float(done.max() - min(done.min(), 0.0)) or 1.0
    quantiles = [
        str(round(v))
        for v in np.percentile(latency, [50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100])
    ]
    figures = [
        str(latency.size),
        "0",
        f"{np.median(latency):.0f}",
        f"{latency.mean():.2f}",
        f"{latency.min():.0f}",
        f"{latency.max():.0f}",
        "512",
        f"{latency.size / length:.6f}",
        "0.000000",
        *quantiles,
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow(["GET", name, *figures])
        writer.writerow(["", "Aggregated", *figures])
