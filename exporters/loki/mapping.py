"""How OTLP log records become Loki streams and entries (the push API's data model).

A short, configurable list of resource attributes (plus ``level`` from the severity) becomes
the stream labels; the body is the line; trace and span ids, severity and every other
attribute go to structured metadata (or, with ``line_format="json"``, into a JSON line).

Names are normalised exactly as Loki normalises structured-metadata names (Prometheus'
``otlptranslator`` label namer, which Loki 3 applies on push): characters outside
``[a-zA-Z0-9_]`` become ``_``, runs of ``_`` collapse to one (a ``__name__``-style reserved
name keeps its double affixes) and a leading digit gets ``key_``. A name that normalises to
nothing but underscores (``.``, ``_``, ``-``, ``日本``) makes real Loki refuse the whole push
with a 500, so such attributes are dropped here and counted. Everything the mapping had to
change to fit Loki's default limits (truncated lines and label values, metadata over 128
pairs / 64 KiB) is counted too, in ``adjusted`` (reason -> items).
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.otlp.values import to_python

LineFormat = Literal["text", "json"]
Labels = tuple[tuple[str, str], ...]
Adjustments = Counter[str]  # reason -> items changed to fit what Loki takes

MAX_LABELS = 15  # Loki's max_label_names_per_series default
MAX_LABEL_VALUE_BYTES = 2048  # Loki's max_label_value_length default
MAX_METADATA_ENTRIES = 128  # structured metadata limits (entries, bytes) per entry
MAX_METADATA_BYTES = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 256 * 1024  # Loki's max_line_size default
# The resource attributes Loki 3 makes stream labels in its own OTLP ingestion (Loki docs,
# "Ingesting logs to Loki using OpenTelemetry": default_resource_attributes_as_index_labels).
LOKI_OTLP_LABELS = (
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone",
    "k8s.cluster.name", "k8s.namespace.name", "k8s.pod.name", "k8s.container.name",
    "container.name", "k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name",
    "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name",
)  # fmt: skip
UNKNOWN_SERVICE = "unknown_service"  # Loki's service_name when the resource has none
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
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


@dataclass(slots=True)
class Entry:
    """One Loki log entry: nanosecond timestamp, line and structured metadata pairs."""

    ns: int
    line: str
    metadata: list[tuple[str, str]] = field(default_factory=list)


# --- names, values and severities -----------------------------------------------------------


def label_name(key: str) -> str:
    """An attribute key as Loki normalises a label / metadata name (see the module doc); ``""``
    when nothing valid is left (Loki would refuse the push)."""
    name = _INVALID_NAME_CHARS.sub("_", key)
    if len(name) >= 4 and name.startswith("__") and name.endswith("__"):
        name = "__" + _UNDERSCORES.sub("_", name[2:-2]) + "__"
    else:
        name = _UNDERSCORES.sub("_", name)
    if name[:1].isdigit():
        name = "key_" + name
    return "" if name.strip("_") == "" else name


# Loki's own label names for them: ``service.name`` -> ``service_name``...
DEFAULT_RESOURCE_LABELS: dict[str, str] = {key: label_name(key) for key in LOKI_OTLP_LABELS}


def selector(labels: Iterable[tuple[str, str]]) -> str:
    """The ``{k="v",...}`` stream selector, values escaped as Loki's parser expects."""
    return "{" + ",".join(f'{k}="{v.translate(_QUOTE)}"' for k, v in labels) + "}"


