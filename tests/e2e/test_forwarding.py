"""Real OpenTelemetry SDK clients -> the real gateway process -> a downstream OTLP sink."""

from __future__ import annotations

import logging

import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetrics,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetrics,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gateway.otlp.batch import Signal
from gateway.otlp.json_codec import encode_json
from tests.e2e.conftest import forward_config
from tests.support.otlp_samples import sample_request


def attributes(items) -> dict[str, object]:
    return {kv.key: MessageToDict(kv.value) for kv in items}


def metric_services(sink) -> set[str]:
    """Services whose ``orders`` counter has arrived."""
    return {
        kv.value.string_value
        for r in sink.received
        if r.signal is Signal.METRICS
        for rm in r.request.resource_metrics
        if any(m.name == "orders" for sm in rm.scope_metrics for m in sm.metrics)
        for kv in rm.resource.attributes
        if kv.key == "service.name"
    }


def send_with_sdk(transport: str, gateway, service: str) -> dict[str, object]:
    """Emit two spans, a log inside a span, a counter and a histogram with the SDK; return
    what was sent."""
    resource = Resource.create({"service.name": service, "service.version": "1.2.3"})
    spans: GrpcSpans | HttpSpans
    logs: GrpcLogs | HttpLogs
    metrics: GrpcMetrics | HttpMetrics
    if transport == "grpc":
        spans = GrpcSpans(endpoint=gateway.grpc_endpoint, insecure=True)
        logs = GrpcLogs(endpoint=gateway.grpc_endpoint, insecure=True)
        metrics = GrpcMetrics(endpoint=gateway.grpc_endpoint, insecure=True)
    else:
        spans = HttpSpans(endpoint=f"{gateway.http_endpoint}/v1/traces")
        logs = HttpLogs(endpoint=f"{gateway.http_endpoint}/v1/logs")
        metrics = HttpMetrics(endpoint=f"{gateway.http_endpoint}/v1/metrics")
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    logger = logging.getLogger(f"e2e.{service}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = tracer_provider.get_tracer("e2e")
    meter = meter_provider.get_meter("e2e")
    try:
        with (
            tracer.start_as_current_span("checkout", attributes={"cart.items": 3}) as parent,
            tracer.start_as_current_span("charge", attributes={"payment.ok": True}) as child,
        ):
            logger.info("charging card %s", "visa")
        meter.create_counter("orders", unit="{order}").add(7, {"region": "eu"})
        meter.create_histogram("latency", unit="ms").record(12.5)
        reader.force_flush()
    finally:
        logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()
        meter_provider.shutdown()
    return {
        "trace_id": parent.get_span_context().trace_id.to_bytes(16, "big"),
        "span_ids": {
            parent.get_span_context().span_id.to_bytes(8, "big"): "checkout",
            child.get_span_context().span_id.to_bytes(8, "big"): "charge",
        },
        "child_span_id": child.get_span_context().span_id.to_bytes(8, "big"),
    }


@pytest.mark.parametrize(
    ("downstream", "loop"),
    [("http/protobuf", "uvloop"), ("grpc", "uvloop"), ("grpc", "asyncio")],
)
def test_sdk_signals_arrive_downstream_unchanged(sink, start_gateway, downstream, loop):
    gateway = start_gateway(forward_config(sink, downstream), env={"OTELGATE_EVENT_LOOP": loop})
    sent = {t: send_with_sdk(t, gateway, f"svc-{t}") for t in ("grpc", "http")}

    assert sink.wait_for(lambda s: len(s.spans()) >= 4 and len(s.log_records()) >= 2, 15)
    # Each client's metrics may arrive more than once (flush and shutdown both export):
    # wait for both services' counters rather than for a number of points.
    assert sink.wait_for(lambda s: metric_services(s) >= {"svc-grpc", "svc-http"}, 15)
    expected_transport = "http" if downstream == "http/protobuf" else "grpc"
    assert {r.transport for r in sink.received} == {expected_transport}

    for transport, what in sent.items():
        service = f"svc-{transport}"
        traces = [
            rs
            for r in sink.received
            if r.signal is Signal.TRACES
            for rs in r.request.resource_spans
            if attributes(rs.resource.attributes)["service.name"] == {"stringValue": service}
        ]
        spans = [s for rs in traces for ss in rs.scope_spans for s in ss.spans]
        assert {s.span_id: s.name for s in spans} == what["span_ids"]
        assert {s.trace_id for s in spans} == {what["trace_id"]}
        resource = attributes(traces[0].resource.attributes)
        assert resource["service.version"] == {"stringValue": "1.2.3"}
        by_name = {s.name: s for s in spans}
        assert attributes(by_name["checkout"].attributes) == {"cart.items": {"intValue": "3"}}
        assert attributes(by_name["charge"].attributes) == {"payment.ok": {"boolValue": True}}
        assert by_name["charge"].parent_span_id == by_name["checkout"].span_id

        logs = [
            rec
            for r in sink.received
            if r.signal is Signal.LOGS
            for rl in r.request.resource_logs
            if attributes(rl.resource.attributes)["service.name"] == {"stringValue": service}
            for sl in rl.scope_logs
            for rec in sl.log_records
        ]
        assert [rec.body.string_value for rec in logs] == ["charging card visa"]
        assert logs[0].trace_id == what["trace_id"]
        assert logs[0].span_id == what["child_span_id"]

        metrics = {
            m.name: m
            for r in sink.received
            if r.signal is Signal.METRICS
            for rm in r.request.resource_metrics
            if attributes(rm.resource.attributes)["service.name"] == {"stringValue": service}
            for sm in rm.scope_metrics
            for m in sm.metrics
        }
        assert metrics["orders"].sum.data_points[0].as_int == 7
        assert attributes(metrics["orders"].sum.data_points[0].attributes) == {
            "region": {"stringValue": "eu"}
        }
        assert metrics["latency"].histogram.data_points[0].sum == 12.5

    assert (
        gateway.metric("otelgate_receiver_accepted_items_total", signal="traces", transport="grpc")
        == 2
    )
    assert gateway.metric("otelgate_exporter_sent_items_total", signal="traces") == 4


@pytest.mark.parametrize("signal", list(Signal))
def test_json_in_protobuf_out_equal_content(sink, start_gateway, signal):
    gateway = start_gateway(forward_config(sink, "http/protobuf"))
    request = sample_request(signal, 5)
    response = httpx.post(
        f"{gateway.http_endpoint}/v1/{signal.value}",
        content=encode_json(request),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}  # full success: partial_success unset
    assert sink.wait_for(lambda s: s.item_count(signal) == 5, 10)
    [received] = sink.received
    assert received.headers["content-type"] == "application/x-protobuf"
    assert received.request == request
