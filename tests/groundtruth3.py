"""A third ground-truth system, in SimPy alone (no capsim code), recorded the way production
tracing records it: sampled, lossy, skewed, with retries and errors.

The system: `web` (16 blocking workers, lognormal self time mean 12 ms, cv 0.6) receives Poisson
requests `GET /item`. Each request works half its self time, then calls `store` over HTTP
(a CLIENT span with peer.service) and works the other half. `store` has 6 blocking workers and
a lognormal service time (mean 40 ms, cv 1.0); an attempt fails with probability 0.1 (it still
uses its service time, and its spans carry status ERROR) and `web` retries it at once, at most
twice. A `cache` in front of `store` (ample workers, lognormal mean 1 ms, cv 0.3) answers a
share `hit` of the requests, which then never reach `store` (system 4: the cache changes the
downstream rate).

The tracer: head sampling keeps a trace with probability `sampling` (chosen from the trace id,
as TraceIdRatioBased does) and, when `tracestate` is on, says so in each span's `traceState`
as OpenTelemetry's consistent probability sampling does (`ot=th:...`); the exporter drops a
share `lost` of `store`'s server spans; `store`'s clock runs `skew` seconds ahead of `web`'s;
the network adds 0.5 ms each way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

EPOCH = 1_790_000_000.0


@dataclass(frozen=True)
class Truth3:
    web_workers: int = 16
    web_mean: float = 0.012
    web_cv: float = 0.6
    store_workers: int = 6
    store_mean: float = 0.040
    store_cv: float = 1.0
    cache_mean: float = 0.001
    cache_cv: float = 0.3
    failure: float = 0.1
    max_retries: int = 2
    hit: float = 0.0
    network: float = 0.0005

    @property
    def store_calls_per_request(self) -> float:
        """Expected store attempts per request (a miss makes 1 + retries, capped)."""
        attempts = sum(self.failure**k for k in range(self.max_retries + 1))
        return (1 - self.hit) * attempts


def lognormal(rng: np.random.Generator, mean: float, cv: float) -> float:
    sigma2 = math.log(1 + cv * cv)
    return float(rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2)))


class System3:
    def __init__(self, truth: Truth3, seed: int) -> None:
        self.truth = truth
        self.rng = np.random.default_rng(seed)
        self.env = simpy.Environment()
        self.web = simpy.Resource(self.env, truth.web_workers)
        self.store = simpy.Resource(self.env, truth.store_workers)
        self.spans: list[dict] = []
        self.latencies: list[tuple[float, float]] = []  # (arrival, response time)
        self.store_busy: list[tuple[float, float]] = []
        self.web_busy: list[tuple[float, float]] = []
        self.store_arrivals: list[float] = []
        self.counter = 0

    def _id(self, size: int) -> str:
        return self.rng.bytes(size).hex()

    def arrivals(self, rate: float, until: float, ramp_to: float | None = None):
        """Poisson arrivals at `rate`, or rising linearly to `ramp_to` at `until` (thinning)."""
        top = max(rate, ramp_to or rate)
        while True:
            yield self.env.timeout(self.rng.exponential(1 / top))
            if self.env.now >= until:
                return
            now = self.env.now
            current = rate if ramp_to is None else rate + (ramp_to - rate) * now / until
            if self.rng.random() < current / top:
                self.env.process(self.request())

    def request(self):
        t = self.truth
        arrival = self.env.now
        trace = self._id(16)
        with self.web.request() as slot:
            yield slot
            start = self.env.now
            root = self._id(8)
            work = lognormal(self.rng, t.web_mean, t.web_cv)
            self.web_busy.append((start, start + work / 2))
            yield self.env.timeout(work / 2)
            if self.rng.random() < t.hit:
                yield from self._cache(trace, root)
            else:
                for _attempt in range(t.max_retries + 1):
                    failed = yield from self._store(trace, root)
                    if not failed:
                        break
            self.web_busy.append((self.env.now, self.env.now + work / 2))
            yield self.env.timeout(work / 2)
            self._span(trace, root, None, "GET /item", 2, "web", start, self.env.now, {})
        self.latencies.append((arrival, self.env.now - arrival))

    def _cache(self, trace: str, parent: str):
        t = self.truth
        client = self._id(8)
        begin = self.env.now
        yield self.env.timeout(lognormal(self.rng, t.cache_mean, t.cache_cv))
        self._span(
            trace,
            client,
            parent,
            "GET",
            3,
            "web",
            begin,
            self.env.now,
            {"db.system": "redis", "peer.service": "cache"},
        )

    def _store(self, trace: str, parent: str):
        t = self.truth
        client = self._id(8)
        begin = self.env.now
        yield self.env.timeout(t.network)
        self.store_arrivals.append(self.env.now)
        with self.store.request() as slot:
            yield slot
            served = self.env.now
            yield self.env.timeout(lognormal(self.rng, t.store_mean, t.store_cv))
            self.store_busy.append((served, self.env.now))
            done = self.env.now
        failed = bool(self.rng.random() < t.failure)
        server = self._id(8)
        self._span(trace, server, client, "GET /stock", 2, "store", served, done, {}, failed)
        yield self.env.timeout(t.network)
        self._span(
            trace,
            client,
            parent,
            "GET",
            3,
            "web",
            begin,
            self.env.now,
            {"peer.service": "store", "http.request.method": "GET"},
            failed,
        )
        return failed

    def _span(
        self,
        trace: str,
        span: str,
        parent: str | None,
        name: str,
        kind: int,
        service: str,
        start: float,
        end: float,
        attributes: dict,
        failed: bool = False,
    ) -> None:
        self.spans.append(
            {
                "trace": trace,
                "id": span,
                "parent": parent,
                "name": name,
                "kind": kind,
                "service": service,
                "start": start,
                "end": end,
                "attributes": attributes,
                "failed": failed,
            }
        )


def run(
    truth: Truth3, seed: int, rate: float, duration: float, ramp_to: float | None = None
) -> System3:
    system = System3(truth, seed)
    system.env.process(system.arrivals(rate, duration, ramp_to))
    system.env.run(until=duration + 5.0)
    return system


def _nanos(t: float) -> str:
    return str(round((EPOCH + t) * 1e9))


def sampled(trace_id: str, probability: float) -> bool:
    """TraceIdRatioBased / consistent probability sampling: keep a trace when the low 56 bits
    of its id (its randomness) are at least the rejection threshold."""
    threshold = round((1 - probability) * 2**56)
    return int(trace_id[-14:], 16) >= threshold


def threshold_text(probability: float) -> str:
    """The `th` of an OpenTelemetry tracestate for this sampling probability (trailing zeros
    dropped, as the specification writes it)."""
    threshold = round((1 - probability) * 2**56)
    return f"{threshold:014x}".rstrip("0") or "0"


def write_otlp(
    system: System3,
    path: Path,
    until: float,
    *,
    sampling: float = 1.0,
    tracestate: bool = True,
    lost: float = 0.0,
    skew: float = 0.0,
    seed: int = 7,
) -> None:
    """The Collector's file exporter: one JSON document, resourceSpans by service."""
    rng = np.random.default_rng(seed)
    by_service: dict[str, list[dict]] = {}
    for s in system.spans:
        if s["end"] > until or not sampled(s["trace"], sampling):
            continue
        if s["service"] == "store" and rng.random() < lost:
            continue
        shift = skew if s["service"] == "store" else 0.0
        span = {
            "traceId": s["trace"],
            "spanId": s["id"],
            "parentSpanId": s["parent"] or "",
            "name": s["name"],
            "kind": s["kind"],
            "startTimeUnixNano": _nanos(s["start"] + shift),
            "endTimeUnixNano": _nanos(s["end"] + shift),
            "attributes": [
                {"key": k, "value": {"stringValue": v}} for k, v in s["attributes"].items()
            ],
            "status": {"code": 2, "message": "upstream failed"} if s["failed"] else {},
            "flags": 257,
        }
        if tracestate and sampling < 1.0:
            span["traceState"] = f"ot=th:{threshold_text(sampling)}"
        by_service.setdefault(s["service"], []).append(span)
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {
                            "name": "opentelemetry.instrumentation.flask",
                            "version": "0.48b0",
                        },
                        "spans": spans,
                    }
                ],
                "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
            }
            for service, spans in by_service.items()
        ]
    }
    path.write_text(json.dumps(document))


