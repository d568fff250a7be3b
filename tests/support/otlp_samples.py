"""Realistic OTLP requests for tests: every signal, every metric kind, ids, links, events."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.otlp.batch import ExportRequest, Signal

_T0 = 1_700_000_000_000_000_000
_ANY_FIELDS = {bool: "bool_value", int: "int_value", float: "double_value", bytes: "bytes_value"}


def _attrs(**values: Any) -> list[KeyValue]:
    return [
        KeyValue(key=k, value=AnyValue(**{_ANY_FIELDS.get(type(v), "string_value"): v}))
        for k, v in values.items()
    ]


def trace_id(i: int) -> bytes:
    return bytes([0xA0 + (i % 16)] * 8) + i.to_bytes(8, "big")


def span_id(i: int) -> bytes:
    return (0x5B00_0000_0000_0000 + i + 1).to_bytes(8, "big")


def _span(i: int) -> Span:
    attrs = _attrs(**{"http.status_code": 200 + i, "ok": True, "ratio": 0.5, "blob": b"\0\1"})
    span = Span(
        trace_id=trace_id(i),
        span_id=span_id(i),
        name=f"GET /items/{i}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=_T0 + i,
        end_time_unix_nano=_T0 + i + 1_500_000,
        attributes=attrs,
        status=Status(code=Status.STATUS_CODE_ERROR if i % 2 else Status.STATUS_CODE_OK),
    )
    if i:
        span.parent_span_id = span_id(0)
        span.links.add(trace_id=trace_id(0), span_id=span_id(0))
        span.events.add(
            time_unix_nano=_T0 + i,
            name="exception",
            attributes=_attrs(**{"exception.type": "ValueError"}),
        )
    return span


def _log_record(i: int) -> LogRecord:
    record = LogRecord(
        time_unix_nano=_T0 + i,
        observed_time_unix_nano=_T0 + i,
        severity_text="INFO",
        body=AnyValue(string_value=f"log line {i}"),
        attributes=_attrs(n=i),
    )
    record.severity_number = 9 + 4 * (i % 3)  # type: ignore[assignment]
    if i % 2 == 0:
        record.trace_id, record.span_id = trace_id(i), span_id(i)
    return record


def _metric(i: int) -> metrics_pb2.Metric:
    """Cycles through gauge, sum, histogram, exponential histogram and summary."""
    exemplars = [
        metrics_pb2.Exemplar(
            time_unix_nano=_T0, as_double=1.5, trace_id=trace_id(i), span_id=span_id(i)
        )
    ]
    common: dict[str, Any] = {
        "start_time_unix_nano": _T0,
        "time_unix_nano": _T0 + i,
        "attributes": _attrs(route="/x"),
    }
    metric = metrics_pb2.Metric(name=f"sample.metric.{i}", unit="ms", description="d")
    cumulative = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    kind = i % 5
    if kind == 0:
        metric.gauge.data_points.add(as_double=1.25, exemplars=exemplars, **common)
    elif kind == 1:
        metric.sum.is_monotonic, metric.sum.aggregation_temporality = True, cumulative
        metric.sum.data_points.add(as_int=2**40 + i, exemplars=exemplars, **common)
    elif kind == 2:
        metric.histogram.aggregation_temporality = cumulative
        metric.histogram.data_points.add(
            count=3,
            sum=6.0,
            bucket_counts=[1, 2, 0],
            explicit_bounds=[1.0, 5.0],
            exemplars=exemplars,
            **common,
        )
    elif kind == 3:
        metric.exponential_histogram.aggregation_temporality = cumulative
        metric.exponential_histogram.data_points.add(
            count=2,
            sum=3.0,
            scale=2,
            exemplars=exemplars,
            positive={"offset": -1, "bucket_counts": [1, 1]},
            **common,
        )
    else:
        metric.summary.data_points.add(
            count=2, sum=3.0, quantile_values=[{"quantile": 0.5, "value": 1.0}], **common
        )
    return metric


def sample_request(signal: Signal, items: int = 3, *, service: str = "checkout") -> ExportRequest:
    """A realistic Export*ServiceRequest with ``items`` spans, log records or data points."""
    resource = {"attributes": _attrs(**{"service.name": service, "host.name": "h1"})}
    scope = {"name": "tests.sample", "version": "1.0"}
    if signal is Signal.TRACES:
        traces = ExportTraceServiceRequest()
        traces.resource_spans.add(resource=resource).scope_spans.add(
            scope=scope, spans=[_span(i) for i in range(items)]
        )
        return traces
    if signal is Signal.LOGS:
        logs = ExportLogsServiceRequest()
        logs.resource_logs.add(resource=resource).scope_logs.add(
            scope=scope, log_records=[_log_record(i) for i in range(items)]
        )
        return logs
    metrics = ExportMetricsServiceRequest()
    metrics.resource_metrics.add(resource=resource).scope_metrics.add(
        scope=scope, metrics=[_metric(i) for i in range(items)]
    )
    return metrics
