"""How OTLP log records become Elasticsearch documents, and which data stream each goes to.

One document per log record, in request order (resource, scope, record), never dropped: the
exporter maps the ``_bulk`` answer's items back to records by position. ``mode`` picks the
layout, like the Collector's ``mapping.mode``:

``otel`` (the Collector's default, "OTel-native"): ``@timestamp`` and ``observed_timestamp`` as
the Collector writes them, epoch milliseconds with the nanoseconds as a fraction in a string
(``"1705314600000.000123"``; the Collector does not zero-pad the fraction, which Elasticsearch
reads as a decimal, so a remainder under 100 µs would come out wrong: padded here);
``data_stream`` {type, dataset, namespace}; ``severity_text``, ``severity_number``,
``trace_id`` / ``span_id`` (lowercase hex, left out when empty or all zero),
``attributes``, ``dropped_attributes_count``, ``event_name`` (the record's, else a string
``event.name`` attribute), ``resource`` {schema_url, attributes, dropped_attributes_count},
``scope`` {schema_url, name, version, attributes, dropped_attributes_count} and ``body``: a
string (or any other scalar, as pdata's ``AsString``) as ``body.text``, a map as
``body.structured``, an array as ``body.structured`` when every element is a map, else wrapped
as ``{"value": [...]}`` (Elasticsearch's ``flattened`` field takes objects only). Zero counts,
empty strings and an empty body are left out. The record's ``flags`` are not written (neither
of the Collector's modes does).

``ecs`` (Elastic Common Schema, see :mod:`exporters.elasticsearch.ecs`): ``@timestamp`` and
``event.created`` (the observed time) as RFC 3339 with nanoseconds, as the Collector's ECS mode
writes dates; ``message`` from the body (a string as it is; other bodies as text, maps and
arrays as compact JSON, where the Collector drops them); ``log.level`` from ``severity_text``
or, when that is empty, the OTel short name of ``severity_number`` (``INFO``, ``WARN2``...);
``event.severity``; ``event.action`` from ``event_name``; ``trace.id``, ``span.id``;
``data_stream.*``; resource, scope and record attributes renamed to ECS and nested at the dots.

Timestamps: ``@timestamp`` is the record's time, else its observed time, else (both 0) the time
:meth:`DocumentMapping.documents` ran. An observed time of 0 is left out.

Routing: ``data_stream.dataset`` / ``data_stream.namespace`` attributes of the record, else of
its scope, else of its resource, else the configured defaults; the data stream is
``logs-<dataset>-<namespace>``. Values are sanitised by :func:`data_stream_part`; a value empty
after that counts as absent. In ``otel`` mode the dataset gets the ``.otel`` suffix (after
truncating to 95 bytes), matching Elasticsearch's built-in ``logs-*.otel-*`` template. The
``data_stream.*`` attributes are consumed by routing, not copied (the Collector moves them).
The Collector's receiver-name routing (``.../receiver/<x>receiver`` scope names) is not done.

Values: bytes as base64 (as OTLP/JSON; the Collector's otel mode writes hex, its ECS mode drops
them); NaN and ±Inf as ``null`` (JSON has none; a string would make a ``double`` field refuse the
whole document; the Collector writes null too); an empty value as ``null`` (otel) or nothing
(ecs); maps and arrays nested deeper than :data:`MAX_DEPTH` as a short text (protobuf's own
limit of 100 nested messages keeps received data well below). Keys: Elasticsearch refuses a field
name with an empty or blank dot-separated part (``""``, ``"."``, ``"a..b"``, ``" "``), so such
parts become ``_`` (:func:`field_name`), in both modes; a key repeated in one list: the last
wins (the Collector's ``Dedup``).

Sources: https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/exporter/elasticsearchexporter
(README, DOCUMENT_STRUCTURE.md, testdata/golden/{otel,ecs}_logs.json,
internal/serializer/otelserializer/{logs,common}.go, internal/serializer/map.go,
internal/datastream/router.go, internal/objmodel/objmodel.go, model.go and
internal/encoder/{ecs/attributes,log/ecs}.go: the ECS tables);
https://www.elastic.co/guide/en/ecs/current/ecs-data_stream.html (dataset/namespace rules);
https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html (log.level, error.*,
event.*, labels, agent.*, host.*); https://opentelemetry.io/docs/specs/otel/logs/data-model/
(severity short names); Elasticsearch's EpochTime.java (epoch_millis fractions) and
DocumentParser (field-name checks); https://github.com/elastic/elasticsearch/pull/138287
(deployment.environment.name -> service.environment);
https://opentelemetry.io/docs/specs/semconv/registry/attributes/otel/ (otel.scope.*).
"""

