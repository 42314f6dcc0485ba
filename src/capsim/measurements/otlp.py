"""OpenTelemetry traces: OTLP JSON (the Collector's file exporter, one document or one a line)
and, when `opentelemetry-proto` is installed, OTLP protobuf."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from capsim.measurements.reading import MeasurementError, json_lines, parse_json
from capsim.measurements.types import SPAN_KINDS, Span, Traces

_KIND_NAMES = {f"SPAN_KIND_{name.upper()}": name for name in SPAN_KINDS} | {
    name.upper(): name for name in SPAN_KINDS
}


def parse_otlp_json(text: str, path: str | Path) -> Traces:
    """Spans of an OTLP JSON file: one ExportTraceServiceRequest/TracesData, or NDJSON of them."""
    stripped = text.strip()
    if "\n" in stripped and stripped.startswith("{") and not _single_document(stripped):
        documents = json_lines(text, path)
    else:
        documents = [parse_json(text, path)]
    spans: list[Span] = []
    for number, document in enumerate(documents, start=1):
        where = f"{path}" + (f" (document {number})" if len(documents) > 1 else "")
        spans.extend(_document_spans(document, where))
    if not spans:
        raise MeasurementError(f"{path}: the OTLP file holds no spans")
    return Traces(source=str(path), spans=spans)


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


def _document_spans(document: Any, where: str) -> list[Span]:
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
        scopes = _require_list(resource_spans, "scopeSpans", here) or _require_list(
            resource_spans, "instrumentationLibrarySpans", here
        )
        for s, scope in enumerate(scopes):
            for n, record in enumerate(_require_list(scope, "spans", f"{here}.scopeSpans[{s}]")):
                spans.append(_span(record, service, f"{here}.scopeSpans[{s}].spans[{n}]"))
    return spans


def _span(record: Any, service: str, where: str) -> Span:
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
    parent = _field(record, "parentSpanId") or None
    return Span(
        trace_id=_identifier(_field(record, "traceId")),
        span_id=_identifier(_field(record, "spanId")),
        parent_id=_identifier(parent) if parent else None,
        name=str(_field(record, "name") or ""),
        kind=_kind(_field(record, "kind"), where),
        service=service,
        start=start / 1e9,
        end=end / 1e9,
        attributes=attributes_of(_field(record, "attributes") or [], where),
    )


def _identifier(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


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


def parse_otlp_proto(data: bytes, path: str | Path) -> Traces:
    """Spans of a binary OTLP file (TracesData / ExportTraceServiceRequest)."""
    try:
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
    except ImportError:
        raise MeasurementError(
            f"{path}: this is binary, not UTF-8 text: if it is OTLP protobuf, reading it needs "
            "the optional package opentelemetry-proto (pip install opentelemetry-proto), or "
            "export OTLP JSON with the Collector's file exporter; other formats must be UTF-8 "
            "JSON or CSV"
        ) from None
    message = TracesData()
    try:
        message.ParseFromString(data)
    except Exception as error:  # protobuf raises its own DecodeError family
        raise MeasurementError(f"{path}: not valid OTLP protobuf: {error}") from None
    document = MessageToDict(message, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope in resource_spans.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
    return Traces(source=str(path), spans=_document_spans(document, str(path)))
