"""Reading measurement files: a size cap, and the format told from the content."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path
from typing import Any

from capsim.errors import CapsimError, ResourceLimitError
from capsim.safeio import InputError, too_large
from capsim.safeio import read_capped as safe_read
from capsim.textsafe import visible

#: Default cap on one measurement file (`--max-input` raises it).
DEFAULT_MAX_INPUT = 512 * 1024 * 1024

FORMATS = (
    "otlp-json",
    "otlp-proto",
    "prometheus",
    "k6-summary",
    "k6-json",
    "locust-stats",
    "locust-history",
    "csv",
)


class MeasurementError(CapsimError):
    """A measurement file cannot be used: the message names the file and what is wrong."""

    exit_code = 2


def read_capped(path: str | Path, cap: int = DEFAULT_MAX_INPUT) -> bytes:
    """The bytes of `path`, reading at most `cap` + 1 of them (capsim.safeio, as every input):
    a larger file is refused with exit 3 and how to raise the cap, anything unreadable with
    exit 2, the path and the system's reason."""
    what = "a measurement file"
    try:
        return safe_read(path, cap, what)
    except InputError as error:
        if error.reason == too_large(cap, what):
            raise ResourceLimitError(
                f"{visible(str(path))}: the file is larger than {cap:,} bytes; raise the limit "
                "with --max-input (a size such as 2GiB) or split the file"
            ) from None
        raise MeasurementError(
            f"{visible(str(path))}: cannot read the file: {error.reason}"
        ) from None


GZIP_MAGIC = b"\x1f\x8b"


def gunzipped(data: bytes, path: str | Path, cap: int = DEFAULT_MAX_INPUT) -> bytes:
    """`data` decompressed when it is gzip (k6's `--out json=results.gz`, a saved `.json.gz`),
    at most `cap` bytes of it (a larger content is refused with exit 3, as a large file is);
    other data as it is."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            content = stream.read(cap + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise MeasurementError(
            f"{visible(str(path))}: gzip content that cannot be decompressed ({error}); "
            "is the file complete?"
        ) from None
    if len(content) > cap:
        raise ResourceLimitError(
            f"{visible(str(path))}: decompressed, the file is larger than {cap:,} bytes; raise "
            "the limit with --max-input (a size such as 2GiB) or split the file"
        )
    return content


def undecodable_at(data: bytes, error: UnicodeDecodeError) -> tuple[int, int]:
    """The line and column (from 1) of the first byte of `data` that is not UTF-8."""
    before = data[: error.start]
    return before.count(b"\n") + 1, error.start - (before.rfind(b"\n") + 1) + 1


def decode_text(data: bytes, path: str | Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = undecodable_at(data, error)
        raise MeasurementError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
            "measurement files are JSON, NDJSON or CSV text (or binary OTLP protobuf)"
        ) from None


#: More digits than any figure a tool writes: a longer integer is not a measurement (and Python
#: refuses to read one of more than 4,300 digits at all).
MAX_INTEGER_DIGITS = 300


def _parse_int(text: str) -> int | float:
    if len(text) > MAX_INTEGER_DIGITS:
        raise ValueError(
            f"an integer of {len(text):,} digits ({visible(text[:20])}...) is not a measurement"
        )
    return int(text)


def parse_json(text: str, path: str | Path, line_offset: int = 0) -> Any:
    """JSON with the error located as file:line:col."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise MeasurementError(
            f"{path}:{error.lineno + line_offset}:{error.colno}: invalid JSON: {error.msg}"
            + (" (the file looks truncated)" if error.pos >= len(text.rstrip()) else "")
        ) from None
    except RecursionError:
        raise MeasurementError(f"{path}: the JSON is nested too deeply") from None
    except ValueError as error:  # an integer beyond `MAX_INTEGER_DIGITS`
        line = line_offset + 1 if line_offset else None
        where = f"{path}:{line}" if line else f"{path}"
        raise MeasurementError(f"{where}: {error}") from None


#: A file is refused unless more than this share of its records (spans, k6 lines, CSV rows,
#: Prometheus samples) can be read: the rest would not be a sample of the system, but what
#: the defect left (docs/calibration.md, "Malformed records").
USABLE_SHARE = 0.5
#: Malformed records named in a message; the rest are counted.
NAMED_DEFECTS = 5


def defects_text(skipped: list[str] | tuple[str, ...], source: str) -> str:
    """The first `NAMED_DEFECTS` defects of the file `source` (named once, before them),
    `; `-separated, and how many more."""
    text = "; ".join(_after_source(d, source) for d in skipped[:NAMED_DEFECTS])
    more = len(skipped) - NAMED_DEFECTS
    return text + (f"; and {more} more" if more > 0 else "")


