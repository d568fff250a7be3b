"""The OTLP/JSON decoder against protobuf's own JSON parser, and its error paths."""

from __future__ import annotations

import math

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.batch import Signal
from gateway.otlp_json import decode_json, encode_json
from tests.support.otlp_samples import sample_request


@pytest.mark.parametrize("signal", list(Signal))
def test_same_messages_as_protobufs_json_parser(signal: Signal) -> None:
    """Every field of the sample requests (all metric kinds, links, events, exemplars) comes
    out as protobuf's ParseDict makes it from the same document (ids given as base64 there)."""
    request = sample_request(signal, 5)
    canonical = json_format.MessageToDict(request)  # base64 ids, int64 as strings, enum names
    reference = signal.request_type()
    json_format.ParseDict(canonical, reference)
    assert reference == request
    ours = decode_json(signal, encode_json(request))  # hex ids, integer enums
    assert ours == request


def test_numbers_strings_enum_names_special_floats_and_base64() -> None:
    doc = {
        "resource_spans": [{  # snake_case keys are accepted too
            "scopeSpans": [{"spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
                "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": 1700000000000000001,
                "endTimeUnixNano": "1700000000000000002", "status": {"code": 2},
                "droppedAttributesCount": 1.0, "unknownField": {"nested": [1, 2]},
                "parentSpanId": None,
                "attributes": [
                    {"key": "ratio", "value": {"doubleValue": "NaN"}},
                    {"key": "big", "value": {"doubleValue": "-Infinity"}},
                    {"key": "raw", "value": {"bytesValue": "-_8"}},  # URL-safe, unpadded
                    {"key": "list", "value": {"arrayValue": {"values": [{"intValue": "7"}]}}},
                ],
            }]}],
        }],
    }  # fmt: skip
    request = decode_json(Signal.TRACES, orjson.dumps(doc))
    assert isinstance(request, ExportTraceServiceRequest)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.kind == 3 and span.status.code == 2 and span.dropped_attributes_count == 1
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (
        1700000000000000001,
        1700000000000000002,
    )
    values = {kv.key: kv.value for kv in span.attributes}
    assert math.isnan(values["ratio"].double_value)
    assert values["big"].double_value == -math.inf
    assert values["raw"].bytes_value == b"\xfb\xff"
    assert values["list"].array_value.values[0].int_value == 7
    assert not span.parent_span_id


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]},
         "$.resourceSpans[0].scopeSpans[0].spans[0].name: expected a string, got 5"),
        ({"resourceSpans": [{}, {"scopeSpans": [{}, {"spans": [{}, {"kind": "SPAN_KIND_X"}]}]}]},
         "$.resourceSpans[1].scopeSpans[1].spans[1].kind: unknown SpanKind 'SPAN_KIND_X'"),
        ({"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": {
            "boolValue": "yes"}}]}}]},
         "$.resourceSpans[0].resource.attributes[0].value.boolValue: expected true or false"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [{"endTimeUnixNano": "later"}]}]}]},
         "spans[0].endTimeUnixNano: expected an integer, got 'later'"),
        ({"resourceSpans": {"not": "a list"}}, "$.resourceSpans: expected an array, got dict"),
    ],
)  # fmt: skip
def test_a_value_that_does_not_fit_names_its_path(doc: object, where: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_json(Signal.TRACES, orjson.dumps(doc))
    assert where in str(info.value)


def test_out_of_range_integers_are_a_value_error() -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "-1"}]}]}]}
    with pytest.raises(ValueError, match="does not fit"):
        decode_json(Signal.TRACES, orjson.dumps(doc))
