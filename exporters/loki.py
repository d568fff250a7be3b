"""Loki exporter: the push API (snappy protobuf or JSON) or Loki's native OTLP endpoint.

Push mode turns each OTLP log record into a Loki entry. A short, configurable list of
resource attributes (plus ``level`` from the severity) becomes the stream labels; the body is
the line; trace and span ids, severity and every other attribute go to structured metadata
(or, with ``line_format="json"``, into a JSON line). Entries are sorted by time per stream.
Loki answers 204; 429 and 5xx are retried (honouring ``Retry-After``), other 4xx are
permanent and carry Loki's text message. OTLP mode forwards the batch unchanged to
``{endpoint}/otlp/v1/logs`` through :class:`exporters.otlp.OtlpExporter`.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import cramjam
import httpx
import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.base import ExporterBase
from exporters.http_post import error_text, post
from exporters.loki_proto import PushRequest
from exporters.otlp import USER_AGENT, OtlpExporter
from gateway.batch import Batch, Signal
from gateway.errors import (
    GatewayError,
    PermanentError,
    RetryableError,
    ThrottledError,
    parse_retry_after,
)
from gateway.redact import redact_url

LokiProtocol = Literal["push", "otlp"]
LokiFormat = Literal["protobuf", "json"]
LineFormat = Literal["text", "json"]

PUSH_PATH = "/loki/api/v1/push"
OTLP_PREFIX = "/otlp"  # OtlpExporter appends /v1/logs
MAX_LABELS = 15  # Loki's max_label_names_per_series default
MAX_LABEL_VALUE_BYTES = 2048  # Loki's max_label_value_length default
MAX_METADATA_ENTRIES = 128  # structured metadata limits (entries, bytes) per entry
MAX_METADATA_BYTES = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 256 * 1024  # Loki's max_line_size default
DEFAULT_RESOURCE_LABELS: dict[str, str] = {
    "service.name": "service_name",
    "service.namespace": "service_namespace",
    "deployment.environment.name": "deployment_environment",
    "deployment.environment": "deployment_environment",
}
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_THREAD_ENCODE_ITEMS = 1000  # encode big batches in a worker thread, off the event loop
# Escapes that Go's strconv.Unquote (Loki's selector parser) reads back to the same value.
_QUOTE = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r",
          ord("\t"): "\\t"}  # fmt: skip
_QUOTE.update({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in _QUOTE})
_LEVELS_BY_NUMBER = ("trace", "debug", "info", "warn", "error", "fatal")  # 1-4, 5-8, ... 21-24
_LEVELS_BY_TEXT = {
    "trace": "trace", "debug": "debug", "info": "info", "information": "info",
    "informational": "info", "notice": "info", "warn": "warn", "warning": "warn",
    "error": "error", "err": "error", "fatal": "fatal", "critical": "fatal", "crit": "fatal",
    "panic": "fatal", "alert": "fatal", "emerg": "fatal", "emergency": "fatal",
}  # fmt: skip

Labels = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Entry:
    """One Loki log entry: nanosecond timestamp, line and structured metadata pairs."""

    ns: int
    line: str
    metadata: list[tuple[str, str]] = field(default_factory=list)


# --- names, values and severities -----------------------------------------------------------


def label_name(key: str) -> str:
    """An attribute key as a valid Loki label / metadata name (``.`` and others become ``_``)."""
    name = _INVALID_NAME_CHARS.sub("_", key)
    return f"_{name}" if name[:1].isdigit() else name


def selector(labels: Iterable[tuple[str, str]]) -> str:
    """The ``{k="v",...}`` stream selector, values escaped as Loki's parser expects."""
    return "{" + ",".join(f'{k}="{v.translate(_QUOTE)}"' for k, v in labels) + "}"