def _after_source(defect: str, source: str) -> str:
    """`FILE: where: what` -> `where: what`; `FILE:12:5: what` -> `line 12:5: what`."""
    if defect.startswith(source + ": "):
        return defect[len(source) + 2 :]
    if defect.startswith(source + ":"):
        return "line " + defect[len(source) + 1 :]
    return defect


def refuse_mostly_malformed(source: str, usable: int, skipped: list[str], noun: str) -> None:
    """Exit 2 unless more than `USABLE_SHARE` of the file's records (`usable` read, `skipped`
    malformed) can be read, naming the first defects."""
    records = usable + len(skipped)
    if skipped and usable <= USABLE_SHARE * records:
        raise MeasurementError(
            f"{source}: only {usable} of its {records} {noun} can be read (more than "
            f"{USABLE_SHARE:.0%} must be): {defects_text(skipped, source)}"
        )


def malformed_warning(
    source: str, skipped: list[str] | tuple[str, ...], records: int, noun: str, left: str = ""
) -> str:
    """`FILE: 2 malformed rows of 120 skipped: line 7: ...; line 9: ...`; `noun` is plural,
    `left` what their absence means (after `skipped`)."""
    count = len(skipped)
    name = noun if count > 1 else noun.removesuffix("s")
    return (
        f"{source}: {count} malformed {name} of {records} skipped{left}: "
        f"{defects_text(skipped, source)}"
    )


def lenient_json_lines(text: str, path: str | Path, noun: str) -> tuple[list[Any], str | None]:
    """The documents of an NDJSON file, a line that is not JSON (the last line of a file its
    writer was killed while writing) skipped: (documents, the warning naming the skipped lines,
    or None). Refused (exit 2) unless more than half of its lines are JSON."""
    documents: list[Any] = []
    skipped: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                documents.append(parse_json(line, path, line_offset=number - 1))
            except MeasurementError as defect:
                skipped.append(str(defect))
    refuse_mostly_malformed(str(path), len(documents), skipped, "lines")
    if not skipped:
        return documents, None
    records = len(documents) + len(skipped)
    return documents, malformed_warning(str(path), skipped, records, "lines", f" with their {noun}")


def _is_binary(data: bytes) -> bool:
    head = data[:512]
    return b"\x00" in head or any(byte < 9 for byte in head)


def detect_format(data: bytes, path: str | Path) -> str:
    """The format of a measurement file, told from its first bytes (see docs/calibration.md)."""
    if not data.strip():
        raise MeasurementError(f"{path}: the file is empty")
    if _is_binary(data):
        return "otlp-proto"
    text = data.lstrip()[:4096].decode("utf-8", errors="replace")
    if text.startswith(("{", "[")):
        return _detect_json(text, path)
    header = text.splitlines()[0] if text else ""
    columns = {name.strip().strip('"').lower() for name in header.split(",")}
    if {"timestamp", "user count"} <= columns:
        return "locust-history"
    if {"name", "request count"} <= columns:
        return "locust-stats"
    if columns & {"concurrency", "users", "vus", "n"} and columns & {"throughput", "rps", "x"}:
        return "csv"
    raise MeasurementError(
        f"{path}:1:1: cannot tell the format: expected OTLP JSON traces (resourceSpans), a "
        "Prometheus query_range result, k6 --summary-export or --out json output, a Locust "
        "_stats.csv/_stats_history.csv, or a CSV with concurrency,throughput columns; "
        "force one with --input-format"
    )


def _detect_json(head: str, path: str | Path) -> str:
    for key, name in (
        ('"resourceSpans"', "otlp-json"),
        ('"resource_spans"', "otlp-json"),
        ('"batches"', "otlp-json"),
        ('"resultType"', "prometheus"),
        ('"type":"Metric"', "k6-json"),
        ('"type":"Point"', "k6-json"),
        ('"type": "Metric"', "k6-json"),
        ('"type": "Point"', "k6-json"),
        ('"http_req_duration"', "k6-summary"),
        ('"http_reqs"', "k6-summary"),
    ):
        if key in head:
            return name
    if '"status"' in head and ('"data"' in head or '"errorType"' in head):
        return "prometheus"
    if '"metrics"' in head:
        return "k6-summary"
    raise MeasurementError(
        f"{path}:1:1: JSON, but not a format capsim reads: expected OTLP traces "
        "(resourceSpans), a Prometheus query_range result (status, data.resultType) or k6 "
        "output (metrics, or type: Point lines); force one with --input-format"
    )
