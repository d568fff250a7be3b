"""OTLP/JSON mapping: hex ids, integer enums, int64 strings, unknown fields, errors."""

from __future__ import annotations

import base64

import orjson
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from gateway.otlp.batch import Signal, count_items
from gateway.otlp.json_codec import INVALID_ID, decode_json, encode_json
from gateway.otlp.validation import validate
from tests.support.otlp_samples import sample_request, span_id, trace_id

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


def _span_doc(**span: object) -> bytes:
    base: dict[str, object] = {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "op"}
    base.update(span)
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [base]}]}]})


def _first_span(request: object):
    assert isinstance(request, ExportTraceServiceRequest)
    return request.resource_spans[0].scope_spans[0].spans[0]


@pytest.mark.parametrize("signal", list(Signal))
def test_round_trip_all_signals(signal: Signal) -> None:
    request = sample_request(signal, 7)
    decoded = decode_json(signal, encode_json(request))
    assert decoded == request
    assert count_items(signal, decoded) == 7


def test_trace_ids_are_hex_in_spans_and_links() -> None:
    doc = orjson.loads(encode_json(sample_request(Signal.TRACES, 3)))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert spans[0]["traceId"] == trace_id(0).hex()
    assert spans[0]["spanId"] == span_id(0).hex()
    assert spans[1]["parentSpanId"] == span_id(0).hex()
    assert spans[1]["links"][0] == {"traceId": trace_id(0).hex(), "spanId": span_id(0).hex()}
    # Other bytes fields keep protobuf's base64.
    blob = next(a for a in spans[0]["attributes"] if a["key"] == "blob")
    assert blob["value"] == {"bytesValue": base64.b64encode(b"\x00\x01").decode()}


def test_log_and_exemplar_ids_are_hex() -> None:
    logs = orjson.loads(encode_json(sample_request(Signal.LOGS, 1)))
    record = logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (record["traceId"], record["spanId"]) == (trace_id(0).hex(), span_id(0).hex())

    metrics = orjson.loads(encode_json(sample_request(Signal.METRICS, 4)))
    found = []
    for metric in metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
        for kind in ("gauge", "sum", "histogram", "exponentialHistogram"):
            if kind in metric:
                exemplar = metric[kind]["dataPoints"][0]["exemplars"][0]
                found.append(kind)
                assert len(exemplar["traceId"]) == 32 and len(exemplar["spanId"]) == 16
                bytes.fromhex(exemplar["traceId"])
    assert found == ["gauge", "sum", "histogram", "exponentialHistogram"]


def test_hex_is_case_insensitive_and_snake_case_ids_are_hex_too() -> None:
    span = _first_span(decode_json(Signal.TRACES, _span_doc(traceId=TRACE_HEX.upper())))
    assert span.trace_id == bytes.fromhex(TRACE_HEX)
    body = orjson.dumps(
        {"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": TRACE_HEX}]}]}]}
    )
    assert _first_span(decode_json(Signal.TRACES, body)).trace_id == bytes.fromhex(TRACE_HEX)


def test_enums_are_integers_and_int64_are_strings() -> None:
    doc = orjson.loads(encode_json(sample_request(Signal.TRACES, 2)))
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert span["kind"] == 2
    assert span["status"]["code"] == 2
    assert span["startTimeUnixNano"] == "1700000000000000001"
    metrics = orjson.loads(encode_json(sample_request(Signal.METRICS, 2)))
    sum_metric = metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][1]["sum"]
    assert sum_metric["aggregationTemporality"] == 2
    assert sum_metric["dataPoints"][0]["asInt"] == str(2**40 + 1)
    logs = orjson.loads(encode_json(sample_request(Signal.LOGS, 1)))
    assert logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] == 9


def test_decoder_accepts_int64_as_number_or_string_and_enum_names() -> None:
    as_number = _first_span(decode_json(Signal.TRACES, _span_doc(startTimeUnixNano=12, kind=3)))
    as_string = _first_span(
        decode_json(Signal.TRACES, _span_doc(startTimeUnixNano="12", kind="SPAN_KIND_CLIENT"))
    )
    assert as_number.start_time_unix_nano == as_string.start_time_unix_nano == 12
    assert as_number.kind == as_string.kind == 3


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = orjson.dumps(
        {
            "futureTopLevel": {"x": 1},
            "resourceSpans": [
                {
                    "newField": [1, 2],
                    "scopeSpans": [
                        {"spans": [{"traceId": TRACE_HEX, "spanId": SPAN_HEX, "shiny": True}]}
                    ],
                }
            ],
        }
    )
    span = _first_span(decode_json(Signal.TRACES, body))
    assert span.span_id == bytes.fromhex(SPAN_HEX)


