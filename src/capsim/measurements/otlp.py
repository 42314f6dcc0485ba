"""OpenTelemetry traces: OTLP JSON (the Collector's file exporter, one document or one a line)
and, when `opentelemetry-proto` is installed, OTLP protobuf."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from capsim.measurements.reading import (
    MeasurementError,
    lenient_json_lines,
    malformed_warning,
    parse_json,
    refuse_mostly_malformed,
)
from capsim.measurements.types import SPAN_KINDS, Span, Traces

_KIND_NAMES = {f"SPAN_KIND_{name.upper()}": name for name in SPAN_KINDS} | {
    name.upper(): name for name in SPAN_KINDS
}


#: Resource attributes that name a service's instance, in order of preference.
INSTANCE_KEYS = ("service.instance.id", "host.name", "k8s.pod.name", "container.id")


def parse_otlp_json(text: str, path: str | Path) -> Traces:
    """Spans of an OTLP JSON file: one ExportTraceServiceRequest/TracesData, or NDJSON of them."""
    stripped = text.strip()
    broken = None
    if "\n" in stripped and stripped.startswith("{") and not _single_document(stripped):
        documents, broken = lenient_json_lines(text, path, "spans")
    else:
        documents = [parse_json(text, path)]
    if len(documents) == 1 and isinstance(documents[0], list):
        documents = documents[0]  # a JSON array of documents (several exports concatenated)
    spans: list[Span] = []
    skipped: list[str] = []
    for number, document in enumerate(documents, start=1):
        where = f"{path}" + (f" (document {number})" if len(documents) > 1 else "")
        spans.extend(_document_spans(document, where, skipped))
    if not spans and not skipped:
        raise MeasurementError(f"{path}: the OTLP file holds no spans")
    return replace(usable_traces(str(path), spans, skipped), broken_lines=broken)


def usable_traces(source: str, spans: list[Span], skipped: list[str]) -> Traces:
    """The file's spans with its malformed ones left out (`Traces.skipped`); refused (exit 2)
    unless more than `USABLE_SHARE` of its span records are usable."""
    refuse_mostly_malformed(source, len(spans), skipped, "spans")
    return Traces(
        source=source, spans=spans, skipped=tuple(skipped), records=len(spans) + len(skipped)
    )


def skipped_warning(traces: Traces) -> str | None:
    """The warning for a file's malformed spans and broken NDJSON lines (None when there are
    none)."""
    if not traces.skipped:
        return traces.broken_lines
    said = malformed_warning(
        traces.source,
        traces.skipped,
        traces.records,
        "spans",
        " (their children, if any, are left out as spans whose parent is not in the files)",
    )
    return said if traces.broken_lines is None else f"{traces.broken_lines}; {said}"


def _single_document(text: str) -> bool:
    first = text.split("\n", 1)[0].strip()
    return not (first.startswith("{") and first.endswith("}"))


def _field(record: dict[str, Any], camel: str) -> Any:
    """OTLP JSON uses lowerCamelCase; the protobuf-to-JSON mapping also accepts snake_case."""
    if camel in record:
        return record[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return record.get(snake)


def _require_list(record: Any, key: str, where: str) -> list[Any]:
    if not isinstance(record, dict):
        raise MeasurementError(
            f"{where}: expected an object holding {key!r}, found {type(record).__name__}"
        )
    value = _field(record, key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MeasurementError(f"{where}: {key!r} must be a list, found {type(value).__name__}")
    return value


def _document_spans(document: Any, where: str, skipped: list[str]) -> list[Span]:
    """The document's spans; a malformed span is left out and described in `skipped`."""
    tempo = isinstance(document, dict) and "resourceSpans" not in document
    if tempo and isinstance(document.get("batches"), list):
        # Grafana Tempo's trace API (/api/traces/{id}) names the resourceSpans `batches`.
        document = {"resourceSpans": document["batches"]}
    if not isinstance(document, dict) or _field(document, "resourceSpans") is None:
        raise MeasurementError(
            f"{where}: not OTLP traces: the top level needs a 'resourceSpans' list "
            "(resourceSpans -> scopeSpans -> spans)"
        )
    spans = []
    for r, resource_spans in enumerate(_require_list(document, "resourceSpans", where)):
        here = f"{where}: resourceSpans[{r}]"
        resource = _field(resource_spans, "resource") or {}
        resource_attributes = attributes_of(_field(resource, "attributes") or [], here)
        service = str(resource_attributes.get("service.name", "unknown_service"))
        instance = next(
            (
                str(resource_attributes[key])
                for key in INSTANCE_KEYS
                if resource_attributes.get(key)
            ),
            "",
        )
        scopes = _require_list(resource_spans, "scopeSpans", here) or _require_list(
            resource_spans, "instrumentationLibrarySpans", here
        )
        for s, scope in enumerate(scopes):
            for n, record in enumerate(_require_list(scope, "spans", f"{here}.scopeSpans[{s}]")):
                at = f"{here}.scopeSpans[{s}].spans[{n}]"
                try:
                    spans.append(_span(record, service, at, instance))
                except MeasurementError as defect:
                    skipped.append(_named(str(defect), record, at))
    return spans