from __future__ import annotations

import base64
import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.elasticsearch import ecs
from exporters.loki.mapping import to_text as as_string  # pdata's AsString

MappingMode = Literal["otel", "ecs"]

DEFAULT_DATASET = "generic"
DEFAULT_NAMESPACE = "default"
OTEL_SUFFIX = ".otel"
MAX_PART_BYTES = 100  # dataset / namespace (ECS data_stream fields)
MAX_DEPTH = 64  # nested maps / arrays written as values; deeper ones become a short text
DATASET, NAMESPACE, TYPE = "data_stream.dataset", "data_stream.namespace", "data_stream.type"
# Not allowed in a data stream name part: \ / * ? " < > | , # : - space (ECS data_stream
# reference, Collector router), nor any other whitespace or control character.
_FORBIDDEN = re.compile(r'[\\/*?"<>|,#:\-\s\x00-\x1f\x7f]')
_BLANK_PART = re.compile(r"(?:^|\.)\s*(?:\.|$)")
_SHORT_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


@dataclass(frozen=True, slots=True)
class Document:
    """One log record as an Elasticsearch document, and the data stream it goes to."""

    index: str  # the data stream, e.g. "logs-generic.otel-default" / "logs-generic-default"
    source: bytes  # the JSON document, compact


def data_stream_part(value: str, max_bytes: int = MAX_PART_BYTES) -> str:
    """``value`` made a valid dataset or namespace: lowercase, each forbidden character
    (``\\ / * ? " < > | , # : -``, whitespace, control) replaced by ``_``, cut to
    ``max_bytes`` UTF-8 bytes on a character boundary. May return ``""``."""
    text = _FORBIDDEN.sub("_", value.lower())
    if len(text) * 4 > max_bytes and len(encoded := text.encode()) > max_bytes:
        text = encoded[:max_bytes].decode("utf-8", "ignore")
    return text


def field_name(key: str) -> str:
    """``key`` as a field name Elasticsearch accepts: each empty or blank dot-separated part
    becomes ``_`` (``""`` -> ``_``, ``a..b`` -> ``a._.b``); other keys are unchanged."""
    return _field_name(key) if len(key) <= 256 else _fix_name(key)


def _fix_name(key: str) -> str:
    if _BLANK_PART.search(key) is None:
        return key
    return ".".join(part if part.strip() else "_" for part in key.split("."))


_field_name = functools.lru_cache(maxsize=4096)(_fix_name)


def value(v: AnyValue, depth: int = 0) -> Any:
    """An AnyValue as a JSON-able value (see the module doc for bytes, NaN, keys, depth)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "kvlist_value":
        if depth >= MAX_DEPTH:
            return f"<map nested deeper than {MAX_DEPTH} levels>"
        return {field_name(kv.key): value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    if kind == "array_value":
        if depth >= MAX_DEPTH:
            return f"<array nested deeper than {MAX_DEPTH} levels>"
        return [value(item, depth + 1) for item in v.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return None if kind is None else getattr(v, kind)


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """Attributes as ``field name -> value`` (a repeated key: the last wins)."""
    return {field_name(kv.key): value(kv.value) for kv in kvs}


def text(v: AnyValue) -> str:
    """An AnyValue as text: scalars as pdata's ``AsString``, maps and arrays as compact JSON."""
    if v.WhichOneof("value") in ("kvlist_value", "array_value"):
        return orjson.dumps(value(v)).decode()
    return as_string(v)


