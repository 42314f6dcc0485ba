"""A second ground-truth system, written with SimPy alone (no capsim code) and independently of
tests/groundtruth.py, with a different topology and the quirks real exporters have.

The system (three classes, each root a CLIENT span at `edge`: the user's view, arrival to
response):

- `api` (4 blocking workers, lognormal self time per class, cv 0.8) serves every request.
- `search`: api works, then calls `index` and `catalog` in parallel and waits for both.
- `order`: api works, then (inside an INTERNAL span) calls `inventory` three times in turn,
  then with probability 0.4 calls `payments` (not traced: a CLIENT span with
  `peer.service`), then publishes to the `events` queue (PRODUCER), which one `mailer`
  consumer drains (CONSUMER spans).
- `report`: api works half its time, calls `catalog` with probability 0.7, calls `index`
  twice in turn, then works the other half.

`index`: 2 workers, gamma (cv 0.7); `catalog`: 2 workers, lognormal (cv 0.5); `inventory`: 1
worker, exponential; `payments`: lognormal (cv 0.4) with ample capacity; `mailer`: lognormal
(cv 0.8).

The exporters write what real ones write, quirks included: OTLP JSON split over several files
(one of them NDJSON), spans shuffled, ids in hex in some files and base64 in others, span kinds
as numbers and as names, intValue attributes as strings, orphan spans (from an untraced
caller), traces cut at the end of the export; Prometheus matrices with per-pod CPU series that
go stale at a rollout, NaN samples and a `+Inf` bucket; k6 NDJSON with Metric and Point lines,
nanosecond RFC 3339 times with a UTC offset, tags, http_req_failed, iterations and vus;
Locust history with per-name rows and the Aggregated row, N/A percentiles at the start, and
Locust's _stats.csv with its Aggregated row.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import simpy

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # simulated time 0
CLASSES = ("search", "order", "report")


@dataclass(frozen=True)
class Truth2:
    api_workers: int = 4  # per instance
    api_instances: int = 1  # separately queued, requests dealt round robin
    api_mean: dict[str, float] = field(
        default_factory=lambda: {"search": 0.005, "order": 0.010, "report": 0.030}
    )
    api_cv: float = 0.8  # lognormal
    index_workers: int = 2
    index_mean: float = 0.006  # gamma
    index_cv: float = 0.7
    catalog_workers: int = 2
    catalog_mean: float = 0.004  # lognormal
    catalog_cv: float = 0.5
    inventory_workers: int = 1
    inventory_mean: float = 0.004  # exponential
    inventory_repeat: int = 3
    payments_mean: float = 0.025  # lognormal, not traced, never queues
    payments_cv: float = 0.4
    payments_probability: float = 0.4
    report_catalog_probability: float = 0.7
    report_index_repeat: int = 2
    mailer_mean: float = 0.015  # lognormal, one consumer
    mailer_cv: float = 0.8

    def demand(self, tier: str, cls: str) -> float:
        """Busy seconds at `tier` per request of `cls` (the service demand)."""
        table = {
            "api": self.api_mean[cls],
            "index": {"search": 1, "report": self.report_index_repeat}.get(cls, 0)
            * self.index_mean,
            "catalog": {"search": 1.0, "report": self.report_catalog_probability}.get(cls, 0.0)
            * self.catalog_mean,
            "inventory": (self.inventory_repeat if cls == "order" else 0) * self.inventory_mean,
            "mailer": self.mailer_mean if cls == "order" else 0.0,
        }
        return float(table[tier])


@dataclass
class Record2:
    spans: list[dict] = field(default_factory=list)
    arrivals: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CLASSES})
    completions: list[tuple[float, str, float]] = field(default_factory=list)  # end, class, latency
    busy: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


class Shop2:
    def __init__(self, truth: Truth2, seed: int) -> None:
        self.truth = truth
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(seed)
        self.api = [simpy.Resource(self.env, truth.api_workers) for _ in range(truth.api_instances)]
        self.dealt = 0  # requests dealt to api instances so far (round robin)
        self.api_instance: dict[bytes, str] = {}  # trace -> the api instance serving it
        self.pools = {
            "index": simpy.Resource(self.env, truth.index_workers),
            "catalog": simpy.Resource(self.env, truth.catalog_workers),
            "inventory": simpy.Resource(self.env, truth.inventory_workers),
        }
        self.events = simpy.Store(self.env)
        self.record = Record2()
        self.counter = 0
        self.env.process(self.mailer())

    # --- helpers --------------------------------------------------------------------------

    def new_id(self, size: int) -> bytes:
        self.counter += 1
        return self.counter.to_bytes(size, "big")

    def emit(self, trace: bytes, span: bytes, parent: bytes | None, **fields: object) -> None:
        instance = self.api_instance.get(trace, "api-0") if fields["service"] == "api" else ""
        self.record.spans.append(
            {
                "trace": trace,
                "id": span,
                "parent": parent,
                "instance": instance or f"{fields['service']}-0",
                **fields,
            }
        )

    def lognormal(self, mean: float, cv: float) -> float:
        s2 = math.log(1 + cv * cv)
        return float(self.rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2)))

    def gamma(self, mean: float, cv: float) -> float:
        shape = 1 / (cv * cv)
        return float(self.rng.gamma(shape, mean / shape))

    def busy(self, tier: str, seconds: float):
        begin = self.env.now
        yield self.env.timeout(seconds)
        self.record.busy.setdefault(tier, []).append((begin, self.env.now))

    # --- the services ---------------------------------------------------------------------

    def served(self, trace: bytes, parent: bytes, tier: str, seconds: float, name: str):
        """A CLIENT span at api around a SERVER span at a traced tier (from its worker's start)."""
        client = self.new_id(8)
        asked = self.env.now
        with self.pools[tier].request() as slot:
            yield slot
            began = self.env.now
            yield from self.busy(tier, seconds)
            self.emit(
                trace,
                self.new_id(8),
                client,
                service=tier,
                name=name,
                kind="server",
                start=began,
                end=self.env.now,
                attributes={"rpc.system": "grpc"},
            )
        self.emit(
            trace,
            client,
            parent,
            service="api",
            name=name,
            kind="client",
            start=asked,
            end=self.env.now,
            attributes={"rpc.service": tier},
        )

    def index(self, trace: bytes, parent: bytes):
        t = self.truth
        yield from self.served(
            trace, parent, "index", self.gamma(t.index_mean, t.index_cv), "Lookup"
        )

    def catalog(self, trace: bytes, parent: bytes):
        t = self.truth
        seconds = self.lognormal(t.catalog_mean, t.catalog_cv)
        yield from self.served(trace, parent, "catalog", seconds, "GetItems")

    def request(self, cls: str):
        t = self.truth
        arrival = self.env.now
        self.record.arrivals[cls].append(arrival)
        trace, root = self.new_id(16), self.new_id(8)
        own = self.lognormal(t.api_mean[cls], t.api_cv)
        instance = self.dealt % t.api_instances
        self.dealt += 1
        self.api_instance[trace] = f"api-{instance}"
        with self.api[instance].request() as slot:
            yield slot
            began = self.env.now
            server = self.new_id(8)
            if cls == "search":
                yield from self.busy("api", own)
                yield self.env.all_of(
                    [
                        self.env.process(self.index(trace, server)),
                        self.env.process(self.catalog(trace, server)),
                    ]
                )
            elif cls == "order":
                yield from self.busy("api", own)
                internal, opened = self.new_id(8), self.env.now
                for _ in range(t.inventory_repeat):
                    seconds = float(self.rng.exponential(t.inventory_mean))
                    yield from self.served(trace, internal, "inventory", seconds, "Reserve")
                self.emit(
                    trace,
                    internal,
                    server,
                    service="api",
                    name="reserve stock",
                    kind="internal",
                    start=opened,
                    end=self.env.now,
                    attributes={},
                )
                if self.rng.random() < t.payments_probability:
                    asked = self.env.now
                    yield self.env.timeout(self.lognormal(t.payments_mean, t.payments_cv))
                    self.emit(
                        trace,
                        self.new_id(8),
                        server,
                        service="api",
                        name="POST /charges",
                        kind="client",
                        start=asked,
                        end=self.env.now,
                        attributes={"peer.service": "payments", "http.response.status_code": 201},
                    )
                producer = self.new_id(8)
                self.emit(
                    trace,
                    producer,
                    server,
                    service="api",
                    name="events publish",
                    kind="producer",
                    start=self.env.now,
                    end=self.env.now,
                    attributes={"messaging.destination.name": "events"},
                )
                self.events.put((trace, producer))
            else:
                yield from self.busy("api", own / 2)
                if self.rng.random() < t.report_catalog_probability:
                    yield from self.catalog(trace, server)
                for _ in range(t.report_index_repeat):
                    yield from self.index(trace, server)
                yield from self.busy("api", own / 2)
            end = self.env.now
        self.emit(
            trace,
            server,
            root,
            service="api",
            name=f"{cls} handler",
            kind="server",
            start=began,
            end=end,
            attributes={"http.response.status_code": 200},
        )
        self.emit(
            trace,
            root,
            None,
            service="edge",
            name=cls,
            kind="client",
            start=arrival,
            end=end,
            attributes={"http.response.status_code": 200},
        )
        self.record.completions.append((end, cls, end - arrival))

    def mailer(self):
        t = self.truth
        while True:
            trace, producer = yield self.events.get()
            began = self.env.now
            yield from self.busy("mailer", self.lognormal(t.mailer_mean, t.mailer_cv))
            self.emit(
                trace,
                self.new_id(8),
                producer,
                service="mailer",
                name="events process",
                kind="consumer",
                start=began,
                end=self.env.now,
                attributes={"messaging.destination.name": "events"},
            )

    # --- load -----------------------------------------------------------------------------

    def poisson(self, cls: str, plan: list[tuple[float, float]]):
        """Poisson arrivals at `rate` until `until`, piece by piece."""
        for until, rate in plan:
            while True:
                gap = float(self.rng.exponential(1 / rate))
                if self.env.now + gap >= until:
                    yield self.env.timeout(until - self.env.now)
                    break
                yield self.env.timeout(gap)
                self.env.process(self.request(cls))

    def users(self, cls: str, steps: list[tuple[int, float]], log: list[tuple[float, int]]):
        running: list[bool] = []
        for users, seconds in steps:
            log.append((self.env.now, users))
            while len(running) < users:
                running.append(True)
                self.env.process(self.user(cls, running))
            yield self.env.timeout(seconds)

    def user(self, cls: str, running: list[bool]):
        while running:
            yield self.env.process(self.request(cls))


def run_open(
    truth: Truth2, seed: int, until: float, plans: dict[str, list[tuple[float, float]]]
) -> Record2:
    shop = Shop2(truth, seed)
    for cls, plan in plans.items():
        shop.env.process(shop.poisson(cls, plan))
    shop.env.run(until=until + 5.0)
    return shop.record


def run_closed(
    truth: Truth2, seed: int, cls: str, steps: list[tuple[int, float]]
) -> tuple[Record2, list[tuple[float, int]]]:
    shop = Shop2(truth, seed)
    log: list[tuple[float, int]] = []
    shop.env.process(shop.users(cls, steps, log))
    shop.env.run(until=sum(s for _, s in steps))
    return shop.record, log


# --- OTLP JSON --------------------------------------------------------------------------------

KIND_NUMBERS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def _nanos(t: float) -> str:
    return str(round((START.timestamp() + t) * 1e9))


def _value(value: object) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP JSON: 64-bit integers are strings
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _otlp_span(span: dict, base64_ids: bool, kind_names: bool) -> dict:
    def ident(raw: bytes | None) -> str:
        if raw is None:
            return ""
        return base64.b64encode(raw).decode() if base64_ids else raw.hex()

    kind = KIND_NUMBERS[span["kind"]]
    return {
        "traceId": ident(span["trace"]),
        "spanId": ident(span["id"]),
        "parentSpanId": ident(span["parent"]),
        "name": span["name"],
        "kind": f"SPAN_KIND_{span['kind'].upper()}" if kind_names else kind,
        "startTimeUnixNano": _nanos(span["start"]),
        "endTimeUnixNano": _nanos(span["end"]),
        "attributes": [{"key": k, "value": _value(v)} for k, v in span["attributes"].items()],
        "links": [
            {"traceId": ident(trace), "spanId": ident(parent), "attributes": []}
            for trace, parent in span.get("links", [])
        ],
        "droppedAttributesCount": 0,
        "events": [],
        "status": {"code": 1},
    }


def _resource_spans(service: str, instance: str, spans: list[dict]) -> dict:
    return {
        "resource": {
            "attributes": [
                {"key": "service.name", "value": {"stringValue": service}},
                {
                    "key": "service.instance.id",
                    "value": {"stringValue": instance or f"{service}-0"},
                },
                {"key": "process.pid", "value": {"intValue": "4242"}},
            ]
        },
        "scopeSpans": [
            {"scope": {"name": "io.opentelemetry.grpc", "version": "2.1.0"}, "spans": spans},
        ],
        "schemaUrl": "https://opentelemetry.io/schemas/1.24.0",
    }


def orphan_spans(count: int, until: float, seed: int) -> list[dict]:
    """Health checks at api whose parent (an untraced probe's context) is not in any file."""
    rng = np.random.default_rng(seed)
    spans = []
    for k in range(count):
        at = float(rng.uniform(0, until))
        spans.append(
            {
                "trace": (10**30 + k).to_bytes(16, "big"),
                "id": (10**17 + k).to_bytes(8, "big"),
                "parent": (2 * 10**17 + k).to_bytes(8, "big"),
                "service": "api",
                "name": "GET /healthz",
                "kind": "server",
                "start": at,
                "end": at + 0.0003,
                "attributes": {"http.response.status_code": 200},
            }
        )
    return spans


def _linked(span: dict) -> dict:
    """A consumer span that starts a trace of its own, linked to the producer span (what
    OpenTelemetry's messaging conventions allow instead of a parent)."""
    if span["kind"] != "consumer":
        return span
    fresh = bytes(16 - len(span["id"])) + span["id"]
    return {**span, "trace": fresh, "parent": None, "links": [(span["trace"], span["parent"])]}


def write_otlp_files(
    record: Record2, folder: Path, until: float, seed: int = 5, linked_consumers: bool = False
) -> list[Path]:
    """Spans ended by `until` (traces still open are cut), shuffled, split into three files:
    edge and api in one JSON document (hex ids, kind numbers); index, catalog and inventory as
    NDJSON of 400-span documents (base64 ids, kind names); mailer in its own document (hex).
    `linked_consumers`: the mailer's spans start their own traces, linked to the producers."""
    rng = np.random.default_rng(seed)
    spans = [s for s in record.spans if s["end"] <= until] + orphan_spans(25, until, seed)
    if linked_consumers:
        spans = [_linked(span) for span in spans]
    order = rng.permutation(len(spans))
    spans = [spans[k] for k in order]
    groups = {
        "front.json": ({"edge", "api"}, False, False, False),
        "backends.jsonl": ({"index", "catalog", "inventory"}, True, True, True),
        "mailer.json": ({"mailer"}, False, True, False),
    }
    paths = []
    for name, (services, base64_ids, kind_names, ndjson) in groups.items():
        by_process: dict[tuple[str, str], list[dict]] = {}  # (service, instance) -> spans
        for span in spans:
            if span["service"] in services:
                process = (span["service"], span.get("instance", ""))
                by_process.setdefault(process, []).append(_otlp_span(span, base64_ids, kind_names))
        path = folder / name
        if ndjson:
            lines = [
                json.dumps({"resourceSpans": [_resource_spans(*process, items[k : k + 400])]})
                for process, items in by_process.items()
                for k in range(0, len(items), 400)
            ]
            path.write_text("\n".join(lines) + "\n")
        else:
            document = {
                "resourceSpans": [_resource_spans(*p, items) for p, items in by_process.items()]
            }
            path.write_text(json.dumps(document, indent=1))
        paths.append(path)
    return paths


# --- Prometheus -------------------------------------------------------------------------------

LE = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "1", "+Inf")


