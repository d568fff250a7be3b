"""Small builders of real OTLP protobuf requests for tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.otlp.batch import Batch, Signal


def attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def traces_request(
    n: int = 3, service: str = "checkout", trace_id: bytes | None = None
) -> ExportTraceServiceRequest:
    """``n`` spans of one trace in one resource."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(attr("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    tid = trace_id or os.urandom(16)
    for i in range(n):
        ss.spans.append(
            Span(
                trace_id=tid,
                span_id=os.urandom(8),
                name=f"op-{i}",
                kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=1_700_000_000_000_000_000 + i,
                end_time_unix_nano=1_700_000_000_000_500_000 + i,
                attributes=[attr("http.route", f"/items/{i}")],
            )
        )
    return request


def logs_request(n: int = 2, service: str = "checkout") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(attr("service.name", service))
    sl = rl.scope_logs.add()
    for i in range(n):
        sl.log_records.append(
            LogRecord(
                time_unix_nano=1_700_000_000_000_000_000 + i,
                severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
                severity_text="INFO",
                body=AnyValue(string_value=f"line {i}"),
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
            )
        )
    return request


def metrics_request(points: int = 2, service: str = "checkout") -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(attr("service.name", service))
    sm = rm.scope_metrics.add()
    metric = Metric(name="queue.depth", unit="{items}")
    for i in range(points):
        metric.gauge.data_points.append(
            NumberDataPoint(time_unix_nano=1_700_000_000_000_000_000 + i, as_int=i)
        )
    sm.metrics.append(metric)
    return request


def traces_batch(n: int = 3, nbytes: int | None = None) -> Batch:
    """``n`` spans; ``nbytes`` the size the batch counts as having arrived with."""
    return Batch.from_request(Signal.TRACES, traces_request(n), nbytes)


def logs_batch(n: int = 2) -> Batch:
    return Batch.from_request(Signal.LOGS, logs_request(n))


def health_config_text(tmp_path: Path, **health: Any) -> str:
    """A gateway config (OTLP/HTTP and host metrics into a file, admin on port 0) with these
    ``health`` settings, for the health API tests."""
    return yaml.safe_dump(
        {
            "receivers": {
                "otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}},
                "hostmetrics": {"collection_interval": "10s"},
            },
            "exporters": {"file": {"path": str(tmp_path / "data" / "out.jsonl")}},
            "service": {
                "pipelines": {
                    "traces": {"receivers": ["otlp"], "exporters": ["file"]},
                    "metrics": {"receivers": ["otlp", "hostmetrics"], "exporters": ["file"]},
                }
            },
            "admin": {"endpoint": "127.0.0.1:0"},
            "health": health,
        }
    )
