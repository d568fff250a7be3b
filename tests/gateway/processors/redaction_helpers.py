"""Building OTLP requests with chosen attributes and reading them back, for the redaction
processor's tests."""

from __future__ import annotations

import weakref
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client import CollectorRegistry

from gateway.components import build_processor
from gateway.otlp.batch import Batch, ExportRequest, Signal, resources_of
from gateway.processors.redaction import RedactionProcessor
from gateway.processors.redaction_config import RedactionProcessorConfig
from gateway.selfmetrics import GatewayMetrics

CARD = "4111 1111 1111 1111"
_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, GatewayMetrics] = weakref.WeakKeyDictionary()
EMAIL = "bob@example.com"


def any_value(value: Any) -> AnyValue:
    """A Python value as an AnyValue (lists as arrays, dicts as kvlists)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(kvs(value))
        return out
    return AnyValue(string_value=value)


def kvs(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def plain(attributes: Any) -> dict[str, Any]:
    """Attributes as a dict of plain values (for comparisons)."""
    out = {}
    for kv in attributes:
        value = MessageToDict(kv.value)
        out[kv.key] = next(iter(value.values())) if value else None
    return out


def traces(
    span: dict[str, Any],
    *,
    resource: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
    link: dict[str, Any] | None = None,
    status_message: str = "",
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(kvs(resource or {"service.name": "checkout"}))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    s = ss.spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="charge")
    s.attributes.extend(kvs(span))
    if event is not None:
        s.events.add(name="exception").attributes.extend(kvs(event))
    if link is not None:
        s.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8).attributes.extend(kvs(link))
    if status_message:
        s.status.message = status_message
        s.status.code = Status.STATUS_CODE_ERROR
    return request


def logs(body: Any, attributes: dict[str, Any] | None = None) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(kvs({"service.name": "checkout"}))
    record = rl.scope_logs.add().log_records.add(severity_text="INFO")
    if body is not None:
        record.body.CopyFrom(any_value(body))
    record.attributes.extend(kvs(attributes or {}))
    return request


def metrics(
    points: dict[str, Any], exemplar: dict[str, Any] | None = None
) -> ExportMetricsServiceRequest:
    """One metric of every kind, each with one data point carrying ``points``."""
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(kvs({"service.name": "checkout"}))
    sm = rm.scope_metrics.add()
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary"):
        metric = sm.metrics.add(name=f"m.{kind}")
        point = getattr(metric, kind).data_points.add()
        point.attributes.extend(kvs(points))
        if exemplar is not None and kind != "summary":
            point.exemplars.add(as_int=1).filtered_attributes.extend(kvs(exemplar))
    return request


def processor(
    registry: CollectorRegistry | None = None, name: str = "redaction", **config: Any
) -> RedactionProcessor:
    """A processor built the way the gateway builds it (registry, factory, Host)."""
    registry = registry or CollectorRegistry()
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = _METRICS[registry] = GatewayMetrics(registry)
    built = build_processor(name, RedactionProcessorConfig(**config), metrics=metrics)
    assert isinstance(built, RedactionProcessor)
    return built


def received(signal: Signal, request: ExportRequest) -> Batch:
    """A batch as a receiver hands it on: decoded, with the bytes it arrived as."""
    encoded = request.SerializeToString()
    return Batch(signal, request, 1, encoded)


def run(proc: RedactionProcessor, signal: Signal, request: ExportRequest) -> Batch:
    """Process ``request`` as received and check the batch is consistent: its bytes (if
    kept) decode to exactly the processed request."""
    batch = proc.process(received(signal, request))
    if batch.encoded is not None:
        again = signal.request_type.FromString(batch.encoded)
        assert again == batch.request
    return batch


def first_span(batch: Batch) -> Span:
    request = batch.request
    assert isinstance(request, ExportTraceServiceRequest)
    return request.resource_spans[0].scope_spans[0].spans[0]


def first_record(batch: Batch) -> LogRecord:
    request = batch.request
    assert isinstance(request, ExportLogsServiceRequest)
    return request.resource_logs[0].scope_logs[0].log_records[0]


def first_resource(batch: Batch) -> Resource:
    return next(iter(resources_of(batch)))


def metrics_of(batch: Batch) -> list[Metric]:
    request = batch.request
    assert isinstance(request, ExportMetricsServiceRequest)
    return list(request.resource_metrics[0].scope_metrics[0].metrics)