def _matrix(series: list[tuple[dict, list[tuple[float, str]]]]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[round(t, 3), v] for t, v in values]}
                for labels, values in series
            ],
        },
    }


def write_prometheus(record: Record2, folder: Path, until: float, step: float = 15.0) -> list[Path]:
    """Three query_range results without __name__ (rate() drops it, so the file names tell):
    sum by (service, route) (rate(http_server_requests_total[15s])) with a NaN at a failed
    scrape; rate(process_cpu_seconds_total[15s]) per pod, api's pods replaced halfway (each
    series stale outside its pod's life); sum by (route, le) (rate(..._bucket[15s]))."""
    epoch = START.timestamp()
    times = np.arange(step, until + 1e-9, step)
    routes = {"search": "/api/search", "order": "/api/orders", "report": "/api/reports/{id}"}
    arrivals = {c: np.array(a) for c, a in record.arrivals.items()}
    nan_at = {3, 17}  # sample indexes where the rate query gave NaN (a failed scrape)
    rates = [
        (
            {"service": "api", "route": routes[c], "method": "GET" if c != "order" else "POST"},
            [
                (
                    epoch + t,
                    "NaN"
                    if k in nan_at and c == "report"
                    else f"{((arrivals[c] >= t - step) & (arrivals[c] < t)).sum() / step:.6g}",
                )
                for k, t in enumerate(times)
            ],
        )
        for c in CLASSES
    ]

    def busy(intervals: list[tuple[float, float]], low: float, high: float) -> float:
        return sum(max(0.0, min(b, high) - max(a, low)) for a, b in intervals) / step

    rollout = until / 2
    cpu = []
    for tier, intervals in sorted(record.busy.items()):
        pods = [(f"{tier}-7d9f-a", 0.0, until)]
        if tier == "api":  # a rollout: pod a until halfway, pod b after
            pods = [("api-7d9f-a", 0.0, rollout), ("api-5c2e-b", rollout, until)]
        for pod, born, gone in pods:
            values = [
                (epoch + t, f"{busy(intervals, max(t - step, born), min(t, gone)):.6g}")
                for t in times
                if born < t <= gone or (t > gone and t - step < gone)
            ]
            cpu.append(({"service": tier, "pod": pod, "instance": f"{pod}:9464"}, values))
    done = np.array([c[0] for c in record.completions])
    latency = np.array([c[2] for c in record.completions])
    names = np.array([c[1] for c in record.completions])
    histogram = []
    for c in CLASSES:
        for le in LE:
            bound = math.inf if le == "+Inf" else float(le)
            histogram.append(
                (
                    {"route": routes[c], "le": le},
                    [
                        (
                            epoch + t,
                            f"{((names == c) & (done >= t - step) & (done < t) & (latency <= bound)).sum() / step:.6g}",
                        )
                        for t in times
                    ],
                )
            )
    paths = []
    for name, series in (("rps", rates), ("cpu_seconds", cpu), ("latency_bucket", histogram)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(_matrix(series)))
        paths.append(path)
    return paths