def epoch_millis(ns: int) -> str:
    """Nanoseconds since the epoch as ``"<ms>.<6 digits>"`` (otel mode's dates)."""
    return f"{ns // 1_000_000}.{ns % 1_000_000:06d}"


@functools.lru_cache(maxsize=1024)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as ``2024-03-12T20:00:41.123456789Z`` (ecs mode's dates)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f"{_second(seconds)}.{nanos:09d}Z"


def level(number: int, severity_text: str) -> str:
    """ECS ``log.level``: the severity text, else the OTel short name of the number."""
    if severity_text or not 1 <= number <= 24:
        return severity_text
    name, step = _SHORT_NAMES[(number - 1) // 4], (number - 1) % 4 + 1
    return name if step == 1 else f"{name}{step}"


def _hex_id(raw: bytes) -> str | None:
    return raw.hex() if raw.strip(b"\x00") else None


@dataclass(slots=True)
class _Group:
    """A resource or scope, converted once for all its records."""

    dataset: str  # sanitised routing values from its attributes; "" when absent
    namespace: str
    otel: dict[str, Any]  # otel mode: the "resource" / "scope" object
    pairs: ecs.Pairs  # ecs mode: its fields


@dataclass(frozen=True, slots=True)
class DocumentMapping:
    """How log records become documents: ``mode`` and the default data stream parts."""

    mode: MappingMode = "otel"
    dataset: str = DEFAULT_DATASET  # default dataset when no data_stream.dataset attribute
    namespace: str = DEFAULT_NAMESPACE  # default namespace

    def documents(self, request: ExportLogsServiceRequest) -> list[Document]:
        """One document per log record, in request order (resource, scope, record)."""
        now = time.time_ns()
        otel = self.mode == "otel"
        default_ds = self._dataset(self.dataset) or self._dataset(DEFAULT_DATASET)
        default_ns = data_stream_part(self.namespace) or DEFAULT_NAMESPACE
        indices: dict[tuple[str, str], str] = {}
        out: list[Document] = []
        for rl in request.resource_logs:
            res = rl.resource
            resource = self._group(res.attributes, {"schema_url": rl.schema_url}, otel, None)
            if res.dropped_attributes_count:
                resource.otel["dropped_attributes_count"] = res.dropped_attributes_count
            for sl in rl.scope_logs:
                sc = sl.scope
                head = {"schema_url": sl.schema_url, "name": sc.name, "version": sc.version}
                scope = self._group(sc.attributes, head, otel, (sc.name, sc.version))
                if sc.dropped_attributes_count:
                    scope.otel["dropped_attributes_count"] = sc.dropped_attributes_count
                shared = None if otel else ecs.template(resource.pairs, scope.pairs)
                ds = scope.dataset or resource.dataset or default_ds
                ns = scope.namespace or resource.namespace or default_ns
                for record in sl.log_records:
                    attrs = attributes(record.attributes)
                    r_ds, r_ns = self._routing(attrs)
                    stream = (r_ds or ds, r_ns or ns)
                    index = indices.get(stream)
                    if index is None:
                        index = indices[stream] = f"logs-{stream[0]}-{stream[1]}"
                    if otel:
                        doc = _otel(record, attrs, resource, scope, stream, now)
                    else:
                        assert shared is not None
                        doc = _ecs(record, attrs, shared, stream, now)
                    out.append(Document(index, orjson.dumps(doc)))
        return out

    def _dataset(self, raw: str) -> str:
        if self.mode != "otel":
            return data_stream_part(raw)
        part = data_stream_part(raw, MAX_PART_BYTES - len(OTEL_SUFFIX))
        return part + OTEL_SUFFIX if part else ""

    def _routing(self, attrs: dict[str, Any]) -> tuple[str, str]:
        """Remove the ``data_stream.*`` attributes; the sanitised dataset and namespace."""
        if DATASET not in attrs and NAMESPACE not in attrs and TYPE not in attrs:
            return "", ""
        attrs.pop(TYPE, None)  # always "logs"
        dataset, namespace = attrs.pop(DATASET, None), attrs.pop(NAMESPACE, None)
        return (
            "" if dataset is None else self._dataset(_as_text(dataset)),
            "" if namespace is None else data_stream_part(_as_text(namespace)),
        )

    def _group(
        self,
        kvs: Iterable[KeyValue],
        head: dict[str, Any],
        otel: bool,
        scope: tuple[str, str] | None,
    ) -> _Group:
        """A resource (``scope`` None) or a scope (its name and version)."""
        attrs = attributes(kvs)
        dataset, namespace = self._routing(attrs)
        if otel:
            block = {k: v for k, v in head.items() if v}
            if attrs:
                block["attributes"] = attrs
            return _Group(dataset, namespace, block, [])
        pairs = ecs.resource_pairs(attrs) if scope is None else ecs.scope_pairs(*scope, attrs)
        return _Group(dataset, namespace, {}, pairs)


def _as_text(v: Any) -> str:
    return v if type(v) is str else orjson.dumps(v).decode()


def _otel(
    record: LogRecord,
    attrs: dict[str, Any],
    resource: _Group,
    scope: _Group,
    stream: tuple[str, str],
    now: int,
) -> dict[str, Any]:
    observed = record.observed_time_unix_nano
    doc: dict[str, Any] = {"@timestamp": epoch_millis(record.time_unix_nano or observed or now)}
    if observed:
        doc["observed_timestamp"] = epoch_millis(observed)
    doc["data_stream"] = {"type": "logs", "dataset": stream[0], "namespace": stream[1]}
    if record.severity_text:
        doc["severity_text"] = record.severity_text
    if record.severity_number:
        doc["severity_number"] = int(record.severity_number)
    if (trace_id := _hex_id(record.trace_id)) is not None:
        doc["trace_id"] = trace_id
    if (span_id := _hex_id(record.span_id)) is not None:
        doc["span_id"] = span_id
    if attrs:
        doc["attributes"] = attrs
    if record.dropped_attributes_count:
        doc["dropped_attributes_count"] = record.dropped_attributes_count
    event_name = record.event_name or attrs.get("event.name")
    if event_name and type(event_name) is str:
        doc["event_name"] = event_name
    doc["resource"] = resource.otel
    doc["scope"] = scope.otel
    body = record.body
    kind = body.WhichOneof("value")
    if kind == "string_value":
        doc["body"] = {"text": body.string_value}
    elif kind == "kvlist_value":
        doc["body"] = {"structured": value(body)}
    elif kind == "array_value":
        items = value(body)
        structured = items if all(type(i) is dict for i in items) else {"value": items}
        doc["body"] = {"structured": structured}
    elif kind is not None:
        doc["body"] = {"text": as_string(body)}
    return doc


def _ecs(
    record: LogRecord,
    attrs: dict[str, Any],
    shared: ecs.Template,
    stream: tuple[str, str],
    now: int,
) -> dict[str, Any]:
    observed = record.observed_time_unix_nano
    fields: dict[str, Any] = {
        "@timestamp": rfc3339(record.time_unix_nano or observed or now),
        "data_stream.type": "logs",
        "data_stream.dataset": stream[0],
        "data_stream.namespace": stream[1],
    }
    if record.body.WhichOneof("value") is not None:
        fields["message"] = text(record.body)
    if log_level := level(record.severity_number, record.severity_text):
        fields["log.level"] = log_level
    if record.severity_number:
        fields["event.severity"] = int(record.severity_number)
    if record.event_name:
        fields["event.action"] = record.event_name
    if observed:
        fields["event.created"] = rfc3339(observed)
    if (trace_id := _hex_id(record.trace_id)) is not None:
        fields["trace.id"] = trace_id
    if (span_id := _hex_id(record.span_id)) is not None:
        fields["span.id"] = span_id
    return ecs.document(fields, ecs.record_pairs(attrs), shared)
