"""Loki and Jaeger fan-out with the real gateway process, the OTel Python SDK as the client, a
Loki conformance server and an OTLP sink standing in for Jaeger.

Counts are printed (run pytest with -s to see them): what was sent and what was delivered.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.factories import logs_request, traces_request
from tests.support.loki_server import LokiServer
from tests.support.otlp_sink import OtlpSink

FAST_RETRY = {"initial_interval": "200ms", "max_interval": "1s"}
RESOURCE = {
    "service.name": "orders",
    "service.namespace": "shop",
    "deployment.environment.name": "staging",
}


@pytest.fixture
def loki() -> Iterator[LokiServer]:
    with LokiServer() as server:
        yield server


def fanout_config(loki: dict[str, Any], jaeger: dict[str, Any]) -> dict[str, Any]:
    return {
        "exporters": {
            "loki": {"retry_on_failure": FAST_RETRY, **loki},
            "jaeger": {"retry_on_failure": FAST_RETRY, **jaeger},
        },
        "service": {
            "pipelines": {
                "logs": {"receivers": ["otlp"], "exporters": ["loki"]},
                "traces": {"receivers": ["otlp"], "exporters": ["jaeger"]},
            },
            "shutdown_timeout": "5s",
        },
    }


@dataclass
class Emitted:
    """What the SDK produced, as the application saw it."""

    spans: list[ReadableSpan]
    logs: list[Any]  # the SDK's log records, with their timestamps
    ids: dict[str, tuple[str, str]]  # message -> (trace id hex, span id hex)


def emit_with_sdk(gateway_grpc: str, n: int) -> Emitted:
    """An app instrumented with the OTel SDK: ``n`` spans, each logging inside it (info,
    warning or error), exported over OTLP/gRPC to the gateway, then flushed."""
    resource = Resource.create(RESOURCE)
    span_copy, log_copy = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_copy))
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=gateway_grpc, insecure=True))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_copy))
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=gateway_grpc, insecure=True))
    )
    logger = logging.getLogger(f"e2e.orders.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = tracer_provider.get_tracer("e2e.orders")
    ids: dict[str, tuple[str, str]] = {}
    try:
        for i in range(n):
            with tracer.start_as_current_span(f"pay order {i}") as span:
                context = span.get_span_context()
                message = f'order {i} paid "quoted" \\ {uuid.uuid4().hex[:6]}'
                ids[message] = (f"{context.trace_id:032x}", f"{context.span_id:016x}")
                level = (logging.INFO, logging.WARNING, logging.ERROR)[i % 3]
                logger.log(level, message, extra={"order.id": i})
        assert tracer_provider.force_flush(10_000)
        assert logger_provider.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()
    logs = [data.log_record for data in log_copy.get_finished_logs()]
    return Emitted(list(span_copy.get_finished_spans()), logs, ids)


def assert_spans_unchanged(sink: OtlpSink, emitted: Emitted) -> None:
    received = {span.span_id: span for span in sink.spans()}
    assert len(received) == len(emitted.spans)
    for span in emitted.spans:
        got = received[span.context.span_id.to_bytes(8, "big")]
        assert got.trace_id == span.context.trace_id.to_bytes(16, "big")
        assert (got.name, got.start_time_unix_nano, got.end_time_unix_nano) == (
            span.name, span.start_time, span.end_time)  # fmt: skip


@pytest.mark.parametrize(
    ("loki_format", "jaeger_protocol"), [("protobuf", "grpc"), ("json", "http/protobuf")]
)
def test_sdk_logs_reach_loki_and_spans_reach_jaeger(
    loki: LokiServer, sink: OtlpSink, start_gateway, loki_format: str, jaeger_protocol: str
):
    jaeger_endpoint = sink.grpc_endpoint if jaeger_protocol == "grpc" else sink.http_endpoint
    gateway = start_gateway(
        fanout_config(
            {"endpoint": loki.url, "format": loki_format, "tenant_id": "shop-team"},
            {"endpoint": jaeger_endpoint, "protocol": jaeger_protocol},
        )
    )
    emitted = emit_with_sdk(gateway.grpc_endpoint, 30)
    assert loki.wait_for(lambda s: len(s.entries()) >= 30, 20), gateway.logs()
    assert sink.wait_for(lambda s: len(s.spans()) >= 30, 20), gateway.logs()
    time.sleep(0.5)  # anything extra would show up now

    entries = loki.entries()
    print(f"\n[loki {loki_format}] sent={len(emitted.logs)} delivered={len(entries)} "
          f"pushes={len(loki.pushes)} refused={len(loki.refused)}; "
          f"[jaeger {jaeger_protocol}] spans sent={len(emitted.spans)} "
          f"delivered={len(sink.spans())}")  # fmt: skip
    assert loki.refused == []
    assert {p.kind for p in loki.pushes} == {loki_format}
    assert {p.headers["x-scope-orgid"] for p in loki.pushes} == {"shop-team"}
    assert sorted(e.line for _, e in entries) == sorted(emitted.ids)
    by_line = {e.line: (labels, e) for labels, e in entries}
    for record in emitted.logs:
        labels, entry = by_line[record.body]
        labels = dict(labels)
        instance = labels.pop("service_instance_id")  # the SDK sets one per process
        assert len(instance) == 36
        assert labels == {  # the labels Loki's own OTLP ingestion would give them
            "service_name": "orders",
            "service_namespace": "shop",
            "deployment_environment_name": "staging",
        }
        # Loki derives detected_level from it, as for OTLP
        assert entry.meta["severity_number"] == str(record.severity_number.value)
        assert entry.ns == record.timestamp
        assert (entry.meta["trace_id"], entry.meta["span_id"]) == emitted.ids[record.body]
        assert entry.meta["order_id"] == str(record.attributes["order.id"])
        assert entry.meta["severity_text"] == record.severity_text
        assert entry.meta["telemetry_sdk_language"] == "python"
    for push in loki.pushes:  # each stream of each request in timestamp order
        for stream in push.streams:
            stamps = [e.ns for e in stream.entries]
            assert stamps == sorted(stamps)
    assert_spans_unchanged(sink, emitted)
    assert {r.transport for r in sink.received} == {"grpc" if jaeger_protocol == "grpc" else "http"}


def test_loki_native_otlp_mode(loki: LokiServer, sink: OtlpSink, start_gateway):
    gateway = start_gateway(
        fanout_config(
            {"endpoint": loki.url, "protocol": "otlp", "tenant_id": "t1"},
            {"endpoint": sink.grpc_endpoint},
        )
    )
    emitted = emit_with_sdk(gateway.grpc_endpoint, 12)
    count = lambda s: sum(  # noqa: E731
        len(sl.log_records) for p in s.otlp for rl in p.request.resource_logs
        for sl in rl.scope_logs)  # fmt: skip
    assert loki.wait_for(lambda s: count(s) >= 12, 20), gateway.logs()
    time.sleep(0.5)
    print(f"\n[loki otlp] sent={len(emitted.logs)} delivered={count(loki)} pushes={len(loki.otlp)}")
    assert count(loki) == 12 and loki.pushes == [] and loki.refused == []
    assert {p.headers["x-scope-orgid"] for p in loki.otlp} == {"t1"}
    records = [r for p in loki.otlp for rl in p.request.resource_logs for sl in rl.scope_logs
               for r in sl.log_records]  # fmt: skip
    got = {r.body.string_value: (r.trace_id.hex(), r.span_id.hex()) for r in records}
    assert got == emitted.ids


def post_logs(gateway, n: int, tag: str) -> set[str]:
    request = logs_request(n)
    lines = set()
    for i, record in enumerate(request.resource_logs[0].scope_logs[0].log_records):
        record.time_unix_nano = time.time_ns()
        record.body.string_value = f"{tag}-{i}"
        lines.add(record.body.string_value)
    post_request(gateway, request)
    return lines


def post_request(gateway, request) -> None:
    response = httpx.post(
        f"{gateway.http_endpoint}/v1/logs",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert response.status_code == 200


def test_loki_outage_loses_nothing_and_duplicates_nothing(start_gateway, sink: OtlpSink):
    loki = LokiServer().start()
    try:
        gateway = start_gateway(
            fanout_config({"endpoint": loki.url}, {"endpoint": sink.grpc_endpoint})
        )
        sent: set[str] = set()
        for b in range(5):
            sent |= post_logs(gateway, 20, f"before{b}")
        assert loki.wait_for(lambda s: len(s.entries()) == 100, 10), gateway.logs()
        port = loki.port
        loki.stop()

        outage_started = time.monotonic()
        for b in range(10):  # accepted while Loki is down
            sent |= post_logs(gateway, 20, f"during{b}")
            time.sleep(0.5)
        time.sleep(max(0.0, 10.0 - (time.monotonic() - outage_started)))
        retries = gateway.metric("otelgate_exporter_retries_total", exporter="loki")
        assert retries > 0

        loki = LokiServer(port).start()
        assert loki.wait_for(lambda s: len(s.entries()) >= 200, 30), gateway.logs()
        time.sleep(1.0)  # anything sent twice would show up now
        delivered = [e.line for _, e in loki.entries()]
        duplicates = len(delivered) - len(set(delivered))
        print(f"\n[loki outage ~10s] sent={len(sent)} delivered_before=100 "
              f"delivered_after_outage={len(delivered)} "
              f"duplicates={duplicates} retries={retries:.0f}")  # fmt: skip
        assert sorted(delivered) == sorted(line for line in sent if line.startswith("during"))
        assert loki.refused == []
        assert gateway.metric("otelgate_exporter_sent_items_total", signal="logs") == 300
        assert gateway.metric("otelgate_exporter_failed_items_total", signal="logs") == 0
    finally:
        loki.stop()


def test_jaeger_outage_loses_nothing_and_duplicates_nothing(start_gateway, loki: LokiServer):
    jaeger = OtlpSink().start()
    try:
        gateway = start_gateway(
            fanout_config({"endpoint": loki.url}, {"endpoint": jaeger.grpc_endpoint})
        )
        sent: set[bytes] = set()

        def post_spans() -> None:
            request = traces_request(20)
            response = httpx.post(
                f"{gateway.http_endpoint}/v1/traces",
                content=request.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
                timeout=10,
            )
            assert response.status_code == 200
            sent.update(s.span_id for s in request.resource_spans[0].scope_spans[0].spans)

        for _ in range(5):
            post_spans()
        assert jaeger.wait_for(lambda s: len(s.spans()) == 100, 10), gateway.logs()
        ports = (jaeger.grpc_port, jaeger.http_port)
        jaeger.stop()

        outage_started = time.monotonic()
        for _ in range(10):
            post_spans()
            time.sleep(0.5)
        time.sleep(max(0.0, 10.0 - (time.monotonic() - outage_started)))
        retries = gateway.metric("otelgate_exporter_retries_total", exporter="jaeger")
        assert retries > 0

        jaeger = OtlpSink(*ports).start()
        assert jaeger.wait_for(lambda s: len(s.spans()) >= 200, 30), gateway.logs()
        time.sleep(1.0)
        delivered = [s.span_id for s in jaeger.spans()]
        duplicates = len(delivered) - len(set(delivered))
        print(f"\n[jaeger outage ~10s] sent={len(sent)} delivered_before=100 "
              f"delivered_after_outage={len(delivered)} "
              f"duplicates={duplicates} retries={retries:.0f}")  # fmt: skip
        assert len(delivered) == len(set(delivered)) == 200
        assert gateway.metric("otelgate_exporter_sent_items_total", signal="traces") == 300
        assert gateway.metric("otelgate_exporter_failed_items_total", signal="traces") == 0
    finally:
        jaeger.stop()


def test_one_refused_record_costs_only_itself_through_the_gateway(
    start_gateway, loki: LokiServer, sink: OtlpSink
):
    """The real gateway with its default retry policy (5 min): in a 200-record request, one
    record Loki refuses (30 days old) and one with an attribute key Loki cannot take (``.``).
    Within seconds, 199 records are stored once each, 1 is counted failed, the bad key is
    dropped and counted, and a later request is not held up."""
    gateway = start_gateway(
        {
            "exporters": {
                "loki": {"endpoint": loki.url, "sending_queue": {"num_consumers": 1}},
                "jaeger": {"endpoint": sink.grpc_endpoint},
            },
            "service": fanout_config({}, {})["service"],
        }
    )
    request = logs_request(200)
    now = time.time_ns()
    records = request.resource_logs[0].scope_logs[0].log_records
    for i, record in enumerate(records):
        record.time_unix_nano = now + i
        record.body.string_value = f"poison-test-{i}"
    records[42].time_unix_nano = now - 30 * 86400 * 10**9
    records[99].attributes.add(key=".").value.string_value = "dot"
    post_request(gateway, request)
    later = post_logs(gateway, 10, "later")
    started = time.monotonic()
    assert loki.wait_for(lambda s: len(s.entries()) == 209, 15), gateway.logs()
    took = time.monotonic() - started
    time.sleep(0.5)  # anything sent twice would show up now
    lines = [e.line for _, e in loki.entries()]
    print(f"\n[loki poison] delivered={len(lines)} in {took:.2f}s "
          f"duplicates_ignored_by_loki={loki.duplicates} requests={len(loki.pushes)}")  # fmt: skip
    assert len(lines) == len(set(lines)) == 209 and "poison-test-42" not in lines
    assert later <= set(lines)
    assert gateway.metric("otelgate_exporter_failed_items_total", signal="logs") == 1
    assert gateway.metric("otelgate_exporter_sent_items_total", signal="logs") == 209
    adjusted = gateway.metric("otelgate_exporter_adjusted_total", reason="name_dropped")
    assert adjusted == 1
    assert "1 of 200 logs refused" in gateway.logs()
