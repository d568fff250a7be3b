"""Splicing re-encoded resources into received OTLP bytes (gateway.otlp.wire)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.otlp.batch import Batch, Signal
from gateway.otlp.wire import WireError, encode_varint, fields, replace_resources
from gateway.processors.resource import AttributeAction, ResourceProcessor
from tests.factories import attr, logs_request, traces_request

ACTIONS = [
    AttributeAction("deployment.environment.name", "upsert", "prod"),
    AttributeAction("service.name", "upsert", "renamed"),
    AttributeAction("team", "delete"),
]


def three_resources() -> ExportTraceServiceRequest:
    request = traces_request(3, service="a")
    request.resource_spans.extend(traces_request(2, service="b").resource_spans)
    bare = request.resource_spans.add()  # no resource at all, one scope with one span
    bare.scope_spans.add().spans.extend(traces_request(1).resource_spans[0].scope_spans[0].spans)
    request.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    request.resource_spans[1].resource.attributes.append(attr("team", "core"))
    return request


@pytest.mark.parametrize("signal", [Signal.TRACES, Signal.LOGS])
def test_spliced_bytes_decode_to_the_processed_request(signal: Signal) -> None:
    request = three_resources() if signal is Signal.TRACES else logs_request(3)
    received = request.SerializeToString()
    batch = Batch(signal, type(request).FromString(received), 6, received)
    ResourceProcessor("resource/enrich", ACTIONS).process(batch)
    assert batch.encoded is not None and batch.encoded != received
    assert type(request).FromString(batch.encoded) == batch.request
    assert batch.encoded == batch.request.SerializeToString()  # same field order here


def test_a_resource_left_absent_stays_absent() -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().scope.name = "s"
    received = request.SerializeToString()
    spliced = ExportTraceServiceRequest.FromString(replace_resources(received, [b""]))
    assert not spliced.resource_spans[0].HasField("resource")
    assert spliced == request


def test_unknown_fields_are_kept_byte_for_byte() -> None:
    request = traces_request(1)
    unknown = encode_varint(9 << 3 | 2) + encode_varint(3) + b"xyz"  # field 9, not in OTLP
    received = request.SerializeToString() + unknown
    out = replace_resources(received, [request.resource_spans[0].resource.SerializeToString()])
    assert out.endswith(unknown)


def test_malformed_or_mismatched_input_is_a_wire_error() -> None:
    good = traces_request(1).SerializeToString()
    with pytest.raises(WireError):
        list(fields(good[:-3]))  # the last field runs past the end
    with pytest.raises(WireError):
        replace_resources(good, [b"", b""])  # one group, two resources
    with pytest.raises(WireError):
        list(fields(b"\x0b\x00"))  # wire type 3 (group start) is not read


def test_processor_falls_back_to_re_encoding_when_the_bytes_are_not_readable() -> None:
    request = traces_request(2)
    batch = Batch(Signal.TRACES, request, 2, b"\x0b\x00")  # bytes this module cannot walk
    ResourceProcessor("resource", ACTIONS).process(batch)
    assert batch.encoded is None
    assert ExportTraceServiceRequest.FromString(batch.serialized()) == batch.request
