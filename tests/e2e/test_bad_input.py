"""Bad input gets its specified status, and the gateway keeps serving afterwards."""

from __future__ import annotations

import gzip
import os

import grpc
import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.otlp_samples import sample_request

LIMIT = 64 * 1024  # body and decompressed limits configured for these tests


@pytest.fixture
def gateway(sink, start_gateway):
    limits = {"max_request_body_size": LIMIT, "max_decompressed_size": LIMIT}
    options = {"grpc": {"max_recv_msg_size_mib": 1}, "http": limits}
    return start_gateway(forward_config(sink), protocol_options=options)


def post(gateway, path: str, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.http_endpoint}{path}",
        content=body,
        headers={"Content-Type": content_type, **headers},
        timeout=10,
    )


def assert_still_serving(gateway, sink) -> None:
    """A good request after the bad one is accepted and its spans reach the sink."""
    request = sample_request(Signal.TRACES, 2)
    assert isinstance(request, ExportTraceServiceRequest)
    spans = request.resource_spans[0].scope_spans[0].spans
    for span in spans:  # ids no earlier request of the test used
        span.span_id = os.urandom(8)
    ids = {span.span_id for span in spans}
    ok = post(gateway, "/v1/traces", request.SerializeToString(), "application/x-protobuf")
    assert ok.status_code == 200
    assert sink.wait_for(lambda s: ids <= {span.span_id for span in s.spans()}, 10)


def status_of(response: httpx.Response) -> Status:
    assert response.headers["content-type"] == "application/x-protobuf"
    return Status.FromString(response.content)


def test_malformed_protobuf_is_400_with_status_body(gateway, sink):
    response = post(gateway, "/v1/traces", b"\xff\xff\xff not protobuf", "application/x-protobuf")
    assert response.status_code == 400
    status = status_of(response)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "cannot decode" in status.message
    assert status.details[0].type_url.endswith("google.rpc.BadRequest")
    assert_still_serving(gateway, sink)


def test_malformed_json_is_400_in_json(gateway, sink):
    response = post(gateway, "/v1/logs", b'{"resourceLogs": [', "application/json")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    wrong_shape = post(gateway, "/v1/logs", b'{"resourceLogs": 5}', "application/json")
    assert wrong_shape.status_code == 400
    assert_still_serving(gateway, sink)


def test_wrong_content_type_is_415(gateway, sink):
    response = post(gateway, "/v1/traces", b"hello", "text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]
    assert_still_serving(gateway, sink)


def test_unknown_content_encoding_is_415(gateway, sink):
    body = sample_request(Signal.TRACES, 1).SerializeToString()
    response = post(
        gateway, "/v1/traces", body, "application/x-protobuf", **{"Content-Encoding": "br"}
    )
    assert response.status_code == 415
    assert_still_serving(gateway, sink)


def test_oversized_body_is_413(gateway, sink):
    response = post(gateway, "/v1/traces", b"\x00" * (LIMIT + 1), "application/x-protobuf")
    assert response.status_code == 413
    assert_still_serving(gateway, sink)


def test_gzip_bomb_is_413_and_gzip_works(gateway, sink):
    bomb = gzip.compress(b"\x00" * (LIMIT * 50))
    assert len(bomb) < LIMIT
    response = post(
        gateway, "/v1/traces", bomb, "application/x-protobuf", **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "decompressed" in status_of(response).message
    good = gzip.compress(sample_request(Signal.TRACES, 3).SerializeToString())
    response = post(
        gateway, "/v1/traces", good, "application/x-protobuf", **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    broken = post(
        gateway, "/v1/traces", good[:-8], "application/x-protobuf", **{"Content-Encoding": "gzip"}
    )
    assert broken.status_code == 400
    assert_still_serving(gateway, sink)


def test_bad_trace_id_length_is_partial_success(gateway, sink):
    request = sample_request(Signal.TRACES, 4)
    assert isinstance(request, ExportTraceServiceRequest)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[1].trace_id = b"\x01" * 8  # 8 bytes instead of 16
    spans[2].span_id = b""
    response = post(gateway, "/v1/traces", request.SerializeToString(), "application/x-protobuf")
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "trace_id" in answer.partial_success.error_message
    assert sink.wait_for(lambda s: s.item_count(Signal.TRACES) == 2, 10)
    assert {s.name for s in sink.spans()} == {spans[0].name, spans[3].name}
    assert (
        gateway.metric(
            "otelgate_receiver_refused_items_total",
            signal="traces",
            transport="http",
            reason="invalid",
        )
        == 2
    )


def test_bad_hex_trace_id_in_json_is_partial_success(gateway, sink):
    body = (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":['
        b'{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"ok"},'
        b'{"traceId":"not-hex","spanId":"eee19b7ec3c1b174","name":"bad"}]}]}]}'
    )
    response = post(gateway, "/v1/traces", body, "application/json")
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert sink.wait_for(lambda s: [sp.name for sp in s.spans()] == ["ok"], 10)


def test_grpc_bad_data_and_oversized_messages(gateway, sink):
    with grpc.insecure_channel(gateway.grpc_endpoint) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as bad:
            export(b"\xff\xff\xff garbage", timeout=10)
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as big:
            export(b"\x00" * (2 * 1024 * 1024), timeout=10)
        assert big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(gateway, sink)


def test_unknown_path_and_method(gateway):
    """Issue 10, finding 8: a google.rpc.Status in the request's encoding, not FastAPI's JSON."""
    proto = {"Content-Type": "application/x-protobuf"}
    missing = httpx.post(f"{gateway.http_endpoint}/v1/nope", content=b"", headers=proto, timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/x-protobuf"
    assert "no such path /v1/nope" in Status.FromString(missing.content).message
    wrong = httpx.get(f"{gateway.http_endpoint}/v1/traces", timeout=5)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["message"] == "method GET not allowed on /v1/traces; use POST"
