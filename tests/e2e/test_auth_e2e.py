"""Bearer tokens on the real gateway with real OpenTelemetry SDK exporters (gRPC and HTTP):
the right token is accepted and named on the data, a missing, unknown or under-scoped one is
refused with the OTLP codes, nothing refused is counted as accepted, and no token reaches the
gateway's log output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink
from tests.support.tls_clients import finished_spans

SENDER = "sender-token-e2e-0123456789abcdef"
READER = "reader-token-e2e-0123456789abcdef"
UNKNOWN = "unknown-token-e2e-0123456789abcdef"


def auth_config(sink: OtlpSink) -> dict[str, Any]:
    config = forward_config(sink)
    config["auth"] = {
        "tokens": [
            {"name": "checkout", "token": SENDER, "scopes": ["ingest"], "tenant": "acme"},
            {"name": "grafana", "token": READER, "scopes": ["read"]},
        ]
    }
    config["logging"] = {"level": "debug"}
    return config


def exporters(gateway: GatewayProcess, token: str | None) -> dict[str, SpanExporter]:
    header = {"authorization": f"Bearer {token}"} if token else {}
    return {
        "grpc": GrpcSpanExporter(
            endpoint=gateway.grpc_endpoint, insecure=True, headers=header, timeout=5
        ),
        "http": HttpSpanExporter(
            endpoint=f"{gateway.http_endpoint}/v1/traces", headers=header, timeout=5
        ),
    }


def test_sdk_exporters_with_and_without_a_token(
    start_gateway: Callable[..., GatewayProcess], sink: OtlpSink
):
    gateway = start_gateway(auth_config(sink))
    gateway.admin_headers = {"authorization": f"Bearer {READER}"}
    outcomes = {}
    for token in (SENDER, None, UNKNOWN, READER):
        for transport, exporter in exporters(gateway, token).items():
            spans = finished_spans(3, f"svc-{transport}")
            outcomes[(token, transport)] = exporter.export(spans)
            exporter.shutdown()
    assert outcomes == {
        (token, transport): SpanExportResult.SUCCESS
        if token == SENDER
        else SpanExportResult.FAILURE
        for token in (SENDER, None, UNKNOWN, READER)
        for transport in ("grpc", "http")
    }
    assert sink.wait_for(lambda s: len(s.spans()) == 6)
    for received in sink.received:
        for resource_spans in received.request.resource_spans:  # type: ignore[union-attr]
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert attributes["otelgate.auth.name"] == "checkout"
            assert attributes["otelgate.tenant"] == "acme"
    for transport in ("grpc", "http"):
        accepted = gateway.metric(
            "otelgate_receiver_accepted_items_total", signal="traces", transport=transport
        )
        assert accepted == 3, transport
        for reason, times in (("unauthenticated", 2), ("permission_denied", 1)):
            refused = gateway.metric(
                "otelgate_receiver_refused_requests_total",
                signal="traces", transport=transport, reason=reason,
            )  # fmt: skip
            assert refused == times, (transport, reason)
    assert gateway.metric(
        "otelgate_auth_items_total", name="checkout", signal="traces", outcome="accepted"
    ) == 6  # fmt: skip
    gateway.stop()
    logs = gateway.logs()
    assert "invalid bearer token" in logs or "unauthenticated" in logs  # debug lines were written
    for token in (SENDER, READER, UNKNOWN):
        assert token not in logs


def test_refusal_codes_and_bodies(start_gateway: Callable[..., GatewayProcess], sink: OtlpSink):
    gateway = start_gateway(auth_config(sink))
    body = sample_request(Signal.TRACES, 2).SerializeToString()
    url = f"{gateway.http_endpoint}/v1/traces"
    protobuf = {"content-type": "application/x-protobuf"}
    cases = [(None, 401, 16), (UNKNOWN, 401, 16), (READER, 403, 7), (SENDER, 200, 0)]
    for token, status, code in cases:
        headers = {**protobuf, **({"authorization": f"Bearer {token}"} if token else {})}
        response = httpx.post(url, content=body, headers=headers, timeout=5)
        assert response.status_code == status, response.content
        if status != 200:
            assert Status.FromString(response.content).code == code
            assert (response.headers.get("www-authenticate") is not None) == (status == 401)
    # JSON requests get a JSON Status.
    refused = httpx.post(url, content=b"{}", headers={"content-type": "application/json"})
    assert refused.status_code == 401 and refused.json()["code"] == 16
    with grpc.insecure_channel(gateway.grpc_endpoint) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        for token, code in ((None, grpc.StatusCode.UNAUTHENTICATED),
                            (UNKNOWN, grpc.StatusCode.UNAUTHENTICATED),
                            (READER, grpc.StatusCode.PERMISSION_DENIED)):  # fmt: skip
            metadata = [("authorization", f"Bearer {token}")] if token else []
            with pytest.raises(grpc.RpcError) as info:
                export(body, metadata=metadata, timeout=5)
            assert info.value.code() == code
        assert export(body, metadata=[("authorization", f"Bearer {SENDER}")], timeout=5) == b""
    assert sink.wait_for(lambda s: len(s.spans()) == 4)