def severity_level(number: int, text: str) -> str:
    """``trace|debug|info|warn|error|fatal`` from the severity number, else the text."""
    if 1 <= number <= 24:
        return _LEVELS_BY_NUMBER[(number - 1) // 4]
    return _LEVELS_BY_TEXT.get(text.strip().lower().rstrip("0123456789"), "unknown")


def to_text(value: AnyValue) -> str:
    """An AnyValue as text, as Loki's OTLP ingestion writes it (pdata's ``AsString``): strings
    as they are, doubles in Go's shortest plain form (``7``, ``0.25``), bytes as base64, other
    kinds JSON-encoded."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "double_value":
        return go_float(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return orjson.dumps(to_python(value)).decode()


def go_float(number: float) -> str:
    """``number`` as Go's ``strconv.FormatFloat(number, 'f', -1, 64)``: shortest digits that
    read back the same, never an exponent, no ``.0`` on integers."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def flatten(
    attributes: Iterable[KeyValue],
    out: dict[str, str],
    prefix: str = "",
    adjusted: Adjustments | None = None,
) -> None:
    """Add attributes to ``out`` as ``name -> text``; nested maps join keys with ``_``. The first
    value of a name wins; a key with no valid name is dropped (counted as ``name_dropped``)."""
    for kv in attributes:
        name = label_name(f"{prefix}{kv.key}")
        if not name:
            if adjusted is not None:
                adjusted["name_dropped"] += 1
            continue
        if kv.value.WhichOneof("value") == "kvlist_value":
            flatten(kv.value.kvlist_value.values, out, f"{name}_", adjusted)
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
    level_label: bool = False
    line_format: LineFormat = "text"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def streams(
        self, request: ExportLogsServiceRequest, adjusted: Adjustments | None = None
    ) -> dict[Labels, list[Entry]]:
        """Entries grouped by label set, each stream sorted by timestamp; what had to change to
        fit Loki is counted in ``adjusted``."""
        adjusted = Counter() if adjusted is None else adjusted
        now = time.time_ns()
        streams: dict[Labels, list[Entry]] = {}
        for rl in request.resource_logs:
            base, rest = self._resource_labels(rl.resource.attributes, adjusted)
            for sl in rl.scope_logs:
                scope = {"scope_name": sl.scope.name, "scope_version": sl.scope.version}
                scope_attrs: dict[str, str] = {k: v for k, v in scope.items() if v}
                flatten(sl.scope.attributes, scope_attrs, adjusted=adjusted)
                for record in sl.log_records:
                    labels = dict(base)
                    if self.level_label:
                        labels["level"] = severity_level(
                            record.severity_number, record.severity_text
                        )
                    key = tuple(sorted(labels.items())) or (("service_name", UNKNOWN_SERVICE),)
                    entry = self._entry(record, scope_attrs, rest, now, adjusted)
                    streams.setdefault(key, []).append(entry)
        for entries in streams.values():
            entries.sort(key=lambda e: e.ns)
        return streams

    def _resource_labels(
        self, attributes: Iterable[KeyValue], adjusted: Adjustments
    ) -> tuple[dict[str, str], list[KeyValue]]:
        """The labels taken from resource attributes (at most Loki's 15 with ``level``, in the
        order configured; the others stay metadata), and the attributes left over. Like Loki,
        a resource without ``service.name`` gets ``service_name="unknown_service"``."""
        values = {kv.key: kv.value for kv in attributes}
        labels: dict[str, str] = {}
        used: set[str] = set()
        room = MAX_LABELS - self.level_label
        for key, name in self.resource_labels.items():
            value = values.get(key)
            if value is None or name in labels:
                continue
            if len(labels) == room:
                adjusted["labels_over_limit"] += 1
                break
            text, cut = _truncate(to_text(value), MAX_LABEL_VALUE_BYTES)
            adjusted["label_value_truncated"] += cut
            if text:
                labels[name] = text
                used.add(key)
        service = self.resource_labels.get("service.name")
        if service is not None and "service.name" not in used and len(labels) < room:
            labels.setdefault(service, UNKNOWN_SERVICE)
        return labels, [kv for kv in attributes if kv.key not in used]

    def _entry(
        self,
        record: LogRecord,
        scope: dict[str, str],
        resource: list[KeyValue],
        now: int,
        adjusted: Adjustments,
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
            line, cut = _truncate(orjson.dumps(document).decode(), self.max_line_bytes)
            adjusted["line_truncated"] += cut
            return Entry(ns, line)
        metadata = dict(ids)  # precedence: ids, record, scope, resource (first wins)
        flatten(record.attributes, metadata, adjusted=adjusted)
        for name, value in scope.items():
            metadata.setdefault(name, value)
        flatten(resource, metadata, adjusted=adjusted)
        line, cut = _truncate(to_text(record.body), self.max_line_bytes)
        adjusted["line_truncated"] += cut
        pairs = _limit_metadata(metadata)
        adjusted["metadata_truncated"] += len(pairs) < len(metadata)
        return Entry(ns, line, pairs)


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
