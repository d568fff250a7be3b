"""Loki's push wire format as the conformance server reads it, written from the published
sources and independent of the exporter: ``pkg/push/push.proto`` as a text-format descriptor,
snappy block decoding (the framed format is refused), the documented JSON shape, the label
selector grammar with Go string escapes, and the limits Loki's distributor validates. Every
problem raises :class:`Rejected` with the status and text Loki would answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import cramjam
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    timestamp_pb2,
    unknown_fields,
)
from google.protobuf.message import DecodeError, Message

_PUSH_PROTO = """
name: "tests/loki/push.proto" package: "logproto" syntax: "proto3"
dependency: "google/protobuf/timestamp.proto"
message_type { name: "PushRequest"
  field { name: "streams" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.StreamAdapter" }
  field { name: "format" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING } }
message_type { name: "StreamAdapter"
  field { name: "labels" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "entries" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.EntryAdapter" }
  field { name: "hash" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT64 } }
message_type { name: "LabelPairAdapter"
  field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING } }
message_type { name: "EntryAdapter"
  field { name: "timestamp" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".google.protobuf.Timestamp" }
  field { name: "line" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "structuredMetadata" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.LabelPairAdapter" }
  field { name: "parsed" number: 4 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".logproto.LabelPairAdapter" } }
"""


def _push_request_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    stamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(stamp)
    pool.Add(stamp)
    pool.Add(text_format.Parse(_PUSH_PROTO, descriptor_pb2.FileDescriptorProto()))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest: Any = _push_request_class()

SNAPPY_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"
MAX_LABELS = 15
MAX_LINE_BYTES = 256 * 1024
MAX_METADATA_PAIRS = 128
MAX_METADATA_BYTES = 64 * 1024
OUT_OF_ORDER_WINDOW_NS = 3600 * 10**9  # max_chunk_age (2h) / 2
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PAIR = re.compile(r'\s*([^\s=!~"]+)\s*=\s*"((?:[^"\\\n]|\\.)*)"\s*(,|\})', re.S)
_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\"])')
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", '"': '"'}  # fmt: skip


class Rejected(Exception):
    """A request Loki would refuse: HTTP ``status`` with a text ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def bad_request(message: str) -> Rejected:
    return Rejected(400, message)


def _unquote(body: str) -> str:
    """The value of a Go double-quoted string literal's body (``strconv.Unquote`` rules:
    ``\\x`` and octal escapes are bytes, the result must be UTF-8)."""
    out, pos = bytearray(), 0
    while pos < len(body):
        char = body[pos]
        if char != "\\":
            out += char.encode()
            pos += 1
            continue
        match = _ESCAPE.match(body, pos)
        if match is None:
            raise bad_request(f"couldn't parse labels: invalid escape at {body[pos : pos + 2]!r}")
        code = match[1]
        if code[0] == "x" or code[0].isdigit():
            byte = int(code[1:], 16) if code[0] == "x" else int(code, 8)
            if byte > 0xFF:
                raise bad_request(f"couldn't parse labels: octal escape \\{code} out of range")
            out.append(byte)
        elif code[0] in "uU":
            out += chr(int(code[1:], 16)).encode()
        else:
            out += _SIMPLE[code].encode()
        pos = match.end()
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise bad_request(f"label value {body!r} is not valid UTF-8") from None


def parse_selector(text: str) -> dict[str, str]:
    """``{k="v",...}`` as Loki's ``syntax.ParseLabels`` reads it (equality matchers only)."""
    stripped = text.strip()
    if not stripped.startswith("{") or not stripped.endswith("}"):
        raise bad_request(f'couldn\'t parse labels: {text!r} is not a {{k="v"}} selector')
    labels: dict[str, str] = {}
    pos, end = 1, len(stripped)
    if not stripped[1:-1].strip():
        return labels
    while pos < end:
        match = _PAIR.match(stripped, pos)
        if match is None:
            raise bad_request(f"couldn't parse labels: syntax error at offset {pos} of {text!r}")
        name, value = match[1], _unquote(match[2])
        if name in labels:
            raise bad_request(f"duplicate label name {name!r} in {text!r}")
        labels[name] = value
        pos = match.end()
        if match[3] == "}":
            break
    if pos != end:
        raise bad_request(f"couldn't parse labels: trailing text in {text!r}")
    return labels


@dataclass(frozen=True)
class LokiEntry:
    """One accepted entry; ``metadata`` keeps the pairs in the order sent."""

    ns: int
    line: str
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def meta(self) -> dict[str, str]:
        return dict(self.metadata)


@dataclass(frozen=True)
class LokiStream:
    labels: dict[str, str]
    entries: tuple[LokiEntry, ...]


def check_labels(labels: dict[str, str], shown: str) -> None:
    """Loki's label checks: 1..15 valid, non-empty, not too long."""
    if not labels:
        raise bad_request(f"error at least one label pair is required per stream: {shown}")
    if len(labels) > MAX_LABELS:
        raise bad_request(f"stream '{shown}' has {len(labels)} label names; limit {MAX_LABELS}")
    for name, value in labels.items():
        if not _NAME.fullmatch(name) or len(name) > 1024:
            raise bad_request(f"error parsing labels '{shown}': invalid label name {name!r}")
        if not value or len(value.encode()) > 2048:
            raise bad_request(f"stream '{shown}' has an empty or too long value for {name!r}")


def entry_problem(entry: LokiEntry, shown: str) -> str | None:
    """Why Loki's distributor would refuse this one entry (line length, structured metadata
    size), or None. Loki refuses such entries alone and stores the others of the push."""
    size = len(entry.line.encode())
    if size > MAX_LINE_BYTES:
        return (f"Max entry size '{MAX_LINE_BYTES}' bytes exceeded for stream '{shown}' while "
                f"adding an entry with length '{size}' bytes")  # fmt: skip
    size = sum(len(name.encode()) + len(value.encode()) for name, value in entry.metadata)
    if len(entry.metadata) > MAX_METADATA_PAIRS or size > MAX_METADATA_BYTES:
        return (f"stream '{shown}' has structured metadata too large: '{size}' bytes, limit: "
                f"'{MAX_METADATA_BYTES}' bytes")  # fmt: skip
    return None


def normalize_name(name: str) -> str:
    """A structured-metadata name as Loki 3 normalises it (Prometheus otlptranslator's label
    namer with runs of ``_`` collapsed); raises a 500 :class:`Rejected` when nothing valid is
    left, as Loki does for the whole push."""
    if not name:
        raise Rejected(500, "label name is empty")
    sanitized = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    if len(sanitized) >= 4 and sanitized.startswith("__") and sanitized.endswith("__"):
        sanitized = "__" + re.sub(r"__+", "_", sanitized[2:-2]) + "__"
    else:
        sanitized = re.sub(r"__+", "_", sanitized)
    if sanitized[0].isdigit():
        sanitized = "key_" + sanitized
    if not sanitized.strip("_"):
        raise Rejected(
            500, f'normalization for label name "{name}" resulted in invalid name "{sanitized}"'
        )
    return sanitized


def _unknown_fields(message: Message, where: str = "PushRequest") -> str | None:
    """The first unknown field (a wrong field number or wire type) anywhere in ``message``."""
    found = unknown_fields.UnknownFieldSet(message)
    if len(found):
        first = found[0]
        return f"{where}: unknown field {first.field_number} (wire type {first.wire_type})"
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items = value if descriptor.is_repeated else [value]
        for item in items:
            problem = _unknown_fields(item, f"{where}.{descriptor.name}")
            if problem:
                return problem
    return None


def decode_protobuf(body: bytes) -> tuple[list[LokiStream], list[str]]:
    """Streams from a snappy block-compressed PushRequest, and the labels strings as sent."""
    if body.startswith(SNAPPY_FRAMED_MAGIC):
        raise bad_request("snappy framed format is not supported; send the block (raw) format")
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise bad_request(f"snappy decode failed: {exc}") from None
    try:
        request = PushRequest.FromString(raw)
    except DecodeError as exc:
        raise bad_request(f"proto: cannot decode PushRequest: {exc}") from None
    problem = _unknown_fields(request)
    if problem:
        raise bad_request(f"proto: {problem}")
    streams, selectors = [], []
    for stream in request.streams:
        selectors.append(stream.labels)
        labels = parse_selector(stream.labels)
        entries = []
        for item in stream.entries:
            stamp = item.timestamp
            if stamp.seconds < 0 or not 0 <= stamp.nanos < 10**9:
                raise bad_request(f"invalid timestamp {stamp} in stream '{stream.labels}'")
            metadata = tuple((p.name, p.value) for p in item.structuredMetadata)
            entries.append(LokiEntry(stamp.seconds * 10**9 + stamp.nanos, item.line, metadata))
        streams.append(LokiStream(labels, tuple(entries)))
    return streams, selectors


def decode_json(body: bytes) -> list[LokiStream]:
    """Streams from the JSON push body; anything outside the documented shape is refused."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise bad_request(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"streams"}:
        raise bad_request('the body must be {"streams": [...]}')
    if not isinstance(document["streams"], list):
        raise bad_request('"streams" must be a list')
    streams = []
    for stream in document["streams"]:
        if not isinstance(stream, dict) or set(stream) != {"stream", "values"}:
            raise bad_request('each stream must be {"stream": {...}, "values": [...]}')
        labels, values = stream["stream"], stream["values"]
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise bad_request('"stream" must map label names to strings')
        if not isinstance(values, list):
            raise bad_request('"values" must be a list')
        entries = []
        for value in values:
            if not isinstance(value, list) or len(value) not in (2, 3):
                raise bad_request("each value must be [ts, line] or [ts, line, metadata]")
            ts, line = value[0], value[1]
            if not isinstance(ts, str) or not ts.isdigit():
                raise bad_request(f"timestamp must be a string of epoch nanoseconds, got {ts!r}")
            if not isinstance(line, str):
                raise bad_request("the log line must be a string")
            metadata = value[2] if len(value) == 3 else {}
            if not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values()
            ):
                raise bad_request("structured metadata must be a flat string to string object")
            entries.append(LokiEntry(int(ts), line, tuple(metadata.items())))
        streams.append(LokiStream(dict(labels), tuple(entries)))
    return streams


# --- Loki's OTLP endpoint -------------------------------------------------------------------

# The resource attributes Loki 3 makes stream labels by default (Loki's OTLP ingestion docs).
OTLP_LABEL_ATTRIBUTES = frozenset({
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone",
    "k8s.cluster.name", "k8s.namespace.name", "k8s.pod.name", "k8s.container.name",
    "container.name", "k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name",
    "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name",
})  # fmt: skip


def otlp_keys(request: Any) -> list[str]:
    """Every attribute key of an OTLP logs request (resource, scope, record)."""
    keys = []
    for rl in request.resource_logs:
        keys += [kv.key for kv in rl.resource.attributes]
        for sl in rl.scope_logs:
            keys += [kv.key for kv in sl.scope.attributes]
            for record in sl.log_records:
                keys += [kv.key for kv in record.attributes]
    return keys


def otlp_label_problem(resource_logs: Any) -> str | None:
    """Why Loki refuses the stream of this resource (a label value over 2048 bytes)."""
    for kv in resource_logs.resource.attributes:
        if kv.key in OTLP_LABEL_ATTRIBUTES and len(kv.value.string_value.encode()) > 2048:
            return f"label value too long for {kv.key!r}"
    return None


def otlp_record_problem(resource_logs: Any, scope_logs: Any, record: Any) -> str | None:
    """Why Loki refuses this one record: its line or its structured metadata is too big."""
    line = record.body.string_value
    if len(line.encode()) > MAX_LINE_BYTES:
        return f"Max entry size '{MAX_LINE_BYTES}' bytes exceeded"
    pairs = [kv for kv in resource_logs.resource.attributes if kv.key not in OTLP_LABEL_ATTRIBUTES]
    pairs += [*scope_logs.scope.attributes, *record.attributes]
    size = sum(len(kv.key.encode()) + kv.value.ByteSize() for kv in pairs)
    if len(pairs) > MAX_METADATA_PAIRS or size > MAX_METADATA_BYTES:
        return f"structured metadata too large: {len(pairs)} pairs, {size} bytes"
    return None