@pytest.mark.parametrize("bad", ["xyz", "abc", "0x5b8e", 12345, True, ["00"]])
def test_invalid_hex_becomes_a_one_byte_id(bad: object) -> None:
    span = _first_span(decode_json(Signal.TRACES, _span_doc(traceId=bad, parentSpanId=bad)))
    assert span.trace_id == INVALID_ID
    assert span.parent_span_id == INVALID_ID
    assert span.span_id == bytes.fromhex(SPAN_HEX)


def test_invalid_ids_everywhere_reject_only_their_item() -> None:
    body = orjson.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "good"},
                                {"traceId": TRACE_HEX, "spanId": "nothex!", "name": "bad"},
                                {
                                    "traceId": TRACE_HEX,
                                    "spanId": SPAN_HEX,
                                    "links": [{"traceId": "q", "spanId": SPAN_HEX}],
                                },
                            ]
                        }
                    ]
                }
            ]
        }
    )
    request = decode_json(Signal.TRACES, body)
    assert isinstance(request, ExportTraceServiceRequest)
    rejection = validate(Signal.TRACES, request)
    assert rejection.count == 2
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["good"]

    logs = orjson.dumps(
        {
            "resourceLogs": [
                {"scopeLogs": [{"logRecords": [{"traceId": "zz"}, {"spanId": SPAN_HEX}]}]}
            ]
        }
    )
    log_request = decode_json(Signal.LOGS, logs)
    assert isinstance(log_request, ExportLogsServiceRequest)
    assert log_request.resource_logs[0].scope_logs[0].log_records[0].trace_id == INVALID_ID
    assert validate(Signal.LOGS, log_request).count == 1

    metrics = orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "m",
                                    "exponentialHistogram": {
                                        "dataPoints": [{"exemplars": [{"spanId": "g0"}]}]
                                    },
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    )
    metric_request = decode_json(Signal.METRICS, metrics)
    assert isinstance(metric_request, ExportMetricsServiceRequest)
    point = metric_request.resource_metrics[0].scope_metrics[0].metrics[0]
    assert point.exponential_histogram.data_points[0].exemplars[0].span_id == INVALID_ID


def test_empty_and_null_ids_stay_empty() -> None:
    span = _first_span(decode_json(Signal.TRACES, _span_doc(parentSpanId="", traceId=None)))
    assert span.parent_span_id == b""
    assert span.trace_id == b""


def test_trace_id_key_outside_the_id_paths_is_not_touched() -> None:
    body = _span_doc(
        attributes=[{"key": "traceId", "value": {"stringValue": "not-hex"}}],
        events=[{"name": "e", "traceId": "ignored unknown field"}],
    )
    span = _first_span(decode_json(Signal.TRACES, body))
    assert span.attributes[0].value.string_value == "not-hex"
    assert span.events[0].name == "e"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"[]",
        b'"a string"',
        b'{"resourceSpans": 3}',
        b'{"resourceSpans": [{"scopeSpans": "x"}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": {"a": 1}}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [3]}]}]}',
    ],
)
def test_malformed_json_or_shape_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError) as info:
        decode_json(Signal.TRACES, body)
    assert str(info.value)


def test_empty_object_is_an_empty_request() -> None:
    assert decode_json(Signal.LOGS, b"{}") == Signal.LOGS.request_type()
    assert encode_json(Signal.LOGS.request_type()) == b"{}"


def test_responses_and_status_encode() -> None:
    assert encode_json(ExportTraceServiceResponse()) == b"{}"
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 3
    response.partial_success.error_message = "bad ids"
    assert orjson.loads(encode_json(response)) == {
        "partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad ids"}
    }
    status = status_pb2.Status(code=3, message="invalid")
    violation = error_details_pb2.BadRequest.FieldViolation(field="spans", description="d")
    status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    doc = orjson.loads(encode_json(status))
    assert doc["code"] == 3
    assert doc["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert doc["details"][0]["fieldViolations"][0]["field"] == "spans"