def _named(defect: str, record: Any, at: str) -> str:
    """A span's defect (`at`: where it is) with its trace and span id, when it has them."""
    if not isinstance(record, dict):
        return defect
    ids = [
        f"{label} {str(_field(record, key))[:40]}"
        for label, key in (("trace", "traceId"), ("span", "spanId"))
        if _field(record, key) not in (None, "")
    ]
    if not ids:
        return defect
    return f"{at} ({', '.join(ids)}): {defect.removeprefix(at + ': ')}"


def _span(record: Any, service: str, where: str, instance: str = "") -> Span:
    if not isinstance(record, dict):
        raise MeasurementError(f"{where}: a span must be an object")
    missing = [
        key
        for key in ("traceId", "spanId", "startTimeUnixNano", "endTimeUnixNano")
        if _field(record, key) in (None, "")
    ]
    if missing:
        raise MeasurementError(f"{where}: the span has no {', '.join(missing)}")
    start = _nanos(_field(record, "startTimeUnixNano"), where, "startTimeUnixNano")
    end = _nanos(_field(record, "endTimeUnixNano"), where, "endTimeUnixNano")
    if end < start:
        raise MeasurementError(f"{where}: endTimeUnixNano is before startTimeUnixNano")
    return Span(
        trace_id=_identifier(_field(record, "traceId")),
        span_id=_identifier(_field(record, "spanId")),
        parent_id=_parent_id(_field(record, "parentSpanId")),
        name=str(_field(record, "name") or ""),
        kind=_kind(_field(record, "kind"), where),
        service=service,
        start=start / 1e9,
        end=end / 1e9,
        attributes=attributes_of(_field(record, "attributes") or [], where),
        links=_links(_field(record, "links"), where),
        instance=instance,
        trace_state=str(_field(record, "traceState") or ""),
    )


def _parent_id(value: Any) -> str | None:
    """The parent span's id, or None for a root: no parentSpanId, an empty one, or the
    all-zero id, which OpenTelemetry and W3C trace context define as invalid (no span) and
    some exporters write for a root."""
    parent = _identifier(value) if value else None
    return parent if parent and parent.strip("0") else None


def _links(items: Any, where: str) -> tuple[tuple[str, str], ...]:
    """The (trace id, span id) of each span link (a consumer's link to the producer that
    published what it consumed, when the consumer starts a trace of its own)."""
    if not items:
        return ()
    if not isinstance(items, list):
        raise MeasurementError(f"{where}: links must be a list of {{traceId, spanId}}")
    return tuple(
        (_identifier(_field(link, "traceId")), _identifier(_field(link, "spanId")))
        for link in items
        if isinstance(link, dict) and _field(link, "traceId") and _field(link, "spanId")
    )


_HEX_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")
_BASE64_ID = re.compile(r"[A-Za-z0-9+/_-]{11}=?|[A-Za-z0-9+/_-]{22}(==)?")


def _identifier(value: Any) -> str:
    """A trace or span id in lower-case hex, however the file spells it: hex (OTLP JSON), or
    base64 (the plain protobuf-to-JSON mapping, which some exporters write) of 8 or 16 bytes."""
    if isinstance(value, bytes):
        return value.hex()
    text = str(value).strip()
    if _HEX_ID.fullmatch(text):
        return text.lower()
    if _BASE64_ID.fullmatch(text):
        padded = text.replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
        except (binascii.Error, ValueError):
            return text
        if len(raw) in (8, 16):
            return raw.hex()
    return text


