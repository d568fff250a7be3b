"""Hostile OTLP payloads: deep nesting, bombs of tiny messages, multi-member gzip.

Each builder returns real request bytes or documents, so unit tests, end-to-end tests and the
fuzzers send exactly what an attacker would.
"""

from __future__ import annotations

import gzip
import os
from typing import Any, Literal

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from gateway.otlp.batch import Signal, count_items
from gateway.otlp.wire import encode_varint

Nesting = Literal["kvlist", "array"]
# Levels of each kind that protobuf's 100-level decoding limit leaves room for inside a span
# attribute (request, resource spans, scope spans, span, key-value, any-value = 6 levels).
MAX_SPAN_ATTRIBUTE_NESTING: dict[Nesting, int] = {"kvlist": 31, "array": 47}


def nested_value(depth: int, kind: Nesting, leaf: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OTLP/JSON AnyValue holding ``depth`` levels of ``kind`` around ``leaf``."""
    value: dict[str, Any] = leaf or {"intValue": "1"}
    for _ in range(depth):
        if kind == "kvlist":
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
        else:
            value = {"arrayValue": {"values": [{"stringValue": "s"}, value]}}
    return value


def nested_any_value(depth: int, kind: Nesting) -> AnyValue:
    """The protobuf AnyValue of :func:`nested_value` with a valid leaf."""
    root = AnyValue()
    value = root
    for _ in range(depth):
        if kind == "kvlist":
            entry = value.kvlist_value.values.add(key="k")
            value = entry.value
        else:
            value.array_value.values.add(string_value="s")
            value = value.array_value.values.add()
    value.int_value = 1
    return root


def span_json(name: str = "deep", attributes: list[dict[str, Any]] | None = None) -> dict:
    return {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": name,
        "kind": 2,
        "attributes": attributes or [],
    }


def deep_traces_json(depth: int, kind: Nesting, invalid_leaf: bool = False) -> dict[str, Any]:
    """A traces request whose one span has an attribute nested ``depth`` levels deep; with
    ``invalid_leaf`` the innermost value is ``{"intValue": "x"}`` (the finding of issue 9)."""
    leaf = {"intValue": "x"} if invalid_leaf else None
    attribute = {"key": "deep", "value": nested_value(depth, kind, leaf)}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span_json(attributes=[attribute])]}]}]}


def deep_traces_protobuf(depth: int, kind: Nesting) -> bytes:
    """The protobuf request of :func:`deep_traces_json` with a valid leaf."""
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="deep")
    )
    span.attributes.add(key="deep").value.CopyFrom(nested_any_value(depth, kind))
    return request.SerializeToString()


def deep_logs_protobuf(depth: int, kind: Nesting) -> bytes:
    """A logs request whose one record's body is nested ``depth`` levels deep."""
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add()
    record.body.CopyFrom(nested_any_value(depth, kind))
    return request.SerializeToString()


def empty_groups(count: int) -> bytes:
    """An Export*ServiceRequest of ``count`` empty resource groups (two bytes each): decoded
    whole, it takes some 30 times its size in memory."""
    return b"\x0a\x00" * count


def tiny_spans(count: int) -> bytes:
    """One resource and scope holding ``count`` minimal valid spans (ids only, ~30 bytes)."""
    spans = []
    for _ in range(count):
        span = b"\x0a\x10" + os.urandom(16) + b"\x12\x08" + os.urandom(8)
        spans.append(b"\x12" + bytes([len(span)]) + span)
    scope = b"".join(spans)
    resource = _frame(2, scope)  # ResourceSpans.scope_spans
    return _frame(1, resource)  # ExportTraceServiceRequest.resource_spans


def _frame(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def gzip_members(*parts: bytes) -> bytes:
    """Each part compressed as its own gzip member, concatenated (RFC 1952, 2.2)."""
    return b"".join(gzip.compress(part) for part in parts)


def item_count(signal: Signal, body: bytes) -> int:
    """Items in a protobuf request body."""
    return count_items(signal, signal.request_type.FromString(body))