# --- k6 and Locust ----------------------------------------------------------------------------


def _rfc3339_nano(t: float) -> str:
    """Go's time.RFC3339Nano in a +01:00 zone, as k6 writes it: nine fraction digits."""
    zone = timezone(timedelta(hours=1))
    moment = START + timedelta(seconds=t)
    nanos = round((START.timestamp() + t) * 1e9) % 1_000_000_000
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}+01:00"


def write_k6(record: Record2, log: list[tuple[float, int]], path: Path, cls: str) -> None:
    """`k6 run --out json=FILE`: Metric lines when a metric first appears, Point lines after."""
    lines: list[dict] = []
    seen: set[str] = set()

    def point(metric: str, kind: str, t: float, value: float, tags: dict | None) -> None:
        if metric not in seen:
            seen.add(metric)
            lines.append(
                {
                    "type": "Metric",
                    "data": {
                        "name": metric,
                        "type": kind,
                        "contains": "time" if kind == "trend" else "default",
                        "thresholds": [],
                        "submetrics": None,
                    },
                    "metric": metric,
                }
            )
        lines.append(
            {
                "type": "Point",
                "data": {"time": _rfc3339_nano(t), "value": value, "tags": tags},
                "metric": metric,
            }
        )

    events = [(t, 0, users) for t, users in log] + [
        (end, 1, latency) for end, _c, latency in sorted(record.completions)
    ]
    for t, what, value in sorted(events):
        if what == 0:
            point("vus", "gauge", t, float(value), None)
            continue
        tags = {
            "expected_response": "true",
            "group": "",
            "method": "GET",
            "name": f"https://shop.example/{cls}",
            "proto": "HTTP/1.1",
            "scenario": "steps",
            "status": "200",
            "url": f"https://shop.example/{cls}",
        }
        point("http_reqs", "counter", t, 1, tags)
        point("http_req_duration", "trend", t, value * 1000.0, tags)
        point("http_req_failed", "rate", t, 0, tags)
        point("iterations", "counter", t, 1, {"group": "", "scenario": "steps"})
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")