def _nanos(value: Any, where: str, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MeasurementError(
            f"{where}: {key} must be nanoseconds since the epoch (a string of digits), "
            f"found {str(value)[:40]!r}"
        ) from None


def _kind(value: Any, where: str) -> str:
    if value is None:
        return "unspecified"
    if isinstance(value, int) and 0 <= value < len(SPAN_KINDS):
        return SPAN_KINDS[value]
    if isinstance(value, str) and value.upper() in _KIND_NAMES:
        return _KIND_NAMES[value.upper()]
    raise MeasurementError(
        f"{where}: unknown span kind {value!r}; expected 0-5 or SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ..."
    )


def attributes_of(items: Any, where: str) -> dict[str, Any]:
    """OTLP attributes ([{key, value: {stringValue|intValue|...}}]) as a plain dict."""
    if not isinstance(items, list):
        raise MeasurementError(f"{where}: attributes must be a list of {{key, value}}")
    result: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and "key" in item:
            result[str(item["key"])] = _any_value(item.get("value") or {})
    return result


def _any_value(value: dict[str, Any]) -> Any:
    for key, convert in (
        ("stringValue", str),
        ("intValue", int),
        ("doubleValue", float),
        ("boolValue", bool),
        ("bytesValue", str),
    ):
        if key in value:
            try:
                return convert(value[key])
            except (TypeError, ValueError):
                return value[key]
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    return None


#: What to install to read binary OTLP (the optional extra capsim[otlp]).
PROTO_PACKAGE = "opentelemetry-proto"
#: The first bytes of a zstd frame (the Collector's file exporter with `compression: zstd`).
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def parse_otlp_proto(data: bytes, path: str | Path) -> Traces:
    """Spans of a binary OTLP file, in any of the three layouts found in practice:

    - the Collector's file exporter with `format: proto`: each TracesData preceded by its
      length as a 4-byte big-endian unsigned integer;
    - the specification's delimited stream: each message preceded by its length as a varint;
    - one bare TracesData or ExportTraceServiceRequest (the same wire format: field 1,
      resource_spans), as an OTLP/HTTP request body saved to a file.
    """
    try:
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    except ImportError:
        raise MeasurementError(
            f"{path}: this is binary, not UTF-8 text: if it is OTLP protobuf, reading it needs "
            f"the optional package {PROTO_PACKAGE} (pip install {PROTO_PACKAGE}, or pip install "
            "'capsim[otlp]'), or export OTLP JSON with the Collector's file exporter; other "
            "formats must be UTF-8 JSON or CSV"
        ) from None
    if data.startswith(ZSTD_MAGIC):
        raise MeasurementError(
            f"{path}: zstd-compressed (the Collector's file exporter with compression: zstd); "
            "decompress it first (zstd -d FILE) or export without compression"
        )
    spans: list[Span] = []
    skipped: list[str] = []
    frames = proto_frames(data)
    for number, frame in enumerate(frames, start=1):
        where = f"{path}" + (f" (message {number})" if len(frames) > 1 else "")
        message = TracesData()
        try:
            message.ParseFromString(frame)
        except Exception as error:  # protobuf raises its own DecodeError family
            raise MeasurementError(f"{where}: not valid OTLP protobuf: {error}") from None
        document = MessageToDict(message, use_integers_for_enums=True)
        _hex_identifiers(document)
        spans.extend(_document_spans(document, where, skipped))
    if not spans and not skipped:
        raise MeasurementError(
            f"{path}: the OTLP protobuf holds no spans (is it traces, not metrics or logs?)"
        )
    return usable_traces(str(path), spans, skipped)


def proto_frames(data: bytes) -> list[bytes]:
    """The messages of a binary OTLP file: the Collector's 4-byte length-prefixed records when
    they tile the file exactly, else varint-delimited messages that do (each starting with
    field 1's tag, 0x0a), else the whole file as one message."""
    if data[:1] == b"\x00":
        framed = _tiles(data, _fixed_length)
        if framed:
            return framed
    if data[:1] != b"\x0a":
        delimited = _tiles(data, _varint_length)
        if delimited and all(frame[:1] == b"\x0a" for frame in delimited):
            return delimited
    return [data]


def _fixed_length(data: bytes, at: int) -> tuple[int, int] | None:
    if at + 4 > len(data):
        return None
    return int.from_bytes(data[at : at + 4], "big"), at + 4


def _varint_length(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def _tiles(
    data: bytes, length_at: Callable[[bytes, int], tuple[int, int] | None]
) -> list[bytes] | None:
    """The frames when `length_at`'s prefixes cut `data` into non-empty records exactly."""
    frames = []
    at = 0
    while at < len(data):
        found = length_at(data, at)
        if found is None:
            return None
        size, at = found
        if size == 0 or at + size > len(data):
            return None
        frames.append(data[at : at + size])
        at += size
    return frames


def _hex_identifiers(document: dict[str, Any]) -> None:
    """MessageToDict gives bytes fields as base64; OTLP JSON (and capsim) spell ids in hex."""
    for resource_spans in document.get("resourceSpans", []):
        for scope in resource_spans.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
