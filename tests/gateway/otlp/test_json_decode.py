"""The OTLP/JSON decoder against protobuf's own JSON parser, and its error paths."""

from __future__ import annotations

import math

import orjson
import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.otlp.batch import Signal
from gateway.otlp.json_codec import decode_json, encode_json
from tests.support.hostile import (
    MAX_SPAN_ATTRIBUTE_NESTING,
    Nesting,
    deep_logs_protobuf,
    deep_traces_json,
    deep_traces_protobuf,
    nested_value,
)
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


@pytest.mark.parametrize("kind", ["kvlist", "array"])
def test_json_nests_exactly_as_deep_as_protobuf_decodes(kind: Nesting) -> None:
    """A JSON request is accepted exactly when its protobuf encoding can be read back: the
    deepest one protobuf reads is accepted, one level more is refused in both encodings."""
    deepest = MAX_SPAN_ATTRIBUTE_NESTING[kind]
    request = decode_json(Signal.TRACES, orjson.dumps(deep_traces_json(deepest, kind)))
    again = ExportTraceServiceRequest.FromString(request.SerializeToString())
    assert again == request
    ExportTraceServiceRequest.FromString(deep_traces_protobuf(deepest, kind))

    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        decode_json(Signal.TRACES, orjson.dumps(deep_traces_json(deepest + 1, kind)))
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(deep_traces_protobuf(deepest + 1, kind))


def test_log_bodies_nest_as_deep_as_protobuf_decodes() -> None:
    # A log body sits one level higher than a span attribute: one array level more fits.
    deepest = MAX_SPAN_ATTRIBUTE_NESTING["array"] + 1
    ExportLogsServiceRequest.FromString(deep_logs_protobuf(deepest, "array"))
    with pytest.raises(DecodeError):
        ExportLogsServiceRequest.FromString(deep_logs_protobuf(deepest + 1, "array"))
    body = nested_value(deepest, "array")
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": body}]}]}]}
    decode_json(Signal.LOGS, orjson.dumps(doc))
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"] = {
        "arrayValue": {"values": [body]}
    }
    with pytest.raises(ValueError, match="nested deeper"):
        decode_json(Signal.LOGS, orjson.dumps(doc))


def test_error_in_a_deep_value_is_found_once_not_per_level() -> None:
    """Issue 9, finding 1: an invalid leaf 18 levels deep took 13 s (each level re-converted
    the failing element to find its index, doubling the work per level). At 45 levels the
    old path would not finish in a lifetime; pytest's timeout guards this test."""
    doc = deep_traces_json(45, "array", invalid_leaf=True)
    with pytest.raises(ValueError) as info:
        decode_json(Signal.TRACES, orjson.dumps(doc))
    message = str(info.value)
    path = ".value" + ".arrayValue.values[1]" * 45 + ".intValue: expected an integer, got 'x'"
    assert "$.resourceSpans[0].scopeSpans[0].spans[0].attributes[0]" + path in message


def test_the_failing_element_is_named_by_its_index_even_among_equal_values() -> None:
    values = [{"intValue": "1"}, {"intValue": "1"}, {"intValue": "bad"}, {"intValue": "bad"}]
    doc = deep_traces_json(0, "array")
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [{"key": "a", "value": {"arrayValue": {"values": values}}}]
    with pytest.raises(ValueError, match=r"attributes\[0\]\.value\.arrayValue\.values\[2\]"):
        decode_json(Signal.TRACES, orjson.dumps(doc))