def severity_level(number: int, text: str) -> str:
    """``trace|debug|info|warn|error|fatal`` from the severity number, else the text."""
    if 1 <= number <= 24:
        return _LEVELS_BY_NUMBER[(number - 1) // 4]
    return _LEVELS_BY_TEXT.get(text.strip().lower().rstrip("0123456789"), "unknown")


def to_python(value: AnyValue) -> Any:
    """An AnyValue as a JSON-able Python value (bytes as base64)."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: to_python(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [to_python(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None if kind is None else getattr(value, kind)


def to_text(value: AnyValue) -> str:
    """An AnyValue as text: strings as they are, bytes as base64, other kinds JSON-encoded."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return orjson.dumps(to_python(value)).decode()


def flatten(attributes: Iterable[KeyValue], out: dict[str, str], prefix: str = "") -> None:
    """Add attributes to ``out`` as ``name -> text``; nested maps join keys with ``_``. The first
    value of a name wins."""
    for kv in attributes:
        name = label_name(f"{prefix}{kv.key}")
        if not name:
            continue
        if kv.value.WhichOneof("value") == "kvlist_value":
            flatten(kv.value.kvlist_value.values, out, f"{name}_")
        elif name not in out:
            out[name] = to_text(kv.value)


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True


# --- OTLP logs -> Loki streams --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamMapping:
    """How log records become streams and entries."""

    resource_labels: Mapping[str, str] = field(default_factory=lambda: DEFAULT_RESOURCE_LABELS)
    level_label: bool = True
    line_format: LineFormat = "text"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def streams(self, request: ExportLogsServiceRequest) -> dict[Labels, list[Entry]]:
        """Entries grouped by label set, each stream sorted by timestamp."""
        now = time.time_ns()
        streams: dict[Labels, list[Entry]] = {}
        for rl in request.resource_logs:
            base, rest = self._resource_labels(rl.resource.attributes)
            for sl in rl.scope_logs:
                scope = {"scope_name": sl.scope.name, "scope_version": sl.scope.version}
                scope_attrs: dict[str, str] = {k: v for k, v in scope.items() if v}
                flatten(sl.scope.attributes, scope_attrs)
                for record in sl.log_records:
                    labels = dict(base)
                    if self.level_label:
                        labels["level"] = severity_level(
                            record.severity_number, record.severity_text
                        )
                    key = tuple(sorted(labels.items())) or (("service_name", "unknown_service"),)
                    entry = self._entry(record, scope_attrs, rest, now)
                    streams.setdefault(key, []).append(entry)
        for entries in streams.values():
            entries.sort(key=lambda e: e.ns)
        return streams

    def _resource_labels(
        self, attributes: Iterable[KeyValue]
    ) -> tuple[dict[str, str], list[KeyValue]]:
        """The labels taken from resource attributes, and the attributes left over."""
        values = {kv.key: kv.value for kv in attributes}
        labels: dict[str, str] = {}
        used: set[str] = set()
        for key, name in self.resource_labels.items():
            value = values.get(key)
            if value is None or name in labels:
                continue
            text = _truncate(to_text(value), MAX_LABEL_VALUE_BYTES)[0]
            if text:
                labels[name] = text
                used.add(key)
        return labels, [kv for kv in attributes if kv.key not in used]

    def _entry(
        self, record: LogRecord, scope: dict[str, str], resource: list[KeyValue], now: int
    ) -> Entry:
        ns = record.time_unix_nano or record.observed_time_unix_nano or now
        ids: dict[str, str] = {}
        if any(record.trace_id):
            ids["trace_id"] = record.trace_id.hex()
        if any(record.span_id):
            ids["span_id"] = record.span_id.hex()
        if record.severity_text:
            ids["severity_text"] = record.severity_text
        if record.severity_number:
            ids["severity_number"] = str(record.severity_number)
        if self.line_format == "json":
            document: dict[str, Any] = {"body": to_python(record.body), **ids}
            if record.severity_number:
                document["severity_number"] = int(record.severity_number)
            for name, attrs in (("attributes", record.attributes), ("resource", resource)):
                if attrs:
                    document[name] = {kv.key: to_python(kv.value) for kv in attrs}
            if scope:
                document["scope"] = scope
            line = orjson.dumps(document).decode()
            return Entry(ns, _truncate(line, self.max_line_bytes)[0])
        metadata = dict(ids)  # precedence: ids, record, scope, resource (first wins)
        flatten(record.attributes, metadata)
        for name, value in scope.items():
            metadata.setdefault(name, value)
        flatten(resource, metadata)
        return Entry(ns, _truncate(to_text(record.body), self.max_line_bytes)[0],
                     _limit_metadata(metadata))  # fmt: skip


def _limit_metadata(metadata: dict[str, str]) -> list[tuple[str, str]]:
    """At most Loki's default number and size of structured metadata pairs, in order."""
    pairs: list[tuple[str, str]] = []
    size = 0
    for name, value in metadata.items():
        size += len(name.encode()) + len(value.encode())
        if len(pairs) == MAX_METADATA_ENTRIES or size > MAX_METADATA_BYTES:
            break
        pairs.append((name, value))
    return pairs


# --- wire encodings -------------------------------------------------------------------------


def encode_protobuf(streams: Mapping[Labels, list[Entry]]) -> bytes:
    """A snappy (block format) compressed ``logproto.PushRequest``."""
    request = PushRequest()
    for labels, entries in streams.items():
        stream = request.streams.add(labels=selector(labels))
        for entry in entries:
            item = stream.entries.add(line=entry.line)
            item.timestamp.seconds, item.timestamp.nanos = divmod(entry.ns, 1_000_000_000)
            for name, value in entry.metadata:
                item.structuredMetadata.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def encode_json(streams: Mapping[Labels, list[Entry]]) -> bytes:
    """The JSON push body: ``values`` are ``[ns as string, line(, metadata)]``."""
    body = {
        "streams": [
            {
                "stream": dict(labels),
                "values": [
                    [str(e.ns), e.line, dict(e.metadata)] if e.metadata else [str(e.ns), e.line]
                    for e in entries
                ],
            }
            for labels, entries in streams.items()
        ]
    }
    return orjson.dumps(body)


def classify_loki_status(status: int, message: str, retry_after: str | None) -> GatewayError:
    """Loki's answers: 429 and 503 throttle, other 5xx are transient, other 4xx are final."""
    delay = parse_retry_after(retry_after)
    if status in (429, 503):
        return ThrottledError(f"Loki HTTP {status}: {message}", delay)
    if status >= 500:
        return RetryableError(f"Loki HTTP {status}: {message}", delay)
    return PermanentError(f"Loki HTTP {status}: {message}")


# --- the exporter ---------------------------------------------------------------------------


class LokiExporter(ExporterBase):
    """Pushes log batches to Loki (see the module doc)."""

    def __init__(
        self,
        endpoint: str,
        *,
        protocol: LokiProtocol = "push",
        format: LokiFormat = "protobuf",
        compression: Literal["gzip", "none"] = "none",
        mapping: StreamMapping | None = None,
        tenant_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if protocol not in ("push", "otlp") or format not in ("protobuf", "json"):
            raise ValueError(f"unsupported Loki protocol/format {protocol!r}/{format!r}")
        self.endpoint = endpoint.rstrip("/")
        self.protocol: LokiProtocol = protocol
        self.format: LokiFormat = format
        self.compression = compression
        self.mapping = mapping or StreamMapping()
        self.timeout = timeout
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if tenant_id:
            self.headers["X-Scope-OrgID"] = tenant_id
        self._http: httpx.AsyncClient | None = None
        self._otlp: OtlpExporter | None = None
        if protocol == "otlp":
            self._otlp = OtlpExporter(
                self.endpoint + OTLP_PREFIX,
                "http/protobuf",
                compression=compression,
                headers=self.headers,
                timeout=timeout,
            )

    def __repr__(self) -> str:
        return f"LokiExporter({redact_url(self.endpoint)!r}, {self.protocol!r}, {self.format!r})"

    async def start(self) -> None:
        if self._otlp is not None:
            await self._otlp.start()
        elif self._http is None:
            self._http = httpx.AsyncClient(headers=self.headers, timeout=self.timeout)

    async def shutdown(self) -> None:
        if self._otlp is not None:
            await self._otlp.shutdown()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def encode(self, batch: Batch) -> tuple[bytes, dict[str, str]]:
        """The push request body and its headers for one logs batch."""
        assert isinstance(batch.request, ExportLogsServiceRequest)
        streams = self.mapping.streams(batch.request)
        if self.format == "protobuf":
            return encode_protobuf(streams), {"Content-Type": "application/x-protobuf"}
        headers = {"Content-Type": "application/json"}
        body = encode_json(streams)
        if self.compression == "gzip":
            body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    async def push(self, batch: Batch) -> None:
        """Send one logs batch; raise a classified error when Loki did not accept it."""
        if batch.signal is not Signal.LOGS:
            raise PermanentError(f"the loki exporter takes logs only, not {batch.signal}")
        if self._otlp is not None:
            await self._otlp.push(batch)
            return
        if self._http is None:
            raise RuntimeError(f"{self!r} used before start()")
        if batch.items >= _THREAD_ENCODE_ITEMS:
            body, headers = await asyncio.to_thread(self.encode, batch)
        else:
            body, headers = self.encode(batch)
        url = self.endpoint + PUSH_PATH
        response = await post(self._http, url, "Loki", body, headers)
        if 200 <= response.status_code < 300:
            return
        raise classify_loki_status(
            response.status_code, error_text(response), response.headers.get("Retry-After")
        )
