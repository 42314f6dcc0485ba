"""Measurements as plain data: spans, metric series and load-test steps, whatever file they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Span kinds, as OpenTelemetry numbers them (SpanKind in trace.proto).
SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")


@dataclass(frozen=True)
class Span:
    """One OpenTelemetry span; times are seconds since the Unix epoch."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Span links as (trace id, span id): how a consumer that starts its own trace names the
    #: producer span whose message it consumed.
    links: tuple[tuple[str, str], ...] = ()
    #: The instance of the service that recorded the span (its resource's service.instance.id,
    #: else host.name, k8s.pod.name or container.id; "" when the resource names none).
    instance: str = ""
    #: The W3C tracestate the span was recorded with ("" when none): OpenTelemetry's
    #: probability sampling writes its threshold there (`ot=th:...`).
    trace_state: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Traces:
    source: str
    spans: list[Span]
    #: Spans left out because they were malformed (an end before the start, no id, a time
    #: that is not nanoseconds ...): where each was, its trace and span id when it has them,
    #: and what was wrong (docs/calibration.md, "Malformed records").
    skipped: tuple[str, ...] = ()
    #: Every span record read, the skipped ones included.
    records: int = 0
    #: The warning naming NDJSON lines that were not JSON, skipped with their spans (None when
    #: every line was read).
    broken_lines: str | None = None


@dataclass(frozen=True)
class MetricSeries:
    """One series of a Prometheus range query: its labels and (time, value) samples."""

    labels: dict[str, str]
    times: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class MetricsFile:
    source: str
    series: list[MetricSeries]
    #: The response's `warnings`: what Prometheus (or Thanos, Mimir) says went wrong without
    #: failing the query, such as a store that did not answer (the data may be partial).
    warnings: tuple[str, ...] = ()
    #: capsim's own warning about samples it left out because they were malformed (docs/
    #: calibration.md, "Malformed records"); None when every sample could be read.
    malformed: str | None = None


@dataclass(frozen=True)
class LoadStep:
    """A stretch of a load test at one load: `users` concurrent virtual users (0 when the
    tool does not say), the requests completed, and latency percentiles in seconds."""

    name: str
    start: float
    end: float
    users: float
    requests: int
    errors: int
    throughput: float
    latency: dict[str, float]


@dataclass(frozen=True)
class LoadTest:
    """A load test's steps (`steps`, in time order) and its per-request-name totals."""

    source: str
    tool: str
    steps: list[LoadStep]
    totals: list[LoadStep]
    #: Per request name, the times its requests completed, when the file records each request
    #: (k6's --out json): how the offered rate changed over the test.
    completions: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: Records (k6 lines, CSV rows) left out because they were malformed: where each was and
    #: what was wrong (docs/calibration.md, "Malformed records"); `records` counts them all.
    skipped: tuple[str, ...] = ()
    records: int = 0


Measurement = Traces | MetricsFile | LoadTest
