"""OTLP log records and spans as rows of the telemetry store (the writer's per-item work).

The per-item Python work is kept to a handful of field reads and one protobuf encoding (done
in C by upb): attributes are not converted on the way in, except the values of the
searchable attributes, which the full-text index needs as text.

Times: a log record without a time takes its observed time, else the receive time; a span
without a start takes the receive time. A time more than :data:`MAX_FUTURE_NS` after the
receive time (a client clock gone wrong) is replaced by the receive time, so such records
neither sort above everything else nor escape retention by age (a span's end is cut to that
limit). A span's duration is ``end - start``, 0 when the end is missing or before the start
or the start was replaced. (The protobuf blobs keep the times as they were sent.)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.otlp.builders import service_name
from gateway.otlp.values import to_python, to_text

MAX_FUTURE_NS = 3600 * 1_000_000_000
ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)
# Severity numbers of the OTel log data model for records that only have a severity text.
SEVERITY_BY_TEXT = {
    "trace": 1, "debug": 5, "info": 9, "information": 9, "informational": 9, "notice": 10,
    "warn": 13, "warning": 13, "error": 17, "err": 17, "critical": 21, "crit": 21,
    "fatal": 21, "panic": 21, "alert": 22, "emerg": 23, "emergency": 23,
}  # fmt: skip

# (service, resource encoding, scope encoding) -> id of the telemetry_sources row
SourceId = Callable[[str, bytes, bytes], int]


@dataclass(slots=True)
class LogRows:
    """Rows of ``telemetry_logs`` and the matching ``telemetry_logs_fts`` rows, in order."""

    logs: list[tuple[Any, ...]] = field(default_factory=list)
    texts: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class SpanRows:
    """Rows of ``telemetry_spans``; ``skipped``: spans without a valid trace or span id."""

    spans: list[tuple[Any, ...]] = field(default_factory=list)
    skipped: int = 0


def source_key(resource: bytes, scope: bytes) -> bytes:
    """The ``telemetry_sources.key`` of a (resource, scope) pair of encodings."""
    digest = hashlib.blake2b(len(resource).to_bytes(8, "little"), digest_size=16)
    digest.update(resource)
    digest.update(scope)
    return digest.digest()


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP attributes as a dict (a repeated key keeps its last value)."""
    return {kv.key: to_python(kv.value) for kv in attributes}


def _trace_id(value: bytes) -> bytes | None:
    return value if len(value) == 16 and value != ZERO_TRACE_ID else None


def _span_id(value: bytes) -> bytes | None:
    return value if len(value) == 8 and value != ZERO_SPAN_ID else None


class SearchText:
    """The text the full-text index gets from a record's searchable attributes: their values
    (strings as they are, others as JSON), space separated, in the record's order.

    A record's attributes are not walked in Python (a fraction of a microsecond each):
    one regular expression finds the searchable keys in the record's encoding, in C, and a
    value that is a plain string is read right after its key. Anything else (a value that
    is not a string, bytes that only look like a key) takes the walk. A searchable key
    nested in a map-valued attribute may be found this way too.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = frozenset(keys)
        # A KeyValue's key field: tag 1 (length-delimited, 0x0A), the length, the UTF-8 bytes;
        # the common first byte outside the alternatives lets the scan skip ahead.
        names = sorted(_varint(len(raw)) + raw for raw in (key.encode() for key in self.keys))
        alternatives = b"|".join(re.escape(name) for name in names)
        self._pattern = re.compile(b"\n(?:" + alternatives + b")") if names else None

    def __call__(self, record: LogRecord, encoded: bytes) -> str:
        """The search text of ``record``, whose encoding is ``encoded``."""
        if self._pattern is None:
            return ""
        parts = []
        for match in self._pattern.finditer(encoded):
            value = _string_after_key(encoded, match.end())
            if value is None:
                return self.walk(record)
            parts.append(value)
        return " ".join(parts)

    def walk(self, record: LogRecord) -> str:
        """The search text of ``record``, the slow way: by its attributes."""
        return " ".join([to_text(kv.value) for kv in record.attributes if kv.key in self.keys])


def _string_after_key(buffer: bytes, position: int) -> str | None:
    """The string at ``position`` when it is a KeyValue's ``value`` (field 2) holding only a
    ``string_value`` (field 1), else None."""
    if position >= len(buffer) or buffer[position] != 0x12:
        return None
    size, position = _read_varint(buffer, position + 1)
    end = position + size
    if size == 0 or end > len(buffer) or buffer[position] != 0x0A:
        return None
    length, start = _read_varint(buffer, position + 1)
    if start + length != end:
        return None
    return buffer[start:end].decode("utf-8", "replace")


def _read_varint(buffer: bytes, position: int) -> tuple[int, int]:
    """A varint at ``position`` and the position after it (a truncated one reads as huge)."""
    value = shift = 0
    while position < len(buffer):
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    return 1 << 62, position


def _varint(number: int) -> bytes:
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def log_rows(
    request: ExportLogsServiceRequest,
    *,
    first_id: int,
    now_ns: int,
    search: SearchText,
    source_id: SourceId,
) -> LogRows:
    """The rows of every log record of ``request``, ids from ``first_id`` on."""
    rows = LogRows()
    logs, texts = rows.logs, rows.texts
    latest = now_ns + MAX_FUTURE_NS
    next_id = first_id
    stripped = LogRecord()
    for group in request.resource_logs:
        service = service_name(group.resource)
        resource = group.resource.SerializeToString()
        for scope_logs in group.scope_logs:
            source = source_id(service, resource, scope_logs.scope.SerializeToString())
            for record in scope_logs.log_records:
                observed = record.observed_time_unix_nano
                if observed > latest:
                    observed = now_ns
                time = record.time_unix_nano or observed or now_ns
                if time > latest:
                    time = now_ns
                severity = record.severity_number or SEVERITY_BY_TEXT.get(
                    record.severity_text.strip().lower(), 0
                )
                stripped.CopyFrom(record)
                stripped.ClearField("body")
                stripped.ClearField("trace_id")
                stripped.ClearField("span_id")
                encoded = stripped.SerializeToString()
                body = record.body
                text = body.string_value if body.HasField("string_value") else to_text(body)
                logs.append(
                    (
                        next_id, time, observed, source, service, severity,
                        record.severity_text, _trace_id(record.trace_id),
                        _span_id(record.span_id), encoded,
                    )
                )  # fmt: skip
                texts.append((next_id, text, search(record, encoded)))
                next_id += 1
    return rows


def span_rows(
    request: ExportTraceServiceRequest, *, first_id: int, now_ns: int, source_id: SourceId
) -> SpanRows:
    """The rows of every span of ``request`` with valid ids, ids from ``first_id`` on."""
    rows = SpanRows()
    spans = rows.spans
    latest = now_ns + MAX_FUTURE_NS
    next_id = first_id
    for group in request.resource_spans:
        service = service_name(group.resource)
        resource = group.resource.SerializeToString()
        for scope_spans in group.scope_spans:
            source = source_id(service, resource, scope_spans.scope.SerializeToString())
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                if _trace_id(trace_id) is None or _span_id(span_id) is None:
                    rows.skipped += 1
                    continue
                start = span.start_time_unix_nano
                if start == 0 or start > latest:
                    start, duration = now_ns, 0
                else:
                    duration = min(span.end_time_unix_nano, latest) - start
                spans.append(
                    (
                        next_id, trace_id, span_id, _span_id(span.parent_span_id), source,
                        service, span.name, start, duration if duration > 0 else 0,
                        span.status.code, span.SerializeToString(),
                    )
                )  # fmt: skip
                next_id += 1
    return rows