# --- Prometheus ------------------------------------------------------------------------------

#: Coarse latency buckets, as a default client library histogram is often configured.
COARSE_BUCKETS = (0.005, 0.05, 0.1, 0.25, 0.5, 1.0)


def _busy_in(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    return sum(max(0.0, min(b, high) - max(a, low)) for a, b in intervals)


def _sample(value: float) -> str:
    """A sample value as Prometheus writes it: a string, "NaN" and "+Inf" included."""
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if value != int(value) else str(int(value))


def _matrix(series: list[tuple[dict, list[tuple[float, str]]]]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": labels, "values": [[EPOCH + t, v] for t, v in values]}
                for labels, values in series
            ],
        },
    }


def write_prometheus(
    system: System3,
    folder: Path,
    until: float,
    *,
    step: float = 15.0,
    window: float = 60.0,
    gaps: tuple[float, ...] = (),
    raw_counter: bool = False,
    reset_at: float | None = None,
) -> dict[str, Path]:
    """Three query_range results over [window, until] at `step`:

    - `rates.json`: `sum by (service, route) (rate(http_server_requests_total[1m]))`, no
      `__name__` (rate() drops it), steps in `gaps` missing (failed evaluations); or, with
      `raw_counter`, the counter itself (`http_server_requests_total` with its `__name__`),
      reset to zero at `reset_at` (a restart);
    - `cpu.json`: `sum by (service) (rate(process_cpu_seconds_total[1m]))`, busy cores;
    - `latency.json`: `sum by (le) (rate(http_server_request_duration_seconds_bucket[1m]))`
      with COARSE_BUCKETS and `+Inf`; with `raw_counter`, the bucket counters themselves
      (the 5 ms one never moves: no request is that fast).
    """
    times = [t for t in np.arange(window, until + 1e-9, step)]
    arrivals = np.sort(np.array([a for a, _ in system.latencies]))
    done = sorted((a + r, r) for a, r in system.latencies)
    ends = np.array([e for e, _ in done])
    responses = np.array([r for _, r in done])
    labels = {"service": "web", "route": "/item"}
    if raw_counter:
        offset = 0.0
        values = []
        for t in times:
            count = float(np.searchsorted(arrivals, t))
            if reset_at is not None and t >= reset_at:
                count -= float(np.searchsorted(arrivals, reset_at))
            values.append((t, _sample(count + offset)))
        rates = [({"__name__": "http_server_requests_total", **labels}, values)]
    else:
        values = []
        for t in times:
            if any(abs(t - g) < 1e-9 for g in gaps):
                continue
            count = np.searchsorted(arrivals, t) - np.searchsorted(arrivals, t - window)
            values.append((t, _sample(count / window)))
        rates = [(labels, values)]
    cpu = []
    for service, busy in (("web", system.web_busy), ("store", system.store_busy)):
        cpu.append(
            (
                {"service": service},
                [(t, _sample(_busy_in(busy, t - window, t) / window)) for t in times],
            )
        )
    buckets = []
    for le in (*COARSE_BUCKETS, math.inf):
        per_step = []
        for t in times:
            if raw_counter:  # the bucket counter itself, reset with the process
                since = reset_at if reset_at is not None and t >= reset_at else -math.inf
                inside = (ends > since) & (ends <= t) & (responses <= le)
                per_step.append((t, _sample(float(inside.sum()))))
            else:
                inside = (ends > t - window) & (ends <= t) & (responses <= le)
                per_step.append((t, _sample(inside.sum() / window)))
        bound = "+Inf" if math.isinf(le) else str(le)
        name = {"__name__": "http_server_request_duration_seconds_bucket"} if raw_counter else {}
        buckets.append(({**name, "le": bound}, per_step))
    paths = {}
    for name, series in (("rates", rates), ("cpu", cpu), ("latency", buckets)):
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(_matrix(series)))
    return paths