LOCUST_QUANTILES = (
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


def write_locust(
    record: Record2, log: list[tuple[float, int]], folder: Path, cls: str, window: float = 10.0
) -> tuple[Path, Path]:
    """PREFIX_stats_history.csv (a row a second for the request name, then Aggregated; N/A
    percentiles before the first response) and PREFIX_stats.csv (the name, then Aggregated)."""
    done = np.array([c[0] for c in record.completions])
    ms = np.array([c[2] for c in record.completions]) * 1000
    header = [
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
        *LOCUST_QUANTILES,
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]
    history = folder / "shop2_stats_history.csv"
    with history.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for second in range(0, int(done.max()) + 1):
            users = [u for t, u in log if t <= second][-1]
            recent = ms[(done > second - window) & (done <= second)]
            total = ms[done <= second]
            quantiles = (
                [
                    f"{v:.0f}"
                    for v in np.percentile(
                        recent, [50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100]
                    )
                ]
                if recent.size
                else ["N/A"] * len(LOCUST_QUANTILES)
            )
            totals = [
                str(total.size),
                "0",
                f"{np.median(total):.0f}" if total.size else "0",
                f"{total.mean():.2f}" if total.size else "0.00",
                f"{total.min():.0f}" if total.size else "0",
                f"{total.max():.0f}" if total.size else "0",
                "1024",
            ]
            rate = f"{recent.size / window:.2f}"
            stamp = str(int(START.timestamp()) + second)
            for kind, name in (("GET", f"/{cls}"), ("", "Aggregated")):
                writer.writerow([stamp, str(users), kind, name, rate, "0.00", *quantiles, *totals])
    stats = folder / "shop2_stats.csv"
    with stats.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
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
                *LOCUST_QUANTILES,
            ]
        )
        length = float(done.max())
        figures = [
            str(ms.size),
            "0",
            f"{np.median(ms):.0f}",
            f"{ms.mean():.2f}",
            f"{ms.min():.0f}",
            f"{ms.max():.0f}",
            "1024",
            f"{ms.size / length:.2f}",
            "0.00",
            *[
                f"{v:.0f}"
                for v in np.percentile(ms, [50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100])
            ],
        ]
        writer.writerow(["GET", f"/{cls}", *figures])
        writer.writerow(["", "Aggregated", *figures])
    return history, stats