# --- k6 ---------------------------------------------------------------------------------------


def _rfc3339(t: float) -> str:
    """k6's JSON time: RFC 3339 with nanoseconds and the machine's UTC offset (+01:00 here)."""
    from datetime import datetime, timedelta, timezone

    zone = timezone(timedelta(hours=1))
    moment = datetime.fromtimestamp(EPOCH + t, tz=zone)
    nanos = round((EPOCH + t) * 1e9) % 1_000_000_000
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}" + moment.strftime("%z")[:3] + ":00"
    )


def write_k6_json(system: System3, path: Path, pool: int = 50) -> None:
    """`k6 run --out json=FILE` of a `ramping-arrival-rate` scenario: Metric lines, then per
    request http_reqs, http_req_duration (ms) and http_req_failed Points tagged as k6 tags
    them, and once a second the `vus` gauge: the executor's pool of VUs (`preAllocatedVUs`,
    grown when more requests are in flight)."""
    lines = []
    for name, kind, contains in (
        ("http_reqs", "counter", "default"),
        ("http_req_duration", "trend", "time"),
        ("http_req_failed", "rate", "default"),
        ("vus", "gauge", "default"),
    ):
        metric = {"name": name, "type": kind, "contains": contains, "thresholds": []}
        lines.append({"type": "Metric", "data": {**metric, "submetrics": None}, "metric": name})
    tags = {
        "expected_response": "true",
        "group": "",
        "method": "GET",
        "name": "http://web:8080/item",
        "proto": "HTTP/1.1",
        "scenario": "ramp",
        "status": "200",
        "url": "http://web:8080/item",
    }
    events = []
    for arrival, response in system.latencies:
        end = arrival + response
        events.append((end, "http_reqs", 1.0))
        events.append((end, "http_req_duration", response * 1000.0))
        events.append((end, "http_req_failed", 0.0))
    spans = sorted(system.latencies)
    grown = pool
    for second in range(int(max(a + r for a, r in spans)) + 1):
        in_flight = sum(1 for a, r in spans if a <= second < a + r)
        grown = max(grown, in_flight)
        events.append((float(second), "vus", float(grown)))
    for time, metric, value in sorted(events):
        point = {"time": _rfc3339(time), "value": value, "tags": tags}
        if metric == "vus":
            point = {"time": _rfc3339(time), "value": value, "tags": {"scenario": "ramp"}}
        lines.append({"type": "Point", "data": point, "metric": metric})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
